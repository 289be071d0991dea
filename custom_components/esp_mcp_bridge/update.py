"""Update entity: the firmware a device reports."""

from __future__ import annotations

from homeassistant.components.update import UpdateDeviceClass, UpdateEntity
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeEntity, async_setup_platform_entities
from .manager import BridgeManager, EspMcpBridgeConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up firmware update entities."""
    async_setup_platform_entities(
        hass,
        entry,
        async_add_entities,
        Platform.UPDATE,
        device_entities=lambda manager, device_id: [EspMcpBridgeFirmware(manager, device_id)],
    )


class EspMcpBridgeFirmware(EspMcpBridgeEntity, UpdateEntity):
    """Installed firmware from the capabilities.

    The device cannot tell which firmware is the newest, so the latest version stays
    unknown; an OTA update is started with the `send_command` action (`ota` with
    `url`, `sha256`, `version`).
    """

    _attr_device_class = UpdateDeviceClass.FIRMWARE
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "firmware"

    def __init__(self, manager: BridgeManager, device_id: str) -> None:
        """Initialise the firmware entity."""
        super().__init__(manager, device_id, "diag_firmware")

    @property
    def available(self) -> bool:
        """Known while MQTT is connected."""
        return self._manager.mqtt_connected and self._device_id in self._manager.devices

    @callback
    def _async_update_from_device(self) -> None:
        caps = self._device.capabilities
        self._attr_installed_version = caps.fw if caps is not None else None
        self._attr_latest_version = None
