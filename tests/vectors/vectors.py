"""Loader for the shared protocol test vectors (standard library only).

Usage::

    import vectors

    for case in vectors.load("sensor"):
        result = my_parser(case.topic, case.payload)
        if case.valid:
            assert vectors.matches(case.decoded, result)
        else:
            assert error_code == case.error

The JSON files next to this module are the source of truth; see README.md in
this folder for the format and for what ``decoded`` holds for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import json
import math
from pathlib import Path
import re
from typing import Any, Final

VECTORS_DIR: Final[Path] = Path(__file__).resolve().parent

#: Every message kind, in the order of the contract's topic table (plus ``ids``).
KINDS: Final[tuple[str, ...]] = (
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

#: Placeholders allowed inside ``device_response`` (see README.md).
PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {"$any", "$string", "$uint", "$int", "$number", "$bool"}
)


class VectorError(ValueError):
    """A vector file does not follow the documented format."""


@dataclass(frozen=True, slots=True)
class Case:
    """One test case of one vector file."""

    kind: str
    direction: str | None
    name: str
    topic: str
    payload: bytes
    expect: dict[str, Any]
    device_response: dict[str, Any] | None = None
    has_device_response: bool = False
    id_kind: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the message (or id) must be accepted."""
        return bool(self.expect["valid"])

    @property
    def decoded(self) -> Any:
        """The normalised decoded object of an accepted message (``None`` otherwise)."""
        return self.expect.get("decoded")

    @property
    def error(self) -> str | None:
        """The error code of a rejected message (``None`` when accepted)."""
        error = self.expect.get("error")
        return error if isinstance(error, str) else None

    @property
    def text(self) -> str:
        """The payload as text; raises ``UnicodeDecodeError`` for non-UTF-8 payloads."""
        return self.payload.decode("utf-8")


def kinds(direction: str | None = None) -> tuple[str, ...]:
    """Return every message kind that has a vector file, or only those of one
    ``direction`` (``from_device`` or ``to_device``)."""
    if direction is None:
        return KINDS
    return tuple(kind for kind in KINDS if raw(kind).get("direction") == direction)


def bridge_kinds(direction: str | None = None) -> tuple[str, ...]:
    """The kinds of :func:`kinds` sent on the bridge's own topics (``{base}/...``):
    not ``discovery`` (under the discovery prefix) nor ``ids`` (no topic)."""
    return tuple(
        kind for kind in kinds(direction) if (topic_template(kind) or "").startswith("{base}/")
    )


@functools.cache
def _read(name: str) -> Any:
    path = VECTORS_DIR / f"{name}.json"
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as err:
        raise VectorError(f"no vector file {path.name}") from err


def raw(kind: str) -> dict[str, Any]:
    """Return the parsed vector file of ``kind`` (shared, do not modify)."""
    if kind not in KINDS:
        raise VectorError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    doc = _read(kind)
    if not isinstance(doc, dict):
        raise VectorError(f"{kind}.json: top level must be an object")
    return doc


def fill_payload(template: str, total_bytes: int) -> bytes:
    """Expand a ``payload_fill``: ``%s`` becomes ``x`` repeated to reach ``total_bytes``."""
    if template.count("%s") != 1:
        raise VectorError(f"payload_fill template needs exactly one %s: {template[:40]!r}")
    fixed = len(template.encode("utf-8")) - 2
    if total_bytes < fixed:
        raise VectorError(f"payload_fill total_bytes {total_bytes} < template size {fixed}")
    return template.replace("%s", "x" * (total_bytes - fixed)).encode("utf-8")


def payload_of(entry: dict[str, Any]) -> bytes:
    """Return the payload bytes of one raw case (``payload``/``payload_hex``/``payload_fill``)."""
    given = [key for key in ("payload", "payload_hex", "payload_fill") if key in entry]
    if len(given) != 1:
        raise VectorError(
            f"case {entry.get('name')!r}: exactly one of payload, payload_hex, payload_fill"
            f" is required, got {given}"
        )
    key = given[0]
    value = entry[key]
    if key == "payload":
        if not isinstance(value, str):
            raise VectorError(f"case {entry.get('name')!r}: payload must be a string")
        return value.encode("utf-8")
    if key == "payload_hex":
        if not isinstance(value, str):
            raise VectorError(f"case {entry.get('name')!r}: payload_hex must be a string")
        return bytes.fromhex(value)
    if not isinstance(value, dict) or not isinstance(value.get("template"), str):
        raise VectorError(f"case {entry.get('name')!r}: payload_fill needs a template")
    total = value.get("total_bytes")
    if not isinstance(total, int) or isinstance(total, bool):
        raise VectorError(f"case {entry.get('name')!r}: payload_fill needs total_bytes")
    return fill_payload(value["template"], total)


def load(kind: str) -> list[Case]:
    """Return the cases of one message kind."""
    doc = raw(kind)
    cases = doc.get("cases")
    if not isinstance(cases, list):
        raise VectorError(f"{kind}.json: 'cases' must be a list")
    direction = doc.get("direction")
    result: list[Case] = []
    for entry in cases:
        if not isinstance(entry, dict):
            raise VectorError(f"{kind}.json: every case must be an object")
        expect = entry.get("expect")
        if not isinstance(expect, dict):
            raise VectorError(f"{kind}.json: case {entry.get('name')!r} needs 'expect'")
        response = entry.get("device_response")
        result.append(
            Case(
                kind=kind,
                direction=direction if isinstance(direction, str) else None,
                name=str(entry.get("name", "")),
                topic=str(entry.get("topic") or ""),
                payload=payload_of(entry),
                expect=expect,
                device_response=response if isinstance(response, dict) else None,
                has_device_response="device_response" in entry,
                id_kind=entry.get("id_kind") if isinstance(entry.get("id_kind"), str) else None,
            )
        )
    return result


def topic_template(kind: str) -> str | None:
    """Return the topic template of a kind, e.g. ``{base}/{device_id}/status``."""
    topic = raw(kind).get("topic")
    return topic if isinstance(topic, str) else None


def topic_regex(kind: str) -> re.Pattern[str] | None:
    """Return a regex matching the topics of a kind (placeholders match one level)."""
    template = topic_template(kind)
    if template is None:
        return None
    parts = re.split(r"(\{[a-z_]+\})", template)
    pattern = "".join(
        f"(?P<{part[1:-1]}>[^/+#]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{pattern}$")


def reference_device() -> dict[str, Any]:
    """Return the reference device (capabilities, initial actuator values, config)."""
    doc = _read("reference_device")
    if not isinstance(doc, dict):
        raise VectorError("reference_device.json: top level must be an object")
    return doc


#: Home Assistant platforms a capability can map to (platforms.json).
PLATFORMS: Final[frozenset[str]] = frozenset(
    {"sensor", "binary_sensor", "switch", "light", "number", "select", "text", "button"}
)


@dataclass(frozen=True, slots=True)
class PlatformCase:
    """One row of platforms.json: a capability and the platform both sides give it."""

    name: str
    kind: str
    capability: dict[str, Any]
    platform: str
    #: The state class of a `sensor` (``None``: none); absent for other platforms.
    state_class: str | None = None
    has_state_class: bool = False


def platforms() -> list[PlatformCase]:
    """Return the capability-to-platform table (see README.md)."""
    doc = _read("platforms")
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise VectorError("platforms.json: needs a 'cases' list")
    result = []
    for entry in doc["cases"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("capability"), dict):
            raise VectorError(f"platforms.json: case {entry!r} needs a capability")
        if entry.get("kind") not in ("sensor", "actuator"):
            raise VectorError(f"platforms.json: {entry.get('name')!r}: kind sensor or actuator")
        if entry.get("platform") not in PLATFORMS:
            raise VectorError(f"platforms.json: {entry.get('name')!r}: unknown platform")
        result.append(
            PlatformCase(
                name=str(entry.get("name", "")),
                kind=entry["kind"],
                capability=entry["capability"],
                platform=entry["platform"],
                state_class=entry.get("state_class"),
                has_state_class="state_class" in entry,
            )
        )
    return result


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _placeholder_matches(placeholder: str, actual: Any) -> bool:
    if placeholder == "$any":
        return True
    if placeholder == "$string":
        return isinstance(actual, str) and actual != ""
    if placeholder == "$bool":
        return isinstance(actual, bool)
    if placeholder == "$number":
        return _is_number(actual) and math.isfinite(actual)
    if placeholder in ("$int", "$uint"):
        integral = isinstance(actual, int) and not isinstance(actual, bool)
        if isinstance(actual, float) and actual.is_integer():
            integral = True
        return integral and (placeholder == "$int" or actual >= 0)
    raise VectorError(f"unknown placeholder {placeholder!r}")


def matches(expected: Any, actual: Any) -> bool:
    """Compare a JSON value against an expectation from the vectors.

    JSON semantics: numbers compare by value (``35 == 35.0``), booleans never
    equal numbers, objects compare key by key regardless of order. Strings
    starting with ``$`` are placeholders (``$uint``, ``$int``, ``$number``,
    ``$string``, ``$bool``, ``$any``); a placeholder ending in ``?`` as the
    value of an object member means the member may also be absent.
    """
    if isinstance(expected, str) and expected.startswith("$"):
        return _placeholder_matches(expected.removesuffix("?"), actual)
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if _is_number(expected):
        return _is_number(actual) and bool(expected == actual)
    if isinstance(expected, str):
        return isinstance(actual, str) and expected == actual
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        for key, value in expected.items():
            optional = isinstance(value, str) and value.startswith("$") and value.endswith("?")
            if key not in actual:
                if not optional:
                    return False
                continue
            if not matches(value, actual[key]):
                return False
        return set(actual) <= set(expected)
    raise VectorError(f"not a JSON value: {expected!r}")


#: What a step of lifecycle.json does to the reference device.
LIFECYCLE_STEPS: Final[frozenset[str]] = frozenset({"connect", "disconnect", "tick", "message"})


@dataclass(frozen=True, slots=True)
class LifecycleCase:
    """One case of lifecycle.json: events on the reference device and what it publishes."""

    name: str
    about: str
    #: The discovery mode in the device's store at boot (``None``: never stored).
    stored_mode: str | None
    #: The device's discovery hold-off in ms (``0``: none).
    holdoff_ms: int
    #: ``{"at_ms", "do", "topic"?, "payload"?, "published"?, "not_published"?}``
    steps: list[dict[str, Any]]
    #: The discovery mode stored at the end (``None``: none).
    stored_after: str | None
    #: The device's wall clock at ``at_ms`` 0 in Unix epoch ms (``None``: not synchronised).
    epoch_ms: int | None = None


def lifecycle() -> list[LifecycleCase]:
    """Return the device life-cycle sequences (see README.md)."""
    doc = _read("lifecycle")
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise VectorError("lifecycle.json: needs a 'cases' list")
    result = []
    for entry in doc["cases"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("steps"), list):
            raise VectorError(f"lifecycle.json: case {entry!r} needs steps")
        for step in entry["steps"]:
            if not isinstance(step, dict) or step.get("do") not in LIFECYCLE_STEPS:
                raise VectorError(f"lifecycle.json: {entry.get('name')!r}: bad step {step!r}")
        result.append(
            LifecycleCase(
                name=str(entry.get("name", "")),
                about=str(entry.get("about", "")),
                stored_mode=entry.get("stored_mode"),
                holdoff_ms=int(entry.get("holdoff_ms", 0)),
                steps=entry["steps"],
                stored_after=entry.get("stored_after"),
                epoch_ms=entry.get("epoch_ms"),
            )
        )
    return result
