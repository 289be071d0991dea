"""The pure protocol module against the shared test vectors (no Home Assistant)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from custom_components.esp_mcp_bridge import protocol as p
from custom_components.esp_mcp_bridge.validation import MAX_TS_MS
import vectors

BASE = "mcp_bridge"
REFERENCE = p.parse_capabilities(json.dumps(vectors.reference_device()["capabilities"]))


def _reading(device_id: str, r: p.SensorReading) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "sensor_id": r.sensor_id,
        "value": r.value,
        "ts": r.ts,
        "quality": r.quality,
    }


def decode(kind: str, topic: str, payload: bytes) -> dict[str, Any]:
    """Decode one message into the normalised form of the vectors."""
    info = p.parse_topic(BASE, topic)
    device_id = info.device_id
    if kind == "status":
        status = p.parse_status(payload, device_id)
        return {"device_id": status.device_id, "online": status.online}
    if kind == "capabilities":
        return p.parse_capabilities(payload, device_id).as_dict()
    if kind == "sensor":
        assert info.item_id is not None
        return _reading(device_id, p.parse_sensor(payload, info.item_id, REFERENCE))
    if kind == "batch":
        batch = p.parse_batch(payload, REFERENCE)
        readings = [_reading(device_id, r) for r in batch.readings]
        for reading in readings:
            del reading["device_id"]
        return {"device_id": device_id, "ts": batch.ts, "readings": readings}
    if kind == "actuator_state":
        assert info.item_id is not None
        state = p.parse_actuator_state(payload, info.item_id, REFERENCE)
        return {
            "device_id": device_id,
            "actuator_id": state.actuator_id,
            "value": state.value,
            "ts": state.ts,
        }
    if kind == "actuator_set":
        assert info.item_id is not None
        cmd = p.parse_actuator_set(payload, info.item_id, REFERENCE)
        return {
            "device_id": device_id,
            "actuator_id": cmd.actuator_id,
            "id": cmd.id,
            "action": cmd.action.value,
            "value": cmd.value,
        }
    if kind == "cmd":
        command = p.parse_command(payload, REFERENCE)
        return {
            "device_id": device_id,
            "id": command.id,
            "cmd": command.cmd,
            "args": dict(command.args),
        }
    if kind == "response":
        response = p.parse_response(payload)
        error = (
            None
            if response.ok
            else {"code": response.error_code, "message": response.error_message}
        )
        return {
            "device_id": device_id,
            "id": response.id,
            "ok": response.ok,
            "result": dict(response.result) if response.result is not None else None,
            "error": error,
        }
    if kind == "metrics":
        metrics = p.parse_metrics(payload)
        return {
            "device_id": device_id,
            **{name: metrics.get(name) for name in p.METRIC_FIELDS},
            "ts": metrics.ts,
        }
    assert kind == "error"
    error = p.parse_error(payload)
    return {
        "device_id": device_id,
        "type": error.type,
        "code": error.code,
        "message": error.message,
        "severity": error.severity,
        "ts": error.ts,
    }


CASES = [
    pytest.param(kind, case, id=f"{kind}-{case.name}")
    for kind in vectors.bridge_kinds()
    for case in vectors.load(kind)
]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_vector(kind: str, case: vectors.Case) -> None:
    """Every vector decodes to its expected object or is rejected with its code."""
    if case.valid:
        decoded = decode(kind, case.topic, case.payload)
        assert vectors.matches(case.decoded, decoded), (decoded, case.decoded)
    else:
        with pytest.raises(p.ProtocolError) as err:
            decode(kind, case.topic, case.payload)
        assert err.value.code.value == case.error, err.value


def _strict_kind(topic: str) -> str:
    return "actuator_set" if topic.endswith("/set") else "cmd"


# The firmware's strict-JSON cases (not a message kind of their own: commands and sets).
STRICT_JSON = json.loads((vectors.VECTORS_DIR / "strict_json.json").read_text())["cases"]


@pytest.mark.parametrize("entry", STRICT_JSON, ids=lambda e: e["name"])
def test_strict_json_refused_like_the_device(entry: dict[str, Any]) -> None:
    """NUL and lone-surrogate escapes and duplicate keys: `malformed` here as on the device.

    Python's json keeps the last of two keys and the device's parser the first; refusing
    both ways keeps the two ends from acting on different `action`s.
    """
    topic = entry["topic"]
    with pytest.raises(p.ProtocolError) as err:
        decode(_strict_kind(topic), topic, vectors.payload_of(entry))
    assert err.value.code.value == entry["expect"]["error"] == "malformed", err.value


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"v":1}',
        b'{"name":"a\\u0000b"}',
        b'{"x\\ud800":1}',
        b'{"list":["\\udc00"]}',
    ],
)
def test_device_messages_strict_too(payload: bytes) -> None:
    """What a device sends is held to the same rules (keys and nested strings included)."""
    with pytest.raises(p.ProtocolError) as err:
        p.decode_object(payload)
    assert err.value.code is p.ErrorCode.MALFORMED


def test_escapes_that_are_fine_still_decode() -> None:
    """A surrogate pair is one character; other escapes stay as they are."""
    assert p.decode_object(b'{"name":"\\ud83d\\ude00 \\u00e9\\n"}') == {
        "name": "\U0001f600 \u00e9\n"
    }


@pytest.mark.parametrize(
    "case",
    [c for c in vectors.load("actuator_set") if c.valid],
    ids=lambda c: c.name,
)
def test_build_actuator_set_round_trip(case: vectors.Case) -> None:
    """What the integration builds decodes to the same command."""
    expected = case.decoded
    payload = p.build_actuator_set(p.Action(expected["action"]), expected["value"], expected["id"])
    assert len(payload.encode()) <= p.MAX_COMMAND_BYTES
    assert vectors.matches(expected, decode("actuator_set", case.topic, payload.encode()))
    spec = REFERENCE.actuator(expected["actuator_id"])
    assert spec is not None
    assert p.check_actuator_command(spec, p.Action(expected["action"]), expected["value"]) == (
        expected["value"] if expected["action"] == "write" else None
    )


@pytest.mark.parametrize("case", [c for c in vectors.load("cmd") if c.valid], ids=lambda c: c.name)
def test_build_command_round_trip(case: vectors.Case) -> None:
    """Device commands built by the integration decode to the same command."""
    expected = case.decoded
    payload = p.build_command(expected["cmd"], expected["args"], expected["id"], REFERENCE)
    assert vectors.matches(expected, decode("cmd", case.topic, payload.encode()))


DEADLINE = 1_764_000_000_500


@pytest.mark.parametrize(
    "case",
    [c for c in vectors.load("actuator_set") if c.valid],
    ids=lambda c: c.name,
)
def test_build_actuator_set_with_deadline(case: vectors.Case) -> None:
    """With its deadline a built command still decodes to the vector's command."""
    expected = case.decoded
    action = p.Action(expected["action"])
    without = p.build_actuator_set(action, expected["value"], expected["id"])
    if len(without.encode()) + len(f',"deadline":{DEADLINE}') > p.MAX_COMMAND_BYTES:
        # The device would refuse it (section 11): refused here, before anything is sent.
        with pytest.raises(p.ProtocolError) as err:
            p.build_actuator_set(action, expected["value"], expected["id"], DEADLINE)
        assert err.value.code is p.ErrorCode.PAYLOAD_TOO_LARGE
        return
    payload = p.build_actuator_set(action, expected["value"], expected["id"], DEADLINE)
    assert len(payload.encode()) <= p.MAX_COMMAND_BYTES
    assert payload.endswith(f',"deadline":{DEADLINE}}}')
    assert vectors.matches(expected, decode("actuator_set", case.topic, payload.encode()))
    info = p.parse_topic(BASE, case.topic)
    assert info.item_id is not None
    assert p.parse_actuator_set(payload, info.item_id, REFERENCE).deadline == DEADLINE


@pytest.mark.parametrize("case", [c for c in vectors.load("cmd") if c.valid], ids=lambda c: c.name)
def test_build_command_with_deadline(case: vectors.Case) -> None:
    """Device commands with a deadline: the vector's command, and the deadline last."""
    expected = case.decoded
    payload = p.build_command(
        expected["cmd"], expected["args"], expected["id"], REFERENCE, DEADLINE
    )
    assert payload.endswith(f',"deadline":{DEADLINE}}}')
    assert vectors.matches(expected, decode("cmd", case.topic, payload.encode()))
    assert p.parse_command(payload, REFERENCE).deadline == DEADLINE


def _lifecycle_commands() -> list[tuple[str, bytes]]:
    return [
        (step["topic"], step["payload"].encode())
        for case in vectors.lifecycle()
        for step in case.steps
        if step["do"] == "message" and '"deadline"' in step["payload"]
    ]


@pytest.mark.parametrize(("topic", "payload"), _lifecycle_commands())
def test_deadline_read_as_the_device_reads_it(topic: str, payload: bytes) -> None:
    """The lifecycle vectors' deadlines: epoch ms is read, anything else is malformed."""
    raw = json.loads(payload)["deadline"]
    kind = "actuator_set" if topic.endswith("/set") else "cmd"
    if isinstance(raw, int):
        info = p.parse_topic(BASE, topic)
        parsed = (
            p.parse_actuator_set(payload, info.item_id or "", REFERENCE)
            if kind == "actuator_set"
            else p.parse_command(payload, REFERENCE)
        )
        assert parsed.deadline == raw
    else:
        with pytest.raises(p.ProtocolError) as err:
            decode(kind, topic, payload)
        assert err.value.code is p.ErrorCode.MALFORMED


@pytest.mark.parametrize("deadline", [-1, MAX_TS_MS + 1, True, 1.5, "1764000000000"])
def test_builders_refuse_a_deadline_the_device_would_not_read(deadline: Any) -> None:
    """A bad deadline is refused before anything is sent."""
    with pytest.raises(p.ProtocolError) as err:
        p.build_command("ping", {}, "r-1", deadline=deadline)
    assert err.value.code is p.ErrorCode.MALFORMED
    with pytest.raises(p.ProtocolError):
        p.build_actuator_set(p.Action.READ, None, "r-1", deadline)


def test_deadline_after_and_expired_code() -> None:
    """The deadline is now + the timeout in epoch ms; `expired` is a known code."""
    assert p.deadline_after(2.0, now_s=1_764_000_000.25) == 1_764_000_002_250
    assert p.deadline_after(0.5, now_s=10.0) == 10_500
    expired = next(c for c in vectors.load("response") if c.name == "error_expired")
    response = p.parse_response(expired.payload)
    assert p.ErrorCode(response.error_code) is p.ErrorCode.EXPIRED


def test_capabilities_safe_mode() -> None:
    """`safe_mode` true is read (and kept in as_dict); absent is false; not a boolean rejects."""
    caps = vectors.reference_device()["capabilities"]
    parsed = p.parse_capabilities(json.dumps(caps | {"safe_mode": True}))
    assert parsed.safe_mode is True
    assert parsed.as_dict()["safe_mode"] is True
    assert p.parse_capabilities(json.dumps(caps)).safe_mode is False
    assert "safe_mode" not in p.parse_capabilities(json.dumps(caps)).as_dict()
    with pytest.raises(p.ProtocolError) as err:
        p.parse_capabilities(json.dumps(caps | {"safe_mode": "yes"}))
    assert err.value.code is p.ErrorCode.WRONG_TYPE


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in vectors.load("cmd")
        if not c.valid and c.error not in ("malformed", "payload_too_large")
    ],
    ids=lambda c: c.name,
)
def test_build_command_refuses_what_the_device_rejects(case: vectors.Case) -> None:
    """Invalid arguments are refused before anything is sent, with the device's code."""
    body = json.loads(case.payload)
    with pytest.raises(p.ProtocolError) as err:
        p.build_command(body["cmd"], body.get("args", {}), body.get("id"), REFERENCE)
    assert err.value.code.value == case.error


@pytest.mark.parametrize("case", vectors.load("ids"), ids=lambda c: c.name)
def test_ids(case: vectors.Case) -> None:
    """Naming rules for device, sensor and actuator ids."""
    text = case.payload.decode("utf-8")
    if case.id_kind == "device":
        assert p.is_valid_device_id(text) is case.valid
    else:
        assert p.is_valid_entity_id(text) is case.valid


def test_discovery_topic() -> None:
    """The discovery topic the integration clears on takeover matches the vectors."""
    for case in vectors.load("discovery"):
        assert p.discovery_config_topic("esp32-a1b2c3") == case.topic
    with pytest.raises(p.ProtocolError):
        p.discovery_config_topic("Bad/Id")


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        ("other/esp32-a1b2c3/status", "malformed"),
        ("mcp_bridge/esp32-a1b2c3/unknown", "malformed"),
        ("mcp_bridge/esp32-a1b2c3/actuators/led/other", "malformed"),
        ("mcp_bridge/ESP32/status", "invalid_id"),
        ("mcp_bridge/esp32+1/status", "invalid_id"),
    ],
)
def test_parse_topic_rejects(topic: str, code: str) -> None:
    """Topics outside the contract are rejected."""
    with pytest.raises(p.ProtocolError) as err:
        p.parse_topic(BASE, topic)
    assert err.value.code.value == code


def test_topics_and_builders() -> None:
    """Topic helpers check ids; builders refuse bad input."""
    assert p.actuator_set_topic(BASE, "d1", "led") == "mcp_bridge/d1/actuators/led/set"
    assert p.cmd_topic(BASE, "d1") == "mcp_bridge/d1/cmd"
    with pytest.raises(p.ProtocolError):
        p.actuator_set_topic(BASE, "d1", "LED")
    with pytest.raises(p.ProtocolError):
        p.cmd_topic(BASE, "d/1")
    with pytest.raises(p.ProtocolError):
        p.build_actuator_set(p.Action.WRITE, None, "r-1")
    with pytest.raises(p.ProtocolError):
        p.build_actuator_set(p.Action.READ, None, "bad id with spaces")
    with pytest.raises(p.ProtocolError) as err:
        p.build_actuator_set(p.Action.WRITE, "x" * 1020, "r-1")
    assert err.value.code is p.ErrorCode.PAYLOAD_TOO_LARGE
    assert json.loads(p.build_actuator_set(p.Action.TOGGLE)) == {"action": "toggle"}
    assert json.loads(p.build_command("ping")) == {"cmd": "ping", "args": {}}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("mcp_bridge", True),
        ("site/a/bridge", True),
        ("", False),
        ("a/+/b", False),
        ("a/#", False),
        ("/a", False),
        ("a/", False),
        ("a//b", False),
        ("a\x00", False),
        ("x" * 129, False),
        (5, False),
    ],
)
def test_base_topic_rule(value: object, ok: bool) -> None:
    """Base topics usable for subscribing and publishing."""
    assert p.is_valid_base_topic(value) is ok


def test_capabilities_details() -> None:
    """Defaults and helpers of parsed capabilities."""
    caps = p.parse_capabilities(
        json.dumps(
            {
                "v": 1,
                "device_id": "d1",
                "sensors": [{"id": "t", "value_type": "number"}],
                "actuators": [
                    {"id": "b", "value_type": "trigger"},
                    {"id": "n", "value_type": "number"},
                ],
            }
        )
    )
    assert caps.name == "d1"
    assert caps.sensors[0].name == "t"
    assert caps.sensors[0].type == "generic"
    assert caps.actuator("b").actions == (p.Action.TRIGGER,)  # type: ignore[union-attr]
    assert caps.actuator("n").actions == (p.Action.READ, p.Action.WRITE)  # type: ignore[union-attr]
    assert caps.actuator("zz") is None
    assert caps.sensor("zz") is None
    assert caps.as_dict()["actuators"][0] == {"id": "b", "value_type": "trigger"}


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"mac": "not-a-mac"}, "invalid_value"),
        ({"name": 5}, "wrong_type"),
        ({"name": "x" * 65}, "out_of_range"),
        ({"device_id": "Bad"}, "invalid_id"),
        ({"v": 0}, "out_of_range"),
        ({"sensors": ["x"]}, "wrong_type"),
        ({"sensors": [{"id": "t", "value_type": 5}]}, "wrong_type"),
        ({"sensors": [{"id": "t", "value_type": "enum", "options": "a"}]}, "wrong_type"),
        ({"sensors": [{"id": "t", "value_type": "enum", "options": []}]}, "invalid_value"),
        ({"sensors": [{"id": "t", "value_type": "enum", "options": ["a", "a"]}]}, "invalid_value"),
        (
            {"sensors": [{"id": "t", "value_type": "number", "calibration_required": 1}]},
            "wrong_type",
        ),
        ({"actuators": [{"id": "t", "value_type": "number", "step": 0}]}, "invalid_value"),
        ({"actuators": [{"id": "t", "value_type": "number", "actions": "read"}]}, "wrong_type"),
    ],
)
def test_capabilities_rejects(patch: dict[str, Any], code: str) -> None:
    """More malformed capabilities."""
    body = {"v": 1, "device_id": "d1", "sensors": [], "actuators": []} | patch
    with pytest.raises(p.ProtocolError) as err:
        p.parse_capabilities(json.dumps(body), "d1")
    assert err.value.code.value == code


def test_readings_without_capabilities() -> None:
    """Without capabilities, readings are checked for plain JSON scalars only."""
    assert p.parse_sensor(b'{"value": "x"}', "s").value == "x"
    assert p.parse_actuator_state(b'{"value": 3}', "a").value == 3
    assert p.parse_batch(b'{"readings": [{"id": "s", "value": 1}]}').readings[0].value == 1
    for payload in (b'{"value": null}', b'{"value": [1]}', b'{"value": "' + b"x" * 1100 + b'"}'):
        with pytest.raises(p.ProtocolError):
            p.parse_sensor(payload, "s")
    with pytest.raises(p.ProtocolError):
        p.parse_actuator_state(b'{"value": null}', "a")
    with pytest.raises(p.ProtocolError):
        p.parse_actuator_state(b"{}", "a")
    with pytest.raises(p.ProtocolError):
        p.parse_batch(b'{"readings": [5]}')
    with pytest.raises(p.ProtocolError):
        p.check_value(True, p.ValueType.TRIGGER)


def test_commands_without_capabilities() -> None:
    """Parsing commands without capabilities keeps plain values."""
    cmd = p.parse_actuator_set(b'{"action": "write", "value": 3}', "a")
    assert cmd.value == 3
    assert p.parse_command(b'{"cmd": "ping", "args": null}').args == {}
    with pytest.raises(p.ProtocolError):
        p.parse_command(b'{"cmd": "update_config", "args": {"qos": {"sensor": "1"}}}')
    with pytest.raises(p.ProtocolError):
        p.parse_command(b'{"cmd": "update_config", "args": {"qos": []}}')
    with pytest.raises(p.ProtocolError):
        p.parse_command(b'{"cmd": "update_config", "args": {}}')
    with pytest.raises(p.ProtocolError):
        p.parse_command(b'{"cmd": "set_streaming", "args": {"sensor": "A", "enable": true}}')


def test_check_actuator_command() -> None:
    """Device-side checks applied before sending."""
    spec = p.ActuatorSpec(
        id="t", type="x", name="t", value_type=p.ValueType.STRING, actions=(p.Action.WRITE,)
    )
    with pytest.raises(p.ProtocolError) as err:
        p.check_actuator_command(spec, p.Action.WRITE, "x" * 1100)
    assert err.value.code is p.ErrorCode.PAYLOAD_TOO_LARGE
    assert p.check_actuator_command(spec, p.Action.WRITE, "ok") == "ok"


# Values a hostile or broken device may send, put under every member the parsers read.
HOSTILE_VALUES = (
    "9" * 309,
    "[" + ",".join(["[]"] * 40) + "]",
    "9" * 400,
    "-" + "9" * 400,
    "9" * 5000,
    "1" + "0" * 17,
    "1e308",
    "-1e-400",
    str(2**64),
    "[" * 5000 + "]" * 5000,
    '{"a":' * 2000 + "1" + "}" * 2000,
    "[" * 33 + "]" * 33,
    '"' + "x" * 1100 + '"',
)
HOSTILE_KEYS = (
    "value",
    "ts",
    "quality",
    "readings",
    "id",
    "ok",
    "result",
    "error",
    "code",
    "severity",
    "uptime_s",
    "rssi",
    "v",
    "sensors",
    "action",
    "args",
    "future",
)


def _every_parser(payload: bytes) -> list[Any]:
    parsers = (
        lambda: p.parse_sensor(payload, "temperature", REFERENCE),
        lambda: p.parse_sensor(payload, "s"),
        lambda: p.parse_batch(payload, REFERENCE),
        lambda: p.parse_actuator_state(payload, "valve", REFERENCE),
        lambda: p.parse_actuator_state(payload, "a"),
        lambda: p.parse_metrics(payload),
        lambda: p.parse_error(payload),
        lambda: p.parse_response(payload),
        lambda: p.parse_capabilities(payload, "d1"),
        lambda: p.parse_status(payload, "d1"),
        lambda: p.parse_command(payload, REFERENCE),
        lambda: p.parse_actuator_set(payload, "valve", REFERENCE),
    )
    results = []
    for parse in parsers:
        with contextlib.suppress(p.ProtocolError):
            results.append(parse())
    return results


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: v[:12])
def test_only_protocol_errors_escape(value: str) -> None:
    """Whatever a member holds, a parser answers with its result or a ProtocolError."""
    for key in HOSTILE_KEYS:
        payload = f'{{"{key}":{value}}}'.encode()
        for result in _every_parser(payload):
            # What is accepted has dates and integers HA can store and serialise.
            ts = getattr(result, "ts", None)
            assert ts is None or 0 <= ts <= MAX_TS_MS
            assert json.loads(json.dumps(result, default=repr)) is not None


def test_ts_and_integer_bounds() -> None:
    """ts ends with the year 9999; integers beyond 2^53 - 1 are doubles or out of range."""
    last = p.parse_sensor(b'{"value":1,"ts":253402300799999}', "s")
    assert last.ts == MAX_TS_MS
    with pytest.raises(p.ProtocolError) as err:
        p.parse_error(b'{"type":"x","code":1,"message":"m","severity":1,"ts":253402300800000}')
    assert err.value.code is p.ErrorCode.OUT_OF_RANGE
    big = p.parse_sensor(f'{{"value":{2**60}}}'.encode(), "s")
    assert isinstance(big.value, float)
    assert big.value == 2**60
    assert p.parse_sensor(f'{{"value":{2**53 - 1}}}'.encode(), "s").value == 2**53 - 1
    with pytest.raises(p.ProtocolError) as err:
        p.parse_metrics(f'{{"free_heap":{2**53}}}'.encode())
    assert err.value.code is p.ErrorCode.OUT_OF_RANGE
    spec = REFERENCE.actuator("valve")
    assert spec is not None
    with pytest.raises(p.ProtocolError) as err:
        p.check_actuator_command(spec, p.Action.WRITE, 10**400)
    assert err.value.code is p.ErrorCode.INVALID_VALUE
