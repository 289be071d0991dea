"""Home Assistant client: REST for states, services and token checks; one persistent WebSocket.

The WebSocket authenticates, numbers its requests, resolves replies by id and reconnects on the
next command after a drop. Every failure surfaces as `HAError` with a message an agent can act on.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
import hashlib
import itertools
import logging
from typing import Any

import aiohttp

_LOGGER = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 15.0
MAX_USER_SOCKETS = 16


class HAError(Exception):
    """Home Assistant could not answer (unreachable, auth, or an API error)."""


class HAUnreachable(HAError):
    """Home Assistant did not answer at all."""


class HomeAssistant:
    """REST + WebSocket access with the server's own token."""

    def __init__(self, url: str, token: str, auth_url: str = "") -> None:
        self.url = url.rstrip("/")
        self.auth_url = (auth_url or url).rstrip("/")
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._connect_lock = asyncio.Lock()
        self.ws_connects = 0
        self._as_users: OrderedDict[str, HomeAssistant] = OrderedDict()
        """Per client token (by digest), a connection to Core with that token: service calls
        made as that user ride its WebSocket instead of an HTTP request each."""

    @property
    def ws_url(self) -> str:
        base = self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/api/websocket"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            )
        return self._session

    async def close(self) -> None:
        users, self._as_users = list(self._as_users.values()), OrderedDict()
        for user in users:
            await user.close()
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self._fail_pending(HAUnreachable("connection closed"))
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- REST -----------------------------------------------------------------------------

    async def _rest(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        token: str | None = None,
    ) -> Any:
        """A REST call with the server's token, or with a client's `token` against Core."""
        headers = {"Authorization": f"Bearer {token or self._token}"}
        base = self.auth_url if token else self.url
        try:
            async with self._http().request(
                method, f"{base}{path}", json=json_body, headers=headers, ssl=self._ssl(base)
            ) as resp:
                if resp.status == 401:
                    raise HAError("Home Assistant rejected the access token (HTTP 401)")
                if resp.status == 404:
                    return None
                if resp.status >= 400:
                    text = (await resp.text())[:200]
                    raise HAError(f"Home Assistant answered HTTP {resp.status} to {path}: {text}")
                if resp.content_type == "application/json":
                    return await resp.json()
                return await resp.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise HAUnreachable(
                f"Home Assistant is unreachable at {self.url} ({type(err).__name__})"
            ) from err

    async def current_user(self, token: str) -> dict[str, Any] | None:
        """The Home Assistant user `token` belongs to (WebSocket `auth/current_user`: id, name,
        is_admin, is_owner), or None when HA rejects the token (`auth_invalid`).

        Raises HAUnreachable when HA cannot answer, and HAError when it answers but refuses to
        check (HTTP 403 after an IP ban, 5xx): neither says anything about the token."""
        base = self.auth_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        try:
            async with self._http().ws_connect(
                f"{base}/api/websocket", ssl=self._ssl(self.auth_url), heartbeat=None
            ) as ws:
                hello = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
                if hello.get("type") != "auth_required":
                    raise HAError("unexpected WebSocket greeting from Home Assistant")
                await ws.send_json({"type": "auth", "access_token": token})
                reply = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
                if reply.get("type") == "auth_invalid":
                    return None
                if reply.get("type") != "auth_ok":
                    raise HAError("unexpected WebSocket answer from Home Assistant")
                await ws.send_json({"id": 1, "type": "auth/current_user"})
                result = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
        except aiohttp.WSServerHandshakeError as err:
            raise HAError(
                f"Home Assistant refused the token check (HTTP {err.status}); if it is 403, "
                "Home Assistant has banned this add-on's address (ip_ban_enabled)"
            ) from err
        except (aiohttp.ClientError, TimeoutError, TypeError, ValueError) as err:
            raise HAUnreachable(f"Home Assistant is unreachable at {self.auth_url}") from err
        user = result.get("result") if isinstance(result, dict) else None
        if not isinstance(user, dict) or not result.get("success"):
            raise HAError("Home Assistant did not answer auth/current_user")
        return user

    async def config(self) -> dict[str, Any]:
        """Home Assistant's configuration (``/api/config``: its internal and external URL)."""
        result = await self._rest("GET", "/api/config")
        return result if isinstance(result, dict) else {}

    async def token_request(self, form: bytes) -> tuple[int, str]:
        """Pass an OAuth token request (form-encoded) to Core's ``/auth/token``; returns
        Core's status and JSON body as they are."""
        try:
            async with self._http().post(
                f"{self.auth_url}/auth/token",
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                ssl=self._ssl(self.auth_url),
            ) as resp:
                return resp.status, (await resp.text())[:16384]
        except (aiohttp.ClientError, TimeoutError) as err:
            raise HAUnreachable(f"Home Assistant is unreachable at {self.auth_url}") from err

    @staticmethod
    def _ssl(base: str) -> bool:
        """Core's certificate does not name the internal host `homeassistant`: skip the check
        there (the add-on network); verify everywhere else."""
        return not base.startswith("https://homeassistant:")

    async def get_state(self, entity_id: str) -> dict[str, Any] | None:
        result = await self._rest("GET", f"/api/states/{entity_id}")
        return result if isinstance(result, dict) else None

    async def get_states(self) -> list[dict[str, Any]]:
        result = await self._rest("GET", "/api/states")
        return result if isinstance(result, list) else []

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any], token: str | None = None
    ) -> None:
        await self._rest("POST", f"/api/services/{domain}/{service}", data, token=token)

    async def log_to_logbook(
        self, name: str, message: str, entity_id: str | None, token: str | None = None
    ) -> None:
        data: dict[str, Any] = {"name": name, "message": message, "domain": "esp_mcp_bridge"}
        if entity_id:
            data["entity_id"] = entity_id
        if token:
            # With the client's own token HA records which user did it.
            try:
                client = await self._as_user(token)
                await client.ws_command(
                    {
                        "type": "call_service",
                        "domain": "logbook",
                        "service": "log",
                        "service_data": data,
                    }
                )
            except HAError as err:
                await self._forget_user(token)
                _LOGGER.info("logbook entry with the client's token failed (%s); using ours", err)
            else:
                return
        await self.call_service("logbook", "log", data)

    async def _as_user(self, token: str) -> HomeAssistant:
        key = hashlib.sha256(token.encode()).hexdigest()
        client = self._as_users.get(key)
        if client is None:
            client = HomeAssistant(self.auth_url, token)
            self._as_users[key] = client
            while len(self._as_users) > MAX_USER_SOCKETS:
                _, old = self._as_users.popitem(last=False)
                await old.close()
        self._as_users.move_to_end(key)
        return client

    async def _forget_user(self, token: str) -> None:
        client = self._as_users.pop(hashlib.sha256(token.encode()).hexdigest(), None)
        if client is not None:
            await client.close()

    # ---- WebSocket ------------------------------------------------------------------------

    async def _ensure_ws(self) -> aiohttp.ClientWebSocketResponse:
        async with self._connect_lock:
            if self._ws is not None and not self._ws.closed:
                return self._ws
            try:
                ws = await self._http().ws_connect(self.ws_url, heartbeat=30, max_msg_size=0)
            except (aiohttp.ClientError, TimeoutError) as err:
                raise HAUnreachable(
                    f"Home Assistant is unreachable at {self.url} ({type(err).__name__})"
                ) from err
            try:
                hello = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
                if hello.get("type") != "auth_required":
                    raise HAError(f"unexpected WebSocket greeting from Home Assistant: {hello}")
                await ws.send_json({"type": "auth", "access_token": self._token})
                reply = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
            except (aiohttp.ClientError, TimeoutError, TypeError, ValueError) as err:
                await ws.close()
                raise HAUnreachable(
                    "Home Assistant WebSocket closed during authentication"
                ) from err
            if reply.get("type") != "auth_ok":
                await ws.close()
                raise HAError("Home Assistant rejected the access token on the WebSocket")
            self._ws = ws
            self.ws_connects += 1
            self._reader = asyncio.create_task(self._read_loop(ws))
            _LOGGER.debug("WebSocket to Home Assistant connected")
            return ws

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = msg.json()
                except ValueError:
                    continue
                for item in data if isinstance(data, list) else [data]:
                    self._dispatch(item)
        finally:
            if self._ws is ws:
                self._ws = None
            self._fail_pending(HAUnreachable("the WebSocket to Home Assistant closed"))

    def _dispatch(self, item: Any) -> None:
        if not isinstance(item, dict) or item.get("type") != "result":
            return
        future = self._pending.pop(item.get("id", -1), None)
        if future is None or future.done():
            return
        if item.get("success"):
            future.set_result(item.get("result"))
        else:
            error = item.get("error") or {}
            future.set_exception(
                WSCommandError(str(error.get("code", "error")), str(error.get("message", "")))
            )

    def _fail_pending(self, err: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(err)

    async def ws_command(self, payload: dict[str, Any], wait_s: float = REQUEST_TIMEOUT_S) -> Any:
        """Send one command and return its `result`; reconnects once if the socket had dropped."""
        for attempt in (1, 2):
            ws = await self._ensure_ws()
            msg_id = next(self._ids)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[msg_id] = future
            try:
                await ws.send_json({**payload, "id": msg_id})
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as err:
                self._pending.pop(msg_id, None)
                await ws.close()
                if attempt == 2:
                    raise HAUnreachable("cannot send to Home Assistant's WebSocket") from err
                continue
            try:
                return await asyncio.wait_for(future, wait_s)
            except TimeoutError as err:
                self._pending.pop(msg_id, None)
                raise HAUnreachable(
                    f"Home Assistant did not answer {payload.get('type')} within {wait_s:.0f} s"
                ) from err
            except HAUnreachable:
                if attempt == 2:
                    raise
        raise HAUnreachable("Home Assistant WebSocket unavailable")  # pragma: no cover

    async def watch_events(
        self,
        event_type: str,
        on_event: Callable[[dict[str, Any]], None],
        subscribed: asyncio.Event,
    ) -> None:
        """Until cancelled: a WebSocket of its own subscribed to `event_type`, each event's data
        passed to `on_event`; `subscribed` is set once HA confirmed the subscription. After a
        drop it connects again, a second later and then with a growing pause (at most 30 s)
        while Home Assistant stays away."""
        pause = 1.0
        while True:
            try:
                async with self._http().ws_connect(self.ws_url, heartbeat=30, max_msg_size=0) as ws:
                    await self._ws_auth(ws)
                    await ws.send_json(
                        {"id": 1, "type": "subscribe_events", "event_type": event_type}
                    )
                    pause = 1.0
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            _deliver(msg.json(), on_event, subscribed)
            except (aiohttp.ClientError, HAError, TimeoutError, TypeError, ValueError) as err:
                _LOGGER.info("watching %s events: %s; again in %g s", event_type, err, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    async def _ws_auth(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        hello = await ws.receive_json(timeout=REQUEST_TIMEOUT_S)
        if hello.get("type") != "auth_required":
            raise HAError("unexpected WebSocket greeting from Home Assistant")
        await ws.send_json({"type": "auth", "access_token": self._token})
        if (await ws.receive_json(timeout=REQUEST_TIMEOUT_S)).get("type") != "auth_ok":
            raise HAError("Home Assistant rejected the access token on the WebSocket")

    # ---- typed helpers --------------------------------------------------------------------

    async def bridge_devices(self, device_id: str | None = None) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"type": "esp_mcp_bridge/devices"}
        if device_id is not None:
            payload["device_id"] = device_id
        try:
            result = await self.ws_command(payload)
        except WSCommandError as err:
            if err.code == "unknown_command":
                raise HAError(
                    "the esp_mcp_bridge integration is not loaded in Home Assistant "
                    "(WebSocket command esp_mcp_bridge/devices unknown); add the integration"
                ) from err
            if err.code == "not_found":
                return []
            raise
        devices = result.get("devices") if isinstance(result, dict) else None
        return [d for d in devices or [] if isinstance(d, dict)]

    async def bridge_alerts(
        self,
        device_id: str | None = None,
        since: datetime | None = None,
        min_severity: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"type": "esp_mcp_bridge/alerts", "limit": limit}
        if device_id is not None:
            payload["device_id"] = device_id
        if since is not None:
            payload["since"] = since.isoformat()
        if min_severity is not None:
            payload["min_severity"] = min_severity
        result = await self.ws_command(payload)
        alerts = result.get("alerts") if isinstance(result, dict) else None
        return [a for a in alerts or [] if isinstance(a, dict)]

    async def history(
        self, entity_id: str, start: datetime, end: datetime
    ) -> list[tuple[float, str]]:
        """(unix seconds, state) changes of one entity between start and end."""
        result = await self.ws_command(
            {
                "type": "history/history_during_period",
                "entity_ids": [entity_id],
                "start_time": start.isoformat(),
                "end_time": end.isoformat(),
                "minimal_response": True,
                "no_attributes": True,
                "significant_changes_only": False,
                "include_start_time_state": True,
            }
        )
        rows = result.get(entity_id, []) if isinstance(result, dict) else []
        out: list[tuple[float, str]] = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            ts = row.get("lu", row.get("lc"))
            if isinstance(ts, int | float) and "s" in row:
                out.append((float(ts), str(row["s"])))
        return out

    async def statistics(
        self, statistic_id: str, start: datetime, end: datetime, period: str
    ) -> list[dict[str, Any]]:
        """Long-term statistics rows (start as unix seconds, mean, min, max)."""
        result = await self.ws_command(
            {
                "type": "recorder/statistics_during_period",
                "start_time": start.isoformat(),
                "end_time": end.isoformat(),
                "statistic_ids": [statistic_id],
                "period": period,
                "types": ["mean", "min", "max"],
            }
        )
        rows = result.get(statistic_id, []) if isinstance(result, dict) else []
        out: list[dict[str, Any]] = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            start_v = row.get("start")
            if isinstance(start_v, str):
                start_s = datetime.fromisoformat(start_v).timestamp()
            elif isinstance(start_v, int | float):
                start_s = float(start_v) / 1000.0 if start_v > 1e11 else float(start_v)
            else:
                continue
            out.append({**row, "start": start_s})
        return out


def _deliver(
    data: Any, on_event: Callable[[dict[str, Any]], None], subscribed: asyncio.Event
) -> None:
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "result" and item.get("success"):
            subscribed.set()
        event = item.get("event")
        if item.get("type") == "event" and isinstance(event, dict):
            payload = event.get("data")
            on_event(payload if isinstance(payload, dict) else {})


class WSCommandError(HAError):
    """A WebSocket command answered success=false."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Home Assistant error {code}: {message}")
        self.code = code
