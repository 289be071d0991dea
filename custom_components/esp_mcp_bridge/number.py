"""Numbers: numeric actuators."""

from __future__ import annotations

from homeassistant.components.number import NumberEntity, NumberMode
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
    """Set up numbers."""
    async_setup_platform_entities(
        hass, entry, async_add_entities, Platform.NUMBER, actuator_entity=EspMcpBridgeNumber
    )


class EspMcpBridgeNumber(EspMcpBridgeActuatorEntity, NumberEntity):
    """A numeric actuator with the device's range, step and unit."""

    _attr_mode = NumberMode.AUTO

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        spec = self._spec
        self._attr_native_min_value = float(spec.min) if spec.min is not None else 0.0
        self._attr_native_max_value = float(spec.max) if spec.max is not None else 100.0
        self._attr_native_step = float(spec.step) if spec.step is not None else 1.0
        self._attr_native_unit_of_measurement = spec.unit
        value = self._value
        self._attr_native_value = (
            value if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    async def async_set_native_value(self, value: float) -> None:
        """Write a value; integral values are sent as integers."""
        number: float | int = int(value) if float(value).is_integer() else value
        await self._async_actuate(Action.WRITE, number)
