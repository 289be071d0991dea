"""Actuator commands: id, acknowledged state, translated errors."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.esp_mcp_bridge.const import (
    CONF_ALL_DIAGNOSTICS,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
)

from .conftest import BASE, DEVICE, Device, adopt, fire


async def _call(
    hass: HomeAssistant, domain: str, service: str, entity_id: str, **data: Any
) -> None:
    await hass.services.async_call(
        domain, service, {ATTR_ENTITY_ID: entity_id, **data}, blocking=True
    )


async def test_light_turn_on_shows_acknowledged_state(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """The light sends a write with an id and shows what the device acknowledged."""
    assert hass.states.get("light.greenhouse_led").state != STATE_ON
    await _call(hass, "light", "turn_on", "light.greenhouse_led")
    sent = device.sent(f"{BASE}/{DEVICE}/actuators/led/set")
    assert len(sent) == 1
    assert sent[0]["action"] == "write"
    assert sent[0]["value"] is True
    assert sent[0]["id"].startswith("ha-")
    assert hass.states.get("light.greenhouse_led").state == STATE_ON
    await _call(hass, "light", "turn_off", "light.greenhouse_led")
    assert hass.states.get("light.greenhouse_led").state == STATE_OFF


async def test_acknowledged_not_optimistic(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """When the device acknowledges a different value, that value is shown."""
    device.handler = lambda topic, body: {"ok": True, "result": {"value": False}}
    await _call(hass, "switch", "turn_on", "switch.greenhouse_heater")
    assert hass.states.get("switch.greenhouse_heater").state == STATE_OFF
    device.handler = device.default_handler
    await _call(hass, "switch", "turn_on", "switch.greenhouse_heater")
    assert hass.states.get("switch.greenhouse_heater").state == STATE_ON
    await _call(hass, "switch", "turn_off", "switch.greenhouse_heater")
    assert hass.states.get("switch.greenhouse_heater").state == STATE_OFF


@pytest.mark.parametrize(
    "entry_options",
    [{CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True, CONF_ALL_DIAGNOSTICS: True}],
)
async def test_number_select_text_button(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """Every actuator platform sends its command and shows the result."""
    await _call(hass, "number", "set_value", "number.greenhouse_irrigation_valve", value=35)
    assert device.sent("/actuators/valve/set")[-1]["value"] == 35
    assert float(hass.states.get("number.greenhouse_irrigation_valve").state) == 35
    await _call(hass, "select", "select_option", "select.greenhouse_fan_mode", option="off")
    assert device.sent("/actuators/fan_mode/set")[-1]["value"] == "off"
    assert hass.states.get("select.greenhouse_fan_mode").state == "off"
    await _call(hass, "text", "set_value", "text.greenhouse_display_text", value="Hallo")
    assert hass.states.get("text.greenhouse_display_text").state == "Hallo"
    await _call(hass, "button", "press", "button.greenhouse_buzzer")
    assert device.sent("/actuators/buzzer/set")[-1]["action"] == "trigger"
    await _call(hass, "button", "press", "button.greenhouse_identify")
    await _call(hass, "button", "press", "button.greenhouse_restart")
    # Beyond what adopting the device sent (set_discovery, the first metrics request).
    adoption = ("set_discovery", "get_metrics")
    cmds = [c["cmd"] for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] not in adoption]
    assert cmds == ["identify", "restart"]


async def test_off_step_value_refused_before_sending(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """A value the device would reject is refused with a translated error, nothing sent."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "number", "set_value", "number.greenhouse_irrigation_valve", value=37)
    assert err.value.translation_key == "invalid_command"
    assert device.sent("/actuators/valve/set") == []


async def test_rejected_command_raises_translated_error(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """A device rejection surfaces code and message."""
    device.handler = lambda topic, body: {
        "ok": False,
        "error": {"code": "confirmation_required", "message": "confirm first"},
    }
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "light", "turn_on", "light.greenhouse_led")
    assert err.value.translation_key == "command_failed"
    assert err.value.translation_placeholders["code"] == "confirmation_required"
    assert "confirm first" in str(err.value)
    assert hass.states.get("light.greenhouse_led").state != STATE_ON


@pytest.mark.parametrize(
    "result",
    [{"ok": True, "result": {}}, {"ok": True, "result": {"value": "yes"}}],
)
async def test_bad_acknowledgement(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device, result: dict[str, Any]
) -> None:
    """An acknowledgement without a usable value is an error, not a guess."""
    device.handler = lambda topic, body: result
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "light", "turn_on", "light.greenhouse_led")
    assert err.value.translation_key == "command_failed"


async def test_unanswered_command_times_out(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """No response: a translated timeout error (bounded wait)."""
    device.handler = lambda topic, body: None
    manager = adopted.runtime_data
    assert manager.command_timeout(100) == 2.0
    assert manager.command_timeout(1000) == 3.0
    assert manager.command_timeout(600_000) == 30.0
    with (
        patch("custom_components.esp_mcp_bridge.manager.COMMAND_TIMEOUT_MIN", 0.01),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _call(hass, "light", "turn_on", "light.greenhouse_led")
    assert err.value.translation_key == "command_timeout"
    assert not manager._pending


async def test_command_to_offline_device(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """An unavailable device gets nothing; the caller gets a clear error."""
    fire(hass, "status", "offline")
    await hass.async_block_till_done()
    manager = adopted.runtime_data
    with pytest.raises(HomeAssistantError) as err:
        await manager.async_actuate(DEVICE, "led", manager_action("write"), True)
    assert err.value.translation_key == "device_unavailable"
    with pytest.raises(ServiceValidationError) as err:
        await manager.async_command("esp32-unknown", "ping")
    assert err.value.translation_key == "unknown_device"
    fire(hass, "status", "online")
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await manager.async_actuate(DEVICE, "nope", manager_action("read"))
    assert err.value.translation_key == "unknown_device"
    assert device.sent("/actuators/led/set") == []


def manager_action(name: str) -> Any:
    """An Action by name."""
    from custom_components.esp_mcp_bridge.protocol import Action  # noqa: PLC0415

    return Action(name)


async def test_responses_for_others_are_ignored(
    hass: HomeAssistant, adopted: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Responses to other clients (the add-on) are not errors."""
    fire(hass, "response", {"id": "mcp-1", "ok": True, "result": {}})
    fire(hass, "response", {"id": None, "ok": False, "error": {"code": "malformed"}})
    await hass.async_block_till_done()
    assert "Ignoring invalid" not in caplog.text


@pytest.mark.parametrize(
    "entry_options",
    [{CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True, CONF_ALL_DIAGNOSTICS: True}],
)
async def test_get_metrics_and_reset(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """get_metrics updates the diagnostic sensors; reset_metrics clears them."""
    manager = adopted.runtime_data
    response = await manager.async_command(DEVICE, "get_metrics")
    assert response.ok
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_free_heap").state == "1000"
    assert hass.states.get("sensor.greenhouse_uptime").state not in ("unknown", "unavailable")
    await manager.async_command(DEVICE, "reset_metrics")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_uptime").state == "unknown"
    device.handler = lambda topic, body: {"ok": True, "result": {"uptime_s": -5}}
    await manager.async_command(DEVICE, "get_metrics")
    assert hass.states.get("sensor.greenhouse_uptime").state == "unknown"


@pytest.mark.parametrize(
    ("domain", "service", "object_id", "data"),
    [
        ("light", "turn_on", "led", {}),
        ("switch", "turn_on", "heater", {}),
        ("number", "set_value", "irrigation_valve", {"value": 35}),
        ("select", "select_option", "fan_mode", {"option": "off"}),
        ("text", "set_value", "display_text", {"value": "Hallo"}),
        ("button", "press", "buzzer", {}),
    ],
)
async def test_commands_to_two_devices_in_flight_at_once(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    *,
    domain: str,
    service: str,
    object_id: str,
    data: dict[str, Any],
) -> None:
    """A command to one device does not wait for another device's answer.

    The first device only answers once the second command has been sent: with
    commands queued per platform, the first would time out.
    """
    await adopt(hass, {**caps, "device_id": "esp32-0002", "name": "Shed"}, "esp32-0002")
    in_flight: list[tuple[str, dict[str, Any]]] = []

    def answer_when_both_sent(topic: str, body: dict[str, Any]) -> dict[str, Any] | None:
        in_flight.append((topic, body))
        if len(in_flight) < 2:
            return None
        held_topic, held = in_flight[0]
        response = {"id": held["id"], **(device.default_handler(held_topic, held) or {})}
        hass.loop.call_soon(
            async_fire_mqtt_message,
            hass,
            f"{BASE}/{held_topic.split('/')[1]}/response",
            json.dumps(response),
        )
        return device.default_handler(topic, body)

    device.handler = answer_when_both_sent
    # One call for both (an area, a group): HA runs it per entity under the platform's
    # PARALLEL_UPDATES semaphore.
    await hass.services.async_call(
        domain,
        service,
        {ATTR_ENTITY_ID: [f"{domain}.{name}_{object_id}" for name in ("greenhouse", "shed")]}
        | data,
        blocking=True,
    )
    assert {topic.split("/")[1] for topic, _ in in_flight} == {DEVICE, "esp32-0002"}
