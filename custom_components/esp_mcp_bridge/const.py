"""Constants for the ESP32 MCP Bridge integration."""

from __future__ import annotations

import logging
from typing import Final

from homeassistant.const import Platform

from .protocol import DEFAULT_BASE_TOPIC

DOMAIN: Final = "esp_mcp_bridge"
LOGGER: Final = logging.getLogger(__package__)

CONF_BASE_TOPIC: Final = "base_topic"
CONF_OFFLINE_TIMEOUT: Final = "offline_timeout"
CONF_TAKE_OVER: Final = "take_over_devices"
CONF_ALL_DIAGNOSTICS: Final = "all_diagnostics"

DEFAULT_BASE: Final = DEFAULT_BASE_TOPIC
DEFAULT_OFFLINE_TIMEOUT: Final = 0  # seconds; 0 = rely on the status topic only
DEFAULT_TAKE_OVER: Final = True
# Off: the opt-in diagnostic entities of extra_diagnostics are not created.
DEFAULT_ALL_DIAGNOSTICS: Final = False
MAX_OFFLINE_TIMEOUT: Final = 86_400

COMMAND_TIMEOUT_MIN: Final = 2.0
COMMAND_TIMEOUT_MAX: Final = 30.0
COMMAND_TIMEOUT_FACTOR: Final = 3
# The deadline of a command nobody waits for (set_discovery, the first metrics request):
# as long as a takeover waits for the device to switch (takeover.TAKEOVER_TIMEOUT).
UNANSWERED_COMMAND_TIMEOUT: Final = 10.0

ALERT_BUFFER_SIZE: Final = 500
CRITICAL_REPEAT_THRESHOLD: Final = 3

PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.LIGHT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.TEXT,
    Platform.UPDATE,
]

EVENT_DEVICE_ERROR: Final = f"{DOMAIN}_device_error"

ATTR_DEVICE_ID: Final = "device_id"
ATTR_SENSOR: Final = "sensor"
ATTR_ENABLE: Final = "enable"
ATTR_INTERVAL_MS: Final = "interval_ms"
ATTR_COMMAND: Final = "command"
ATTR_ARGS: Final = "args"
ATTR_TIMEOUT: Final = "timeout"

SERVICE_SET_STREAMING: Final = "set_streaming"
SERVICE_RESET_METRICS: Final = "reset_metrics"
SERVICE_UPDATE_CONFIG: Final = "update_config"
SERVICE_SEND_COMMAND: Final = "send_command"

LIGHT_TYPES: Final = frozenset({"led", "light"})

ISSUE_NEWER_PROTOCOL: Final = "newer_protocol_{device_id}"
ISSUE_CRITICAL_ERRORS: Final = "critical_errors_{device_id}"
ISSUE_SAFE_MODE: Final = "safe_mode_{device_id}"
ISSUE_ENTITY_LIMIT: Final = "entity_limit"
