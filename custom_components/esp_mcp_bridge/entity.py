"""Base entity and platform helpers for the ESP32 MCP Bridge."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .manager import (
    BridgeManager,
    DeviceData,
    EspMcpBridgeConfigEntry,
    signal_device_update,
    signal_new_device,
)
from .protocol import ActuatorSpec, SensorSpec


class EspMcpBridgeEntity(Entity):
    """An entity of one bridged device, updated by dispatcher signals."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _platform_kind: Platform
    _update_keys: tuple[str, ...] = ()

    def __init__(self, manager: BridgeManager, device_id: str, key: str) -> None:
        """Initialise with the device and a per-device key."""
        self._manager = manager
        self._device_id = device_id
        self._attr_unique_id = f"{device_id}_{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, device_id)})

    @property
    def _device(self) -> DeviceData:
        return self._manager.devices[self._device_id]

    @property
    def available(self) -> bool:
        """Available when MQTT is connected and the device is online."""
        device = self._manager.devices.get(self._device_id)
        return device is not None and self._manager.is_available(device)

    async def async_added_to_hass(self) -> None:
        """Listen for the device's updates."""
        entry_id = self._manager.entry.entry_id
        for key in ("available", "capabilities", *self._update_keys):
            self.async_on_remove(
                async_dispatcher_connect(
                    self.hass,
                    signal_device_update(entry_id, self._device_id, key),
                    self._async_device_updated,
                )
            )
        self._async_update_from_device()

    async def async_will_remove_from_hass(self) -> None:
        """Forget the entity so it can be added again."""
        if self.unique_id is not None:
            self._manager.added_entities.get(self._platform_kind, set()).discard(self.unique_id)

    @callback
    def _async_update_from_device(self) -> None:
        """Copy state from the device data (override)."""

    @callback
    def _async_device_updated(self) -> None:
        if self._device_id not in self._manager.devices:
            return
        self._async_update_from_device()
        self.async_write_ha_state()


class EspMcpBridgeSensorEntity(EspMcpBridgeEntity):
    """Entity for a sensor capability."""

    def __init__(self, manager: BridgeManager, device_id: str, spec: SensorSpec) -> None:
        """Initialise from the sensor capability."""
        super().__init__(manager, device_id, spec.id)
        self._spec = spec
        self._attr_name = spec.name
        self._update_keys = (f"sensor_{spec.id}",)

    @callback
    def _async_update_from_device(self) -> None:
        caps = self._device.capabilities
        if caps is not None and (spec := caps.sensor(self._spec.id)) is not None:
            self._spec = spec
            self._attr_name = spec.name


class EspMcpBridgeActuatorEntity(EspMcpBridgeEntity):
    """Entity for an actuator capability."""

    def __init__(self, manager: BridgeManager, device_id: str, spec: ActuatorSpec) -> None:
        """Initialise from the actuator capability."""
        super().__init__(manager, device_id, spec.id)
        self._spec = spec
        self._attr_name = spec.name
        self._update_keys = (f"actuator_{spec.id}",)

    @property
    def _value(self) -> object:
        return self._device.actuators.get(self._spec.id)

    @callback
    def _async_update_from_device(self) -> None:
        caps = self._device.capabilities
        if caps is not None and (spec := caps.actuator(self._spec.id)) is not None:
            self._spec = spec
            self._attr_name = spec.name


type EntityFactory = Callable[[BridgeManager, DeviceData], Iterable[EspMcpBridgeEntity]]


def async_setup_device_entities(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    platform: Platform,
    factory: EntityFactory,
) -> None:
    """Add a platform's entities for every adopted device, now and later."""
    manager = entry.runtime_data
    added = manager.added_entities.setdefault(platform, set())

    @callback
    def _async_add(device_id: str) -> None:
        device = manager.devices.get(device_id)
        if device is None or device.capabilities is None:
            return
        new = []
        for entity in factory(manager, device):
            entity._platform_kind = platform
            if entity.unique_id is not None and entity.unique_id not in added:
                added.add(entity.unique_id)
                entity._async_update_from_device()
                new.append(entity)
        if new:
            async_add_entities(new)

    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_device(entry.entry_id), _async_add)
    )
    for device_id in list(manager.devices):
        _async_add(device_id)
