"""ESP32 MCP Bridge wire protocol (version 1).

Pure Python, no Home Assistant imports: every message kind of the MQTT contract
is parsed and validated here into typed, immutable objects, and every command
payload is built (and checked against the device's capabilities) here. The Home
Assistant side only moves bytes and objects.

Decoding and the checks of single members are in `validation`. Rejections carry
the contract's error codes (`malformed`, `payload_too_large`,
`wrong_type`, `non_finite`, `out_of_range`, `invalid_value`, `invalid_id`,
`unknown_sensor`, `unknown_actuator`, `unsupported_action`, `unsupported_version`;
`expired` comes from devices only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import json
import math
import re
import time
from typing import Any, Final

# The `X as X` names are re-exported: callers import them from this module.
from .validation import (
    MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES,  # noqa: PLC0414
    MAX_STRING_LEN as MAX_STRING_LEN,  # noqa: PLC0414
    MAX_TEXT_LEN as MAX_TEXT_LEN,  # noqa: PLC0414
    MAX_TS_MS,
    ErrorCode as ErrorCode,  # noqa: PLC0414
    NonFinite,
    ProtocolError as ProtocolError,  # noqa: PLC0414
    Value as Value,  # noqa: PLC0414
    bool_member,
    check_escaped_text,
    decode_json as decode_json,  # noqa: PLC0414
    decode_object,
    fail,
    int_member,
    is_integral,
    is_number,
    number_member,
    raw_bytes,
    reject_constant,
    scalar,
    str_member,
    ts_member,
    unique_keys,
)

PROTOCOL_VERSION: Final = 1
DEFAULT_BASE_TOPIC: Final = "mcp_bridge"
DISCOVERY_PREFIX: Final = "homeassistant"

MAX_CAPABILITIES_BYTES: Final = 64 * 1024
MAX_COMMAND_BYTES: Final = 1024
MIN_INTERVAL_MS: Final = 100
MIN_METRICS_INTERVAL_MS: Final = 1000
MAX_REQUEST_ID_LEN: Final = 64
MAX_INTERVAL_MS: Final = 3_600_000

DEVICE_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ENTITY_ID_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
REQUEST_ID_RE: Final = re.compile(r"[\x21-\x7e]{1,64}")
SHA256_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
MAC_RE: Final = re.compile(r"[0-9a-fA-F]{2}([:-]?[0-9a-fA-F]{2}){5}")


class ValueType(StrEnum):
    """Capability value types."""

    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"
    TRIGGER = "trigger"


class Action(StrEnum):
    """Actuator actions."""

    READ = "read"
    WRITE = "write"
    TOGGLE = "toggle"
    TRIGGER = "trigger"


class MessageKind(StrEnum):
    """Topic kinds below `B/D/`."""

    STATUS = "status"
    CAPABILITIES = "capabilities"
    SENSOR = "sensor"
    BATCH = "batch"
    ACTUATOR_STATE = "actuator_state"
    ACTUATOR_SET = "actuator_set"
    CMD = "cmd"
    RESPONSE = "response"
    METRICS = "metrics"
    ERROR = "error"


class DiscoveryMode(StrEnum):
    """Discovery modes of a device."""

    MQTT = "mqtt"
    INTEGRATION = "integration"


DEVICE_COMMANDS: Final = frozenset(
    {
        "ping",
        "get_metrics",
        "reset_metrics",
        "set_streaming",
        "update_config",
        "set_discovery",
        "identify",
        "restart",
        "ota",
    }
)

METRIC_FIELDS: Final = (
    "uptime_s",
    "messages_sent",
    "messages_received",
    "connection_failures",
    "sensor_read_errors",
    "actuator_errors",
    "wifi_reconnections",
    "mqtt_reconnections",
    "free_heap",
    "min_free_heap",
    "rssi",
)

CAPABILITY_KEYS: Final = (
    "v",
    "device_id",
    "name",
    "manufacturer",
    "model",
    "fw",
    "hw",
    "mac",
    "discovery",
    "safe_mode",
    "sensors",
    "actuators",
)
SENSOR_KEYS: Final = (
    "id",
    "type",
    "name",
    "unit",
    "value_type",
    "options",
    "min",
    "max",
    "accuracy",
    "interval_ms",
    "description",
    "calibration_required",
    "calibration_interval_s",
)
ACTUATOR_KEYS: Final = (
    "id",
    "type",
    "name",
    "value_type",
    "options",
    "min",
    "max",
    "step",
    "unit",
    "actions",
    "response_time_ms",
    "requires_confirmation",
    "description",
)

# --------------------------------------------------------------------------- ids


def is_valid_device_id(value: object) -> bool:
    """Return True for a device id that follows the naming rule."""
    return isinstance(value, str) and DEVICE_ID_RE.fullmatch(value) is not None


def is_valid_entity_id(value: object) -> bool:
    """Return True for a sensor/actuator id that follows the naming rule."""
    return isinstance(value, str) and ENTITY_ID_RE.fullmatch(value) is not None


def is_valid_base_topic(value: object) -> bool:
    """Return True for a base topic usable for publishing and subscribing."""
    if not isinstance(value, str) or not value or len(value) > 128:
        return False
    if any(ch in value for ch in "+#\x00") or value.startswith("/") or value.endswith("/"):
        return False
    return "//" not in value and value.isprintable()


# ---------------------------------------------------------------------- topics


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A parsed device topic."""

    device_id: str
    kind: MessageKind
    item_id: str | None = None


_SIMPLE_LEAVES: Final = {
    "status": MessageKind.STATUS,
    "capabilities": MessageKind.CAPABILITIES,
    "batch": MessageKind.BATCH,
    "cmd": MessageKind.CMD,
    "response": MessageKind.RESPONSE,
    "metrics": MessageKind.METRICS,
    "error": MessageKind.ERROR,
}


def parse_topic(base_topic: str, topic: str) -> TopicInfo:
    """Split `B/D/...` into device id, message kind and sensor/actuator id."""
    prefix = base_topic + "/"
    if not topic.startswith(prefix):
        raise fail(ErrorCode.MALFORMED, "topic outside the base topic")
    parts = topic[len(prefix) :].split("/")
    device_id, rest = parts[0], parts[1:]
    if not is_valid_device_id(device_id):
        raise fail(ErrorCode.INVALID_ID, "invalid device id in topic")
    if len(rest) == 1 and rest[0] in _SIMPLE_LEAVES:
        return TopicInfo(device_id, _SIMPLE_LEAVES[rest[0]])
    if len(rest) == 2 and rest[0] == "sensors":
        return TopicInfo(device_id, MessageKind.SENSOR, rest[1])
    if len(rest) == 3 and rest[0] == "actuators" and rest[2] in ("state", "set"):
        kind = MessageKind.ACTUATOR_STATE if rest[2] == "state" else MessageKind.ACTUATOR_SET
        return TopicInfo(device_id, kind, rest[1])
    raise ProtocolError(ErrorCode.MALFORMED, "unknown topic kind", device_id)


def topic_for(base_topic: str, device_id: str, leaf: str) -> str:
    """Return `B/D/leaf` after checking the device id."""
    if not is_valid_device_id(device_id):
        raise fail(ErrorCode.INVALID_ID, "invalid device id")
    return f"{base_topic}/{device_id}/{leaf}"


def actuator_set_topic(base_topic: str, device_id: str, actuator_id: str) -> str:
    """Return the actuator command topic."""
    if not is_valid_entity_id(actuator_id):
        raise fail(ErrorCode.INVALID_ID, "invalid actuator id")
    return topic_for(base_topic, device_id, f"actuators/{actuator_id}/set")


def cmd_topic(base_topic: str, device_id: str) -> str:
    """Return the device command topic."""
    return topic_for(base_topic, device_id, "cmd")


def discovery_config_topic(device_id: str, prefix: str = DISCOVERY_PREFIX) -> str:
    """Return the HA device-based discovery topic a device uses in mode mqtt."""
    if not is_valid_device_id(device_id):
        raise fail(ErrorCode.INVALID_ID, "invalid device id")
    return f"{prefix}/device/{device_id}/config"


# ------------------------------------------------------------------ values


def check_value(value: object, value_type: ValueType, options: tuple[str, ...] = ()) -> Value:
    """Check a reported value against a capability's value type (receiver side)."""
    if value is None:
        raise fail(ErrorCode.WRONG_TYPE, "value is null")
    plain = scalar(value)
    expected = {
        ValueType.NUMBER: is_number(plain),
        ValueType.BOOLEAN: isinstance(plain, bool),
        ValueType.STRING: isinstance(plain, str),
        ValueType.ENUM: isinstance(plain, str),
        ValueType.TRIGGER: False,
    }[value_type]
    if not expected:
        if value_type is ValueType.TRIGGER:
            raise fail(ErrorCode.UNSUPPORTED_ACTION, "a trigger has no value")
        raise fail(ErrorCode.WRONG_TYPE, f"expected a {value_type.value} value")
    if value_type is ValueType.ENUM and plain not in options:
        raise fail(ErrorCode.INVALID_VALUE, "not one of the options")
    return plain


# ----------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class Status:
    """`B/D/status`: online or offline."""

    device_id: str
    online: bool


def parse_status(payload: bytes | str, device_id: str) -> Status:
    """Parse a status payload (exactly `online` or `offline`)."""
    raw = raw_bytes(payload)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise fail(ErrorCode.PAYLOAD_TOO_LARGE, "status too large")
    if raw in (b"online", b"offline"):
        return Status(device_id, raw == b"online")
    raise fail(ErrorCode.MALFORMED, "status must be 'online' or 'offline'")


# ------------------------------------------------------------ capabilities


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor of a capabilities message."""

    id: str
    type: str
    name: str
    value_type: ValueType
    unit: str | None = None
    min: float | int | None = None
    max: float | int | None = None
    accuracy: float | int | None = None
    interval_ms: int | None = None
    description: str | None = None
    calibration_required: bool = False
    calibration_interval_s: int | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ActuatorSpec:
    """One actuator of a capabilities message."""

    id: str
    type: str
    name: str
    value_type: ValueType
    actions: tuple[Action, ...] = ()
    response_time_ms: int | None = None
    requires_confirmation: bool = False
    description: str | None = None
    min: float | int | None = None
    max: float | int | None = None
    step: float | int | None = None
    unit: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """`B/D/capabilities`."""

    v: int
    device_id: str
    name: str
    manufacturer: str | None
    model: str | None
    fw: str | None
    hw: str | None
    mac: str | None
    discovery: DiscoveryMode | None
    sensors: tuple[SensorSpec, ...]
    actuators: tuple[ActuatorSpec, ...]
    raw: Mapping[str, Any] = field(compare=False, repr=False, hash=False)
    # Sensors and actuators are off on the device until its next restart (section 14).
    safe_mode: bool = False

    def sensor(self, sensor_id: str) -> SensorSpec | None:
        """Return a sensor by id."""
        return next((s for s in self.sensors if s.id == sensor_id), None)

    def actuator(self, actuator_id: str) -> ActuatorSpec | None:
        """Return an actuator by id."""
        return next((a for a in self.actuators if a.id == actuator_id), None)

    def as_dict(self) -> dict[str, Any]:
        """The known members as received (unknown future keys dropped)."""
        data = {k: self.raw[k] for k in CAPABILITY_KEYS if k in self.raw}
        data["sensors"] = [
            {k: s[k] for k in SENSOR_KEYS if k in s} for s in self.raw.get("sensors") or []
        ]
        data["actuators"] = [
            {k: a[k] for k in ACTUATOR_KEYS if k in a} for a in self.raw.get("actuators") or []
        ]
        return data


def _value_type(data: Mapping[str, Any], allowed: frozenset[ValueType]) -> ValueType:
    raw = data.get("value_type")
    if raw is None:
        raise fail(ErrorCode.MALFORMED, "missing 'value_type'")
    if not isinstance(raw, str):
        raise fail(ErrorCode.WRONG_TYPE, "'value_type' must be a string")
    try:
        value_type = ValueType(raw)
    except ValueError as err:
        raise fail(ErrorCode.INVALID_VALUE, f"unknown value_type {raw!r}") from err
    if value_type not in allowed:
        raise fail(ErrorCode.INVALID_VALUE, f"value_type {raw!r} not allowed here")
    return value_type


def _options(data: Mapping[str, Any], value_type: ValueType) -> tuple[str, ...]:
    raw = data.get("options")
    if raw is None:
        if value_type is ValueType.ENUM:
            raise fail(ErrorCode.INVALID_VALUE, "enum needs options")
        return ()
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise fail(ErrorCode.WRONG_TYPE, "options must be a list of strings")
    if not raw or len(set(raw)) != len(raw) or not all(0 < len(o) <= MAX_STRING_LEN for o in raw):
        raise fail(ErrorCode.INVALID_VALUE, "options must be distinct non-empty strings")
    return tuple(raw)


def _spec_id(raw: object, what: str) -> tuple[Mapping[str, Any], str]:
    if not isinstance(raw, dict):
        raise fail(ErrorCode.WRONG_TYPE, f"{what} must be an object")
    item_id = raw.get("id")
    if item_id is None:
        raise fail(ErrorCode.MALFORMED, f"{what} without 'id'")
    if not is_valid_entity_id(item_id):
        raise fail(ErrorCode.INVALID_ID, f"invalid {what} id")
    return raw, item_id


def _range(data: Mapping[str, Any]) -> tuple[float | int | None, float | int | None]:
    low, high = number_member(data, "min"), number_member(data, "max")
    if low is not None and high is not None and low > high:
        raise fail(ErrorCode.INVALID_VALUE, "min > max")
    return low, high


def _parse_sensor_spec(raw: object) -> SensorSpec:
    data, sensor_id = _spec_id(raw, "sensor")
    value_type = _value_type(
        data, frozenset({ValueType.NUMBER, ValueType.BOOLEAN, ValueType.STRING, ValueType.ENUM})
    )
    low, high = _range(data)
    return SensorSpec(
        id=sensor_id,
        type=str_member(data, "type", 64) or "generic",
        name=str_member(data, "name", 64) or sensor_id,
        value_type=value_type,
        unit=str_member(data, "unit", 32) or None,
        min=low,
        max=high,
        accuracy=number_member(data, "accuracy"),
        interval_ms=int_member(data, "interval_ms", 0),
        description=str_member(data, "description"),
        calibration_required=bool_member(data, "calibration_required"),
        calibration_interval_s=int_member(data, "calibration_interval_s", 0),
        options=_options(data, value_type),
    )


def _parse_actuator_spec(raw: object) -> ActuatorSpec:
    data, actuator_id = _spec_id(raw, "actuator")
    value_type = _value_type(data, frozenset(ValueType))
    actions_raw = data.get("actions")
    if actions_raw is None:
        actions_raw = ["trigger"] if value_type is ValueType.TRIGGER else ["read", "write"]
    if not isinstance(actions_raw, list) or not all(isinstance(a, str) for a in actions_raw):
        raise fail(ErrorCode.WRONG_TYPE, "actions must be a list of strings")
    try:
        actions = tuple(dict.fromkeys(Action(a) for a in actions_raw))
    except ValueError as err:
        raise fail(ErrorCode.INVALID_VALUE, "unknown action") from err
    low, high = _range(data)
    step = number_member(data, "step")
    if step is not None and step <= 0:
        raise fail(ErrorCode.INVALID_VALUE, "step must be positive")
    return ActuatorSpec(
        id=actuator_id,
        type=str_member(data, "type", 64) or "generic",
        name=str_member(data, "name", 64) or actuator_id,
        value_type=value_type,
        actions=actions,
        response_time_ms=int_member(data, "response_time_ms", 0, 600_000),
        requires_confirmation=bool_member(data, "requires_confirmation"),
        description=str_member(data, "description"),
        min=low,
        max=high,
        step=step,
        unit=str_member(data, "unit", 32) or None,
        options=_options(data, value_type),
    )


def parse_capabilities(payload: bytes | str, device_id: str | None = None) -> Capabilities:
    """Parse and validate a capabilities message.

    `device_id` is the id from the topic; the payload must carry the same one.
    A version higher than known raises `unsupported_version` carrying the device id.
    """
    data = decode_object(payload, MAX_CAPABILITIES_BYTES)
    version = int_member(data, "v", 1, required=True)
    assert version is not None
    payload_id = data.get("device_id")
    if not is_valid_device_id(payload_id):
        raise fail(ErrorCode.INVALID_ID, "invalid device_id")
    assert isinstance(payload_id, str)
    if device_id is not None and payload_id != device_id:
        raise fail(ErrorCode.INVALID_ID, "device_id does not match the topic")
    if version > PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION, f"protocol version {version}", payload_id
        )
    sensors_raw = data.get("sensors", [])
    actuators_raw = data.get("actuators", [])
    if not isinstance(sensors_raw, list) or not isinstance(actuators_raw, list):
        raise fail(ErrorCode.WRONG_TYPE, "sensors/actuators must be lists")
    sensors = tuple(_parse_sensor_spec(s) for s in sensors_raw)
    actuators = tuple(_parse_actuator_spec(a) for a in actuators_raw)
    ids = [s.id for s in sensors] + [a.id for a in actuators]
    if len(set(ids)) != len(ids):
        raise fail(ErrorCode.INVALID_ID, "duplicate sensor/actuator id")
    discovery_raw = data.get("discovery")
    discovery: DiscoveryMode | None = None
    if discovery_raw is not None:
        try:
            discovery = DiscoveryMode(discovery_raw)
        except ValueError as err:
            raise fail(ErrorCode.INVALID_VALUE, "unknown discovery mode") from err
    mac = str_member(data, "mac", 32)
    if mac is not None and not MAC_RE.fullmatch(mac):
        raise fail(ErrorCode.INVALID_VALUE, "invalid mac")
    return Capabilities(
        v=version,
        device_id=payload_id,
        name=str_member(data, "name", 64) or payload_id,
        manufacturer=str_member(data, "manufacturer", 64),
        model=str_member(data, "model", 64),
        fw=str_member(data, "fw", 64),
        hw=str_member(data, "hw", 64),
        mac=mac,
        discovery=discovery,
        sensors=sensors,
        actuators=actuators,
        raw=data,
        safe_mode=bool_member(data, "safe_mode"),
    )


# ----------------------------------------------------------------- readings


@dataclass(frozen=True, slots=True)
class SensorReading:
    """`B/D/sensors/S` or one reading of a batch."""

    sensor_id: str
    value: Value
    ts: int | None = None
    quality: int | None = None


def _sensor_spec(caps: Capabilities | None, sensor_id: object) -> SensorSpec | None:
    if not is_valid_entity_id(sensor_id):
        raise fail(ErrorCode.INVALID_ID, "invalid sensor id")
    assert isinstance(sensor_id, str)
    if caps is None:
        return None
    spec = caps.sensor(sensor_id)
    if spec is None:
        raise fail(ErrorCode.UNKNOWN_SENSOR, f"unknown sensor {sensor_id}")
    return spec


def _reading(
    data: Mapping[str, Any], sensor_id: str, spec: SensorSpec | None, ts: int | None
) -> SensorReading:
    if "value" not in data:
        raise fail(ErrorCode.MALFORMED, "missing 'value'")
    if spec is not None:
        value = check_value(data["value"], spec.value_type, spec.options)
    elif data["value"] is None:
        raise fail(ErrorCode.WRONG_TYPE, "value is null")
    else:
        value = scalar(data["value"])
    own_ts = ts_member(data)
    return SensorReading(
        sensor_id=sensor_id,
        value=value,
        ts=own_ts if own_ts is not None else ts,
        quality=int_member(data, "quality", 0, 100),
    )


def parse_sensor(
    payload: bytes | str, sensor_id: str, caps: Capabilities | None = None
) -> SensorReading:
    """Parse a single sensor reading (checked against the capabilities if given)."""
    spec = _sensor_spec(caps, sensor_id)
    return _reading(decode_object(payload), sensor_id, spec, None)


@dataclass(frozen=True, slots=True)
class Batch:
    """`B/D/batch`."""

    ts: int | None
    readings: tuple[SensorReading, ...]


def parse_batch(payload: bytes | str, caps: Capabilities | None = None) -> Batch:
    """Parse a batch of readings; one bad reading rejects the batch."""
    data = decode_object(payload)
    ts = ts_member(data)
    if "readings" not in data:
        raise fail(ErrorCode.MALFORMED, "missing 'readings'")
    readings_raw = data["readings"]
    if not isinstance(readings_raw, list):
        raise fail(ErrorCode.WRONG_TYPE, "'readings' must be a list")
    readings = []
    for item in readings_raw:
        if not isinstance(item, dict):
            raise fail(ErrorCode.WRONG_TYPE, "reading must be an object")
        if "id" not in item:
            raise fail(ErrorCode.MALFORMED, "reading without 'id'")
        spec = _sensor_spec(caps, item["id"])
        readings.append(_reading(item, item["id"], spec, ts))
    return Batch(ts=ts, readings=tuple(readings))


@dataclass(frozen=True, slots=True)
class ActuatorState:
    """`B/D/actuators/A/state`."""

    actuator_id: str
    value: Value
    ts: int | None = None


def parse_actuator_state(
    payload: bytes | str, actuator_id: str, caps: Capabilities | None = None
) -> ActuatorState:
    """Parse an actuator state message (checked against the capabilities if given)."""
    if not is_valid_entity_id(actuator_id):
        raise fail(ErrorCode.INVALID_ID, "invalid actuator id")
    spec = None
    if caps is not None:
        spec = caps.actuator(actuator_id)
        if spec is None:
            raise fail(ErrorCode.UNKNOWN_ACTUATOR, f"unknown actuator {actuator_id}")
    data = decode_object(payload)
    if "value" not in data:
        raise fail(ErrorCode.MALFORMED, "missing 'value'")
    if spec is not None:
        value = check_value(data["value"], spec.value_type, spec.options)
    elif data["value"] is None:
        raise fail(ErrorCode.WRONG_TYPE, "value is null")
    else:
        value = scalar(data["value"])
    return ActuatorState(actuator_id=actuator_id, value=value, ts=ts_member(data))


# ------------------------------------------------------------- commands


def _command_object(payload: bytes | str) -> dict[str, Any]:
    """Decode a command as the device does: NaN tokens are plain syntax errors."""
    raw = raw_bytes(payload)
    if len(raw) > MAX_COMMAND_BYTES:
        raise fail(ErrorCode.PAYLOAD_TOO_LARGE, f"{len(raw)} bytes > {MAX_COMMAND_BYTES}")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=reject_constant, object_pairs_hook=unique_keys)
        check_escaped_text(text, data)
    except (NonFinite, ValueError, RecursionError) as err:
        raise fail(ErrorCode.MALFORMED, "command is not valid JSON") from err
    if not isinstance(data, dict):
        raise fail(ErrorCode.MALFORMED, "command is not a JSON object")
    request_id = data.get("id")
    if request_id is not None and (
        not isinstance(request_id, str) or len(request_id.encode("utf-8")) > MAX_REQUEST_ID_LEN
    ):
        raise fail(ErrorCode.MALFORMED, "'id' must be a string of at most 64 bytes")
    return data


def deadline_after(timeout_s: float, now_s: float | None = None) -> int:
    """The `deadline` of a command whose sender waits `timeout_s` for the answer.

    Unix epoch milliseconds (protocol section 8.1): the moment the sender gives up,
    after which a device with a synchronised clock answers `expired` and does nothing.
    """
    now = time.time() if now_s is None else now_s
    return int((now + timeout_s) * 1000)


def _deadline(data: Mapping[str, Any]) -> int | None:
    """A command's `deadline` as the device reads it: anything but epoch ms is malformed."""
    value = data.get("deadline")
    if value is None:
        return None
    if not is_integral(value):
        raise fail(ErrorCode.MALFORMED, "'deadline' must be Unix epoch milliseconds")
    assert isinstance(value, int | float)
    if not 0 <= value <= MAX_TS_MS:
        raise fail(ErrorCode.MALFORMED, "'deadline' must be Unix epoch milliseconds")
    return int(value)


def _request_id(request_id: str | None) -> str | None:
    if request_id is not None and REQUEST_ID_RE.fullmatch(request_id) is None:
        raise fail(ErrorCode.MALFORMED, "invalid request id")
    return request_id


def _encode_command(body: dict[str, Any], deadline: int | None = None) -> str:
    if deadline is not None:
        # Last, after the id and the command (the device echoes an id it finds first).
        body["deadline"] = _deadline({"deadline": deadline})
    text = json.dumps(body, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    if len(text.encode("utf-8")) > MAX_COMMAND_BYTES:
        raise fail(ErrorCode.PAYLOAD_TOO_LARGE, "command too large")
    return text


@dataclass(frozen=True, slots=True)
class ActuatorSet:
    """`B/D/actuators/A/set` (to the device)."""

    actuator_id: str
    action: Action
    value: Value | None = None
    id: str | None = None
    deadline: int | None = None


def check_actuator_command(
    spec: ActuatorSpec, action: Action, value: object = None
) -> Value | None:
    """Check an action (and value) against the actuator's capability, as the device does."""
    if action not in spec.actions:
        raise fail(ErrorCode.UNSUPPORTED_ACTION, f"{spec.id} does not support {action.value}")
    if action is not Action.WRITE:
        return None
    if value is None:
        raise fail(ErrorCode.INVALID_VALUE, "write needs a value")
    if spec.value_type is ValueType.NUMBER:
        if not is_number(value):
            raise fail(ErrorCode.INVALID_VALUE, "expected a number")
        assert isinstance(value, int | float)
        if not math.isfinite(value):
            raise fail(ErrorCode.INVALID_VALUE, "number out of range")
        if (spec.min is not None and value < spec.min) or (
            spec.max is not None and value > spec.max
        ):
            raise fail(ErrorCode.OUT_OF_RANGE, f"{value} outside {spec.min}..{spec.max}")
        if spec.step is not None:
            steps = (value - (spec.min or 0)) / spec.step
            if abs(steps - round(steps)) > 1e-9:
                raise fail(ErrorCode.INVALID_VALUE, f"{value} is not on a step of {spec.step}")
        return value
    ok = {
        ValueType.BOOLEAN: isinstance(value, bool),
        ValueType.STRING: isinstance(value, str),
        ValueType.ENUM: isinstance(value, str) and value in spec.options,
        ValueType.TRIGGER: False,
    }[spec.value_type]
    if not ok:
        raise fail(ErrorCode.INVALID_VALUE, f"invalid value for a {spec.value_type.value}")
    assert isinstance(value, bool | str)
    if isinstance(value, str) and len(value.encode("utf-8")) > MAX_COMMAND_BYTES:
        raise fail(ErrorCode.PAYLOAD_TOO_LARGE, "value too long")
    return value


def parse_actuator_set(
    payload: bytes | str, actuator_id: str, caps: Capabilities | None = None
) -> ActuatorSet:
    """Parse an actuator command; with capabilities, check it as the device does."""
    data = _command_object(payload)
    action_raw = data.get("action")
    if not isinstance(action_raw, str):
        raise fail(ErrorCode.MALFORMED, "missing 'action'")
    spec = caps.actuator(actuator_id) if caps is not None else None
    if caps is not None and spec is None:
        raise fail(ErrorCode.UNKNOWN_ACTUATOR, f"unknown actuator {actuator_id}")
    try:
        action = Action(action_raw)
    except ValueError as err:
        raise fail(ErrorCode.UNSUPPORTED_ACTION, f"unknown action {action_raw!r}") from err
    value = data.get("value") if action is Action.WRITE else None
    if spec is not None:
        check_actuator_command(spec, action, value)
    elif action is Action.WRITE:
        value = None if value is None else scalar(value)
    return ActuatorSet(
        actuator_id=actuator_id,
        action=action,
        value=value,
        id=data.get("id"),
        deadline=_deadline(data),
    )


def build_actuator_set(
    action: Action,
    value: Value | None = None,
    request_id: str | None = None,
    deadline: int | None = None,
) -> str:
    """Build an actuator command payload (`deadline`: Unix epoch ms, section 8.1)."""
    body: dict[str, Any] = {}
    if _request_id(request_id) is not None:
        body["id"] = request_id
    body["action"] = Action(action).value
    if action is Action.WRITE:
        if value is None:
            raise fail(ErrorCode.INVALID_VALUE, "write needs a value")
        body["value"] = scalar(value)
    return _encode_command(body, deadline)


@dataclass(frozen=True, slots=True)
class Command:
    """`B/D/cmd` (to the device)."""

    cmd: str
    args: Mapping[str, Any]
    id: str | None = None
    deadline: int | None = None


def _interval(args: Mapping[str, Any], key: str, low: int = MIN_INTERVAL_MS) -> None:
    value = args.get(key)
    if value is None:
        return
    if not is_integral(value):
        raise fail(ErrorCode.INVALID_VALUE, f"'{key}' must be an integer")
    if not low <= int(value) <= MAX_INTERVAL_MS:
        raise fail(ErrorCode.OUT_OF_RANGE, f"'{key}' outside {low}..{MAX_INTERVAL_MS}")


def validate_command_args(
    cmd: str, args: Mapping[str, Any], caps: Capabilities | None = None
) -> dict[str, Any]:
    """Validate the arguments of a device command as the device does; return a copy."""
    if cmd not in DEVICE_COMMANDS:
        raise fail(ErrorCode.UNSUPPORTED_ACTION, f"unknown command {cmd!r}")
    clean: dict[str, Any] = dict(args)
    if cmd == "set_streaming":
        sensor = clean.get("sensor")
        if not isinstance(sensor, str) or not is_valid_entity_id(sensor):
            raise fail(ErrorCode.UNKNOWN_SENSOR, f"unknown sensor {sensor!r}")
        if caps is not None and caps.sensor(sensor) is None:
            raise fail(ErrorCode.UNKNOWN_SENSOR, f"unknown sensor {sensor!r}")
        if not isinstance(clean.get("enable"), bool):
            raise fail(ErrorCode.INVALID_VALUE, "set_streaming needs 'enable'")
        _interval(clean, "interval_ms")
    elif cmd == "set_discovery":
        try:
            DiscoveryMode(str(clean.get("mode")))
        except ValueError as err:
            raise fail(ErrorCode.INVALID_VALUE, "mode must be mqtt or integration") from err
    elif cmd == "update_config":
        allowed = {"publish_interval_ms", "metrics_interval_ms", "qos"}
        if not clean or set(clean) - allowed:
            raise fail(ErrorCode.INVALID_VALUE, "update_config takes intervals and qos only")
        _interval(clean, "publish_interval_ms")
        _interval(clean, "metrics_interval_ms", MIN_METRICS_INTERVAL_MS)
        qos = clean.get("qos")
        if qos is not None:
            if (
                not isinstance(qos, dict)
                or not qos
                or set(qos)
                - {
                    "sensor",
                    "actuator",
                    "status",
                    "error",
                }
            ):
                raise fail(ErrorCode.INVALID_VALUE, "invalid qos")
            for level in qos.values():
                if not is_integral(level):
                    raise fail(ErrorCode.INVALID_VALUE, "qos must be an integer")
                if not 0 <= int(level) <= 2:
                    raise fail(ErrorCode.OUT_OF_RANGE, "qos outside 0..2")
    elif cmd == "ota":
        url = clean.get("url")
        if not isinstance(url, str) or not url.startswith("https://") or len(url) > 512:
            raise fail(ErrorCode.INVALID_VALUE, "ota needs an https url")
        if not isinstance(clean.get("sha256"), str) or not SHA256_RE.fullmatch(clean["sha256"]):
            raise fail(ErrorCode.INVALID_VALUE, "ota needs a sha256 (64 hex digits)")
        version = clean.get("version")
        if not isinstance(version, str) or not 0 < len(version) <= 64:
            raise fail(ErrorCode.INVALID_VALUE, "ota needs a version")
    return clean


def build_command(
    cmd: str,
    args: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    caps: Capabilities | None = None,
    deadline: int | None = None,
) -> str:
    """Build a device command payload after validating it (`deadline`: section 8.1)."""
    clean = validate_command_args(cmd, args or {}, caps)
    body: dict[str, Any] = {}
    if _request_id(request_id) is not None:
        body["id"] = request_id
    body["cmd"] = cmd
    body["args"] = clean
    return _encode_command(body, deadline)


def parse_command(payload: bytes | str, caps: Capabilities | None = None) -> Command:
    """Parse a device command; with capabilities, check it as the device does."""
    data = _command_object(payload)
    cmd = data.get("cmd")
    if not isinstance(cmd, str):
        raise fail(ErrorCode.MALFORMED, "missing 'cmd'")
    args = data.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise fail(ErrorCode.MALFORMED, "'args' must be an object")
    return Command(
        cmd=cmd,
        args=validate_command_args(cmd, args, caps),
        id=data.get("id"),
        deadline=_deadline(data),
    )


# ------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class Response:
    """`B/D/response`."""

    id: str | None
    ok: bool
    result: Mapping[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None


def parse_response(payload: bytes | str) -> Response:
    """Parse a command response."""
    data = decode_object(payload)
    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise fail(ErrorCode.WRONG_TYPE, "'id' must be a string")
    if "ok" not in data:
        raise fail(ErrorCode.MALFORMED, "missing 'ok'")
    ok = data["ok"]
    if not isinstance(ok, bool):
        raise fail(ErrorCode.WRONG_TYPE, "'ok' must be a boolean")
    if ok:
        result = data.get("result")
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise fail(ErrorCode.WRONG_TYPE, "'result' must be an object")
        return Response(id=request_id, ok=True, result=result)
    error = data.get("error")
    if error is None:
        raise fail(ErrorCode.MALFORMED, "failed response needs 'error'")
    if not isinstance(error, dict):
        raise fail(ErrorCode.WRONG_TYPE, "'error' must be an object")
    code = str_member(error, "code", 64, required=True)
    return Response(
        id=request_id,
        ok=False,
        error_code=code,
        error_message=str_member(error, "message", MAX_TEXT_LEN) or "",
    )


# ----------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class Metrics:
    """`B/D/metrics`; missing metrics are absent from `values`."""

    values: Mapping[str, int]
    ts: int | None = None

    def get(self, name: str) -> int | None:
        """Return one metric."""
        return self.values.get(name)


def metrics_from_object(data: Mapping[str, Any]) -> Metrics:
    """Validate a decoded metrics object (`metrics` message or `get_metrics` result)."""
    values: dict[str, int] = {}
    for name in METRIC_FIELDS:
        low = None if name == "rssi" else 0
        number = int_member(data, name, low)
        if number is not None:
            values[name] = number
    return Metrics(values=values, ts=ts_member(data))


def parse_metrics(payload: bytes | str) -> Metrics:
    """Parse a metrics message; unknown keys are ignored."""
    return metrics_from_object(decode_object(payload))


# ------------------------------------------------------------------ errors

CRITICAL_SEVERITY: Final = 3
MAX_SEVERITY: Final = 255


@dataclass(frozen=True, slots=True)
class DeviceError:
    """`B/D/error`."""

    type: str
    code: int
    message: str
    severity: int
    ts: int | None = None


def parse_error(payload: bytes | str) -> DeviceError:
    """Parse an error report."""
    data = decode_object(payload)
    err_type = str_member(data, "type", 64, required=True)
    assert err_type is not None
    if not err_type:
        raise fail(ErrorCode.INVALID_VALUE, "empty error type")
    code = int_member(data, "code", required=True)
    message = str_member(data, "message", MAX_TEXT_LEN, required=True)
    severity = int_member(data, "severity", 0, MAX_SEVERITY, required=True)
    assert code is not None
    assert message is not None
    assert severity is not None
    return DeviceError(
        type=err_type, code=code, message=message, severity=severity, ts=ts_member(data)
    )
