"""Base entities and the shared platform setup of the ESP32 MCP Bridge."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity_limit import async_check_entity_limit
from .manager import (
    BridgeManager,
    EspMcpBridgeConfigEntry,
    actuator_platform,
    sensor_platform,
    signal_device_update,
    signal_new_device,
)
from .models import DeviceData
from .protocol import Action, ActuatorSpec, SensorReading, SensorSpec, Value


class EspMcpBridgeEntity(Entity):
    """An entity of one bridged device, updated by dispatcher signals."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _platform_kind: Platform
    _update_keys: tuple[str, ...] = ()

    def __init__(self, manager: BridgeManager, device_id: str, key: str) -> None:
        """Initialise with the device and a per-device key (`diag_<name>`).

        Entities of a sensor or actuator replace the unique id with their own.
        """
        self._manager = manager
        self._device_id = device_id
        self._attr_unique_id = manager.diagnostic_unique_id(device_id, key)
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, manager.device_identifier(device_id))}
        )

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
    """Entity for a sensor capability.

    Readings arrive far more often than anything else: the manager hands each one
    straight to `_async_reading`, which only copies the reading; what comes from the
    capabilities is applied when they change.
    """

    def __init__(self, manager: BridgeManager, device_id: str, spec: SensorSpec) -> None:
        """Initialise from the sensor capability."""
        super().__init__(manager, device_id, spec.id)
        self._attr_unique_id = manager.capability_unique_id(device_id, spec.id)
        self._spec = spec
        self._attr_name = spec.name

    async def async_added_to_hass(self) -> None:
        """Listen for the device's updates and this sensor's readings."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self._manager.async_listen_reading(self._device_id, self._spec.id, self._async_reading)
        )

    @callback
    def _async_update_from_device(self) -> None:
        caps = self._device.capabilities
        if caps is not None and (spec := caps.sensor(self._spec.id)) is not None:
            self._spec = spec
            self._attr_name = spec.name
        self._apply_spec()
        self._apply_reading(self._device.sensors.get(self._spec.id))

    def _apply_spec(self) -> None:
        """Copy what the capability says (override)."""

    def _apply_reading(self, reading: SensorReading | None) -> None:
        """Copy a reading, or none (override)."""

    @callback
    def _async_reading(self, reading: SensorReading) -> None:
        self._apply_reading(reading)
        self.async_write_ha_state()


class EspMcpBridgeActuatorEntity(EspMcpBridgeEntity):
    """Entity for an actuator capability."""

    def __init__(self, manager: BridgeManager, device_id: str, spec: ActuatorSpec) -> None:
        """Initialise from the actuator capability."""
        super().__init__(manager, device_id, spec.id)
        self._attr_unique_id = manager.capability_unique_id(device_id, spec.id)
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
        self._attr_extra_state_attributes = (
            {"requires_confirmation": True} if self._spec.requires_confirmation else {}
        )

    async def _async_actuate(self, action: Action, value: Value | None = None) -> None:
        """Send an action; the state follows the value the device acknowledges."""
        await self._manager.async_actuate(self._device_id, self._spec.id, action, value)


class EspMcpBridgeOnOffEntity(EspMcpBridgeActuatorEntity):
    """A boolean actuator (switch or light): on/off as the device acknowledged it."""

    _attr_is_on: bool | None

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        value = self._value
        self._attr_is_on = value if isinstance(value, bool) else None

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn on."""
        await self._async_actuate(Action.WRITE, True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn off."""
        await self._async_actuate(Action.WRITE, False)


type ActuatorEntityFactory = Callable[[BridgeManager, str, ActuatorSpec], EspMcpBridgeEntity]
type SensorEntityFactory = Callable[[BridgeManager, str, SensorSpec], EspMcpBridgeEntity]
type DeviceEntitiesFactory = Callable[[BridgeManager, str], Iterable[EspMcpBridgeEntity]]


def async_setup_platform_entities(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    platform: Platform,
    *,
    actuator_entity: ActuatorEntityFactory | None = None,
    sensor_entity: SensorEntityFactory | None = None,
    device_entities: DeviceEntitiesFactory | None = None,
) -> None:
    """Add one platform's entities for every adopted device, now and later.

    `actuator_entity`/`sensor_entity` make the entity of each actuator/sensor
    capability that maps to `platform` (by its value type, see the manager);
    `device_entities` makes the fixed entities every device has on this platform.
    Devices adopted later and capabilities added later get their entities when the
    manager signals them; entities already added are skipped.
    """
    manager = entry.runtime_data
    added = manager.added_entities.setdefault(platform, set())

    def entities(device: DeviceData) -> Iterator[EspMcpBridgeEntity]:
        caps = device.capabilities
        assert caps is not None
        if sensor_entity is not None:
            for sensor in caps.sensors:
                if sensor_platform(sensor) is platform:
                    yield sensor_entity(manager, device.device_id, sensor)
        if actuator_entity is not None:
            for actuator in caps.actuators:
                if actuator_platform(actuator) is platform:
                    yield actuator_entity(manager, device.device_id, actuator)
        if device_entities is not None:
            yield from device_entities(manager, device.device_id)

    @callback
    def _async_add(device_id: str) -> None:
        device = manager.devices.get(device_id)
        if device is None or device.capabilities is None:
            return
        new = []
        for entity in entities(device):
            entity._platform_kind = platform
            if entity.unique_id is not None and entity.unique_id not in added:
                added.add(entity.unique_id)
                entity._async_update_from_device()
                new.append(entity)
        if new:
            async_check_entity_limit(hass, entry, platform, new)
            async_add_entities(new)

    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_device(entry.entry_id), _async_add)
    )
    for device_id in list(manager.devices):
        _async_add(device_id)
