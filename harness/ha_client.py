"""A small async client for Home Assistant's REST and WebSocket APIs (aiohttp only)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import itertools
from types import TracebackType
from typing import Any, Self, cast

import aiohttp

from harness._process import HarnessError, async_wait_until

JsonDict = dict[str, Any]


class HaApiError(HarnessError):
    """Home Assistant answered an API call with an error."""


class HaClient:
    """REST + one WebSocket connection, authenticated with an access token.

    Use as ``async with HaClient(url, token) as ha:``.
    """

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._ws_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers={"Authorization": f"Bearer {self.token}"}
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise HarnessError("HaClient used outside 'async with'")
        return self._session

    # ------------------------------------------------------------------ REST
    async def request(
        self, method: str, path: str, json: object | None = None, ok: tuple[int, ...] = (200, 201)
    ) -> Any:
        async with self.session.request(method, f"{self.url}{path}", json=json) as resp:
            text = await resp.text()
            if resp.status not in ok:
                raise HaApiError(f"{method} {path} -> {resp.status}: {text[:500]}")
            if resp.content_type == "application/json":
                return await resp.json()
            return text

    async def get(self, path: str) -> Any:
        return await self.request("GET", path)

    async def post(self, path: str, json: object | None = None) -> Any:
        return await self.request("POST", path, json=json if json is not None else {})

    async def states(self) -> list[JsonDict]:
        return cast(list[JsonDict], await self.get("/api/states"))

    async def state(self, entity_id: str) -> JsonDict | None:
        async with self.session.get(f"{self.url}/api/states/{entity_id}") as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise HaApiError(f"GET state {entity_id} -> {resp.status}")
            return cast(JsonDict, await resp.json())

    async def call_service(
        self, domain: str, service: str, data: Mapping[str, Any] | None = None
    ) -> Any:
        return await self.post(f"/api/services/{domain}/{service}", dict(data or {}))

    async def wait_state(
        self, entity_id: str, expected: str | set[str], within: float = 20.0
    ) -> JsonDict:
        """Poll an entity until its state is ``expected`` (or one of a set)."""
        wanted = {expected} if isinstance(expected, str) else expected
        found: JsonDict = {}

        async def check() -> bool:
            nonlocal found
            state = await self.state(entity_id)
            if state is None:
                return False
            found = state
            return state["state"] in wanted

        try:
            await async_wait_until(check, within, f"{entity_id} to be {sorted(wanted)}")
        except HarnessError as err:
            raise HarnessError(f"{err}; last state: {found.get('state')!r}") from err
        return found

    # ------------------------------------------------------------- config flows
    async def config_entries(self, domain: str | None = None) -> list[JsonDict]:
        query = f"?domain={domain}" if domain else ""
        return cast(list[JsonDict], await self.get(f"/api/config/config_entries/entry{query}"))

    async def flows_in_progress(self, handler: str | None = None) -> list[JsonDict]:
        flows = cast(list[JsonDict], await self.ws("config_entries/flow/progress"))
        return [f for f in flows if handler is None or f.get("handler") == handler]

    async def start_flow(self, handler: str, show_advanced: bool = False) -> JsonDict:
        return cast(
            JsonDict,
            await self.post(
                "/api/config/config_entries/flow",
                {"handler": handler, "show_advanced_options": show_advanced},
            ),
        )

    async def flow_step(self, flow_id: str, data: Mapping[str, Any]) -> JsonDict:
        return cast(
            JsonDict, await self.post(f"/api/config/config_entries/flow/{flow_id}", dict(data))
        )

    async def upload_file(self, name: str, content: bytes) -> str:
        """Upload a file the way the frontend does (for flows with a file selector)."""
        form = aiohttp.FormData()
        form.add_field("file", content, filename=name)
        async with self.session.post(f"{self.url}/api/file_upload", data=form) as resp:
            if resp.status != 200:
                raise HaApiError(f"file upload -> {resp.status}: {await resp.text()}")
            return str((await resp.json())["file_id"])

    async def delete_entry(self, entry_id: str) -> None:
        await self.request("DELETE", f"/api/config/config_entries/entry/{entry_id}")

    # --------------------------------------------------------------- WebSocket
    async def _connect_ws(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self.session.ws_connect(f"{self.url}/api/websocket", max_msg_size=0)
        hello = await ws.receive_json()
        if hello.get("type") != "auth_required":
            raise HaApiError(f"unexpected WebSocket greeting {hello}")
        await ws.send_json({"type": "auth", "access_token": self.token})
        answer = await ws.receive_json()
        if answer.get("type") != "auth_ok":
            await ws.close()
            raise HaApiError(f"WebSocket authentication failed: {answer}")
        return ws

    async def ws(self, msg_type: str, **data: Any) -> Any:
        """Send one WebSocket command and return its ``result`` (raise on error)."""
        async with self._ws_lock:
            if self._ws is None or self._ws.closed:
                self._ws = await self._connect_ws()
            msg_id = next(self._ids)
            await self._ws.send_json({"id": msg_id, "type": msg_type, **data})
            while True:
                msg = await self._ws.receive_json()
                if msg.get("id") != msg_id or msg.get("type") != "result":
                    continue
                if not msg.get("success"):
                    raise HaApiError(f"{msg_type} failed: {msg.get('error')}")
                return msg.get("result")

    async def entity_registry(self) -> list[JsonDict]:
        return cast(list[JsonDict], await self.ws("config/entity_registry/list"))

    async def device_registry(self) -> list[JsonDict]:
        return cast(list[JsonDict], await self.ws("config/device_registry/list"))

    async def history(
        self, entity_id: str, start_time: str, end_time: str | None = None
    ) -> list[JsonDict]:
        """Recorded states as ``{"state": str, "last_updated": unix seconds}``, oldest first."""
        data: JsonDict = {
            "start_time": start_time,
            "entity_ids": [entity_id],
            "minimal_response": True,
            "no_attributes": True,
            "significant_changes_only": False,
        }
        if end_time is not None:
            data["end_time"] = end_time
        result = cast(
            dict[str, list[JsonDict]], await self.ws("history/history_during_period", **data)
        )
        # The WebSocket API answers in its compressed form: s = state, lu/lc = timestamps.
        return [
            {"state": row.get("s"), "last_updated": row.get("lu", row.get("lc"))}
            for row in result.get(entity_id, [])
        ]

    async def logbook(self, start_time: str, entity_ids: list[str] | None = None) -> list[JsonDict]:
        data: JsonDict = {"start_time": start_time}
        if entity_ids is not None:
            data["entity_ids"] = entity_ids
        return cast(list[JsonDict], await self.ws("logbook/get_events", **data))
