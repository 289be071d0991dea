"""Names this integration gives devices, entities, repair issues and signals.

Device ids match `[a-z0-9][a-z0-9_-]{0,31}` and capability ids `[a-z0-9_]{1,32}`:
neither ever contains `/` or `:`. That makes these names unambiguous:

- HA device identifier `(esp_mcp_bridge, I)`: `I` is `D` on the default base topic
  (what version 1.1 used, so those devices stay as they are) and `B/D` on any other.
- entity unique_id `I/id` for a capability and `I/diag:name` for a diagnostic.
- repair issue id: the config entry id, `_`, then the issue's own id.

The device's own MQTT discovery names its entities `D_id` (protocol section 1); those
belong to HA's MQTT integration and are looked up as such during a takeover.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .const import DOMAIN
from .protocol import DEFAULT_BASE_TOPIC, is_valid_device_id

DIAG_PREFIX: Final = "diag_"


def device_identifier(base_topic: str, device_id: str) -> str:
    """The value of the device's `(esp_mcp_bridge, …)` identifier."""
    return device_id if base_topic == DEFAULT_BASE_TOPIC else f"{base_topic}/{device_id}"


def device_id_from_identifier(base_topic: str, identifier: str) -> str | None:
    """The device id an identifier of this base topic names, or None."""
    if base_topic == DEFAULT_BASE_TOPIC:
        device_id = identifier
    else:
        base, _, device_id = identifier.rpartition("/")
        if base != base_topic:
            return None
    return device_id if is_valid_device_id(device_id) else None


def capability_unique_id(base_topic: str, device_id: str, capability_id: str) -> str:
    """Unique id of the entity of one sensor or actuator."""
    return f"{device_identifier(base_topic, device_id)}/{capability_id}"


def diagnostic_unique_id(base_topic: str, device_id: str, key: str) -> str:
    """Unique id of a diagnostic entity; `key` is `diag_<name>` (or just the name)."""
    return f"{device_identifier(base_topic, device_id)}/diag:{key.removeprefix(DIAG_PREFIX)}"


def issue_id(entry_id: str, template: str, device_id: str) -> str:
    """Repair issue id of one device of one entry (`template` from const)."""
    return f"{entry_id}_{template.format(device_id=device_id)}"


def issue_prefix(entry_id: str) -> str:
    """What every repair issue id of one entry starts with."""
    return f"{entry_id}_"


def bridge_device_id(base_topic: str, identifiers: Iterable[tuple[str, str]]) -> str | None:
    """The device id of a registry device of this base topic, from its identifiers."""
    return next(
        (
            device_id
            for domain, value in identifiers
            if domain == DOMAIN
            and (device_id := device_id_from_identifier(base_topic, value)) is not None
        ),
        None,
    )
