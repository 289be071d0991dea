"""A real MCP client session over streamable HTTP with a bearer token (mcp SDK).

The only harness module that needs the ``mcp`` package (installed in the add-on env).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
import json
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import TextContent


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned: the text summary, structured content and the error flag."""

    text: str
    data: dict[str, Any]
    is_error: bool

    def __str__(self) -> str:
        return self.text


class McpSession:
    """Thin wrapper around ``ClientSession`` returning :class:`ToolResult`."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def tool_names(self) -> list[str]:
        listing = await self.session.list_tools()
        return [tool.name for tool in listing.tools]

    async def call(self, name: str, **arguments: Any) -> ToolResult:
        result = await self.session.call_tool(name, arguments)
        texts = [block.text for block in result.content if isinstance(block, TextContent)]
        data = result.structured_content or {}
        if not data and texts:
            try:
                parsed = json.loads(texts[0])
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                data = parsed
        return ToolResult(text="\n".join(texts), data=dict(data), is_error=bool(result.is_error))


@asynccontextmanager
async def mcp_session(url: str, token: str | None) -> AsyncIterator[McpSession]:
    """Connect, initialise and yield an :class:`McpSession`."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield McpSession(session)
