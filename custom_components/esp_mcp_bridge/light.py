"""Lights: boolean actuators of type led/light."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.light import LightEntity
from homeassistant.components.light.const import ColorMode
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeActuatorEntity, EspMcpBridgeEntity, async_setup_device_entities
from .manager import BridgeManager, DeviceData, EspMcpBridgeConfigEntry, actuator_platform
from .protocol import Action

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up lights."""

    def factory(manager: BridgeManager, device: DeviceData) -> Iterable[EspMcpBridgeEntity]:
        assert device.capabilities is not None
        for spec in device.capabilities.actuators:
            if actuator_platform(spec) is Platform.LIGHT:
                yield EspMcpBridgeLight(manager, device.device_id, spec)

    async_setup_device_entities(hass, entry, async_add_entities, Platform.LIGHT, factory)


class EspMcpBridgeLight(EspMcpBridgeActuatorEntity, LightEntity):
    """An on/off LED; shows the state the device acknowledged."""

    _attr_color_mode = ColorMode.ONOFF
    _attr_supported_color_modes = {ColorMode.ONOFF}  # noqa: RUF012

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        value = self._value
        self._attr_is_on = value if isinstance(value, bool) else None

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn the LED on."""
        await self._manager.async_actuate(self._device_id, self._spec.id, Action.WRITE, True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn the LED off."""
        await self._manager.async_actuate(self._device_id, self._spec.id, Action.WRITE, False)
