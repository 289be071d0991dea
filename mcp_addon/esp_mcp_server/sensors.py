"""The sensor tool: read_sensor (current value, statistics and a downsampled series)."""

from __future__ import annotations

from datetime import datetime, timedelta
import logging
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CallToolResult,
)
from pydantic import Field

from . import stats
from .common import (
    RO,
    DeviceId,
    _fmt,
    _now,
    _numeric_series,
    _result,
    _state_ts,
    _state_value,
    tool_errors,
)
from .models import (
    SensorReading,
    SensorStats,
    WindowInfo,
)
from .services import Services

_LOGGER = logging.getLogger(__name__)

STATISTICS_AFTER = timedelta(hours=48)
DAILY_AFTER = timedelta(days=31)


def register(server: MCPServer[Any], services: Services) -> None:
    """Add read_sensor to `server`."""
    # ---- read_sensor ------------------------------------------------------------------------

    @server.tool(
        title="Read a sensor",
        annotations=RO,
        description=(
            "Current value of one sensor with unit, quality and age. With window or start/end, "
            "also statistics and a series of at most `points` (over 48 h: hourly/daily "
            "long-term statistics)."
        ),
    )
    @tool_errors
    async def read_sensor(
        *,
        device_id: DeviceId,
        sensor_id: Annotated[str, Field(description="sensor id, e.g. temperature")],
        window: Annotated[str | None, Field(description="e.g. 15m, 1h, 24h, 7d")] = None,
        start: Annotated[
            str | None, Field(description="ISO 8601 start (instead of window)")
        ] = None,
        end: Annotated[str | None, Field(description="ISO 8601 end, default now")] = None,
        points: Annotated[int, Field(ge=2, le=500, description="max points in series")] = 24,
    ) -> Annotated[CallToolResult, SensorReading]:
        device = await services.device(device_id)
        sensor = device.sensor(sensor_id)
        value_type = str(sensor.get("value_type", "number"))
        entity_id = device.entities("sensors").get(sensor_id)
        if entity_id is None:
            raise ToolError(f"sensor {sensor_id} on {device_id} has no Home Assistant entity yet")
        now = _now()
        span = stats.resolve_window(window, start, end, now)
        state = await services.ha.get_state(entity_id)
        reading = SensorReading(device_id=device_id, sensor_id=sensor_id, online=device.online)
        attrs = state.get("attributes", {}) if state else {}
        unit = attrs.get("unit_of_measurement") or sensor.get("unit")
        reading.unit = str(unit) if unit else None
        if state is None:
            reading.state = "unknown"
        else:
            reading.value = _state_value(str(state.get("state", "")), value_type)
            if reading.value is None:
                reading.state = str(state.get("state", "unknown"))
            quality = attrs.get("quality")
            if isinstance(quality, int | float):
                reading.quality = quality
            ts = _state_ts(state)
            if ts is not None:
                reading.ts = stats.iso(ts)
                reading.age_s = stats.age_seconds(ts, now.timestamp())
        text = f"{device_id}/{sensor_id} = " + (
            _fmt(reading.value, reading.unit) if reading.value is not None else str(reading.state)
        )
        if reading.age_s is not None:
            text += f" ({reading.age_s:g} s ago)"
        if span is not None:
            text += await fill_window(
                reading=reading,
                entity_id=entity_id,
                value_type=value_type,
                span=span,
                points=points,
            )
        return _result(reading, text)

    async def fill_window(
        *,
        reading: SensorReading,
        entity_id: str,
        value_type: str,
        span: tuple[datetime, datetime],
        points: int,
    ) -> str:
        begin, finish = span
        numeric = value_type in ("number", "boolean")
        series: list[tuple[float, float]] = []
        source: Literal["history", "statistics"] = "history"
        period = None
        summary = None
        if numeric and value_type == "number" and finish - begin > STATISTICS_AFTER:
            period = "day" if finish - begin > DAILY_AFTER else "hour"
            rows = await services.ha.statistics(entity_id, begin, finish, period)
            rows = [r for r in rows if isinstance(r.get("mean"), int | float)]
            if rows:
                source = "statistics"
                series = [(float(r["start"]), float(r["mean"])) for r in rows]
                summary = stats.summarize(series)
                mins = [float(r["min"]) for r in rows if isinstance(r.get("min"), int | float)]
                maxs = [float(r["max"]) for r in rows if isinstance(r.get("max"), int | float)]
                if summary is not None and mins and maxs:
                    summary = stats.Summary(
                        **{**summary.__dict__, "min": min(mins), "max": max(maxs)}
                    )
        if source == "history":
            period = None
            rows_h = await services.ha.history(entity_id, begin, finish)
            if numeric:
                series = [
                    (max(t, begin.timestamp()), v) for t, v in _numeric_series(rows_h, value_type)
                ]
                summary = stats.summarize(series)
            else:
                changes: list[tuple[str, str]] = []
                for t, state_text in rows_h:
                    if not changes or changes[-1][1] != state_text:
                        changes.append((stats.iso(t), state_text))
                changes = changes[-points:]
                reading.changes = changes
        reading.window = WindowInfo(
            start=stats.iso(begin.timestamp()),
            end=stats.iso(finish.timestamp()),
            source=source,
            period=period,
        )
        if not numeric:
            return f"; {len(reading.changes or [])} change(s) in window"
        if summary is None:
            return "; no recorded values in window"
        reading.stats = SensorStats(**summary.as_dict())
        reading.series = [
            (stats.iso(t), stats.round_value(v)) for t, v in stats.lttb(series, points)
        ]
        out = reading.stats
        unit = f" {reading.unit}" if reading.unit else ""
        text = f"; {source} {out.count} pts: min {out.min}, max {out.max}, mean {out.mean}{unit}"
        if out.trend_per_hour is not None:
            text += f", trend {out.trend_per_hour:+g}/h"
        return text
