"""Every command carries an id and a deadline; a late command is `expired` (protocol 8.1)."""

from __future__ import annotations

import json
import time
from typing import Any

from homeassistant.const import ATTR_ENTITY_ID, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.esp_mcp_bridge.const import (
    COMMAND_TIMEOUT_MIN,
    DOMAIN,
    UNANSWERED_COMMAND_TIMEOUT,
)

from .conftest import BASE, DEVICE, Device, adopt, find_device

# The reference device's LED announces 100 ms: its timeout is the minimum.
LED_TIMEOUT_S = COMMAND_TIMEOUT_MIN


def _now_ms() -> int:
    return int(time.time() * 1000)


def _commands(device: Device) -> list[tuple[str, dict[str, Any], str]]:
    """(topic, body, raw payload) of every command sent to the device."""
    return [
        (topic, json.loads(text), text)
        for topic, text in device.published
        if topic.startswith(f"{BASE}/") and topic.endswith(("/set", "/cmd"))
    ]


async def _send_command(hass: HomeAssistant, cmd: str, **extra: Any) -> Any:
    ha_device = find_device(hass, (DOMAIN, DEVICE))
    assert ha_device is not None
    return await hass.services.async_call(
        DOMAIN,
        "send_command",
        {"device_id": ha_device.id, "command": cmd, **extra},
        blocking=True,
        return_response=True,
    )


async def test_commands_carry_id_and_deadline_within_their_timeout(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """An actuator set and a device command: deadline in [now, now + timeout]."""
    before = _now_ms()
    await hass.services.async_call(
        "light", "turn_on", {ATTR_ENTITY_ID: "light.greenhouse_led"}, blocking=True
    )
    await _send_command(hass, "ping", timeout=7.5)
    after = _now_ms()
    (led,) = device.sent(f"{BASE}/{DEVICE}/actuators/led/set")
    ping = next(c for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] == "ping")
    for body, timeout_s in ((led, LED_TIMEOUT_S), (ping, 7.5)):
        assert isinstance(body["id"], str)
        assert body["id"].startswith("ha-")
        deadline = body["deadline"]
        assert isinstance(deadline, int)
        assert before <= deadline <= after + timeout_s * 1000
        # The whole timeout, not less: the device must not refuse what HA still waits for.
        assert deadline >= before + timeout_s * 1000 - 1
    assert hass.states.get("light.greenhouse_led").state == STATE_ON


async def test_every_command_has_its_own_id_first_and_deadline_last(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """Also what HA sends unasked (takeover, the first metrics request)."""
    for _ in range(3):
        await hass.services.async_call(
            "switch", "toggle", {ATTR_ENTITY_ID: "switch.greenhouse_heater"}, blocking=True
        )
    await _send_command(hass, "ping")
    sent = _commands(device)
    kinds = {body.get("cmd") or body.get("action") for _, body, _ in sent}
    assert {"set_discovery", "get_metrics", "write", "ping"} <= kinds
    ids = [body["id"] for _, body, _ in sent]
    assert len(ids) == len(set(ids)) == len(sent)
    for _, body, text in sent:
        keys = list(body)
        assert keys[0] == "id", text
        assert keys[-1] == "deadline", text
        assert text.startswith('{"id":"ha-'), text


async def test_unanswered_commands_get_the_takeover_deadline(
    hass: HomeAssistant, loaded: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """set_discovery and the first metrics request are not waited for: 10 s."""
    before = _now_ms()
    await adopt(hass, caps)
    after = _now_ms()
    sent = [body for _, body, _ in _commands(device)]
    assert sorted(b["cmd"] for b in sent) == ["get_metrics", "set_discovery"]
    for body in sent:
        low = before + UNANSWERED_COMMAND_TIMEOUT * 1000 - 1
        assert low <= body["deadline"] <= after + UNANSWERED_COMMAND_TIMEOUT * 1000


async def test_expired_answer_raises_the_translated_error(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """A device whose clock is past the deadline answers `expired`: not run, HA says why."""
    device.clock_ms = _now_ms() + int(LED_TIMEOUT_S * 1000) + 1000
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "light", "turn_on", {ATTR_ENTITY_ID: "light.greenhouse_led"}, blocking=True
        )
    assert err.value.translation_key == "command_expired"
    assert err.value.translation_placeholders["device_id"] == DEVICE
    assert "after its deadline" in str(err.value)
    assert "SNTP" in str(err.value)
    assert hass.states.get("light.greenhouse_led").state != STATE_ON
    with pytest.raises(HomeAssistantError) as err:
        await _send_command(hass, "identify")
    assert err.value.translation_key == "command_expired"


async def test_device_clock_inside_the_timeout_runs_the_command(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """A device a second late (well inside the 2 s timeout) still runs it."""
    device.clock_ms = _now_ms() + 1000
    await hass.services.async_call(
        "light", "turn_on", {ATTR_ENTITY_ID: "light.greenhouse_led"}, blocking=True
    )
    assert hass.states.get("light.greenhouse_led").state == STATE_ON
