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
    last_seen: str | None = Field(default=None, description="ISO 8601")
    area: str | None = None
    sensors: int
    actuators: int


class DeviceList(BaseModel):
    devices: list[DeviceSummary]
    total: int = Field(description="matches, all pages")
    online: int = Field(description="online among them")
    next_cursor: str | None = Field(default=None, description="cursor of the next page")


class WindowInfo(BaseModel):
    start: str
    end: str
    source: Literal["history", "statistics"] = Field(
        description="statistics: hourly/daily long-term"
    )
    period: str | None = Field(default=None, description="hour or day")


class SensorStats(BaseModel):
    count: int
    min: float
    max: float
    mean: float
    stdev: float
    first: float
    last: float
    trend_per_hour: float | None = Field(default=None, description="least-squares slope")
    last_change: str | None = None


class SensorReading(BaseModel):
    device_id: str
    sensor_id: str
    value: Scalar | None = Field(default=None, description="absent if unavailable")
    unit: str | None = None
    state: str | None = Field(default=None, description="when no value: unavailable/unknown")
    quality: float | None = Field(default=None, description="0-100")
    ts: str | None = None
    age_s: float | None = None
    online: bool
    window: WindowInfo | None = None
    stats: SensorStats | None = None
    series: list[tuple[str, float]] | None = Field(
        default=None, description="[time, value], numeric sensors"
    )
    changes: list[tuple[str, str]] | None = Field(
        default=None, description="[time, state] changes, other sensors"
    )


class ControlResult(BaseModel):
    status: Literal["done", "confirmation_required", "declined", "cancelled", "expired"]
    device_id: str
    actuator_id: str
    action: str
    value: Scalar | None = Field(default=None, description="acknowledged by the device")
    requested: Scalar | None = None
    rtt_ms: float | None = None
    effect: str | None = Field(default=None, description="the command in words")
    confirm_token: str | None = Field(
        default=None, description="repeat the same call with it once the user agreed"
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
    sensors: list[dict[str, Any]] = Field(description="capabilities and entity_id")
    actuators: list[dict[str, Any]] = Field(
        description="capabilities, entity_id, state and state_age_s"
    )
    diagnostics: dict[str, str] | None = Field(default=None, description="entity ids by name")
    health: dict[str, Any] | None = Field(default=None, description="latest metrics")


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
    metrics: dict[str, Any] | None = Field(default=None, description="device scope")
    metrics_received: str | None = None
    live: bool | None = Field(default=None, description="fetched just now")
    devices_total: int | None = None
    devices_online: int | None = None
    messages_per_min: float | None = Field(default=None, description="since boot")
    errors_per_hour: float | None = Field(default=None, description="since boot")
    alerts_last_hour: int | None = None
    devices: list[DeviceMetricsRow] | None = None
    server: dict[str, Any] | None = Field(default=None, description="this server's commands")


class Finding(BaseModel):
    check: str
    status: Literal["ok", "warn", "fail", "skip"]
    detail: str


class Diagnostics(BaseModel):
    device_id: str
    verdict: Literal["healthy", "degraded", "unhealthy", "offline"]
    findings: list[Finding]
    ping_ms: float | None = None
