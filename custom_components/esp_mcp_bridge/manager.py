"""Device manager: subscribes to the bridge topics and keeps per-device state."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import secrets
from typing import Any

from homeassistant.components import mqtt
from homeassistant.components.mqtt import ReceiveMessage
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.event import (
    async_call_later,
    async_track_entity_registry_updated_event,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util

from .const import (
    ALERT_BUFFER_SIZE,
    COMMAND_TIMEOUT_FACTOR,
    COMMAND_TIMEOUT_MAX,
    COMMAND_TIMEOUT_MIN,
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    CRITICAL_REPEAT_THRESHOLD,
    DEFAULT_OFFLINE_TIMEOUT,
    DEFAULT_TAKE_OVER,
    DOMAIN,
    EVENT_DEVICE_ERROR,
    ISSUE_CRITICAL_ERRORS,
    ISSUE_NEWER_PROTOCOL,
    LIGHT_TYPES,
    LOGGER,
)
from .protocol import (
    CRITICAL_SEVERITY,
    MAX_CAPABILITIES_BYTES,
    MAX_MESSAGE_BYTES,
    METRIC_FIELDS,
    PROTOCOL_VERSION,
    Action,
    ActuatorSpec,
    Capabilities,
    DeviceError,
    DiscoveryMode,
    ErrorCode,
    MessageKind,
    Metrics,
    ProtocolError,
    Response,
    SensorReading,
    SensorSpec,
    Value,
    ValueType,
    actuator_set_topic,
    build_actuator_set,
    build_command,
    check_actuator_command,
    check_value,
    cmd_topic,
    metrics_from_object,
    parse_actuator_state,
    parse_batch,
    parse_capabilities,
    parse_error,
    parse_metrics,
    parse_response,
    parse_sensor,
    parse_status,
    parse_topic,
)

type EspMcpBridgeConfigEntry = ConfigEntry[BridgeManager]

# `capabilities` last: its retained messages adopt devices, which are then asked for
# their metrics at once (HA's MQTT client may still re-subscribe wildcards one by one,
# so a missed answer is asked for again, see _request_metrics_again).
SUBSCRIBED_LEAVES = (
    "status",
    "sensors/+",
    "batch",
    "actuators/+/state",
    "metrics",
    "error",
    "response",
    "capabilities",
)
# Messages a device only sends live (never retained): proof that it is talking now.
LIVE_KINDS = frozenset(
    {MessageKind.SENSOR, MessageKind.BATCH, MessageKind.ACTUATOR_STATE, MessageKind.ERROR}
)
CRITICAL_WINDOW = timedelta(hours=1)
MAX_DEVICES = 1024
MAX_LOGGED_KEYS = 4096
OFFLINE_CHECK_INTERVAL = timedelta(seconds=10)
# How long a taken-over device may take to clear its MQTT discovery message before
# the integration removes the MQTT-discovered entities itself.
TAKEOVER_TIMEOUT = 10.0


def signal_new_device(entry_id: str) -> str:
    """Signal sent when a device's capabilities are (re)applied."""
    return f"{DOMAIN}_{entry_id}_device"


def signal_device_update(entry_id: str, device_id: str, key: str) -> str:
    """Signal for one piece of a device's state (`available`, `sensor_x`, ...)."""
    return f"{DOMAIN}_{entry_id}_{device_id}_{key}"


def sensor_platform(spec: SensorSpec) -> Platform:
    """Platform a sensor capability maps to."""
    return Platform.BINARY_SENSOR if spec.value_type is ValueType.BOOLEAN else Platform.SENSOR


def actuator_platform(spec: ActuatorSpec) -> Platform:
    """Platform an actuator capability maps to."""
    if spec.value_type is ValueType.BOOLEAN:
        return Platform.LIGHT if spec.type in LIGHT_TYPES else Platform.SWITCH
    return {
        ValueType.NUMBER: Platform.NUMBER,
        ValueType.ENUM: Platform.SELECT,
        ValueType.STRING: Platform.TEXT,
        ValueType.TRIGGER: Platform.BUTTON,
    }[spec.value_type]


def capability_entity_keys(caps: Capabilities) -> set[tuple[Platform, str]]:
    """(platform, unique_id) of every capability entity of a device."""
    keys = {(sensor_platform(s), f"{caps.device_id}_{s.id}") for s in caps.sensors}
    keys |= {(actuator_platform(a), f"{caps.device_id}_{a.id}") for a in caps.actuators}
    return keys


@dataclass(slots=True)
class Alert:
    """One error report kept in the ring buffer."""

    device_id: str
    error: DeviceError
    received: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return the WebSocket representation."""
        ts = (
            dt_util.utc_from_timestamp(self.error.ts / 1000).isoformat()
            if self.error.ts is not None
            else self.received.isoformat()
        )
        return {
            "device_id": self.device_id,
            "type": self.error.type,
            "code": self.error.code,
            "message": self.error.message,
            "severity": self.error.severity,
            "ts": ts,
            "received": self.received.isoformat(),
        }


@dataclass(slots=True)
class DeviceData:
    """Everything known about one bridged device."""

    device_id: str
    capabilities: Capabilities | None = None
    online: bool | None = None
    timed_out: bool = False
    last_seen: datetime | None = None
    sensors: dict[str, SensorReading] = field(default_factory=dict)
    actuators: dict[str, Value | None] = field(default_factory=dict)
    metrics: Metrics | None = None
    metrics_received: datetime | None = None
    last_error: DeviceError | None = None
    discovery_mode: str | None = None
    ha_device_id: str | None = None
    critical_times: deque[datetime] = field(default_factory=lambda: deque(maxlen=16))
    was_available: bool | None = None
    takeover_sent: bool = False
    adopting: bool = False
    metrics_requests: int = 0

    @property
    def available(self) -> bool:
        """Online by status and not silent for longer than the offline timeout."""
        return self.online is True and not self.timed_out

    @property
    def name(self) -> str:
        """Device name."""
        return self.capabilities.name if self.capabilities else self.device_id


class BridgeManager:
    """Owns the MQTT subscriptions and the state of the devices of one base topic."""

    def __init__(self, hass: HomeAssistant, entry: EspMcpBridgeConfigEntry) -> None:
        """Initialise from the config entry."""
        self.hass = hass
        self.entry = entry
        self.base_topic: str = entry.data[CONF_BASE_TOPIC]
        self.options: dict[str, Any] = dict(entry.options)
        self.offline_timeout: int = int(
            entry.options.get(CONF_OFFLINE_TIMEOUT, DEFAULT_OFFLINE_TIMEOUT)
        )
        self.take_over: bool = bool(entry.options.get(CONF_TAKE_OVER, DEFAULT_TAKE_OVER))
        self.devices: dict[str, DeviceData] = {}
        self.alerts: deque[Alert] = deque(maxlen=ALERT_BUFFER_SIZE)
        self.mqtt_connected = False
        self.added_entities: dict[Platform, set[str]] = {}
        # The hot path: a reading goes straight to its entity, no dispatcher signal.
        self._reading_listeners: dict[tuple[str, str], Callable[[SensorReading], None]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Response]] = {}
        self._logged: set[tuple[str, str]] = set()
        self._unsubs: list[CALLBACK_TYPE] = []

    # ------------------------------------------------------------- lifecycle

    async def async_start(self) -> None:
        """Subscribe to every device topic below the base topic."""
        self.mqtt_connected = mqtt.is_connected(self.hass)
        self._unsubs.append(
            mqtt.async_subscribe_connection_status(self.hass, self._async_mqtt_connection)
        )
        for leaf in SUBSCRIBED_LEAVES:
            self._unsubs.append(
                await mqtt.async_subscribe(
                    self.hass,
                    f"{self.base_topic}/+/{leaf}",
                    self._async_message,
                    qos=1,
                    encoding=None,
                )
            )
        if self.offline_timeout > 0:
            self._unsubs.append(
                async_track_time_interval(
                    self.hass, self._async_check_offline, OFFLINE_CHECK_INTERVAL
                )
            )

    @callback
    def async_stop(self) -> None:
        """Drop subscriptions and fail pending commands."""
        while self._unsubs:
            self._unsubs.pop()()
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    # --------------------------------------------------------------- helpers

    def _signal(self, device_id: str, key: str) -> None:
        async_dispatcher_send(self.hass, signal_device_update(self.entry.entry_id, device_id, key))

    def _log_once(self, device_id: str, kind: str, err: ProtocolError | str) -> None:
        key = (device_id, kind)
        if key not in self._logged and len(self._logged) >= MAX_LOGGED_KEYS:
            key = ("*", kind)  # bounded memory: beyond this, once per kind
        if key in self._logged:
            return
        self._logged.add(key)
        LOGGER.warning(
            "Ignoring invalid %s message from device %s below %s: %s"
            " (further ones from this device are not logged)",
            kind,
            device_id,
            self.base_topic,
            err,
        )

    def device_for_ha_device(self, ha_device_id: str) -> DeviceData | None:
        """Return the device data for a device registry id."""
        return next((d for d in self.devices.values() if d.ha_device_id == ha_device_id), None)

    def is_available(self, device: DeviceData) -> bool:
        """Device available for its entities: MQTT connected and device online."""
        return self.mqtt_connected and device.available

    # ------------------------------------------------------------ inbound

    @callback
    def _async_mqtt_connection(self, connected: bool) -> None:
        self.mqtt_connected = connected
        for device_id in list(self.devices):
            self._update_availability(device_id)

    @callback
    def _async_check_offline(self, now: datetime) -> None:
        limit = timedelta(seconds=self.offline_timeout)
        for device in self.devices.values():
            silent = device.last_seen is None or now - device.last_seen > limit
            if device.online and silent and not device.timed_out:
                device.timed_out = True
                self._update_availability(device.device_id)

    @callback
    def _update_availability(self, device_id: str) -> None:
        device = self.devices[device_id]
        available = self.is_available(device)
        if device.was_available is not None and available != device.was_available:
            if available:
                LOGGER.info("Device %s is available again", device_id)
            else:
                LOGGER.info("Device %s is unavailable", device_id)
        device.was_available = available
        self._signal(device_id, "available")

    @callback
    def _async_message(self, msg: ReceiveMessage) -> None:
        """Handle one device message; bad input is logged once and dropped."""
        device_id = "?"
        kind = "topic"
        try:
            info = parse_topic(self.base_topic, msg.topic)
            device_id, kind = info.device_id, info.kind.value
            payload = msg.payload
            if isinstance(payload, str):  # pragma: no cover - subscribed with encoding=None
                payload = payload.encode("utf-8")
            self._dispatch(info.device_id, info.kind, info.item_id, bytes(payload))
            if not msg.retain and info.kind in LIVE_KINDS:
                self._request_metrics_again(info.device_id)
        except ProtocolError as err:
            self._log_once(err.device_id or device_id, kind, err)
        except Exception:
            if (device_id, f"{kind}_internal") not in self._logged:
                self._logged.add((device_id, f"{kind}_internal"))
                LOGGER.exception("Unexpected error handling %s from %s", kind, device_id)

    def _dispatch(
        self, device_id: str, kind: MessageKind, item_id: str | None, payload: bytes
    ) -> None:
        limit = MAX_CAPABILITIES_BYTES if kind is MessageKind.CAPABILITIES else MAX_MESSAGE_BYTES
        if len(payload) > limit:
            raise ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes > {limit}")
        if kind is MessageKind.CAPABILITIES:
            self._handle_capabilities(device_id, payload)
            return
        if kind is MessageKind.STATUS:
            self._handle_status(device_id, payload)
            return
        if kind is MessageKind.RESPONSE:
            self._handle_response(device_id, payload)
            return
        device = self.devices.get(device_id)
        if device is None or device.capabilities is None:
            return  # not adopted (yet): nothing to show
        caps = device.capabilities
        if kind is MessageKind.SENSOR:
            assert item_id is not None
            self._apply_reading(device, parse_sensor(payload, item_id, caps))
        elif kind is MessageKind.BATCH:
            for reading in parse_batch(payload, caps).readings:
                self._apply_reading(device, reading)
        elif kind is MessageKind.ACTUATOR_STATE:
            assert item_id is not None
            state = parse_actuator_state(payload, item_id, caps)
            self._apply_actuator_value(device, item_id, state.value)
        elif kind is MessageKind.METRICS:
            self._apply_metrics(device, parse_metrics(payload))
        elif kind is MessageKind.ERROR:
            self._handle_error(device, parse_error(payload))
        self._seen(device)

    def _seen(self, device: DeviceData) -> None:
        device.last_seen = dt_util.utcnow()
        if device.timed_out:
            device.timed_out = False
            self._update_availability(device.device_id)

    def _handle_status(self, device_id: str, payload: bytes) -> None:
        status = parse_status(payload, device_id)
        if device_id not in self.devices and len(self.devices) >= MAX_DEVICES:
            raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"more than {MAX_DEVICES} devices")
        device = self.devices.setdefault(device_id, DeviceData(device_id))
        was_online = device.online
        device.online = status.online
        device.last_seen = dt_util.utcnow()
        device.timed_out = False
        if status.online and was_online is False:
            device.critical_times.clear()
            ir.async_delete_issue(
                self.hass, DOMAIN, ISSUE_CRITICAL_ERRORS.format(device_id=device_id)
            )
        if device.capabilities is not None:
            self._update_availability(device_id)

    def _handle_capabilities(self, device_id: str, payload: bytes) -> None:
        issue_id = ISSUE_NEWER_PROTOCOL.format(device_id=device_id)
        try:
            caps = parse_capabilities(payload, device_id)
        except ProtocolError as err:
            if err.code is ErrorCode.UNSUPPORTED_VERSION:
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    issue_id,
                    is_fixable=False,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key="newer_protocol",
                    translation_placeholders={
                        "device_id": device_id,
                        "supported": str(PROTOCOL_VERSION),
                    },
                )
            raise
        ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        device = self.devices.setdefault(device_id, DeviceData(device_id))
        old = device.capabilities
        if old is not None and old.raw == caps.raw:
            self._seen(device)
            return
        device.capabilities = caps
        device.discovery_mode = caps.discovery.value if caps.discovery else None
        taking_over = self.take_over and caps.discovery is DiscoveryMode.MQTT
        self._register_device(device, caps)
        if old is not None:
            self._remove_stale_entities(old, caps)
            # Values of capabilities that changed type are meaningless now.
            for sensor_id in list(device.sensors):
                if caps.sensor(sensor_id) is None:
                    del device.sensors[sensor_id]
            for actuator_id in list(device.actuators):
                if caps.actuator(actuator_id) is None:
                    del device.actuators[actuator_id]
        self._seen(device)
        device.was_available = self.is_available(device)
        if taking_over and not device.adopting and not device.takeover_sent:
            # HA's MQTT integration may show the device's own discovery entities: add
            # ours once the device has switched and those are gone (no `_2` ids).
            device.adopting = True
            self.entry.async_create_background_task(
                self.hass,
                self._async_adopt_after_takeover(device_id),
                f"{DOMAIN} adopt {device_id}",
            )
        elif not device.adopting:
            async_dispatcher_send(self.hass, signal_new_device(self.entry.entry_id), device_id)
        self._signal(device_id, "capabilities")
        if old is None and device.metrics is None:
            self._request_metrics(device)
        if taking_over and not device.takeover_sent:
            device.takeover_sent = True
            LOGGER.info("Taking over device %s from plain MQTT discovery", device_id)
            self.entry.async_create_task(
                self.hass,
                self.async_publish_discovery_mode(device_id, DiscoveryMode.INTEGRATION),
                f"{DOMAIN} takeover {device_id}",
            )

    def _register_device(self, device: DeviceData, caps: Capabilities) -> None:
        registry = dr.async_get(self.hass)
        connections = {(dr.CONNECTION_NETWORK_MAC, dr.format_mac(caps.mac))} if caps.mac else set()
        entry = registry.async_get_or_create(
            config_entry_id=self.entry.entry_id,
            identifiers={(DOMAIN, caps.device_id)},
            connections=connections,
            name=caps.name,
            manufacturer=caps.manufacturer,
            model=caps.model,
            sw_version=caps.fw,
            hw_version=caps.hw,
        )
        device.ha_device_id = entry.id

    def _mqtt_discovery_entities(self, caps: Capabilities) -> list[str]:
        """Entity ids HA's MQTT integration made from the device's own discovery.

        They share our unique ids (under the `mqtt` platform).
        """
        registry = er.async_get(self.hass)
        return [
            entity_id
            for platform, unique_id in sorted(capability_entity_keys(caps))
            if (entity_id := registry.async_get_entity_id(platform, mqtt.DOMAIN, unique_id))
        ]

    def _entities_gone(self, entity_ids: list[str]) -> bool:
        registry = er.async_get(self.hass)
        return all(
            registry.async_get(entity_id) is None and self.hass.states.get(entity_id) is None
            for entity_id in entity_ids
        )

    async def _async_wait_until(
        self,
        condition: Callable[[], bool],
        timeout_s: float,
        *,
        entity_ids: list[str] | None = None,
        device_id: str | None = None,
    ) -> bool:
        """Wait until `condition` holds, re-checked on entity and capabilities changes."""
        if condition():
            return True
        done: asyncio.Future[bool] = self.hass.loop.create_future()

        @callback
        def _check(*_args: object) -> None:
            if not done.done() and condition():
                done.set_result(True)

        @callback
        def _timeout(_now: datetime) -> None:
            if not done.done():
                done.set_result(False)

        unsubs = [async_call_later(self.hass, timeout_s, _timeout)]
        if entity_ids:
            # Keyed trackers: with hundreds of devices adopted at once, a bus listener
            # each would re-check every waiting device on every registry change.
            unsubs.append(async_track_state_change_event(self.hass, entity_ids, _check))
            unsubs.append(async_track_entity_registry_updated_event(self.hass, entity_ids, _check))
        if device_id is not None:
            unsubs.append(
                async_dispatcher_connect(
                    self.hass,
                    signal_device_update(self.entry.entry_id, device_id, "capabilities"),
                    _check,
                )
            )
        try:
            return await done
        finally:
            for unsub in unsubs:
                unsub()

    async def _async_adopt_after_takeover(self, device_id: str) -> None:
        """Add a taken-over device's entities once HA's MQTT integration dropped its own.

        The device answers `set_discovery integration` by clearing its discovery
        message (HA's MQTT integration then removes its entities and device entry) and
        re-publishing its capabilities in mode `integration`. Adding this integration's
        entities only after that keeps their entity ids free of `_2` suffixes. A device
        that does not switch in time has the MQTT-discovered entities removed here.
        """

        def switched() -> bool:
            device = self.devices.get(device_id)
            caps = device.capabilities if device is not None else None
            return caps is None or caps.discovery is not DiscoveryMode.MQTT

        if not await self._async_wait_until(switched, TAKEOVER_TIMEOUT, device_id=device_id):
            LOGGER.info("Device %s did not confirm the switch to mode integration", device_id)
        device = self.devices.get(device_id)
        if device is None or device.capabilities is None or not device.adopting:
            return
        entity_ids = self._mqtt_discovery_entities(device.capabilities)
        if not await self._async_wait_until(
            lambda: self._entities_gone(entity_ids), TAKEOVER_TIMEOUT, entity_ids=entity_ids
        ):
            registry = er.async_get(self.hass)
            for entity_id in entity_ids:
                if registry.async_get(entity_id) is not None:
                    registry.async_remove(entity_id)
            await self._async_wait_until(
                lambda: self._entities_gone(entity_ids), TAKEOVER_TIMEOUT, entity_ids=entity_ids
            )
        device = self.devices.get(device_id)
        if device is None or not device.adopting:
            return
        device.adopting = False
        async_dispatcher_send(self.hass, signal_new_device(self.entry.entry_id), device_id)

    def _remove_stale_entities(self, old: Capabilities, new: Capabilities) -> None:
        registry = er.async_get(self.hass)
        for platform, unique_id in capability_entity_keys(old) - capability_entity_keys(new):
            entity_id = registry.async_get_entity_id(platform, DOMAIN, unique_id)
            if entity_id is not None:
                registry.async_remove(entity_id)
            self.added_entities.get(platform, set()).discard(unique_id)

    def _apply_reading(self, device: DeviceData, reading: SensorReading) -> None:
        device.sensors[reading.sensor_id] = reading
        listener = self._reading_listeners.get((device.device_id, reading.sensor_id))
        if listener is not None:
            listener(reading)

    @callback
    def async_listen_reading(
        self, device_id: str, sensor_id: str, listener: Callable[[SensorReading], None]
    ) -> CALLBACK_TYPE:
        """Call `listener` with every new reading of one sensor (one listener each)."""
        key = (device_id, sensor_id)
        self._reading_listeners[key] = listener

        @callback
        def _remove() -> None:
            if self._reading_listeners.get(key) is listener:
                del self._reading_listeners[key]

        return _remove

    def _apply_actuator_value(
        self, device: DeviceData, actuator_id: str, value: Value | None
    ) -> None:
        assert device.capabilities is not None
        spec = device.capabilities.actuator(actuator_id)
        if spec is None:
            raise ProtocolError(ErrorCode.UNKNOWN_ACTUATOR, actuator_id)
        if spec.value_type is ValueType.TRIGGER:
            return
        value = check_value(value, spec.value_type, spec.options)
        device.actuators[actuator_id] = value
        self._signal(device.device_id, f"actuator_{actuator_id}")

    def _apply_metrics(self, device: DeviceData, metrics: Metrics) -> None:
        device.metrics = metrics
        device.metrics_received = dt_util.utcnow()
        self._signal(device.device_id, "metrics")

    def _handle_error(self, device: DeviceData, error: DeviceError) -> None:
        now = dt_util.utcnow()
        device.last_error = error
        self.alerts.append(Alert(device.device_id, error, now))
        self._signal(device.device_id, "error")
        critical = error.severity >= CRITICAL_SEVERITY
        self.hass.bus.async_fire(
            EVENT_DEVICE_ERROR,
            {
                "device_id": device.ha_device_id,
                "bridge_device_id": device.device_id,
                "type": error.type,
                "code": error.code,
                "message": error.message,
                "severity": error.severity,
                "critical": critical,
            },
        )
        if not critical:
            return
        device.critical_times.append(now)
        recent = [t for t in device.critical_times if now - t <= CRITICAL_WINDOW]
        if len(recent) >= CRITICAL_REPEAT_THRESHOLD:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                ISSUE_CRITICAL_ERRORS.format(device_id=device.device_id),
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="critical_errors",
                translation_placeholders={
                    "device_id": device.device_id,
                    "name": device.name,
                    "count": str(len(recent)),
                    "type": error.type,
                    "message": error.message or "-",
                },
            )

    def _handle_response(self, device_id: str, payload: bytes) -> None:
        response = parse_response(payload)
        if response.id is None:
            return
        future = self._pending.get((device_id, response.id))
        if future is not None and not future.done():
            future.set_result(response)
        # Responses to other clients (the MCP add-on) are not ours: ignore them.

    # ----------------------------------------------------------- commands

    def command_timeout(self, response_time_ms: int | None) -> float:
        """Timeout for a command: 3x the announced response time, bounded."""
        announced = (response_time_ms or 0) / 1000 * COMMAND_TIMEOUT_FACTOR
        return min(COMMAND_TIMEOUT_MAX, max(COMMAND_TIMEOUT_MIN, announced))

    def _require_device(self, device_id: str) -> DeviceData:
        device = self.devices.get(device_id)
        if device is None or device.capabilities is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_device",
                translation_placeholders={"device_id": device_id},
            )
        return device

    async def _async_request(
        self,
        device: DeviceData,
        topic: str,
        build: Callable[[str], str],
        timeout_s: float,
    ) -> Response:
        if not self.is_available(device):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="device_unavailable",
                translation_placeholders={"device_id": device.device_id},
            )
        request_id = f"ha-{secrets.token_hex(6)}"
        try:
            payload = build(request_id)
        except ProtocolError as err:
            # The caller's input is wrong (not the device): a validation error, shown
            # to the user without a traceback in the log.
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_command",
                translation_placeholders={"error": str(err)},
            ) from err
        key = (device.device_id, request_id)
        future: asyncio.Future[Response] = self.hass.loop.create_future()
        self._pending[key] = future
        try:
            await mqtt.async_publish(self.hass, topic, payload, qos=1)
            async with asyncio.timeout(timeout_s):
                response = await future
        except TimeoutError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_timeout",
                translation_placeholders={
                    "device_id": device.device_id,
                    "timeout": f"{timeout_s:g}",
                },
            ) from err
        finally:
            self._pending.pop(key, None)
        self._seen(device)
        if not response.ok:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={
                    "device_id": device.device_id,
                    "code": response.error_code or "",
                    "message": response.error_message or "",
                },
            )
        return response

    async def async_actuate(
        self, device_id: str, actuator_id: str, action: Action, value: Value | None = None
    ) -> Value | None:
        """Send an actuator action and return the value the device acknowledged."""
        device = self._require_device(device_id)
        assert device.capabilities is not None
        spec = device.capabilities.actuator(actuator_id)
        if spec is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_device",
                translation_placeholders={"device_id": f"{device_id}/{actuator_id}"},
            )

        def build(request_id: str) -> str:
            assert spec is not None
            check_actuator_command(spec, action, value)
            return build_actuator_set(action, value, request_id)

        response = await self._async_request(
            device,
            actuator_set_topic(self.base_topic, device_id, actuator_id),
            build,
            self.command_timeout(spec.response_time_ms),
        )
        result = response.result
        if spec.value_type is ValueType.TRIGGER:
            return None
        if not isinstance(result, Mapping) or "value" not in result:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={
                    "device_id": device_id,
                    "code": ErrorCode.MALFORMED.value,
                    "message": "response without a value",
                },
            )
        try:
            self._apply_actuator_value(device, actuator_id, result["value"])
        except ProtocolError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={
                    "device_id": device_id,
                    "code": err.code.value,
                    "message": err.detail,
                },
            ) from err
        return device.actuators[actuator_id]

    async def async_command(
        self,
        device_id: str,
        cmd: str,
        args: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """Send a device command and return the device's response."""
        device = self._require_device(device_id)
        response = await self._async_request(
            device,
            cmd_topic(self.base_topic, device_id),
            lambda rid: build_command(cmd, args or {}, rid, device.capabilities),
            timeout_s if timeout_s is not None else self.command_timeout(None),
        )
        if cmd == "get_metrics" and response.result is not None:
            try:
                self._apply_metrics(device, metrics_from_object(response.result))
            except ProtocolError as err:
                self._log_once(device_id, "get_metrics", err)
        elif cmd == "reset_metrics":
            device.metrics = None
            self._signal(device_id, "metrics")
        elif cmd == "set_discovery":
            device.discovery_mode = str((args or {}).get("mode"))
        return response

    def _request_metrics(self, device: DeviceData) -> None:
        device.metrics_requests += 1
        self.entry.async_create_task(
            self.hass,
            self._async_request_metrics(device.device_id),
            f"{DOMAIN} metrics {device.device_id}",
        )

    def _request_metrics_again(self, device_id: str) -> None:
        """Ask once more when the first answer was missed.

        Right after setup HA's MQTT client may still be subscribing to the metrics
        topic when the device answers; a live message from the device means the
        subscriptions are in place by now.
        """
        device = self.devices.get(device_id)
        if (
            device is not None
            and device.capabilities is not None
            and device.metrics is None
            and device.metrics_requests == 1
        ):
            self._request_metrics(device)

    async def _async_request_metrics(self, device_id: str) -> None:
        """Ask a newly seen device for its metrics (no id: it answers on its metrics topic).

        Otherwise the diagnostic sensors stay unknown for a whole metrics interval after
        every start of Home Assistant.
        """
        try:
            await mqtt.async_publish(
                self.hass,
                cmd_topic(self.base_topic, device_id),
                build_command("get_metrics", {}),
                qos=1,
            )
        except HomeAssistantError as err:
            LOGGER.debug("Could not ask device %s for its metrics: %s", device_id, err)

    async def async_publish_discovery_mode(self, device_id: str, mode: DiscoveryMode) -> None:
        """Send `set_discovery` without an id (fire and forget: the device answers none)."""
        try:
            await mqtt.async_publish(
                self.hass,
                cmd_topic(self.base_topic, device_id),
                build_command("set_discovery", {"mode": mode.value}),
                qos=1,
            )
        except HomeAssistantError as err:
            LOGGER.warning("Could not send set_discovery %s to %s: %s", mode, device_id, err)
            return
        device = self.devices.get(device_id)
        if device is not None:
            device.discovery_mode = mode.value

    @callback
    def async_forget_device(self, device_id: str) -> None:
        """Forget a device (removed by the user)."""
        device = self.devices.pop(device_id, None)
        if device is not None and device.capabilities is not None:
            for platform, unique_id in capability_entity_keys(device.capabilities):
                self.added_entities.get(platform, set()).discard(unique_id)
        for issue in (ISSUE_NEWER_PROTOCOL, ISSUE_CRITICAL_ERRORS):
            ir.async_delete_issue(self.hass, DOMAIN, issue.format(device_id=device_id))

    # -------------------------------------------------------------- views

    def metric(self, device_id: str, name: str) -> float | int | None:
        """Return one metric of a device."""
        device = self.devices.get(device_id)
        if device is None or device.metrics is None or name not in METRIC_FIELDS:
            return None
        return device.metrics.get(name)
