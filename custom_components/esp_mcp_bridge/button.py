"""Buttons: trigger actuators, identify and restart."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.button import ButtonDeviceClass, ButtonEntity
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeActuatorEntity, EspMcpBridgeEntity, async_setup_platform_entities
from .extra_diagnostics import is_extra
from .manager import BridgeManager, EspMcpBridgeConfigEntry
from .protocol import Action

# Each command waits for its own device (bounded by its timeout): none queue behind another.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up buttons."""
    async_setup_platform_entities(
        hass,
        entry,
        async_add_entities,
        Platform.BUTTON,
        actuator_entity=EspMcpBridgeTriggerButton,
        device_entities=_command_buttons,
    )


def _command_buttons(manager: BridgeManager, device_id: str) -> Iterable[EspMcpBridgeEntity]:
    if manager.all_diagnostics or not is_extra(Platform.BUTTON, "identify"):
        yield EspMcpBridgeCommandButton(manager, device_id, "identify")
    yield EspMcpBridgeCommandButton(manager, device_id, "restart")


class EspMcpBridgeTriggerButton(EspMcpBridgeActuatorEntity, ButtonEntity):
    """A trigger actuator."""

    async def async_press(self) -> None:
        """Trigger the actuator."""
        await self._async_actuate(Action.TRIGGER)


class EspMcpBridgeCommandButton(EspMcpBridgeEntity, ButtonEntity):
    """Identify or restart the device."""

    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, manager: BridgeManager, device_id: str, command: str) -> None:
        """Initialise for one device command."""
        super().__init__(manager, device_id, f"diag_{command}")
        self._command = command
        self._attr_translation_key = command
        self._attr_device_class = (
            ButtonDeviceClass.IDENTIFY if command == "identify" else ButtonDeviceClass.RESTART
        )

    async def async_press(self) -> None:
        """Send the command and wait for the device's answer."""
        await self._manager.async_command(self._device_id, self._command)
