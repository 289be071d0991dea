"""Devices the user removed, and the repair issues of an entry.

A removed device is handed back to plain MQTT discovery, but its capabilities stay
retained on the broker and arrive again on every reload and restart. Its id is kept in
the entry's data so those are ignored until the user adds it again (options).
"""

from __future__ import annotations

from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .naming import issue_prefix

CONF_REMOVED_DEVICES: Final = "removed_devices"
# Bounded like the devices themselves; beyond this the oldest removal is forgotten.
MAX_REMOVED_DEVICES: Final = 1024


def removed_devices(entry: ConfigEntry) -> list[str]:
    """Ids of the devices removed from this entry, oldest first."""
    return list(entry.data.get(CONF_REMOVED_DEVICES, ()))


@callback
def async_set_removed_devices(hass: HomeAssistant, entry: ConfigEntry, ids: list[str]) -> None:
    """Store the removed device ids (the key is left out when there are none)."""
    data = {k: v for k, v in entry.data.items() if k != CONF_REMOVED_DEVICES}
    if ids:
        data[CONF_REMOVED_DEVICES] = ids[-MAX_REMOVED_DEVICES:]
    hass.config_entries.async_update_entry(entry, data=data)


@callback
def async_remember_removed(hass: HomeAssistant, entry: ConfigEntry, device_id: str) -> None:
    """Remember that the user removed a device."""
    ids = [i for i in removed_devices(entry) if i != device_id]
    async_set_removed_devices(hass, entry, [*ids, device_id])


@callback
def async_delete_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Delete every repair issue of one entry."""
    prefix = issue_prefix(entry_id)
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain == DOMAIN and issue_id.startswith(prefix):
            ir.async_delete_issue(hass, DOMAIN, issue_id)
