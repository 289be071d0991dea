"""Output models of the tools (their JSON schemas are the tools' output schemas).

Optional fields are left out of the structured content when empty, to keep answers short.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Scalar = bool | int | float | str


class DeviceSummary(BaseModel):
    id: str
    name: str | None = None
    online: bool
    last_seen: str | None = Field(default=None, description="ISO 8601 time of the last message")
    area: str | None = None
    sensors: int = Field(description="number of sensors")
    actuators: int = Field(description="number of actuators")


class DeviceList(BaseModel):
    devices: list[DeviceSummary]
    total: int = Field(description="devices matching the filters, all pages")
    online: int = Field(description="online devices among those matching")
    next_cursor: str | None = Field(default=None, description="pass as cursor for the next page")


class WindowInfo(BaseModel):
    start: str
    end: str
    source: Literal["history", "statistics"] = Field(
        description="history: recorded states; statistics: hourly/daily long-term statistics"
    )
    period: str | None = Field(default=None, description="statistics period (hour or day)")


class SensorStats(BaseModel):
    count: int
    min: float
    max: float
    mean: float
    stdev: float
    first: float
    last: float
    trend_per_hour: float | None = Field(
        default=None, description="least-squares slope, units per hour"
    )
    last_change: str | None = Field(default=None, description="when the value last changed")


class SensorReading(BaseModel):
    device_id: str
    sensor_id: str
    value: Scalar | None = Field(default=None, description="current value; absent if unavailable")
    unit: str | None = None
    state: str | None = Field(
        default=None, description="set when there is no value: unavailable/unknown"
    )
    quality: float | None = Field(default=None, description="0-100 as reported by the device")
    ts: str | None = Field(default=None, description="when the current value was reported")
    age_s: float | None = Field(default=None, description="seconds since ts")
    online: bool
    window: WindowInfo | None = None
    stats: SensorStats | None = None
    series: list[tuple[str, float]] | None = Field(
        default=None, description="[time, value] downsampled to the point budget (numeric sensors)"
    )
    changes: list[tuple[str, str]] | None = Field(
        default=None, description="[time, state] of the latest changes (non-numeric sensors)"
    )


class ControlResult(BaseModel):
    status: Literal["done", "confirmation_required", "declined", "cancelled"]
    device_id: str
    actuator_id: str
    action: str
    value: Scalar | None = Field(default=None, description="value acknowledged by the device")
    requested: Scalar | None = Field(default=None, description="value that was asked for")
    rtt_ms: float | None = Field(default=None, description="command round trip")
    effect: str | None = Field(default=None, description="what the command does, in words")
    confirm_token: str | None = Field(
        default=None, description="pass back with the same arguments to carry out the command"
    )
    expires_at: str | None = None


class DeviceInfo(BaseModel):
    device_id: str
    name: str | None = None
    online: bool
    last_seen: str | None = None
    area: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    hardware: str | None = None
    mac: str | None = None
    discovery_mode: str | None = None
    sensors: list[dict[str, Any]] = Field(description="capabilities with entity_id and metadata")
    actuators: list[dict[str, Any]] = Field(
        description="capabilities with entity_id, actions, range, confirmation"
    )
    diagnostics: dict[str, str] | None = Field(
        default=None, description="diagnostic entity ids by name"
    )
    health: dict[str, Any] | None = Field(default=None, description="latest metrics summary")


class DeviceMatch(BaseModel):
    id: str
    name: str | None = None
    online: bool
    matched: list[str] = Field(description="what matched, e.g. sensor:temperature")


class DeviceMatches(BaseModel):
    devices: list[DeviceMatch]
    total: int
    next_cursor: str | None = None


class Alert(BaseModel):
    device_id: str
    type: str
    code: int | str | None = None
    message: str | None = None
    severity: int
    ts: str


class AlertList(BaseModel):
    alerts: list[Alert]
    count: int
    by_severity: dict[str, int] | None = None


class DeviceMetricsRow(BaseModel):
    device_id: str
    online: bool
    uptime_s: float | None = None
    rssi: float | None = None
    free_heap: float | None = None
    msgs_per_min: float | None = None
    errors: int | None = None
    metrics_age_s: float | None = None


class MetricsResult(BaseModel):
    scope: Literal["device", "system"]
    device_id: str | None = None
    metrics: dict[str, Any] | None = Field(
        default=None, description="the device's metrics (device scope)"
    )
    metrics_received: str | None = None
    live: bool | None = Field(default=None, description="true if fetched from the device just now")
    devices_total: int | None = None
    devices_online: int | None = None
    messages_per_min: float | None = Field(default=None, description="sum over devices, since boot")
    errors_per_hour: float | None = Field(
        default=None, description="device error counters, since boot"
    )
    alerts_last_hour: int | None = None
    devices: list[DeviceMetricsRow] | None = None
    server: dict[str, Any] | None = Field(
        default=None, description="this server's own command figures"
    )


class Finding(BaseModel):
    check: str
    status: Literal["ok", "warn", "fail", "skip"]
    detail: str


class Diagnostics(BaseModel):
    device_id: str
    verdict: Literal["healthy", "degraded", "unhealthy", "offline"]
    findings: list[Finding]
    ping_ms: float | None = None
