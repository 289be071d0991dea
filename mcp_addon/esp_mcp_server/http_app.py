"""Streamable HTTP at /mcp behind CORS, an Origin check and a Home Assistant bearer-token check:
the token's user (WebSocket auth/current_user) must be an administrator unless the add-on
allows other users; bad tokens are remembered and budgeted so they cannot flood HA. The OAuth
documents (oauth.py) are served without a token."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
import hashlib
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .ha_client import HAError, HomeAssistant
from .ha_confirm import HomeConfirmation
from .oauth import OAuthEndpoints, request_origin, www_authenticate
from .services import AFTER_ANSWER

_LOGGER = logging.getLogger(__name__)
REALM = "esp-mcp-bridge"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


NEGATIVE_TTL_S = 300.0
KNOWN_GOOD_TTL_S = 86400.0
FAILURE_WINDOW_S = 60.0
FAILURES_PER_CLIENT = 3
FAILURES_TOTAL = 5


def token_key(token: str) -> str:
    """Tokens are only ever kept as their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRefused(Exception):
    """Not checked with Home Assistant: the answer is `status` with `error` (429/401)."""

    def __init__(self, status: int, error: str, description: str, retry_after: int = 0) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.retry_after = retry_after


class TokenChecker:
    """Checks client tokens with Home Assistant at most as often as it has to.

    - A token HA accepted is remembered with its user for `ttl_s`, and as known-good for a day.
    - A token HA rejected is remembered for `NEGATIVE_TTL_S` and answered 401 without asking.
    - Checks of tokens that are not known-good are budgeted: `FAILURES_PER_CLIENT` per client
      address and `FAILURES_TOTAL` in all per `FAILURE_WINDOW_S` (a check takes from the budget
      when it starts and gives it back when HA accepts the token). Beyond that the answer is 429
      without asking HA, so a burst of bad tokens neither floods HA with failed logins (each
      one a notification, and with `login_attempts_threshold` a ban of this add-on's address)
      nor locks out a client whose token is known-good.
    - The same token checked by many requests at once is one call to HA.
    """

    def __init__(self, ha: HomeAssistant, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ha = ha
        self.ttl_s = ttl_s
        self.clock = clock
        self._valid: dict[str, tuple[float, dict[str, Any]]] = {}
        self._invalid: dict[str, float] = {}
        self._known_good: dict[str, float] = {}
        self._attempts: deque[tuple[float, str, str]] = deque()
        self._inflight: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self.ha_checks = 0

    def _prune(self, now: float) -> None:
        while self._attempts and self._attempts[0][0] < now - FAILURE_WINDOW_S:
            self._attempts.popleft()
        if len(self._valid) > 1000:
            self._valid = {k: v for k, v in self._valid.items() if v[0] >= now}
        if len(self._invalid) > 10000:
            self._invalid = {k: v for k, v in self._invalid.items() if v >= now}
        if len(self._known_good) > 10000:
            self._known_good = {k: v for k, v in self._known_good.items() if v >= now}

    async def user(self, token: str, client: str) -> dict[str, Any]:
        """The HA user of `token`; raises TokenRefused, or HAError when HA cannot tell."""
        now = self.clock()
        key = token_key(token)
        self._prune(now)
        cached = self._valid.get(key)
        if cached is not None and cached[0] >= now:
            return cached[1]
        bad = self._invalid.get(key)
        if bad is not None and bad >= now:
            raise TokenRefused(401, "invalid_token", "Home Assistant rejected it")
        inflight = self._inflight.get(key)
        if inflight is not None:
            user = await asyncio.shield(inflight)
        else:
            known = self._known_good.get(key, 0.0) >= now
            attempt = (now, client, key)
            if not known:
                mine = sum(1 for _, c, _ in self._attempts if c == client)
                if mine >= FAILURES_PER_CLIENT or len(self._attempts) >= FAILURES_TOTAL:
                    raise TokenRefused(
                        429,
                        "too_many_requests",
                        "too many unknown tokens recently; try again later",
                        int(FAILURE_WINDOW_S),
                    )
                self._attempts.append(attempt)
            future: asyncio.Future[dict[str, Any] | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._inflight[key] = future
            try:
                self.ha_checks += 1
                user = await self.ha.current_user(token)
            except BaseException as err:
                future.set_exception(err)
                future.exception()  # retrieved: waiters get it through shield
                if not known:  # HA could not tell: the attempt says nothing about the token
                    with contextlib.suppress(ValueError):
                        self._attempts.remove(attempt)
                raise
            finally:
                self._inflight.pop(key, None)
            future.set_result(user)
            if user is not None and not known:
                with contextlib.suppress(ValueError):
                    self._attempts.remove(attempt)
        now = self.clock()
        if user is None:
            self._invalid[key] = now + NEGATIVE_TTL_S
            raise TokenRefused(401, "invalid_token", "Home Assistant rejected it")
        self._valid[key] = (now + self.ttl_s, user)
        self._known_good[key] = now + KNOWN_GOOD_TTL_S
        return user


class AfterAnswer:
    """ASGI middleware: work a request queued under AFTER_ANSWER in its scope (a list of
    callables) runs once the answer's last body part is sent, or when the request ends
    without one (the client went away, an error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        queued: list[Callable[[], None]] = []
        scope[AFTER_ANSWER] = queued

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                _run(queued)

        try:
            await self.app(scope, receive, sending)
        finally:
            _run(queued)


def _run(queued: list[Callable[[], None]]) -> None:
    while queued:
        queued.pop(0)()


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Browsers' Origin: loopback always, others only when configured ("*" allows any)."""
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS


CORS_ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
CORS_ALLOW_HEADERS = (
    b"Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID"
)
CORS_EXPOSE_HEADERS = b"Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Retry-After"


def with_cors(send: Send, origin: str | None, public: bool) -> Send:
    """`send` adding CORS headers to the response start: on /mcp the allowed Origin itself
    (never "*", never with credentials), on the public OAuth documents "*"."""
    if origin is None:
        return send

    async def cors_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            allow = b"*" if public else origin.encode("latin-1")
            headers += [
                (b"access-control-allow-origin", allow),
                (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
            ]
            if not public:
                headers.append((b"vary", b"Origin"))
            message = {**message, "headers": headers}
        await send(message)

    return cors_send


class HomeAssistantAuth:
    """ASGI middleware: the public OAuth documents, CORS, the Origin check, then
    `Authorization: Bearer <HA token>` checked against HA."""

    def __init__(
        self,
        app: ASGIApp,
        ha: HomeAssistant,
        allowed_origins: tuple[str, ...],
        cache_ttl_s: float,
        *,
        allow_non_admin: bool = False,
        oauth: OAuthEndpoints | None = None,
        pages: HomeConfirmation | None = None,
    ) -> None:
        self.app = app
        self.ha = ha
        self.allowed_origins = allowed_origins
        self.allow_non_admin = allow_non_admin
        self.checker = TokenChecker(ha, cache_ttl_s, time.monotonic)
        self.oauth = oauth or OAuthEndpoints(ha)
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if self.oauth.handles(scope["path"]):
            # Public documents for any page (they hold no secret, and no credentials are used).
            await self.oauth(scope, receive, with_cors(send, origin, public=True))
            return
        if self.pages is not None and self.pages.handles(scope["path"]):
            # The approve/deny page: its own origin posts to it; the secret in the path is
            # what protects it (it was only ever shown in Home Assistant).
            await self.pages(scope, receive, send)
            return
        if origin and not origin_allowed(origin, self.allowed_origins):
            _LOGGER.warning("refused a request from origin %r", origin[:100])
            await _reply(
                send, 403, {"error": "forbidden", "error_description": "Origin not allowed"}
            )
            return
        send = with_cors(send, origin, public=False)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(send)
            return
        here = request_origin(scope, self.oauth.public_url)
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            await _reply(
                send,
                401,
                {"error": "invalid_request", "error_description": "Bearer token required"},
                www_authenticate(here, realm=REALM),
            )
            return
        token = auth[7:].strip()
        client = scope.get("client")
        address = str(client[0]) if client else "?"
        try:
            user = await self.checker.user(token, address)
        except TokenRefused as err:
            if err.status == 401:
                await _reply(
                    send,
                    401,
                    {"error": err.error, "error_description": str(err)},
                    www_authenticate(here, "invalid_token", realm=REALM),
                )
            else:
                await _reply(
                    send,
                    err.status,
                    {"error": err.error, "error_description": str(err)},
                    retry_after=err.retry_after,
                )
            return
        except HAError as err:
            _LOGGER.warning("cannot check a client token: %s", err)
            await _reply(
                send,
                503,
                {
                    "error": "temporarily_unavailable",
                    "error_description": f"cannot check the token with Home Assistant: {err}",
                },
                retry_after=30,
            )
            return
        is_admin = bool(user.get("is_admin"))
        if not is_admin and not self.allow_non_admin:
            await _reply(
                send,
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": (
                        "this Home Assistant user is not an administrator; use an "
                        "administrator's token, or turn on the add-on option allow_non_admin"
                    ),
                },
                # No error="insufficient_scope" in the header: OAuth clients answer that with
                # a new login for more scope, which cannot help (being an administrator is the
                # user's, not the token's); the body says what to do.
                f'Bearer realm="{REALM}"',
            )
            return
        principal = f"ha-user-{user.get('id') or token_key(token)[:16]}"
        scopes = ["admin"] if is_admin else []
        scope["user"] = AuthenticatedUser(
            AccessToken(token=token, client_id=principal, scopes=scopes)
        )
        await self.app(scope, receive, send)


async def _preflight(send: Send) -> None:
    headers = [
        (b"access-control-allow-methods", CORS_ALLOW_METHODS),
        (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
        (b"access-control-max-age", b"600"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _reply(
    send: Send,
    status: int,
    body: dict[str, str],
    www_authenticate: str | None = None,
    retry_after: int = 0,
) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if www_authenticate:
        headers.append((b"www-authenticate", www_authenticate.encode()))
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def build_http_app(
    server: MCPServer[object],
    ha: HomeAssistant,
    allowed_origins: tuple[str, ...],
    cache_ttl_s: float,
    *,
    allow_non_admin: bool = False,
    oauth: OAuthEndpoints | None = None,
    pages: HomeConfirmation | None = None,
) -> ASGIApp:
    """The streamable HTTP app at /mcp wrapped in the HA token and Origin checks."""
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        # Host names vary inside HA (homeassistant.local, an IP); the Origin check and the
        # bearer token below are what protect the endpoint.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return HomeAssistantAuth(
        AfterAnswer(app),
        ha,
        allowed_origins,
        cache_ttl_s,
        allow_non_admin=allow_non_admin,
        oauth=oauth,
        pages=pages,
    )
