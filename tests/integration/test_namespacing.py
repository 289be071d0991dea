"""Two base topics, look-alike ids: devices, entities and repair issues stay apart."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.esp_mcp_bridge.const import (
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    DOMAIN,
)

from .conftest import DEVICE, Device, adopt, find_device, fire

SITE = "site2"
CRITICAL = {"type": "actuator", "code": -1, "message": "fault", "severity": 3}


def _fire(hass: HomeAssistant, base: str, leaf: str, payload: Any) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    async_fire_mqtt_message(hass, f"{base}/{DEVICE}/{leaf}", text)


@pytest.fixture
async def site(hass: HomeAssistant, loaded: MockConfigEntry) -> MockConfigEntry:
    """A second entry for another base topic, set up next to the default one."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"ESP32 MCP Bridge ({SITE})",
        data={CONF_BASE_TOPIC: SITE},
        options={CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True},
        unique_id=SITE,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _issues(hass: HomeAssistant) -> set[str]:
    return {issue_id for domain, issue_id in ir.async_get(hass).issues if domain == DOMAIN}


async def test_same_device_id_on_two_base_topics(
    hass: HomeAssistant, loaded: MockConfigEntry, site: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Each base topic gets its own device, entities and repair issues."""
    caps = caps | {"discovery": "integration"}
    for base in ("mcp_bridge", SITE):
        _fire(hass, base, "status", "online")
        # Two devices that happen to share an id (their MACs differ).
        mac = "a4:cf:12:00:00:01" if base == SITE else caps["mac"]
        _fire(hass, base, "capabilities", caps | {"name": f"Greenhouse {base}", "mac": mac})
    await hass.async_block_till_done(wait_background_tasks=True)
    default = find_device(hass, (DOMAIN, DEVICE))
    other = find_device(hass, (DOMAIN, f"{SITE}/{DEVICE}"))
    assert default is not None
    assert other is not None
    assert default.id != other.id
    ent_reg = er.async_get(hass)
    ours = er.async_entries_for_config_entry(ent_reg, loaded.entry_id)
    theirs = er.async_entries_for_config_entry(ent_reg, site.entry_id)
    assert len(ours) == len(theirs)
    assert {e.device_id for e in theirs} == {other.id}
    _fire(hass, SITE, "sensors/temperature", {"value": 30})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_site2_temperature").state == "30"
    assert hass.states.get("sensor.greenhouse_mcp_bridge_temperature").state == "unknown"

    for _ in range(3):
        _fire(hass, SITE, "error", CRITICAL)
    await hass.async_block_till_done()
    assert len(_issues(hass)) == 1
    for _ in range(3):
        _fire(hass, "mcp_bridge", "error", CRITICAL)
    await hass.async_block_till_done()
    assert len(_issues(hass)) == 2
    # The default base topic's device reboots: only its own issue goes.
    _fire(hass, "mcp_bridge", "status", "offline")
    _fire(hass, "mcp_bridge", "status", "online")
    await hass.async_block_till_done()
    [left] = _issues(hass)
    assert site.entry_id in left


async def test_services_reach_a_device_on_another_base_topic(
    hass: HomeAssistant, site: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """An action on a device of a second base topic is sent below that base topic."""
    device.base = SITE
    _fire(hass, SITE, "status", "online")
    _fire(hass, SITE, "capabilities", caps | {"discovery": "integration"})
    await hass.async_block_till_done(wait_background_tasks=True)
    ha_device = find_device(hass, (DOMAIN, f"{SITE}/{DEVICE}"))
    assert ha_device is not None
    response = await hass.services.async_call(
        DOMAIN,
        "send_command",
        {"device_id": ha_device.id, "command": "ping"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["result"] == {"uptime_s": 42}
    assert device.sent(f"{SITE}/{DEVICE}/cmd")[-1]["cmd"] == "ping"
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.greenhouse_heater"}, blocking=True
    )
    assert device.sent(f"{SITE}/{DEVICE}/actuators/heater/set")[-1]["value"] is True


async def test_capability_named_like_a_diagnostic(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """A sensor with the id `diag_free_heap` and the Free heap diagnostic both exist."""
    caps["sensors"].append(
        {"id": "diag_free_heap", "type": "memory", "name": "Heap", "value_type": "number"}
    )
    await adopt(hass, caps)
    fire(hass, "sensors/diag_free_heap", {"value": 7})
    fire(hass, "metrics", {"uptime_s": 5, "free_heap": 9000})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_heap").state == "7"
    assert hass.states.get("sensor.greenhouse_free_heap").state == "9000"
    ent_reg = er.async_get(hass)
    assert (
        ent_reg.async_get("sensor.greenhouse_heap").unique_id
        != ent_reg.async_get("sensor.greenhouse_free_heap").unique_id
    )


async def test_entry_removal_deletes_its_repair_issues(
    hass: HomeAssistant, adopted: MockConfigEntry, site: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Removing an entry takes its repair issues along, not those of other entries."""
    fire(hass, "capabilities", caps | {"v": 2, "device_id": "esp32-new"}, "esp32-new")
    _fire(hass, SITE, "capabilities", caps | {"v": 2})
    for _ in range(3):
        fire(hass, "error", CRITICAL)
    await hass.async_block_till_done()
    assert len(_issues(hass)) == 3
    await hass.config_entries.async_remove(adopted.entry_id)
    await hass.async_block_till_done()
    [left] = _issues(hass)
    assert site.entry_id in left
