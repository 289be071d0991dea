"""OAuth for MCP clients with Home Assistant as the authorization server.

Home Assistant logs the user in (its own login page) and issues the tokens; the add-on is the
protected resource (RFC 9728) and checks each token with Home Assistant like a long-lived one.
What the add-on serves without a token:

- ``/.well-known/oauth-protected-resource[/mcp]``: the resource (``<origin>/mcp``) and Home
  Assistant's URL as its authorization server. Home Assistant publishes its own metadata
  (``/.well-known/oauth-authorization-server``: authorize and token endpoints, PKCE, client ID
  metadata documents) when it knows the URL it is reached at.
- ``/register``: Home Assistant has no dynamic client registration (RFC 7591); its clients are
  identified by a URL (IndieAuth) whose host must be that of the redirect URI. A client that
  registers here gets exactly that URL as its client_id; nothing is stored.
- ``/authorize`` and ``/token``: where clients of the 2025-03-26 revision look when the
  authorization server publishes no usable metadata (Home Assistant before 2026 serves only
  relative endpoints): a redirect to Home Assistant's login page and a pass-through of the
  token request to Home Assistant.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send

from .ha_client import HAError, HomeAssistant

_LOGGER = logging.getLogger(__name__)
PRM_PATH = "/.well-known/oauth-protected-resource"
MCP_PATH = "/mcp"
RESOURCE_NAME = "ESP32 MCP Bridge"
HA_URL_CACHE_S = 300.0
MAX_BODY = 16384
TOKEN_WINDOW_S = 60.0
TOKENS_PER_CLIENT = 10
TOKENS_TOTAL = 30


def request_origin(scope: Scope, public_url: str) -> str:
    """This server's origin as the client reached it: the configured public URL, else the
    request's scheme and Host header."""
    if public_url:
        return public_url.rstrip("/")
    host = ""
    for key, value in scope.get("headers", []):
        if key == b"host":
            host = value.decode("latin-1")
            break
    if not host:
        server = scope.get("server") or ("127.0.0.1", 8099)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def resource_metadata_url(origin: str) -> str:
    """RFC 9728 section 3.1: the well-known path inserted before the resource's path."""
    return f"{origin}{PRM_PATH}{MCP_PATH}"


def www_authenticate(origin: str, error: str | None = None, realm: str = "esp-mcp-bridge") -> str:
    parts = [f'realm="{realm}"', f'resource_metadata="{resource_metadata_url(origin)}"']
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ", ".join(parts)


def client_id_for(redirect_uris: list[str]) -> str:
    """The IndieAuth client_id Home Assistant accepts for these redirect URIs: their common
    origin with the path ``/``. Raises ValueError when there is none."""
    if not redirect_uris:
        raise ValueError("redirect_uris is required")
    origins = set()
    for uri in redirect_uris:
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as err:
            raise ValueError(f"redirect URI {uri[:100]!r} is not a URL") from err
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"redirect URI {uri[:100]!r} is not http(s); Home Assistant accepts other "
                "redirect URIs only from clients whose client_id page lists them"
            )
        if parts.username is not None or parts.fragment:
            raise ValueError(f"redirect URI {uri[:100]!r} has credentials or a fragment")
        origins.add(f"{parts.scheme}://{parts.netloc.lower()}/")
    if len(origins) != 1:
        raise ValueError("all redirect URIs must have the same scheme, host and port")
    return origins.pop()


class OAuthEndpoints:
    """The unauthenticated OAuth endpoints, answering ASGI requests on their paths."""

    def __init__(
        self,
        ha: HomeAssistant,
        public_url: str = "",
        ha_public_url: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ha = ha
        self.public_url = public_url.rstrip("/")
        self.ha_public_url = ha_public_url.rstrip("/")
        self._clock = clock
        self._ha_url: tuple[float, str] | None = None
        self._token_requests: deque[tuple[float, str]] = deque()

    def handles(self, path: str) -> bool:
        return path in (PRM_PATH, PRM_PATH + MCP_PATH, "/register", "/authorize", "/token")

    async def authorization_server(self) -> str:
        """Home Assistant's URL as a browser reaches it: the option, else the external or
        internal URL set in Home Assistant (asked every few minutes), else the URL client
        tokens are checked at."""
        if self.ha_public_url:
            return self.ha_public_url
        now = self._clock()
        if self._ha_url is not None and now - self._ha_url[0] < HA_URL_CACHE_S:
            return self._ha_url[1]
        url = ""
        try:
            config = await self.ha.config()
        except HAError as err:
            _LOGGER.info("cannot read Home Assistant's URLs (%s); using %s", err, self.ha.auth_url)
            config = {}
        for key in ("external_url", "internal_url"):
            value = config.get(key)
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                url = value.rstrip("/")
                break
        url = url or self.ha.auth_url
        self._ha_url = (now, url)
        return url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        origin = request_origin(scope, self.public_url)
        if method == "OPTIONS":
            await _reply(send, 204, None)
            return
        handlers: dict[tuple[str, str], Callable[[], Awaitable[None]]] = {
            ("GET", PRM_PATH): lambda: self._metadata(send, origin),
            ("GET", PRM_PATH + MCP_PATH): lambda: self._metadata(send, origin),
            ("POST", "/register"): lambda: self._register(receive, send),
            ("GET", "/authorize"): lambda: self._authorize(scope, send),
            ("POST", "/token"): lambda: self._token(scope, receive, send),
        }
        handler = handlers.get((method, path))
        if handler is None:
            await _reply(send, 405, {"error": "invalid_request", "error_description": "method"})
            return
        await handler()

    async def _metadata(self, send: Send, origin: str) -> None:
        body = {
            "resource": f"{origin}{MCP_PATH}",
            "authorization_servers": [await self.authorization_server()],
            "bearer_methods_supported": ["header"],
            "resource_name": RESOURCE_NAME,
        }
        await _reply(send, 200, body, cache=True)

    async def _register(self, receive: Receive, send: Send) -> None:
        try:
            request = json.loads(await _body(receive))
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await _reply(
                send,
                400,
                {"error": "invalid_client_metadata", "error_description": "not a JSON object"},
            )
            return
        uris = request.get("redirect_uris")
        try:
            if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
                uris = []
            client_id = client_id_for(uris)
        except ValueError as err:
            await _reply(
                send, 400, {"error": "invalid_redirect_uri", "error_description": str(err)}
            )
            return
        answer: dict[str, Any] = {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        for key in ("client_name", "client_uri", "scope"):
            if isinstance(request.get(key), str):
                answer[key] = request[key]
        await _reply(send, 201, answer)

    async def _authorize(self, scope: Scope, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        target = f"{await self.authorization_server()}/auth/authorize"
        location = f"{target}?{query}" if query else target
        headers = [(b"location", location.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _token_budget(self, scope: Scope) -> bool:
        """Home Assistant counts a bad code at /auth/token as a failed login, and all of these
        come from the add-on's address: a few per client and minute, so a flood cannot get the
        add-on banned (login_attempts_threshold)."""
        now = self._clock()
        while self._token_requests and self._token_requests[0][0] < now - TOKEN_WINDOW_S:
            self._token_requests.popleft()
        client = scope.get("client")
        address = str(client[0]) if client else "?"
        mine = sum(1 for _, a in self._token_requests if a == address)
        if mine >= TOKENS_PER_CLIENT or len(self._token_requests) >= TOKENS_TOTAL:
            return False
        self._token_requests.append((now, address))
        return True

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._token_budget(scope):
            await _reply(
                send,
                429,
                {"error": "slow_down", "error_description": "too many token requests; wait"},
            )
            return
        try:
            form = await _body(receive)
        except ValueError as err:
            await _reply(send, 400, {"error": "invalid_request", "error_description": str(err)})
            return
        try:
            status, body = await self.ha.token_request(form)
        except HAError as err:
            await _reply(
                send, 503, {"error": "temporarily_unavailable", "error_description": str(err)}
            )
            return
        data = body.encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("request body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, body: dict[str, Any] | None, cache: bool = False) -> None:
    data = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-length", str(len(data)).encode())]
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    headers.append((b"cache-control", b"max-age=300" if cache else b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


__all__ = [
    "OAuthEndpoints",
    "client_id_for",
    "request_origin",
    "resource_metadata_url",
    "www_authenticate",
]
