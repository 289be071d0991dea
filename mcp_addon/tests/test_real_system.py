"""The server against the real system: Mosquitto (with auth), virtual devices (firmware core),
Home Assistant with MQTT and the integration, all started through harness/, driven by the MCP
client over streamable HTTP and stdio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
import json
from pathlib import Path
import secrets
import signal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from addon_clients import (
    ADDON_DIR,
    HTTP_HEADERS,
    INITIALIZE,
    data,
    error_text,
    http_server,
    http_session,
    post_initialize,
    stdio_session,
)
from addon_fakes import FakeHomeAssistant, free_port
import aiohttp
import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp_types import ElicitRequestParams, ElicitResult, ErrorData
from pydantic import AnyUrl
import pytest

from harness import Broker, HomeAssistant, McpServer, VirtualDevices, integration_available
from harness._process import async_wait_until, run_sync

PROFILES = {"greenhouse": "greenhouse", "lamp": "lamp", "sensor-node": "sensor_node"}
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class RealSystem:
    hass: HomeAssistant
    broker: Broker
    devices: dict[str, VirtualDevices]
    mcp: McpServer
    token: str
    state_dir: Path

    def stdio_env(self) -> dict[str, str]:
        env = self.mcp.env()
        env.pop("MCP_PORT", None)
        return env


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSystem]:
    if not integration_available():
        pytest.fail("custom_components/esp_mcp_bridge is missing")
    state_dir = tmp_path_factory.mktemp("real")
    with (
        Broker(state_dir, username="addon", password=secrets.token_urlsafe(12)) as broker,
        HomeAssistant(state_dir) as hass,
    ):
        hass.setup_mqtt(broker)
        devices: dict[str, VirtualDevices] = {}
        try:
            for device_id, profile in PROFILES.items():
                devices[device_id] = VirtualDevices(
                    broker, profile, device_id, state_dir, interval_scale=0.1
                ).start()
            hass.setup_integration("mcp_bridge", prefer_discovery=True)

            async def all_online() -> None:
                async with hass.client() as ha:

                    async def online() -> bool:
                        result = await ha.ws("esp_mcp_bridge/devices")
                        return set(PROFILES) <= {
                            d["device_id"] for d in result["devices"] if d["online"]
                        }

                    await async_wait_until(online, 60, "every device online in the integration")

            run_sync(all_online)
            token = hass.create_token("add-on tests")
            assert hass.token is not None
            with McpServer(state_dir, ha_url=hass.url, ha_token=hass.token, broker=broker) as mcp:
                yield RealSystem(hass, broker, devices, mcp, token, state_dir)
        finally:
            for dev in devices.values():
                dev.terminate()


async def test_read_tools(real: RealSystem) -> None:
    async with http_session(real.mcp.url, real.token) as session:
        devices = data(await session.call_tool("list_devices", {}))
        info = data(await session.call_tool("get_device_info", {"device_id": "greenhouse"}))
        found = data(await session.call_tool("query_devices", {"actuator_type": "led"}))
        alerts = data(await session.call_tool("get_alerts", {"since": "1h"}))
        system = data(await session.call_tool("get_metrics", {}))
        live = data(await session.call_tool("get_metrics", {"device_id": "lamp", "live": True}))
        diagnostics = data(
            await session.call_tool("device_diagnostics", {"device_id": "greenhouse"})
        )
        caps = await session.read_resource("esp-mcp://devices/greenhouse/capabilities")

        async def has_value() -> bool:
            reading = data(
                await session.call_tool(
                    "read_sensor", {"device_id": "greenhouse", "sensor_id": "temperature"}
                )
            )
            return isinstance(reading.get("value"), float | int)

        await async_wait_until(has_value, 30, "a temperature value")

        async def has_stats() -> bool:
            reading = data(
                await session.call_tool(
                    "read_sensor",
                    {"device_id": "greenhouse", "sensor_id": "temperature", "window": "15m"},
                )
            )
            return bool(reading.get("stats", {}).get("count", 0) >= 2)

        await async_wait_until(has_stats, 40, "temperature statistics over 15 minutes")
        # Over 48 h the recorder's statistics are asked first; a fresh recorder has none
        # yet, so the answer falls back to the recorded history.
        long = data(
            await session.call_tool(
                "read_sensor",
                {"device_id": "greenhouse", "sensor_id": "temperature", "window": "3d"},
            )
        )
    assert long["window"]["source"] == "history"
    assert long["stats"]["count"] >= 2
    assert {d["id"] for d in devices["devices"]} == set(PROFILES)
    assert devices["online"] == 3
    valve = next(a for a in info["actuators"] if a["id"] == "valve")
    assert valve["requires_confirmation"] is True
    assert valve["entity_id"].startswith("number.")
    assert next(s for s in info["sensors"] if s["id"] == "temperature")["entity_id"].startswith(
        "sensor."
    )
    assert [d["id"] for d in found["devices"]] == ["lamp"]
    assert alerts["count"] == len(alerts["alerts"])
    assert system["devices_online"] == 3
    assert live["live"] is True
    assert "uptime_s" in live["metrics"]
    ping = next(f for f in diagnostics["findings"] if f["check"] == "ping")
    assert ping["status"] == "ok"
    assert diagnostics["verdict"] in ("healthy", "degraded")
    text = caps.contents[0]
    assert json.loads(getattr(text, "text", "{}"))["device_id"] == "greenhouse"


class Accept:
    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": True})
        return ElicitResult(action="decline")


async def test_control_with_elicitation_and_logbook(real: RealSystem) -> None:
    started = datetime.now(UTC).isoformat()
    async with real.hass.client() as ha:
        device = (await ha.ws("esp_mcp_bridge/devices", device_id="greenhouse"))["devices"][0]
        valve_entity = device["entities"]["actuators"]["valve"]
        led_entity = (await ha.ws("esp_mcp_bridge/devices", device_id="lamp"))["devices"][0][
            "entities"
        ]["actuators"]["led"]
        async with http_session(real.mcp.url, real.token, elicitation=Accept("decline")) as s:
            declined = data(
                await s.call_tool(
                    "control_actuator",
                    {"device_id": "greenhouse", "actuator_id": "valve", "value": 25},
                )
            )
        async with http_session(real.mcp.url, real.token, elicitation=Accept("accept")) as s:
            done = data(
                await s.call_tool(
                    "control_actuator",
                    {"device_id": "greenhouse", "actuator_id": "valve", "value": 30},
                )
            )
            led = data(
                await s.call_tool(
                    "control_actuator", {"device_id": "lamp", "actuator_id": "led", "value": True}
                )
            )
        assert declined["status"] == "declined"
        assert done["status"] == "done"
        assert done["value"] == 30
        assert led["value"] is True
        await ha.wait_state(valve_entity, {"30", "30.0"}, within=15)
        await ha.wait_state(led_entity, "on", within=15)

        async def logged() -> bool:
            entries = await ha.logbook(started)
            messages = [
                str(e.get("message", ""))
                for e in entries
                if e.get("entity_id") == valve_entity and e.get("context_user_id")
            ]
            return any("to 30 %: ok" in m for m in messages) and any(
                "declined" in m for m in messages
            )

        await async_wait_until(logged, 15, "logbook entries for the valve, with the user")


async def test_http_auth_against_home_assistant(real: RealSystem) -> None:
    none = await post_initialize(real.mcp.url)
    wrong = await post_initialize(real.mcp.url, Authorization="Bearer wrong")
    valid = await post_initialize(real.mcp.url, Authorization=f"Bearer {real.token}")
    assert (none.status_code, wrong.status_code, valid.status_code) == (401, 401, 200)


async def test_stdio_against_real_home_assistant(real: RealSystem) -> None:
    async with stdio_session(real.stdio_env()) as session:
        devices = data(await session.call_tool("list_devices", {"capability": "pressure"}))
        led = data(
            await session.call_tool(
                "control_actuator", {"device_id": "lamp", "actuator_id": "led", "action": "toggle"}
            )
        )
    assert [d["id"] for d in devices["devices"]] == ["sensor-node"]
    assert isinstance(led["value"], bool)


async def test_stopped_device_times_out_then_recovers(real: RealSystem) -> None:
    lamp = real.devices["lamp"]
    async with http_session(real.mcp.url, real.token) as session:
        lamp.signal(signal.SIGSTOP)
        try:
            result = await session.call_tool(
                "control_actuator", {"device_id": "lamp", "actuator_id": "led", "value": False}
            )
        finally:
            lamp.signal(signal.SIGCONT)
        assert "did not answer within" in error_text(result)

        async def answers() -> bool:
            again = await session.call_tool(
                "control_actuator", {"device_id": "lamp", "actuator_id": "led", "value": False}
            )
            return not again.is_error

        await async_wait_until(answers, 20, "the lamp to answer again")


async def test_offline_device(real: RealSystem) -> None:
    real.devices["sensor-node"].terminate()
    async with http_session(real.mcp.url, real.token) as session:

        async def offline() -> bool:
            rows = data(await session.call_tool("list_devices", {"online": False}))["devices"]
            return [d["id"] for d in rows] == ["sensor-node"]

        await async_wait_until(offline, 20, "sensor-node offline")
        diagnostics = data(
            await session.call_tool("device_diagnostics", {"device_id": "sensor-node"})
        )
        metrics = await session.call_tool("get_metrics", {"device_id": "sensor-node", "live": True})
    assert diagnostics["verdict"] == "offline"
    assert "offline" in error_text(metrics)


async def test_tls_broker_with_virtual_device(tmp_path: Path, fake_ha: FakeHomeAssistant) -> None:
    """MQTT over TLS with a password: the server talks to a real virtual device ("lamp-1")."""
    with Broker(tmp_path, username="tls", password=secrets.token_urlsafe(12), tls=True) as broker:
        assert broker.ca_file is not None
        with VirtualDevices(broker, "lamp", "lamp-1", tmp_path) as lamp:
            lamp.wait_ready()
            env = {
                "HA_URL": fake_ha.url,
                "HA_TOKEN": "server-token-0123456789",
                "MQTT_HOST": broker.host,
                "MQTT_PORT": str(broker.port),
                "MQTT_USERNAME": broker.username or "",
                "MQTT_PASSWORD": broker.password or "",
                "MQTT_CAFILE": str(broker.ca_file),
                "PYTHONPATH": str(ADDON_DIR),
            }
            async with stdio_session(env) as session:
                result = data(
                    await session.call_tool(
                        "control_actuator",
                        {"device_id": "lamp-1", "actuator_id": "led", "value": True},
                    )
                )
    assert result["status"] == "done"
    assert result["value"] is True


async def new_member(hass: HomeAssistant) -> tuple[str, str]:
    """A Home Assistant user who is not an administrator: (username, password)."""
    password = secrets.token_urlsafe(12)
    username = f"member{secrets.token_hex(3)}"
    async with hass.client() as ha:
        created = await ha.ws("config/auth/create", name="Member", group_ids=["system-users"])
        await ha.ws(
            "config/auth_provider/homeassistant/create",
            user_id=created["user"]["id"],
            username=username,
            password=password,
        )
    return username, password


async def member_token(hass: HomeAssistant) -> str:
    """A user who is not an administrator, logged in the way a browser does (login flow, then
    the authorization code for an access token)."""
    username, password = await new_member(hass)
    client_id = f"{hass.url}/"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hass.url}/auth/login_flow",
            json={
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{hass.url}/?auth_callback=1",
            },
        ) as resp:
            flow = await resp.json()
        async with session.post(
            f"{hass.url}/auth/login_flow/{flow['flow_id']}",
            json={"client_id": client_id, "username": username, "password": password},
        ) as resp:
            result = await resp.json()
        assert result["type"] == "create_entry", result
        form = {
            "grant_type": "authorization_code",
            "code": result["result"],
            "client_id": client_id,
        }
        async with session.post(f"{hass.url}/auth/token", data=form) as resp:
            assert resp.status == 200, await resp.text()
            return str((await resp.json())["access_token"])


async def test_non_admin_refused_unless_allowed(real: RealSystem, tmp_path: Path) -> None:
    """Home Assistant says whose token it is: a user who is not an administrator is refused by
    default, the owner is not, and the option lets the user in."""
    token = await member_token(real.hass)
    refused = await post_initialize(real.mcp.url, Authorization=f"Bearer {token}")
    owner = await post_initialize(real.mcp.url, Authorization=f"Bearer {real.token}")
    env = {**real.mcp.env(), "ALLOW_NON_ADMIN": "true"}
    env.pop("MCP_PORT")
    with http_server(env, tmp_path / "server.log") as url:
        async with http_session(url, token) as session:
            devices = await session.call_tool("list_devices", {})
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert owner.status_code == 200
    assert data(devices)["total"] >= len(PROFILES)


class MemoryStorage:
    """The OAuth client's token and registration store."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """What the user's browser does with the authorization URL: Home Assistant's login page
    (/auth/authorize) runs the login flow API with the request's parameters, the user types
    their name and password, and Home Assistant redirects to redirect_uri with the code."""

    def __init__(self, hass: HomeAssistant, user: tuple[str, str] | None = None) -> None:
        self.hass = hass
        self.user = user or (hass.owner_username, hass.owner_password)
        self.opened: list[str] = []
        self.login_pages: list[str] = []

    async def open(self, url: str) -> None:
        self.opened.append(url)

    async def callback(self) -> AuthorizationCodeResult:
        async with aiohttp.ClientSession() as session:
            page = self.opened[-1]
            async with session.get(page, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    page = resp.headers["Location"]
            self.login_pages.append(page)
            url = urlsplit(page)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            base = f"{url.scheme}://{url.netloc}"
            start: dict[str, object] = {
                "client_id": params["client_id"],
                "handler": ["homeassistant", None],
                "redirect_uri": params["redirect_uri"],
            }
            if self.hass.lane.name != "oldest":  # PKCE in the login flow since 2026
                start["code_challenge"] = params["code_challenge"]
                start["code_challenge_method"] = params["code_challenge_method"]
            async with session.post(f"{base}/auth/login_flow", json=start) as resp:
                flow = await resp.json()
                assert resp.status == 200, flow
            async with session.post(
                f"{base}/auth/login_flow/{flow['flow_id']}",
                json={
                    "client_id": params["client_id"],
                    "username": self.user[0],
                    "password": self.user[1],
                },
            ) as resp:
                result = await resp.json()
        assert result["type"] == "create_entry", result
        return AuthorizationCodeResult(code=result["result"], state=params["state"])


async def test_oauth_login_through_home_assistant(real: RealSystem, tmp_path: Path) -> None:
    """The SDK's OAuth client, given only the MCP URL: a 401 leads it to the protected-resource
    metadata, that to Home Assistant's own authorization-server metadata; it registers (the
    add-on hands out the IndieAuth client_id), the user logs in through Home Assistant's login
    flow with PKCE, Home Assistant issues the token, and the add-on accepts it. Home Assistant
    2025.4 has no usable metadata: the client then takes the add-on's /authorize (a redirect
    to the same login page) and /token (passed to Home Assistant)."""
    async with real.hass.client() as ha:
        # Home Assistant names itself in its metadata only when it knows its URL.
        await ha.ws("config/core/update", internal_url=real.hass.url)
    env = {**real.mcp.env()}
    env.pop("MCP_PORT")
    browser = Browser(real.hass)
    storage = MemoryStorage()
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    with http_server(env, tmp_path / "server.log") as url:
        provider = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[AnyUrl(redirect)],
                client_name="add-on tests",
                grant_types=["authorization_code", "refresh_token"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=browser.open,
            callback_handler=browser.callback,
        )
        async with (
            httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60)) as client,
            streamable_http_client(url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            devices = data(await session.call_tool("list_devices", {}))
    assert len(browser.login_pages) == 1
    if real.hass.lane.name != "oldest":  # straight to Home Assistant, no detour
        assert browser.opened == browser.login_pages
    authorize = urlsplit(browser.login_pages[0])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == (
        f"{real.hass.url}/auth/authorize"
    )
    assert parse_qs(authorize.query)["client_id"] == [redirect.rsplit("/", 1)[0] + "/"]
    assert storage.tokens is not None
    assert storage.tokens.refresh_token
    assert storage.tokens.access_token != real.token
    assert devices["total"] >= len(PROFILES)


async def asked_in_home_assistant(hass: HomeAssistant, since: set[str]) -> str:
    """The id of the add-on's new persistent notification in Home Assistant."""
    found: list[str] = []

    async def shown() -> bool:
        async with hass.client() as ha:
            notes = await ha.ws("persistent_notification/get")
        found[:] = [
            n["notification_id"]
            for n in notes
            if n["notification_id"].startswith("esp_mcp_bridge_confirm_")
            and n["notification_id"] not in since
        ]
        return bool(found)

    await async_wait_until(shown, 30, "the add-on's question in Home Assistant")
    return found[0]


async def fire_action(hass: HomeAssistant, token: str, action: str) -> None:
    """What the phone does when a button of an actionable notification is pressed."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hass.url}/api/events/mobile_app_notification_action",
            json={"action": action},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(
    ("button", "status", "value"), [("APPROVE", "done", 40), ("DENY", "declined", 20)]
)
async def test_confirmed_in_home_assistant(
    real: RealSystem, tmp_path: Path, button: str, status: str, value: int
) -> None:
    """A client that cannot elicit: Home Assistant shows the question, the answer comes as the
    phone's mobile_app_notification_action event; the valve moves only when approved."""
    env = {**real.mcp.env(), "CONFIRM_IN_HOME_ASSISTANT": "true", "CONFIRM_TTL_S": "60"}
    env.pop("MCP_PORT")
    async with real.hass.client() as ha:
        device = (await ha.ws("esp_mcp_bridge/devices", device_id="greenhouse"))["devices"][0]
        valve_entity = device["entities"]["actuators"]["valve"]
        before = {n["notification_id"] for n in await ha.ws("persistent_notification/get")}
    notes: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(progress)

    with http_server(env, tmp_path / "server.log") as url:
        async with http_session(url, real.token) as session:
            args: dict[str, Any] = {"device_id": "greenhouse", "actuator_id": "valve"}
            call = asyncio.create_task(
                session.call_tool(
                    "control_actuator", {**args, "value": value}, progress_callback=on_progress
                )
            )
            notification = await asked_in_home_assistant(real.hass, before)
            rid = notification.removeprefix("esp_mcp_bridge_confirm_")
            await fire_action(real.hass, real.token, f"ESP_MCP_{button}_{rid}")
            result = data(await call)
    assert result["status"] == status
    assert notes, "no progress notification while waiting"
    async with real.hass.client() as ha:
        state = await ha.state(valve_entity)
        left = {n["notification_id"] for n in await ha.ws("persistent_notification/get")}
    assert notification not in left  # withdrawn
    assert state is not None
    if status == "done":
        assert result["value"] == value
        await_state = {str(value), f"{value}.0"}
        async with real.hass.client() as ha:
            await ha.wait_state(valve_entity, await_state, within=15)
    else:
        assert state["state"] not in {str(value), f"{value}.0"}


async def test_not_confirmed_in_home_assistant_expires(real: RealSystem, tmp_path: Path) -> None:
    env = {**real.mcp.env(), "CONFIRM_IN_HOME_ASSISTANT": "true", "CONFIRM_TTL_S": "3"}
    env.pop("MCP_PORT")
    with http_server(env, tmp_path / "server.log") as url:
        async with http_session(url, real.token) as session:
            result = data(
                await session.call_tool(
                    "control_actuator",
                    {"device_id": "greenhouse", "actuator_id": "valve", "value": 10},
                )
            )
        async with real.hass.client() as ha:
            left = [
                n["notification_id"]
                for n in await ha.ws("persistent_notification/get")
                if n["notification_id"].startswith("esp_mcp_bridge_confirm_")
            ]
    assert result["status"] == "expired"
    assert "value" not in result
    assert left == []


async def test_oauth_login_of_a_member_refused_once(real: RealSystem, tmp_path: Path) -> None:
    """A user who is not an administrator logs in with OAuth: the add-on refuses them (403),
    and the client does not send them to log in again (which could not help)."""
    async with real.hass.client() as ha:
        await ha.ws("config/core/update", internal_url=real.hass.url)
    env = {**real.mcp.env()}
    env.pop("MCP_PORT")
    browser = Browser(real.hass, await new_member(real.hass))
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    with http_server(env, tmp_path / "server.log") as url:
        provider = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[AnyUrl(redirect)], token_endpoint_auth_method="none"
            ),
            storage=MemoryStorage(),
            redirect_handler=browser.open,
            callback_handler=browser.callback,
        )
        async with httpx2.AsyncClient(auth=provider, timeout=30) as client:
            first = await client.post(url, json=INITIALIZE, headers=HTTP_HEADERS)
            response = await client.post(url, json=INITIALIZE, headers=HTTP_HEADERS)
    assert first.status_code == 403
    assert response.status_code == 403
    assert "allow_non_admin" in response.json()["error_description"]
    assert len(browser.login_pages) == 1
