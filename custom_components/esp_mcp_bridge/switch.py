"""Switches: boolean actuators."""

from __future__ import annotations

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeOnOffEntity, async_setup_platform_entities
from .manager import EspMcpBridgeConfigEntry

# Each command waits for its own device (bounded by its timeout): none queue behind another.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up switches."""
    async_setup_platform_entities(
        hass, entry, async_add_entities, Platform.SWITCH, actuator_entity=EspMcpBridgeSwitch
    )


class EspMcpBridgeSwitch(EspMcpBridgeOnOffEntity, SwitchEntity):
    """A boolean actuator; shows the state the device acknowledged."""
