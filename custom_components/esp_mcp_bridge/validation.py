"""Decoding and member checks of the wire protocol (pure Python, no Home Assistant).

The message parsers of `protocol` build on these: the contract's error codes, the
limits of device messages, strict JSON decoding and the checks of single members.
Only `ProtocolError` leaves them, whatever the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
import json
import math
import sys
from typing import Any, Final

MAX_MESSAGE_BYTES: Final = 16 * 1024
MAX_STRING_LEN: Final = 255
MAX_TEXT_LEN: Final = 1024
# Containers nested in a device message; capabilities need 4.
MAX_DEPTH: Final = 32
# Every integer up to here has a double of its own (JavaScript's MAX_SAFE_INTEGER):
# integer members beyond it are out of range, integer values are read as doubles.
MAX_SAFE_INTEGER: Final = 2**53 - 1
# The last millisecond of the year 9999: later ones cannot be dates in Python.
MAX_TS_MS: Final = 253_402_300_799_999
# Digits of the largest double (1.8e308): longer integers always overflow.
_DOUBLE_DIGITS: Final = 309


class ErrorCode(StrEnum):
    """Contract error codes (device responses and receiver rejections)."""

    MALFORMED = "malformed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNKNOWN_ACTUATOR = "unknown_actuator"
    UNKNOWN_SENSOR = "unknown_sensor"
    UNSUPPORTED_ACTION = "unsupported_action"
    INVALID_VALUE = "invalid_value"
    OUT_OF_RANGE = "out_of_range"
    CONFIRMATION_REQUIRED = "confirmation_required"
    BUSY = "busy"
    TIMEOUT = "timeout"
    INTERNAL = "internal"
    EXPIRED = "expired"
    # Receiver-side rejections.
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite"
    INVALID_ID = "invalid_id"
    UNSUPPORTED_VERSION = "unsupported_version"


type Value = float | int | bool | str


class ProtocolError(ValueError):
    """A message that does not follow the contract."""

    def __init__(self, code: ErrorCode, detail: str, device_id: str | None = None) -> None:
        """Store the contract error code and a short detail."""
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.device_id = device_id


def fail(code: ErrorCode, detail: str) -> ProtocolError:
    """A ProtocolError to raise."""
    return ProtocolError(code, detail)


# --------------------------------------------------------------------- decoding


class NonFinite(Exception):
    """A NaN/Infinity token or a number beyond the range of a double."""


def reject_constant(name: str) -> Any:
    """`parse_constant` of json.loads: NaN and Infinity are no JSON."""
    raise NonFinite(name)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFinite(text)
    return value


def _parse_int(text: str) -> int | float:
    if len(text.lstrip("-")) > _DOUBLE_DIGITS:
        raise NonFinite("integer beyond the range of a double")
    value = int(text)
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    try:
        return float(value)
    except OverflowError as err:
        raise NonFinite("integer beyond the range of a double") from err


def _too_deep(data: Any) -> bool:
    """Containers nested deeper than MAX_DEPTH (no recursion: any depth is safe)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` of json.loads: a key twice is malformed, as on the device.

    Python would keep the last and the device's parser the first; refused, both agree.
    """
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("duplicate key")
    return data


def check_escaped_text(text: str, data: Any) -> None:
    """Refuse strings (keys too) that an escape made NUL or a lone surrogate.

    Raw NUL bytes and invalid UTF-8 never get this far; only `\\u` escapes can make them,
    so texts without one are not walked. The device refuses the same (`malformed`).
    """
    if "\\u" not in text:
        return
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise ValueError("NUL in a string")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:
                raise ValueError("lone surrogate in a string") from err


def raw_bytes(payload: bytes | str) -> bytes:
    """The payload as bytes."""
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def decode_json(payload: bytes | str, limit: int = MAX_MESSAGE_BYTES) -> Any:
    """Decode a device JSON payload within a size limit.

    NaN/Infinity tokens and numbers that overflow a double are `non_finite`; an
    integer beyond 2^53 - 1 becomes the nearest double, as in any JSON receiver.
    """
    raw = raw_bytes(payload)
    if len(raw) > limit:
        raise fail(ErrorCode.PAYLOAD_TOO_LARGE, f"{len(raw)} bytes > {limit}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise fail(ErrorCode.MALFORMED, "payload is not UTF-8") from err
    try:
        data = json.loads(
            text,
            parse_constant=reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=unique_keys,
        )
        check_escaped_text(text, data)
    except NonFinite as err:
        raise fail(ErrorCode.NON_FINITE, "NaN, Infinity or a number beyond a double") from err
    except (ValueError, RecursionError) as err:
        raise fail(ErrorCode.MALFORMED, "payload is not JSON") from err
    # Cheap first: fewer containers than the limit cannot nest deeper.
    if text.count("{") + text.count("[") > MAX_DEPTH and _too_deep(data):
        raise fail(ErrorCode.MALFORMED, f"nested deeper than {MAX_DEPTH} levels")
    return data


def decode_object(payload: bytes | str, limit: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Decode a device payload that must be a JSON object."""
    data = decode_json(payload, limit)
    if not isinstance(data, dict):
        raise fail(ErrorCode.MALFORMED, "payload is not a JSON object")
    return data


# ----------------------------------------------------------------- members


def is_number(value: object) -> bool:
    """A JSON number a double can hold (a boolean is none)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= sys.float_info.max  # exact: int and float compare by value
    return isinstance(value, float)


def is_integral(value: object) -> bool:
    """A number without a fraction (a boolean is none)."""
    if not is_number(value):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def number_member(data: Mapping[str, Any], key: str) -> float | int | None:
    """An optional number member."""
    value = data.get(key)
    if value is None:
        return None
    if not is_number(value):
        raise fail(ErrorCode.WRONG_TYPE, f"'{key}' must be a number")
    return value  # type: ignore[no-any-return]


def int_member(
    data: Mapping[str, Any],
    key: str,
    low: int | None = None,
    high: int | None = None,
    *,
    required: bool = False,
) -> int | None:
    """An integer member within low..high, and always within ±(2^53 - 1)."""
    value = data.get(key)
    if value is None:
        if required:
            raise fail(ErrorCode.MALFORMED, f"missing '{key}'")
        return None
    if not is_integral(value):
        raise fail(ErrorCode.WRONG_TYPE, f"'{key}' must be an integer")
    number = int(value)
    low = -MAX_SAFE_INTEGER if low is None else low
    high = MAX_SAFE_INTEGER if high is None else high
    if not low <= number <= high:
        raise fail(ErrorCode.OUT_OF_RANGE, f"'{key}' out of range")
    return number


def str_member(
    data: Mapping[str, Any], key: str, max_len: int = MAX_STRING_LEN, *, required: bool = False
) -> str | None:
    """An optional (or required) string member of at most max_len characters."""
    value = data.get(key)
    if value is None:
        if required:
            raise fail(ErrorCode.MALFORMED, f"missing '{key}'")
        return None
    if not isinstance(value, str):
        raise fail(ErrorCode.WRONG_TYPE, f"'{key}' must be a string")
    if len(value) > max_len:
        raise fail(ErrorCode.OUT_OF_RANGE, f"'{key}' too long")
    return value


def bool_member(data: Mapping[str, Any], key: str) -> bool:
    """An optional boolean member (False when absent)."""
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise fail(ErrorCode.WRONG_TYPE, f"'{key}' must be a boolean")
    return value


def ts_member(data: Mapping[str, Any]) -> int | None:
    """`ts`: epoch milliseconds from 1970 to the end of the year 9999."""
    return int_member(data, "ts", 0, MAX_TS_MS)


def scalar(value: object) -> Value:
    """A reading/state value: finite number, boolean or string."""
    if isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > MAX_TEXT_LEN:
            raise fail(ErrorCode.OUT_OF_RANGE, "value too long")
        return value
    if is_number(value):
        assert isinstance(value, int | float)
        if not math.isfinite(value):
            raise fail(ErrorCode.NON_FINITE, "non-finite value")
        return value
    raise fail(ErrorCode.WRONG_TYPE, "value must be a number, boolean or string")
