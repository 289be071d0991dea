"""The Supervisor's own rules for an app's config.yaml and apparmor.txt, as a script.

Transcribed from home-assistant/supervisor at commit 090ef31ec024952c2469ed5a7c9f3ce8c1a5499e
(2026-08-21): supervisor/apps/validate.py (_SCHEMA_APP_CONFIG, RE_VOLUME, RE_SERVICE,
SCHEMA_ELEMENT and the _migrate step for `map`), supervisor/apps/options.py
(RE_SCHEMA_ELEMENT), supervisor/apps/const.py (RE_SLUG, MappingType), supervisor/const.py
(ARCH_ALL_COMPAT, AppStage, AppStartup, AppBootConfig), supervisor/validate.py (docker_port,
network_port) and supervisor/utils/apparmor.py (RE_PROFILE, one profile per file). Regular
expressions are copied verbatim. It runs with voluptuous, PyYAML and AwesomeVersion (the
Supervisor's own dependencies; Home Assistant's environment has them):

    python supervisor_schema.py <app folder>

prints a JSON object: the validated config (`config`), the keys the Supervisor would drop
silently because it does not know them (`unknown`), and the AppArmor profile name
(`apparmor_profile`); exits 1 with the error when the Supervisor would refuse the app.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import sys
from typing import Any

from awesomeversion import AwesomeVersion
import voluptuous as vol
import yaml

ARCH_ALL_COMPAT = ["aarch64", "amd64", "armhf", "armv7", "i386"]
STAGES = ["stable", "experimental", "deprecated"]
STARTUPS = ["initialize", "system", "services", "application", "once"]
BOOTS = ["auto", "manual", "manual_only"]
MAPPING_TYPES = [
    "data",
    "config",
    "ssl",
    "local_apps",
    "backup",
    "share",
    "media",
    "homeassistant_config",
    "all_app_configs",
    "app_config",
    "addons",
    "all_addon_configs",
    "addon_config",
]
RE_SLUG = r"[-_.A-Za-z0-9]+"
RE_VOLUME = re.compile(
    r"^(data|config|ssl|local_apps|addons|backup|share|media|homeassistant_config|all_app_configs|all_addon_configs|app_config|addon_config)(?::(rw|ro))?$"
)
RE_SERVICE = re.compile(r"^(?P<service>mqtt|mysql):(?P<rights>provide|want|need)$")
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
RE_PROFILE = re.compile(r"^profile ([^ ]+).*$")

network_port = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))
docker_port = vol.All(str, vol.Match(r"^\d+(?:/tcp|/udp)?$"))
docker_ports = vol.Schema({docker_port: vol.Maybe(network_port)})
docker_ports_description = vol.Schema({docker_port: str})

SCHEMA_ELEMENT = vol.Schema(
    vol.Any(
        vol.Match(RE_SCHEMA_ELEMENT),
        [vol.Any(vol.Match(RE_SCHEMA_ELEMENT), {str: vol.Self})],
        {str: vol.Self},
    )
)

# Every key _SCHEMA_APP_CONFIG knows (it uses extra=REMOVE_EXTRA: anything else is dropped).
KNOWN_KEYS = {
    "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot",
    "init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui", "ingress",
    "ingress_port", "ingress_entry", "ingress_stream", "panel_icon", "panel_title",
    "panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc", "host_uts",
    "host_dbus", "devices", "udev", "tmpfs", "map", "environment", "privileged", "apparmor",
    "full_access", "audio", "video", "gpio", "usb", "uart", "devicetree", "kernel_modules",
    "realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin", "legacy",
    "docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre",
    "backup_post", "backup", "options", "schema", "image", "ulimits", "timeout", "journald",
    "breaking_versions",
}  # fmt: skip


def _migrate_map(config: dict[str, Any]) -> dict[str, Any]:
    """The _migrate step: string map entries become {type, read_only}; bad ones are dropped."""
    volumes = []
    for entry in config.get("map", []):
        if isinstance(entry, dict):
            if "type" in entry:
                volumes.append(entry)
            continue
        match = RE_VOLUME.match(entry) if isinstance(entry, str) else None
        if match is None:
            raise vol.Invalid(f"invalid map entry (the Supervisor skips it): {entry!r}")
        volumes.append({"type": match.group(1), "read_only": match.group(2) != "rw"})
    config["map"] = volumes
    return config


SCHEMA_APP_CONFIG = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Required("version"): vol.All(str, vol.Coerce(AwesomeVersion)),
        vol.Required("slug"): vol.Match(r"^" + RE_SLUG + r"$"),
        vol.Required("description"): str,
        vol.Required("arch"): [vol.In(ARCH_ALL_COMPAT)],
        vol.Optional("url"): vol.Url(),
        vol.Optional("startup", default="application"): vol.In(STARTUPS),
        vol.Optional("boot", default="auto"): vol.In(BOOTS),
        vol.Optional("init", default=True): vol.Boolean(),
        vol.Optional("stage", default="stable"): vol.In(STAGES),
        vol.Optional("ports"): docker_ports,
        vol.Optional("ports_description"): docker_ports_description,
        vol.Optional("watchdog"): vol.Match(
            r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"
        ),
        vol.Optional("webui"): vol.Match(r"^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$"),
        vol.Optional("map", default=list): [
            vol.Schema(
                {
                    vol.Required("type"): vol.In(MAPPING_TYPES),
                    vol.Optional("read_only", default=True): bool,
                    vol.Optional("path"): str,
                }
            )
        ],
        vol.Optional("apparmor", default=True): vol.Boolean(),
        vol.Optional("homeassistant_api", default=False): vol.Boolean(),
        vol.Optional("hassio_api", default=False): vol.Boolean(),
        vol.Optional("auth_api", default=False): vol.Boolean(),
        vol.Optional("services"): [vol.Match(RE_SERVICE)],
        vol.Optional("options", default={}): dict,
        vol.Optional("schema", default={}): vol.Any(vol.Schema({str: SCHEMA_ELEMENT}), False),
        vol.Optional("timeout", default=10): vol.All(vol.Coerce(int), vol.Range(min=10, max=300)),
    },
    extra=vol.ALLOW_EXTRA,
)


def apparmor_profile(path: Path) -> str:
    """get_profile_name: exactly one `profile <name>` line in the file."""
    profiles = set()
    for line in path.read_text().splitlines():
        match = RE_PROFILE.match(line)
        if match:
            profiles.add(match.group(1))
    if len(profiles) != 1:
        raise vol.Invalid(f"{path.name}: {len(profiles)} AppArmor profiles, need exactly one")
    return profiles.pop()


def main(folder: Path) -> int:
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    try:
        config = SCHEMA_APP_CONFIG(_migrate_map(dict(raw)))
        profile = apparmor_profile(folder / "apparmor.txt")
    except (vol.Invalid, OSError) as err:
        print(f"refused: {err}", file=sys.stderr)
        return 1
    config["version"] = str(config["version"])
    out = {
        "config": config,
        "unknown": sorted(set(raw) - KNOWN_KEYS),
        "apparmor_profile": profile,
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
