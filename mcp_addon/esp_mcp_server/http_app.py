"""Streamable HTTP at /mcp behind a Home Assistant bearer-token check and an Origin check."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from urllib.parse import urlsplit

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from .ha_client import HAError, HomeAssistant

_LOGGER = logging.getLogger(__name__)
REALM = "esp-mcp-bridge"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class TokenCache:
    """Remembers tokens HA accepted for `ttl_s` seconds (only their SHA-256 is kept)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._valid: dict[str, float] = {}

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str, now: float) -> bool:
        expiry = self._valid.get(self.key(token))
        if expiry is None:
            return False
        if expiry < now:
            del self._valid[self.key(token)]
            return False
        return True

    def put(self, token: str, now: float) -> None:
        if len(self._valid) > 1000:
            self._valid = {k: v for k, v in self._valid.items() if v >= now}
        self._valid[self.key(token)] = now + self.ttl_s


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Browsers' Origin: loopback always, others only when configured ("*" allows any)."""
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS


class HomeAssistantAuth:
    """ASGI middleware: Origin check, then `Authorization: Bearer <HA token>` checked against HA."""

    def __init__(
        self,
        app: ASGIApp,
        ha: HomeAssistant,
        allowed_origins: tuple[str, ...],
        cache_ttl_s: float,
    ) -> None:
        self.app = app
        self.ha = ha
        self.allowed_origins = allowed_origins
        self.cache = TokenCache(cache_ttl_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin and not origin_allowed(origin, self.allowed_origins):
            _LOGGER.warning("refused a request from origin %r", origin[:100])
            await _reply(
                send, 403, {"error": "forbidden", "error_description": "Origin not allowed"}
            )
            return
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            await _reply(
                send,
                401,
                {"error": "invalid_request", "error_description": "Bearer token required"},
                f'Bearer realm="{REALM}"',
            )
            return
        token = auth[7:].strip()
        now = time.monotonic()
        if not self.cache.get(token, now):
            try:
                valid = await self.ha.check_token(token)
            except HAError:
                await _reply(
                    send,
                    503,
                    {
                        "error": "temporarily_unavailable",
                        "error_description": "Home Assistant unreachable, cannot check the token",
                    },
                )
                return
            if not valid:
                await _reply(
                    send,
                    401,
                    {"error": "invalid_token", "error_description": "Home Assistant rejected it"},
                    f'Bearer realm="{REALM}", error="invalid_token"',
                )
                return
            self.cache.put(token, now)
        principal = f"ha-token-{TokenCache.key(token)[:16]}"
        scope["user"] = AuthenticatedUser(AccessToken(token=token, client_id=principal, scopes=[]))
        await self.app(scope, receive, send)


async def _reply(
    send: Send, status: int, body: dict[str, str], www_authenticate: str | None = None
) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if www_authenticate:
        headers.append((b"www-authenticate", www_authenticate.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def build_http_app(
    server: MCPServer[object],
    ha: HomeAssistant,
    allowed_origins: tuple[str, ...],
    cache_ttl_s: float,
) -> ASGIApp:
    """The streamable HTTP app at /mcp wrapped in the HA token and Origin checks."""
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        # Host names vary inside HA (homeassistant.local, an IP); the Origin check and the
        # bearer token below are what protect the endpoint.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return HomeAssistantAuth(app, ha, allowed_origins, cache_ttl_s)
