"""`make demo` end to end (non-interactive): first run creates the state, second reuses it."""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import subprocess
import sys

REPO_ROOT = Path(__file__).resolve().parents[2]


def _demo(state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEMO_EXIT_AFTER_SESSION="1", DEMO_STATE_DIR=str(state))
    return subprocess.run(
        [sys.executable, "-m", "harness.demo"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _field(output: str, label: str) -> str:
    match = re.search(rf"^\s+{label}\s+(\S.*)$", output, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1).strip()


def _up_seconds(output: str) -> float:
    match = re.search(r"Everything is up after ([0-9.]+) s", output)
    assert match, output
    return float(match.group(1))


def test_demo_runs_the_session_and_reuses_its_state(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    first = _demo(state)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "Creating demo state" in out
    assert "✘" not in out
    for step in (
        "list_devices",
        "read_sensor greenhouse/temperature",
        "control_actuator lamp/led toggle",
        "control_actuator greenhouse/valve = 40 (requires confirmation): refused, nothing done",
    ):
        assert f"✔ {step}" in out, out
    ha_url = _field(out, "URL")
    login = _field(out, "login")
    token = _field(out, "token")
    assert ha_url.startswith("http://127.0.0.1:")
    # The devices' dashboard; the second run below saves it again through the same API.
    assert _field(out, "dashboard") == f"{ha_url}/esp-mcp-bridge"
    user, password = login.split(" / ")
    assert user == "owner"
    assert len(password) >= 12
    # Ready-to-paste client configurations, also written to the state folder.
    claude = json.loads((state / "claude_desktop_config.json").read_text())
    server = claude["mcpServers"]["esp32-mcp-bridge"]
    assert server["command"] == "npx"
    assert "mcp-remote" in server["args"]
    assert server["env"]["AUTH_HEADER"] == f"Bearer {token}"
    generic = json.loads((state / "mcp_client_config.json").read_text())
    assert generic["mcpServers"]["esp32-mcp-bridge"]["headers"]["Authorization"] == (
        f"Bearer {token}"
    )
    # Secrets stay out of the world-readable files.
    for name in (
        "demo.json",
        "hass_auth.json",
        "claude_desktop_config.json",
        "mcp_client_config.json",
    ):
        assert (state / name).stat().st_mode & 0o077 == 0, name

    second = _demo(state)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Reusing demo state" in second.stdout
    assert "✘" not in second.stdout
    assert _field(second.stdout, "login") == login
    assert _field(second.stdout, "token") == token
    assert _up_seconds(second.stdout) < 60
