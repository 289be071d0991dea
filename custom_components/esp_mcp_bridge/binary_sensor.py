"""Binary sensors: boolean readings and device connectivity."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import (
    EspMcpBridgeActuatorEntity,
    EspMcpBridgeEntity,
    EspMcpBridgeSensorEntity,
    async_setup_platform_entities,
)
from .manager import BridgeManager, EspMcpBridgeConfigEntry
from .protocol import SensorReading

PARALLEL_UPDATES = 0

TYPE_DEVICE_CLASSES: dict[str, BinarySensorDeviceClass] = {
    "motion": BinarySensorDeviceClass.MOTION,
    "occupancy": BinarySensorDeviceClass.OCCUPANCY,
    "presence": BinarySensorDeviceClass.PRESENCE,
    "door": BinarySensorDeviceClass.DOOR,
    "window": BinarySensorDeviceClass.WINDOW,
    "opening": BinarySensorDeviceClass.OPENING,
    "moisture": BinarySensorDeviceClass.MOISTURE,
    "leak": BinarySensorDeviceClass.MOISTURE,
    "smoke": BinarySensorDeviceClass.SMOKE,
    "gas": BinarySensorDeviceClass.GAS,
    "vibration": BinarySensorDeviceClass.VIBRATION,
    "sound": BinarySensorDeviceClass.SOUND,
    "light": BinarySensorDeviceClass.LIGHT,
    "problem": BinarySensorDeviceClass.PROBLEM,
    "battery_low": BinarySensorDeviceClass.BATTERY,
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up binary sensors."""
    async_setup_platform_entities(
        hass,
        entry,
        async_add_entities,
        Platform.BINARY_SENSOR,
        sensor_entity=EspMcpBridgeBinarySensor,
        actuator_entity=EspMcpBridgeReadOnlyOnOff,
        device_entities=_connectivity,
    )


def _connectivity(manager: BridgeManager, device_id: str) -> Iterable[EspMcpBridgeEntity]:
    yield EspMcpBridgeConnectivity(manager, device_id, "diag_status")


class EspMcpBridgeBinarySensor(EspMcpBridgeSensorEntity, BinarySensorEntity):
    """A boolean sensor capability."""

    def _apply_spec(self) -> None:
        self._attr_device_class = TYPE_DEVICE_CLASSES.get(self._spec.type)

    def _apply_reading(self, reading: SensorReading | None) -> None:
        self._attr_is_on = reading.value if reading and isinstance(reading.value, bool) else None
        quality = reading.quality if reading else None
        self._attr_extra_state_attributes = {"quality": quality} if quality is not None else {}


class EspMcpBridgeReadOnlyOnOff(EspMcpBridgeActuatorEntity, BinarySensorEntity):
    """A boolean actuator without `write`: its state, read-only."""

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        value = self._value
        self._attr_is_on = value if isinstance(value, bool) else None


class EspMcpBridgeConnectivity(EspMcpBridgeEntity, BinarySensorEntity):
    """Whether the device is connected (status topic, offline timeout)."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "status"

    @property
    def available(self) -> bool:
        """Known while MQTT is connected, also when the device is offline."""
        return self._manager.mqtt_connected and self._device_id in self._manager.devices

    @callback
    def _async_update_from_device(self) -> None:
        self._attr_is_on = self._device.available
