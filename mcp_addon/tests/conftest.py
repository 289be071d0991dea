"""Fixtures: a real Mosquitto, the Home Assistant API stand-in, a device responder, and the MCP
server as a real process (HTTP, and stdio per test) driven by the MCP Python client."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import shutil
import subprocess
import sys
from typing import Any

from addon_clients import NON_ADMIN_TOKEN, SERVER_TOKEN, USER_TOKEN, server_env
from addon_fakes import (
    DeviceResponder,
    FakeHomeAssistant,
    free_port,
    populate,
    port_open,
    wait_until,
)
import pytest


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "set_tcp_nodelay true"]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: port_open(port), what="mosquitto to listen")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def fake_ha() -> Iterator[FakeHomeAssistant]:
    ha = FakeHomeAssistant(tokens={SERVER_TOKEN, USER_TOKEN, NON_ADMIN_TOKEN})
    ha.users[NON_ADMIN_TOKEN] = {"id": "member", "name": "Member", "is_admin": False}
    populate(ha)
    ha.start()
    yield ha
    ha.stop()


@pytest.fixture(scope="session")
def responder(mosquitto: int) -> Iterator[DeviceResponder]:
    devices: dict[str, dict[str, Any]] = {
        "greenhouse-1": {"valve": 0},
        "lamp-1": {"led": False, "brightness": 0, "refuse": "brightness"},
    }
    resp = DeviceResponder(mosquitto, devices)
    resp.start()
    yield resp
    resp.stop()


@pytest.fixture(scope="session")
def env(fake_ha: FakeHomeAssistant, mosquitto: int, responder: DeviceResponder) -> dict[str, str]:
    return server_env(fake_ha, mosquitto)


@pytest.fixture(scope="session")
def http_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp") / "server.log"


@pytest.fixture(scope="session")
def http_url(env: dict[str, str], http_log: Path) -> Iterator[str]:
    port = free_port()
    log = http_log.open("w")
    extra = {
        "LOG_LEVEL": "DEBUG",
        "ALLOWED_ORIGINS": "https://allowed.example",
        "CONFIRM_TOKEN_FALLBACK": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "esp_mcp_server", "--transport", "http", "--port", str(port)],
        env={**os.environ, **env, **extra},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: port_open(port) or proc.poll() is not None, what="the MCP server to listen"
        )
        assert proc.poll() is None, "MCP server exited"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
