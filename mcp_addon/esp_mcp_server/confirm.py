"""Two-step confirmation tokens for actuators that require confirmation.

A token is bound to the exact (device, actuator, action, value) and to the caller (a digest of
the client's Home Assistant token), signed with a per-process HMAC secret, expires after a short
time and can be used once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

DEFAULT_TTL_S = 120.0


class ConfirmError(Exception):
    """A confirm token was rejected; `reason` is one of malformed, expired, mismatch, used."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _canonical_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _payload(args: tuple[str, str, str, Any], nonce: str, expiry: int, principal: str) -> bytes:
    device, actuator, action, value = args
    body = [device, actuator, action, _canonical_value(value), nonce, expiry, principal]
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class ConfirmTokens:
    """Issues and checks confirm tokens. `clock` returns Unix seconds (injectable for tests)."""

    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl_s = ttl_s
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._clock = clock
        self._used: dict[str, int] = {}

    def issue(
        self, device: str, actuator: str, action: str, value: Any, *, principal: str = ""
    ) -> tuple[str, int]:
        """Return (token, expiry as Unix seconds); only `principal` can use it."""
        nonce = secrets.token_urlsafe(9)
        expiry = int(self._clock() + self.ttl_s)
        mac = self._mac(_payload((device, actuator, action, value), nonce, expiry, principal))
        return f"{nonce}.{expiry}.{mac}", expiry

    def verify(
        self,
        token: str,
        device: str,
        actuator: str,
        action: str,
        value: Any,
        *,
        principal: str = "",
    ) -> None:
        """Accept the token for exactly these arguments and caller once, or raise ConfirmError."""
        parts = token.strip().split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            raise ConfirmError("malformed", "confirm_token is not one this server issued")
        nonce, expiry_text, mac = parts
        expiry = int(expiry_text)
        expected = self._mac(_payload((device, actuator, action, value), nonce, expiry, principal))
        if not hmac.compare_digest(expected, mac):
            raise ConfirmError(
                "mismatch",
                "confirm_token does not match these arguments (device, actuator, action and value "
                "must be exactly those of the call that issued it, by the same user); call again "
                "without confirm_token to get a new one",
            )
        now = self._clock()
        self._prune(now)
        if now >= expiry:
            raise ConfirmError(
                "expired", "confirm_token expired; call again without confirm_token for a new one"
            )
        if nonce in self._used:
            raise ConfirmError("used", "confirm_token was already used; each token works once")
        self._used[nonce] = expiry

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _prune(self, now: float) -> None:
        for nonce in [n for n, exp in self._used.items() if exp < now]:
            del self._used[nonce]
