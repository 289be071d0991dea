"""The MCP Inspector (npm, pinned in package.json) in CLI mode against the HTTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
from typing import Any

from e2e_support import System
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INSPECTOR = REPO_ROOT / "node_modules" / ".bin" / "mcp-inspector"


def _inspector(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    if not INSPECTOR.exists():
        pytest.fail("MCP Inspector not installed: run make bootstrap (npm ci)")
    home.mkdir(exist_ok=True)
    # A home of its own: the Inspector keeps its catalog and OAuth state there.
    env = dict(os.environ, HOME=str(home))
    return subprocess.run(
        [str(INSPECTOR), "--cli", url, "--transport", "http", "--format", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
        cwd=home,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"inspector failed ({result.returncode}): {result.stderr}"
    data: dict[str, Any] = json.loads(result.stdout)["result"]
    return data


def test_inspector_lists_and_calls_with_token(system: System, tmp_path: Path) -> None:
    auth = f"Authorization: Bearer {system.client_token}"
    listing = _ok(_inspector(tmp_path, system.mcp.url, "--method", "tools/list", "--header", auth))
    names = {tool["name"] for tool in listing["tools"]}
    assert {
        "list_devices",
        "read_sensor",
        "control_actuator",
        "get_device_info",
        "query_devices",
        "get_alerts",
        "get_metrics",
        "device_diagnostics",
    } <= names
    control = next(t for t in listing["tools"] if t["name"] == "control_actuator")
    assert control["annotations"]["destructiveHint"] is True

    call_args = [
        "--method", "tools/call", "--tool-name", "get_device_info",
        "--tool-arg", "device_id=greenhouse", "--header", auth,
    ]  # fmt: skip
    called = _ok(_inspector(tmp_path, system.mcp.url, *call_args))
    assert called["isError"] is False
    info = called["structuredContent"]
    assert info["device_id"] == "greenhouse"
    valve = next(a for a in info["actuators"] if a["id"] == "valve")
    assert valve["requires_confirmation"] is True


def test_inspector_refused_without_or_with_a_wrong_token(system: System, tmp_path: Path) -> None:
    # --stored-auth-only: never start an interactive OAuth login, fail instead.
    missing = _inspector(tmp_path, system.mcp.url, "--method", "tools/list", "--stored-auth-only")
    assert missing.returncode != 0
    # The server answered 401 (the Inspector reports it as auth_required), not a network error.
    assert "auth_required" in missing.stderr, missing.stderr
    assert '"tools"' not in missing.stdout

    wrong = _inspector(
        tmp_path,
        system.mcp.url,
        "--method", "tools/list", "--stored-auth-only",
        "--header", "Authorization: Bearer not-a-home-assistant-token",
    )  # fmt: skip
    assert wrong.returncode != 0
    assert "auth_required" in wrong.stderr, wrong.stderr
    assert '"tools"' not in wrong.stdout
