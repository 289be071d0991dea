"""An ESPHome device (the external component's host example) in the real system.

The device is built with ESPHome (tests/esphome caches the build), joins the system's
broker, is taken over by the integration like any bridge device, and an agent controls a
template switch through the MCP server: ESPHome's own state changes (a template binary
sensor that follows the switch reports it) and so do HA's entities. A template sensor's
readings reach read_sensor with their history.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import importlib.util
import os
from pathlib import Path
import subprocess
from types import ModuleType
from typing import Any, cast

from e2e_support import System, make_state_dir
import pytest

from harness._process import async_wait_until
from harness.ha_client import HaClient
from harness.mcp_client import McpSession, ToolResult, mcp_session

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "esphome-host"


def _esphome_support() -> ModuleType:
    path = ROOT / "tests" / "esphome" / "esphome_support.py"
    spec = importlib.util.spec_from_file_location("esphome_support", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Session scope: once it joined, the device stays online for the rest of the test run, as the
# other devices do (later tests expect every device of the integration online).
@pytest.fixture(scope="session")
def esphome_device(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    program = cast(Path, _esphome_support().build_host_program())
    state = make_state_dir(tmp_path_factory, "esphome")
    (state / "logs").mkdir(exist_ok=True)
    broker = system.broker
    env = {
        **os.environ,
        "MCP_BRIDGE_BROKER_URI": broker.url,
        "MCP_BRIDGE_USERNAME": broker.username or "",
        "MCP_BRIDGE_PASSWORD": broker.password or "",
        "ESPHOME_PREFDIR": str(state / "prefs"),
    }
    with (state / "logs" / "esphome-host.log").open("ab") as log:
        proc = subprocess.Popen([str(program)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def _device(ha: HaClient) -> dict[str, Any] | None:
    result = await ha.ws("esp_mcp_bridge/devices", device_id=DEVICE)
    devices: list[dict[str, Any]] = result["devices"]
    return devices[0] if devices else None


async def _entity(ha: HaClient, kind: str, item: str) -> str:
    """The entity of one capability, once the integration has created it."""
    found: dict[str, str] = {}

    async def created() -> bool:
        device = await _device(ha)
        entity_id = device["entities"][kind].get(item) if device else None
        if isinstance(entity_id, str) and await ha.state(entity_id) is not None:
            found["entity_id"] = entity_id
            return True
        return False

    await async_wait_until(created, 30, f"the entity of {kind}/{item}")
    return found["entity_id"]


async def _call_ok(mcp: McpSession, tool: str, **args: Any) -> ToolResult:
    result = await mcp.call(tool, **args)
    assert not result.is_error, f"{tool}({args}) failed: {result.text}"
    return result


async def _known_to_mcp(mcp: McpSession) -> None:
    """The MCP server lists the device online (its device list follows HA's)."""

    async def listed() -> bool:
        result = await _call_ok(mcp, "list_devices")
        rows = {d["id"]: d for d in result.data["devices"]}
        return DEVICE in rows and bool(rows[DEVICE]["online"])

    await async_wait_until(listed, 30, "the ESPHome device in list_devices")


async def _online(ha: HaClient) -> None:
    async def online() -> bool:
        device = await _device(ha)
        return device is not None and bool(device["online"])

    await async_wait_until(online, 60, "the ESPHome device online in the integration")


@pytest.mark.usefixtures("esphome_device")
async def test_agent_toggles_an_esphome_switch(system: System) -> None:
    async with system.hass.client() as ha, mcp_session(system.mcp.url, system.client_token) as mcp:
        await _online(ha)
        led = await _entity(ha, "actuators", "led")
        door = await _entity(ha, "sensors", "door")
        assert led.startswith("light.")  # type led, as the capabilities say
        assert door.startswith("binary_sensor.")
        await _known_to_mcp(mcp)
        for wanted in (True, False, True):
            result = await _call_ok(
                mcp, "control_actuator", device_id=DEVICE, actuator_id="led", value=wanted
            )
            assert result.data["status"] == "done"
            assert result.data["value"] is wanted
            await ha.wait_state(led, "on" if wanted else "off", within=15)
            # ESPHome's template binary sensor reads the switch: its state really changed
            await ha.wait_state(door, "on" if wanted else "off", within=15)


@pytest.mark.usefixtures("esphome_device")
async def test_template_sensor_reaches_read_sensor_with_history(system: System) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    async with system.hass.client() as ha, mcp_session(system.mcp.url, system.client_token) as mcp:
        await _online(ha)
        entity_id = await _entity(ha, "sensors", "ramp")

        async def rows() -> int:
            history = await ha.history(entity_id, start.isoformat(), datetime.now(UTC).isoformat())
            return sum(1 for row in history if row["state"] not in {"unknown", "unavailable"})

        async def enough() -> bool:
            return await rows() >= 3

        await async_wait_until(enough, 40, "3 readings of the ramp in the recorder's history")
        await _known_to_mcp(mcp)
        result = await _call_ok(
            mcp,
            "read_sensor",
            device_id=DEVICE,
            sensor_id="ramp",
            start=start.isoformat(),
            end=datetime.now(UTC).isoformat(),
        )
        data = result.data
        assert data["unit"] == "%"
        assert data["stats"]["count"] >= 3
        assert 0 <= data["stats"]["min"] <= data["stats"]["max"] <= 100
