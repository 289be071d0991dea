"""Sensors: numeric/string/enum readings and device metrics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.components.sensor.const import DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS
from homeassistant.const import (
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    Platform,
    UnitOfInformation,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .entity import (
    EspMcpBridgeActuatorEntity,
    EspMcpBridgeEntity,
    EspMcpBridgeSensorEntity,
    async_setup_platform_entities,
)
from .extra_diagnostics import is_extra
from .manager import BridgeManager, EspMcpBridgeConfigEntry
from .protocol import MAX_STRING_LEN, ActuatorSpec, SensorReading, SensorSpec, ValueType

PARALLEL_UPDATES = 0

TYPE_DEVICE_CLASSES: dict[str, SensorDeviceClass] = {
    "temperature": SensorDeviceClass.TEMPERATURE,
    "humidity": SensorDeviceClass.HUMIDITY,
    "soil_moisture": SensorDeviceClass.MOISTURE,
    "moisture": SensorDeviceClass.MOISTURE,
    "pressure": SensorDeviceClass.PRESSURE,
    "atmospheric_pressure": SensorDeviceClass.ATMOSPHERIC_PRESSURE,
    "illuminance": SensorDeviceClass.ILLUMINANCE,
    "light": SensorDeviceClass.ILLUMINANCE,
    "co2": SensorDeviceClass.CO2,
    "carbon_dioxide": SensorDeviceClass.CO2,
    "voltage": SensorDeviceClass.VOLTAGE,
    "current": SensorDeviceClass.CURRENT,
    "power": SensorDeviceClass.POWER,
    "energy": SensorDeviceClass.ENERGY,
    "battery": SensorDeviceClass.BATTERY,
    "pm25": SensorDeviceClass.PM25,
    "pm10": SensorDeviceClass.PM10,
    "distance": SensorDeviceClass.DISTANCE,
    "frequency": SensorDeviceClass.FREQUENCY,
    "sound_pressure": SensorDeviceClass.SOUND_PRESSURE,
    "signal_strength": SensorDeviceClass.SIGNAL_STRENGTH,
    "weight": SensorDeviceClass.WEIGHT,
    "speed": SensorDeviceClass.SPEED,
    "volatile_organic_compounds": SensorDeviceClass.VOLATILE_ORGANIC_COMPOUNDS,
}


def device_class_for(spec: SensorSpec) -> SensorDeviceClass | None:
    """Device class for a numeric sensor, only when its unit fits the class."""
    device_class = TYPE_DEVICE_CLASSES.get(spec.type)
    if device_class is None:
        return None
    units = DEVICE_CLASS_UNITS.get(device_class)
    if units is not None and spec.unit not in units:
        return None
    return device_class


def state_class_for(device_class: SensorDeviceClass | None) -> SensorStateClass | None:
    """State class of a numeric sensor: `measurement` where HA allows it.

    Classes that only allow totals (energy) get `total_increasing`: a meter reading,
    a smaller value is a reset. The Energy dashboard needs one of the totals.
    """
    allowed = DEVICE_CLASS_STATE_CLASSES.get(device_class) if device_class else None
    if allowed is None:
        return SensorStateClass.MEASUREMENT
    for state_class in (
        SensorStateClass.MEASUREMENT,
        SensorStateClass.TOTAL_INCREASING,
        SensorStateClass.TOTAL,
    ):
        if state_class in allowed:
            return state_class
    return None


def state_value(spec: SensorSpec | ActuatorSpec, value: object) -> StateType:
    """A value as the state of a sensor of `spec`'s type (None when it does not fit).

    A value kept from before the capability changed its type does not fit; strings
    are cut to the 255 characters HA allows in a state.
    """
    if spec.value_type is ValueType.NUMBER:
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if not isinstance(value, str):
        return None
    if spec.value_type is ValueType.ENUM:
        return value if value in spec.options else None
    return value[:MAX_STRING_LEN]


@dataclass(frozen=True, kw_only=True)
class MetricDescription(SensorEntityDescription):
    """A device metric shown as a diagnostic sensor."""

    boot_time: bool = False  # show the seconds since boot as the time of the boot


# A boot time computed from a new metrics message moves by the message's latency; it
# only counts as a new boot (a restart) beyond this.
BOOT_TIME_TOLERANCE = timedelta(seconds=10)

METRIC_DESCRIPTIONS: tuple[MetricDescription, ...] = (
    # A timestamp, not a seconds counter: that would change (and be recorded) with
    # every metrics message.
    MetricDescription(
        key="uptime_s",
        translation_key="uptime",
        device_class=SensorDeviceClass.TIMESTAMP,
        boot_time=True,
    ),
    MetricDescription(
        key="rssi",
        translation_key="rssi",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
    ),
    MetricDescription(
        key="free_heap",
        translation_key="free_heap",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        state_class=SensorStateClass.MEASUREMENT,
    ),
    MetricDescription(
        key="min_free_heap",
        translation_key="min_free_heap",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        state_class=SensorStateClass.MEASUREMENT,
    ),
    *(
        MetricDescription(
            key=key,
            translation_key=key,
            state_class=SensorStateClass.TOTAL_INCREASING,
        )
        for key in (
            "messages_sent",
            "messages_received",
            "connection_failures",
            "sensor_read_errors",
            "actuator_errors",
            "wifi_reconnections",
            "mqtt_reconnections",
        )
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EspMcpBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up sensors."""
    async_setup_platform_entities(
        hass,
        entry,
        async_add_entities,
        Platform.SENSOR,
        sensor_entity=EspMcpBridgeReadingSensor,
        actuator_entity=EspMcpBridgeReadOnlyActuator,
        device_entities=_metric_sensors,
    )


def _metric_sensors(manager: BridgeManager, device_id: str) -> Iterable[EspMcpBridgeEntity]:
    for description in METRIC_DESCRIPTIONS:
        # Opt-in ones (extra_diagnostics) are enabled when asked for: the user wants them.
        if manager.all_diagnostics or not is_extra(Platform.SENSOR, description.key):
            yield EspMcpBridgeMetricSensor(manager, device_id, description)


class EspMcpBridgeReadingSensor(EspMcpBridgeSensorEntity, SensorEntity):
    """A sensor capability with a number, string or enum value."""

    _static_attributes: dict[str, Any]
    _quality: int | None = None

    def _apply_spec(self) -> None:
        spec = self._spec
        # All four for every type: a capability can change its value type in place.
        self._attr_device_class = None
        self._attr_native_unit_of_measurement = None
        self._attr_state_class = None
        self._attr_options = None
        if spec.value_type is ValueType.NUMBER:
            self._attr_device_class = device_class_for(spec)
            self._attr_native_unit_of_measurement = spec.unit
            self._attr_state_class = state_class_for(self._attr_device_class)
        elif spec.value_type is ValueType.ENUM:
            self._attr_device_class = SensorDeviceClass.ENUM
            self._attr_options = list(spec.options)
        attributes: dict[str, Any] = {}
        if spec.calibration_required:
            attributes["calibration_required"] = True
        if spec.calibration_interval_s is not None:
            attributes["calibration_interval_s"] = spec.calibration_interval_s
        if spec.accuracy is not None:
            attributes["accuracy"] = spec.accuracy
        self._static_attributes = attributes
        self._attr_extra_state_attributes = attributes
        self._quality = None

    def _apply_reading(self, reading: SensorReading | None) -> None:
        self._attr_native_value = state_value(self._spec, reading.value) if reading else None
        quality = reading.quality if reading else None
        if quality != self._quality:
            self._quality = quality
            self._attr_extra_state_attributes = (
                self._static_attributes
                if quality is None
                else {**self._static_attributes, "quality": quality}
            )


class EspMcpBridgeReadOnlyActuator(EspMcpBridgeActuatorEntity, SensorEntity):
    """A number, enum or string actuator without `write`: its state, read-only.

    No state class: the state is a setting the device reports, not a measurement.
    """

    @callback
    def _async_update_from_device(self) -> None:
        super()._async_update_from_device()
        spec = self._spec
        self._attr_native_unit_of_measurement = (
            spec.unit if spec.value_type is ValueType.NUMBER else None
        )
        enum = spec.value_type is ValueType.ENUM
        self._attr_device_class = SensorDeviceClass.ENUM if enum else None
        self._attr_options = list(spec.options) if enum else None
        self._attr_native_value = state_value(spec, self._value)


class EspMcpBridgeMetricSensor(EspMcpBridgeEntity, SensorEntity):
    """A device metric (diagnostic)."""

    entity_description: MetricDescription
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _update_keys = ("metrics",)

    def __init__(
        self, manager: BridgeManager, device_id: str, description: MetricDescription
    ) -> None:
        """Initialise the metric sensor."""
        super().__init__(manager, device_id, f"diag_{description.key}")
        self.entity_description = description

    @callback
    def _async_update_from_device(self) -> None:
        device = self._device
        metrics = device.metrics
        value = metrics.get(self.entity_description.key) if metrics else None
        if not self.entity_description.boot_time:
            self._attr_native_value = value
            return
        if value is None or device.metrics_received is None:
            self._attr_native_value = None
            return
        boot = (device.metrics_received - timedelta(seconds=value)).replace(microsecond=0)
        previous = self._attr_native_value
        if not isinstance(previous, datetime) or abs(boot - previous) > BOOT_TIME_TOLERANCE:
            self._attr_native_value = boot
