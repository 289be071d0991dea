"""Removing devices: it sticks across reloads, until the user adds the device again."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.esp_mcp_bridge.const import CONF_OFFLINE_TIMEOUT, CONF_TAKE_OVER, DOMAIN

from .conftest import DEVICE, Device, adopt, find_device

OTHER = "esp32-other"


def _set_discovery(device: Device, device_id: str = DEVICE) -> list[str]:
    return [
        c["args"]["mode"] for c in device.sent(f"/{device_id}/cmd") if c["cmd"] == "set_discovery"
    ]


def _another(caps: dict[str, Any], device_id: str, **changes: Any) -> dict[str, Any]:
    """Capabilities of another device (without the MAC, which would merge the devices)."""
    other = {k: v for k, v in caps.items() if k != "mac"}
    return other | {"device_id": device_id} | changes


def _ha_device(hass: HomeAssistant, device_id: str = DEVICE) -> dr.DeviceEntry | None:
    return find_device(hass, (DOMAIN, device_id))


async def _remove_device(
    hass: HomeAssistant, hass_ws_client: Any, entry: MockConfigEntry, device_id: str = DEVICE
) -> None:
    """Delete a device from its device page (what the frontend sends)."""
    assert await async_setup_component(hass, "config", {})
    ha_device = _ha_device(hass, device_id)
    assert ha_device is not None
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry.entry_id,
            "device_id": ha_device.id,
        }
    )
    msg = await client.receive_json()
    assert msg["success"], msg
    await hass.async_block_till_done()


async def test_removed_device_stays_removed_after_reload(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    hass_ws_client: Any,
) -> None:
    """A restart or reload delivers the retained capabilities again: still removed."""
    await adopt(hass, _another(caps, OTHER), OTHER)
    await _remove_device(hass, hass_ws_client, adopted)
    assert await hass.config_entries.async_reload(adopted.entry_id)
    await hass.async_block_till_done()
    await adopt(hass, caps)
    await adopt(hass, _another(caps, OTHER), OTHER)
    assert _ha_device(hass) is None
    assert hass.states.get("sensor.greenhouse_temperature") is None
    assert _set_discovery(device) == ["integration", "mqtt"]
    # Other devices of the entry are not affected.
    assert _ha_device(hass, OTHER) is not None
    assert adopted.runtime_data.devices[OTHER].capabilities is not None


async def test_removed_device_added_again_in_the_options(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    hass_ws_client: Any,
) -> None:
    """The options list removed devices; one chosen there is adopted again."""
    entity_id = "sensor.greenhouse_temperature"
    await _remove_device(hass, hass_ws_client, adopted)
    result = await hass.config_entries.options.async_init(adopted.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert "restore_devices" in result["data_schema"].schema
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True, "restore_devices": [DEVICE]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "restore_devices" not in adopted.options
    await hass.async_block_till_done()
    assert adopted.state is ConfigEntryState.LOADED
    await adopt(hass, caps)
    assert _ha_device(hass) is not None
    assert hass.states.get(entity_id) is not None
    assert _set_discovery(device) == ["integration", "mqtt", "integration"]
    # Nothing is left to add again: the options no longer offer it.
    result = await hass.config_entries.options.async_init(adopted.entry_id)
    assert "restore_devices" not in result["data_schema"].schema


async def test_removed_device_in_mode_integration_is_handed_back_again(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    hass_ws_client: Any,
) -> None:
    """A removed device that missed its hand-back is sent set_discovery mqtt once more.

    Otherwise it would have no entities at all: not ours, and no MQTT discovery.
    """
    device.follow_discovery = False
    await _remove_device(hass, hass_ws_client, adopted)
    assert _set_discovery(device) == ["integration", "mqtt"]
    for _ in range(2):
        await adopt(hass, caps | {"discovery": "integration", "fw": "9"})
    assert _set_discovery(device) == ["integration", "mqtt", "mqtt"]
    assert _ha_device(hass) is None


async def test_remove_device_of_entry_that_never_loaded(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    hass_ws_client: Any,
) -> None:
    """An entry waiting for MQTT (setup retry) can still have a device deleted."""
    config_entry.add_to_hass(hass)
    with patch(
        "custom_components.esp_mcp_bridge.mqtt.async_wait_for_mqtt_client",
        return_value=False,
    ):
        await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    dr.async_get(hass).async_get_or_create(
        config_entry_id=config_entry.entry_id, identifiers={(DOMAIN, DEVICE)}
    )
    await _remove_device(hass, hass_ws_client, config_entry)
    assert _ha_device(hass) is None
    assert _set_discovery(device) == ["mqtt"]
    # Remembered: once the entry loads, the device's retained capabilities are ignored.
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    await adopt(hass, caps)
    assert _ha_device(hass) is None
    data = config_entry.runtime_data.devices.get(DEVICE)
    assert data is None or data.capabilities is None


async def test_removed_devices_are_bounded(
    hass: HomeAssistant, adopted: MockConfigEntry, caps: dict[str, Any], hass_ws_client: Any
) -> None:
    """The list of removed devices cannot grow without bound (oldest forgotten first)."""
    with patch("custom_components.esp_mcp_bridge.removal.MAX_REMOVED_DEVICES", 3):
        names = [f"esp32-{index}" for index in range(4)]
        for name in names:
            await adopt(hass, _another(caps, name, discovery="integration"), name)
            await _remove_device(hass, hass_ws_client, adopted, name)
    assert adopted.data["removed_devices"] == names[1:]
    # The oldest one is forgotten: its retained capabilities adopt it again.
    await adopt(hass, _another(caps, names[0], discovery="integration"), names[0])
    assert _ha_device(hass, names[0]) is not None
