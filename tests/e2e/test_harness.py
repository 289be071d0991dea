"""The harness itself: the broker's auth/TLS/restart and Home Assistant's onboarding reuse."""

from __future__ import annotations

import json
from pathlib import Path
import ssl
import threading
import time
from typing import Any

from e2e_support import MqttObserver
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
import pytest

from harness import (
    Broker,
    HaApiError,
    HomeAssistant,
    McpServer,
    VirtualDevices,
    wait_until,
)
from harness._process import async_wait_until
from harness.mcp_client import mcp_session


def _connect(broker: Broker, username: str | None, password: str | None) -> ReasonCode:
    """Connect once and return the broker's CONNACK reason code."""
    done = threading.Event()
    result: list[ReasonCode] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        result.append(rc)
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    if username is not None:
        client.username_pw_set(username, password)
    if broker.ca_file is not None:
        client.tls_set(ca_certs=str(broker.ca_file), cert_reqs=ssl.CERT_REQUIRED)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        wait_until(done.is_set, 10, "CONNACK")
    finally:
        client.loop_stop()
        client.disconnect()
    return result[0]


def test_broker_requires_credentials_and_keeps_port_on_restart(tmp_path: Path) -> None:
    with Broker(tmp_path, username="alice", password="s3cret-pw") as broker:
        port = broker.port
        assert _connect(broker, None, None).is_failure
        assert _connect(broker, "alice", "wrong").is_failure
        assert not _connect(broker, "alice", "s3cret-pw").is_failure
        broker.restart()
        assert broker.port == port
        assert not _connect(broker, "alice", "s3cret-pw").is_failure
    assert not broker.running


def test_broker_tls_with_generated_ca(tmp_path: Path) -> None:
    with Broker(tmp_path, username="bob", password="pw-bob-1", tls=True) as broker:
        assert broker.url.startswith("mqtts://127.0.0.1:")
        assert broker.ca_file is not None
        assert not _connect(broker, "bob", "pw-bob-1").is_failure
        # A client that does not trust the generated CA is refused by the TLS handshake.
        plain = mqtt.Client(CallbackAPIVersion.VERSION2)
        plain.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        with pytest.raises(ssl.SSLError):
            plain.connect(broker.host, broker.port)


async def test_home_assistant_onboarded_and_mqtt_set_up(
    hass: HomeAssistant, broker: Broker
) -> None:
    assert hass.token is not None
    async with hass.client() as ha:
        config = await ha.get("/api/config")
        assert config["state"] == "RUNNING"
        onboarding = {s["step"]: s["done"] for s in await ha.get("/api/onboarding")}
        assert onboarding["user"] is True
        entries = await ha.config_entries("mqtt")
        assert [e["state"] for e in entries] == ["loaded"]
        flow = await ha.start_flow("mqtt")
        # Only one MQTT entry is allowed; the flow aborts instead of offering a form.
        assert flow["type"] == "abort"
        assert flow["reason"] == "single_instance_allowed"
        with pytest.raises(HaApiError):
            await ha.flow_step("not-a-flow", {})


def test_second_start_reuses_state_and_token(tmp_path: Path) -> None:
    with Broker(tmp_path, username="u", password="pw-for-u") as broker:
        with HomeAssistant(tmp_path, with_integration=False) as first:
            first.setup_mqtt(broker)
            token, password, port = first.token, first.owner_password, first.port
        second = HomeAssistant(tmp_path, with_integration=False)
        assert (second.owner_password, second.token, second.port) == (password, token, port)
        with second:
            entry_id = second.setup_mqtt(broker)
            assert second.token == token
        assert entry_id
        # A lost token file is recovered through the login flow with the owner's password.
        lost = {"username": "owner", "password": password, "token": None}
        (tmp_path / "hass_auth.json").write_text(json.dumps(lost))
        with HomeAssistant(tmp_path, with_integration=False) as third:
            assert third.token is not None
            assert third.token != token


def test_virtual_device_over_tls_with_password(tmp_path: Path) -> None:
    with Broker(tmp_path, username="dev", password="pw-dev-tls", tls=True) as broker:
        observer = MqttObserver(broker, "mcp_bridge/#", client_id="tls-observer")
        try:
            with VirtualDevices(broker, "lamp", "tls-lamp", tmp_path) as device:
                assert device.ready_ids == {"tls-lamp"}
                # The password is not on the command line (it goes through the environment).
                assert "pw-dev-tls" not in " ".join(device.command())
                status = observer.wait_for("mcp_bridge/tls-lamp/status")
                assert status.payload == b"online"
                caps = observer.wait_for("mcp_bridge/tls-lamp/capabilities").json()
                assert {a["id"] for a in caps["actuators"]} == {"led", "brightness"}
                since = time.time()
            # SIGTERM: a clean disconnect that says `offline` itself.
            observer.wait_for(
                "mcp_bridge/tls-lamp/status", lambda m: m.payload == b"offline", since=since
            )
        finally:
            observer.close()
    log = (tmp_path / "logs" / "mosquitto.log").read_text()
    assert "pw-dev-tls" not in log


async def test_everything_over_tls_with_passwords(tmp_path: Path) -> None:
    """Broker TLS-only with auth: device, HA's MQTT (CA uploaded in its flow), MCP server."""
    with (
        Broker(tmp_path, username="tls", password="pw-tls-all", tls=True) as broker,
        VirtualDevices(broker, "lamp", "tls-lamp", tmp_path),
        HomeAssistant(tmp_path) as hass,
    ):
        await hass.async_setup_mqtt(broker)
        async with hass.client() as ha:
            entry = (await ha.config_entries("mqtt"))[0]
            assert entry["state"] == "loaded"
            await hass.async_setup_integration("mcp_bridge")

            async def online() -> bool:
                result = await ha.ws("esp_mcp_bridge/devices", device_id="tls-lamp")
                return bool(result["devices"] and result["devices"][0]["online"])

            await async_wait_until(online, 60, "tls-lamp online in HA over TLS")
            assert hass.token is not None
            with McpServer(tmp_path, ha_url=hass.url, ha_token=hass.token, broker=broker) as mcp:
                assert mcp.env()["MQTT_TLS"] == "1"
                async with mcp_session(mcp.url, hass.token) as session:
                    result = await session.call(
                        "control_actuator", device_id="tls-lamp", actuator_id="led", value=True
                    )
                    assert result.data.get("status") == "done", result.text
            light = (await ha.ws("esp_mcp_bridge/devices", device_id="tls-lamp"))["devices"][0][
                "entities"
            ]["actuators"]["led"]
            await ha.wait_state(light, "on", within=15)
