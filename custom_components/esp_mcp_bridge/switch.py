"""Switches: boolean actuators."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.switch import SwitchEntity
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
    """Set up switches."""

    def factory(manager: BridgeManager, device: DeviceData) -> Iterable[EspMcpBridgeEntity]:
        assert device.capabilities is not None
        for spec in device.capabilities.actuators:
            if actuator_platform(spec) is Platform.SWITCH:
                yield EspMcpBridgeSwitch(manager, device.device_id, spec)

    async_setup_device_entities(hass, entry, async_add_entities, Platform.SWITCH, factory)


class EspMcpBridgeSwitch(EspMcpBridgeActuatorEntity, SwitchEntity):
    """A boolean actuator; shows the state the device acknowledged."""

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        value = self._value
        self._attr_is_on = value if isinstance(value, bool) else None

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Switch on."""
        await self._manager.async_actuate(self._device_id, self._spec.id, Action.WRITE, True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Switch off."""
        await self._manager.async_actuate(self._device_id, self._spec.id, Action.WRITE, False)
