"""Diagnostics for the config entry and for each device."""

from __future__ import annotations

import re
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .manager import BridgeManager, EspMcpBridgeConfigEntry
from .models import DeviceData
from .naming import bridge_device_id

TO_REDACT = {
    "mac",
    "ip",
    "ip_address",
    "ssid",
    "bssid",
    "password",
    "wifi_password",
    "token",
    "access_token",
    "api_key",
    "username",
    "psk",
    "key",
    "cert",
    "ca_cert",
    "client_key",
    "identifiers",
    "connections",
}
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def _scrub(value: Any) -> Any:
    """Redact credentials embedded in URLs anywhere in the data."""
    if isinstance(value, str):
        return URL_CREDENTIALS.sub(r"\g<scheme>**REDACTED**@", value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _device(manager: BridgeManager, device: DeviceData) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "online": device.online,
        "available": manager.is_available(device),
        "timed_out": device.timed_out,
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
        "discovery_mode": device.discovery_mode,
        "safe_mode": device.capabilities.safe_mode if device.capabilities else None,
        "capabilities": dict(device.capabilities.raw) if device.capabilities else None,
        "sensors": {
            key: {"value": r.value, "ts": r.ts, "quality": r.quality}
            for key, r in device.sensors.items()
        },
        "actuators": dict(device.actuators),
        "metrics": dict(device.metrics.values) if device.metrics else None,
        "recent_alerts": [
            alert.as_dict() for alert in manager.alerts if alert.device_id == device.device_id
        ][-20:],
    }


def _redact(data: dict[str, Any]) -> dict[str, Any]:
    redacted: dict[str, Any] = async_redact_data(_scrub(data), TO_REDACT)
    return redacted


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: EspMcpBridgeConfigEntry
) -> dict[str, Any]:
    """Diagnostics for a config entry."""
    manager = entry.runtime_data
    return _redact(
        {
            "entry": {
                "title": entry.title,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            "mqtt_connected": manager.mqtt_connected,
            "devices": [_device(manager, d) for d in manager.devices.values()],
            "alert_count": len(manager.alerts),
        }
    )


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: EspMcpBridgeConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    """Diagnostics for one device."""
    manager = entry.runtime_data
    bridge_id = bridge_device_id(manager.base_topic, device.identifiers)
    data = manager.devices.get(bridge_id or "")
    return _redact(
        {
            "base_topic": manager.base_topic,
            "mqtt_connected": manager.mqtt_connected,
            "device": _device(manager, data) if data is not None else None,
        }
    )
