"""Every kind of capability gets the platform of tests/vectors/platforms.json.

The firmware's MQTT discovery follows the same table (its host tests run it), so a
device keeps its entity ids when the integration takes it over.
"""

from __future__ import annotations

import copy
from typing import Any

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import vectors

from .conftest import DEVICE, fire

ROWS = vectors.platforms()


@pytest.fixture
def caps() -> dict[str, Any]:
    """One device holding every row of the table."""
    caps = copy.deepcopy(vectors.reference_device()["capabilities"])
    caps["sensors"] = [copy.deepcopy(r.capability) for r in ROWS if r.kind == "sensor"]
    caps["actuators"] = [copy.deepcopy(r.capability) for r in ROWS if r.kind == "actuator"]
    return caps


def _entity(hass: HomeAssistant, capability_id: str) -> er.RegistryEntry:
    ent_reg = er.async_get(hass)
    found = [e for e in ent_reg.entities.values() if e.unique_id == f"{DEVICE}/{capability_id}"]
    assert len(found) == 1, (capability_id, found)
    return found[0]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
async def test_platform_and_state_class(
    hass: HomeAssistant, adopted: MockConfigEntry, row: vectors.PlatformCase
) -> None:
    """The entity's platform (and a sensor's state class) is the table's."""
    entry = _entity(hass, row.capability["id"])
    assert entry.domain == row.platform
    if row.has_state_class:
        state = hass.states.get(entry.entity_id)
        assert state is not None
        assert state.attributes.get("state_class") == row.state_class


async def test_read_only_actuators_show_their_state(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """Actuators without `write` are sensors of the state the device reports."""
    values = {"boolean": True, "number": 40, "enum": None, "string": "hello"}
    read_only = [
        r for r in ROWS if r.kind == "actuator" and r.platform in ("sensor", "binary_sensor")
    ]
    assert {r.capability["value_type"] for r in read_only} == {
        "boolean",
        "number",
        "enum",
        "string",
    }
    expected: dict[str, str] = {}
    for row in read_only:
        cap = row.capability
        value = values[cap["value_type"]]
        if value is None:
            value = cap["options"][-1]
        entity_id = _entity(hass, cap["id"]).entity_id
        assert hass.states.get(entity_id).state == STATE_UNKNOWN
        fire(hass, f"actuators/{cap['id']}/state", {"value": value, "ts": 1})
        expected[entity_id] = (
            (STATE_ON if value else STATE_OFF) if isinstance(value, bool) else str(value)
        )
    await hass.async_block_till_done()
    for entity_id, state in expected.items():
        assert hass.states.get(entity_id).state == state, entity_id
    number = next(r for r in read_only if r.capability["value_type"] == "number")
    state = hass.states.get(_entity(hass, number.capability["id"]).entity_id)
    assert state.attributes.get("unit_of_measurement") == number.capability.get("unit")
    enum = next(r for r in read_only if r.capability["value_type"] == "enum")
    state = hass.states.get(_entity(hass, enum.capability["id"]).entity_id)
    assert state.attributes["options"] == enum.capability["options"]
