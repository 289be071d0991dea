"""What a user sees: Home Assistant's own frontend, in a real browser, shows the devices.

Debian's chromium, driven by playwright-core (tests/e2e/browser/check_ui.mjs), logs in on
the normal login page with the owner account, opens a bridged device's page and the
dashboard the demo creates, and waits until entity names and their states are rendered.
`make bootstrap` installs chromium and playwright-core, so a missing one is a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import shutil
import struct
import subprocess
from typing import Any, cast

import pytest

from harness import HomeAssistant
from harness._process import run_sync
from harness.dashboard import URL_PATH, async_ensure_dashboard
from harness.ha_client import HaApiError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "browser" / "check_ui.mjs"
CHROMIUM = Path("/usr/bin/chromium")
# A number as the frontend formats it in English: 1,013.2 or 22.71 or -3.
NUMBER = r"-?\d[\d,]*(\.\d+)?"


async def _prepare(hass: HomeAssistant) -> list[dict[str, Any]]:
    """Finish onboarding (the frontend shows it until every step is done), make the dashboard.

    The harness leaves the location step (core_config) to the user, as a browser asks for it
    once; here it is finished through the same onboarding API the frontend's form posts to.
    """
    async with hass.client() as ha:
        for step in cast(list[dict[str, Any]], await ha.get("/api/onboarding")):
            if step["done"]:
                continue
            if step["step"] not in ("core_config", "analytics"):
                pytest.fail(f"unknown onboarding step {step['step']!r} left open")
            try:
                await ha.post(f"/api/onboarding/{step['step']}", {})
            except HaApiError as err:
                if "403" not in str(err):  # 403: done meanwhile
                    raise
        await async_ensure_dashboard(ha)
        result = await ha.ws("esp_mcp_bridge/devices")
        return cast(list[dict[str, Any]], result["devices"])


def _number_sensor(device: dict[str, Any]) -> dict[str, Any]:
    """The device's first numeric sensor with a unit (what the check looks for)."""
    for sensor in device["capabilities"]["sensors"]:
        if sensor.get("value_type") == "number" and sensor.get("unit"):
            return cast(dict[str, Any], sensor)
    pytest.fail(f"{device['device_id']} has no numeric sensor with a unit")


def _value(unit: str) -> dict[str, str]:
    # A reading with its unit; not anchored, as an entity row's text also holds the name.
    return {"regex": rf"(^|\s){NUMBER}\s?{re.escape(unit)}"}


def test_device_page_and_dashboard_render(
    hass: HomeAssistant, integration: str, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "node is missing"
    assert CHROMIUM.exists(), "Debian's chromium is missing (make bootstrap installs it)"
    assert (REPO_ROOT / "node_modules" / "playwright-core").is_dir(), (
        "playwright-core is missing (make bootstrap runs npm ci)"
    )
    devices = {d["device_id"]: d for d in run_sync(lambda: _prepare(hass))}
    greenhouse = devices["greenhouse"]
    sensor = _number_sensor(greenhouse)
    node_sensor = _number_sensor(devices["sensor-node"])
    pages = [
        {
            "name": "device",
            "path": f"/config/devices/device/{greenhouse['ha_device_id']}",
            # The device's name, one sensor's name and reading, its connectivity state.
            "expect": [
                {"text": greenhouse["name"]},
                {"text": sensor["name"]},
                _value(sensor["unit"]),
                {"text": "Connected"},
            ],
        },
        {
            "name": "dashboard",
            "path": f"/{URL_PATH}/devices",
            "expect": [
                *({"text": d["name"]} for d in devices.values()),
                {"text": node_sensor["name"]},
                _value(node_sensor["unit"]),
            ],
        },
    ]
    spec = {
        "url": hass.url,
        "username": hass.owner_username,
        "password": hass.owner_password,
        "outDir": str(tmp_path),
        "chromium": str(CHROMIUM),
        "pages": pages,
    }
    run = subprocess.run(
        [node, str(SCRIPT), json.dumps(spec)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, (
        f"{run.stderr}\nscreenshots in {tmp_path}: {sorted(p.name for p in tmp_path.iterdir())}"
    )
    result = json.loads(run.stdout)
    by_name = {page["name"]: page for page in result["pages"]}
    assert set(by_name) == {"device", "dashboard"}

    device_page = by_name["device"]
    assert device_page["url"].endswith(pages[0]["path"])  # not bounced to login or onboarding
    assert device_page["found"][0] == greenhouse["name"]
    assert re.search(rf"{NUMBER}\s?{re.escape(sensor['unit'])}", device_page["found"][2])
    dashboard = by_name["dashboard"]
    assert dashboard["url"].endswith(f"/{URL_PATH}/devices")
    for page in by_name.values():
        shot = Path(page["screenshot"]).read_bytes()
        assert shot.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", shot[16:24])  # from the IHDR chunk
        assert width >= 1280
        assert height >= 1000
