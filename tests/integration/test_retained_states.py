"""Retained actuator states that arrive before the device's capabilities."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from .conftest import BASE, DEVICE, adopt

RETAINED = {"heater": True, "valve": 35, "fan_mode": "manual", "display_text": "hello"}
EXPECTED = {
    "switch.greenhouse_heater": "on",
    "select.greenhouse_fan_mode": "manual",
    "text.greenhouse_display_text": "hello",
}


def _retained_state(
    hass: HomeAssistant, actuator_id: str, value: Any, device_id: str, retain: bool = True
) -> None:
    async_fire_mqtt_message(
        hass,
        f"{BASE}/{device_id}/actuators/{actuator_id}/state",
        json.dumps({"value": value}),
        retain=retain,
    )


async def test_states_before_capabilities_are_applied(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """An entry set up after HA started gets the retained states first (wildcards)."""
    for actuator_id, value in RETAINED.items():
        _retained_state(hass, actuator_id, not value if value is True else value, DEVICE)
        # A live change before the capabilities: the newest state counts.
        _retained_state(hass, actuator_id, value, DEVICE, retain=False)
    await hass.async_block_till_done()
    await adopt(hass, caps)
    for entity_id, state in EXPECTED.items():
        assert hass.states.get(entity_id).state == state, entity_id
    assert float(hass.states.get("number.greenhouse_irrigation_valve").state) == 35


async def test_states_before_capabilities_are_bounded(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """A flood of states of unknown devices keeps only the newest few."""
    with patch("custom_components.esp_mcp_bridge.manager.MAX_EARLY_STATES", 2):
        for index in range(50):
            _retained_state(hass, "heater", True, f"ghost-{index}")
        for actuator_id, value in RETAINED.items():
            _retained_state(hass, actuator_id, value, DEVICE)
        await hass.async_block_till_done()
        assert len(loaded.runtime_data.early_states) == 2
    await adopt(hass, caps)
    assert hass.states.get("switch.greenhouse_heater").state == STATE_UNKNOWN
    assert hass.states.get("number.greenhouse_irrigation_valve").state == STATE_UNKNOWN
    assert hass.states.get("select.greenhouse_fan_mode").state == "manual"
    assert hass.states.get("text.greenhouse_display_text").state == "hello"
    assert loaded.runtime_data.early_states == {}


async def test_invalid_early_state_is_logged_and_dropped(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    caps: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A buffered state the capabilities do not allow is refused when they arrive."""
    _retained_state(hass, "fan_mode", "turbo", DEVICE)
    _retained_state(hass, "no_such_actuator", 1, DEVICE)
    await hass.async_block_till_done()
    await adopt(hass, caps)
    assert hass.states.get("select.greenhouse_fan_mode").state == STATE_UNKNOWN
    assert caplog.text.count("Ignoring invalid actuator_state") == 1
