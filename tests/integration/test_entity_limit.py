"""HA's cap on enabled entities per config entry (2026.x) raises a repair issue."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_platform, entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.esp_mcp_bridge.const import DOMAIN

from .conftest import adopt

pytestmark = pytest.mark.skipif(
    not hasattr(entity_platform, "MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY"),
    reason="this Home Assistant has no per-entry entity cap",
)


def _enabled(hass: HomeAssistant, entry: MockConfigEntry) -> int:
    return sum(
        1
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.disabled_by is None
    )


async def test_cap_reached_raises_an_issue(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """The first device fits, the second does not: HA drops its entities, we say so."""
    issue_id = f"{loaded.entry_id}_entity_limit"
    with patch.object(entity_platform, "MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY", 30):
        await adopt(hass, caps | {"device_id": "dev-1"}, "dev-1")
        first = _enabled(hass, loaded)
        assert 0 < first <= 30
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        await adopt(hass, caps | {"device_id": "dev-2"}, "dev-2")
        # HA added only what fit under the cap ...
        assert _enabled(hass, loaded) <= 30
        # ... and the user is told why the rest is missing, and what to do.
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.translation_key == "entity_limit"
        assert issue.translation_placeholders == {
            "limit": "30",
            "base_topic": "mcp_bridge",
            "devices": "2",
        }


async def test_no_issue_below_the_cap(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """A normal entry has no entity-limit issue."""
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"{adopted.entry_id}_entity_limit") is None
