"""Configuration from CLI flags, environment, and (inside Home Assistant) the Supervisor.

Inside HA (``SUPERVISOR_TOKEN`` set) Home Assistant is ``http://supervisor/core`` with that token,
and the MQTT broker comes from the Supervisor's ``services/mqtt`` unless ``MQTT_HOST`` is given.
Outside HA everything comes from flags or the environment. Secrets never appear in ``repr``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
import logging
from typing import Any

import aiohttp

_LOGGER = logging.getLogger(__name__)
_SECRET_FIELDS = frozenset({"ha_token", "mqtt_password"})
DEFAULT_SUPERVISOR_URL = "http://supervisor"
# Home Assistant Core as add-ons reach it on the internal network.
DEFAULT_CORE_URL = "http://homeassistant:8123"


class ConfigError(Exception):
    """Configuration is missing or invalid; the message says which setting."""


@dataclass(frozen=True)
class Settings:
    """Everything the server needs; built by `load_settings`."""

    ha_url: str = "http://127.0.0.1:8123"
    ha_token: str = ""
    ha_auth_url: str = ""
    """Where client tokens are checked and used (HA Core itself: the Supervisor's proxy only
    accepts the add-on's own token). Empty: the same as ha_url."""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: bool = False
    mqtt_cafile: str | None = None
    mqtt_tls_insecure: bool = False
    base_topic: str = "mcp_bridge"
    mcp_host: str = "127.0.0.1"
    mcp_port: int = 8099
    allowed_origins: tuple[str, ...] = ()
    confirm_ttl_s: float = 120.0
    min_command_timeout_s: float = 1.0
    max_command_timeout_s: float = 10.0
    token_cache_ttl_s: float = 60.0
    log_level: str = "INFO"
    in_home_assistant: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise ConfigError(f"{name} must be an integer, got {text!r}") from err


def _float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError as err:
        raise ConfigError(f"{name} must be a number, got {text!r}") from err


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esp_mcp_server",
        description="MCP server for ESP32 devices bridged into Home Assistant.",
    )
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", help="HTTP listen address (MCP_HOST)")
    parser.add_argument("--port", type=int, help="HTTP listen port (MCP_PORT)")
    parser.add_argument("--ha-url", help="Home Assistant URL (HA_URL)")
    parser.add_argument("--mqtt-host", help="broker host (MQTT_HOST)")
    parser.add_argument("--mqtt-port", type=int, help="broker port (MQTT_PORT)")
    parser.add_argument("--base-topic", help="device base topic (BASE_TOPIC)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (LOG_LEVEL)")
    return parser


def settings_from_env(env: Mapping[str, str], args: argparse.Namespace | None = None) -> Settings:
    """Settings from the environment with CLI flags on top (no network access)."""
    supervisor_token = env.get("SUPERVISOR_TOKEN", "")
    in_ha = bool(supervisor_token)
    values: dict[str, Any] = {"in_home_assistant": in_ha}
    if in_ha:
        values["ha_url"] = env.get("HA_URL") or "http://supervisor/core"
        values["ha_token"] = env.get("HA_TOKEN") or supervisor_token
        values["ha_auth_url"] = env.get("HA_AUTH_URL") or DEFAULT_CORE_URL
    else:
        if env.get("HA_URL"):
            values["ha_url"] = env["HA_URL"]
        values["ha_token"] = env.get("HA_TOKEN", "")
        if env.get("HA_AUTH_URL"):
            values["ha_auth_url"] = env["HA_AUTH_URL"]
    if env.get("MQTT_HOST"):
        values["mqtt_host"] = env["MQTT_HOST"]
        values["extra"] = {"mqtt_explicit": True}
    if env.get("MQTT_PORT"):
        values["mqtt_port"] = _int("MQTT_PORT", env["MQTT_PORT"])
    if env.get("MQTT_USERNAME"):
        values["mqtt_username"] = env["MQTT_USERNAME"]
    if env.get("MQTT_PASSWORD"):
        values["mqtt_password"] = env["MQTT_PASSWORD"]
    if env.get("MQTT_CAFILE"):
        values["mqtt_cafile"] = env["MQTT_CAFILE"]
        values["mqtt_tls"] = True
    if env.get("MQTT_TLS"):
        values["mqtt_tls"] = _bool(env["MQTT_TLS"])
    if env.get("MQTT_TLS_INSECURE"):
        values["mqtt_tls_insecure"] = _bool(env["MQTT_TLS_INSECURE"])
    if env.get("BASE_TOPIC"):
        values["base_topic"] = env["BASE_TOPIC"]
    if env.get("MCP_HOST"):
        values["mcp_host"] = env["MCP_HOST"]
    if env.get("MCP_PORT"):
        values["mcp_port"] = _int("MCP_PORT", env["MCP_PORT"])
    if env.get("ALLOWED_ORIGINS"):
        values["allowed_origins"] = tuple(
            o.strip().rstrip("/") for o in env["ALLOWED_ORIGINS"].split(",") if o.strip()
        )
    if env.get("CONFIRM_TTL_S"):
        values["confirm_ttl_s"] = _float("CONFIRM_TTL_S", env["CONFIRM_TTL_S"])
    if env.get("TOKEN_CACHE_TTL_S"):
        values["token_cache_ttl_s"] = _float("TOKEN_CACHE_TTL_S", env["TOKEN_CACHE_TTL_S"])
    if env.get("LOG_LEVEL"):
        values["log_level"] = env["LOG_LEVEL"].upper()
    if args is not None:
        for attr, key in (
            ("host", "mcp_host"),
            ("port", "mcp_port"),
            ("ha_url", "ha_url"),
            ("mqtt_host", "mqtt_host"),
            ("mqtt_port", "mqtt_port"),
            ("base_topic", "base_topic"),
            ("log_level", "log_level"),
        ):
            value = getattr(args, attr, None)
            if value is not None:
                values[key] = value.upper() if key == "log_level" else value
        if getattr(args, "mqtt_host", None):
            values["extra"] = {"mqtt_explicit": True}
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    if not settings.ha_url.startswith(("http://", "https://")):
        raise ConfigError(f"HA_URL must start with http:// or https://, got {settings.ha_url!r}")
    if settings.ha_auth_url and not settings.ha_auth_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"HA_AUTH_URL must start with http:// or https://, got {settings.ha_auth_url!r}"
        )
    if not settings.ha_token:
        raise ConfigError("HA_TOKEN is not set (a Home Assistant long-lived access token)")
    if not 0 < settings.mqtt_port < 65536:
        raise ConfigError(f"MQTT_PORT out of range: {settings.mqtt_port}")
    if not 0 < settings.mcp_port < 65536:
        raise ConfigError(f"MCP_PORT out of range: {settings.mcp_port}")
    topic = settings.base_topic
    if not topic or any(c in topic for c in "+#\0") or topic.startswith("/") or topic.endswith("/"):
        raise ConfigError(f"BASE_TOPIC {topic!r} is not a valid topic prefix")
    if settings.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL {settings.log_level!r} is not a level")


async def apply_supervisor_mqtt(
    settings: Settings, env: Mapping[str, str], session: aiohttp.ClientSession | None = None
) -> Settings:
    """Inside HA without an explicit MQTT_HOST: take the broker from the Supervisor."""
    if not settings.in_home_assistant or settings.extra.get("mqtt_explicit"):
        return settings
    base = env.get("SUPERVISOR_URL", DEFAULT_SUPERVISOR_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {env['SUPERVISOR_TOKEN']}"}
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(
            f"{base}/services/mqtt", headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            if resp.status != 200:
                raise ConfigError(
                    f"the Supervisor has no MQTT service for this add-on (HTTP {resp.status}); "
                    "install and start the Mosquitto add-on or set mqtt_host"
                )
            body = await resp.json()
    except aiohttp.ClientError as err:
        raise ConfigError(f"cannot reach the Supervisor at {base}: {err}") from err
    finally:
        if own:
            await client.close()
    data = body.get("data", body) if isinstance(body, dict) else {}
    if not isinstance(data, dict) or not data.get("host"):
        raise ConfigError("the Supervisor's MQTT service answer has no host")
    _LOGGER.info("MQTT broker from the Supervisor: %s:%s", data.get("host"), data.get("port"))
    return replace(
        settings,
        mqtt_host=str(data["host"]),
        mqtt_port=int(data.get("port") or 1883),
        mqtt_username=data.get("username") or settings.mqtt_username,
        mqtt_password=data.get("password") or settings.mqtt_password,
        mqtt_tls=bool(data.get("ssl", settings.mqtt_tls)),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
