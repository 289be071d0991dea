"""ESP32 MCP Bridge as an ESPHome external component.

The YAML block ties ESPHome entities to bridge capabilities; the C++ glue
(mcp_bridge_component.*) drives the project's portable core, unchanged:

- on ESP32 (framework esp-idf) the core and its ESP-IDF port come in as the IDF
  component ``esp_mcp_bridge`` (firmware/components/esp_mcp_bridge, by path);
- on ``host`` the core and the POSIX port are copied into the generated source
  tree and linked against the system's libmosquitto.

Either way the glue only includes the core's headers, copied next to the
generated sources as ``esp_mcp_bridge_core/``.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
from pathlib import Path
import re
import shutil
import subprocess
from typing import Any

from esphome import automation
import esphome.codegen as cg
from esphome.components import (
    binary_sensor,
    button,
    esp32,
    light,
    number,
    select,
    sensor,
    switch,
    text,
    text_sensor,
)
import esphome.config_validation as cv
from esphome.const import (
    CONF_DEVICE_ID,
    CONF_ID,
    CONF_NAME,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_TRIGGER_ID,
    CONF_USERNAME,
)
from esphome.core import CORE
import esphome.final_validate as fv

_LOGGER = logging.getLogger(__name__)

CODEOWNERS: list[str] = []
DEPENDENCIES = ["network"]
AUTO_LOAD = ["preferences"]

# firmware/esphome/components/esp_mcp_bridge/__init__.py -> firmware/components/esp_mcp_bridge
CORE_COMPONENT_DIR = Path(__file__).resolve().parents[3] / "components" / "esp_mcp_bridge"
# Where the core's sources and headers go inside the generated project.
CORE_SRC_SUBDIR = "esp_mcp_bridge_core"
# Headers the glue needs (public API, port table, core context).
GLUE_HEADERS = (
    "include/esp_mcp_bridge.h",
    "include/mcp_esp_err.h",
    "core/include/mcp_core.h",
    "core/include/mcp_port.h",
)
# What a host build compiles: the core and the POSIX port.
HOST_SOURCE_GLOBS = (
    "include/*.h",
    "core/include/*.h",
    "core/src/*.c",
    "core/src/*.h",
    "port/posix/*.c",
    "port/posix/include/*.h",
)

# The oldest ESPHome release this component is tested with (requirements/esphome.txt
# pins the newest; docs/esphome.md says how releases track ESPHome's).
MIN_ESPHOME = (2026, 10, 0)

esp_mcp_bridge_ns = cg.esphome_ns.namespace("esp_mcp_bridge")
McpBridge = esp_mcp_bridge_ns.class_("McpBridge", cg.Component)
IdentifyTrigger = esp_mcp_bridge_ns.class_("IdentifyTrigger", automation.Trigger.template())

CONF_BROKER = "broker"
CONF_CA_CERTIFICATE = "certificate_authority"
CONF_TLS = "tls"
CONF_SKIP_CERT_VERIFY = "skip_cert_cn_check"
CONF_BASE_TOPIC = "base_topic"
CONF_DISCOVERY_PREFIX = "discovery_prefix"
CONF_DISCOVERY = "discovery"
CONF_QOS = "qos"
CONF_PUBLISH_INTERVAL = "publish_interval"
CONF_METRICS_INTERVAL = "metrics_interval"
CONF_COMMAND_TIMEOUT = "command_timeout"
CONF_KEEPALIVE = "keepalive"
CONF_MAX_COMMAND_SIZE = "max_command_size"
CONF_MANUFACTURER = "manufacturer"
CONF_MODEL = "model"
CONF_HW_VERSION = "hw_version"
CONF_ON_IDENTIFY = "on_identify"
CONF_SENSORS = "sensors"
CONF_ACTUATORS = "actuators"
CONF_MCP_ID = "mcp_id"
CONF_TYPE = "type"
CONF_DESCRIPTION = "description"
CONF_UNIT = "unit"
CONF_MIN = "min"
CONF_MAX = "max"
CONF_STEP = "step"
CONF_ACCURACY = "accuracy"
CONF_INTERVAL = "interval"
CONF_CALIBRATION_REQUIRED = "calibration_required"
CONF_CALIBRATION_INTERVAL = "calibration_interval"
CONF_ACTIONS = "actions"
CONF_REQUIRES_CONFIRMATION = "requires_confirmation"
CONF_RESPONSE_TIME = "response_time"

# kind key -> (entity class, value_type, default capability type)
SENSOR_KINDS: dict[str, tuple[Any, str, str]] = {
    "sensor": (sensor.Sensor, "number", "sensor"),
    "binary_sensor": (binary_sensor.BinarySensor, "boolean", "binary_sensor"),
    "text_sensor": (text_sensor.TextSensor, "string", "text_sensor"),
}
ACTUATOR_KINDS: dict[str, tuple[Any, str, str]] = {
    "switch": (switch.Switch, "boolean", "switch"),
    "number": (number.Number, "number", "number"),
    "select": (select.Select, "enum", "select"),
    "button": (button.Button, "trigger", "button"),
    "text": (text.Text, "string", "text"),
    # on/off: a light's state, not its brightness or colour
    "light": (light.LightState, "boolean", "light"),
}
# Actions each actuator kind may list (the first set is the default).
KIND_ACTIONS = {
    "switch": ["read", "write", "toggle"],
    "number": ["read", "write"],
    "select": ["read", "write"],
    "button": ["trigger"],
    "text": ["read", "write"],
    "light": ["read", "write", "toggle"],
}

# Bit i of the action mask given to the glue (MCP_ACTION_* in esp_mcp_bridge.h).
ACTION_BITS = ["read", "write", "toggle", "trigger"]

# The contract's naming rules (docs/protocol.md §1), full matches of ASCII text.
DEVICE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ENTITY_ID_RE = re.compile(r"[a-z0-9_]{1,32}")
NAME_MAX = 48
UNIT_MAX = 15
DESCRIPTION_MAX = 256
# Interval limits of the core's local API (esp_mcp_bridge.h).
MIN_LOCAL_INTERVAL_MS = 10
MAX_INTERVAL_MS = 3_600_000


def device_id(value: object) -> str:
    """A device id as the contract has it: [a-z0-9][a-z0-9_-]{0,31}."""
    value = cv.string_strict(value)
    if not DEVICE_ID_RE.fullmatch(value):
        raise cv.Invalid(
            f"device_id '{value}' breaks the device id rule [a-z0-9][a-z0-9_-]{{0,31}} "
            "(1-32 characters: lower-case letters, digits, '-' and '_'; "
            "the first one a letter or a digit)"
        )
    return value


def entity_id(value: object) -> str:
    """A sensor/actuator id as the contract has it: [a-z0-9_]{1,32}."""
    value = cv.string_strict(value)
    if not ENTITY_ID_RE.fullmatch(value):
        raise cv.Invalid(
            f"'{value}' breaks the sensor/actuator id rule [a-z0-9_]{{1,32}} "
            "(1-32 characters: lower-case letters, digits and '_')"
        )
    return value


def topic_prefix(value: object) -> str:
    value = cv.string_strict(value)
    ok = 0 < len(value) <= 64 and not value.startswith("/") and not value.endswith("/")
    ok = ok and "//" not in value and all(0x21 <= ord(c) < 0x7F and c not in "+#" for c in value)
    if not ok:
        raise cv.Invalid(
            f"'{value}' is not a topic prefix: 1-64 printable ASCII characters, no '+', '#' "
            "or spaces, no leading, trailing or double '/'"
        )
    return value


def utf8_max(limit: int) -> Callable[[object], str]:
    def validator(value: object) -> str:
        value = cv.string_strict(value)
        if not value or len(value.encode()) > limit:
            raise cv.Invalid(f"'{value}' must be 1-{limit} bytes of UTF-8")
        return value

    return validator


def interval_ms(value: object) -> cv.TimePeriod:
    period = cv.positive_time_period_milliseconds(value)
    if not MIN_LOCAL_INTERVAL_MS <= period.total_milliseconds <= MAX_INTERVAL_MS:
        raise cv.Invalid(
            f"interval must lie between {MIN_LOCAL_INTERVAL_MS} ms and {MAX_INTERVAL_MS // 1000} s"
        )
    return period


def _one_kind(kinds: dict[str, tuple[Any, str, str]], what: str) -> Callable[[dict], dict]:
    def validator(config: dict) -> dict:
        present = [k for k in kinds if k in config]
        if len(present) != 1:
            raise cv.Invalid(
                f"each entry of '{what}' names exactly one entity with one of the keys "
                f"{', '.join(kinds)} (found {len(present) or 'none'})"
            )
        return config

    return validator


def kind_of(config: dict, kinds: dict[str, tuple[Any, str, str]]) -> str:
    return next(k for k in kinds if k in config)


COMMON_SCHEMA = {
    cv.Optional(CONF_MCP_ID): entity_id,
    cv.Optional(CONF_TYPE): entity_id,
    cv.Optional(CONF_NAME): utf8_max(NAME_MAX),
    cv.Optional(CONF_DESCRIPTION): utf8_max(DESCRIPTION_MAX),
    cv.Optional(CONF_UNIT): utf8_max(UNIT_MAX),
}

SENSOR_SCHEMA = cv.All(
    cv.Schema(
        {
            **{cv.Optional(k): cv.use_id(cls) for k, (cls, _, _) in SENSOR_KINDS.items()},
            **COMMON_SCHEMA,
            cv.Optional(CONF_MIN): cv.float_,
            cv.Optional(CONF_MAX): cv.float_,
            cv.Optional(CONF_ACCURACY): cv.positive_float,
            cv.Optional(CONF_INTERVAL): interval_ms,
            cv.Optional(CONF_CALIBRATION_REQUIRED, default=False): cv.boolean,
            cv.Optional(CONF_CALIBRATION_INTERVAL): cv.positive_time_period_seconds,
        }
    ),
    _one_kind(SENSOR_KINDS, CONF_SENSORS),
)

ACTUATOR_SCHEMA = cv.All(
    cv.Schema(
        {
            **{cv.Optional(k): cv.use_id(cls) for k, (cls, _, _) in ACTUATOR_KINDS.items()},
            **COMMON_SCHEMA,
            cv.Optional(CONF_MIN): cv.float_,
            cv.Optional(CONF_MAX): cv.float_,
            cv.Optional(CONF_STEP): cv.positive_float,
            cv.Optional(CONF_ACTIONS): cv.ensure_list(
                cv.one_of("read", "write", "toggle", "trigger", lower=True)
            ),
            cv.Optional(CONF_REQUIRES_CONFIRMATION, default=False): cv.boolean,
            cv.Optional(CONF_RESPONSE_TIME): cv.positive_time_period_milliseconds,
        }
    ),
    _one_kind(ACTUATOR_KINDS, CONF_ACTUATORS),
)

QOS_SCHEMA = cv.Schema(
    {
        cv.Optional("sensor", default=0): cv.int_range(0, 2),
        cv.Optional("actuator", default=1): cv.int_range(0, 2),
        cv.Optional("status", default=1): cv.int_range(0, 2),
        cv.Optional("error", default=2): cv.int_range(0, 2),
    }
)


def _check_platform(config: dict) -> dict:
    if CORE.is_esp32 and CORE.target_framework != "esp-idf":
        raise cv.Invalid(
            "esp_mcp_bridge on ESP32 needs the esp-idf framework (esp32: framework: type: esp-idf)"
        )
    return config


def _check_entries(config: dict) -> dict:
    """Ids unique across both lists, every entity listed once, kind-specific rules."""
    seen_ids: dict[str, list[object]] = {}
    seen_entities: dict[str, list[object]] = {}
    for list_key, kinds in ((CONF_SENSORS, SENSOR_KINDS), (CONF_ACTUATORS, ACTUATOR_KINDS)):
        for i, entry in enumerate(config.get(list_key, [])):
            kind = kind_of(entry, kinds)
            ref = str(entry[kind])
            if ref in seen_entities:
                where = "/".join(str(p) for p in seen_entities[ref])
                raise cv.Invalid(
                    f"{kind} '{ref}' is listed twice (first at {where}); "
                    "each ESPHome entity becomes one capability",
                    path=[list_key, i, kind],
                )
            seen_entities[ref] = [list_key, i, kind]
            if CONF_MCP_ID not in entry:
                default = ref.lower()
                if not ENTITY_ID_RE.fullmatch(default):
                    raise cv.Invalid(
                        f"the id of {kind} '{ref}' is no sensor/actuator id ([a-z0-9_]{{1,32}} "
                        "after lower-casing): give this entry an mcp_id",
                        path=[list_key, i, kind],
                    )
                entry[CONF_MCP_ID] = default
            cap_id = entry[CONF_MCP_ID]
            if cap_id in seen_ids:
                where = "/".join(str(p) for p in seen_ids[cap_id])
                raise cv.Invalid(
                    f"mcp_id '{cap_id}' is used twice (also at {where}); ids are unique "
                    "per device across sensors and actuators",
                    path=[list_key, i, CONF_MCP_ID],
                )
            seen_ids[cap_id] = [list_key, i, CONF_MCP_ID]
            _check_range(entry, list_key, i, kind)
            if list_key == CONF_ACTUATORS:
                _check_actions(entry, i, kind)
            elif kind != "sensor":
                for key in (CONF_MIN, CONF_MAX, CONF_ACCURACY, CONF_UNIT):
                    if key in entry:
                        raise cv.Invalid(
                            f"'{key}' applies to number sensors only, not to a {kind}",
                            path=[list_key, i, key],
                        )
    return config


def _check_range(entry: dict, list_key: str, i: int, kind: str) -> None:
    has_min, has_max = CONF_MIN in entry, CONF_MAX in entry
    if kind == "number":
        for key, present in ((CONF_MIN, has_min), (CONF_MAX, has_max)):
            if not present:
                raise cv.Invalid(
                    f"a number actuator needs its range: '{key}' is missing "
                    "(give min and max as the number entity has them)",
                    path=[list_key, i, key],
                )
    elif list_key == CONF_ACTUATORS:
        for key in (CONF_MIN, CONF_MAX, CONF_STEP, CONF_UNIT):
            if key in entry:
                raise cv.Invalid(
                    f"'{key}' applies to number actuators only, not to a {kind}",
                    path=[list_key, i, key],
                )
    if has_min != has_max:
        missing = CONF_MAX if has_min else CONF_MIN
        raise cv.Invalid(
            f"'{missing}' is missing: give min and max together", path=[list_key, i, missing]
        )
    if has_min and entry[CONF_MIN] >= entry[CONF_MAX]:
        raise cv.Invalid("'min' must be below 'max'", path=[list_key, i, CONF_MIN])


def _check_actions(entry: dict, i: int, kind: str) -> None:
    allowed = KIND_ACTIONS[kind]
    actions = entry.setdefault(CONF_ACTIONS, list(allowed))
    if not actions:
        raise cv.Invalid("list at least one action", path=[CONF_ACTUATORS, i, CONF_ACTIONS])
    for action in actions:
        if action not in allowed:
            raise cv.Invalid(
                f"a {kind} actuator supports the actions {', '.join(allowed)}, not '{action}'",
                path=[CONF_ACTUATORS, i, CONF_ACTIONS],
            )
    if len(set(actions)) != len(actions):
        raise cv.Invalid("an action is listed twice", path=[CONF_ACTUATORS, i, CONF_ACTIONS])


CONFIG_SCHEMA = cv.All(
    cv.Schema(
        {
            cv.GenerateID(): cv.declare_id(McpBridge),
            cv.Required(CONF_BROKER): cv.string_strict,
            cv.Optional(CONF_PORT): cv.port,
            cv.Optional(CONF_USERNAME): cv.string,
            cv.Optional(CONF_PASSWORD): cv.string,
            cv.Optional(CONF_TLS, default=False): cv.boolean,
            cv.Optional(CONF_CA_CERTIFICATE): cv.string_strict,
            cv.Optional(CONF_SKIP_CERT_VERIFY, default=False): cv.boolean,
            cv.Optional(CONF_KEEPALIVE, default="30s"): cv.All(
                cv.positive_time_period_seconds, cv.Range(max=cv.TimePeriod(seconds=65535))
            ),
            cv.Optional(CONF_DEVICE_ID): device_id,
            cv.Optional(CONF_BASE_TOPIC, default="mcp_bridge"): topic_prefix,
            cv.Optional(CONF_DISCOVERY_PREFIX, default="homeassistant"): topic_prefix,
            cv.Optional(CONF_DISCOVERY, default="mqtt"): cv.one_of(
                "mqtt", "integration", lower=True
            ),
            cv.Optional(CONF_QOS, default={}): QOS_SCHEMA,
            cv.Optional(CONF_PUBLISH_INTERVAL, default="10s"): interval_ms,
            cv.Optional(CONF_METRICS_INTERVAL, default="60s"): cv.Any(
                cv.one_of("never", lower=True), interval_ms
            ),
            cv.Optional(CONF_COMMAND_TIMEOUT, default="5s"): interval_ms,
            cv.Optional(CONF_MAX_COMMAND_SIZE, default=1024): cv.int_range(256, 16384),
            cv.Optional(CONF_MANUFACTURER, default="ESPHome"): utf8_max(NAME_MAX),
            cv.Optional(CONF_MODEL): utf8_max(NAME_MAX),
            cv.Optional(CONF_HW_VERSION): utf8_max(NAME_MAX),
            cv.Optional(CONF_SENSORS, default=[]): cv.ensure_list(SENSOR_SCHEMA),
            cv.Optional(CONF_ACTUATORS, default=[]): cv.ensure_list(ACTUATOR_SCHEMA),
            # the `identify` command: make the device noticeable (blink a light, beep)
            cv.Optional(CONF_ON_IDENTIFY): automation.validate_automation(
                {cv.GenerateID(CONF_TRIGGER_ID): cv.declare_id(IdentifyTrigger)}
            ),
        }
    ).extend(cv.COMPONENT_SCHEMA),
    cv.require_esphome_version(*MIN_ESPHOME),
    cv.only_on(["esp32", "host"]),
    _check_platform,
    _check_entries,
)


def _final_validate(config: dict) -> dict:
    full = fv.full_config.get()
    if "mqtt" in full:
        raise cv.Invalid(
            "esp_mcp_bridge and ESPHome's 'mqtt:' cannot be used together: both would connect "
            "to the broker as this device and both would announce its entities to Home Assistant "
            "(duplicate entities). Remove 'mqtt:'; the bridge carries the listed entities."
        )
    if "api" in full:
        _LOGGER.warning(
            "esp_mcp_bridge: with 'api:' Home Assistant's ESPHome integration shows the device's "
            "entities too; mark the bridged entities 'internal: true' to have them only once "
            "(through the bridge)"
        )
    return config


FINAL_VALIDATE_SCHEMA = _final_validate


def _str(value: str | None) -> Any:
    return cg.RawExpression("nullptr") if value is None else value


def _copy_core_sources(globs: tuple[str, ...]) -> None:
    """Copy core files flat into src/esp_mcp_bridge_core (exactly these, nothing stale)."""
    dest = CORE.relative_src_path(CORE_SRC_SUBDIR)
    wanted: dict[str, Path] = {}
    for pattern in globs:
        for src in sorted(CORE_COMPONENT_DIR.glob(pattern)):
            if src.name in wanted:
                raise cv.Invalid(f"two core files named {src.name}")
            wanted[src.name] = src
    if not wanted:
        raise cv.Invalid(f"the bridge core was not found at {CORE_COMPONENT_DIR}")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        if old.name not in wanted:
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
    for name, src in wanted.items():
        target = dest / name
        data = src.read_bytes()
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)


# ESP-IDF components the bridge's IDF component requires that ESPHome leaves out
# of a build unless asked (esp32 DEFAULT_EXCLUDED_IDF_COMPONENTS). IDF 6 has no
# built-in mqtt/json: the component's own manifest takes them from the registry.
IDF_BUILTINS = ("esp_wifi", "esp_https_ota", "tcp_transport")
IDF5_BUILTINS = ("mqtt", "json")


def _require_idf_components(config: dict) -> None:
    for name in IDF_BUILTINS:
        esp32.include_builtin_idf_component(name)
    if esp32.idf_version() < cv.Version(6, 0, 0):
        for name in IDF5_BUILTINS:
            esp32.include_builtin_idf_component(name)
    # esp_http_client (OTA) and esp-mqtt link esp-tls even for plain MQTT
    esp32.request_http_client()
    tls = config[CONF_TLS] or config[CONF_BROKER].startswith(("mqtts://", "wss://"))
    if tls and CONF_CA_CERTIFICATE not in config:
        esp32.require_certificate_bundle()


def _pkg_config(package: str, fallback: list[str]) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", package],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return fallback
    return out.split()


async def to_code(config: dict) -> None:
    var = cg.new_Pvariable(config[CONF_ID])
    await cg.register_component(var, config)

    if CORE.is_esp32:
        esp32.add_idf_component(name="esp_mcp_bridge", path=str(CORE_COMPONENT_DIR))
        _require_idf_components(config)
        _copy_core_sources(GLUE_HEADERS)
    else:
        _copy_core_sources(HOST_SOURCE_GLOBS)
        for flag in _pkg_config("libmosquitto", ["-lmosquitto"]):
            cg.add_build_flag(flag)
        cg.add_build_flag("-lpthread")
    cg.add_define("USE_ESP_MCP_BRIDGE")

    tls = config[CONF_TLS] or CONF_CA_CERTIFICATE in config
    port = config.get(CONF_PORT, 8883 if tls else 1883)
    broker = config[CONF_BROKER]
    uri = broker if "://" in broker else f"{'mqtts' if tls else 'mqtt'}://{broker}:{port}"
    cg.add(var.set_broker_uri(uri))
    if CONF_USERNAME in config:
        cg.add(var.set_username(config[CONF_USERNAME]))
    if CONF_PASSWORD in config:
        cg.add(var.set_password(config[CONF_PASSWORD]))
    cg.add(var.set_tls(tls, config[CONF_SKIP_CERT_VERIFY]))
    if CONF_CA_CERTIFICATE in config:
        cg.add(var.set_ca_certificate(config[CONF_CA_CERTIFICATE]))
    cg.add(var.set_keepalive(config[CONF_KEEPALIVE].total_seconds))
    cg.add(var.set_device_id(config.get(CONF_DEVICE_ID, CORE.name)))
    cg.add(var.set_base_topic(config[CONF_BASE_TOPIC]))
    cg.add(var.set_discovery_prefix(config[CONF_DISCOVERY_PREFIX]))
    cg.add(var.set_discovery_integration(config[CONF_DISCOVERY] == "integration"))
    qos = config[CONF_QOS]
    cg.add(var.set_qos(qos["sensor"], qos["actuator"], qos["status"], qos["error"]))
    cg.add(var.set_publish_interval(config[CONF_PUBLISH_INTERVAL].total_milliseconds))
    metrics = config[CONF_METRICS_INTERVAL]
    cg.add(
        var.set_metrics_interval(0xFFFFFFFF if metrics == "never" else metrics.total_milliseconds)
    )
    cg.add(var.set_command_timeout(config[CONF_COMMAND_TIMEOUT].total_milliseconds))
    cg.add(var.set_max_command_size(config[CONF_MAX_COMMAND_SIZE]))
    cg.add(
        var.set_device_info(
            config[CONF_MANUFACTURER],
            _str(config.get(CONF_MODEL)),
            _str(config.get(CONF_HW_VERSION)),
        )
    )
    cg.add(var.set_capacity(len(config[CONF_SENSORS]), len(config[CONF_ACTUATORS])))
    for conf in config.get(CONF_ON_IDENTIFY, []):
        trigger = cg.new_Pvariable(conf[CONF_TRIGGER_ID], var)
        await automation.build_automation(trigger, [], conf)

    for entry in config[CONF_SENSORS]:
        kind = kind_of(entry, SENSOR_KINDS)
        ent = await cg.get_variable(entry[kind])
        default_type = SENSOR_KINDS[kind][2]
        has_range = CONF_MIN in entry
        cg.add(
            var.add_sensor(
                ent,
                entry[CONF_MCP_ID],
                entry.get(CONF_TYPE, default_type),
                _str(entry.get(CONF_NAME)),
                _str(entry.get(CONF_UNIT)),
                _str(entry.get(CONF_DESCRIPTION)),
                entry[CONF_MIN] if has_range else 0.0,
                entry[CONF_MAX] if has_range else 0.0,
                entry.get(CONF_ACCURACY, 0.0),
                entry[CONF_CALIBRATION_REQUIRED],
                entry[CONF_CALIBRATION_INTERVAL].total_seconds
                if CONF_CALIBRATION_INTERVAL in entry
                else 0,
                entry[CONF_INTERVAL].total_milliseconds if CONF_INTERVAL in entry else 0,
            )
        )
    for entry in config[CONF_ACTUATORS]:
        kind = kind_of(entry, ACTUATOR_KINDS)
        ent = await cg.get_variable(entry[kind])
        default_type = ACTUATOR_KINDS[kind][2]
        actions = sum(1 << ACTION_BITS.index(a) for a in entry[CONF_ACTIONS])
        cg.add(
            var.add_actuator(
                ent,
                entry[CONF_MCP_ID],
                entry.get(CONF_TYPE, default_type),
                _str(entry.get(CONF_NAME)),
                _str(entry.get(CONF_UNIT)),
                _str(entry.get(CONF_DESCRIPTION)),
                actions,
                entry.get(CONF_MIN, 0.0),
                entry.get(CONF_MAX, 0.0),
                entry.get(CONF_STEP, 0.0),
                entry[CONF_RESPONSE_TIME].total_milliseconds if CONF_RESPONSE_TIME in entry else 0,
                entry[CONF_REQUIRES_CONFIRMATION],
            )
        )
