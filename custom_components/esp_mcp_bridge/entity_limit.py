"""Home Assistant's cap on enabled entities per config entry, made visible.

Since HA 2026.x an entity platform adds no new enabled entity to a config entry that
already has `MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY` (10,000) of them; it logs one
warning and drops the rest (`helpers/entity_platform.py`, `_async_add_entity`; HA's
`mqtt`, `zha`, `zwave_js`, `hue` and `matter` are exempt). A device of five sensors has
about ten enabled entities here, so one base topic holds about a thousand such devices.
A repair issue says so, and what to do, before devices go missing silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_platform, entity_registry as er, issue_registry as ir

from .const import DOMAIN, ISSUE_ENTITY_LIMIT
from .naming import issue_id

if TYPE_CHECKING:
    from collections.abc import Iterable

    from homeassistant.helpers.entity import Entity

    from .manager import EspMcpBridgeConfigEntry


def _limit() -> int | None:
    # Read at call time: older releases have no cap (None).
    limit = getattr(entity_platform, "MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY", None)
    return limit if isinstance(limit, int) else None


@callback
def async_check_entity_limit(
    hass: HomeAssistant, entry: EspMcpBridgeConfigEntry, platform: str, new: Iterable[Entity]
) -> None:
    """Raise (or clear) the entry's repair issue before `new` entities are added."""
    limit = _limit()
    registry = er.async_get(hass)
    count_enabled = getattr(registry.entities, "get_enabled_count_for_config_entry_id", None)
    if limit is None or count_enabled is None:
        return
    # Entities already in the registry are always added again; only new ones count.
    adding = sum(
        1
        for entity in new
        if entity.entity_registry_enabled_default
        and entity.unique_id is not None
        and registry.async_get_entity_id(platform, DOMAIN, entity.unique_id) is None
    )
    enabled = count_enabled(entry.entry_id)
    issue = issue_id(entry.entry_id, ISSUE_ENTITY_LIMIT, "")
    if enabled + adding > limit:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="entity_limit",
            translation_placeholders={
                "limit": str(limit),
                "base_topic": entry.runtime_data.base_topic,
                "devices": str(len(entry.runtime_data.devices)),
            },
        )
    elif adding == 0 and enabled < limit:
        ir.async_delete_issue(hass, DOMAIN, issue)
