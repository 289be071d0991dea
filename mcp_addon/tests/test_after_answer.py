"""Work done after the answer (the logbook entry of a command): queued by the tool call, started
once the HTTP answer is sent, and never lost when there is none."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from esp_mcp_server.config import Settings
from esp_mcp_server.http_app import AfterAnswer
from esp_mcp_server.services import AFTER_ANSWER, Services


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_queued_work_runs_once_the_last_body_part_is_sent() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope[AFTER_ANSWER].append(lambda: events.append("work"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"event", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        events.append("app returned")

    async def send(message: Message) -> None:
        events.append(f"{message['type']} more={bool(message.get('more_body'))}")

    await AfterAnswer(app)({"type": "http"}, _receive, send)
    assert events == [
        "http.response.start more=False",
        "http.response.body more=True",
        "http.response.body more=False",
        "work",
        "app returned",
    ]


async def test_queued_work_runs_when_the_request_ends_without_an_answer() -> None:
    ran: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope[AFTER_ANSWER].append(lambda: ran.append("work"))
        raise ConnectionResetError("client went away")

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    with pytest.raises(ConnectionResetError):
        await AfterAnswer(app)({"type": "http"}, _receive, send)
    assert ran == ["work"]


async def test_services_defer_to_the_request_or_start_at_once() -> None:
    services = Services(Settings(ha_token="unused"))
    written: list[str] = []

    async def write(what: str) -> None:
        written.append(what)

    queued: list[Any] = []
    services.after_answer(SimpleNamespace(scope={AFTER_ANSWER: queued}), lambda: write("http"))
    services.after_answer(None, lambda: write("stdio"))  # no request: started now
    await asyncio.gather(*services._background)
    assert written == ["stdio"]
    assert len(queued) == 1
    queued.pop()()
    await asyncio.gather(*services._background)
    assert written == ["stdio", "http"]
