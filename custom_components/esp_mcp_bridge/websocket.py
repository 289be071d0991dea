"""WebSocket commands used by the MCP add-on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import websocket_command
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import ALERT_BUFFER_SIZE, DOMAIN
from .manager import (
    BridgeManager,
    EspMcpBridgeConfigEntry,
    actuator_platform,
    sensor_platform,
)
from .models import DeviceData
from .sensor import METRIC_DESCRIPTIONS


def _managers(hass: HomeAssistant) -> Iterator[BridgeManager]:
    entries: list[EspMcpBridgeConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    for entry in entries:
        if entry.state is ConfigEntryState.LOADED:
            yield entry.runtime_data


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def device_view(hass: HomeAssistant, manager: BridgeManager, device: DeviceData) -> dict[str, Any]:
    """The WebSocket/diagnostics representation of a device."""
    caps = device.capabilities
    assert caps is not None
    ent_reg = er.async_get(hass)
    ha_device = dr.async_get(hass).async_get(device.ha_device_id or "")

    def entity_id(platform: Platform, key: str) -> str | None:
        unique_id = manager.capability_unique_id(device.device_id, key)
        return ent_reg.async_get_entity_id(platform, DOMAIN, unique_id)

    def diagnostic(platform: Platform, key: str) -> str | None:
        unique_id = manager.diagnostic_unique_id(device.device_id, key)
        return ent_reg.async_get_entity_id(platform, DOMAIN, unique_id)

    diagnostics = {
        "status": diagnostic(Platform.BINARY_SENSOR, "status"),
        "error": diagnostic(Platform.EVENT, "error"),
        "firmware": diagnostic(Platform.UPDATE, "firmware"),
        "identify": diagnostic(Platform.BUTTON, "identify"),
        "restart": diagnostic(Platform.BUTTON, "restart"),
    }
    for description in METRIC_DESCRIPTIONS:
        diagnostics[description.key] = diagnostic(Platform.SENSOR, description.key)
    return {
        "device_id": device.device_id,
        "name": device.name,
        "entry_id": manager.entry.entry_id,
        "ha_device_id": device.ha_device_id,
        "base_topic": manager.base_topic,
        "online": manager.is_available(device),
        "last_seen": _iso(device.last_seen),
        "discovery_mode": device.discovery_mode,
        "safe_mode": caps.safe_mode,
        "capabilities": dict(caps.raw),
        "entities": {
            "sensors": {s.id: entity_id(sensor_platform(s), s.id) for s in caps.sensors},
            "actuators": {a.id: entity_id(actuator_platform(a), a.id) for a in caps.actuators},
            "diagnostics": {k: v for k, v in diagnostics.items() if v is not None},
        },
        "metrics": dict(device.metrics.values) if device.metrics is not None else None,
        "metrics_received": _iso(device.metrics_received),
        "area_id": ha_device.area_id if ha_device is not None else None,
    }


@websocket_command({vol.Required("type"): f"{DOMAIN}/devices", vol.Optional("device_id"): str})
@callback
def ws_devices(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """List the adopted devices.

    A device being taken over from plain MQTT discovery is listed once its entities
    exist, so a listed device always names its entity ids.
    """
    wanted = msg.get("device_id")
    devices = [
        device_view(hass, manager, device)
        for manager in _managers(hass)
        for device in manager.devices.values()
        if device.capabilities is not None
        and not device.adopting
        and wanted in (None, device.device_id)
    ]
    connection.send_result(msg["id"], {"devices": devices})


@websocket_command(
    {
        vol.Required("type"): f"{DOMAIN}/alerts",
        vol.Optional("device_id"): str,
        vol.Optional("since"): str,
        vol.Optional("min_severity"): vol.All(int, vol.Range(min=0)),
        vol.Optional("limit", default=100): vol.All(int, vol.Range(min=1, max=ALERT_BUFFER_SIZE)),
    }
)
@callback
def ws_alerts(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Return recent device error reports, newest first."""
    since = None
    if "since" in msg:
        since = dt_util.parse_datetime(msg["since"])
        if since is None:
            connection.send_error(msg["id"], "invalid_format", "since must be ISO 8601")
            return
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt_util.UTC)
    alerts = [
        alert
        for manager in _managers(hass)
        for alert in reversed(manager.alerts)
        if msg.get("device_id") in (None, alert.device_id)
        and alert.error.severity >= msg.get("min_severity", 0)
        and (since is None or alert.received >= since)
    ]
    alerts.sort(key=lambda a: a.received, reverse=True)
    connection.send_result(msg["id"], {"alerts": [a.as_dict() for a in alerts[: msg["limit"]]]})


@callback
def async_setup_websocket(hass: HomeAssistant) -> None:
    """Register the WebSocket commands."""
    async_register_command(hass, ws_devices)
    async_register_command(hass, ws_alerts)
