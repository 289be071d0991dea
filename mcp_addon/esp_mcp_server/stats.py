"""Pure helpers for sensor history: time windows, summary statistics, downsampling, rounding.

Nothing here does I/O; timestamps are Unix seconds (float) unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import math
import re
from typing import Any

_WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_WINDOW = timedelta(days=366)

Point = tuple[float, float]


class WindowError(ValueError):
    """A window or start/end that cannot be understood; the message says what is accepted."""


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "15m", "1h", "7d", "2w" into a timedelta."""
    match = _WINDOW_RE.match(text)
    if match is None:
        raise WindowError(
            f"window {text!r} not understood: use a number and a unit s, m, h, d or w "
            "(e.g. '1h', '7d'), or give start/end as ISO 8601 times"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise WindowError("window must be longer than zero")
    return timedelta(seconds=seconds)


def parse_time(text: str, now: datetime) -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or a relative duration meaning `now - duration`."""
    if _WINDOW_RE.match(text):
        return now - parse_duration(text)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise WindowError(
            f"time {text!r} not understood: use ISO 8601 like '2026-01-31T08:00:00Z' or a "
            "duration ago like '2h'"
        ) from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def resolve_window(
    window: str | None, start: str | None, end: str | None, now: datetime
) -> tuple[datetime, datetime] | None:
    """Turn a window ("1h") or a start/end pair into absolute (start, end); None: "now only"."""
    if window is None and start is None and end is None:
        return None
    if window is not None and start is not None:
        raise WindowError("give either window or start (with optional end), not both")
    end_dt = parse_time(end, now) if end is not None else now
    if window is not None:
        start_dt = end_dt - parse_duration(window)
    elif start is not None:
        start_dt = parse_time(start, now)
    else:
        raise WindowError("end without start: add start or window")
    if start_dt >= end_dt:
        raise WindowError("start must be before end")
    if end_dt - start_dt > MAX_WINDOW:
        raise WindowError("window longer than 366 days")
    return start_dt, end_dt


def round_value(value: float, significant: int = 4) -> float | int:
    """Round to `significant` digits (keeping integers as integers) so outputs stay short."""
    if isinstance(value, bool):
        return int(value)
    if not math.isfinite(value):
        return value
    if value == 0:
        return 0
    if float(value).is_integer() and abs(value) < 1e15:
        return int(value)
    digits = significant - math.floor(math.log10(abs(value))) - 1
    rounded = round(value, max(digits, 0))
    if float(rounded).is_integer():
        return int(rounded)
    return rounded


@dataclass(frozen=True)
class Summary:
    """Summary statistics of a numeric series."""

    count: int
    min: float
    max: float
    mean: float
    stdev: float
    first: float
    last: float
    trend_per_hour: float | None
    last_change: float | None
    """Unix seconds of the most recent point whose value differs from the one before it."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": self.count,
            "min": round_value(self.min),
            "max": round_value(self.max),
            "mean": round_value(self.mean),
            "stdev": round_value(self.stdev, 3),
            "first": round_value(self.first),
            "last": round_value(self.last),
        }
        if self.trend_per_hour is not None:
            out["trend_per_hour"] = round_value(self.trend_per_hour, 3)
        if self.last_change is not None:
            out["last_change"] = iso(self.last_change)
        return out


def summarize(points: list[Point]) -> Summary | None:
    """Statistics of time-ordered (ts, value) points; None when there are none."""
    if not points:
        return None
    values = [v for _, v in points]
    n = len(values)
    mean = math.fsum(values) / n
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Summary(
        count=n,
        min=min(values),
        max=max(values),
        mean=mean,
        stdev=stdev,
        first=values[0],
        last=values[-1],
        trend_per_hour=slope_per_hour(points),
        last_change=last_change(points),
    )


def slope_per_hour(points: list[Point]) -> float | None:
    """Least-squares slope of value over time, in units per hour; None if it is undefined."""
    if len(points) < 2:
        return None
    t0 = points[0][0]
    xs = [(t - t0) / 3600.0 for t, _ in points]
    ys = [v for _, v in points]
    n = len(points)
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def last_change(points: list[Point]) -> float | None:
    """Time of the latest point whose value differs from its predecessor."""
    for i in range(len(points) - 1, 0, -1):
        if points[i][1] != points[i - 1][1]:
            return points[i][0]
    return None


def lttb(points: list[Point], budget: int) -> list[Point]:
    """Largest-Triangle-Three-Buckets downsampling to at most `budget` points (keeps both ends)."""
    n = len(points)
    if budget >= n or n <= 2:
        return list(points)
    if budget < 3:
        return [points[0], points[-1]][: max(budget, 1)] if budget >= 1 else []
    sampled = [points[0]]
    every = (n - 2) / (budget - 2)
    a = 0
    for i in range(budget - 2):
        avg_start = math.floor((i + 1) * every) + 1
        avg_end = min(math.floor((i + 2) * every) + 1, n)
        avg_range = points[avg_start:avg_end] or [points[-1]]
        avg_x = math.fsum(p[0] for p in avg_range) / len(avg_range)
        avg_y = math.fsum(p[1] for p in avg_range) / len(avg_range)
        range_start = math.floor(i * every) + 1
        range_end = math.floor((i + 1) * every) + 1
        ax, ay = points[a]
        best_area = -1.0
        best = range_start
        for j in range(range_start, min(range_end, n - 1)):
            px, py = points[j]
            area = abs((ax - avg_x) * (py - ay) - (ax - px) * (avg_y - ay))
            if area > best_area:
                best_area = area
                best = j
        sampled.append(points[best])
        a = best
    sampled.append(points[-1])
    return sampled


def iso(ts: float) -> str:
    """Unix seconds -> compact ISO 8601 UTC to the second ("2026-01-31T08:00:05Z")."""
    dt = datetime.fromtimestamp(round(ts), tz=UTC)
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """ISO 8601 (naive means UTC) -> Unix seconds."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def age_seconds(ts: float, now: float) -> float:
    """Non-negative age in seconds, rounded to 0.1 s."""
    return round(max(now - ts, 0.0), 1)
