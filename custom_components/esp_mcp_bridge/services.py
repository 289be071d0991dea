"""Actions (services) of the ESP32 MCP Bridge."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError, Unauthorized, UnknownUser
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .const import (
    ATTR_ARGS,
    ATTR_COMMAND,
    ATTR_DEVICE_ID,
    ATTR_ENABLE,
    ATTR_INTERVAL_MS,
    ATTR_SENSOR,
    ATTR_TIMEOUT,
    COMMAND_TIMEOUT_MAX,
    DOMAIN,
    SERVICE_RESET_METRICS,
    SERVICE_SEND_COMMAND,
    SERVICE_SET_STREAMING,
    SERVICE_UPDATE_CONFIG,
)
from .manager import BridgeManager, EspMcpBridgeConfigEntry
from .protocol import DEVICE_COMMANDS, ENTITY_ID_RE, MAX_INTERVAL_MS, MIN_INTERVAL_MS

# Commands that take the device away (restart, new firmware): administrators only.
ADMIN_COMMANDS = frozenset({"ota", "restart"})

DEVICE_SCHEMA: dict[vol.Marker, Any] = {vol.Required(ATTR_DEVICE_ID): cv.string}
QOS = vol.All(vol.Coerce(int), vol.Range(min=0, max=2))
INTERVAL = vol.All(vol.Coerce(int), vol.Range(min=MIN_INTERVAL_MS, max=MAX_INTERVAL_MS))

SET_STREAMING_SCHEMA = vol.Schema(
    {
        **DEVICE_SCHEMA,
        vol.Required(ATTR_SENSOR): vol.All(cv.string, vol.Match(ENTITY_ID_RE.pattern + "$")),
        vol.Required(ATTR_ENABLE): cv.boolean,
        vol.Optional(ATTR_INTERVAL_MS): INTERVAL,
    }
)
RESET_METRICS_SCHEMA = vol.Schema(DEVICE_SCHEMA)
UPDATE_CONFIG_SCHEMA = vol.Schema(
    {
        **DEVICE_SCHEMA,
        vol.Optional("publish_interval_ms"): INTERVAL,
        vol.Optional("metrics_interval_ms"): INTERVAL,
        vol.Optional("sensor_qos"): QOS,
        vol.Optional("actuator_qos"): QOS,
        vol.Optional("status_qos"): QOS,
        vol.Optional("error_qos"): QOS,
    }
)
SEND_COMMAND_SCHEMA = vol.Schema(
    {
        **DEVICE_SCHEMA,
        vol.Required(ATTR_COMMAND): vol.In(sorted(DEVICE_COMMANDS)),
        vol.Optional(ATTR_ARGS, default=dict): dict,
        vol.Optional(ATTR_TIMEOUT): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=COMMAND_TIMEOUT_MAX)
        ),
    }
)


def _resolve(hass: HomeAssistant, ha_device_id: str) -> tuple[BridgeManager, str]:
    """Find the manager and bridge device id for a device registry id."""
    registry = dr.async_get(hass)
    device_entry = registry.async_get(ha_device_id)
    bridge_id = (
        next((i for d, i in device_entry.identifiers if d == DOMAIN), None)
        if device_entry is not None
        else None
    )
    entries: list[EspMcpBridgeConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    if bridge_id is not None:
        for entry in entries:
            # The registry's own index of an entry's devices: DeviceEntry.config_entries
            # is deprecated from HA 2026.10 (one config entry per device since 2026.8).
            devices = dr.async_entries_for_config_entry(registry, entry.entry_id)
            if not any(device.id == ha_device_id for device in devices):
                continue
            if entry.state is not ConfigEntryState.LOADED:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="entry_not_loaded",
                    translation_placeholders={"title": entry.title},
                )
            return entry.runtime_data, bridge_id
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="invalid_device",
        translation_placeholders={"device_id": ha_device_id},
    )


async def _async_require_admin(call: ServiceCall) -> None:
    """Refuse a user who is not an administrator.

    A call without a user (an automation or a script: only administrators write
    those) is allowed, as in HA's own admin-only actions.
    """
    if call.context.user_id is None:
        return
    user = await call.hass.auth.async_get_user(call.context.user_id)
    if user is None:
        raise UnknownUser(context=call.context)
    if not user.is_admin:
        raise Unauthorized(context=call.context)


async def _async_set_streaming(call: ServiceCall) -> None:
    manager, device_id = _resolve(call.hass, call.data[ATTR_DEVICE_ID])
    args: dict[str, Any] = {
        "sensor": call.data[ATTR_SENSOR],
        "enable": call.data[ATTR_ENABLE],
    }
    if ATTR_INTERVAL_MS in call.data:
        args["interval_ms"] = call.data[ATTR_INTERVAL_MS]
    await manager.async_command(device_id, "set_streaming", args)


async def _async_reset_metrics(call: ServiceCall) -> None:
    manager, device_id = _resolve(call.hass, call.data[ATTR_DEVICE_ID])
    await manager.async_command(device_id, "reset_metrics", {})


async def _async_update_config(call: ServiceCall) -> None:
    manager, device_id = _resolve(call.hass, call.data[ATTR_DEVICE_ID])
    args: dict[str, Any] = {
        key: call.data[key]
        for key in ("publish_interval_ms", "metrics_interval_ms")
        if key in call.data
    }
    qos = {
        kind: call.data[f"{kind}_qos"]
        for kind in ("sensor", "actuator", "status", "error")
        if f"{kind}_qos" in call.data
    }
    if qos:
        args["qos"] = qos
    if not args:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="nothing_to_update")
    await manager.async_command(device_id, "update_config", args)


async def _async_send_command(call: ServiceCall) -> ServiceResponse:
    if call.data[ATTR_COMMAND] in ADMIN_COMMANDS:
        await _async_require_admin(call)
    manager, device_id = _resolve(call.hass, call.data[ATTR_DEVICE_ID])
    response = await manager.async_command(
        device_id, call.data[ATTR_COMMAND], call.data[ATTR_ARGS], call.data.get(ATTR_TIMEOUT)
    )
    if not call.return_response:
        return None
    return {"ok": response.ok, "result": dict(response.result or {})}


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN, SERVICE_SET_STREAMING, _async_set_streaming, schema=SET_STREAMING_SCHEMA
    )
    hass.services.async_register(
        DOMAIN, SERVICE_RESET_METRICS, _async_reset_metrics, schema=RESET_METRICS_SCHEMA
    )
    hass.services.async_register(
        DOMAIN, SERVICE_UPDATE_CONFIG, _async_update_config, schema=UPDATE_CONFIG_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND_COMMAND,
        _async_send_command,
        schema=SEND_COMMAND_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
