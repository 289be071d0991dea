"""The add-on's packaging files are present and say what the Supervisor needs: checked with
the Supervisor's own rules (supervisor_schema.py), and run.sh run under a bashio stand-in."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
import struct
import subprocess
import sys
from typing import IO

from addon_clients import ADDON_DIR, SERVER_TOKEN, USER_TOKEN, http_session
from addon_fakes import (
    DeviceResponder,
    FakeHomeAssistant,
    free_port,
    populate,
    port_open,
    wait_until,
)
import pytest

from harness.ha_lanes import lane

ADDON = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# Keys whose default the Supervisor already applies; setting them to it is noise.
DEFAULTS = {
    "boot": "auto",
    "startup": "application",
    "init": "true",
    "hassio_api": "false",
    "host_network": "false",
    "stage": "stable",
    "advanced": "false",
    "ingress": "false",
    "apparmor": "true",
    "auth_api": "false",
    "timeout": "10",
}


def top_level(text: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^([a-z_]+):[ ]?(.*)$", text, re.MULTILINE)
    }


def test_config_yaml() -> None:
    text = (ADDON / "config.yaml").read_text()
    keys = top_level(text)
    assert keys["slug"] == "esp_mcp_bridge_mcp"
    assert keys["version"].strip('"') == __import__("esp_mcp_server").__version__
    assert keys["homeassistant_api"] == "true"
    for required in ("name", "description", "arch", "services", "ports", "options", "schema"):
        assert required in keys, required
    assert "  - aarch64\n  - amd64\n" in text
    assert "  - mqtt:need\n" in text
    assert "8099/tcp: 8099" in text
    for key, default in DEFAULTS.items():
        assert keys.get(key) != default, f"{key} set to its default"
    assert keys["init"] == "false"


def test_translations_cover_schema() -> None:
    config = (ADDON / "config.yaml").read_text()
    schema = config.split("\nschema:\n", 1)[1]
    options = re.findall(r"^  ([a-z_]+):", schema, re.MULTILINE)
    translations = (ADDON / "translations" / "en.yaml").read_text()
    for option in options:
        assert f"\n  {option}:\n" in translations, option


def supervisor_verdict() -> dict[str, object]:
    """What the Supervisor's schema makes of config.yaml and apparmor.txt (it runs with the
    Supervisor's own dependencies, voluptuous and PyYAML, from Home Assistant's environment)."""
    python = lane("oldest").venv / "bin" / "python"
    proc = subprocess.run(
        [str(python), str(TESTS / "supervisor_schema.py"), str(ADDON)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_supervisor_accepts_the_app() -> None:
    verdict = supervisor_verdict()
    config = verdict["config"]
    assert isinstance(config, dict)
    assert verdict["unknown"] == [], "keys the Supervisor would drop"
    assert config["init"] is False, "s6-overlay v3 must be PID 1: init: false"
    assert config["watchdog"] == "tcp://[HOST]:[PORT:8099]"
    assert {"type": "ssl", "read_only": True} in config["map"]
    assert config["stage"] in ("experimental", "stable")
    assert str(config["url"]).startswith("https://")
    assert config["apparmor"] is True
    assert verdict["apparmor_profile"] == config["slug"]
    for option, kind in config["schema"].items():
        assert option in config["options"] or str(kind).endswith("?"), option


def test_docker_builds_every_arch_without_build_yaml() -> None:
    """The Supervisor no longer reads build.yaml (it warns and only passes BUILD_ARCH and
    BUILD_VERSION): the Dockerfile picks the base image from BUILD_ARCH itself."""
    assert not (ADDON / "build.yaml").exists()
    dockerfile = (ADDON / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.MULTILINE))
    before_from = dockerfile.split("\nFROM ", 1)[0]
    assert "ARG BUILD_ARCH" in before_from
    assert "ARG BUILD_FROM" in before_from
    assert "FROM ${BUILD_FROM}" in dockerfile
    for arch in ("aarch64", "amd64"):
        image = args["BUILD_FROM"].replace("${BUILD_ARCH}", arch)
        assert image.startswith(f"ghcr.io/home-assistant/{arch}-base-python:3.13"), image
    for label in ("io.hass.type", "io.hass.arch", "org.opencontainers.image.title"):
        assert label in dockerfile
    run = (ADDON / "run.sh").read_text()
    assert run.startswith("#!/usr/bin/with-contenv bashio")
    assert "python3 -m esp_mcp_server --transport http" in run
    assert (ADDON / "run.sh").stat().st_mode & 0o111


def test_images_are_png() -> None:
    for name, size in (("icon.png", (128, 128)), ("logo.png", (250, 100))):
        data = (ADDON / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack(">II", data[16:24]) == size


def test_repository_yaml() -> None:
    text = (ADDON.parent / "repository.yaml").read_text()
    assert text.startswith("name: ")


def test_docs() -> None:
    docs = (ADDON / "DOCS.md").read_text()
    for needle in ("Authorization: Bearer", "Claude Desktop", "--transport stdio", "mqtt_host"):
        assert needle in docs
    assert (ADDON / "CHANGELOG.md").read_text().startswith("# Changelog")


@pytest.fixture
def supervisor(mosquitto: int) -> Iterator[FakeHomeAssistant]:
    proxy = FakeHomeAssistant(tokens={SERVER_TOKEN})
    populate(proxy)
    proxy.start()
    yield proxy
    proxy.stop()


def start_run_sh(env: dict[str, str], log: IO[str]) -> subprocess.Popen[bytes]:
    """run.sh the way the container's CMD runs it: through bashio."""
    return subprocess.Popen(
        ["bashio", str(ADDON / "run.sh")], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def test_run_sh_under_bashio(
    supervisor: FakeHomeAssistant,
    fake_ha: FakeHomeAssistant,
    mosquitto: int,
    responder: DeviceResponder,
    tmp_path: Path,
) -> None:
    """run.sh as the container runs it (bashio reading the options from the Supervisor): it
    waits for the Supervisor's MQTT service instead of exiting, and every option reaches the
    server."""
    supervisor.addon_options = {
        "log_level": "debug",
        "base_topic": "mcp_bridge",
        "confirm_ttl": 300,
        "allowed_origins": ["https://a.example", "https://b.example"],
        "allow_non_admin": True,
        "read_only": True,
        "confirm_token_fallback": True,
        "confirm_in_home_assistant": False,
        "notify_service": "mobile_app_pixel_8",
        "actuator_policy": [{"device": "lamp-1", "actuator": "led", "policy": "deny"}],
        "ha_auth_url": fake_ha.url,
        "public_url": "https://mcp.example.net:8099",
        "ha_public_url": "https://home.example.net",
        "ssl": False,
        "certfile": "fullchain.pem",
        "keyfile": "privkey.pem",
    }
    supervisor.supervisor_mqtt = None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    port = free_port()
    env = {
        "PATH": f"{bin_dir}:{TESTS / 'fake_bashio'}:/usr/bin:/bin",
        "SUPERVISOR_TOKEN": SERVER_TOKEN,
        "SUPERVISOR_API": supervisor.url,
        "SUPERVISOR_URL": supervisor.url,
        "HA_URL": supervisor.url,
        "MCP_PORT": str(port),
        "STARTUP_RETRY_MAX_S": "0.2",
        "PYTHONPATH": str(ADDON_DIR),
    }
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        proc = start_run_sh(env, log)
        try:
            wait_until(
                lambda: supervisor.supervisor_lookups >= 3 or proc.poll() is not None,
                what="the server to ask the Supervisor again",
            )
            assert proc.poll() is None, log_path.read_text()
            supervisor.supervisor_mqtt = {"host": "127.0.0.1", "port": mosquitto, "ssl": False}
            wait_until(
                lambda: port_open(port) or proc.poll() is not None, what="the server to listen"
            )
            assert proc.poll() is None, log_path.read_text()
            async with http_session(f"http://127.0.0.1:{port}/mcp", USER_TOKEN) as session:
                devices = await session.call_tool("list_devices", {})
                refused = await session.call_tool(
                    "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
                )
        finally:
            proc.terminate()
            proc.wait(10)
    text = log_path.read_text()
    assert "Starting the MCP server on port" in text
    assert " DEBUG " in text  # log_level debug
    settings = text.split("starting (http transport): ", 1)[1].splitlines()[0]
    for needle in (
        "confirm_ttl_s=300.0",
        "allowed_origins=('https://a.example', 'https://b.example')",
        "allow_non_admin=True",
        "read_only=True",
        "confirm_token_fallback=True",
        "confirm_in_home_assistant=False",
        "notify_service='notify.mobile_app_pixel_8'",
        "actuator_policy={('lamp-1', 'led'): 'deny'}",
        f"ha_auth_url='{fake_ha.url}'",
        "public_url='https://mcp.example.net:8099'",
        "ha_public_url='https://home.example.net'",
        "tls_certfile=None",
        "in_home_assistant=True",
    ):
        assert needle in settings, needle
    assert "MQTT broker from the Supervisor: 127.0.0.1" in text
    assert not devices.is_error
    assert refused.is_error  # read_only and the deny policy both refuse it
