"""What the integration keeps per device, and per error report."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homeassistant.util import dt as dt_util

from .protocol import Capabilities, DeviceError, Metrics, SensorReading, Value


@dataclass(slots=True)
class Alert:
    """One error report kept in the ring buffer."""

    device_id: str
    error: DeviceError
    received: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return the WebSocket representation."""
        ts = (
            dt_util.utc_from_timestamp(self.error.ts / 1000).isoformat()
            if self.error.ts is not None
            else self.received.isoformat()
        )
        return {
            "device_id": self.device_id,
            "type": self.error.type,
            "code": self.error.code,
            "message": self.error.message,
            "severity": self.error.severity,
            "ts": ts,
            "received": self.received.isoformat(),
        }


@dataclass(slots=True)
class DeviceData:
    """Everything known about one bridged device."""

    device_id: str
    capabilities: Capabilities | None = None
    online: bool | None = None
    timed_out: bool = False
    last_seen: datetime | None = None
    sensors: dict[str, SensorReading] = field(default_factory=dict)
    actuators: dict[str, Value | None] = field(default_factory=dict)
    metrics: Metrics | None = None
    metrics_received: datetime | None = None
    last_error: DeviceError | None = None
    discovery_mode: str | None = None
    ha_device_id: str | None = None
    critical_times: deque[datetime] = field(default_factory=lambda: deque(maxlen=16))
    was_available: bool | None = None
    takeover_sent: bool = False
    adopting: bool = False
    metrics_requests: int = 0

    @property
    def available(self) -> bool:
        """Online by status and not silent for longer than the offline timeout."""
        return self.online is True and not self.timed_out

    @property
    def name(self) -> str:
        """Device name."""
        return self.capabilities.name if self.capabilities else self.device_id
