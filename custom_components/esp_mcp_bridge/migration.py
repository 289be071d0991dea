"""Config entry migrations.

1.1 -> 1.2: unique ids and identifiers gain the base topic.
1.2 -> 1.3: uptime, signal strength, minimum free heap, the counters and the identify
button became opt-in (option `all_diagnostics`); an entry where the user had enabled one
of the sensors that were disabled by default gets the option.

1.1 named entities `{D}_{id}` (diagnostics `{D}_diag_{name}`) and devices
`(esp_mcp_bridge, D)` on every base topic, so a capability `diag_free_heap` met the
Free heap diagnostic, and equal device ids of two base topics met in one device. The
registry entries are renamed in place, so entity ids, names, areas and history stay.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .const import CONF_ALL_DIAGNOSTICS, CONF_BASE_TOPIC, DOMAIN, LOGGER
from .extra_diagnostics import is_extra_diagnostic
from .naming import (
    DIAG_PREFIX,
    capability_unique_id,
    device_identifier,
    diagnostic_unique_id,
)
from .protocol import is_valid_device_id

VERSION: Final = 1
MINOR_VERSION: Final = 3


def _old_device_id(device: dr.DeviceEntry | None) -> str | None:
    """The bare device id a 1.1 identifier holds (None once migrated)."""
    if device is None:
        return None
    return next((i for d, i in device.identifiers if d == DOMAIN and is_valid_device_id(i)), None)


async def _async_migrate_entities(hass: HomeAssistant, entry: ConfigEntry, base_topic: str) -> None:
    dev_reg = dr.async_get(hass)

    @callback
    def migrate(entity: er.RegistryEntry) -> dict[str, Any] | None:
        device_id = _old_device_id(dev_reg.async_get(entity.device_id or ""))
        prefix = f"{device_id}_"
        if device_id is None or not entity.unique_id.startswith(prefix):
            # Without its device the old unique id cannot be split (ids may hold `_`).
            LOGGER.debug("Not migrating %s (%s)", entity.entity_id, entity.unique_id)
            return None
        key = entity.unique_id.removeprefix(prefix)
        # Only the fixed diagnostic entities have a translation key.
        if key.startswith(DIAG_PREFIX) and entity.translation_key is not None:
            return {"new_unique_id": diagnostic_unique_id(base_topic, device_id, key)}
        return {"new_unique_id": capability_unique_id(base_topic, device_id, key)}

    await er.async_migrate_entries(hass, entry.entry_id, migrate)


@callback
def _async_split_device(
    hass: HomeAssistant, entry: ConfigEntry, shared: dr.DeviceEntry, identifier: str
) -> None:
    """Give this entry a device of its own instead of one shared with another entry."""
    dev_reg = dr.async_get(hass)
    ent_reg = er.async_get(hass)
    own = dev_reg.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, identifier)},
        name=shared.name,
        manufacturer=shared.manufacturer,
        model=shared.model,
        sw_version=shared.sw_version,
        hw_version=shared.hw_version,
    )
    dev_reg.async_update_device(
        own.id, area_id=shared.area_id, name_by_user=shared.name_by_user, labels=shared.labels
    )
    # Moved before the entry leaves the shared device: that would delete them.
    for entity in er.async_entries_for_device(ent_reg, shared.id, include_disabled_entities=True):
        if entity.config_entry_id == entry.entry_id:
            ent_reg.async_update_entity(entity.entity_id, device_id=own.id)
    dev_reg.async_update_device(shared.id, remove_config_entry_id=entry.entry_id)


@callback
def _async_migrate_devices(hass: HomeAssistant, entry: ConfigEntry, base_topic: str) -> None:
    dev_reg = dr.async_get(hass)
    others = {
        device.id
        for other in hass.config_entries.async_entries(DOMAIN)
        if other.entry_id != entry.entry_id
        for device in dr.async_entries_for_config_entry(dev_reg, other.entry_id)
    }
    for device in dr.async_entries_for_config_entry(dev_reg, entry.entry_id):
        device_id = _old_device_id(device)
        if device_id is None:
            continue
        identifier = device_identifier(base_topic, device_id)
        if identifier == device_id:
            continue  # the default base topic keeps its identifiers
        if device.id in others:
            _async_split_device(hass, entry, device, identifier)
            continue
        dev_reg.async_update_device(
            device.id,
            new_identifiers=(device.identifiers - {(DOMAIN, device_id)}) | {(DOMAIN, identifier)},
        )


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Migrate an entry to the current version (a newer major version is refused)."""
    if entry.version > VERSION:
        return False
    if entry.minor_version < 2:
        base_topic: str = entry.data[CONF_BASE_TOPIC]
        # Entities first: their old unique ids are split by the device's old identifier.
        await _async_migrate_entities(hass, entry, base_topic)
        _async_migrate_devices(hass, entry, base_topic)
        hass.config_entries.async_update_entry(entry, minor_version=2)
    if entry.minor_version < 3:
        _async_keep_enabled_diagnostics(hass, entry)
        hass.config_entries.async_update_entry(entry, minor_version=3)
    LOGGER.debug("%s is at version %s.%s", entry.title, entry.version, entry.minor_version)
    return True


@callback
def _async_keep_enabled_diagnostics(hass: HomeAssistant, entry: ConfigEntry) -> None:
    registry = er.async_get(hass)
    if CONF_ALL_DIAGNOSTICS not in entry.options and any(
        entity.disabled_by is None
        and is_extra_diagnostic(entity.domain, entity.unique_id)
        # Enabled by default in 1.2: enabled says nothing about the user's wish.
        and not entity.unique_id.endswith(("/diag:uptime_s", "/diag:identify"))
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
    ):
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_ALL_DIAGNOSTICS: True}
        )
