"""MCP client sessions (the real MCP Python client) over streamable HTTP and stdio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

from addon_fakes import FakeHomeAssistant, free_port, port_open, wait_until
import httpx2
from mcp.client.session import ClientSession, ElicitationFnT
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

SERVER_TOKEN = "server-token-0123456789"
USER_TOKEN = "user-token-abcdef"
NON_ADMIN_TOKEN = "member-token-777777"
ADDON_DIR = Path(__file__).resolve().parents[1]
# A raw JSON-RPC initialize request, for checks of the HTTP layer below the MCP client.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "addon-tests", "version": "1"},
    },
}
HTTP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def data(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a tool call that must have succeeded."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    """The text of a tool call that must have failed."""
    assert result.is_error
    block = result.content[0]
    assert block.type == "text"
    return block.text


async def post_initialize(url: str, **headers: str) -> httpx2.Response:
    """POST :data:`INITIALIZE` to ``url`` with extra headers (e.g. ``Authorization``)."""
    async with httpx2.AsyncClient(timeout=30) as client:
        return await client.post(url, json=INITIALIZE, headers={**HTTP_HEADERS, **headers})


def server_env(ha: FakeHomeAssistant, mqtt_port: int, **extra: str) -> dict[str, str]:
    env = {
        "HA_URL": ha.url,
        "HA_TOKEN": SERVER_TOKEN,
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(mqtt_port),
        "PYTHONPATH": str(ADDON_DIR),
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


@asynccontextmanager
async def http_session(
    url: str, token: str = USER_TOKEN, elicitation: ElicitationFnT | None = None
) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60)
        ) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write, elicitation_callback=elicitation) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def stdio_session(
    env: dict[str, str], elicitation: ElicitationFnT | None = None
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "esp_mcp_server", "--transport", "stdio"], env=env
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, elicitation_callback=elicitation) as session,
    ):
        await session.initialize()
        yield session


@contextmanager
def http_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """The server as a process on streamable HTTP; yields the /mcp URL."""
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "esp_mcp_server", "--transport", "http", "--port", str(port)],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: port_open(port) or proc.poll() is not None, what="the MCP server to listen"
            )
            assert proc.poll() is None, log_path.read_text()
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            proc.wait(10)
