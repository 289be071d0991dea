"""Confirmation of actuators that require it: elicitation (accept, decline, cancel, errors and
timeouts, which are "not done"), the add-on's policy above the device's word, and the two-step
confirm token (valid, wrong arguments, reused, expired) only where the option allows it.

The session-wide HTTP server runs with CONFIRM_TOKEN_FALLBACK=true; stdio servers without it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
import sys
from typing import Any

from addon_clients import (
    SERVER_TOKEN,
    USER_TOKEN,
    data,
    error_text,
    http_server,
    http_session,
    stdio_session,
)
from addon_fakes import DeviceResponder, FakeHomeAssistant, wait_until
import httpx2
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitRequestParams, ElicitResult, ErrorData
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
import pytest

VALVE = {"device_id": "greenhouse-1", "actuator_id": "valve"}


class Answer:
    """An elicitation callback that answers with a fixed action and records what it was asked."""

    def __init__(self, action: str, confirm: bool = True) -> None:
        self.action = action
        self.confirm = confirm
        self.asked: list[ElicitRequestParams] = []

    async def __call__(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        self.asked.append(params)
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.confirm})
        return ElicitResult(action=self.action)  # type: ignore[arg-type]


def valve_writes(responder: DeviceResponder) -> list[dict[str, Any]]:
    return [c for c in responder.commands("greenhouse-1") if c.get("action") == "write"]


async def test_elicitation_accepted(http_url: str, responder: DeviceResponder) -> None:
    answer = Answer("accept")
    async with http_session(http_url, elicitation=answer) as session:
        result = data(await session.call_tool("control_actuator", {**VALVE, "value": 35}))
    assert len(answer.asked) == 1
    assert '"Irrigation valve" (valve) on greenhouse-1 to 35 %' in answer.asked[0].message
    assert result["status"] == "done"
    assert result["value"] == 35
    assert valve_writes(responder)[-1]["value"] == 35


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Answer("decline"), "declined"),
        (Answer("cancel"), "cancelled"),
        (Answer("accept", False), "declined"),
    ],
)
async def test_elicitation_refused_sends_nothing(
    http_url: str,
    responder: DeviceResponder,
    fake_ha: FakeHomeAssistant,
    answer: Answer,
    status: str,
) -> None:
    before = len(valve_writes(responder))
    logged = len(fake_ha.logbook)
    async with http_session(http_url, elicitation=answer) as session:
        result = data(await session.call_tool("control_actuator", {**VALVE, "value": 40}))
    assert result["status"] == status
    assert "value" not in result
    assert len(valve_writes(responder)) == before
    wait_until(lambda: len(fake_ha.logbook) > logged, what="the logbook entry")
    assert status in fake_ha.logbook[logged]["data"]["message"]


async def test_token_flow_when_elicitation_unsupported(
    http_url: str, responder: DeviceResponder
) -> None:
    before = len(valve_writes(responder))
    async with http_session(http_url) as session:
        first = await session.call_tool("control_actuator", {**VALVE, "value": 45})
        pending = data(first)
        assert len(valve_writes(responder)) == before
        token = pending["confirm_token"]
        wrong = await session.call_tool(
            "control_actuator", {**VALVE, "value": 50, "confirm_token": token}
        )
        assert len(valve_writes(responder)) == before
        done = data(
            await session.call_tool(
                "control_actuator", {**VALVE, "value": 45, "confirm_token": token}
            )
        )
        reused = await session.call_tool(
            "control_actuator", {**VALVE, "value": 45, "confirm_token": token}
        )
    assert pending["status"] == "confirmation_required"
    assert pending["effect"] == 'set "Irrigation valve" (valve) on greenhouse-1 to 45 %'
    assert pending["expires_at"].endswith("Z")
    text = first.content[0]
    assert text.type == "text"
    assert "Ask the user" in text.text
    assert "does not match these arguments" in error_text(wrong)
    assert done["status"] == "done"
    assert done["value"] == 45
    assert "already used" in error_text(reused)
    assert [c["value"] for c in valve_writes(responder)[before:]] == [45]


async def test_elicitation_error_is_not_done(http_url: str, responder: DeviceResponder) -> None:
    """A client that answers the elicitation with an error has not confirmed anything: no
    token either (the token fallback is on for this server, and must not be the way out)."""
    before = len(valve_writes(responder))

    async def broken(context: ClientRequestContext, params: ElicitRequestParams) -> ErrorData:
        return ErrorData(code=-32603, message="dialog crashed")

    async with http_session(http_url, elicitation=broken) as session:
        result = data(await session.call_tool("control_actuator", {**VALVE, "value": 20}))
    assert result["status"] == "cancelled"
    assert "confirm_token" not in result
    assert len(valve_writes(responder)) == before


async def test_elicitation_timeout_is_not_done(
    env: dict[str, str], responder: DeviceResponder
) -> None:
    """The user never answers: after the confirmation expiry the call is not done, and the
    device got nothing."""
    before = len(valve_writes(responder))
    never = asyncio.Event()
    asked: list[str] = []

    async def silent(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        await never.wait()
        return ElicitResult(action="accept", content={"confirm": True})

    async with stdio_session({**env, "CONFIRM_TTL_S": "1"}, elicitation=silent) as session:
        result = data(await session.call_tool("control_actuator", {**VALVE, "value": 25}))
        never.set()
        after = data(await session.call_tool("control_actuator", {**VALVE, "action": "read"}))
    assert len(asked) == 1
    assert result["status"] == "cancelled"
    assert after["status"] == "done"
    assert len(valve_writes(responder)) == before


async def test_token_refused_unless_enabled(
    env: dict[str, str], responder: DeviceResponder
) -> None:
    """Without elicitation and without the option, the model gets no token to confirm with."""
    before = len(valve_writes(responder))
    async with stdio_session(env) as session:
        refused = await session.call_tool("control_actuator", {**VALVE, "value": 30})
        forged = await session.call_tool(
            "control_actuator", {**VALVE, "value": 30, "confirm_token": "a.1.b"}
        )
    assert "cannot ask them" in error_text(refused)
    assert "confirm_token_fallback" in error_text(forged)
    assert len(valve_writes(responder)) == before


async def test_policy_confirms_what_the_device_does_not(
    env: dict[str, str], responder: DeviceResponder
) -> None:
    """lamp-1's led says requires_confirmation false; the add-on's policy says confirm."""
    policy = '{"device":"lamp-1","actuator":"led","policy":"confirm"}'
    before = len(responder.commands("lamp-1"))
    answer = Answer("decline")
    async with stdio_session({**env, "ACTUATOR_POLICY": policy}, elicitation=answer) as session:
        result = data(
            await session.call_tool(
                "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
            )
        )
    assert len(answer.asked) == 1
    assert result["status"] == "declined"
    assert len(responder.commands("lamp-1")) == before


async def test_policy_deny_and_read_only(env: dict[str, str], responder: DeviceResponder) -> None:
    policy = '{"device":"lamp-1","actuator":"led","policy":"deny"}'
    led = {"device_id": "lamp-1", "actuator_id": "led"}
    async with stdio_session({**env, "ACTUATOR_POLICY": policy}) as session:
        denied = await session.call_tool("control_actuator", {**led, "value": True})
        read = data(await session.call_tool("control_actuator", {**led, "action": "read"}))
    async with stdio_session({**env, "READ_ONLY": "true"}) as session:
        read_only = await session.call_tool(
            "control_actuator", {"device_id": "lamp-1", "actuator_id": "brightness", "value": 9}
        )
    assert "actuator_policy: deny" in error_text(denied)
    assert read["status"] == "done"
    assert "read-only" in error_text(read_only)


async def test_token_bound_to_the_user(
    env: dict[str, str], responder: DeviceResponder, tmp_path: Path
) -> None:
    """A confirm token works only for the user (HA token) whose call it was issued to. (A
    server of its own: the session-wide one has seen bad tokens from this address, and holds
    back checks of new tokens from it for a minute.)"""
    before = len(valve_writes(responder))
    with http_server({**env, "CONFIRM_TOKEN_FALLBACK": "true"}, tmp_path / "server.log") as url:
        async with http_session(url) as session:
            pending = data(await session.call_tool("control_actuator", {**VALVE, "value": 55}))
        async with http_session(url, SERVER_TOKEN) as other:
            stolen = await other.call_tool(
                "control_actuator",
                {**VALVE, "value": 55, "confirm_token": pending["confirm_token"]},
            )
    assert "by the same user" in error_text(stolen)
    assert len(valve_writes(responder)) == before


async def test_read_needs_no_confirmation(http_url: str, responder: DeviceResponder) -> None:
    async with http_session(http_url) as session:
        result = data(await session.call_tool("control_actuator", {**VALVE, "action": "read"}))
    assert result["status"] == "done"
    assert isinstance(result["value"], int)
    assert responder.commands("greenhouse-1")[-1]["action"] == "read"


async def test_expired_token_rejected(env: dict[str, str], responder: DeviceResponder) -> None:
    before = len(valve_writes(responder))
    async with stdio_session(
        {**env, "CONFIRM_TTL_S": "0", "CONFIRM_TOKEN_FALLBACK": "true"}
    ) as session:
        pending = data(await session.call_tool("control_actuator", {**VALVE, "value": 60}))
        expired = await session.call_tool(
            "control_actuator", {**VALVE, "value": 60, "confirm_token": pending["confirm_token"]}
        )
    assert "expired" in error_text(expired)
    assert len(valve_writes(responder)) == before


async def test_elicitation_over_stdio(env: dict[str, str], responder: DeviceResponder) -> None:
    answer = Answer("accept")
    async with stdio_session(env, elicitation=answer) as session:
        result = data(await session.call_tool("control_actuator", {**VALVE, "value": 65}))
    assert result["status"] == "done"
    assert result["value"] == 65
    assert len(answer.asked) == 1


# ---- 2026-07-28 protocol: confirmation through an input_required round trip -----------------


@asynccontextmanager
async def modern_client_http(url: str, elicitation: Answer | None) -> AsyncIterator[Client]:
    """The SDK's high-level client: it negotiates the 2026-07-28 protocol when it can."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {USER_TOKEN}"}) as http,
        Client(
            streamable_http_client(url, http_client=http), elicitation_callback=elicitation
        ) as client,
    ):
        yield client


async def test_modern_protocol_elicitation_accepted(
    http_url: str, responder: DeviceResponder
) -> None:
    answer = Answer("accept")
    async with modern_client_http(http_url, answer) as client:
        assert client.session.protocol_version in MODERN_PROTOCOL_VERSIONS
        result = data(await client.call_tool("control_actuator", {**VALVE, "value": 70}))
    assert result["status"] == "done"
    assert result["value"] == 70
    assert len(answer.asked) == 1
    assert "to 70 %" in answer.asked[0].message
    assert valve_writes(responder)[-1]["value"] == 70


async def test_modern_protocol_elicitation_declined(
    env: dict[str, str], responder: DeviceResponder
) -> None:
    before = len(valve_writes(responder))
    answer = Answer("decline")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "esp_mcp_server", "--transport", "stdio"], env=env
    )
    async with Client(params, elicitation_callback=answer) as client:
        assert client.session.protocol_version in MODERN_PROTOCOL_VERSIONS
        result = data(await client.call_tool("control_actuator", {**VALVE, "value": 75}))
    assert result["status"] == "declined"
    assert len(answer.asked) == 1
    assert len(valve_writes(responder)) == before


async def test_modern_protocol_without_elicitation_gets_token(
    http_url: str, responder: DeviceResponder
) -> None:
    before = len(valve_writes(responder))
    async with modern_client_http(http_url, None) as client:
        pending = data(await client.call_tool("control_actuator", {**VALVE, "value": 80}))
        assert len(valve_writes(responder)) == before
        done = data(
            await client.call_tool(
                "control_actuator",
                {**VALVE, "value": 80, "confirm_token": pending["confirm_token"]},
            )
        )
    assert pending["status"] == "confirmation_required"
    assert done["value"] == 80
