"""Configuration from CLI flags, environment, and (inside Home Assistant) the Supervisor.

Inside HA (``SUPERVISOR_TOKEN`` set) Home Assistant is ``http://supervisor/core`` with that token,
and the MQTT broker comes from the Supervisor's ``services/mqtt`` unless ``MQTT_HOST`` is given.
Outside HA everything comes from flags or the environment. Secrets never appear in ``repr``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
import json
import logging
import re
from typing import Any, Literal

import aiohttp

_LOGGER = logging.getLogger(__name__)
_SECRET_FIELDS = frozenset({"ha_token", "mqtt_password"})
DEFAULT_SUPERVISOR_URL = "http://supervisor"
# Home Assistant Core as add-ons reach it on the internal network.
DEFAULT_CORE_URL = "http://homeassistant:8123"


Policy = Literal["confirm", "deny"]
_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ITEM_ID = re.compile(r"^[a-z0-9_]{1,32}$")
_SERVICE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")


class ConfigError(Exception):
    """Configuration is missing or invalid; the message says which setting."""


class SupervisorUnavailable(ConfigError):
    """The Supervisor could not be asked (yet); worth asking again."""


def parse_actuator_policy(text: str) -> dict[tuple[str, str], Policy]:
    """ACTUATOR_POLICY: JSON objects {device, actuator, policy} one a line (as bashio prints a
    list of objects) or one JSON array of them. `policy` is confirm or deny."""
    text = text.strip()
    if not text or text == "null":
        return {}
    try:
        items = (
            json.loads(text)
            if text.startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except ValueError as err:
        raise ConfigError(f"ACTUATOR_POLICY is not JSON: {err}") from err
    out: dict[tuple[str, str], Policy] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(f"ACTUATOR_POLICY entry {item!r} is not an object")
        device, actuator, policy = item.get("device"), item.get("actuator"), item.get("policy")
        if not isinstance(device, str) or not _DEVICE_ID.match(device):
            raise ConfigError(f"ACTUATOR_POLICY entry {item!r}: device is not a device id")
        if not isinstance(actuator, str) or not _ITEM_ID.match(actuator):
            raise ConfigError(f"ACTUATOR_POLICY entry {item!r}: actuator is not an actuator id")
        if policy not in ("confirm", "deny"):
            raise ConfigError(f"ACTUATOR_POLICY entry {item!r}: policy is confirm or deny")
        out[(device, actuator)] = policy
    return out


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
    public_url: str = ""
    """This server's URL as MCP clients reach it (scheme, host, port); empty: from each
    request's Host header. The OAuth resource is <public_url>/mcp."""
    ha_public_url: str = ""
    """Home Assistant's URL as the user's browser reaches it (the OAuth login page); empty:
    the external or internal URL set in Home Assistant."""
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    """HTTPS for the MCP endpoint (both set) instead of plain HTTP."""
    confirm_ttl_s: float = 120.0
    min_command_timeout_s: float = 1.0
    max_command_timeout_s: float = 10.0
    token_cache_ttl_s: float = 60.0
    allow_non_admin: bool = False
    """Tokens of Home Assistant users who are not administrators are accepted too."""
    read_only: bool = False
    """No tool sends anything to a device that changes it (reads and pings still go out)."""
    confirm_token_fallback: bool = False
    """Clients that cannot ask the user get a confirm_token to repeat the call with. Off: the
    model could confirm by itself, so such calls are refused."""
    confirm_in_home_assistant: bool = False
    """Clients that cannot ask the user: ask in Home Assistant instead (a persistent
    notification, and the phone through notify_service) and wait for the answer."""
    notify_service: str = ""
    """notify.mobile_app_<phone>: where the approve/deny notification goes."""
    actuator_policy: dict[tuple[str, str], Policy] = field(default_factory=dict)
    """(device, actuator) -> confirm (always ask) or deny (never); the device cannot lower it."""
    noop_tool: bool = False
    """A tool `noop` that takes control_actuator's arguments and sends nothing: measures this
    server's own share of a command (bench_command). Off: not listed."""
    startup_retry_max_s: float = 30.0
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
    for name in ("PUBLIC_URL", "HA_PUBLIC_URL"):
        if env.get(name):
            values[name.lower()] = env[name].strip().rstrip("/")
    for name in ("TLS_CERTFILE", "TLS_KEYFILE"):
        if env.get(name):
            values[name.lower()] = env[name]
    if env.get("CONFIRM_TTL_S"):
        values["confirm_ttl_s"] = _float("CONFIRM_TTL_S", env["CONFIRM_TTL_S"])
    if env.get("TOKEN_CACHE_TTL_S"):
        values["token_cache_ttl_s"] = _float("TOKEN_CACHE_TTL_S", env["TOKEN_CACHE_TTL_S"])
    if env.get("LOG_LEVEL"):
        values["log_level"] = env["LOG_LEVEL"].upper()
    if env.get("NOTIFY_SERVICE"):
        service = env["NOTIFY_SERVICE"].strip()
        values["notify_service"] = service if "." in service else f"notify.{service}"
    for name in (
        "ALLOW_NON_ADMIN",
        "READ_ONLY",
        "CONFIRM_TOKEN_FALLBACK",
        "CONFIRM_IN_HOME_ASSISTANT",
        "NOOP_TOOL",
    ):
        if env.get(name):
            values[name.lower()] = _bool(env[name])
    if env.get("ACTUATOR_POLICY"):
        values["actuator_policy"] = parse_actuator_policy(env["ACTUATOR_POLICY"])
    if env.get("STARTUP_RETRY_MAX_S"):
        values["startup_retry_max_s"] = _float("STARTUP_RETRY_MAX_S", env["STARTUP_RETRY_MAX_S"])
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
    public = (("PUBLIC_URL", settings.public_url), ("HA_PUBLIC_URL", settings.ha_public_url))
    for name, url in public:
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{name} must start with http:// or https://, got {url!r}")
    if settings.notify_service and not _SERVICE.match(settings.notify_service):
        raise ConfigError(
            f"NOTIFY_SERVICE {settings.notify_service!r} is not a service such as "
            "notify.mobile_app_pixel_8"
        )
    if bool(settings.tls_certfile) != bool(settings.tls_keyfile):
        raise ConfigError("TLS_CERTFILE and TLS_KEYFILE go together (HTTPS needs both)")
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
    """Inside HA without an explicit MQTT_HOST: take the broker from the Supervisor, asking
    again with a growing pause (up to `startup_retry_max_s`) until it answers: at boot the
    Supervisor or the Mosquitto add-on may not be ready yet, and an add-on that exits here
    stays down."""
    if not settings.in_home_assistant or settings.extra.get("mqtt_explicit"):
        return settings
    delay = 0.5
    while True:
        try:
            return await _supervisor_mqtt_once(settings, env, session)
        except SupervisorUnavailable as err:
            _LOGGER.warning("%s; asking the Supervisor again in %g s", err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.startup_retry_max_s)


async def _supervisor_mqtt_once(
    settings: Settings, env: Mapping[str, str], session: aiohttp.ClientSession | None
) -> Settings:
    base = env.get("SUPERVISOR_URL", DEFAULT_SUPERVISOR_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {env['SUPERVISOR_TOKEN']}"}
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(
            f"{base}/services/mqtt", headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            if resp.status != 200:
                raise SupervisorUnavailable(
                    f"the Supervisor has no MQTT service for this add-on (HTTP {resp.status}); "
                    "install and start the Mosquitto add-on or set mqtt_host"
                )
            body = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise SupervisorUnavailable(f"cannot reach the Supervisor at {base}: {err}") from err
    finally:
        if own:
            await client.close()
    data = body.get("data", body) if isinstance(body, dict) else {}
    if not isinstance(data, dict) or not data.get("host"):
        raise SupervisorUnavailable("the Supervisor's MQTT service answer has no host")
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
