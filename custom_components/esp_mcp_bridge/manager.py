"""Device manager: subscribes to the bridge topics and keeps per-device state."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components import mqtt
from homeassistant.components.mqtt import ReceiveMessage
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .commands import DeviceCommands
from .const import (
    ALERT_BUFFER_SIZE,
    COMMAND_TIMEOUT_FACTOR,
    COMMAND_TIMEOUT_MAX,
    COMMAND_TIMEOUT_MIN,
    CONF_ALL_DIAGNOSTICS,
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    CRITICAL_REPEAT_THRESHOLD,
    DEFAULT_ALL_DIAGNOSTICS,
    DEFAULT_OFFLINE_TIMEOUT,
    DEFAULT_TAKE_OVER,
    DOMAIN,
    EVENT_DEVICE_ERROR,
    ISSUE_CRITICAL_ERRORS,
    ISSUE_NEWER_PROTOCOL,
    ISSUE_SAFE_MODE,
    LIGHT_TYPES,
    LOGGER,
)
from .models import Alert, DeviceData
from .naming import (
    capability_unique_id,
    device_identifier,
    diagnostic_unique_id,
    issue_id,
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
    check_value,
    parse_actuator_state,
    parse_batch,
    parse_capabilities,
    parse_error,
    parse_metrics,
    parse_sensor,
    parse_status,
    parse_topic,
)
from .removal import async_remember_removed, removed_devices
from .takeover import async_adopt_after_takeover

type EspMcpBridgeConfigEntry = ConfigEntry[BridgeManager]

# One wildcard for the whole base topic: HA's MQTT client tests every wildcard
# subscription against every incoming message, and with one per message kind (eight)
# that matching cost more than handling the messages (measured at 1,000 devices). One
# subscription also means retained capabilities cannot arrive before the metrics topic
# is subscribed (a device asked for its metrics at adoption answers on it).
# Commands this integration publishes come back on it too; they are dropped unparsed.
OWN_COMMAND_LEAVES = frozenset({"cmd", "set"})
# Messages a device only sends live (never retained): proof that it is talking now.
LIVE_KINDS = frozenset(
    {MessageKind.SENSOR, MessageKind.BATCH, MessageKind.ACTUATOR_STATE, MessageKind.ERROR}
)
CRITICAL_WINDOW = timedelta(hours=1)
# A memory bound per entry, well above the 5,000 devices the scale benchmark runs.
MAX_DEVICES = 10_000
MAX_LOGGED_KEYS = 4096
# Actuator states that arrive before their device's capabilities (retained ones often
# do: HA subscribes one wildcard after another), kept until the capabilities come.
MAX_EARLY_STATES = 4096
MAX_EARLY_STATE_BYTES = 2048  # a text actuator's longest value and the JSON around it
OFFLINE_CHECK_INTERVAL = timedelta(seconds=10)


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
    """Platform an actuator capability maps to (docs/protocol.md §13.1, as the firmware).

    One without `write` has nothing a switch, light, number, select or text entity
    could set: it shows its state read-only, as a (binary) sensor.
    """
    if spec.value_type is not ValueType.TRIGGER and Action.WRITE not in spec.actions:
        return Platform.BINARY_SENSOR if spec.value_type is ValueType.BOOLEAN else Platform.SENSOR
    if spec.value_type is ValueType.BOOLEAN:
        return Platform.LIGHT if spec.type in LIGHT_TYPES else Platform.SWITCH
    return {
        ValueType.NUMBER: Platform.NUMBER,
        ValueType.ENUM: Platform.SELECT,
        ValueType.STRING: Platform.TEXT,
        ValueType.TRIGGER: Platform.BUTTON,
    }[spec.value_type]


def capability_entity_keys(caps: Capabilities) -> set[tuple[Platform, str]]:
    """(platform, unique_id) of the entities the device's own MQTT discovery makes.

    Those unique ids are the firmware's (`{D}_{id}`) and HA's MQTT integration owns the
    entities; this integration's own unique ids are namespaced (see naming).
    """
    keys = {(sensor_platform(s), f"{caps.device_id}_{s.id}") for s in caps.sensors}
    keys |= {(actuator_platform(a), f"{caps.device_id}_{a.id}") for a in caps.actuators}
    return keys


class BridgeManager(DeviceCommands):
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
        self.all_diagnostics: bool = bool(
            entry.options.get(CONF_ALL_DIAGNOSTICS, DEFAULT_ALL_DIAGNOSTICS)
        )
        self.devices: dict[str, DeviceData] = {}
        self.alerts: deque[Alert] = deque(maxlen=ALERT_BUFFER_SIZE)
        self.mqtt_connected = False
        self.added_entities: dict[Platform, set[str]] = {}
        # The hot path: a reading goes straight to its entity, no dispatcher signal.
        self._reading_listeners: dict[tuple[str, str], Callable[[SensorReading], None]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Response]] = {}
        self._logged: set[tuple[str, str]] = set()
        self._unsubs: list[CALLBACK_TYPE] = []
        # Removed by the user: their messages are ignored (see removal).
        self.removed: set[str] = set(removed_devices(entry))
        self._handed_back: set[str] = set()
        self.early_states: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    # ------------------------------------------------------------- lifecycle

    async def async_start(self) -> None:
        """Subscribe to every device topic below the base topic."""
        self.mqtt_connected = mqtt.is_connected(self.hass)
        self._unsubs.append(
            mqtt.async_subscribe_connection_status(self.hass, self._async_mqtt_connection)
        )
        self._unsubs.append(
            await mqtt.async_subscribe(
                self.hass, f"{self.base_topic}/#", self._async_message, qos=1, encoding=None
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

    def command_timeout(self, response_time_ms: int | None) -> float:
        """Timeout for a command: 3x the announced response time, bounded."""
        announced = (response_time_ms or 0) / 1000 * COMMAND_TIMEOUT_FACTOR
        return min(COMMAND_TIMEOUT_MAX, max(COMMAND_TIMEOUT_MIN, announced))

    def device_identifier(self, device_id: str) -> str:
        """Value of the device's `(esp_mcp_bridge, …)` registry identifier."""
        return device_identifier(self.base_topic, device_id)

    def capability_unique_id(self, device_id: str, capability_id: str) -> str:
        """Unique id of a sensor's or actuator's entity."""
        return capability_unique_id(self.base_topic, device_id, capability_id)

    def diagnostic_unique_id(self, device_id: str, key: str) -> str:
        """Unique id of a diagnostic entity (`key` is `diag_<name>`)."""
        return diagnostic_unique_id(self.base_topic, device_id, key)

    def entity_keys(self, caps: Capabilities) -> set[tuple[Platform, str]]:
        """(platform, unique_id) of this integration's capability entities of a device."""
        unique_id = self.capability_unique_id
        keys = {(sensor_platform(s), unique_id(caps.device_id, s.id)) for s in caps.sensors}
        keys |= {(actuator_platform(a), unique_id(caps.device_id, a.id)) for a in caps.actuators}
        return keys

    def _issue_id(self, template: str, device_id: str) -> str:
        return issue_id(self.entry.entry_id, template, device_id)

    def capabilities_signal(self, device_id: str) -> str:
        """Signal sent after a device's capabilities were applied."""
        return signal_device_update(self.entry.entry_id, device_id, "capabilities")

    @callback
    def async_add_device_entities(self, device_id: str) -> None:
        """Let every platform add the entities of a device it does not have yet."""
        async_dispatcher_send(self.hass, signal_new_device(self.entry.entry_id), device_id)

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
        if msg.topic.rpartition("/")[2] in OWN_COMMAND_LEAVES:
            return
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
            if kind is MessageKind.ACTUATOR_STATE and device_id not in self.removed:
                assert item_id is not None
                self._keep_early_state(device_id, item_id, payload)
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
        if device_id in self.removed:
            return
        if device_id not in self.devices and len(self.devices) >= MAX_DEVICES:
            raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"more than {MAX_DEVICES} devices")
        device = self.devices.setdefault(device_id, DeviceData(device_id))
        was_online = device.online
        device.online = status.online
        device.last_seen = dt_util.utcnow()
        device.timed_out = False
        if status.online and was_online is False:
            device.critical_times.clear()
            issue = self._issue_id(ISSUE_CRITICAL_ERRORS, device_id)
            ir.async_delete_issue(self.hass, DOMAIN, issue)
        if device.capabilities is not None:
            self._update_availability(device_id)

    def _handle_capabilities(self, device_id: str, payload: bytes) -> None:
        newer_issue = self._issue_id(ISSUE_NEWER_PROTOCOL, device_id)
        removed = device_id in self.removed
        try:
            caps = parse_capabilities(payload, device_id)
        except ProtocolError as err:
            if err.code is ErrorCode.UNSUPPORTED_VERSION and not removed:
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    newer_issue,
                    is_fixable=False,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key="newer_protocol",
                    translation_placeholders={
                        "device_id": device_id,
                        "supported": str(PROTOCOL_VERSION),
                    },
                )
            raise
        if removed:
            self._hand_back_again(caps)
            return
        ir.async_delete_issue(self.hass, DOMAIN, newer_issue)
        device = self.devices.setdefault(device_id, DeviceData(device_id))
        old = device.capabilities
        if old is not None and old.raw == caps.raw:
            self._seen(device)
            return
        device.capabilities = caps
        device.discovery_mode = caps.discovery.value if caps.discovery else None
        self._update_safe_mode_issue(caps)
        taking_over = self.take_over and caps.discovery is DiscoveryMode.MQTT
        if caps.discovery is DiscoveryMode.INTEGRATION:
            # The switch is confirmed: if the device falls back to mode mqtt later (a
            # factory reset), it is taken over again.
            device.takeover_sent = False
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
        self._apply_early_states(device, caps)
        self._seen(device)
        device.was_available = self.is_available(device)
        if taking_over and not device.adopting and not device.takeover_sent:
            # HA's MQTT integration may show the device's own discovery entities: add
            # ours once the device has switched and those are gone (no `_2` ids).
            device.adopting = True
            self.entry.async_create_background_task(
                self.hass,
                async_adopt_after_takeover(self, device_id),
                f"{DOMAIN} adopt {device_id}",
            )
        elif not device.adopting:
            self.async_add_device_entities(device_id)
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

    def _update_safe_mode_issue(self, caps: Capabilities) -> None:
        """A repair issue while the device runs in safe mode (protocol section 14)."""
        issue = self._issue_id(ISSUE_SAFE_MODE, caps.device_id)
        if not caps.safe_mode:
            ir.async_delete_issue(self.hass, DOMAIN, issue)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="safe_mode",
            translation_placeholders={"device_id": caps.device_id, "name": caps.name},
        )

    def _register_device(self, device: DeviceData, caps: Capabilities) -> None:
        registry = dr.async_get(self.hass)
        connections = {(dr.CONNECTION_NETWORK_MAC, dr.format_mac(caps.mac))} if caps.mac else set()
        entry = registry.async_get_or_create(
            config_entry_id=self.entry.entry_id,
            identifiers={(DOMAIN, self.device_identifier(caps.device_id))},
            connections=connections,
            name=caps.name,
            manufacturer=caps.manufacturer,
            model=caps.model,
            sw_version=caps.fw,
            hw_version=caps.hw,
        )
        device.ha_device_id = entry.id

    def mqtt_discovery_entities(self, caps: Capabilities) -> list[str]:
        """Entity ids HA's MQTT integration made from the device's own discovery."""
        registry = er.async_get(self.hass)
        return [
            entity_id
            for platform, unique_id in sorted(capability_entity_keys(caps))
            if (entity_id := registry.async_get_entity_id(platform, mqtt.DOMAIN, unique_id))
        ]

    def _keep_early_state(self, device_id: str, actuator_id: str, payload: bytes) -> None:
        if len(payload) > MAX_EARLY_STATE_BYTES:
            return
        key = (device_id, actuator_id)
        self.early_states.pop(key, None)
        self.early_states[key] = payload
        while len(self.early_states) > MAX_EARLY_STATES:
            self.early_states.popitem(last=False)

    def _apply_early_states(self, device: DeviceData, caps: Capabilities) -> None:
        for spec in caps.actuators:
            payload = self.early_states.pop((device.device_id, spec.id), None)
            if payload is None:
                continue
            try:
                state = parse_actuator_state(payload, spec.id, caps)
                self._apply_actuator_value(device, spec.id, state.value)
            except ProtocolError as err:
                self._log_once(device.device_id, MessageKind.ACTUATOR_STATE.value, err)

    def _hand_back_again(self, caps: Capabilities) -> None:
        """Send a removed device that still runs in mode integration back to mode mqtt.

        It missed its hand-back (offline at the time): without this it would have no
        entities at all. Once per run, so a device that ignores it is not flooded.
        """
        device_id = caps.device_id
        if caps.discovery is not DiscoveryMode.INTEGRATION or device_id in self._handed_back:
            return
        self._handed_back.add(device_id)
        self.entry.async_create_task(
            self.hass,
            self.async_publish_discovery_mode(device_id, DiscoveryMode.MQTT),
            f"{DOMAIN} hand back {device_id}",
        )

    def _remove_stale_entities(self, old: Capabilities, new: Capabilities) -> None:
        registry = er.async_get(self.hass)
        for platform, unique_id in self.entity_keys(old) - self.entity_keys(new):
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
                self._issue_id(ISSUE_CRITICAL_ERRORS, device.device_id),
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

    @callback
    def async_forget_device(self, device_id: str) -> None:
        """Forget a device the user removed, and keep ignoring it (see removal)."""
        async_remember_removed(self.hass, self.entry, device_id)
        self.removed = set(removed_devices(self.entry))
        device = self.devices.pop(device_id, None)
        if device is not None and device.capabilities is not None:
            for platform, unique_id in self.entity_keys(device.capabilities):
                self.added_entities.get(platform, set()).discard(unique_id)
        for key in [k for k in self.early_states if k[0] == device_id]:
            del self.early_states[key]
        for issue in (ISSUE_NEWER_PROTOCOL, ISSUE_CRITICAL_ERRORS, ISSUE_SAFE_MODE):
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(issue, device_id))

    # -------------------------------------------------------------- views

    def metric(self, device_id: str, name: str) -> float | int | None:
        """Return one metric of a device."""
        device = self.devices.get(device_id)
        if device is None or device.metrics is None or name not in METRIC_FIELDS:
            return None
        return device.metrics.get(name)
