"""Texts: string actuators."""

from __future__ import annotations

from homeassistant.components.text import TextEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeActuatorEntity, async_setup_platform_entities
from .manager import EspMcpBridgeConfigEntry
from .protocol import MAX_STRING_LEN, Action

# Each command waits for its own device (bounded by its timeout): none queue behind another.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up texts."""
    async_setup_platform_entities(
        hass, entry, async_add_entities, Platform.TEXT, actuator_entity=EspMcpBridgeText
    )


class EspMcpBridgeText(EspMcpBridgeActuatorEntity, TextEntity):
    """A string actuator.

    HA keeps at most 255 characters in a state; a device may hold up to 1,024. A longer
    device value shows its first 255 characters (HA refuses a state over the max).
    """

    _attr_native_max = MAX_STRING_LEN

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        value = self._value
        self._attr_native_value = value[: self.native_max] if isinstance(value, str) else None

    async def async_set_value(self, value: str) -> None:
        """Write the text."""
        await self._async_actuate(Action.WRITE, value)
