"""What the tool families share: annotations, argument types, error handling, results,
and the conversions of Home Assistant states and device rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
import functools
import json
import logging
import math
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CallToolResult,
    ElicitResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from . import stats
from .ha_client import HAError
from .models import (
    DeviceMetricsRow,
    DeviceSummary,
    Scalar,
)
from .mqtt_commands import BrokerUnavailable, DeviceTimeout
from .services import Device, command_error

_LOGGER = logging.getLogger(__name__)

RO = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
RO_LIVE = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True)
# Not idempotent: toggle and trigger act again on every call.
CONTROL = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)

DeviceId = Annotated[str, Field(description="device id from list_devices, e.g. greenhouse-1")]
Limit = Annotated[int, Field(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Field(description="next_cursor of the previous page")]


def tool_errors[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn infrastructure failures into tool errors with a message an agent can act on."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except HAError as err:
            raise ToolError(str(err)) from err
        except (BrokerUnavailable, DeviceTimeout) as err:
            raise command_error(err) from err
        except stats.WindowError as err:
            raise ToolError(str(err)) from err

    return wrapper


def _result(model: BaseModel, text: str) -> CallToolResult:
    """The summary, then the structured result serialised as JSON text (for clients that do
    not read structured_content), and the structured result itself."""
    structured = model.model_dump(mode="json", exclude_none=True)
    serialised = json.dumps(structured, separators=(",", ":"), ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text), TextContent(type="text", text=serialised)],
        structured_content=structured,
    )


def _page[T](items: list[T], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """The page of ``items`` that ``cursor`` points at, and the cursor of the next page."""
    offset = 0
    if cursor:
        if not cursor.isdigit():
            raise ToolError("cursor is not valid; pass next_cursor from the previous call")
        offset = int(cursor)
    nxt = str(offset + limit) if offset + limit < len(items) else None
    return items[offset : offset + limit], nxt


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(value: Any, unit: Any = None) -> str:
    text = json.dumps(value) if isinstance(value, bool | str) else f"{value}"
    return f"{text} {unit}" if unit else text


def _to_number(state: str) -> float | None:
    try:
        value = float(state)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _state_value(state: str, value_type: str) -> Scalar | None:
    if state in ("unavailable", "unknown", ""):
        return None
    if value_type == "number":
        number = _to_number(state)
        return None if number is None else stats.round_value(number, 6)
    if value_type == "boolean":
        return state == "on"
    return state


def _numeric_series(rows: list[tuple[float, str]], value_type: str) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for ts, state in rows:
        if value_type == "boolean":
            if state in ("on", "off"):
                out.append((ts, 1.0 if state == "on" else 0.0))
        else:
            number = _to_number(state)
            if number is not None:
                out.append((ts, number))
    return out


def _state_ts(state: dict[str, Any]) -> float | None:
    for key in ("last_reported", "last_updated", "last_changed"):
        value = state.get(key)
        if isinstance(value, str):
            try:
                return stats.parse_iso(value)
            except ValueError:
                continue
    return None


async def progress(ctx: Context, done: float, total: float | None, message: str) -> None:
    """A progress notification, for callers that asked for them (a no-op otherwise); one that
    cannot be sent changes nothing."""
    try:
        await ctx.report_progress(done, total, message)
    except Exception as err:  # the call goes on without it
        _LOGGER.debug("progress notification not sent: %s", err)


def _who(ctx: Context) -> str:
    try:
        params = ctx.session.client_params
    except ValueError:
        return "MCP client"
    if params is not None and params.client_info.name:
        return f"MCP client {params.client_info.name}"
    return "MCP client"


def _bearer(ctx: Context) -> str | None:
    try:
        headers = ctx.headers
    except ValueError:
        return None
    if not headers:
        return None
    value = headers.get("authorization") or headers.get("Authorization") or ""
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def _supports_elicitation(ctx: Context) -> bool:
    try:
        caps = ctx.client_capabilities
    except ValueError:
        return False
    return caps is not None and caps.elicitation is not None


def _modern(ctx: Context) -> bool:
    try:
        return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    except ValueError:
        return False


def _elicit_outcome(response: object) -> str:
    """accepted / declined / cancelled from an elicitation answer."""
    if not isinstance(response, ElicitResult):
        return "cancelled"
    if response.action == "accept":
        content = response.content or {}
        return "accepted" if content.get("confirm") is True else "declined"
    return "declined" if response.action == "decline" else "cancelled"


def _summary_row(device: Device) -> DeviceSummary:
    return DeviceSummary(
        id=device.id,
        name=device.name,
        online=device.online,
        last_seen=device.last_seen,
        area=device.area,
        sensors=len(device.sensors),
        actuators=len(device.actuators),
    )


def _matches_capability(device: Device, capability: str) -> list[str]:
    wanted = capability.strip().lower()
    out = [
        f"sensor:{s['id']}"
        for s in device.sensors
        if wanted in (str(s["id"]).lower(), str(s.get("type", "")).lower())
    ]
    out += [
        f"actuator:{a['id']}"
        for a in device.actuators
        if wanted in (str(a["id"]).lower(), str(a.get("type", "")).lower())
    ]
    return out


def _metrics_row(device: Device, now: float) -> DeviceMetricsRow:
    metrics = device.metrics or {}
    uptime = metrics.get("uptime_s")
    sent = metrics.get("messages_sent")
    errors = sum(
        int(metrics.get(k) or 0)
        for k in ("sensor_read_errors", "actuator_errors", "connection_failures")
    )
    received = device.raw.get("metrics_received")
    age = None
    if isinstance(received, str):
        try:
            age = stats.age_seconds(stats.parse_iso(received), now)
        except ValueError:
            age = None
    rate = None
    if isinstance(uptime, int | float) and uptime > 0 and isinstance(sent, int | float):
        rate = stats.round_value(sent / uptime * 60.0, 3)
    return DeviceMetricsRow(
        device_id=device.id,
        online=device.online,
        uptime_s=uptime if isinstance(uptime, int | float) else None,
        rssi=metrics.get("rssi") if isinstance(metrics.get("rssi"), int | float) else None,
        free_heap=(
            metrics.get("free_heap") if isinstance(metrics.get("free_heap"), int | float) else None
        ),
        msgs_per_min=rate,
        errors=errors if metrics else None,
        metrics_age_s=age,
    )
