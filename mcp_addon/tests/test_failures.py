"""Failures an agent can act on, over stdio, with the server still serving afterwards."""

from __future__ import annotations

from addon_clients import data, error_text, server_env, stdio_session
from addon_fakes import FakeHomeAssistant, free_port
from mcp.shared.exceptions import MCPError
import pytest


async def test_home_assistant_unreachable(mosquitto: int, fake_ha: FakeHomeAssistant) -> None:
    env = server_env(fake_ha, mosquitto, HA_URL=f"http://127.0.0.1:{free_port()}")
    async with stdio_session(env) as session:
        first = await session.call_tool("list_devices", {})
        second = await session.call_tool("get_alerts", {})
        tools = await session.list_tools()
        with pytest.raises(MCPError, match="Home Assistant is unreachable"):
            await session.read_resource("esp-mcp://devices")
    assert "Home Assistant is unreachable" in error_text(first)
    assert "Home Assistant is unreachable" in error_text(second)
    assert len(tools.tools) == 8


async def test_home_assistant_rejects_server_token(
    mosquitto: int, fake_ha: FakeHomeAssistant
) -> None:
    env = server_env(fake_ha, mosquitto, HA_TOKEN="revoked")
    async with stdio_session(env) as session:
        result = await session.call_tool("list_devices", {})
    assert "rejected the access token" in error_text(result)


async def test_broker_unreachable(fake_ha: FakeHomeAssistant) -> None:
    env = server_env(fake_ha, free_port())
    async with stdio_session(env) as session:
        control = await session.call_tool(
            "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
        )
        reading = await session.call_tool(
            "read_sensor", {"device_id": "greenhouse-1", "sensor_id": "humidity"}
        )
        diagnostics = data(
            await session.call_tool("device_diagnostics", {"device_id": "greenhouse-1"})
        )
        system = data(await session.call_tool("get_metrics", {}))
    assert "MQTT broker unreachable" in error_text(control)
    assert data(reading)["value"] == 55
    ping = next(f for f in diagnostics["findings"] if f["check"] == "ping")
    assert ping["status"] == "skip"
    assert system["server"]["broker_connected"] is False


async def test_stdio_lists_and_reads(env: dict[str, str]) -> None:
    async with stdio_session(env) as session:
        tools = await session.list_tools()
        devices = data(await session.call_tool("list_devices", {"online": False}))
    assert {t.name for t in tools.tools} >= {"list_devices", "device_diagnostics"}
    assert [d["id"] for d in devices["devices"]] == ["sensor-node-1"]


async def test_websocket_reconnects_after_a_drop(
    env: dict[str, str], fake_ha: FakeHomeAssistant
) -> None:
    async with stdio_session(env) as session:
        first = data(await session.call_tool("get_alerts", {"limit": 1}))
        connections = fake_ha.ws_connections
        fake_ha.drop_websockets()
        second = data(await session.call_tool("get_alerts", {"limit": 1}))
    assert first == second
    assert fake_ha.ws_connections == connections + 1
