"""The ESP32 MCP Bridge integration: ESP32 devices bridged over MQTT."""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .commands import async_send_unanswered
from .const import CONF_BASE_TOPIC, DOMAIN, LOGGER, PLATFORMS
from .extra_diagnostics import async_remove_extra_diagnostics
from .manager import BridgeManager, EspMcpBridgeConfigEntry
from .migration import async_migrate_entry
from .naming import bridge_device_id
from .protocol import DiscoveryMode
from .removal import async_delete_issues, async_remember_removed, removed_devices
from .services import async_setup_services
from .websocket import async_setup_websocket

__all__ = ["EspMcpBridgeConfigEntry", "async_migrate_entry"]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions and WebSocket commands."""
    async_setup_services(hass)
    async_setup_websocket(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: EspMcpBridgeConfigEntry) -> bool:
    """Set up one base topic."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_not_ready")
    manager = BridgeManager(hass, entry)
    entry.runtime_data = manager
    if not manager.all_diagnostics:
        async_remove_extra_diagnostics(hass, entry.entry_id)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(manager.async_stop)
    await manager.async_start()
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    return True


async def _async_entry_updated(hass: HomeAssistant, entry: EspMcpBridgeConfigEntry) -> None:
    """Reload when the options changed or a removed device was added again.

    Not for other entry updates (discovery keys, a device being removed).
    """
    manager = entry.runtime_data
    if dict(entry.options) != manager.options or set(removed_devices(entry)) != manager.removed:
        await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: EspMcpBridgeConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def _async_hand_back(hass: HomeAssistant, base_topic: str, device_id: str) -> None:
    """Ask a device to announce itself by plain MQTT discovery again."""
    try:
        await async_send_unanswered(
            hass, base_topic, device_id, "set_discovery", {"mode": DiscoveryMode.MQTT.value}
        )
    except HomeAssistantError as err:
        LOGGER.warning("Could not hand device %s back to MQTT discovery: %s", device_id, err)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: EspMcpBridgeConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Remove a device: remember it as removed, and hand it back to plain MQTT discovery."""
    base_topic: str = entry.data[CONF_BASE_TOPIC]
    device_id = bridge_device_id(base_topic, device_entry.identifiers)
    if device_id is None:
        return True
    # Remembered before the hand-back: the device answers with its capabilities at once.
    manager: BridgeManager | None = getattr(entry, "runtime_data", None)
    if manager is not None:
        manager.async_forget_device(device_id)
    else:  # the entry never loaded (e.g. waiting for MQTT)
        async_remember_removed(hass, entry, device_id)
    await _async_hand_back(hass, base_topic, device_id)
    return True


async def async_remove_entry(hass: HomeAssistant, entry: EspMcpBridgeConfigEntry) -> None:
    """Hand every device of a removed entry back to plain MQTT discovery."""
    base_topic: str = entry.data[CONF_BASE_TOPIC]
    registry = dr.async_get(hass)
    for device_entry in dr.async_entries_for_config_entry(registry, entry.entry_id):
        device_id = bridge_device_id(base_topic, device_entry.identifiers)
        if device_id is not None:
            await _async_hand_back(hass, base_topic, device_id)
    async_delete_issues(hass, entry.entry_id)
