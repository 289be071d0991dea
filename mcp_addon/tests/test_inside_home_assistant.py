"""Inside Home Assistant: HA through the Supervisor's proxy (which only accepts the add-on's
token), the broker from the Supervisor's MQTT service, and client tokens checked and used
against Home Assistant Core directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from addon_clients import ADDON_DIR, SERVER_TOKEN, USER_TOKEN, http_server, http_session
from addon_fakes import DeviceResponder, FakeHomeAssistant, populate, wait_until
import httpx2
import pytest


@pytest.fixture
def supervisor(mosquitto: int) -> Iterator[FakeHomeAssistant]:
    proxy = FakeHomeAssistant(tokens={SERVER_TOKEN})
    populate(proxy)
    proxy.supervisor_mqtt = {"host": "127.0.0.1", "port": mosquitto, "ssl": False}
    proxy.start()
    yield proxy
    proxy.stop()


async def test_client_tokens_go_to_core(
    supervisor: FakeHomeAssistant,
    fake_ha: FakeHomeAssistant,
    responder: DeviceResponder,
    tmp_path: Path,
) -> None:
    env = {
        "SUPERVISOR_TOKEN": SERVER_TOKEN,
        "SUPERVISOR_URL": supervisor.url,
        "HA_URL": supervisor.url,
        "HA_AUTH_URL": fake_ha.url,
        "PYTHONPATH": str(ADDON_DIR),
    }
    core_logbook = len(fake_ha.logbook)
    with http_server(env, tmp_path / "server.log") as url:
        async with httpx2.AsyncClient(timeout=30) as client:
            wrong = await client.post(url, json={}, headers={"Authorization": "Bearer nope"})
        async with http_session(url, USER_TOKEN) as session:
            devices = await session.call_tool("list_devices", {})
            led = await session.call_tool(
                "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
            )
    assert wrong.status_code == 401
    assert not devices.is_error
    assert not led.is_error, led.content
    assert led.structured_content is not None
    assert led.structured_content["value"] is True
    wait_until(lambda: len(fake_ha.logbook) > core_logbook, what="the logbook entry")
    entries = fake_ha.logbook[core_logbook:]
    assert [e["token"] for e in entries] == [USER_TOKEN]
    # written over a WebSocket to Core with the client's token, not an HTTP request each
    logged = [c for c in fake_ha.service_calls if c["domain"] == "logbook"]
    assert logged[-1]["via"] == "websocket"
    assert entries[0]["data"]["entity_id"] == "light.lamp_1_led"
    assert supervisor.logbook == []
    assert any(c["type"] == "esp_mcp_bridge/devices" for c in supervisor.ws_commands)
