"""The shipped automation blueprints, run by Home Assistant's blueprint integration.

Each test copies blueprints/ into the test's configuration folder, sets up an automation
with ``use_blueprint`` the way a user's automations.yaml does, and drives it with real
entities of this integration (the reference device on the mocked broker).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.esp_mcp_bridge.const import DOMAIN, EVENT_DEVICE_ERROR

from .conftest import DEVICE, Device, find_device, fire

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints" / "automation" / DOMAIN
OFFLINE = f"{DOMAIN}/device_offline_or_error.yaml"
THRESHOLD = f"{DOMAIN}/threshold_switch.yaml"
STATUS = "binary_sensor.greenhouse_status"
TEMPERATURE = "sensor.greenhouse_temperature"


@pytest.fixture
def blueprint_config(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A configuration folder holding the shipped blueprints where HA looks for them."""
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / DOMAIN)
    hass.config.config_dir = str(tmp_path)
    return tmp_path


async def use_blueprint(hass: HomeAssistant, path: str, alias: str, **inputs: Any) -> str:
    """Set up one automation from a blueprint; returns its entity id."""
    config = {"automation": [{"alias": alias, "use_blueprint": {"path": path, "input": inputs}}]}
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    entity_id = f"automation.{alias.lower().replace(' ', '_')}"
    state = hass.states.get(entity_id)
    # An invalid blueprint or input leaves no automation (only a log line).
    assert state is not None, f"{path} did not load"
    assert state.state == STATE_ON
    return entity_id


def _inputs(name: str) -> dict[str, Any]:
    # HA's own YAML loader: it knows the !input tag.
    inputs: dict[str, Any] = yaml_util.load_yaml_dict(BLUEPRINTS / name)["blueprint"]["input"]
    return inputs


@pytest.mark.parametrize("name", ["device_offline_or_error.yaml", "threshold_switch.yaml"])
def test_blueprint_selectors_pick_bridged_entities(name: str) -> None:
    """Every entity input offers only this integration's entities."""
    entity_inputs = [
        spec["selector"]["entity"]
        for spec in _inputs(name).values()
        if "entity" in (spec or {}).get("selector", {})
    ]
    assert entity_inputs
    for selector in entity_inputs:
        assert all(f["integration"] == DOMAIN for f in selector["filter"])


async def _notifications(hass_ws_client: WebSocketGenerator) -> list[dict[str, Any]]:
    client = await hass_ws_client()
    await client.send_json_auto_id({"type": "persistent_notification/get"})
    answer = await client.receive_json()
    assert answer["success"]
    result: list[dict[str, Any]] = answer["result"]
    return result


async def test_offline_for_a_while_notifies(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    blueprint_config: Path,
    freezer: FrozenDateTimeFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Offline longer than the chosen time: the default action creates a notification."""
    assert hass.states.get(STATUS).state == STATE_ON
    assert await async_setup_component(hass, "persistent_notification", {})
    await use_blueprint(
        hass, OFFLINE, "Device alert", status_sensors=[STATUS], offline_for={"minutes": 5}
    )

    # A short outage is not worth a notification.
    fire(hass, "status", "offline")
    await hass.async_block_till_done()
    assert hass.states.get(STATUS).state == STATE_OFF
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    fire(hass, "status", "online")
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=4))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert await _notifications(hass_ws_client) == []

    fire(hass, "status", "offline")
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=5, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    notes = await _notifications(hass_ws_client)
    assert [n["title"] for n in notes] == ["Greenhouse is offline"]
    assert notes[0]["message"].startswith("Greenhouse has been offline since ")


async def test_errors_of_the_chosen_severity_notify(
    hass: HomeAssistant, adopted: MockConfigEntry, blueprint_config: Path
) -> None:
    """Device errors at or above the severity reach the chosen action; others do not."""
    calls = async_mock_service(hass, "notify", "phone")
    await use_blueprint(
        hass,
        OFFLINE,
        "Device alert",
        status_sensors=[STATUS],
        min_severity=2,
        notify_action=[
            {"action": "notify.phone", "data": {"title": "{{ title }}", "message": "{{ message }}"}}
        ],
    )
    fire(hass, "error", {"type": "sensor_read", "code": 7, "message": "minor", "severity": 1})
    await hass.async_block_till_done()
    assert calls == []

    fire(hass, "error", {"type": "sensor_read", "code": 28673, "message": "DHT22", "severity": 2})
    await hass.async_block_till_done()
    assert [c.data for c in calls] == [
        {
            "title": "Greenhouse reported an error",
            "message": "sensor_read (code 28673, severity 2): DHT22",
        }
    ]

    # An error of a device that is not watched is left alone.
    other = find_device(hass, (DOMAIN, DEVICE))
    assert other is not None
    hass.bus.async_fire(
        EVENT_DEVICE_ERROR,
        {"device_id": "not-" + other.id, "type": "memory", "code": 1, "message": "x",
         "severity": 9, "critical": True},
    )  # fmt: skip
    await hass.async_block_till_done()
    assert len(calls) == 1


async def _reading(hass: HomeAssistant, value: float) -> None:
    fire(hass, "sensors/temperature", {"value": value})
    await hass.async_block_till_done()
    # The actuator's command waits for the device's response.
    await hass.async_block_till_done(wait_background_tasks=True)


def _writes(device: Device, actuator: str) -> list[Any]:
    return [body["value"] for body in device.sent(f"/actuators/{actuator}/set")]


async def test_threshold_switch_inverted_heater(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device, blueprint_config: Path
) -> None:
    """Inverted: on below the lower threshold, off above the upper one, nothing between."""
    heater = "switch.greenhouse_heater"
    await use_blueprint(
        hass,
        THRESHOLD,
        "Greenhouse heating",
        sensor=TEMPERATURE,
        actuator=heater,
        upper=25,
        lower=18,
        mode="on_below",
    )
    await _reading(hass, 20)
    assert _writes(device, "heater") == []

    await _reading(hass, 15)
    assert _writes(device, "heater") == [True]
    assert hass.states.get(heater).state == STATE_ON

    await _reading(hass, 22)  # inside the band: hysteresis keeps it on
    assert _writes(device, "heater") == [True]

    await _reading(hass, 26)
    assert _writes(device, "heater") == [True, False]
    assert hass.states.get(heater).state == STATE_OFF


async def test_threshold_switch_light_on_above(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device, blueprint_config: Path
) -> None:
    """Default direction with a light: on above the upper threshold, off below the lower."""
    led = "light.greenhouse_led"
    await use_blueprint(
        hass, THRESHOLD, "Warm light", sensor=TEMPERATURE, actuator=led, upper=30, lower=28
    )
    await _reading(hass, 31)
    assert hass.states.get(led).state == STATE_ON
    await _reading(hass, 29)
    assert hass.states.get(led).state == STATE_ON
    await _reading(hass, 27.5)
    assert hass.states.get(led).state == STATE_OFF
    assert _writes(device, "led") == [True, False]
