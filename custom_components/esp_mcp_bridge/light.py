"""Lights: boolean actuators of type led/light."""

from __future__ import annotations

from homeassistant.components.light import LightEntity
from homeassistant.components.light.const import ColorMode
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
    """Set up lights."""
    async_setup_platform_entities(
        hass, entry, async_add_entities, Platform.LIGHT, actuator_entity=EspMcpBridgeLight
    )


class EspMcpBridgeLight(EspMcpBridgeOnOffEntity, LightEntity):
    """An on/off LED; shows the state the device acknowledged."""

    _attr_color_mode = ColorMode.ONOFF
    _attr_supported_color_modes = {ColorMode.ONOFF}  # noqa: RUF012
