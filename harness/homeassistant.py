"""A real Home Assistant (``hass``) onboarded and configured through its own HTTP API.

Nothing here writes Home Assistant's ``.storage`` files: the owner account,
tokens and config entries are created the way a user's browser would, over
HTTP and WebSocket. A second start with the same state directory reuses the
configuration and the tokens kept in ``ha_auth.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import json
from pathlib import Path
import secrets
import shutil
import time
from typing import Any, Self, cast

import aiohttp

from harness._process import (
    HarnessError,
    ManagedProcess,
    async_wait_until,
    free_port,
    port_open,
    read_private_json,
    run_sync,
    spawn,
    write_private_json,
)
from harness.broker import Broker
from harness.ha_client import HaApiError, HaClient, JsonDict
from harness.ha_lanes import HaLane, lane

REPO_ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_SRC = REPO_ROOT / "custom_components" / "esp_mcp_bridge"
DOMAIN = "esp_mcp_bridge"
HOST = "127.0.0.1"

# Home Assistant >= 2026.x moves the `http` settings from YAML into its storage on the
# first start and ignores (and flags) them in YAML afterwards.
HTTP_YAML = """\
http:
  server_host: {host}
  server_port: {port}
"""
CONFIGURATION_YAML = """\
# Written by the harness on every start.
homeassistant:
  name: ESP MCP Bridge demo
  unit_system: metric
  time_zone: UTC
  latitude: 0
  longitude: 0
  elevation: 0
  currency: EUR
  country: DE
{http}recorder:
  commit_interval: 1
history:
logbook:
api:
websocket_api:
frontend:
config:
logger:
  default: {log_level}
  logs:
    homeassistant.components.mqtt: {mqtt_log_level}
    custom_components.esp_mcp_bridge: debug
"""


def integration_available() -> bool:
    """Whether this repository's integration is present (it has a manifest)."""
    return (INTEGRATION_SRC / "manifest.json").exists()


class HomeAssistant(ManagedProcess):
    """``hass -c <state_dir>/ha --skip-pip`` on 127.0.0.1 and a free port.

    ``start()`` waits for the API, onboards on first start (owner account,
    long-lived token) and returns when Home Assistant is running.
    """

    log_lines = 80
    stop_timeout = 30.0

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        owner_username: str = "owner",
        owner_name: str = "Demo Owner",
        owner_password: str | None = None,
        with_integration: bool = True,
        ha_lane: HaLane | None = None,
        log_level: str = "info",
        name: str = "hass",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.config_dir = self.state_dir / name
        self.auth_file = self.state_dir / f"{name}_auth.json"
        super().__init__(self.state_dir / "logs" / f"{name}.log")
        self.lane = ha_lane if ha_lane is not None else lane()
        self.with_integration = with_integration
        self.log_level = log_level
        saved = self._load_auth()
        self.owner_username = str(saved.get("username", owner_username))
        self.owner_name = owner_name
        self.owner_password = str(
            saved.get("password") or owner_password or secrets.token_urlsafe(12)
        )
        self.token: str | None = cast(str | None, saved.get("token"))
        saved_port = cast(int | None, saved.get("port"))
        stored_port = self._stored_http_port()
        if stored_port is not None:
            # Home Assistant keeps listening where its stored HTTP settings say.
            self.port = stored_port
        elif port is not None:
            self.port = port
        elif saved_port is not None and not port_open(HOST, saved_port):
            self.port = saved_port
        else:
            self.port = free_port(HOST)
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ state
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def client_id(self) -> str:
        return f"{self.url}/"

    def _load_auth(self) -> dict[str, Any]:
        return read_private_json(self.auth_file)

    def _save_auth(self) -> None:
        data = {
            "username": self.owner_username,
            "password": self.owner_password,
            "token": self.token,
            "port": self.port,
        }
        write_private_json(self.auth_file, data)

    def _stored_http_store(self) -> dict[str, Any] | None:
        """HA >= 2026.x's stored HTTP settings once the YAML ones were moved there."""
        data = read_private_json(self.config_dir / ".storage" / "http").get("data")
        if not isinstance(data, dict) or not data.get("yaml_migration_done"):
            return None
        return data

    def _stored_http_port(self) -> int | None:
        data = self._stored_http_store()
        if data is None:
            return None
        pending = data.get("pending")
        active = pending if isinstance(pending, dict) and not pending.get("error") else None
        chosen = active or data.get("stable") or {}
        port = chosen.get("server_port")
        return int(port) if isinstance(port, int) else None

    def client(self) -> HaClient:
        if self.token is None:
            raise HarnessError("Home Assistant is not onboarded yet")
        return HaClient(self.url, self.token)

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(
            CONFIGURATION_YAML.format(
                http=""
                if self._stored_http_store() is not None
                else HTTP_YAML.format(host=HOST, port=self.port),
                log_level=self.log_level,
                mqtt_log_level=self.log_level,
            )
        )
        custom = self.config_dir / "custom_components"
        custom.mkdir(exist_ok=True)
        link = custom / DOMAIN
        if link.is_symlink() or link.exists():
            if link.is_symlink() or link.is_file():
                link.unlink()
            else:
                shutil.rmtree(link)
        if self.with_integration and integration_available():
            link.symlink_to(INTEGRATION_SRC, target_is_directory=True)

    # --------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 120.0) -> Self:
        if self.running:
            return self
        if not self.lane.installed:
            raise HarnessError(
                f"Home Assistant ({self.lane.name}) is not installed (make bootstrap installs it)"
            )
        self._write_config()
        began = time.monotonic()
        # No PYTHONPATH: HA must find this integration only in <config>/custom_components.
        env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": ""}
        self._proc = spawn(
            self.lane.command("-c", str(self.config_dir), "--skip-pip"),
            self.log_path,
            env=env,
            cwd=self.config_dir,
        )
        try:
            run_sync(lambda: self._async_bring_up(timeout))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    async def _async_bring_up(self, within: float) -> None:
        deadline = time.monotonic() + within
        proc = self._proc
        assert proc is not None

        async def http_up() -> bool:
            self._check_alive(proc, "hass")
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{self.url}/api/", timeout=aiohttp.ClientTimeout(total=2)) as resp,
            ):
                return resp.status in (200, 401)

        await async_wait_until(http_up, within, "Home Assistant's HTTP API")
        await self._async_onboard()
        async with self.client() as ha:

            async def core_running() -> bool:
                self._check_alive(proc, "hass")
                config = await ha.get("/api/config")
                return bool(config.get("state") == "RUNNING")

            await async_wait_until(
                core_running, max(deadline - time.monotonic(), 5.0), "Home Assistant RUNNING"
            )
            await _async_confirm_http_settings(ha)

    async def _async_onboard(self) -> None:
        """Onboard (first start) or check the stored token (later starts)."""
        async with aiohttp.ClientSession() as session:
            if self.token is not None:
                async with session.get(
                    f"{self.url}/api/", headers={"Authorization": f"Bearer {self.token}"}
                ) as resp:
                    if resp.status == 200:
                        return
                self.token = None
            async with session.get(f"{self.url}/api/onboarding") as resp:
                steps = cast(list[JsonDict], await resp.json()) if resp.status == 200 else []
            done = {s["step"] for s in steps if s.get("done")}
            user_done = not steps or "user" in done
            if not user_done:
                auth_code = await self._create_owner(session)
            else:
                auth_code = await self._login(session)
            access = await self._exchange_code(session, auth_code)
            headers = {"Authorization": f"Bearer {access}"}
            if steps and "analytics" not in done:
                await _post_ok(session, f"{self.url}/api/onboarding/analytics", {}, headers)
            if steps and "integration" not in done:
                await _post_ok(
                    session,
                    f"{self.url}/api/onboarding/integration",
                    {"client_id": self.client_id, "redirect_uri": f"{self.url}/?auth_callback=1"},
                    headers,
                )
        async with HaClient(self.url, access) as ha:
            token = await ha.ws(
                "auth/long_lived_access_token",
                # Names must be unique per user; a later re-login creates a new one.
                client_name=f"esp-mcp-bridge harness {time.strftime('%Y-%m-%d %H:%M:%S')}",
                lifespan=3650,
            )
        self.token = str(token)
        self._save_auth()

    async def _create_owner(self, session: aiohttp.ClientSession) -> str:
        body = {
            "client_id": self.client_id,
            "name": self.owner_name,
            "username": self.owner_username,
            "password": self.owner_password,
            "language": "en",
        }
        result = await _post_ok(session, f"{self.url}/api/onboarding/users", body)
        self._save_auth()  # the password is needed again even if a later step fails
        return str(result["auth_code"])

    async def _login(self, session: aiohttp.ClientSession) -> str:
        """The login flow a browser runs, for a later start without a stored token."""
        flow = await _post_ok(
            session,
            f"{self.url}/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.url}/?auth_callback=1",
            },
        )
        result = await _post_ok(
            session,
            f"{self.url}/auth/login_flow/{flow['flow_id']}",
            {
                "client_id": self.client_id,
                "username": self.owner_username,
                "password": self.owner_password,
            },
        )
        if result.get("type") != "create_entry":
            raise HaApiError(f"login as {self.owner_username} failed: {result.get('errors')}")
        return str(result["result"])

    async def _exchange_code(self, session: aiohttp.ClientSession, code: str) -> str:
        form = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id}
        async with session.post(f"{self.url}/auth/token", data=form) as resp:
            if resp.status != 200:
                raise HaApiError(f"token exchange failed: {resp.status} {await resp.text()}")
            return str((await resp.json())["access_token"])

    def create_token(self, client_name: str) -> str:
        """A new long-lived access token for the owner (e.g. one per MCP client)."""

        async def create() -> str:
            async with self.client() as ha:
                return str(
                    await ha.ws(
                        "auth/long_lived_access_token", client_name=client_name, lifespan=3650
                    )
                )

        return run_sync(create)

    # ------------------------------------------------------------ integrations
    def setup_mqtt(self, broker: Broker, timeout: float = 30.0) -> str:
        """Set up (or check) HA's MQTT integration for ``broker``; returns the entry id."""
        return run_sync(lambda: self.async_setup_mqtt(broker, timeout))

    async def async_setup_mqtt(self, broker: Broker, within: float = 30.0) -> str:
        async with self.client() as ha:
            marker = self.state_dir / f"{self.config_dir.name}_mqtt.json"
            wanted = {"port": broker.port, "username": broker.username, "tls": broker.tls}
            entries = await ha.config_entries("mqtt")
            if entries:
                try:
                    previous = json.loads(marker.read_text())
                except (OSError, ValueError):
                    previous = None
                entry = entries[0]
                if previous == wanted:
                    await _wait_entry_loaded(ha, entry["entry_id"], "mqtt", within)
                    return str(entry["entry_id"])
                # The broker moved (new port or credentials): set the entry up again.
                for old in entries:
                    await ha.delete_entry(old["entry_id"])
            flow = await ha.start_flow("mqtt", show_advanced=broker.tls)
            data: JsonDict = {"broker": broker.host, "port": broker.port}
            if broker.username is not None:
                data["username"] = broker.username
                data["password"] = broker.password
            fields = {f.get("name") for f in flow.get("data_schema") or []}
            if "other_settings" in fields:
                data = await _mqtt_broker_form_sections(ha, broker, data)
            elif broker.tls:
                data = await _mqtt_broker_form_advanced(ha, broker, flow, data)
            result = await ha.flow_step(flow["flow_id"], data)
            if result.get("type") != "create_entry":
                raise HaApiError(f"MQTT config flow did not finish: {result}")
            entry_id = str(result["result"]["entry_id"])
            await _wait_entry_loaded(ha, entry_id, "mqtt", within)
            marker.write_text(json.dumps(wanted) + "\n")
            return entry_id

    def setup_integration(
        self, base_topic: str = "mcp_bridge", timeout: float = 30.0, prefer_discovery: bool = True
    ) -> str:
        """Set up this repository's integration through its config flow; returns the entry id."""
        return run_sync(lambda: self.async_setup_integration(base_topic, timeout, prefer_discovery))

    async def async_setup_integration(
        self, base_topic: str = "mcp_bridge", within: float = 30.0, prefer_discovery: bool = True
    ) -> str:
        if not integration_available():
            raise HarnessError("the esp_mcp_bridge integration is not in this checkout")
        async with self.client() as ha:
            for entry in await ha.config_entries(DOMAIN):
                # One entry per base topic; the API shows it in the title only.
                if not str(entry.get("title", "")).endswith(f"({base_topic})"):
                    continue
                if entry.get("state") == "loaded" or not entry.get("disabled_by"):
                    await _wait_entry_loaded(ha, entry["entry_id"], DOMAIN, within)
                    return str(entry["entry_id"])
            for _attempt in range(3):
                flow = await self._first_flow_step(ha, base_topic, prefer_discovery)
                try:
                    entry_id = await _finish_flow(ha, flow, base_topic)
                except _FlowInProgress:
                    # HA's MQTT discovery started this integration's flow for the same base
                    # topic meanwhile; the next attempt takes that flow over.
                    prefer_discovery = True
                    continue
                await _wait_entry_loaded(ha, entry_id, DOMAIN, within)
                return entry_id
            raise HaApiError(f"{DOMAIN} config flow kept aborting with already_in_progress")

    @staticmethod
    async def _first_flow_step(ha: HaClient, base_topic: str, prefer_discovery: bool) -> JsonDict:
        if prefer_discovery:
            for flow in await ha.flows_in_progress(DOMAIN):
                unique_id = (flow.get("context") or {}).get("unique_id")
                if unique_id in (None, base_topic):
                    return cast(
                        JsonDict, await ha.get(f"/api/config/config_entries/flow/{flow['flow_id']}")
                    )
        return await ha.start_flow(DOMAIN)


async def _async_confirm_http_settings(ha: HaClient) -> None:
    """Keep the HTTP settings this start moved from YAML into HA's storage (HA >= 2026.x).

    They are a trial until confirmed: unconfirmed, Home Assistant restarts after five
    minutes onto its default settings (port 8123 on every interface).
    """
    try:
        config = await ha.ws("http/config")
    except HaApiError:
        return  # an older release: the YAML settings are the settings
    pending = config.get("pending") if isinstance(config, dict) else None
    if isinstance(pending, dict) and not pending.get("error"):
        await ha.ws("http/config/promote")


async def _mqtt_broker_form_sections(ha: HaClient, broker: Broker, data: JsonDict) -> JsonDict:
    """HA >= 2026: one broker form whose TLS and client settings are a required section."""
    other: JsonDict = {"set_client_cert": False, "set_ca_cert": "off", "transport": "tcp"}
    if broker.tls:
        assert broker.ca_file is not None
        other["set_ca_cert"] = "custom"
        other["certificate"] = await ha.upload_file(
            broker.ca_file.name, broker.ca_file.read_bytes()
        )
    return {**data, "other_settings": other}


async def _mqtt_broker_form_advanced(
    ha: HaClient, broker: Broker, flow: JsonDict, data: JsonDict
) -> JsonDict:
    """HA 2025.x: TLS settings come in the advanced form, which asks for the CA file."""
    assert broker.ca_file is not None
    advanced = await ha.flow_step(flow["flow_id"], {**data, "advanced_options": True})
    if advanced.get("type") != "form":
        raise HaApiError(f"MQTT config flow has no advanced form: {advanced}")
    # Choosing a custom CA brings the form back with a file field for it.
    data = {**data, "set_ca_cert": "custom"}
    with_file = await ha.flow_step(flow["flow_id"], data)
    if with_file.get("type") != "form":
        raise HaApiError(f"MQTT config flow did not ask for the CA: {with_file}")
    data["certificate"] = await ha.upload_file(broker.ca_file.name, broker.ca_file.read_bytes())
    return data


class _FlowInProgress(Exception):
    """The flow aborted because another flow for the same unique id is in progress."""


async def _finish_flow(ha: HaClient, flow: JsonDict, base_topic: str) -> str:
    """Answer a flow's steps until it creates an entry; returns the entry id."""
    for _ in range(10):
        kind = flow.get("type")
        if kind == "create_entry":
            return str(flow["result"]["entry_id"])
        if kind == "abort":
            if flow.get("reason") == "already_in_progress":
                raise _FlowInProgress
            raise HaApiError(f"{DOMAIN} config flow aborted: {flow.get('reason')}")
        if kind == "menu":
            options = flow.get("menu_options") or []
            choice = "user" if "user" in options else options[0]
            flow = await ha.flow_step(flow["flow_id"], {"next_step_id": choice})
            continue
        if kind != "form":
            raise HaApiError(f"unexpected {DOMAIN} flow result: {flow}")
        if flow.get("errors"):
            raise HaApiError(f"{DOMAIN} config flow error: {flow['errors']}")
        flow = await ha.flow_step(
            flow["flow_id"], _fill_form(flow.get("data_schema") or [], base_topic)
        )
    raise HaApiError(f"{DOMAIN} config flow did not finish: {flow}")


def _fill_form(schema: list[JsonDict], base_topic: str) -> JsonDict:
    """Answer a config-flow form: the base topic where asked, defaults elsewhere."""
    data: JsonDict = {}
    for field in schema:
        name = field.get("name")
        if not isinstance(name, str):
            continue
        if "topic" in name:
            data[name] = base_topic
        elif "default" in field:
            data[name] = field["default"]
    return data


async def _wait_entry_loaded(ha: HaClient, entry_id: str, domain: str, within: float) -> None:
    async def loaded() -> bool:
        for entry in await ha.config_entries(domain):
            if entry["entry_id"] == entry_id:
                if entry.get("state") in ("setup_error", "migration_error", "failed_unload"):
                    raise HaApiError(f"{domain} entry failed: {entry.get('reason')}")
                return bool(entry.get("state") == "loaded")
        return False

    await async_wait_until(loaded, within, f"{domain} config entry to load")


async def _post_ok(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> JsonDict:
    async with session.post(url, json=dict(body), headers=dict(headers or {})) as resp:
        if resp.status not in (200, 201):
            raise HaApiError(f"POST {url.split('/', 3)[-1]} -> {resp.status}: {await resp.text()}")
        with contextlib.suppress(aiohttp.ContentTypeError):
            return cast(JsonDict, await resp.json())
        return {}


def hass_env_ok() -> bool:
    """Whether the selected Home Assistant environment is installed."""
    return lane().installed
