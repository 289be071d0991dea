"""Taking a device over from plain MQTT discovery without `_2` entity ids.

The device answers `set_discovery integration` by clearing its retained discovery
message (HA's MQTT integration then removes its entities and device entry) and
re-publishing its capabilities in mode `integration`. This integration adds its own
entities only after that, so they get the entity ids the MQTT entities had.

A device that does not clear its discovery message in time (an older firmware, a lost
command) has it cleared here with an empty retained message, as HA's Tasmota
integration does with stale discovery: HA's MQTT integration removes its own entities
then. This integration never edits the MQTT integration's registry entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import (
    async_call_later,
    async_track_entity_registry_updated_event,
    async_track_state_change_event,
)

from .const import LOGGER
from .protocol import DiscoveryMode, discovery_config_topic

if TYPE_CHECKING:
    from .manager import BridgeManager

# How long a taken-over device may take to switch, and HA's MQTT integration to remove
# its entities once the discovery message is cleared.
TAKEOVER_TIMEOUT: Final = 10.0


def _entities_gone(hass: HomeAssistant, entity_ids: list[str]) -> bool:
    registry = er.async_get(hass)
    return all(
        registry.async_get(entity_id) is None and hass.states.get(entity_id) is None
        for entity_id in entity_ids
    )


async def _async_wait_until(
    hass: HomeAssistant,
    condition: Callable[[], bool],
    timeout_s: float,
    *,
    entity_ids: list[str] | None = None,
    signal: str | None = None,
) -> bool:
    """Wait until `condition` holds, re-checked on entity changes and on `signal`."""
    if condition():
        return True
    done: asyncio.Future[bool] = hass.loop.create_future()

    @callback
    def _check(*_args: object) -> None:
        if not done.done() and condition():
            done.set_result(True)

    @callback
    def _timeout(_now: datetime) -> None:
        if not done.done():
            done.set_result(False)

    unsubs = [async_call_later(hass, timeout_s, _timeout)]
    if entity_ids:
        # Keyed trackers: with hundreds of devices adopted at once, a bus listener
        # each would re-check every waiting device on every registry change.
        unsubs.append(async_track_state_change_event(hass, entity_ids, _check))
        unsubs.append(async_track_entity_registry_updated_event(hass, entity_ids, _check))
    if signal is not None:
        unsubs.append(async_dispatcher_connect(hass, signal, _check))
    try:
        return await done
    finally:
        for unsub in unsubs:
            unsub()


async def _async_clear_discovery(hass: HomeAssistant, device_id: str) -> None:
    try:
        await mqtt.async_publish(hass, discovery_config_topic(device_id), "", qos=1, retain=True)
    except HomeAssistantError as err:
        LOGGER.warning("Could not clear the MQTT discovery message of %s: %s", device_id, err)


async def async_adopt_after_takeover(manager: BridgeManager, device_id: str) -> None:
    """Add a taken-over device's entities once HA's MQTT integration dropped its own."""
    hass = manager.hass

    def switched() -> bool:
        device = manager.devices.get(device_id)
        caps = device.capabilities if device is not None else None
        return caps is None or caps.discovery is not DiscoveryMode.MQTT

    confirmed = await _async_wait_until(
        hass,
        switched,
        TAKEOVER_TIMEOUT,
        signal=manager.capabilities_signal(device_id),
    )
    device = manager.devices.get(device_id)
    if device is None or device.capabilities is None or not device.adopting:
        return
    entity_ids = manager.mqtt_discovery_entities(device.capabilities)

    def gone() -> bool:
        return _entities_gone(hass, entity_ids)

    if not confirmed or not await _async_wait_until(
        hass, gone, TAKEOVER_TIMEOUT, entity_ids=entity_ids
    ):
        LOGGER.info("Clearing the MQTT discovery message device %s left behind", device_id)
        await _async_clear_discovery(hass, device_id)
        if not await _async_wait_until(hass, gone, TAKEOVER_TIMEOUT, entity_ids=entity_ids):
            LOGGER.warning(
                "HA's MQTT integration kept the entities %s of device %s", entity_ids, device_id
            )
    device = manager.devices.get(device_id)
    if device is None or not device.adopting:
        return
    device.adopting = False
    manager.async_add_device_entities(device_id)
