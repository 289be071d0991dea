"""Unit tests for confirm tokens: binding to arguments, expiry, single use."""

from __future__ import annotations

import pytest

from esp_mcp_server.confirm import ConfirmError, ConfirmTokens


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_valid_token_accepted_once() -> None:
    clock = Clock()
    tokens = ConfirmTokens(ttl_s=120, clock=clock)
    token, expiry = tokens.issue("gh-1", "valve", "write", 50)
    assert expiry == 1_000_120
    tokens.verify(token, "gh-1", "valve", "write", 50)
    with pytest.raises(ConfirmError) as err:
        tokens.verify(token, "gh-1", "valve", "write", 50)
    assert err.value.reason == "used"


def test_integral_float_equals_int() -> None:
    tokens = ConfirmTokens()
    token, _ = tokens.issue("gh-1", "valve", "write", 50)
    tokens.verify(token, "gh-1", "valve", "write", 50.0)


@pytest.mark.parametrize(
    ("device", "actuator", "action", "value"),
    [
        ("gh-2", "valve", "write", 50),
        ("gh-1", "led", "write", 50),
        ("gh-1", "valve", "toggle", 50),
        ("gh-1", "valve", "write", 55),
        ("gh-1", "valve", "write", "50"),
    ],
)
def test_wrong_arguments_rejected(device: str, actuator: str, action: str, value: object) -> None:
    tokens = ConfirmTokens()
    token, _ = tokens.issue("gh-1", "valve", "write", 50)
    with pytest.raises(ConfirmError) as err:
        tokens.verify(token, device, actuator, action, value)
    assert err.value.reason == "mismatch"
    tokens.verify(token, "gh-1", "valve", "write", 50)


def test_expired_rejected() -> None:
    clock = Clock()
    tokens = ConfirmTokens(ttl_s=120, clock=clock)
    token, _ = tokens.issue("gh-1", "valve", "write", 50)
    clock.now += 121
    with pytest.raises(ConfirmError) as err:
        tokens.verify(token, "gh-1", "valve", "write", 50)
    assert err.value.reason == "expired"


def test_other_process_secret_rejected() -> None:
    token, _ = ConfirmTokens().issue("gh-1", "valve", "write", 50)
    with pytest.raises(ConfirmError) as err:
        ConfirmTokens().verify(token, "gh-1", "valve", "write", 50)
    assert err.value.reason == "mismatch"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.1"])
def test_malformed_rejected(token: str) -> None:
    with pytest.raises(ConfirmError) as err:
        ConfirmTokens().verify(token, "gh-1", "valve", "write", 50)
    assert err.value.reason == "malformed"


def test_tampered_expiry_rejected() -> None:
    clock = Clock()
    tokens = ConfirmTokens(ttl_s=120, clock=clock)
    token, expiry = tokens.issue("gh-1", "valve", "write", 50)
    nonce, _, mac = token.split(".")
    with pytest.raises(ConfirmError) as err:
        tokens.verify(f"{nonce}.{expiry + 1000}.{mac}", "gh-1", "valve", "write", 50)
    assert err.value.reason == "mismatch"


def test_token_bound_to_principal() -> None:
    tokens = ConfirmTokens(ttl_s=60)
    token, _ = tokens.issue("d", "a", "write", 1, principal="alice")
    with pytest.raises(ConfirmError) as err:
        tokens.verify(token, "d", "a", "write", 1, principal="mallory")
    assert err.value.reason == "mismatch"
    tokens.verify(token, "d", "a", "write", 1, principal="alice")
