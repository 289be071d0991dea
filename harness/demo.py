"""`make demo`: the whole system on this machine, then a short scripted agent session.

Starts Mosquitto (password auth, credentials generated on first run), three virtual
devices, Home Assistant (onboarded; MQTT and this integration set up through its own
flows), and the MCP server over streamable HTTP. Prints how to log in and how to point
an MCP client at it, runs a scripted session with the MCP Python client, and keeps
everything running until Ctrl-C.

State lives in ``.demo/<lane>/`` (git-ignored); a second run reuses it.
Environment: ``DEMO_EXIT_AFTER_SESSION=1`` stops after the scripted session (for tests),
``DEMO_STATE_DIR`` puts the state elsewhere.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
import json
import os
from pathlib import Path
import secrets
import sys
import time
from typing import Any, cast

from harness import (
    Broker,
    HarnessError,
    HomeAssistant,
    McpServer,
    VirtualDevices,
    free_port,
    install_signal_handlers,
)
from harness._process import (
    async_wait_until,
    port_open,
    read_private_json,
    run_sync,
    write_private_json,
)
from harness.dashboard import URL_PATH as DASHBOARD_PATH, async_ensure_dashboard
from harness.ha_lanes import lane
from harness.homeassistant import integration_available

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE = REPO_ROOT / ".demo"
BASE_TOPIC = "mcp_bridge"
# device id -> shipped profile
DEVICES = {"greenhouse": "greenhouse", "lamp": "lamp", "sensor-node": "sensor_node"}
SERVER_NAME = "esp32-mcp-bridge"


def say(text: str = "") -> None:
    print(text, flush=True)


class DemoSettings:
    """Generated once, kept in ``demo.json`` (mode 0600) so a second run reuses them."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "demo.json"
        data = read_private_json(self.path)
        self.reused = bool(data)
        self.mqtt_username = str(data.get("mqtt_username", "demo"))
        self.mqtt_password = str(data.get("mqtt_password") or secrets.token_urlsafe(16))
        self.broker_port = cast(int | None, data.get("broker_port"))
        self.mcp_port = cast(int | None, data.get("mcp_port"))
        self.mcp_server_token = cast(str | None, data.get("mcp_server_token"))
        self.mcp_client_token = cast(str | None, data.get("mcp_client_token"))

    def save(self) -> None:
        data = {
            "mqtt_username": self.mqtt_username,
            "mqtt_password": self.mqtt_password,
            "broker_port": self.broker_port,
            "mcp_port": self.mcp_port,
            "mcp_server_token": self.mcp_server_token,
            "mcp_client_token": self.mcp_client_token,
        }
        write_private_json(self.path, data)


def _reusable_port(port: int | None) -> int:
    if port is not None and not port_open("127.0.0.1", port):
        return port
    return free_port()


async def _token_valid(ha: HomeAssistant, token: str | None) -> bool:
    if token is None:
        return False
    from harness.ha_client import HaApiError, HaClient  # noqa: PLC0415

    async with HaClient(ha.url, token) as client:
        try:
            await client.get("/api/")
        except HaApiError:
            return False
    return True


def ensure_tokens(ha: HomeAssistant, settings: DemoSettings) -> None:
    """One long-lived token for the MCP server, one for MCP clients (reused when valid)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    if not run_sync(lambda: _token_valid(ha, settings.mcp_server_token)):
        settings.mcp_server_token = ha.create_token(f"MCP server (demo) {stamp}")
    if not run_sync(lambda: _token_valid(ha, settings.mcp_client_token)):
        settings.mcp_client_token = ha.create_token(f"MCP client (demo) {stamp}")
    settings.save()


async def wait_devices_online(ha: HomeAssistant, device_ids: list[str], within: float) -> None:
    async with ha.client() as client:

        async def all_online() -> bool:
            result = await client.ws("esp_mcp_bridge/devices")
            online = {d["device_id"] for d in result["devices"] if d.get("online")}
            return set(device_ids) <= online

        await async_wait_until(all_online, within, f"devices {device_ids} online in HA")


async def wait_first_reading(ha: HomeAssistant, within: float) -> None:
    """Wait until the greenhouse temperature has a value in HA (for the scripted session)."""
    async with ha.client() as client:

        async def has_value() -> bool:
            result = await client.ws("esp_mcp_bridge/devices", device_id="greenhouse")
            entity_id = result["devices"][0]["entities"]["sensors"]["temperature"]
            state = await client.state(entity_id)
            if state is None:
                return False
            try:
                float(state["state"])
            except ValueError:
                return False
            return True

        await async_wait_until(has_value, within, "a greenhouse temperature reading in HA")


async def create_dashboard(ha: HomeAssistant) -> None:
    """The devices' dashboard, through HA's Lovelace API (the same one on a second run)."""
    async with ha.client() as client:
        await async_ensure_dashboard(client)


async def wait_discovery_flow(ha: HomeAssistant, within: float) -> bool:
    """Whether HA's MQTT discovery offered this integration (a flow in progress) in time."""
    async with ha.client() as client:
        if await client.config_entries("esp_mcp_bridge"):
            return True

        async def offered() -> bool:
            return bool(await client.flows_in_progress("esp_mcp_bridge"))

        try:
            await async_wait_until(offered, within, "the integration's discovery flow")
        except HarnessError:
            return False
        return True


def client_configs(url: str, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Claude Desktop (through mcp-remote) and a generic streamable-HTTP client config."""
    claude = {
        "mcpServers": {
            SERVER_NAME: {
                "command": "npx",
                "args": ["-y", "mcp-remote", url, "--header", "Authorization:${AUTH_HEADER}"],
                "env": {"AUTH_HEADER": f"Bearer {token}"},
            }
        }
    }
    generic = {
        "mcpServers": {
            SERVER_NAME: {
                "type": "http",
                "url": url,
                "headers": {"Authorization": f"Bearer {token}"},
            }
        }
    }
    return claude, generic


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def scripted_session(url: str, token: str) -> bool:
    """A short agent session with the real MCP client; True when every step did what it should."""
    from harness.mcp_client import mcp_session  # noqa: PLC0415 - needs the mcp package

    ok = True

    def step(title: str, text: str, good: bool) -> None:
        nonlocal ok
        ok = ok and good
        say(f"  {'✔' if good else '✘'} {title}")
        say(f"      {_short(text)}")

    async with mcp_session(url, token) as mcp:
        tools = await mcp.tool_names()
        step("tools/list", ", ".join(tools), "control_actuator" in tools)

        devices = await mcp.call("list_devices")
        step("list_devices", devices.text, not devices.is_error)

        reading = await mcp.call(
            "read_sensor", device_id="greenhouse", sensor_id="temperature", window="15m"
        )
        step(
            "read_sensor greenhouse/temperature, last 15 min",
            reading.text,
            not reading.is_error and reading.data.get("value") is not None,
        )

        lamp = await mcp.call(
            "control_actuator", device_id="lamp", actuator_id="led", action="toggle"
        )
        step("control_actuator lamp/led toggle", lamp.text, lamp.data.get("status") == "done")

        # This scripted client cannot ask a person (no elicitation), and the model-held
        # confirm token is off by default: the valve must stay untouched.
        ask = await mcp.call(
            "control_actuator", device_id="greenhouse", actuator_id="valve", value=40
        )
        step(
            "control_actuator greenhouse/valve = 40 (requires confirmation): refused, nothing done",
            ask.text,
            ask.is_error and "nothing was done" in ask.text and "confirm_token" not in ask.data,
        )
    return ok


def run(state_dir: Path, exit_after_session: bool) -> int:
    began = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    settings = DemoSettings(state_dir)
    settings.broker_port = _reusable_port(settings.broker_port)
    settings.mcp_port = _reusable_port(settings.mcp_port)
    settings.save()
    say(f"{'Reusing' if settings.reused else 'Creating'} demo state in {state_dir}")
    if not integration_available():
        raise HarnessError("custom_components/esp_mcp_bridge is missing")

    with ExitStack() as stack:
        broker = stack.enter_context(
            Broker(
                state_dir,
                username=settings.mqtt_username,
                password=settings.mqtt_password,
                port=settings.broker_port,
            )
        )
        say(f"  mosquitto     {broker.url} (user {settings.mqtt_username})")
        for device_id, profile in DEVICES.items():
            stack.enter_context(VirtualDevices(broker, profile, device_id, state_dir))
        say(f"  devices       {', '.join(DEVICES)}")
        ha = stack.enter_context(HomeAssistant(state_dir))
        say(
            f"  homeassistant {ha.url} (Home Assistant {ha.lane.version}, "
            f"started in {ha.startup_seconds or 0:.1f} s)"
        )
        ha.setup_mqtt(broker)
        discovered = run_sync(lambda: wait_discovery_flow(ha, 20.0))
        ha.setup_integration(BASE_TOPIC, prefer_discovery=discovered)
        run_sync(lambda: wait_devices_online(ha, list(DEVICES), 60.0))
        say("  integration   MQTT + ESP32 MCP Bridge set up, all devices online")
        run_sync(lambda: wait_first_reading(ha, 30.0))
        run_sync(lambda: create_dashboard(ha))
        say(f"  dashboard     {ha.url}/{DASHBOARD_PATH}")
        ensure_tokens(ha, settings)
        assert settings.mcp_server_token is not None
        assert settings.mcp_client_token is not None
        mcp = stack.enter_context(
            McpServer(
                state_dir,
                ha_url=ha.url,
                ha_token=settings.mcp_server_token,
                broker=broker,
                base_topic=BASE_TOPIC,
                port=settings.mcp_port,
            )
        )
        say(f"  mcp server    {mcp.url}")
        say(f"Everything is up after {time.monotonic() - began:.1f} s.")

        claude, generic = client_configs(mcp.url, settings.mcp_client_token)
        for name, config in (
            ("claude_desktop_config.json", claude),
            ("mcp_client_config.json", generic),
        ):
            path = state_dir / name
            path.touch(mode=0o600)
            path.chmod(0o600)  # it holds the token
            path.write_text(json.dumps(config, indent=2) + "\n")
        say()
        say("Home Assistant")
        say(f"  URL       {ha.url}")
        say(f"  login     {ha.owner_username} / {ha.owner_password}")
        say(f"  dashboard {ha.url}/{DASHBOARD_PATH}")
        say("  (the browser asks once for a home location, the onboarding step left to you)")
        say("MCP server (streamable HTTP)")
        say(f"  URL       {mcp.url}")
        say(f"  token     {settings.mcp_client_token}")
        say("Claude Desktop (claude_desktop_config.json, uses npx mcp-remote):")
        say(json.dumps(claude, indent=2))
        say("Any streamable-HTTP MCP client:")
        say(json.dumps(generic, indent=2))
        say(f"(both also written to {state_dir.name}/; logs in {state_dir.name}/logs/)")
        say()
        say("Scripted agent session (MCP Python client):")
        ok = asyncio.run(scripted_session(mcp.url, settings.mcp_client_token))
        say("Session " + ("finished: every step did what it should." if ok else "had failures."))
        if exit_after_session:
            return 0 if ok else 1
        say()
        say("Running. Press Ctrl-C to stop everything.")
        try:
            while True:
                time.sleep(3600)
        finally:
            say("\nStopping ...")


def main() -> int:
    install_signal_handlers()
    # One state folder per Home Assistant release line: storage is not downgradable.
    default = DEFAULT_STATE / lane().name
    state_dir = Path(os.environ.get("DEMO_STATE_DIR") or default).resolve()
    exit_after = os.environ.get("DEMO_EXIT_AFTER_SESSION", "") not in ("", "0")
    try:
        return run(state_dir, exit_after)
    except (KeyboardInterrupt, SystemExit):
        say("\nStopped everything.")
        return 0
    except HarnessError as err:
        say(f"demo failed: {err}")
        say(f"logs: {state_dir / 'logs'}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
