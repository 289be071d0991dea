"""Texts: string actuators."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.text import TextEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeActuatorEntity, EspMcpBridgeEntity, async_setup_device_entities
from .manager import BridgeManager, DeviceData, EspMcpBridgeConfigEntry, actuator_platform
from .protocol import MAX_STRING_LEN, Action

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up texts."""

    def factory(manager: BridgeManager, device: DeviceData) -> Iterable[EspMcpBridgeEntity]:
        assert device.capabilities is not None
        for spec in device.capabilities.actuators:
            if actuator_platform(spec) is Platform.TEXT:
                yield EspMcpBridgeText(manager, device.device_id, spec)

    async_setup_device_entities(hass, entry, async_add_entities, Platform.TEXT, factory)


class EspMcpBridgeText(EspMcpBridgeActuatorEntity, TextEntity):
    """A string actuator."""

    _attr_native_max = MAX_STRING_LEN

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        value = self._value
        self._attr_native_value = value if isinstance(value, str) else None

    async def async_set_value(self, value: str) -> None:
        """Write the text."""
        await self._manager.async_actuate(self._device_id, self._spec.id, Action.WRITE, value)
