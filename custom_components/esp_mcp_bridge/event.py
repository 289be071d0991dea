"""Event entity: error reports of a device."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components.event import EventEntity
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import EspMcpBridgeEntity, async_setup_platform_entities
from .manager import BridgeManager, EspMcpBridgeConfigEntry, signal_device_update

PARALLEL_UPDATES = 0

KNOWN_ERROR_TYPES = (
    "sensor_read",
    "actuator",
    "communication",
    "memory",
    "config",
    "ota",
    "watchdog",
    "internal",
)
OTHER = "other"
MAX_EVENT_TYPES = 32


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up error event entities."""
    async_setup_platform_entities(
        hass,
        entry,
        async_add_entities,
        Platform.EVENT,
        device_entities=lambda manager, device_id: [EspMcpBridgeErrorEvent(manager, device_id)],
    )


class EspMcpBridgeErrorEvent(EspMcpBridgeEntity, EventEntity):
    """Fires once per error the device reports; event type = error type."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "error"

    def __init__(self, manager: BridgeManager, device_id: str) -> None:
        """Initialise the error event entity."""
        super().__init__(manager, device_id, "diag_error")
        self._attr_event_types = [*KNOWN_ERROR_TYPES, OTHER]

    async def async_added_to_hass(self) -> None:
        """Listen for errors (an error is an event, not a state)."""
        self._update_keys = ()
        await super().async_added_to_hass()
        self.async_on_remove(self._manager_error_listener())

    def _manager_error_listener(self) -> Callable[[], None]:
        return async_dispatcher_connect(
            self.hass,
            signal_device_update(self._manager.entry.entry_id, self._device_id, "error"),
            self._async_error,
        )

    @callback
    def _async_error(self) -> None:
        error = self._device.last_error
        if error is None:  # pragma: no cover - signal only sent with an error
            return
        event_type = error.type
        if event_type not in self._attr_event_types:
            if len(self._attr_event_types) >= MAX_EVENT_TYPES:
                event_type = OTHER
            else:
                self._attr_event_types = [*self._attr_event_types, event_type]
        self._trigger_event(
            event_type,
            {
                "code": error.code,
                "message": error.message,
                "severity": error.severity,
            },
        )
        self.async_write_ha_state()
