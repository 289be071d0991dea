"""Selects: enum actuators."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeActuatorEntity, async_setup_platform_entities
from .manager import EspMcpBridgeConfigEntry
from .protocol import Action

# Each command waits for its own device (bounded by its timeout): none queue behind another.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up selects."""
    async_setup_platform_entities(
        hass, entry, async_add_entities, Platform.SELECT, actuator_entity=EspMcpBridgeSelect
    )


class EspMcpBridgeSelect(EspMcpBridgeActuatorEntity, SelectEntity):
    """An enum actuator."""

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        self._attr_options = list(self._spec.options)
        value = self._value
        known = isinstance(value, str) and value in self._spec.options
        self._attr_current_option = value if known and isinstance(value, str) else None

    async def async_select_option(self, option: str) -> None:
        """Select an option."""
        await self._async_actuate(Action.WRITE, option)
