"""Unit tests for the pure history helpers: windows, statistics, downsampling, rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math

import pytest

from esp_mcp_server import stats

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), ("2w", 1209600), ("1.5h", 5400)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert stats.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1y", "h", "-1h", "0h", "1 hour"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(stats.WindowError):
        stats.parse_duration(text)


def test_resolve_window_relative() -> None:
    assert stats.resolve_window("1h", None, None, NOW) == (NOW - timedelta(hours=1), NOW)


def test_resolve_window_none_means_now() -> None:
    assert stats.resolve_window(None, None, None, NOW) is None


def test_resolve_window_iso_start_end() -> None:
    start, end = stats.resolve_window(None, "2026-01-30T00:00:00Z", "2026-01-31T00:00:00", NOW) or (
        None,
        None,
    )
    assert start == datetime(2026, 1, 30, tzinfo=UTC)
    assert end == datetime(2026, 1, 31, tzinfo=UTC)


def test_resolve_window_start_only_ends_now() -> None:
    assert stats.resolve_window(None, "2h", None, NOW) == (NOW - timedelta(hours=2), NOW)


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ("1h", "2026-01-30T00:00:00Z", None),
        (None, None, "2026-01-30T00:00:00Z"),
        (None, "2026-01-31T13:00:00Z", None),
        ("400d", None, None),
        (None, "yesterday", None),
    ],
)
def test_resolve_window_rejects(window: str | None, start: str | None, end: str | None) -> None:
    with pytest.raises(stats.WindowError):
        stats.resolve_window(window, start, end, NOW)


def test_summarize_basic() -> None:
    points = [(0.0, 1.0), (3600.0, 2.0), (7200.0, 3.0), (10800.0, 3.0)]
    summary = stats.summarize(points)
    assert summary is not None
    assert summary.count == 4
    assert summary.min == 1.0
    assert summary.max == 3.0
    assert summary.mean == pytest.approx(2.25)
    assert summary.stdev == pytest.approx(math.sqrt(((1.25**2) + 0.25**2 + 2 * 0.75**2) / 3))
    assert summary.trend_per_hour == pytest.approx(0.7)
    assert summary.last_change == 7200.0
    out = summary.as_dict()
    assert out["last_change"] == "1970-01-01T02:00:00Z"
    assert out["first"] == 1
    assert out["last"] == 3


def test_summarize_empty_and_single() -> None:
    assert stats.summarize([]) is None
    one = stats.summarize([(5.0, 7.5)])
    assert one is not None
    assert one.stdev == 0.0
    assert one.trend_per_hour is None
    assert one.last_change is None
    assert "trend_per_hour" not in one.as_dict()


def test_slope_zero_time_spread_is_undefined() -> None:
    assert stats.slope_per_hour([(10.0, 1.0), (10.0, 5.0)]) is None


def test_lttb_keeps_budget_and_ends() -> None:
    points = [(float(i), math.sin(i / 10.0)) for i in range(1000)]
    out = stats.lttb(points, 50)
    assert len(out) == 50
    assert out[0] == points[0]
    assert out[-1] == points[-1]
    assert [p[0] for p in out] == sorted(p[0] for p in out)


def test_lttb_keeps_a_spike() -> None:
    points = [(float(i), 0.0) for i in range(500)]
    points[250] = (250.0, 100.0)
    out = stats.lttb(points, 20)
    assert (250.0, 100.0) in out


def test_lttb_small_inputs_unchanged() -> None:
    points = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert stats.lttb(points, 10) == points
    assert stats.lttb(points, 2) == [points[0], points[-1]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (23.456789, 23.46),
        (0.0012345, 0.001234),
        (1234.5678, 1235),
        (20.0, 20),
        (0, 0),
        (-3.14159, -3.142),
    ],
)
def test_round_value(value: float, expected: float) -> None:
    assert stats.round_value(value) == expected


def test_iso_roundtrip() -> None:
    ts = 1_769_860_800.0
    assert stats.iso(ts) == "2026-01-31T12:00:00Z"
    assert stats.parse_iso(stats.iso(ts)) == ts
    assert stats.iso(ts + 0.6) == "2026-01-31T12:00:01Z"


def test_age_seconds_never_negative() -> None:
    assert stats.age_seconds(10.0, 5.0) == 0.0
    assert stats.age_seconds(5.0, 10.04) == 5.0
