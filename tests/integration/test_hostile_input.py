"""Messages at and beyond the limits of the contract reach no part of HA broken."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.esp_mcp_bridge.const import DOMAIN

from .conftest import DEVICE, find_device, fire


async def _alerts(hass: HomeAssistant, hass_ws_client: Any) -> list[dict[str, Any]]:
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": f"{DOMAIN}/alerts"})
    msg = await client.receive_json()
    assert msg["success"], msg
    alerts: list[dict[str, Any]] = msg["result"]["alerts"]
    return alerts


async def test_error_timestamps_beyond_the_year_9999_are_dropped(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    hass_ws_client: Any,
    hass_client: ClientSessionGenerator,
) -> None:
    """An error with ts 1e17 (year 3170843) would break the alerts and diagnostics.

    The last millisecond of the year 9999 is still a date.
    """
    assert await async_setup_component(hass, "diagnostics", {})
    error = {"type": "clock", "code": 1, "message": "bad clock", "severity": 1}
    fire(hass, "error", error | {"ts": 100_000_000_000_000_000})
    fire(hass, "error", error | {"ts": 253_402_300_799_999, "code": 2})
    fire(hass, "error", error | {"code": 2**70})
    await hass.async_block_till_done()
    alerts = await _alerts(hass, hass_ws_client)
    assert [a["code"] for a in alerts] == [2]
    assert alerts[0]["ts"].startswith("9999-12-31T23:59:59")
    entry_data = await get_diagnostics_for_config_entry(hass, hass_client, adopted)
    assert entry_data
    device = find_device(hass, (DOMAIN, DEVICE))
    assert device is not None
    assert await get_diagnostics_for_device(hass, hass_client, adopted, device)


async def test_huge_numbers_keep_diagnostics_working(
    hass: HomeAssistant, adopted: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """A 400-digit integer is dropped; 2^70 is a reading HA can store (as a double)."""
    assert await async_setup_component(hass, "diagnostics", {})
    fire(hass, "sensors/temperature", '{"value": 1' + "0" * 399 + "}")
    await hass.async_block_till_done()
    assert adopted.runtime_data.devices[DEVICE].sensors.get("temperature") is None
    fire(hass, "sensors/temperature", f'{{"value": {2**70}}}')
    fire(hass, "metrics", f'{{"uptime_s": 10, "free_heap": {2**70}}}')
    await hass.async_block_till_done()
    assert float(hass.states.get("sensor.greenhouse_temperature").state) == pytest.approx(2.0**70)
    assert adopted.runtime_data.devices[DEVICE].metrics is None
    assert await get_diagnostics_for_config_entry(hass, hass_client, adopted)


async def test_long_text_actuator_state_shows_its_start(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """A text actuator may hold 1,024 characters, HA's text entity 255 at most."""
    text = "Ä" * 1024
    fire(hass, "actuators/display_text/state", {"value": text})
    await hass.async_block_till_done()
    state = hass.states.get("text.greenhouse_display_text")
    assert state.state == text[:255]
    assert state.attributes["max"] == 255
    fire(hass, "actuators/display_text/state", {"value": "short"})
    await hass.async_block_till_done()
    assert hass.states.get("text.greenhouse_display_text").state == "short"
