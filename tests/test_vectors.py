"""The shared protocol vectors are well formed and complete.

Every list of required things below is explicit: when a case is missing the
failure names it. Behaviour is checked by the suites that consume the vectors
(firmware CTest, integration, add-on); this file checks the vectors themselves.
"""

from __future__ import annotations

from collections import Counter
import json
import math
import re
import sys
from typing import Any

import pytest

import vectors

# ---------------------------------------------------------------- required lists

REQUIRED_KINDS = (
    "status",
    "capabilities",
    "sensor",
    "batch",
    "actuator_state",
    "actuator_set",
    "cmd",
    "response",
    "metrics",
    "error",
    "discovery",
    "ids",
)
FROM_DEVICE = (
    "status",
    "capabilities",
    "sensor",
    "batch",
    "actuator_state",
    "response",
    "metrics",
    "error",
    "discovery",
)
TO_DEVICE = ("actuator_set", "cmd")
TOPIC_TEMPLATES = {
    "status": "{base}/{device_id}/status",
    "capabilities": "{base}/{device_id}/capabilities",
    "sensor": "{base}/{device_id}/sensors/{sensor_id}",
    "batch": "{base}/{device_id}/batch",
    "actuator_state": "{base}/{device_id}/actuators/{actuator_id}/state",
    "actuator_set": "{base}/{device_id}/actuators/{actuator_id}/set",
    "cmd": "{base}/{device_id}/cmd",
    "response": "{base}/{device_id}/response",
    "metrics": "{base}/{device_id}/metrics",
    "error": "{base}/{device_id}/error",
    "discovery": "homeassistant/device/{device_id}/config",
}
REQUIRED_COMMANDS = (
    "ping",
    "get_metrics",
    "reset_metrics",
    "set_streaming",
    "update_config",
    "set_discovery",
    "identify",
    "restart",
    "ota",
)
RESPONSE_ERROR_CODES = (
    "malformed",
    "payload_too_large",
    "unknown_actuator",
    "unknown_sensor",
    "unsupported_action",
    "invalid_value",
    "out_of_range",
    "confirmation_required",
    "busy",
    "timeout",
    "internal",
    "expired",
)
# Codes the reference device cannot produce from a single command on a fresh
# state: they are covered as parse cases in response.json only (`expired` needs
# a synchronised clock: lifecycle.json has the device producing it).
PARSE_ONLY_CODES = ("confirmation_required", "busy", "timeout", "internal", "expired")
# Error names receivers use when they reject a device message.
RECEIVER_ERRORS = (
    "malformed",
    "payload_too_large",
    "invalid_id",
    "wrong_type",
    "unsupported_version",
    "non_finite",
    "out_of_range",
    "invalid_value",
    "unknown_sensor",
    "unknown_actuator",
    "unsupported_action",
)
ACTIONS = ("read", "write", "toggle", "trigger")
SENSOR_VALUE_TYPES = ("number", "boolean", "string", "enum")
ACTUATOR_VALUE_TYPES = ("boolean", "number", "enum", "string", "trigger")
HA_2025_4_PLATFORMS = frozenset(
    {"sensor", "binary_sensor", "switch", "light", "number", "select", "text", "button"}
)
LIGHT_TYPES = ("led", "light")

# Case names every file must hold (the classes the contract asks for).
REQUIRED_CASES: dict[str, tuple[str, ...]] = {
    "status": (
        "online",
        "offline_lwt",
        "device_id_32_chars",
        "device_id_33_chars",
        "device_id_uppercase",
        "device_id_non_ascii",
        "trailing_nul",
        "empty_retained_cleared",
        "oversized",
    ),
    "capabilities": (
        "reference_device",
        "minimal",
        "future_fields_ignored",
        "higher_version",
        "version_as_string",
        "device_id_mismatch_topic",
        "sensor_id_33_chars",
        "sensor_id_uppercase",
        "sensor_id_with_slash",
        "actuator_id_with_plus",
        "actuator_id_with_hash",
        "sensor_id_duplicate",
        "sensor_and_actuator_share_id",
        "unknown_value_type",
        "enum_without_options",
        "unknown_action",
        "nan_token",
        "malformed_truncated",
        "size_64k_exact",
        "oversized_64k_plus_1",
    ),
    "sensor": (
        "number_full",
        "missing_ts_receiver_time",
        "sensor_id_32_chars",
        "sensor_id_33_chars",
        "sensor_id_uppercase",
        "sensor_id_non_ascii",
        "unknown_sensor",
        "boolean",
        "string",
        "string_non_ascii",
        "enum",
        "enum_not_in_options",
        "wrong_type_string_for_boolean",
        "wrong_type_number_for_string",
        "wrong_type_boolean_for_number",
        "nan_token",
        "infinity_token",
        "negative_infinity_token",
        "quality_above_100",
        "quality_negative",
        "future_fields_ignored",
        "malformed_json",
        "invalid_utf8",
        "ts_last_ms_of_year_9999",
        "ts_year_10000",
        "ts_1e17",
        "integer_400_digits",
        "nesting_32_levels",
        "nesting_33_levels",
        "size_16k_exact",
        "oversized_16k_plus_1",
    ),
    "batch": (
        "three_readings",
        "missing_ts_receiver_time",
        "empty_readings",
        "future_fields_ignored",
        "unknown_sensor",
        "wrong_type_reading",
        "nan_reading",
        "quality_above_100",
        "malformed_json",
        "size_16k_exact",
        "oversized_16k_plus_1",
    ),
    "actuator_state": (
        "boolean_on",
        "boolean_off_missing_ts",
        "number",
        "enum",
        "string",
        "future_fields_ignored",
        "unknown_actuator",
        "wrong_type_string_for_boolean",
        "infinity_token",
        "ts_1e17",
        "malformed_json",
        "oversized_16k_plus_1",
    ),
    "actuator_set": (
        "write_bool_with_id",
        "write_bool_without_id",
        "read_bool_initial",
        "toggle_bool",
        "write_number",
        "write_number_min",
        "write_number_max",
        "write_number_above_max",
        "write_number_below_min",
        "write_enum",
        "write_enum_not_in_options",
        "write_string",
        "write_string_non_ascii",
        "trigger_button",
        "wrong_type_string_for_boolean",
        "wrong_type_number_for_string",
        "wrong_type_without_id_no_response",
        "toggle_not_in_actions",
        "unknown_action",
        "unknown_actuator",
        "actuator_id_33_chars",
        "action_missing",
        "write_number_400_digits",
        "malformed_json",
        "nan_token",
        "infinity_token",
        "future_fields_ignored",
        "size_1024_exact",
        "oversized_1025",
        "oversized_1100",
    ),
    "cmd": (
        "ping",
        "ping_without_id",
        "get_metrics",
        "reset_metrics",
        "set_streaming_enable",
        "update_config_subset",
        "set_discovery_integration",
        "set_discovery_mqtt",
        "identify",
        "restart",
        "ota",
        "set_streaming_unknown_sensor",
        "set_streaming_interval_too_small",
        "update_config_qos_out_of_range",
        "unknown_command",
        "set_streaming_interval_400_digits",
        "malformed_json",
        "nan_token",
        "future_fields_ignored",
        "size_1024_exact",
        "oversized_1025",
        "id_64_bytes",
        "id_65_bytes",
        "id_not_a_string",
    ),
    "response": (
        *(f"error_{code}" for code in RESPONSE_ERROR_CODES),
        "ok_ping",
        "ok_actuator_value",
        "ok_get_metrics",
        "error_null_id_unreadable_command",
        "future_fields_ignored",
        "nan_in_result",
        "malformed_json",
        "oversized_16k_plus_1",
    ),
    "metrics": (
        "full",
        "missing_ts_receiver_time",
        "future_fields_ignored",
        "counter_negative",
        "counter_fractional",
        "rssi_nan",
        "counter_above_2_53",
        "malformed_json",
        "oversized_16k_plus_1",
    ),
    "error": (
        "sensor_read",
        "missing_ts_receiver_time",
        "future_fields_ignored",
        "severity_above_255",
        "code_as_string",
        "type_missing",
        "severity_infinity",
        "ts_1e17",
        "code_above_2_53",
        "code_400_digits",
        "malformed_json",
        "oversized_16k_plus_1",
    ),
    "discovery": ("reference_device_mode_mqtt", "removal_empty_retained"),
    "ids": tuple(
        f"{kind}_{suffix}"
        for kind in ("device", "sensor", "actuator")
        for suffix in (
            "32_chars",
            "33_chars",
            "uppercase",
            "with_plus",
            "with_hash",
            "with_slash",
            "with_nul",
            "non_ascii",
            "empty",
        )
    ),
}

ID_RULES = {
    "device": re.compile(r"[a-z0-9][a-z0-9_-]{0,31}"),
    "sensor": re.compile(r"[a-z0-9_]{1,32}"),
    "actuator": re.compile(r"[a-z0-9_]{1,32}"),
}
CAPABILITIES_LIMIT = 64 * 1024
MESSAGE_LIMIT = 16 * 1024
COMMAND_LIMIT = 1024
MAX_ID_BYTES = 64
MAX_DEPTH = 32  # containers nested in a device message
MAX_SAFE_INTEGER = 2**53 - 1  # integer members beyond it are out_of_range
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
NON_FINITE_TOKEN = re.compile(r"(?<![\w\"])-?(NaN|Infinity)(?![\w\"])|\d[eE]\+?\d{3,}")


# ---------------------------------------------------------------- utilities


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON token {token}")


def strict_json(payload: bytes) -> Any:
    """Parse RFC 8259 JSON: UTF-8 only, no NaN/Infinity."""
    return json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)


def all_cases() -> list[vectors.Case]:
    return [case for kind in vectors.kinds() for case in vectors.load(kind)]


def case_id(case: vectors.Case) -> str:
    return f"{case.kind}:{case.name}"


def topic_match(case: vectors.Case) -> re.Match[str]:
    """The case's topic matched against its kind's topic template."""
    regex = vectors.topic_regex(case.kind)
    assert regex is not None, f"{case.kind} has no topic template"
    match = regex.match(case.topic)
    assert match, f"{case_id(case)}: topic {case.topic!r} does not match {regex.pattern}"
    return match


def by_name(kind: str) -> dict[str, vectors.Case]:
    return {case.name: case for case in vectors.load(kind)}


REF = vectors.reference_device()
REF_CAPS: dict[str, Any] = REF["capabilities"]
REF_ID: str = REF["device_id"]
REF_BASE: str = REF["base_topic"]
SENSORS = {s["id"]: s for s in REF_CAPS["sensors"]}
ACTUATORS = {a["id"]: a for a in REF_CAPS["actuators"]}


# ---------------------------------------------------------------- file format


def test_every_kind_has_a_file_with_cases() -> None:
    assert vectors.kinds() == REQUIRED_KINDS
    for kind in REQUIRED_KINDS:
        doc = vectors.raw(kind)
        assert doc.get("kind") == kind, f"{kind}.json: 'kind' is {doc.get('kind')!r}"
        assert vectors.load(kind), f"{kind}.json has no cases"


def test_kinds_by_direction_and_topic() -> None:
    assert vectors.kinds("from_device") == FROM_DEVICE
    assert vectors.kinds("to_device") == TO_DEVICE
    assert vectors.bridge_kinds() == tuple(
        k for k in REQUIRED_KINDS if k not in {"discovery", "ids"}
    )
    assert vectors.bridge_kinds("from_device") == tuple(k for k in FROM_DEVICE if k != "discovery")


@pytest.mark.parametrize("kind", REQUIRED_KINDS)
def test_file_schema(kind: str) -> None:
    doc = vectors.raw(kind)
    expected_keys = {"kind", "direction", "topic", "cases"}
    assert set(doc) == expected_keys, f"{kind}.json keys {sorted(doc)}"
    if kind == "ids":
        assert doc["direction"] is None
        assert doc["topic"] is None
    else:
        assert doc["direction"] == ("to_device" if kind in TO_DEVICE else "from_device")
        assert doc["topic"] == TOPIC_TEMPLATES[kind]
    allowed = {
        "name",
        "topic",
        "payload",
        "payload_hex",
        "payload_fill",
        "expect",
        "device_response",
        "id_kind",
    }
    for entry in doc["cases"]:
        name = entry.get("name")
        assert isinstance(name, str), f"{kind}: case without name"
        assert re.fullmatch(r"[a-z0-9_]+", name), f"{kind}:{name}: name must be snake_case"
        assert set(entry) <= allowed, f"{kind}:{name}: unknown keys {set(entry) - allowed}"
        payload_keys = [k for k in ("payload", "payload_hex", "payload_fill") if k in entry]
        assert len(payload_keys) == 1, f"{kind}:{name}: payload keys {payload_keys}"
        expect = entry["expect"]
        assert isinstance(expect["valid"], bool), f"{kind}:{name}: expect.valid"
        if kind == "ids":
            assert set(expect) == {"valid"}, f"{kind}:{name}: expect keys"
            assert entry.get("id_kind") in ID_RULES, f"{kind}:{name}: id_kind"
            assert "topic" not in entry
            continue
        assert "id_kind" not in entry
        if expect["valid"]:
            assert set(expect) == {"valid", "decoded"}, f"{kind}:{name}: expect keys"
        else:
            assert set(expect) == {"valid", "error"}, f"{kind}:{name}: expect keys"
            assert isinstance(expect["error"], str), f"{kind}:{name}"
            assert expect["error"], f"{kind}:{name}: empty error code"
        if kind in TO_DEVICE:
            assert "device_response" in entry, f"{kind}:{name}: device_response missing"
        else:
            assert "device_response" not in entry, f"{kind}:{name}: from_device response"


@pytest.mark.parametrize("kind", REQUIRED_KINDS)
def test_case_names_unique(kind: str) -> None:
    counts = Counter(case.name for case in vectors.load(kind))
    duplicates = [name for name, n in counts.items() if n > 1]
    assert not duplicates, f"{kind}: duplicate case names {duplicates}"


@pytest.mark.parametrize("kind", REQUIRED_KINDS)
def test_required_cases_present(kind: str) -> None:
    names = {case.name for case in vectors.load(kind)}
    missing = [name for name in REQUIRED_CASES[kind] if name not in names]
    assert not missing, f"{kind}.json is missing required cases: {missing}"


@pytest.mark.parametrize("kind", [k for k in REQUIRED_KINDS if k != "ids"])
def test_topics_match_kind_pattern(kind: str) -> None:
    for case in vectors.load(kind):
        match = topic_match(case)
        if "base" in match.groupdict():
            assert match["base"] == REF_BASE, f"{case_id(case)}: base topic"
        for char in "+#\x00":
            assert char not in case.topic, f"{case_id(case)}: {char!r} in a topic"


def test_payload_fill_sizes_exact() -> None:
    checked = 0
    for kind in REQUIRED_KINDS:
        for entry in vectors.raw(kind)["cases"]:
            fill = entry.get("payload_fill")
            if fill is None:
                continue
            payload = vectors.payload_of(entry)
            assert len(payload) == fill["total_bytes"], f"{kind}:{entry['name']}"
            head, _, tail = fill["template"].partition("%s")
            assert payload.startswith(head.encode()), f"{kind}:{entry['name']}"
            assert payload.endswith(tail.encode()), f"{kind}:{entry['name']}"
            assert set(payload[len(head.encode()) : len(payload) - len(tail.encode())]) <= {
                ord("x")
            }
            checked += 1
    assert checked >= 15


def test_loader_handles_payload_forms() -> None:
    assert vectors.fill_payload('{"a":"%s"}', 12) == b'{"a":"xxxx"}'
    assert vectors.fill_payload('{"a":"%s"}', 8) == b'{"a":""}'
    with pytest.raises(vectors.VectorError, match="exactly one"):
        vectors.fill_payload("no placeholder", 40)
    with pytest.raises(vectors.VectorError, match="total_bytes"):
        vectors.fill_payload('{"a":"%s"}', 3)
    with pytest.raises(vectors.VectorError, match="exactly one of"):
        vectors.payload_of({"name": "x", "payload": "a", "payload_hex": "61"})
    assert vectors.payload_of({"name": "x", "payload_hex": "6f6e00"}) == b"on\x00"
    with pytest.raises(vectors.VectorError, match="unknown kind"):
        vectors.load("nope")


def test_matches_semantics() -> None:
    assert vectors.matches({"a": 35}, {"a": 35.0})
    assert not vectors.matches({"a": 1}, {"a": True})
    assert not vectors.matches({"a": True}, {"a": 1})
    assert vectors.matches({"a": "$uint", "ts": "$uint?"}, {"a": 3})
    assert not vectors.matches({"a": "$uint"}, {"a": -3})
    assert not vectors.matches({"a": "$uint"}, {})
    assert not vectors.matches({"a": 1}, {"a": 1, "b": 2})
    assert vectors.matches({"m": "$string"}, {"m": "x"})
    assert not vectors.matches({"m": "$string"}, {"m": ""})
    assert not vectors.matches([1, 2], [1])
    assert vectors.matches(None, None)
    assert not vectors.matches(None, 0)


# ---------------------------------------------------------------- payload content


@pytest.mark.parametrize("case", all_cases(), ids=case_id)
def test_payload_content_consistent(case: vectors.Case) -> None:
    if case.kind == "ids":
        return
    if case.kind in ("status",) or (case.kind == "discovery" and case.payload == b""):
        return
    text_ok = True
    try:
        text = case.payload.decode("utf-8")
    except UnicodeDecodeError:
        text_ok = False
        text = ""
    if NON_FINITE_TOKEN.search(text):
        assert not case.valid, f"{case_id(case)}: NaN/Infinity payload must be rejected"
    if case.valid:
        assert text_ok, f"{case_id(case)}: accepted payload is not UTF-8"
        parsed = strict_json(case.payload)
        assert isinstance(parsed, dict), f"{case_id(case)}: accepted payload is not an object"


def test_non_finite_cases_named_for_receivers() -> None:
    for kind in FROM_DEVICE:
        for case in vectors.load(kind):
            if re.search(r"\b-?(NaN|Infinity)\b", case.payload.decode("utf-8", "replace")):
                assert case.error == "non_finite", f"{case_id(case)}: {case.error}"
    for kind in TO_DEVICE:
        for case in vectors.load(kind):
            if re.search(r"\b-?(NaN|Infinity)\b", case.payload.decode("utf-8", "replace")):
                assert case.error == "malformed", f"{case_id(case)}: {case.error}"


@pytest.mark.parametrize("kind", [k for k in FROM_DEVICE if k != "discovery"])
def test_size_limits_for_receivers(kind: str) -> None:
    limit = CAPABILITIES_LIMIT if kind == "capabilities" else MESSAGE_LIMIT
    over = [case for case in vectors.load(kind) if len(case.payload) > limit]
    assert over, f"{kind}: no oversized case (> {limit} bytes)"
    for case in over:
        assert case.error == "payload_too_large", case_id(case)
    for case in vectors.load(kind):
        if case.error == "payload_too_large":
            assert len(case.payload) == limit + 1 or len(case.payload) > limit, case_id(case)


@pytest.mark.parametrize("kind", TO_DEVICE)
def test_size_limits_for_device(kind: str) -> None:
    sizes = {len(case.payload): case for case in vectors.load(kind)}
    assert COMMAND_LIMIT in sizes, f"{kind}: no 1024-byte case"
    assert sizes[COMMAND_LIMIT].valid, f"{kind}: the 1024-byte case must be accepted"
    assert COMMAND_LIMIT + 1 in sizes, f"{kind}: no 1025-byte case"
    for case in vectors.load(kind):
        too_large = len(case.payload) > COMMAND_LIMIT
        assert too_large == (case.error == "payload_too_large"), case_id(case)


@pytest.mark.parametrize("kind", [k for k in FROM_DEVICE if k != "discovery"])
def test_receiver_error_names_known(kind: str) -> None:
    for case in vectors.load(kind):
        if not case.valid:
            assert case.error in RECEIVER_ERRORS, f"{case_id(case)}: {case.error}"


def test_every_receiver_error_used() -> None:
    used = {case.error for kind in FROM_DEVICE for case in vectors.load(kind)}
    missing = [code for code in RECEIVER_ERRORS if code not in used]
    assert not missing, f"receiver-side errors without a case: {missing}"


@pytest.mark.parametrize("kind", [k for k in FROM_DEVICE if k != "discovery"])
def test_decoded_device_id_from_topic(kind: str) -> None:
    for case in vectors.load(kind):
        if not case.valid:
            continue
        match = topic_match(case)
        assert case.decoded["device_id"] == match["device_id"], case_id(case)
        for key in ("sensor_id", "actuator_id"):
            if key in match.groupdict():
                assert case.decoded[key] == match[key], case_id(case)


def test_unknown_future_fields_and_versions() -> None:
    for kind in (
        "capabilities",
        "sensor",
        "batch",
        "actuator_state",
        "response",
        "metrics",
        "error",
        "actuator_set",
        "cmd",
    ):
        case = by_name(kind)["future_fields_ignored"]
        assert case.valid, case_id(case)
        decoded_text = json.dumps(case.decoded)
        payload = strict_json(case.payload)
        extra = [key for key in payload if key not in decoded_text]
        assert extra, f"{case_id(case)}: payload has no unknown top-level field"
    higher = by_name("capabilities")["higher_version"]
    assert strict_json(higher.payload)["v"] > 1
    assert higher.error == "unsupported_version"


def test_missing_ts_means_receiver_time() -> None:
    for kind in ("sensor", "batch", "actuator_state", "metrics", "error"):
        cases = [c for c in vectors.load(kind) if c.valid and "ts" not in strict_json(c.payload)]
        assert cases, f"{kind}: no case without ts"
        for case in cases:
            assert case.decoded["ts"] is None, case_id(case)


def test_quality_bounds() -> None:
    checked = 0
    for case in vectors.load("sensor"):
        try:
            quality = strict_json(case.payload).get("quality")
        except (ValueError, AttributeError):
            continue
        if isinstance(quality, int) and not isinstance(quality, bool) and not 0 <= quality <= 100:
            assert case.error == "out_of_range", case_id(case)
            checked += 1
    assert checked >= 2, "quality below 0 and above 100 must both be rejected"
    qualities = {strict_json(c.payload).get("quality") for c in vectors.load("sensor") if c.valid}
    assert {0, 100} <= qualities, "boundary qualities 0 and 100 must be accepted"


# ---------------------------------------------------------------- ids


def test_ids_follow_the_naming_rules() -> None:
    for case in vectors.load("ids"):
        assert case.id_kind is not None
        text = case.payload.decode("utf-8")
        assert case.valid == bool(ID_RULES[case.id_kind].fullmatch(text)), case_id(case)


def test_ids_boundary_classes() -> None:
    cases = vectors.load("ids")
    for kind in ID_RULES:
        mine = [c for c in cases if c.id_kind == kind]
        lengths_valid = {len(c.payload) for c in mine if c.valid}
        assert 32 in lengths_valid, f"{kind}: no valid 32-char id"
        assert any(len(c.payload) == 33 and not c.valid for c in mine), f"{kind}: 33 chars"
        for needle in (b"+", b"#", b"/", b"\x00"):
            assert any(needle in c.payload and not c.valid for c in mine), f"{kind}: {needle!r}"
        assert any(not c.payload.isascii() and not c.valid for c in mine), f"{kind}: non-ASCII"
        assert any(c.payload != c.payload.lower() and not c.valid for c in mine), kind


def test_topic_ids_match_rules() -> None:
    """Ids in from_device topics are rejected with invalid_id exactly when they break the rules."""
    for kind in ("status", "sensor", "actuator_state"):
        for case in vectors.load(kind):
            match = topic_match(case)
            bad_ids = not ID_RULES["device"].fullmatch(match["device_id"])
            for key, rule in (("sensor_id", "sensor"), ("actuator_id", "actuator")):
                if key in match.groupdict():
                    bad_ids = bad_ids or not ID_RULES[rule].fullmatch(match[key])
            if bad_ids:
                assert case.error == "invalid_id", case_id(case)
            else:
                assert case.error != "invalid_id", case_id(case)


# ---------------------------------------------------------------- reference device


def test_reference_device_covers_value_types() -> None:
    assert REF_BASE == "mcp_bridge"
    assert ID_RULES["device"].fullmatch(REF_ID)
    assert REF_CAPS["device_id"] == REF_ID
    assert REF_CAPS["v"] == 1
    assert {s["value_type"] for s in SENSORS.values()} == set(SENSOR_VALUE_TYPES)
    assert {a["value_type"] for a in ACTUATORS.values()} == set(ACTUATOR_VALUE_TYPES)
    assert any(len(sid) == 32 for sid in SENSORS), "no 32-char sensor id"
    every_id = [*SENSORS, *ACTUATORS]
    assert len(every_id) == len(set(every_id)), "sensor and actuator ids must be unique"
    for item_id in every_id:
        assert ID_RULES["sensor"].fullmatch(item_id), item_id
    led = ACTUATORS["led"]
    assert (led["type"], led["value_type"]) == ("led", "boolean")
    valve = ACTUATORS["valve"]
    assert (valve["min"], valve["max"], valve["step"]) == (0, 100, 5)
    assert valve["requires_confirmation"] is True
    temperature = SENSORS["temperature"]
    assert (temperature["min"], temperature["max"], temperature["unit"]) == (-40, 85, "°C")
    for actuator in ACTUATORS.values():
        assert set(actuator["actions"]) <= set(ACTIONS), actuator["id"]
        if actuator["value_type"] == "trigger":
            assert actuator["id"] not in REF["initial"]
            continue
        initial = REF["initial"][actuator["id"]]
        kind = {"boolean": bool, "number": int | float, "enum": str, "string": str}
        assert isinstance(initial, kind[actuator["value_type"]]), actuator["id"]
        if actuator["value_type"] == "enum":
            assert initial in actuator["options"]
    assert REF["command_max_bytes"] == COMMAND_LIMIT


def test_reference_capabilities_vector_is_the_reference_device() -> None:
    case = by_name("capabilities")["reference_device"]
    assert case.topic == f"{REF_BASE}/{REF_ID}/capabilities"
    assert strict_json(case.payload) == REF_CAPS
    assert vectors.matches(case.decoded, REF_CAPS)


# ---------------------------------------------------------------- to_device commands


@pytest.mark.parametrize("case", [c for k in TO_DEVICE for c in vectors.load(k)], ids=case_id)
def test_device_response_shape(case: vectors.Case) -> None:
    assert case.has_device_response
    match = topic_match(case)
    assert match["device_id"] == REF_ID, f"{case_id(case)}: not the reference device"
    try:
        command = strict_json(case.payload)
    except ValueError:
        command = None
    has_id = isinstance(command, dict) and "id" in command
    unreadable = not isinstance(command, dict) or (has_id and not _readable_id(command["id"]))
    response = case.device_response
    if case.error == "payload_too_large":
        assert response is not None, case_id(case)
        first_id = re.match(rb'\{\s*"id"\s*:\s*"([^"]*)"', case.payload)
        assert response["id"] == (first_id[1].decode() if first_id else None), case_id(case)
    elif unreadable:
        assert case.error == "malformed", case_id(case)
        assert response == {
            "id": None,
            "ok": False,
            "error": {"code": "malformed", "message": "$string"},
        }
    elif not has_id:
        assert response is None, f"{case_id(case)}: a command without id gets no response"
    else:
        assert response is not None, f"{case_id(case)}: a command with id gets a response"
        assert command is not None
        assert response["id"] == command["id"], case_id(case)
    if response is None:
        return
    assert set(response) in ({"id", "ok", "result"}, {"id", "ok", "error"}), case_id(case)
    assert response["ok"] is case.valid, case_id(case)
    if case.valid:
        assert isinstance(response["result"], dict), case_id(case)
    else:
        assert response["error"] == {"code": case.error, "message": "$string"}, case_id(case)
    assert case.error is None or case.error in RESPONSE_ERROR_CODES, case_id(case)
    _check_placeholders(response, case_id(case))


def _readable_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value.encode()) <= MAX_ID_BYTES


def _check_placeholders(value: Any, where: str) -> None:
    if isinstance(value, str) and value.startswith("$"):
        assert value.removesuffix("?") in vectors.PLACEHOLDERS, f"{where}: {value}"
    elif isinstance(value, dict):
        for item in value.values():
            _check_placeholders(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_placeholders(item, where)


def test_every_command_has_a_successful_case() -> None:
    done = {
        c.decoded["cmd"]
        for c in vectors.load("cmd")
        if c.valid and c.device_response is not None and c.device_response["ok"]
    }
    missing = [cmd for cmd in REQUIRED_COMMANDS if cmd not in done]
    assert not missing, f"commands without a successful cmd case: {missing}"


def test_command_result_shapes() -> None:
    cases = by_name("cmd")
    assert cases["ping"].device_response == {
        "id": "r-9a01",
        "ok": True,
        "result": {"uptime_s": "$uint"},
    }
    metrics_result = cases["get_metrics"].device_response
    assert metrics_result is not None
    assert set(metrics_result["result"]) == set(METRICS_KEYS)
    streaming = cases["set_streaming_enable"]
    assert streaming.decoded["args"] == {
        "sensor": "temperature",
        "enable": True,
        "interval_ms": 200,
    }
    assert by_name("cmd")["set_discovery_integration"].decoded["args"] == {"mode": "integration"}
    assert set(cases["ota"].decoded["args"]) == {"url", "sha256", "version"}
    for case in vectors.load("actuator_set"):
        if case.valid and case.device_response is not None:
            assert set(case.device_response["result"]) == {"value"}, case_id(case)


def test_every_action_has_a_successful_case() -> None:
    done = {c.decoded["action"] for c in vectors.load("actuator_set") if c.valid}
    missing = [action for action in ACTIONS if action not in done]
    assert not missing, f"actions without a successful case: {missing}"


def test_every_value_type_is_exercised() -> None:
    sensor_types = {
        SENSORS[c.decoded["sensor_id"]]["value_type"] for c in vectors.load("sensor") if c.valid
    }
    assert set(SENSOR_VALUE_TYPES) <= sensor_types, sensor_types
    actuator_types = {
        ACTUATORS[c.decoded["actuator_id"]]["value_type"]
        for c in vectors.load("actuator_set")
        if c.valid
    }
    assert set(ACTUATOR_VALUE_TYPES) <= actuator_types, actuator_types
    state_types = {
        ACTUATORS[c.decoded["actuator_id"]]["value_type"]
        for c in vectors.load("actuator_state")
        if c.valid
    }
    assert set(ACTUATOR_VALUE_TYPES) - {"trigger"} <= state_types, state_types


def test_every_response_error_code_is_covered() -> None:
    produced = {c.error for k in TO_DEVICE for c in vectors.load(k) if c.error}
    parsed = {
        c.decoded["error"]["code"]
        for c in vectors.load("response")
        if c.valid and c.decoded["error"]
    }
    for code in RESPONSE_ERROR_CODES:
        if code in PARSE_ONLY_CODES:
            assert code in parsed, f"{code}: no response.json parse case"
        else:
            assert code in produced, f"{code}: no command case where the device produces it"
            assert code in parsed, f"{code}: no response.json parse case"


def test_wrong_types_rejected() -> None:
    for kind, code in (
        ("sensor", "wrong_type"),
        ("actuator_state", "wrong_type"),
        ("actuator_set", "invalid_value"),
    ):
        wrong = [c for c in vectors.load(kind) if c.name.startswith("wrong_type")]
        assert len(wrong) >= 3, f"{kind}: too few wrong-type cases"
        for case in wrong:
            assert case.error == code, case_id(case)


def test_to_device_decoded_shapes() -> None:
    for case in vectors.load("actuator_set"):
        if case.valid:
            assert set(case.decoded) == {"device_id", "actuator_id", "id", "action", "value"}
            assert case.decoded["actuator_id"] in ACTUATORS, case_id(case)
            assert case.decoded["action"] in ACTUATORS[case.decoded["actuator_id"]]["actions"]
    for case in vectors.load("cmd"):
        if case.valid:
            assert set(case.decoded) == {"device_id", "id", "cmd", "args"}
            assert case.decoded["cmd"] in REQUIRED_COMMANDS, case_id(case)


def test_numbers_in_vectors_are_finite() -> None:
    def walk(value: Any, where: str) -> None:
        if isinstance(value, float):
            assert math.isfinite(value), where
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, where)

    for kind in REQUIRED_KINDS:
        walk(vectors.raw(kind), kind)


# ---------------------------------------------------------------- discovery


def test_discovery_payload_is_one_ha_2025_4_accepts() -> None:
    case = by_name("discovery")["reference_device_mode_mqtt"]
    assert case.topic == f"homeassistant/device/{REF_ID}/config"
    payload = strict_json(case.payload)
    assert case.decoded == {"device_id": REF_ID, "config": payload}
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", REF_ID)
    assert payload["dev"]["ids"] == [REF_ID]
    assert payload["dev"]["name"] == REF_CAPS["name"]
    assert payload["o"]["name"] == "esp_mcp_bridge"
    assert payload["availability_topic"] == f"{REF_BASE}/{REF_ID}/status"
    assert "cdevs" not in payload
    cmps = payload["cmps"]
    assert set(cmps) == {*SENSORS, *ACTUATORS}
    qos = REF["config"]["qos"]
    unique_ids = set()
    for comp_id, comp in cmps.items():
        where = f"cmps.{comp_id}"
        assert comp["p"] in HA_2025_4_PLATFORMS, where
        assert comp["unique_id"] == f"{REF_ID}_{comp_id}", where
        unique_ids.add(comp["unique_id"])
        if comp_id in SENSORS:
            sensor = SENSORS[comp_id]
            assert comp["qos"] == qos["sensor"], where
            assert comp["state_topic"] == f"{REF_BASE}/{REF_ID}/sensors/{comp_id}", where
            expected_p = "binary_sensor" if sensor["value_type"] == "boolean" else "sensor"
            assert comp["p"] == expected_p, where
            if sensor["value_type"] == "boolean":
                assert "value_json.value" in comp["value_template"], where
                assert (comp["payload_on"], comp["payload_off"]) == ("ON", "OFF"), where
            else:
                assert comp["value_template"] == "{{ value_json.value }}", where
            if sensor["value_type"] == "number":
                assert comp["state_class"] == "measurement", where
            if sensor["value_type"] == "enum":
                assert comp["device_class"] == "enum", where
                assert comp["options"] == sensor["options"], where
            continue
        actuator = ACTUATORS[comp_id]
        assert comp["qos"] == qos["actuator"], where
        assert comp["command_topic"] == f"{REF_BASE}/{REF_ID}/actuators/{comp_id}/set", where
        platform = platform_of("actuator", actuator)
        assert comp["p"] == platform, where
        if platform == "button":
            assert json.loads(comp["payload_press"]) == {"action": "trigger"}
            continue
        assert comp["state_topic"] == f"{REF_BASE}/{REF_ID}/actuators/{comp_id}/state", where
        if platform in ("switch", "light"):
            assert json.loads(comp["payload_on"]) == {"action": "write", "value": True}
            assert json.loads(comp["payload_off"]) == {"action": "write", "value": False}
        if platform == "switch":
            assert (comp["state_on"], comp["state_off"]) == ("ON", "OFF"), where
        elif platform == "light":
            # The default schema has no state_on/state_off: the template renders the
            # payloads themselves (checked against HA in the integration tests).
            assert "schema" not in comp, where
            template = comp["state_value_template"]
            assert f"'{comp['payload_on']}' if value_json.value else" in template, where
            assert template.endswith(f"'{comp['payload_off']}' }}}}"), where
        else:
            assert comp["value_template"] == "{{ value_json.value }}", where
            assert comp["command_template"].startswith('{"action":"write","value":'), where
        if platform == "number":
            for key in ("min", "max", "step"):
                assert comp[key] == actuator[key], where
    assert len(unique_ids) == len(cmps)


def platform_of(kind: str, capability: dict[str, Any]) -> str:
    """The platform rule of docs/protocol.md §13.1, written from the page."""
    value_type = capability["value_type"]
    if kind == "sensor":
        return "binary_sensor" if value_type == "boolean" else "sensor"
    if value_type == "trigger":
        return "button"
    if "write" not in capability.get("actions", ["read", "write"]):
        return "binary_sensor" if value_type == "boolean" else "sensor"
    if value_type == "boolean":
        return "light" if capability.get("type") in LIGHT_TYPES else "switch"
    return {"number": "number", "enum": "select", "string": "text"}[value_type]


def test_platforms_table_is_complete_and_follows_the_rule() -> None:
    rows = vectors.platforms()
    names = [row.name for row in rows]
    assert len(names) == len(set(names)), "platforms.json: duplicate names"
    seen: set[str] = set()
    covered = set()
    for row in rows:
        where = f"platforms:{row.name}"
        assert re.fullmatch(r"[a-z0-9_]+", row.name), where
        # A valid capabilities entry, its id unique across the table (one device).
        _check_item(row.capability, row.kind, seen)
        assert row.platform == platform_of(row.kind, row.capability), where
        assert row.has_state_class == (row.platform == "sensor"), where
        covered.add((row.kind, row.capability["value_type"], row.platform))
    for value_type in SENSOR_VALUE_TYPES:
        assert any(k == "sensor" and v == value_type for k, v, _ in covered), value_type
    for value_type in ACTUATOR_VALUE_TYPES:
        assert any(k == "actuator" and v == value_type for k, v, _ in covered), value_type
    # Read-only actuators of every value type with a state, and both light types.
    for value_type, platform in (
        ("boolean", "binary_sensor"),
        ("number", "sensor"),
        ("enum", "sensor"),
        ("string", "sensor"),
        ("boolean", "light"),
        ("boolean", "switch"),
    ):
        assert ("actuator", value_type, platform) in covered, (value_type, platform)
    lights = {r.capability.get("type") for r in rows if r.platform == "light"}
    assert lights == set(LIGHT_TYPES)
    energy = next(r for r in rows if r.capability.get("type") == "energy")
    assert energy.state_class in ("total", "total_increasing"), "energy needs a total"
    assert len(rows) <= 32, "one device holds the table (the C test registers all rows)"


def test_reference_device_follows_the_platform_rule() -> None:
    cmps = strict_json(by_name("discovery")["reference_device_mode_mqtt"].payload)["cmps"]
    for sensor in SENSORS.values():
        assert cmps[sensor["id"]]["p"] == platform_of("sensor", sensor), sensor["id"]
    for actuator in ACTUATORS.values():
        assert cmps[actuator["id"]]["p"] == platform_of("actuator", actuator), actuator["id"]
    assert cmps["led"]["p"] == "light"


# ---------------------------------------------------------------- life cycle

REQUIRED_LIFECYCLE = (
    "fresh_device_holds_discovery_back",
    "holdoff_counted_from_first_connection",
    "takeover_during_holdoff_never_publishes_discovery",
    "takeover_after_holdoff_clears_the_discovery",
    "set_discovery_mqtt_during_holdoff_publishes_at_once",
    "ha_birth_during_holdoff_keeps_discovery_back",
    "reconnect_during_holdoff_keeps_the_deadline",
    "offline_at_expiry_publishes_on_next_connect",
    "stored_mode_mqtt_does_not_wait",
    "stored_mode_integration_never_publishes",
    "holdoff_off_publishes_at_once",
    "repeated_command_answered_with_the_first_answer",
    "repeated_toggle_not_run_again",
    "same_id_other_command_is_new",
    "deadline_passed_expired",
    "deadline_in_time_runs",
    "deadline_without_clock_runs",
    "deadline_not_epoch_ms_malformed",
)
DISCOVERY_TOPIC = f"homeassistant/device/{REF_ID}/config"
MODES = (None, "mqtt", "integration")
STEP_KEYS = {"at_ms", "do", "topic", "payload", "published", "not_published"}


def _check_expectation(where: str, want: dict[str, Any]) -> None:
    assert set(want) <= {"topic", "retain", "payload", "json", "json_members"}, where
    assert isinstance(want["topic"], str), where
    assert sum(k in want for k in ("payload", "json", "json_members")) <= 1, where
    topic = want["topic"]
    discovery = strict_json(by_name("discovery")["reference_device_mode_mqtt"].payload)
    if topic == DISCOVERY_TOPIC:
        assert want.get("retain") is True, where
        if "json_members" in want:  # what the discovery vector says, member by member
            for key, value in want["json_members"].items():
                assert discovery[key] == value, f"{where}: discovery member {key}"
        else:
            assert want.get("payload") == "", f"{where}: the discovery or its removal"
    elif topic.endswith("/capabilities"):
        assert want.get("retain") is True, where
        for key, value in want["json_members"].items():
            if key == "discovery":
                assert value in ("mqtt", "integration"), where
            else:
                assert REF_CAPS[key] == value, f"{where}: capabilities member {key}"
    elif topic.endswith("/response"):
        assert want.get("retain") is False, where
        answer = want["json"]
        if answer["ok"] is True:
            assert set(answer) == {"id", "ok", "result"}, where
        else:
            assert set(answer) == {"id", "ok", "error"}, where
            assert answer["error"]["code"] in RESPONSE_ERROR_CODES, where
    elif "/actuators/" in topic:
        assert topic.endswith("/state"), where
        assert topic.split("/")[3] in ACTUATORS, where
        assert want.get("retain") is True, where
        assert set(want["json_members"]) == {"value"}, where
    elif topic.endswith("/status"):
        assert want.get("payload") in ("online", "offline"), where
        assert want.get("retain") is True, where


def test_lifecycle_cases_are_well_formed() -> None:
    cases = vectors.lifecycle()
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "lifecycle.json: duplicate names"
    missing = [n for n in REQUIRED_LIFECYCLE if n not in names]
    assert not missing, f"lifecycle.json misses {missing}"
    for case in cases:
        where = f"lifecycle:{case.name}"
        assert re.fullmatch(r"[a-z0-9_]+", case.name), where
        assert case.about, where
        assert case.stored_mode in MODES, where
        assert case.stored_after in MODES, where
        assert 0 <= case.holdoff_ms <= 600000, where
        assert case.epoch_ms is None or isinstance(case.epoch_ms, int), where
        last = -1
        connected = False
        for index, step in enumerate(case.steps):
            at = f"{where} step {index}"
            assert isinstance(step["at_ms"], int), at
            assert step["at_ms"] >= last, at
            last = step["at_ms"]
            assert set(step) <= STEP_KEYS, at
            if step["do"] == "message":
                topic = step["topic"]
                setter = re.fullmatch(rf"mcp_bridge/{REF_ID}/actuators/([a-z0-9_]+)/set", topic)
                assert setter is None or setter.group(1) in ACTUATORS, at
                assert setter or topic in (f"mcp_bridge/{REF_ID}/cmd", "homeassistant/status"), at
                assert isinstance(step["payload"], str), at
                if not topic.startswith("homeassistant/"):
                    strict_json(step["payload"].encode())
            else:
                assert "topic" not in step, at
                assert "payload" not in step, at
            if step["do"] in ("connect", "disconnect"):
                assert connected == (step["do"] == "disconnect"), f"{at}: connect, disconnect"
                connected = step["do"] == "connect"
            published = step.get("published", [])
            topics = [w["topic"] for w in published]
            assert len(topics) == len(set(topics)), f"{at}: one expectation per topic"
            assert not set(topics) & set(step.get("not_published", [])), at
            for want in published:
                _check_expectation(at, want)
        assert case.steps[0]["do"] == "connect", where


def test_lifecycle_produces_expired() -> None:
    """The device side of `expired`: a command after its deadline (clock synchronised)."""
    codes = {
        want["json"]["error"]["code"]
        for case in vectors.lifecycle()
        if case.epoch_ms is not None
        for step in case.steps
        for want in step.get("published", [])
        if want["topic"].endswith("/response") and want["json"]["ok"] is False
    }
    assert "expired" in codes


def test_lifecycle_first_connection_follows_the_holdoff_rule() -> None:
    """No stored mode and a hold-off: no discovery on the first connection; otherwise
    the discovery (mode mqtt) or its removal (mode integration) goes out with it."""
    for case in vectors.lifecycle():
        first = case.steps[0]
        if not first.get("published") and not first.get("not_published"):
            continue  # a case about something else (commands)
        published = {w["topic"]: w for w in first.get("published", [])}
        if case.stored_mode is None and case.holdoff_ms > 0:
            assert DISCOVERY_TOPIC in first["not_published"], case.name
        elif case.stored_mode == "integration":
            assert published[DISCOVERY_TOPIC].get("payload") == "", case.name
        else:
            assert "json_members" in published[DISCOVERY_TOPIC], case.name


def test_lifecycle_clears_only_a_discovery_it_may_have_published() -> None:
    """No stored mode: the empty discovery payload only after the device published one
    (HA's MQTT integration warns about a removal of a device it never saw); with a
    stored mode an earlier boot may have published it, so it is cleared."""
    cleared_somewhere = set()
    for case in vectors.lifecycle():
        published_one = case.stored_mode is not None
        for index, step in enumerate(case.steps):
            for want in step.get("published", []):
                if want["topic"] != DISCOVERY_TOPIC:
                    continue
                if want.get("payload") == "":
                    assert published_one, f"{case.name} step {index}: clears what it never sent"
                    cleared_somewhere.add(case.stored_mode)
                else:
                    published_one = True
    assert cleared_somewhere >= {None, "integration"}


def test_discovery_removal_is_empty_retained_payload() -> None:
    case = by_name("discovery")["removal_empty_retained"]
    assert case.payload == b""
    assert case.decoded == {"device_id": REF_ID, "config": None}


# ---------------------------------------------------------------- reference receiver
# A compact receiver written from tests/vectors/README.md. It proves that the
# from_device expectations follow the documented rules (one rule, one error name);
# the integration and the add-on have their own parsers and run the same cases.


class Rejected(Exception):
    """A receiver rejects a message with a vectors error name."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


METRICS_KEYS = (
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
    "ts",
)
DEVICE_KEYS = (
    "v",
    "device_id",
    "name",
    "manufacturer",
    "model",
    "fw",
    "hw",
    "mac",
    "discovery",
    "sensors",
    "actuators",
)
SENSOR_KEYS = (
    "id",
    "type",
    "name",
    "unit",
    "value_type",
    "min",
    "max",
    "accuracy",
    "interval_ms",
    "description",
    "calibration_required",
    "calibration_interval_s",
    "options",
)
ACTUATOR_KEYS = (
    "id",
    "type",
    "name",
    "value_type",
    "min",
    "max",
    "step",
    "unit",
    "options",
    "actions",
    "response_time_ms",
    "requires_confirmation",
    "description",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Rejected("malformed") from err

    def non_finite(token: str) -> Any:
        raise Rejected("non_finite")

    def parse_float(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise Rejected("non_finite")
        return value

    def parse_int(token: str) -> int:
        # An integer beyond the range of a double overflows like 1e400.
        if len(token.lstrip("-")) > 309 or abs(int(token)) > sys.float_info.max:
            raise Rejected("non_finite")
        return int(token)

    try:
        value = json.loads(
            text, parse_constant=non_finite, parse_float=parse_float, parse_int=parse_int
        )
    except json.JSONDecodeError as err:
        raise Rejected("malformed") from err
    if not isinstance(value, dict):
        raise Rejected("malformed")
    if _depth(value) > MAX_DEPTH:
        raise Rejected("malformed")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _integer(value: Any, low: int = -MAX_SAFE_INTEGER, high: int = MAX_SAFE_INTEGER) -> int:
    """An integer member: wrong_type when it is none, out_of_range outside low..high."""
    if not _is_int(value):
        raise Rejected("wrong_type")
    if not low <= value <= high:
        raise Rejected("out_of_range")
    return int(value)


def _required(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise Rejected("malformed")
    return obj[key]


def _ts(obj: dict[str, Any], default: Any = None) -> Any:
    if "ts" not in obj:
        return default
    return _integer(obj["ts"], 0, MAX_TS_MS)


def _quality(obj: dict[str, Any]) -> Any:
    if "quality" not in obj:
        return None
    if not _is_int(obj["quality"]):
        raise Rejected("wrong_type")
    if not 0 <= obj["quality"] <= 100:
        raise Rejected("out_of_range")
    return obj["quality"]


def _typed_value(item: dict[str, Any], value: Any) -> Any:
    value_type = item["value_type"]
    ok = {
        "number": _is_num(value),
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "enum": isinstance(value, str),
    }[value_type]
    if not ok:
        raise Rejected("wrong_type")
    if value_type == "enum" and value not in item["options"]:
        raise Rejected("invalid_value")
    return value


def _reading(obj: dict[str, Any], sensor_id: str) -> Any:
    if sensor_id not in SENSORS:
        raise Rejected("unknown_sensor")
    return _typed_value(SENSORS[sensor_id], _required(obj, "value"))


def _check_item(item: Any, kind: str, seen: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Rejected("wrong_type")
    item_id = _required(item, "id")
    if not isinstance(item_id, str):
        raise Rejected("wrong_type")
    if not ID_RULES[kind].fullmatch(item_id) or item_id in seen:
        raise Rejected("invalid_id")
    seen.add(item_id)
    value_type = _required(item, "value_type")
    if not isinstance(value_type, str):
        raise Rejected("wrong_type")
    allowed = SENSOR_VALUE_TYPES if kind == "sensor" else ACTUATOR_VALUE_TYPES
    if value_type not in allowed:
        raise Rejected("invalid_value")
    for key in ("min", "max", "step", "accuracy"):
        if key in item and not _is_num(item[key]):
            raise Rejected("wrong_type")
    if "min" in item and "max" in item and item["min"] > item["max"]:
        raise Rejected("invalid_value")
    if value_type == "enum":
        options = item.get("options")
        if not isinstance(options, list) or not options:
            raise Rejected("invalid_value")
        if not all(isinstance(option, str) for option in options):
            raise Rejected("wrong_type")
    if "actions" in item:
        if not isinstance(item["actions"], list):
            raise Rejected("wrong_type")
        if not set(item["actions"]) <= set(ACTIONS):
            raise Rejected("invalid_value")
    keys = SENSOR_KEYS if kind == "sensor" else ACTUATOR_KEYS
    return {key: item[key] for key in keys if key in item}


def _capabilities(obj: dict[str, Any], device_id: str) -> dict[str, Any]:
    version = _required(obj, "v")
    if not _is_int(version):
        raise Rejected("wrong_type")
    if version > 1:
        raise Rejected("unsupported_version")
    payload_id = _required(obj, "device_id")
    if not isinstance(payload_id, str):
        raise Rejected("wrong_type")
    if payload_id != device_id:
        raise Rejected("invalid_id")
    if "discovery" in obj and obj["discovery"] not in ("mqtt", "integration"):
        raise Rejected("invalid_value")
    decoded = {key: obj[key] for key in DEVICE_KEYS if key in obj}
    seen: set[str] = set()
    for group, kind in (("sensors", "sensor"), ("actuators", "actuator")):
        items = obj.get(group, [])
        if not isinstance(items, list):
            raise Rejected("wrong_type")
        decoded[group] = [_check_item(item, kind, seen) for item in items]
    return decoded


def _response(obj: dict[str, Any]) -> dict[str, Any]:
    request_id = obj.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise Rejected("wrong_type")
    ok = _required(obj, "ok")
    if not isinstance(ok, bool):
        raise Rejected("wrong_type")
    result = error = None
    if ok:
        result = obj.get("result", {})
        if not isinstance(result, dict):
            raise Rejected("wrong_type")
    else:
        raw_error = _required(obj, "error")
        if not isinstance(raw_error, dict):
            raise Rejected("wrong_type")
        code = _required(raw_error, "code")
        message = raw_error.get("message", "")
        if not isinstance(code, str) or not isinstance(message, str):
            raise Rejected("wrong_type")
        error = {"code": code, "message": message}
    return {"id": request_id, "ok": ok, "result": result, "error": error}


def _metrics(obj: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key in METRICS_KEYS:
        value = obj.get(key)
        if value is not None:
            low = 0 if key != "rssi" else -MAX_SAFE_INTEGER
            high = MAX_TS_MS if key == "ts" else MAX_SAFE_INTEGER
            value = _integer(value, low, high)
        decoded[key] = value
    return decoded


def _error(obj: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, check in (("type", str), ("code", int), ("message", str), ("severity", int)):
        value = _required(obj, key)
        if not isinstance(value, check) or isinstance(value, bool):
            raise Rejected("wrong_type")
        decoded[key] = value
    _integer(decoded["code"])
    _integer(decoded["severity"], 0, 255)
    decoded["ts"] = _ts(obj)
    return decoded


def receive(kind: str, topic: str, payload: bytes) -> dict[str, Any]:
    """Decode one device message the way the vectors README describes."""
    limit = CAPABILITIES_LIMIT if kind == "capabilities" else MESSAGE_LIMIT
    if len(payload) > limit:
        raise Rejected("payload_too_large")
    regex = vectors.topic_regex(kind)
    assert regex is not None
    match = regex.match(topic)
    assert match is not None
    names = match.groupdict()
    if not ID_RULES["device"].fullmatch(names["device_id"]):
        raise Rejected("invalid_id")
    for key, rule in (("sensor_id", "sensor"), ("actuator_id", "actuator")):
        if key in names and not ID_RULES[rule].fullmatch(names[key]):
            raise Rejected("invalid_id")
    device = {"device_id": names["device_id"]}
    if kind == "status":
        if payload not in (b"online", b"offline"):
            raise Rejected("malformed")
        return {**device, "online": payload == b"online"}
    obj = _parse(payload)
    if kind == "capabilities":
        return _capabilities(obj, names["device_id"])
    if kind == "sensor":
        value = _reading(obj, names["sensor_id"])
        return {
            **device,
            "sensor_id": names["sensor_id"],
            "value": value,
            "ts": _ts(obj),
            "quality": _quality(obj),
        }
    if kind == "batch":
        batch_ts = _ts(obj)
        readings = _required(obj, "readings")
        if not isinstance(readings, list):
            raise Rejected("wrong_type")
        decoded = []
        for reading in readings:
            if not isinstance(reading, dict):
                raise Rejected("wrong_type")
            sensor_id = _required(reading, "id")
            if not isinstance(sensor_id, str):
                raise Rejected("wrong_type")
            if not ID_RULES["sensor"].fullmatch(sensor_id):
                raise Rejected("invalid_id")
            value = _reading(reading, sensor_id)
            decoded.append(
                {
                    "sensor_id": sensor_id,
                    "value": value,
                    "ts": _ts(reading, batch_ts),
                    "quality": _quality(reading),
                }
            )
        return {**device, "ts": batch_ts, "readings": decoded}
    if kind == "actuator_state":
        actuator_id = names["actuator_id"]
        if actuator_id not in ACTUATORS:
            raise Rejected("unknown_actuator")
        if ACTUATORS[actuator_id]["value_type"] == "trigger":
            raise Rejected("unsupported_action")
        value = _typed_value(ACTUATORS[actuator_id], _required(obj, "value"))
        return {**device, "actuator_id": actuator_id, "value": value, "ts": _ts(obj)}
    if kind == "response":
        return {**device, **_response(obj)}
    if kind == "metrics":
        return {**device, **_metrics(obj)}
    if kind == "error":
        return {**device, **_error(obj)}
    raise AssertionError(f"no receiver for {kind}")


@pytest.mark.parametrize(
    "case",
    [c for k in FROM_DEVICE if k != "discovery" for c in vectors.load(k)],
    ids=case_id,
)
def test_reference_receiver_agrees(case: vectors.Case) -> None:
    accepted, outcome = receive_outcome(case)
    if not case.valid:
        assert not accepted, f"{case_id(case)}: accepted, expected {case.error}"
        assert outcome == case.error, f"{case_id(case)}: {outcome} != {case.error}"
        return
    assert accepted, f"{case_id(case)}: rejected with {outcome}"
    assert vectors.matches(case.decoded, outcome), f"{case_id(case)}: {outcome}"


def receive_outcome(case: vectors.Case) -> tuple[bool, Any]:
    """Return (True, decoded) or (False, error name) for one case."""
    try:
        return True, receive(case.kind, case.topic, case.payload)
    except Rejected as err:
        return False, err.code


def test_protocol_document_cites_existing_cases() -> None:
    doc = (vectors.VECTORS_DIR.parent.parent / "docs" / "protocol.md").read_text("utf-8")
    refs = set(re.findall(r"`([a-z_]+):([a-z0-9_]+)`", doc)) - {("file", "case")}
    assert len(refs) >= 40, "docs/protocol.md should cite its examples from the vectors"
    names = {(kind, case.name) for kind in REQUIRED_KINDS for case in vectors.load(kind)}
    names |= {("platforms", row.name) for row in vectors.platforms()}
    names |= {("lifecycle", case.name) for case in vectors.lifecycle()}
    missing = sorted(f"{kind}:{name}" for kind, name in refs - names)
    assert not missing, f"docs/protocol.md cites cases that do not exist: {missing}"
