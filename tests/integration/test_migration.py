"""Entries of version 1.1 (ids without base topic) migrate and keep their entity ids."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.esp_mcp_bridge.const import (
    CONF_ALL_DIAGNOSTICS,
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    DOMAIN,
)

from .conftest import BASE, DEVICE, Device, adopt, find_device

SITE = "site2"


def _entry(base: str, minor_version: int = 1, version: int = 1) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"ESP32 MCP Bridge ({base})",
        data={CONF_BASE_TOPIC: base},
        options={CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: False},
        unique_id=base,
        version=version,
        minor_version=minor_version,
    )


def _old_entity(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    device: dr.DeviceEntry,
    entity_id: str,
    key: str,
    *,
    translation_key: str | None = None,
) -> er.RegistryEntry:
    """An entity as version 1.1 registered it: unique_id `{D}_{key}`."""
    domain, object_id = entity_id.split(".")
    return er.async_get(hass).async_get_or_create(
        domain,
        DOMAIN,
        f"{DEVICE}_{key}",
        config_entry=entry,
        device_id=device.id,
        suggested_object_id=object_id,
        translation_key=translation_key,
    )


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_default_base_topic_keeps_device_and_entity_ids(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    device: Device,
    caps: dict[str, Any],
) -> None:
    """Unique ids get the new form; entity ids, device identifier and history stay."""
    entry = _entry(BASE)
    entry.add_to_hass(hass)
    ha_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, DEVICE)}, name="Greenhouse"
    )
    temperature = _old_entity(
        hass, entry, ha_device, "sensor.greenhouse_temperature", "temperature"
    )
    heap = _old_entity(
        hass,
        entry,
        ha_device,
        "sensor.greenhouse_free_heap",
        "diag_free_heap",
        translation_key="free_heap",
    )
    await _setup(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == 3
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get(temperature.entity_id).unique_id == f"{DEVICE}/temperature"
    assert ent_reg.async_get(heap.entity_id).unique_id == f"{DEVICE}/diag:free_heap"
    assert dr.async_get(hass).async_get(ha_device.id).identifiers == {(DOMAIN, DEVICE)}
    # The device comes: the migrated registry entries are used, no `_2` duplicates.
    await adopt(hass, caps | {"discovery": "integration"})
    assert ent_reg.async_get("sensor.greenhouse_temperature").id == temperature.id
    assert ent_reg.async_get("sensor.greenhouse_free_heap").id == heap.id
    assert hass.states.get("sensor.greenhouse_temperature_2") is None
    assert find_device(hass, (DOMAIN, DEVICE)).id == ha_device.id


async def test_other_base_topic_gets_namespaced_ids(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    """Below another base topic the device identifier gains the base topic too."""
    entry = _entry(SITE)
    entry.add_to_hass(hass)
    dev_reg = dr.async_get(hass)
    ha_device = dev_reg.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, DEVICE), ("other", "keep")},
    )
    led = _old_entity(hass, entry, ha_device, "light.greenhouse_led", "led")
    await _setup(hass, entry)
    assert dev_reg.async_get(ha_device.id).identifiers == {
        (DOMAIN, f"{SITE}/{DEVICE}"),
        ("other", "keep"),
    }
    assert er.async_get(hass).async_get(led.entity_id).unique_id == f"{SITE}/{DEVICE}/led"


async def test_device_shared_by_two_entries_is_split(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    """Version 1.1 merged equal device ids of two base topics into one device: split it."""
    default, site = _entry(BASE), _entry(SITE)
    default.add_to_hass(hass)
    site.add_to_hass(hass)
    dev_reg = dr.async_get(hass)
    shared = dev_reg.async_get_or_create(
        config_entry_id=default.entry_id, identifiers={(DOMAIN, DEVICE)}, name="Greenhouse"
    )
    other = dev_reg.async_get_or_create(
        config_entry_id=site.entry_id, identifiers={(DOMAIN, DEVICE)}
    )
    if other.id != shared.id:
        # HA >= 2026.x keeps identifiers per config entry: the two base topics already have
        # a device each, and the migration only gives the other one its namespaced id.
        await _setup(hass, site)
        assert find_device(hass, (DOMAIN, f"{SITE}/{DEVICE}")) == dev_reg.async_get(other.id)
        assert dev_reg.async_get(shared.id).identifiers == {(DOMAIN, DEVICE)}
        return
    dev_reg.async_update_device(shared.id, area_id="garden", name_by_user="Glasshouse")
    mine = _old_entity(hass, default, shared, "sensor.greenhouse_temperature", "temperature")
    theirs = _old_entity(hass, site, shared, "sensor.greenhouse_humidity", "humidity")
    await _setup(hass, site)  # sets up both entries
    assert default.state is ConfigEntryState.LOADED
    ent_reg = er.async_get(hass)
    split = find_device(hass, (DOMAIN, f"{SITE}/{DEVICE}"))
    assert split is not None
    assert split.id != shared.id
    assert (split.name, split.name_by_user, split.area_id) == (
        "Greenhouse",
        "Glasshouse",
        "garden",
    )
    assert dr.async_entries_for_config_entry(dev_reg, site.entry_id) == [split]
    assert dev_reg.async_get(shared.id).identifiers == {(DOMAIN, DEVICE)}
    moved = ent_reg.async_get(theirs.entity_id)
    assert (moved.device_id, moved.unique_id) == (split.id, f"{SITE}/{DEVICE}/humidity")
    kept = ent_reg.async_get(mine.entity_id)
    assert (kept.device_id, kept.unique_id) == (shared.id, f"{DEVICE}/temperature")


async def test_entity_without_device_is_left_alone(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    """An entity whose device is gone cannot be told apart: it keeps its unique id."""
    entry = _entry(BASE)
    entry.add_to_hass(hass)
    orphan = er.async_get(hass).async_get_or_create(
        "sensor", DOMAIN, f"{DEVICE}_temperature", config_entry=entry
    )
    await _setup(hass, entry)
    assert entry.minor_version == 3
    assert er.async_get(hass).async_get(orphan.entity_id).unique_id == f"{DEVICE}_temperature"


async def test_newer_entry_version_is_refused(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    """An entry written by a future major version is not set up by this one."""
    entry = _entry(BASE, version=2)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR


def _diagnostic(
    hass: HomeAssistant, entry: MockConfigEntry, key: str, *, disabled: bool
) -> er.RegistryEntry:
    """A diagnostic sensor as version 1.2 registered it (the extra ones disabled by default)."""
    return er.async_get(hass).async_get_or_create(
        "sensor",
        DOMAIN,
        f"{DEVICE}/diag:{key}",
        config_entry=entry,
        suggested_object_id=f"greenhouse_{key}",
        translation_key=key,
        disabled_by=er.RegistryEntryDisabler.INTEGRATION if disabled else None,
    )


async def test_enabled_extra_diagnostic_keeps_the_option_on(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, caps: dict[str, Any]
) -> None:
    """1.2 -> 1.3: a user who had enabled signal strength keeps it (the option turns on)."""
    entry = _entry(BASE, minor_version=2)
    entry.add_to_hass(hass)
    rssi = _diagnostic(hass, entry, "rssi", disabled=False)
    counter = _diagnostic(hass, entry, "messages_sent", disabled=True)
    await _setup(hass, entry)
    assert entry.minor_version == 3
    assert entry.options[CONF_ALL_DIAGNOSTICS] is True
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get(rssi.entity_id) is not None
    # Left as the user had it: still disabled.
    assert ent_reg.async_get(counter.entity_id).disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_untouched_extra_diagnostics_are_removed(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, caps: dict[str, Any]
) -> None:
    """1.2 -> 1.3: extra diagnostics nobody enabled leave the registry; the option stays off."""
    entry = _entry(BASE, minor_version=2)
    entry.add_to_hass(hass)
    counter = _diagnostic(hass, entry, "messages_sent", disabled=True)
    heap = _diagnostic(hass, entry, "free_heap", disabled=False)
    await _setup(hass, entry)
    assert entry.minor_version == 3
    assert CONF_ALL_DIAGNOSTICS not in entry.options
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get(counter.entity_id) is None
    assert ent_reg.async_get(heap.entity_id) is not None
