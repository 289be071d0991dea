"""Completions of device, sensor and actuator ids, the resources of single sensors and
actuators, and the resource list-changed notification when a device comes or goes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from addon_clients import SERVER_TOKEN, USER_TOKEN, http_server, http_session, server_env
from addon_fakes import DeviceResponder, FakeHomeAssistant, populate
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    PromptReference,
    ResourceListChangedNotification,
    ResourceTemplateReference,
    ServerNotification,
    TextResourceContents,
)
import pytest

from harness._process import async_wait_until

SENSORS = ResourceTemplateReference(uri="esp-mcp://devices/{device_id}/sensors/{sensor_id}")
ACTUATORS = ResourceTemplateReference(uri="esp-mcp://devices/{device_id}/actuators/{actuator_id}")


async def test_device_ids_complete(http_url: str) -> None:
    async with http_session(http_url) as session:
        everything = await session.complete(
            PromptReference(name="diagnose_device"), {"name": "device_id", "value": ""}
        )
        lamp = await session.complete(SENSORS, {"name": "device_id", "value": "La"})
        none = await session.complete(SENSORS, {"name": "device_id", "value": "zz"})
    assert everything.completion.values == ["greenhouse-1", "lamp-1", "mute-1", "sensor-node-1"]
    assert lamp.completion.values == ["lamp-1"]
    assert none.completion.values == []


async def test_sensor_and_actuator_ids_complete_for_the_chosen_device(http_url: str) -> None:
    async with http_session(http_url) as session:
        sensors = await session.complete(
            SENSORS,
            {"name": "sensor_id", "value": ""},
            context_arguments={"device_id": "greenhouse-1"},
        )
        actuators = await session.complete(
            ACTUATORS,
            {"name": "actuator_id", "value": "v"},
            context_arguments={"device_id": "greenhouse-1"},
        )
        other = await session.complete(
            ACTUATORS,
            {"name": "actuator_id", "value": ""},
            context_arguments={"device_id": "lamp-1"},
        )
    assert "temperature" in sensors.completion.values
    assert actuators.completion.values == ["valve"]
    assert "valve" not in other.completion.values
    assert "led" in other.completion.values


async def test_item_resources(http_url: str) -> None:
    async with http_session(http_url) as session:
        valve = await session.read_resource("esp-mcp://devices/greenhouse-1/actuators/valve")
        with pytest.raises(Exception, match="did you mean: valve"):
            await session.read_resource("esp-mcp://devices/greenhouse-1/actuators/valv")
        sensor = await session.read_resource("esp-mcp://devices/greenhouse-1/sensors/temperature")
    first, second = valve.contents[0], sensor.contents[0]
    assert isinstance(first, TextResourceContents)
    assert isinstance(second, TextResourceContents)
    assert json.loads(first.text)["requires_confirmation"] is True
    assert json.loads(second.text)["entity_id"].startswith("sensor.")


async def test_list_changed_when_a_device_comes_and_goes(mosquitto: int, tmp_path: Path) -> None:
    """Home Assistant's device registry changes: the server looks again, and a client that
    listed the resources is told the list changed, once per change, also after the server's
    WebSocket to Home Assistant dropped."""
    ha = FakeHomeAssistant(tokens={SERVER_TOKEN, USER_TOKEN})
    populate(ha)
    ha.start()
    notes: list[ServerNotification] = []

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceListChangedNotification):
            notes.append(message)

    async def registry(action: str) -> None:
        async with httpx2.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{ha.url}/api/events/device_registry_updated",
                json={"action": action, "device_id": "abc"},
                headers={"Authorization": f"Bearer {USER_TOKEN}"},
            )
        assert response.status_code == 200

    try:
        env = server_env(ha, mosquitto, LOG_LEVEL="DEBUG")
        with http_server(env, tmp_path / "server.log") as url:
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {USER_TOKEN}"}) as client,
                streamable_http_client(url, http_client=client) as (read, write),
                ClientSession(read, write, message_handler=on_message) as session,
            ):
                init = await session.initialize()
                before = await session.read_resource("esp-mcp://devices")
                await session.list_resources()

                async def watching() -> bool:
                    return ha.subscribers("device_registry_updated") > 0

                await async_wait_until(watching, 30, "the server to watch the registry")
                await registry("update")  # nothing came or went: no notification
                newcomer = copy.deepcopy(ha.devices[0])
                newcomer["device_id"] = "newcomer-1"
                ha.devices.append(newcomer)
                await registry("create")

                async def told(count: int) -> bool:
                    return len(notes) >= count

                await async_wait_until(lambda: told(1), 30, "the list-changed notification")
                after = await session.read_resource("esp-mcp://devices")
                ha.devices.pop()
                ha.drop_websockets()  # Home Assistant restarting: the server watches again
                await async_wait_until(watching, 30, "the server to watch the registry again")
                await registry("remove")
                await async_wait_until(lambda: told(2), 30, "the second notification")
    finally:
        ha.stop()
    assert init.capabilities.resources is not None
    assert init.capabilities.resources.list_changed is True
    assert len(notes) == 2
    first, second = before.contents[0], after.contents[0]
    assert isinstance(first, TextResourceContents)
    assert isinstance(second, TextResourceContents)
    assert "newcomer-1" not in first.text
    assert "newcomer-1" in second.text


async def test_progress_while_waiting_for_the_device(http_url: str) -> None:
    """A client that asked for progress hears that the command went out and how long the
    server waits for the device."""
    notes: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, total, message))

    async with http_session(http_url) as session:
        led = await session.call_tool(
            "control_actuator",
            {"device_id": "lamp-1", "actuator_id": "led", "value": True},
            progress_callback=on_progress,
        )
        diagnosed = await session.call_tool(
            "device_diagnostics", {"device_id": "lamp-1"}, progress_callback=on_progress
        )
    assert not led.is_error
    assert not diagnosed.is_error
    messages = [str(m) for _, _, m in notes]
    assert any(m.startswith("sent to lamp-1; waiting up to") for m in messages), messages
    assert any(m.startswith("pinging lamp-1") for m in messages), messages


async def test_noop_tool_only_when_asked(
    env: dict[str, str], http_url: str, responder: DeviceResponder, tmp_path: Path
) -> None:
    """The benchmark's no-op tool: not listed by default; with NOOP_TOOL it answers like
    control_actuator and sends nothing."""
    async with http_session(http_url) as session:
        default = [t.name for t in (await session.list_tools()).tools]
    sent = len(responder.commands("lamp-1"))
    with http_server({**env, "NOOP_TOOL": "true"}, tmp_path / "server.log") as url:
        async with http_session(url) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool(
                "noop", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
            )
    assert "noop" not in default
    assert "noop" in names
    assert result.structured_content is not None
    assert result.structured_content["status"] == "done"
    assert len(responder.commands("lamp-1")) == sent
