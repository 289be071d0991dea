"""The opt-in diagnostic entities (entry option `all_diagnostics`) and their clean-up.

Every entity costs Home Assistant about 20 KiB of memory, enabled or disabled (measured
with 1,000 devices), so by default a device has its status, firmware, restart, error and
free-heap entities and nothing else besides its sensors and actuators. The rest is opt-in;
the diagnostics download, the devices WebSocket command and the MCP server show every
metric either way.
"""

from __future__ import annotations

from typing import Final

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .naming import DIAG_PREFIX

# Keys after `diag:` in the unique id, per entity domain.
EXTRA_DIAGNOSTICS: Final[dict[str, frozenset[str]]] = {
    Platform.SENSOR: frozenset(
        {
            "uptime_s",
            "rssi",
            "min_free_heap",
            "messages_sent",
            "messages_received",
            "connection_failures",
            "sensor_read_errors",
            "actuator_errors",
            "wifi_reconnections",
            "mqtt_reconnections",
        }
    ),
    Platform.BUTTON: frozenset({"identify"}),
}


def is_extra(domain: str, key: str) -> bool:
    """Whether the diagnostic `key` (with or without `diag_`) of `domain` is opt-in."""
    return key.removeprefix(DIAG_PREFIX) in EXTRA_DIAGNOSTICS.get(domain, frozenset())


def is_extra_diagnostic(domain: str, unique_id: str) -> bool:
    """Whether a registry entry's unique id is one of the opt-in entities of a device."""
    _, sep, key = unique_id.rpartition("/diag:")
    return bool(sep) and is_extra(domain, key)


@callback
def async_remove_extra_diagnostics(hass: HomeAssistant, entry_id: str) -> None:
    """Drop the opt-in entities of an entry that does not want them (any more)."""
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry_id):
        if is_extra_diagnostic(entity.domain, entity.unique_id):
            registry.async_remove(entity.entity_id)
