"""Setup/unload, takeover, removal, repairs, diagnostics, device triggers, bad input."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
    async_get_device_automations,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.esp_mcp_bridge.const import CONF_OFFLINE_TIMEOUT, CONF_TAKE_OVER, DOMAIN
from custom_components.esp_mcp_bridge.takeover import TAKEOVER_TIMEOUT
import vectors

from .conftest import BASE, DEVICE, Device, adopt, device_ids, find_device, fire


def _ha_device(hass: HomeAssistant, device_id: str = DEVICE) -> dr.DeviceEntry:
    device = find_device(hass, (DOMAIN, device_id))
    assert device is not None
    return device


def _set_discovery(device: Device, device_id: str = DEVICE) -> list[dict[str, Any]]:
    return [c for c in device.commands(f"{BASE}/{device_id}/cmd") if c["cmd"] == "set_discovery"]


async def test_takeover_switches_device_to_integration(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """A device in mode mqtt is switched to mode integration exactly once."""
    sent = _set_discovery(device)
    assert sent == [{"cmd": "set_discovery", "args": {"mode": "integration"}}]
    assert adopted.runtime_data.devices[DEVICE].discovery_mode == "integration"
    # The device re-publishes its capabilities in mode integration: nothing more is sent.
    caps = vectors.reference_device()["capabilities"] | {"discovery": "integration"}
    await adopt(hass, caps)
    assert len(_set_discovery(device)) == 1


async def test_device_back_in_mode_mqtt_is_taken_over_again(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """A device that announces plain MQTT discovery again (factory reset) is taken over."""
    assert len(_set_discovery(device)) == 1
    await adopt(hass, caps | {"fw": "1.0.0"})  # reset to its factory firmware: mode mqtt
    assert _set_discovery(device) == [{"cmd": "set_discovery", "args": {"mode": "integration"}}] * 2
    assert adopted.runtime_data.devices[DEVICE].discovery_mode == "integration"
    ours = er.async_entries_for_config_entry(er.async_get(hass), adopted.entry_id)
    assert [e.entity_id for e in ours if e.entity_id.endswith("_2")] == []
    # A device that ignores the command and stays in mode mqtt is not asked again and again.
    device.follow_discovery = False
    await adopt(hass, caps | {"fw": "1.0.1"})
    await adopt(hass, caps | {"fw": "1.0.2"})
    assert len(_set_discovery(device)) == 3


@pytest.mark.parametrize("entry_options", [{CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: False}])
async def test_no_takeover_when_option_off(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """With takeover off the device keeps its MQTT discovery."""
    assert _set_discovery(device) == []


async def test_device_removal_hands_device_back_and_sticks(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device, hass_ws_client: Any
) -> None:
    """Removing a device sends set_discovery mqtt, removes its entities, and sticks."""
    assert await async_setup_component(hass, "config", {})
    ha_device = _ha_device(hass)
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": adopted.entry_id,
            "device_id": ha_device.id,
        }
    )
    msg = await client.receive_json()
    assert msg["success"], msg
    await hass.async_block_till_done()
    assert _set_discovery(device)[-1] == {"cmd": "set_discovery", "args": {"mode": "mqtt"}}
    assert dr.async_get(hass).async_get(ha_device.id) is None
    assert er.async_get(hass).async_get("sensor.greenhouse_temperature") is None
    assert DEVICE not in adopted.runtime_data.devices
    sent = len(_set_discovery(device))
    # The handed-back device re-publishes its retained capabilities in mode mqtt: it is
    # neither adopted nor taken over again.
    await adopt(hass, vectors.reference_device()["capabilities"])
    assert find_device(hass, (DOMAIN, DEVICE)) is None
    assert hass.states.get("sensor.greenhouse_temperature") is None
    assert len(_set_discovery(device)) == sent


async def test_entry_removal_hands_devices_back(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """Removing the config entry sends set_discovery mqtt to every device."""
    await hass.config_entries.async_remove(adopted.entry_id)
    await hass.async_block_till_done()
    assert _set_discovery(device)[-1] == {"cmd": "set_discovery", "args": {"mode": "mqtt"}}


async def test_unload_and_setup_again(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Unload drops subscriptions; messages afterwards change nothing."""
    assert await hass.config_entries.async_unload(adopted.entry_id)
    await hass.async_block_till_done()
    assert adopted.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNAVAILABLE
    fire(hass, "sensors/temperature", {"value": 20})
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(adopted.entry_id)
    await hass.async_block_till_done()
    assert adopted.state is ConfigEntryState.LOADED


async def test_setup_retries_without_mqtt(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Without a usable MQTT client the entry is retried later."""
    config_entry.add_to_hass(hass)
    with patch(
        "custom_components.esp_mcp_bridge.mqtt.async_wait_for_mqtt_client",
        return_value=False,
    ):
        await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_repair_newer_protocol(
    hass: HomeAssistant, adopted: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """A device speaking a newer protocol gets a repair issue and no entities."""
    newer = dict(caps, v=2, device_id="esp32-new")
    fire(hass, "status", "online", "esp32-new")
    fire(hass, "capabilities", newer, "esp32-new")
    await hass.async_block_till_done()
    issue_id = f"{adopted.entry_id}_newer_protocol_esp32-new"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "newer_protocol"
    assert issue.translation_placeholders == {"device_id": "esp32-new", "supported": "1"}
    assert find_device(hass, (DOMAIN, "esp32-new")) is None
    # Downgraded firmware: the issue goes away and the device is adopted.
    await adopt(hass, dict(caps, device_id="esp32-new"), "esp32-new")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert _ha_device(hass, "esp32-new") is not None


async def test_repair_repeated_critical_errors(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """Three critical errors within an hour raise a repair issue; a reboot clears it."""
    issue_id = f"{adopted.entry_id}_critical_errors_{DEVICE}"
    for _ in range(2):
        fire(hass, "error", {"type": "actuator", "code": -1, "message": "fault", "severity": 3})
    fire(hass, "error", {"type": "sensor_read", "code": 1, "message": "minor", "severity": 1})
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    fire(hass, "error", {"type": "actuator", "code": -1, "message": "fault", "severity": 4})
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders["count"] == "3"
    fire(hass, "status", "offline")
    fire(hass, "status", "online")
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_device_triggers(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Device triggers fire on errors; the critical one only for severity >= 3."""
    ha_device = _ha_device(hass)
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, ha_device.id)
    types = {t["type"] for t in triggers if t["domain"] == DOMAIN}
    assert types == {"error", "critical_error"}
    calls: list[ServiceCall] = []

    @callback
    def _record(call: ServiceCall) -> None:
        calls.append(call)

    hass.services.async_register("test", "record", _record)
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                {
                    "trigger": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": ha_device.id,
                        "type": trigger_type,
                    },
                    "action": {
                        "service": "test.record",
                        "data": {"type": trigger_type, "msg": "{{ trigger.event.data.message }}"},
                    },
                }
                for trigger_type in ("error", "critical_error")
            ]
        },
    )
    fire(hass, "error", {"type": "sensor_read", "code": 1, "message": "minor", "severity": 1})
    await hass.async_block_till_done()
    assert [c.data["type"] for c in calls] == ["error"]
    fire(hass, "error", {"type": "actuator", "code": 2, "message": "major", "severity": 3})
    await hass.async_block_till_done()
    assert sorted(c.data["type"] for c in calls) == ["critical_error", "error", "error"]
    assert calls[-1].data["msg"] == "major"
    other = dr.async_get(hass).async_get_or_create(
        config_entry_id=adopted.entry_id, identifiers={("other", "x")}
    )
    assert [
        t
        for t in await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, other.id)
        if t["domain"] == DOMAIN
    ] == []


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    caps: dict[str, Any],
) -> None:
    """Diagnostics hold the state but never MACs, passwords or URL credentials."""
    assert await async_setup_component(hass, "diagnostics", {})
    caps = dict(
        caps,
        fw="1.2.1",
        ssid="HomeWiFi",
        wifi_password="hunter2",
        ip="192.168.1.50",
        token="secret-token",
        ota_url="https://user:pa55@updates.example.com/fw.bin",
    )
    await adopt(hass, caps)
    fire(
        hass,
        "error",
        {"type": "ota", "code": 5, "message": "fetch https://u:p@host/x failed", "severity": 2},
    )
    fire(hass, "metrics", {"uptime_s": 5})
    fire(hass, "sensors/temperature", {"value": 20.5, "quality": 90})
    await hass.async_block_till_done()
    data = await get_diagnostics_for_config_entry(hass, hass_client, adopted)
    text = json.dumps(data)
    for secret in (
        "hunter2",
        "HomeWiFi",
        "192.168.1.50",
        "secret-token",
        "pa55",
        "u:p@",
        "a4:cf:12:a1:b2:c3",
    ):
        assert secret not in text, secret
    device = data["devices"][0]
    assert device["capabilities"]["mac"] == "**REDACTED**"
    assert device["capabilities"]["fw"] == "1.2.1"
    assert device["sensors"]["temperature"]["value"] == 20.5
    assert device["metrics"] == {"uptime_s": 5}
    assert data["entry"]["data"] == {"base_topic": BASE}

    dev_data = await get_diagnostics_for_device(hass, hass_client, adopted, _ha_device(hass))
    dev_text = json.dumps(dev_data)
    assert "hunter2" not in dev_text
    assert "pa55" not in dev_text
    assert dev_data["device"]["device_id"] == DEVICE
    assert dev_data["device"]["recent_alerts"][0]["code"] == 5


@pytest.mark.parametrize("entry_options", [{CONF_OFFLINE_TIMEOUT: 60, CONF_TAKE_OVER: True}])
async def test_offline_timeout(
    hass: HomeAssistant, adopted: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A silent device becomes unavailable after the timeout and returns on a message."""
    assert hass.states.get("sensor.greenhouse_temperature").state != STATE_UNAVAILABLE
    freezer.tick(timedelta(seconds=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_temperature").state != STATE_UNAVAILABLE
    for _ in range(4):
        freezer.tick(timedelta(seconds=10))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.greenhouse_status").state == "off"
    fire(hass, "sensors/temperature", {"value": 21})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_temperature").state == "21"


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("kind", vectors.bridge_kinds("from_device"))
async def test_bad_input_is_dropped_and_logged_once(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """Each rejected vector: no exception, no entity, no state change, one log line."""
    manager = adopted.runtime_data
    ent_reg = er.async_get(hass)
    entities_before = set(ent_reg.entities)
    devices_before = device_ids(hass)
    states_before = {s.entity_id: s.state for s in hass.states.async_all()}
    cases = [case for case in vectors.load(kind) if not case.valid]
    assert cases
    for case in cases:
        manager._logged.clear()
        caplog.clear()
        for _ in range(3):
            # Fired three times: still logged once per device and kind.
            async_fire_mqtt_message(hass, case.topic, case.payload)
            await hass.async_block_till_done()
        assert set(ent_reg.entities) == entities_before, case.name
        assert device_ids(hass) == devices_before, case.name
        assert {s.entity_id: s.state for s in hass.states.async_all()} == states_before
        assert "Traceback" not in caplog.text, case.name
        if kind != "response":  # responses to unknown ids are dropped quietly
            assert caplog.text.count("Ignoring invalid") == 1, (case.name, caplog.text)


@pytest.mark.parametrize("kind", ["sensor", "batch", "actuator_state", "metrics", "error"])
async def test_valid_input_is_applied(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """Every accepted vector reaches the device state without a warning."""
    manager = adopted.runtime_data
    for case in vectors.load(kind):
        if not case.valid:
            continue
        before = manager.devices[DEVICE].last_seen
        async_fire_mqtt_message(hass, case.topic, case.payload)
        await hass.async_block_till_done()
        assert "Ignoring invalid" not in caplog.text, case.name
        assert manager.devices[DEVICE].last_seen >= before
        decoded = case.decoded
        if kind == "sensor":
            reading = manager.devices[DEVICE].sensors[decoded["sensor_id"]]
            assert reading.value == decoded["value"], case.name
        elif kind == "actuator_state":
            assert manager.devices[DEVICE].actuators[decoded["actuator_id"]] == decoded["value"]
        elif kind == "error":
            assert manager.alerts[-1].error.message == decoded["message"]
        elif kind == "metrics":
            assert manager.devices[DEVICE].metrics.get("uptime_s") == decoded["uptime_s"]


async def test_takeover_during_holdoff_clears_nothing(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fresh device switches without clearing (it never published a discovery message).

    The integration adds its entities at once, publishes no empty discovery payload
    either, and HA's MQTT integration has nothing to warn about.
    """
    discovery_topic = f"homeassistant/device/{DEVICE}/config"
    device.clears_discovery = False
    await adopt(hass, caps)
    assert _set_discovery(device) == [{"cmd": "set_discovery", "args": {"mode": "integration"}}]
    entry = er.async_get(hass).async_get("sensor.greenhouse_temperature")
    assert entry is not None
    assert entry.platform == DOMAIN
    assert not [t for t, _ in device.published if t == discovery_topic]
    assert "No device components to cleanup" not in caplog.text


async def test_takeover_clears_a_discovery_left_from_an_erased_store(
    hass: HomeAssistant, loaded: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """A device whose store was erased switches without clearing its old discovery message.

    HA's MQTT entities from that message stay, so the integration clears it (protocol 13.4).
    """
    discovery = next(c for c in vectors.load("discovery") if c.payload)
    discovery_topic = f"homeassistant/device/{DEVICE}/config"
    async_fire_mqtt_message(hass, discovery_topic, discovery.payload.decode(), retain=True)
    await hass.async_block_till_done()
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get("sensor.greenhouse_temperature").platform == "mqtt"
    device.clears_discovery = False
    device.echo_discovery_clear = True
    fire(hass, "status", "online")
    fire(hass, "capabilities", caps)
    await hass.async_block_till_done()
    assert adopted_mode(loaded) == "integration"
    assert (discovery_topic, "") not in device.published
    # The takeover task now waits for the MQTT entities to go (a background task: its
    # timer may start a loop turn later, so the clock moves on until it has cleared).
    now = dt_util.utcnow()
    for step in range(1, 4):
        async_fire_time_changed(hass, now + timedelta(seconds=step * (TAKEOVER_TIMEOUT + 1)))
        await hass.async_block_till_done()
        if (discovery_topic, "") in device.published:
            break
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (discovery_topic, "") in device.published
    entry = ent_reg.async_get("sensor.greenhouse_temperature")
    assert entry is not None
    assert entry.platform == DOMAIN
    assert [e for e in ent_reg.entities.values() if e.platform == "mqtt"] == []


def adopted_mode(entry: MockConfigEntry) -> str | None:
    """The discovery mode the device's capabilities announce now."""
    mode: str | None = entry.runtime_data.devices[DEVICE].discovery_mode
    return mode


async def test_takeover_clears_discovery_a_device_leaves_behind(
    hass: HomeAssistant, loaded: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """A device that keeps its discovery message has it cleared by the integration.

    HA's MQTT integration then removes its own entities, and this integration's entities
    take their entity ids (no `_2` suffixes).
    """
    discovery = next(c for c in vectors.load("discovery") if c.payload)
    discovery_topic = f"homeassistant/device/{DEVICE}/config"
    async_fire_mqtt_message(hass, discovery_topic, discovery.payload.decode(), retain=True)
    await hass.async_block_till_done()
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get("sensor.greenhouse_temperature").platform == "mqtt"
    device.follow_discovery = False  # an older firmware that ignores set_discovery
    device.echo_discovery_clear = True
    fire(hass, "status", "online")
    fire(hass, "capabilities", caps)
    await hass.async_block_till_done()
    assert _set_discovery(device)[-1]["args"] == {"mode": "integration"}
    assert (discovery_topic, "") not in device.published
    assert hass.states.get("sensor.greenhouse_temperature_2") is None
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=TAKEOVER_TIMEOUT + 1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (discovery_topic, "") in device.published
    assert device.retained[discovery_topic] is True
    entry = ent_reg.async_get("sensor.greenhouse_temperature")
    assert entry is not None
    assert entry.platform == DOMAIN
    assert [e for e in ent_reg.entities.values() if e.platform == "mqtt"] == []
    ours = er.async_entries_for_config_entry(ent_reg, loaded.entry_id)
    assert [e.entity_id for e in ours if e.entity_id.endswith("_2")] == []
    assert hass.states.get("sensor.greenhouse_temperature") is not None


async def test_many_pending_takeovers_share_one_registry_listener(
    hass: HomeAssistant, loaded: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """Devices waiting for their MQTT entities to go are woken by those entities only.

    A bus listener per waiting device would re-check every waiting device on every
    registry change: quadratic when hundreds of devices are adopted at once.
    """
    ent_reg = er.async_get(hass)
    mqtt_entry = hass.config_entries.async_entries("mqtt")[0]
    device.follow_discovery = False
    listeners_before = hass.bus.async_listeners().get(er.EVENT_ENTITY_REGISTRY_UPDATED, 0)
    device_ids = [f"greenhouse-{index}" for index in range(20)]
    for device_id in device_ids:
        ent_reg.async_get_or_create(
            "sensor", "mqtt", f"{device_id}_temperature", config_entry=mqtt_entry
        )
        fire(hass, "status", "online", device_id)
        fire(hass, "capabilities", caps | {"device_id": device_id}, device_id)
    await hass.async_block_till_done()
    # Each device switches, but its MQTT entity stays: all 20 wait for it to go.
    for device_id in device_ids:
        fire(
            hass,
            "capabilities",
            caps | {"device_id": device_id, "discovery": "integration"},
            device_id,
        )
    await hass.async_block_till_done()
    manager = loaded.runtime_data
    assert all(manager.devices[d].adopting for d in device_ids)
    listeners = hass.bus.async_listeners().get(er.EVENT_ENTITY_REGISTRY_UPDATED, 0)
    assert listeners - listeners_before <= 1
    # One MQTT entity going wakes its own device only.
    ent_reg.async_remove(ent_reg.async_get_entity_id("sensor", "mqtt", "greenhouse-0_temperature"))
    await hass.async_block_till_done(wait_background_tasks=False)
    await hass.async_block_till_done()
    assert not manager.devices["greenhouse-0"].adopting
    assert all(manager.devices[d].adopting for d in device_ids[1:])
    # The others time out: their discovery topics are cleared (HA's MQTT integration
    # owns its entities), and after another wait each gets its entities.
    for step in (1, 2):
        async_fire_time_changed(
            hass, dt_util.utcnow() + timedelta(seconds=step * (TAKEOVER_TIMEOUT + 1))
        )
        await hass.async_block_till_done()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not any(manager.devices[d].adopting for d in device_ids)
    cleared = {t for t, p in device.published if t.startswith("homeassistant/") and not p}
    assert cleared == {f"homeassistant/device/{d}/config" for d in device_ids[1:]}


async def test_device_listed_once_its_entities_exist(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    hass_ws_client: Any,
) -> None:
    """While a takeover is pending the device is not listed without its entity ids."""
    device.follow_discovery = False
    fire(hass, "status", "online")
    fire(hass, "capabilities", caps)
    await hass.async_block_till_done()
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": f"{DOMAIN}/devices"})
    msg = await client.receive_json()
    assert msg["result"] == {"devices": []}
    fire(hass, "capabilities", caps | {"discovery": "integration"})
    await hass.async_block_till_done(wait_background_tasks=True)
    await client.send_json_auto_id({"type": f"{DOMAIN}/devices"})
    msg = await client.receive_json()
    [listed] = msg["result"]["devices"]
    assert listed["online"] is True
    assert listed["entities"]["sensors"]["temperature"] == "sensor.greenhouse_temperature"


async def test_takeover_of_mqtt_discovered_device_keeps_entity_ids(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    device: Device,
    caps: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device HA's MQTT integration shows is taken over without `_2` entity ids.

    The MQTT entities are live (they have states) until the device clears its
    discovery message; ours are added after that, and the MQTT device entry goes.
    """
    discovery = next(c for c in vectors.load("discovery") if c.payload)
    discovery_topic = f"homeassistant/device/{DEVICE}/config"
    async_fire_mqtt_message(hass, discovery_topic, discovery.payload.decode())
    await hass.async_block_till_done()
    ent_reg = er.async_get(hass)
    mqtt_entity = ent_reg.async_get("sensor.greenhouse_temperature")
    assert mqtt_entity is not None
    assert mqtt_entity.platform == "mqtt"
    assert hass.states.get("sensor.greenhouse_temperature") is not None
    assert find_device(hass, ("mqtt", DEVICE)) is not None

    # The device answers set_discovery by clearing its retained discovery message and
    # re-publishing its capabilities in mode integration (see the Device fixture).
    await adopt(hass, caps)
    assert _set_discovery(device)[-1]["args"] == {"mode": "integration"}
    assert loaded.runtime_data.devices[DEVICE].discovery_mode == "integration"

    ours = er.async_entries_for_config_entry(ent_reg, loaded.entry_id)
    assert ours
    assert [e.entity_id for e in ours if e.entity_id.endswith("_2")] == []
    entry = ent_reg.async_get("sensor.greenhouse_temperature")
    assert entry is not None
    assert entry.platform == DOMAIN
    assert hass.states.get("sensor.greenhouse_temperature") is not None
    assert [e for e in ent_reg.entities.values() if e.platform == "mqtt"] == []
    assert find_device(hass, ("mqtt", DEVICE)) is None
    assert "No device components to cleanup" not in caplog.text


async def test_device_count_is_bounded(
    hass: HomeAssistant, adopted: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood of device ids cannot grow memory without bound."""
    with patch("custom_components.esp_mcp_bridge.manager.MAX_DEVICES", 3):
        for index in range(5):
            fire(hass, "status", "online", f"flood-{index}")
        await hass.async_block_till_done()
    assert len(adopted.runtime_data.devices) == 3
    assert caplog.text.count("more than 3 devices") == 3
    caplog.clear()
    with patch("custom_components.esp_mcp_bridge.manager.MAX_LOGGED_KEYS", 0):
        for index in range(3):
            fire(hass, "status", "bogus", f"flood-{index}")
        await hass.async_block_till_done()
    assert caplog.text.count("Ignoring invalid") == 1
