"""The ESPHome host device in discovery mode mqtt with a plain Home Assistant.

A stack of its own: a broker, the ESPHome device (fresh preferences, so mode mqtt) and a
Home Assistant with only its MQTT integration. The device's discovery message gives one
entity per listed ESPHome entity, on the platform the protocol's table names, and HA's
service calls reach ESPHome's entities.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import importlib.util
import os
from pathlib import Path
import subprocess
from typing import Any, cast

from e2e_support import make_state_dir
import pytest

from harness import Broker, HomeAssistant
from harness._process import async_wait_until
from harness.ha_client import HaClient

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "esphome-host"
# capability id -> HA platform (protocol §13.1: type led/light -> light)
PLATFORMS = {
    "temperature": "sensor",
    "ramp": "sensor",
    "no_reading": "sensor",
    "presses": "sensor",
    "identifies": "sensor",
    "door": "binary_sensor",
    "phase": "sensor",
    "led": "light",
    "stuck": "switch",
    "valve": "number",
    "fan_mode": "select",
    "buzzer": "button",
    "display": "text",
    "lamp": "light",
}


@dataclass
class Plain:
    broker: Broker
    hass: HomeAssistant


def _host_program() -> Path:
    path = ROOT / "tests" / "esphome" / "esphome_support.py"
    spec = importlib.util.spec_from_file_location("esphome_support", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(Path, module.build_host_program())


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plain]:
    program = _host_program()
    state = make_state_dir(tmp_path_factory, "esphome-plain")
    (state / "logs").mkdir(exist_ok=True)
    with Broker(state, username="plain", password="plain-pw-2", log_name="mosquitto") as broker:
        env = {
            **os.environ,
            "MCP_BRIDGE_BROKER_URI": broker.url,
            "MCP_BRIDGE_USERNAME": "plain",
            "MCP_BRIDGE_PASSWORD": "plain-pw-2",
            "ESPHOME_PREFDIR": str(state / "prefs"),
        }
        with (state / "logs" / "esphome-host.log").open("ab") as log:
            proc = subprocess.Popen([str(program)], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                with HomeAssistant(state, with_integration=False) as hass:
                    hass.setup_mqtt(broker)
                    yield Plain(broker, hass)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


async def _entities(ha: HaClient) -> dict[str, dict[str, Any]]:
    """The device's MQTT entities by unique id ({D}_{id})."""
    prefix = f"{DEVICE}_"
    return {
        str(e["unique_id"]): e
        for e in await ha.entity_registry()
        if e["platform"] == "mqtt" and str(e.get("unique_id", "")).startswith(prefix)
    }


async def test_entities_as_declared_and_service_calls(plain: Plain) -> None:
    async with plain.hass.client() as ha:
        wanted = {f"{DEVICE}_{cap}" for cap in PLATFORMS}

        async def discovered() -> bool:
            return wanted <= set(await _entities(ha))

        # a fresh device holds its discovery back for 5 s (protocol §13.4)
        await async_wait_until(discovered, 45, "MQTT entities from the ESPHome device")
        entities = await _entities(ha)
        assert set(entities) == wanted
        for cap, platform in PLATFORMS.items():
            entity_id = entities[f"{DEVICE}_{cap}"]["entity_id"]
            assert entity_id.split(".")[0] == platform, (cap, entity_id)

        temperature = entities[f"{DEVICE}_temperature"]["entity_id"]
        await ha.wait_state(temperature, {"21.5"}, within=30)
        led = entities[f"{DEVICE}_led"]["entity_id"]
        door = entities[f"{DEVICE}_door"]["entity_id"]
        await ha.wait_state(led, "off", within=30)
        # HA's light turns ESPHome's template switch on; the template binary sensor that
        # reads the switch follows
        await ha.call_service("light", "turn_on", {"entity_id": led})
        await ha.wait_state(led, "on", within=15)
        await ha.wait_state(door, "on", within=15)
        valve = entities[f"{DEVICE}_valve"]["entity_id"]
        await ha.call_service("number", "set_value", {"entity_id": valve, "value": 35})
        await ha.wait_state(valve, {"35", "35.0"}, within=15)
        fan = entities[f"{DEVICE}_fan_mode"]["entity_id"]
        await ha.call_service("select", "select_option", {"entity_id": fan, "option": "high"})
        await ha.wait_state(fan, "high", within=15)
