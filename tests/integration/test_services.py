"""Actions (services) and WebSocket commands."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
    UnknownUser,
)
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.esp_mcp_bridge.const import DOMAIN

from .conftest import BASE, DEVICE, Device, adopt, find_device, fire


def _ha_device_id(hass: HomeAssistant, device_id: str = DEVICE) -> str:
    device = find_device(hass, (DOMAIN, device_id))
    assert device is not None
    return device.id


async def test_set_streaming(hass: HomeAssistant, adopted: MockConfigEntry, device: Device) -> None:
    """set_streaming sends the exact arguments of the contract."""
    await hass.services.async_call(
        DOMAIN,
        "set_streaming",
        {
            "device_id": _ha_device_id(hass),
            "sensor": "temperature",
            "enable": True,
            "interval_ms": 200,
        },
        blocking=True,
    )
    sent = [c for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] == "set_streaming"]
    assert sent[-1]["args"] == {"sensor": "temperature", "enable": True, "interval_ms": 200}
    await hass.services.async_call(
        DOMAIN,
        "set_streaming",
        {"device_id": _ha_device_id(hass), "sensor": "temperature", "enable": False},
        blocking=True,
    )
    sent = [c for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] == "set_streaming"]
    assert sent[-1]["args"] == {"sensor": "temperature", "enable": False}
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "set_streaming",
            {"device_id": _ha_device_id(hass), "sensor": "pressure", "enable": True},
            blocking=True,
        )
    assert err.value.translation_key == "invalid_command"


async def test_reset_metrics_and_update_config(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """reset_metrics and update_config reach the device."""
    ha_id = _ha_device_id(hass)
    await hass.services.async_call(DOMAIN, "reset_metrics", {"device_id": ha_id}, blocking=True)
    await hass.services.async_call(
        DOMAIN,
        "update_config",
        {"device_id": ha_id, "publish_interval_ms": 5000, "sensor_qos": 1, "error_qos": 2},
        blocking=True,
    )
    cmds = {c["cmd"]: c["args"] for c in device.sent(f"{BASE}/{DEVICE}/cmd") if "id" in c}
    assert cmds["reset_metrics"] == {}
    assert cmds["update_config"] == {
        "publish_interval_ms": 5000,
        "qos": {"sensor": 1, "error": 2},
    }
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "update_config", {"device_id": ha_id}, blocking=True)
    assert err.value.translation_key == "nothing_to_update"


async def test_send_command_returns_response(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """send_command returns the device's response."""
    result = await hass.services.async_call(
        DOMAIN,
        "send_command",
        {"device_id": _ha_device_id(hass), "command": "ping"},
        blocking=True,
        return_response=True,
    )
    assert result == {"ok": True, "result": {"uptime_s": 42}}
    # Without asking for the response it still runs.
    await hass.services.async_call(
        DOMAIN,
        "send_command",
        {"device_id": _ha_device_id(hass), "command": "identify", "timeout": 5},
        blocking=True,
    )
    assert device.sent(f"{BASE}/{DEVICE}/cmd")[-1]["cmd"] == "identify"
    device.handler = lambda topic, body: {
        "ok": False,
        "error": {"code": "busy", "message": "an OTA update is in progress"},
    }
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "send_command",
            {
                "device_id": _ha_device_id(hass),
                "command": "ota",
                "args": {
                    "url": "https://updates.example.com/fw.bin",
                    "sha256": "a" * 64,
                    "version": "1.3.0",
                },
            },
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_placeholders["code"] == "busy"
    assert not isinstance(err.value, ServiceValidationError)


async def test_send_command_with_bad_arguments_is_a_validation_error(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """Arguments the device would refuse are the caller's mistake, not a failure.

    A ServiceValidationError is shown to the user without a traceback in the log
    (a plain HomeAssistantError answers REST calls with 500 and logs a traceback).
    """
    before = len(device.sent(f"{BASE}/{DEVICE}/cmd"))
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "send_command",
            {
                "device_id": _ha_device_id(hass),
                "command": "set_streaming",
                "args": {"sensor": "nope", "enable": True},
            },
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "invalid_command"
    assert "unknown_sensor" in err.value.translation_placeholders["error"]
    assert len(device.sent(f"{BASE}/{DEVICE}/cmd")) == before


async def test_service_device_validation(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Unknown devices and devices of other integrations are refused."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "reset_metrics", {"device_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "invalid_device"
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    foreign = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "x")}
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "reset_metrics", {"device_id": foreign.id}, blocking=True
        )
    assert err.value.translation_key == "invalid_device"
    ha_id = _ha_device_id(hass)
    await hass.config_entries.async_unload(adopted.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "reset_metrics", {"device_id": ha_id}, blocking=True)
    assert err.value.translation_key == "entry_not_loaded"


async def test_ws_devices(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    caps: dict[str, Any],
) -> None:
    """esp_mcp_bridge/devices lists devices with entity ids, availability and metrics."""
    fire(hass, "metrics", {"uptime_s": 10, "rssi": -70})
    await hass.async_block_till_done()
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": f"{DOMAIN}/devices"})
    msg = await client.receive_json()
    assert msg["success"]
    devices = msg["result"]["devices"]
    assert len(devices) == 1
    device = devices[0]
    assert device["device_id"] == DEVICE
    assert device["name"] == "Greenhouse"
    assert device["entry_id"] == adopted.entry_id
    assert device["ha_device_id"] == _ha_device_id(hass)
    assert device["base_topic"] == BASE
    assert device["online"] is True
    assert device["last_seen"] is not None
    assert device["discovery_mode"] in ("mqtt", "integration")
    assert device["capabilities"]["sensors"][0]["id"] == "temperature"
    assert device["entities"]["sensors"]["temperature"] == "sensor.greenhouse_temperature"
    assert device["entities"]["sensors"]["door"] == "binary_sensor.greenhouse_door"
    assert device["entities"]["actuators"]["led"] == "light.greenhouse_led"
    assert device["entities"]["diagnostics"]["status"] == "binary_sensor.greenhouse_status"
    assert device["entities"]["diagnostics"]["free_heap"] == "sensor.greenhouse_free_heap"
    assert "rssi" not in device["entities"]["diagnostics"]  # opt-in
    assert device["metrics"] == {"uptime_s": 10, "rssi": -70}
    assert device["metrics_received"] is not None
    assert device["area_id"] is None

    await client.send_json_auto_id({"type": f"{DOMAIN}/devices", "device_id": "nope"})
    msg = await client.receive_json()
    assert msg["result"] == {"devices": []}
    await client.send_json_auto_id({"type": f"{DOMAIN}/devices", "device_id": DEVICE})
    msg = await client.receive_json()
    assert len(msg["result"]["devices"]) == 1


async def test_ws_alerts(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    caps: dict[str, Any],
) -> None:
    """esp_mcp_bridge/alerts: newest first, filters, bounded."""
    await adopt(hass, dict(caps, device_id="esp32-b"), "esp32-b")
    fire(hass, "error", {"type": "sensor_read", "code": 1, "message": "a", "severity": 1})
    fire(
        hass,
        "error",
        {"type": "actuator", "code": 2, "message": "b", "severity": 3, "ts": 1764000000123},
    )
    fire(hass, "error", {"type": "ota", "code": 3, "message": "c", "severity": 2}, "esp32-b")
    await hass.async_block_till_done()
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": f"{DOMAIN}/alerts"})
    alerts = (await client.receive_json())["result"]["alerts"]
    assert [a["code"] for a in alerts] == [3, 2, 1]
    assert alerts[1] == {
        "device_id": DEVICE,
        "type": "actuator",
        "code": 2,
        "message": "b",
        "severity": 3,
        "ts": "2025-11-24T16:00:00.123000+00:00",
        "received": alerts[1]["received"],
    }
    await client.send_json_auto_id(
        {"type": f"{DOMAIN}/alerts", "device_id": DEVICE, "min_severity": 2}
    )
    alerts = (await client.receive_json())["result"]["alerts"]
    assert [a["code"] for a in alerts] == [2]
    await client.send_json_auto_id({"type": f"{DOMAIN}/alerts", "limit": 1})
    assert len((await client.receive_json())["result"]["alerts"]) == 1
    await client.send_json_auto_id({"type": f"{DOMAIN}/alerts", "since": "2999-01-01T00:00:00"})
    assert (await client.receive_json())["result"]["alerts"] == []
    await client.send_json_auto_id({"type": f"{DOMAIN}/alerts", "since": "yesterday"})
    msg = await client.receive_json()
    assert not msg["success"]
    assert msg["error"]["code"] == "invalid_format"
    await client.send_json_auto_id({"type": f"{DOMAIN}/alerts", "limit": 501})
    assert not (await client.receive_json())["success"]


async def test_alert_ring_buffer_is_bounded(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """The alert buffer keeps the newest 500."""
    for code in range(520):
        fire(hass, "error", {"type": "sensor_read", "code": code, "message": "", "severity": 0})
    await hass.async_block_till_done()
    alerts = adopted.runtime_data.alerts
    assert len(alerts) == 500
    assert alerts[0].error.code == 20
    assert alerts[-1].error.code == 519


@pytest.mark.parametrize("command", ["restart", "ota"])
async def test_restart_and_ota_are_for_administrators(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    device: Device,
    *,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    command: str,
) -> None:
    """A user who is no administrator cannot restart a device or flash new firmware."""
    args = (
        {"url": "https://updates.example.com/fw.bin", "sha256": "a" * 64, "version": "1.3.0"}
        if command == "ota"
        else {}
    )
    data = {"device_id": _ha_device_id(hass), "command": command, "args": args}

    def sent() -> list[str]:
        adoption = ("set_discovery", "get_metrics")
        return [c["cmd"] for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] not in adoption]

    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "send_command",
            data,
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    with pytest.raises(UnknownUser):
        await hass.services.async_call(
            DOMAIN, "send_command", data, blocking=True, context=Context(user_id="gone")
        )
    assert sent() == []
    # Other commands stay open to every user.
    await hass.services.async_call(
        DOMAIN,
        "send_command",
        {"device_id": _ha_device_id(hass), "command": "ping"},
        blocking=True,
        context=Context(user_id=hass_read_only_user.id),
    )
    await hass.services.async_call(
        DOMAIN,
        "send_command",
        data,
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    # An automation or script has no user: administrators wrote it.
    await hass.services.async_call(DOMAIN, "send_command", data, blocking=True)
    assert sent() == ["ping", command, command]


async def test_device_lookup_reads_no_deprecated_registry_attribute(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """Actions find their device without DeviceEntry.config_entries.

    HA 2026.10 reports every read of it (one config entry per device since 2026.8).
    """

    def deprecated(_self: dr.DeviceEntry) -> set[str]:
        raise AssertionError("DeviceEntry.config_entries read")

    ha_id = _ha_device_id(hass)
    with patch.object(dr.DeviceEntry, "config_entries", property(deprecated)):
        await hass.services.async_call(DOMAIN, "reset_metrics", {"device_id": ha_id}, blocking=True)
    assert device.sent(f"{BASE}/{DEVICE}/cmd")[-1]["cmd"] == "reset_metrics"
