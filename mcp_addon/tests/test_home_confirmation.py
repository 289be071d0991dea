"""Confirmation in Home Assistant for clients that cannot ask the user: a persistent
notification and a phone notification with Approve/Deny, answered by the phone's
mobile_app_notification_action event or on the add-on's page; progress while waiting; done,
declined or expired. Against the fake Home Assistant (the real one: test_real_system.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
import re
from typing import Any

from addon_clients import USER_TOKEN, data, error_text, http_server, http_session
from addon_fakes import DeviceResponder, FakeHomeAssistant
import httpx2
from mcp_types import CallToolResult
import pytest

from esp_mcp_server.ha_confirm import markdown_text
from harness._process import async_wait_until

VALVE = {"device_id": "greenhouse-1", "actuator_id": "valve"}
PHONE = "notify.mobile_app_phone"


@pytest.fixture(scope="module")
def ask_url(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    extra = {"CONFIRM_IN_HOME_ASSISTANT": "true", "NOTIFY_SERVICE": "mobile_app_phone"}
    log = tmp_path_factory.mktemp("ask") / "server.log"
    with http_server({**env, **extra, "CONFIRM_TTL_S": "60"}, log) as url:
        yield url


def valve_writes(responder: DeviceResponder) -> list[dict[str, Any]]:
    return [c for c in responder.commands("greenhouse-1") if c.get("action") == "write"]


class Asked:
    """One control_actuator call waiting for the user in Home Assistant."""

    def __init__(self, ha: FakeHomeAssistant, since: int) -> None:
        self.ha = ha
        self.since = since
        self.progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total, message))

    def calls(self, domain: str, service: str) -> list[dict[str, Any]]:
        return [
            c["data"]
            for c in self.ha.service_calls[self.since :]
            if (c["domain"], c["service"]) == (domain, service)
        ]

    async def shown(self) -> dict[str, Any]:
        """The persistent notification, once the first progress note says the call waits."""

        async def waiting() -> bool:
            return bool(self.progress) and bool(self.calls("persistent_notification", "create"))

        await async_wait_until(waiting, 30, "the question in Home Assistant")
        return self.calls("persistent_notification", "create")[-1]

    async def phone_actions(self) -> dict[str, str]:
        await self.shown()
        phone = [c for c in self.calls("notify", "mobile_app_phone") if "actions" in c["data"]]
        assert len(phone) == 1
        return {a["title"]: a["action"] for a in phone[0]["data"]["actions"]}


async def press(ha: FakeHomeAssistant, action: str) -> None:
    """What the phone does when a notification's button is pressed."""
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{ha.url}/api/events/mobile_app_notification_action",
            json={"action": action},
            headers={"Authorization": f"Bearer {USER_TOKEN}"},
        )
    assert response.status_code == 200


async def ask(
    url: str, ha: FakeHomeAssistant, value: float
) -> tuple[Asked, asyncio.Task[CallToolResult], Any]:
    asked = Asked(ha, len(ha.service_calls))
    cm = http_session(url)
    session = await cm.__aenter__()
    task = asyncio.create_task(
        session.call_tool(
            "control_actuator", {**VALVE, "value": value}, progress_callback=asked.on_progress
        )
    )
    return asked, task, cm


async def test_approved_on_the_phone(
    ask_url: str, fake_ha: FakeHomeAssistant, responder: DeviceResponder
) -> None:
    before = len(valve_writes(responder))
    asked, task, cm = await ask(ask_url, fake_ha, 55)
    try:
        shown = await asked.shown()
        actions = await asked.phone_actions()
        assert len(valve_writes(responder)) == before  # nothing until a person approves
        await press(fake_ha, actions["Approve"])
        result = await task
    finally:
        await cm.__aexit__(None, None, None)
    done = data(result)
    assert done["status"] == "done"
    assert done["value"] == 55
    assert valve_writes(responder)[-1]["value"] == 55
    assert markdown_text('"Irrigation valve" (valve) on greenhouse-1 to 55 %') in shown["message"]
    rid = shown["notification_id"].removeprefix("esp_mcp_bridge_confirm_")
    assert actions == {"Approve": f"ESP_MCP_APPROVE_{rid}", "Deny": f"ESP_MCP_DENY_{rid}"}
    # The model never sees the request's id (nor the page's secret).
    assert rid not in str(result.content)
    assert asked.progress[0][1] == 60
    assert "waiting for the user's answer in Home Assistant" in str(asked.progress[0][2])
    # Afterwards the question is withdrawn everywhere.
    dismissed = asked.calls("persistent_notification", "dismiss")
    assert dismissed == [{"notification_id": shown["notification_id"]}]
    cleared = [c for c in asked.calls("notify", "mobile_app_phone") if "actions" not in c["data"]]
    assert cleared == [{"message": "clear_notification", "data": {"tag": shown["notification_id"]}}]


async def test_denied_on_the_phone(
    ask_url: str, fake_ha: FakeHomeAssistant, responder: DeviceResponder
) -> None:
    before = len(valve_writes(responder))
    asked, task, cm = await ask(ask_url, fake_ha, 60)
    try:
        actions = await asked.phone_actions()
        await press(fake_ha, actions["Approve"] + "x")  # another request's: ignored
        await press(fake_ha, actions["Deny"])
        result = data(await task)
    finally:
        await cm.__aexit__(None, None, None)
    assert result["status"] == "declined"
    assert "value" not in result
    assert len(valve_writes(responder)) == before


async def test_approved_on_the_page(
    ask_url: str, fake_ha: FakeHomeAssistant, responder: DeviceResponder
) -> None:
    """The persistent notification links to a page of the add-on: GET only shows the question,
    the Approve button (POST) answers it; a wrong secret is unknown."""
    asked, task, cm = await ask(ask_url, fake_ha, 65)
    try:
        shown = await asked.shown()
        match = re.search(r"\]\((http://[^)]+/confirm/[^)]+)\)", shown["message"])
        assert match is not None, shown["message"]
        link = match.group(1)
        async with httpx2.AsyncClient(timeout=30) as client:
            page = await client.get(link)
            wrong = await client.post(link[:-3] + "xyz", data={"answer": "approve"})
            assert not task.done()
            answered = await client.post(
                link, data={"answer": "approve"}, headers={"Origin": ask_url.rsplit("/", 1)[0]}
            )
        result = data(await task)
    finally:
        await cm.__aexit__(None, None, None)
    assert page.status_code == 200
    assert "Allow this? It will set &quot;Irrigation valve&quot;" in page.text
    assert wrong.status_code == 404
    assert answered.status_code == 200
    assert result["status"] == "done"
    assert valve_writes(responder)[-1]["value"] == 65


async def test_nobody_answers_expired(
    env: dict[str, str], fake_ha: FakeHomeAssistant, responder: DeviceResponder, tmp_path: Path
) -> None:
    before = len(valve_writes(responder))
    extra = {"CONFIRM_IN_HOME_ASSISTANT": "true", "CONFIRM_TTL_S": "2"}
    with http_server({**env, **extra}, tmp_path / "server.log") as url:
        since = len(fake_ha.service_calls)
        async with http_session(url) as session:
            result = data(await session.call_tool("control_actuator", {**VALVE, "value": 70}))
    calls = [(c["domain"], c["service"]) for c in fake_ha.service_calls[since:]]
    assert result["status"] == "expired"
    assert len(valve_writes(responder)) == before
    assert ("persistent_notification", "create") in calls
    assert ("persistent_notification", "dismiss") in calls
    assert not any(domain == "notify" for domain, _ in calls)  # no phone configured


async def test_cannot_ask_is_refused(
    env: dict[str, str], fake_ha: FakeHomeAssistant, responder: DeviceResponder, tmp_path: Path
) -> None:
    """Home Assistant refusing the notification: nothing shown, nothing done, and it says so."""
    before = len(valve_writes(responder))
    fake_ha.failing_services.add("persistent_notification.create")
    try:
        env2 = {**env, "CONFIRM_IN_HOME_ASSISTANT": "true"}
        with http_server(env2, tmp_path / "server.log") as url:
            async with http_session(url) as session:
                result = await session.call_tool("control_actuator", {**VALVE, "value": 75})
    finally:
        fake_ha.failing_services.discard("persistent_notification.create")
    assert "Home Assistant could not either" in error_text(result)
    assert len(valve_writes(responder)) == before


def test_device_text_cannot_become_a_link_in_the_notification() -> None:
    """Device names reach the question in Home Assistant's markdown: escaped, a name like
    '[Approve](https://evil.example)' stays text (no link, image, HTML or bare URL)."""
    text = markdown_text('set "[Approve](https://evil.example) ![x](y) <img>" (valve) to 5 %')
    assert re.search(r"(?<!\\)[][()<>!:]", text) is None, text  # each one escaped
    assert (
        text.replace("\\", "")
        == 'set "[Approve](https://evil.example) ![x](y) <img>" (valve) to 5 %'
    )
