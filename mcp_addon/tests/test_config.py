"""Configuration: environment, CLI flags, the Supervisor MQTT service, no secrets in logs."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from addon_clients import ADDON_DIR, SERVER_TOKEN
from addon_fakes import FakeHomeAssistant, wait_until
import pytest

from esp_mcp_server.config import (
    ConfigError,
    apply_supervisor_mqtt,
    parse_args,
    settings_from_env,
)


def test_outside_home_assistant_from_env() -> None:
    settings = settings_from_env(
        {
            "HA_URL": "http://10.0.0.2:8123",
            "HA_TOKEN": "secret-token",
            "MQTT_HOST": "broker",
            "MQTT_PORT": "8883",
            "MQTT_USERNAME": "u",
            "MQTT_PASSWORD": "hunter2",
            "MQTT_CAFILE": "/ca.pem",
            "BASE_TOPIC": "bridge",
            "ALLOWED_ORIGINS": "https://a.example/, https://b.example",
        }
    )
    assert settings.ha_url == "http://10.0.0.2:8123"
    assert settings.ha_auth_url == ""
    assert settings.mqtt_port == 8883
    assert settings.mqtt_tls is True
    assert settings.base_topic == "bridge"
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert "secret-token" not in repr(settings)
    assert "hunter2" not in str(settings)
    assert "***" in repr(settings)


def test_cli_overrides_env() -> None:
    args = parse_args(["--transport", "http", "--port", "9000", "--mqtt-port", "1884"])
    settings = settings_from_env({"HA_TOKEN": "t", "MCP_PORT": "8099"}, args)
    assert settings.mcp_port == 9000
    assert settings.mqtt_port == 1884


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "HA_TOKEN is not set"),
        ({"HA_TOKEN": "t", "HA_URL": "ftp://x"}, "HA_URL must start"),
        ({"HA_TOKEN": "t", "HA_AUTH_URL": "homeassistant"}, "HA_AUTH_URL must start"),
        ({"HA_TOKEN": "t", "MQTT_PORT": "abc"}, "MQTT_PORT must be an integer"),
        ({"HA_TOKEN": "t", "BASE_TOPIC": "a/#"}, "BASE_TOPIC"),
        ({"HA_TOKEN": "t", "LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_invalid_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_env(env)


async def test_supervisor_provides_home_assistant_and_broker(fake_ha: FakeHomeAssistant) -> None:
    fake_ha.supervisor_mqtt = {
        "host": "core-mosquitto",
        "port": 1883,
        "ssl": False,
        "username": "addons",
        "password": "pw",
        "protocol": "3.1.1",
    }
    env = {"SUPERVISOR_TOKEN": SERVER_TOKEN, "SUPERVISOR_URL": fake_ha.url}
    settings = settings_from_env(env)
    assert settings.ha_url == "http://supervisor/core"
    assert settings.ha_token == SERVER_TOKEN
    assert settings.ha_auth_url == "http://homeassistant:8123"
    assert settings_from_env({**env, "HA_AUTH_URL": "https://ha:8443"}).ha_auth_url == (
        "https://ha:8443"
    )
    settings = await apply_supervisor_mqtt(settings, env)
    assert (settings.mqtt_host, settings.mqtt_port) == ("core-mosquitto", 1883)
    assert settings.mqtt_username == "addons"
    assert "pw" not in repr(settings)


async def test_supervisor_without_mqtt_service_is_asked_again(
    fake_ha: FakeHomeAssistant,
) -> None:
    """No MQTT service yet (Mosquitto still starting): ask again with backoff, do not exit."""
    fake_ha.supervisor_mqtt = None
    env = {
        "SUPERVISOR_TOKEN": SERVER_TOKEN,
        "SUPERVISOR_URL": fake_ha.url,
        "STARTUP_RETRY_MAX_S": "0.2",
    }
    before = fake_ha.supervisor_lookups
    task = asyncio.create_task(apply_supervisor_mqtt(settings_from_env(env), env))
    await asyncio.to_thread(
        wait_until, lambda: fake_ha.supervisor_lookups >= before + 3, what="three lookups"
    )
    assert not task.done()
    fake_ha.supervisor_mqtt = {"host": "core-mosquitto", "port": 1884, "ssl": False}
    settings = await asyncio.wait_for(task, 10)
    assert (settings.mqtt_host, settings.mqtt_port) == ("core-mosquitto", 1884)


def test_actuator_policy_parsed() -> None:
    lines = '{"device":"greenhouse-1","actuator":"valve","policy":"deny"}\n'
    lines += '{"device":"lamp-1","actuator":"led","policy":"confirm"}'
    settings = settings_from_env({"HA_TOKEN": "t", "ACTUATOR_POLICY": lines})
    assert settings.actuator_policy == {
        ("greenhouse-1", "valve"): "deny",
        ("lamp-1", "led"): "confirm",
    }
    assert settings_from_env({"HA_TOKEN": "t", "ACTUATOR_POLICY": "null"}).actuator_policy == {}
    with pytest.raises(ConfigError, match="policy is confirm or deny"):
        settings_from_env(
            {"HA_TOKEN": "t", "ACTUATOR_POLICY": '[{"device":"a","actuator":"b","policy":"x"}]'}
        )


async def test_explicit_broker_skips_supervisor() -> None:
    env = {"SUPERVISOR_TOKEN": "t", "MQTT_HOST": "mybroker", "SUPERVISOR_URL": "http://127.0.0.1:9"}
    settings = await apply_supervisor_mqtt(settings_from_env(env), env)
    assert settings.mqtt_host == "mybroker"


def test_missing_token_exits_with_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "esp_mcp_server", "--transport", "stdio"],
        env={"PYTHONPATH": str(ADDON_DIR), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "HA_TOKEN is not set" in proc.stderr
    assert proc.stdout == ""
