"""Confirmation by a person in Home Assistant, for MCP clients that cannot ask the user.

Each request gets an id of its own. Home Assistant shows a persistent notification (with a link
to the add-on's approve/deny page when the add-on knows its URL), and, with `notify_service`
set, the phone gets a notification with Approve and Deny buttons. The phone's answer comes back
as Home Assistant's `mobile_app_notification_action` event, which the add-on watches over a
WebSocket of its own. The id and the page's secret go only to Home Assistant, never to the MCP
client, so the model cannot answer for the user. Anything but "approve" before the deadline is
not done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import html
import logging
import secrets
import time
from typing import Any, Literal
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from .ha_client import HAError, HomeAssistant

_LOGGER = logging.getLogger(__name__)
ACTION_EVENT = "mobile_app_notification_action"
APPROVE, DENY = "ESP_MCP_APPROVE_", "ESP_MCP_DENY_"
NOTIFICATION_PREFIX = "esp_mcp_bridge_confirm_"
PAGE_PREFIX = "/confirm/"
PROGRESS_EVERY_S = 5.0
SUBSCRIBE_WAIT_S = 15.0
TITLE = "ESP32 MCP Bridge: confirm a command"

Answer = Literal["approved", "declined", "expired"]
Progress = Callable[[float, float, str], Awaitable[None]]


_PUNCTUATION = frozenset("\\`*_{}[]()<>#+-.!|~:/\"'&=%?@$^;,")


def markdown_text(text: str) -> str:
    """`text` as literal text in Home Assistant's markdown: every ASCII punctuation character
    escaped, so names from devices (anyone who can publish to the broker sets them) and from
    MCP clients cannot become links, images or HTML in the notification that asks the user."""
    return "".join(f"\\{c}" if c in _PUNCTUATION else c for c in text)


class CannotAsk(Exception):
    """Home Assistant could not be used to ask (nothing was shown to anyone)."""


@dataclass
class _Pending:
    effect: str
    secret: str
    deadline: float
    answers: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class HomeConfirmation:
    """Asks in Home Assistant and waits for the answer; also serves the approve/deny page."""

    def __init__(self, ha: HomeAssistant, notify_service: str, ttl_s: float) -> None:
        self.ha = ha
        self.notify_service = notify_service
        self.ttl_s = ttl_s
        self._pending: dict[str, _Pending] = {}

    async def ask(self, effect: str, who: str, link_base: str | None, progress: Progress) -> Answer:
        """approved / declined / expired; raises CannotAsk when Home Assistant cannot show it."""
        rid = secrets.token_urlsafe(12)
        pending = _Pending(effect, secrets.token_urlsafe(24), time.monotonic() + self.ttl_s)
        self._pending[rid] = pending
        subscribed = asyncio.Event()

        def on_event(data: dict[str, Any]) -> None:
            action = data.get("action")
            if action in (APPROVE + rid, DENY + rid):
                pending.answers.put_nowait("approve" if action == APPROVE + rid else "deny")

        watcher = asyncio.create_task(self.ha.watch_events(ACTION_EVENT, on_event, subscribed))
        try:
            try:
                await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_S)
            except TimeoutError as err:
                raise CannotAsk("cannot watch Home Assistant's events") from err
            await self._show(rid, pending, effect, who, link_base)
            return await self._wait(pending, progress)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._pending.pop(rid, None)
            await self._withdraw(rid)

    async def _show(
        self, rid: str, pending: _Pending, effect: str, who: str, link_base: str | None
    ) -> None:
        until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + self.ttl_s))
        question = f"{who} asks to {effect}."
        ways = []
        if self.notify_service:
            ways.append("answer on your phone")
        if link_base:
            ways.append(f"[approve or deny here]({link_base}{PAGE_PREFIX}{rid}/{pending.secret})")
        how = " or ".join(ways) or "approve it from the phone notification"
        message = (
            f"{markdown_text(question)} Allow this? To allow it, {how} before {until}. "
            "Nothing is done without an approval."
        )
        try:
            await self.ha.call_service(
                "persistent_notification",
                "create",
                {"notification_id": NOTIFICATION_PREFIX + rid, "title": TITLE, "message": message},
            )
        except HAError as err:
            if not self.notify_service:
                raise CannotAsk(f"cannot create a notification in Home Assistant: {err}") from err
            _LOGGER.warning("could not create the persistent notification: %s", err)
            persistent = False
        else:
            persistent = True
        if not self.notify_service:
            return
        domain, _, service = self.notify_service.partition(".")
        data = {
            "title": TITLE,
            "message": f"{question} Allow this?",
            "data": {
                "tag": NOTIFICATION_PREFIX + rid,
                "actions": [
                    {"action": APPROVE + rid, "title": "Approve"},
                    {"action": DENY + rid, "title": "Deny", "destructive": True},
                ],
            },
        }
        try:
            await self.ha.call_service(domain, service, data)
        except HAError as err:
            if not persistent:
                raise CannotAsk(f"cannot notify {self.notify_service}: {err}") from err
            _LOGGER.warning("could not notify %s: %s", self.notify_service, err)

    async def _wait(self, pending: _Pending, progress: Progress) -> Answer:
        start = time.monotonic()
        while True:
            now = time.monotonic()
            remaining = pending.deadline - now
            if remaining <= 0:
                return "expired"
            await progress(
                round(now - start, 1),
                self.ttl_s,
                f"waiting for the user's answer in Home Assistant ({remaining:.0f} s left)",
            )
            try:
                answer = await asyncio.wait_for(
                    pending.answers.get(), min(remaining, PROGRESS_EVERY_S)
                )
            except TimeoutError:
                continue
            return "approved" if answer == "approve" else "declined"

    async def _withdraw(self, rid: str) -> None:
        with contextlib.suppress(HAError):
            await self.ha.call_service(
                "persistent_notification", "dismiss", {"notification_id": NOTIFICATION_PREFIX + rid}
            )
        if self.notify_service:
            domain, _, service = self.notify_service.partition(".")
            with contextlib.suppress(HAError):
                await self.ha.call_service(
                    domain,
                    service,
                    {"message": "clear_notification", "data": {"tag": NOTIFICATION_PREFIX + rid}},
                )

    # ---- the approve/deny page ------------------------------------------------------------

    def handles(self, path: str) -> bool:
        return path.startswith(PAGE_PREFIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the question with two buttons; POST answer=approve|deny answers it."""
        parts = scope["path"][len(PAGE_PREFIX) :].split("/")
        pending = self._pending.get(parts[0]) if len(parts) == 2 else None
        if pending is None or not secrets.compare_digest(parts[1], pending.secret):
            await _page(send, 404, "This request is unknown or no longer waiting for an answer.")
            return
        if scope["method"] == "GET":
            question = html.escape(f"Allow this? It will {pending.effect}.")
            left = max(0, round(pending.deadline - time.monotonic()))
            await _page(
                send,
                200,
                f"<p>{question}</p><p>{left} s left.</p>"
                '<form method="post"><button name="answer" value="approve">Approve</button> '
                '<button name="answer" value="deny">Deny</button></form>',
                raw=True,
            )
            return
        if scope["method"] != "POST":
            await _page(send, 405, "Use the buttons.")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 1024 or not message.get("more_body"):
                break
        answer = parse_qs(body.decode("latin-1")).get("answer", [""])[0]
        if answer not in ("approve", "deny"):
            await _page(send, 400, "Use the buttons.")
            return
        pending.answers.put_nowait(answer)
        await _page(send, 200, "Approved." if answer == "approve" else "Denied: nothing is done.")


async def _page(send: Send, status: int, text: str, raw: bool = False) -> None:
    body = text if raw else f"<p>{html.escape(text)}</p>"
    data = (
        f"<!doctype html><meta charset=utf-8><title>{TITLE}</title><h1>{TITLE}</h1>{body}"
    ).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
