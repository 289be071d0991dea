"""Entities created from capabilities, and their states."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import mqtt
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.esp_mcp_bridge.const import (
    CONF_ALL_DIAGNOSTICS,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    DOMAIN,
)

from .conftest import BASE, DEVICE, Device, adopt, find_device, fire


async def test_device_and_entities_created(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Capabilities create one device with the mapped entities."""
    device = find_device(hass, (DOMAIN, DEVICE))
    assert device is not None
    assert device.name == "Greenhouse"
    assert device.manufacturer == "Espressif"
    assert device.model == "ESP32-S3"
    assert device.sw_version == "1.2.0"
    assert device.hw_version == "rev3"
    assert (dr.CONNECTION_NETWORK_MAC, "a4:cf:12:a1:b2:c3") in device.connections

    ent_reg = er.async_get(hass)
    expected = {
        "sensor.greenhouse_temperature": f"{DEVICE}/temperature",
        "sensor.greenhouse_humidity": f"{DEVICE}/humidity",
        "sensor.greenhouse_status_text": f"{DEVICE}/status_text",
        "sensor.greenhouse_irrigation_phase": f"{DEVICE}/irrigation_phase",
        "binary_sensor.greenhouse_door": f"{DEVICE}/door",
        "binary_sensor.greenhouse_status": f"{DEVICE}/diag:status",
        "light.greenhouse_led": f"{DEVICE}/led",
        "switch.greenhouse_heater": f"{DEVICE}/heater",
        "number.greenhouse_irrigation_valve": f"{DEVICE}/valve",
        "select.greenhouse_fan_mode": f"{DEVICE}/fan_mode",
        "text.greenhouse_display_text": f"{DEVICE}/display_text",
        "button.greenhouse_buzzer": f"{DEVICE}/buzzer",
        "button.greenhouse_restart": f"{DEVICE}/diag:restart",
        "event.greenhouse_error": f"{DEVICE}/diag:error",
        "update.greenhouse_firmware": f"{DEVICE}/diag:firmware",
        "sensor.greenhouse_free_heap": f"{DEVICE}/diag:free_heap",
    }
    for entity_id, unique_id in expected.items():
        entry = ent_reg.async_get(entity_id)
        assert entry is not None, (
            entity_id,
            sorted(e.entity_id for e in ent_reg.entities.values()),
        )
        assert entry.unique_id == unique_id
        assert entry.device_id == device.id
    # Uptime, signal strength, minimum heap, the counters and identify are opt-in (entry
    # option): not even disabled registry entries, each would cost memory.
    opt_in = ("/diag:rssi", "/diag:uptime_s", "/diag:identify", "/diag:messages_sent")
    assert not [e.entity_id for e in ent_reg.entities.values() if e.unique_id.endswith(opt_in)]
    assert ent_reg.async_get("sensor.greenhouse_minimum_free_heap") is None
    assert ent_reg.async_get("sensor.greenhouse_free_heap").disabled_by is None
    assert ent_reg.async_get("sensor.greenhouse_free_heap").entity_category == "diagnostic"
    assert ent_reg.async_get("button.greenhouse_restart").entity_category == "config"


async def test_sensor_readings(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Numeric readings carry unit, device class, state class, quality, calibration."""
    state = hass.states.get("sensor.greenhouse_temperature")
    assert state.state == STATE_UNKNOWN
    assert state.attributes["unit_of_measurement"] == "°C"
    assert state.attributes["device_class"] == "temperature"
    assert state.attributes["state_class"] == "measurement"
    assert state.attributes["calibration_required"] is True
    assert state.attributes["calibration_interval_s"] == 86400

    fire(hass, "sensors/temperature", {"value": 23.5, "ts": 1764000000123, "quality": 95})
    await hass.async_block_till_done()
    state = hass.states.get("sensor.greenhouse_temperature")
    assert float(state.state) == 23.5
    assert state.attributes["quality"] == 95
    assert state.attributes["accuracy"] == 0.5

    fire(hass, "sensors/status_text", {"value": "watering bed 2"})
    fire(hass, "sensors/irrigation_phase", {"value": "watering"})
    fire(hass, "sensors/door", {"value": True})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_status_text").state == "watering bed 2"
    phase = hass.states.get("sensor.greenhouse_irrigation_phase")
    assert phase.state == "watering"
    assert phase.attributes["device_class"] == "enum"
    assert phase.attributes["options"] == ["idle", "watering", "draining"]
    door = hass.states.get("binary_sensor.greenhouse_door")
    assert door.state == STATE_ON
    assert door.attributes["device_class"] == "door"


async def test_batch_updates_several_sensors(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """A batch updates each of its readings."""
    fire(
        hass,
        "batch",
        {
            "ts": 1764000000123,
            "readings": [
                {"id": "temperature", "value": 19.0, "quality": 80},
                {"id": "door", "value": False},
                {"id": "irrigation_phase", "value": "idle"},
            ],
        },
    )
    await hass.async_block_till_done()
    assert float(hass.states.get("sensor.greenhouse_temperature").state) == 19.0
    assert hass.states.get("binary_sensor.greenhouse_door").state == STATE_OFF
    assert hass.states.get("sensor.greenhouse_irrigation_phase").state == "idle"


async def test_actuator_states(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Retained actuator states show on their entities."""
    fire(hass, "actuators/led/state", {"value": True})
    fire(hass, "actuators/heater/state", {"value": True})
    fire(hass, "actuators/valve/state", {"value": 35})
    fire(hass, "actuators/fan_mode/state", {"value": "manual"})
    fire(hass, "actuators/display_text/state", {"value": "Hallo"})
    await hass.async_block_till_done()
    assert hass.states.get("light.greenhouse_led").state == STATE_ON
    assert hass.states.get("switch.greenhouse_heater").state == STATE_ON
    valve = hass.states.get("number.greenhouse_irrigation_valve")
    assert float(valve.state) == 35
    assert valve.attributes["min"] == 0
    assert valve.attributes["max"] == 100
    assert valve.attributes["step"] == 5
    assert valve.attributes["unit_of_measurement"] == "%"
    assert valve.attributes["requires_confirmation"] is True
    select = hass.states.get("select.greenhouse_fan_mode")
    assert select.state == "manual"
    assert select.attributes["options"] == ["auto", "manual", "off"]
    assert hass.states.get("text.greenhouse_display_text").state == "Hallo"


@pytest.mark.parametrize(
    "entry_options",
    [{CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True, CONF_ALL_DIAGNOSTICS: True}],
)
async def test_metrics_sensors(
    hass: HomeAssistant, adopted: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Metrics feed the diagnostic sensors; the uptime shows as the time of the boot.

    A seconds counter would write a new state with every metrics message; the boot
    time only changes when the device restarts.
    """
    freezer.move_to("2026-05-01T12:00:00+00:00")
    fire(hass, "metrics", {"uptime_s": 3600, "free_heap": 182344, "rssi": -61})
    await hass.async_block_till_done()
    uptime = hass.states.get("sensor.greenhouse_uptime")
    assert uptime.state == "2026-05-01T11:00:00+00:00"
    assert uptime.attributes["device_class"] == "timestamp"
    assert "state_class" not in uptime.attributes
    # The next message a minute later, received 2 s late: same boot, same state.
    freezer.move_to("2026-05-01T12:01:02+00:00")
    fire(hass, "metrics", {"uptime_s": 3660, "free_heap": 182000, "rssi": -61})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_uptime").state == "2026-05-01T11:00:00+00:00"
    assert hass.states.get("sensor.greenhouse_free_heap").state == "182000"
    # The device restarted.
    freezer.move_to("2026-05-01T12:05:00+00:00")
    fire(hass, "metrics", {"uptime_s": 30})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_uptime").state == "2026-05-01T12:04:30+00:00"
    fire(hass, "metrics", {"uptime_s": 3600, "free_heap": 182344, "rssi": -61})
    await hass.async_block_till_done()
    rssi = hass.states.get("sensor.greenhouse_signal_strength")
    assert rssi.state == "-61"
    assert rssi.attributes["unit_of_measurement"] == "dBm"
    assert hass.states.get("sensor.greenhouse_free_heap").state == "182344"
    # With the option, the extra diagnostics are there and enabled: the user asked for them.
    assert hass.states.get("sensor.greenhouse_messages_sent") is not None
    assert hass.states.get("sensor.greenhouse_connection_failures") is not None
    assert hass.states.get("button.greenhouse_identify") is not None


@pytest.mark.parametrize(
    "entry_options",
    [{CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True, CONF_ALL_DIAGNOSTICS: True}],
)
async def test_extra_diagnostics_leave_with_the_option(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """Turning the option off removes the extra diagnostic sensors' registry entries."""
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get("sensor.greenhouse_signal_strength") is not None
    result = await hass.config_entries.options.async_init(adopted.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True, CONF_ALL_DIAGNOSTICS: False},
    )
    await hass.async_block_till_done()
    assert ent_reg.async_get("sensor.greenhouse_signal_strength") is None
    assert ent_reg.async_get("sensor.greenhouse_messages_sent") is None
    assert ent_reg.async_get("sensor.greenhouse_uptime") is None
    assert ent_reg.async_get("button.greenhouse_identify") is None
    # The basic diagnostics and the readings stay, with their entity ids.
    assert ent_reg.async_get("sensor.greenhouse_free_heap") is not None
    assert ent_reg.async_get("sensor.greenhouse_temperature") is not None


async def test_firmware_update_entity(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """The update entity shows the installed firmware; the latest is unknown."""
    state = hass.states.get("update.greenhouse_firmware")
    assert state.attributes["installed_version"] == "1.2.0"
    assert state.attributes["latest_version"] is None
    assert state.attributes["device_class"] == "firmware"


async def test_error_event_entity(hass: HomeAssistant, adopted: MockConfigEntry) -> None:
    """Errors fire the event entity, with a type per error type."""
    state = hass.states.get("event.greenhouse_error")
    assert state.state == STATE_UNKNOWN
    assert "sensor_read" in state.attributes["event_types"]
    fire(
        hass,
        "error",
        {"type": "sensor_read", "code": 28673, "message": "DHT22 checksum", "severity": 2},
    )
    await hass.async_block_till_done()
    state = hass.states.get("event.greenhouse_error")
    assert state.state != STATE_UNKNOWN
    assert state.attributes["event_type"] == "sensor_read"
    assert state.attributes["code"] == 28673
    assert state.attributes["message"] == "DHT22 checksum"
    # A new type becomes an event type of its own.
    fire(hass, "error", {"type": "brownout", "code": 1, "message": "low", "severity": 1})
    await hass.async_block_till_done()
    state = hass.states.get("event.greenhouse_error")
    assert state.attributes["event_type"] == "brownout"
    assert "brownout" in state.attributes["event_types"]


async def test_availability_from_status(
    hass: HomeAssistant, adopted: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline makes entities unavailable (logged once), online brings them back."""
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNKNOWN
    assert hass.states.get("binary_sensor.greenhouse_status").state == STATE_ON
    for _ in range(3):
        fire(hass, "status", "offline")
        await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNAVAILABLE
    assert hass.states.get("light.greenhouse_led").state == STATE_UNAVAILABLE
    # The connectivity sensor itself stays available and says "off".
    assert hass.states.get("binary_sensor.greenhouse_status").state == STATE_OFF
    assert caplog.text.count(f"Device {DEVICE} is unavailable") == 1
    fire(hass, "status", "online")
    fire(hass, "status", "online")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNKNOWN
    assert caplog.text.count(f"Device {DEVICE} is available again") == 1


async def test_availability_follows_mqtt_connection(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """Losing the broker connection makes every entity unavailable."""
    from homeassistant.components.mqtt import MQTT_CONNECTION_STATE  # noqa: PLC0415
    from homeassistant.helpers.dispatcher import async_dispatcher_send  # noqa: PLC0415

    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, False)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.greenhouse_status").state == STATE_UNAVAILABLE
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.greenhouse_status").state == STATE_ON


async def test_capabilities_change_adds_and_removes_entities(
    hass: HomeAssistant, adopted: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """A changed capabilities message adds new entities and removes dropped ones."""
    ent_reg = er.async_get(hass)
    assert ent_reg.async_get("sensor.greenhouse_humidity") is not None
    caps["sensors"] = [s for s in caps["sensors"] if s["id"] != "humidity"]
    caps["sensors"].append(
        {
            "id": "pressure",
            "type": "pressure",
            "name": "Pressure",
            "unit": "hPa",
            "value_type": "number",
        }
    )
    # The door becomes a number: other platform, same id.
    for sensor in caps["sensors"]:
        if sensor["id"] == "door":
            sensor["value_type"] = "number"
    caps["fw"] = "1.3.0"
    await adopt(hass, caps)
    assert ent_reg.async_get("sensor.greenhouse_humidity") is None
    assert hass.states.get("sensor.greenhouse_humidity") is None
    assert ent_reg.async_get("sensor.greenhouse_pressure") is not None
    assert ent_reg.async_get("binary_sensor.greenhouse_door") is None
    assert ent_reg.async_get_entity_id("sensor", DOMAIN, f"{DEVICE}/door") is not None
    assert hass.states.get("update.greenhouse_firmware").attributes["installed_version"] == "1.3.0"
    device = find_device(hass, (DOMAIN, DEVICE))
    assert device.sw_version == "1.3.0"
    # Same capabilities again: nothing changes.
    await adopt(hass, caps)
    assert ent_reg.async_get("sensor.greenhouse_pressure") is not None


async def test_second_device_at_runtime(
    hass: HomeAssistant, adopted: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """A device that appears later is picked up."""
    other = dict(caps, device_id="esp32-0002", name="Shed", mac=None)
    other.pop("mac")
    await adopt(hass, other, "esp32-0002")
    assert hass.states.get("sensor.shed_temperature") is not None
    assert find_device(hass, (DOMAIN, "esp32-0002"))


async def test_metrics_requested_when_device_is_first_seen(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device, caps: dict[str, Any]
) -> None:
    """A device seen for the first time is asked for its metrics (answered on its topic).

    The diagnostic sensors then show values at once, not after a metrics interval.
    """
    asked = [c for c in device.commands(f"{BASE}/{DEVICE}/cmd") if c["cmd"] == "get_metrics"]
    assert asked == [{"cmd": "get_metrics", "args": {}}]
    await adopt(hass, caps)
    asked = [c for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] == "get_metrics"]
    assert len(asked) == 1


async def test_metrics_requested_again_when_first_answer_missed(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """Right after setup the answer can be missed; the next live message asks again, once."""

    def asked() -> int:
        return len([c for c in device.sent(f"{BASE}/{DEVICE}/cmd") if c["cmd"] == "get_metrics"])

    assert asked() == 1
    # A retained actuator state is no proof the device is talking now.
    async_fire_mqtt_message(
        hass, f"{BASE}/{DEVICE}/actuators/led/state", '{"value": true}', retain=True
    )
    await hass.async_block_till_done()
    assert hass.states.get("light.greenhouse_led").state == STATE_ON
    assert asked() == 1
    fire(hass, "sensors/temperature", {"value": 21.5})
    await hass.async_block_till_done()
    assert asked() == 2
    fire(hass, "sensors/temperature", {"value": 21.6})
    await hass.async_block_till_done()
    assert asked() == 2
    fire(hass, "metrics", {"uptime_s": 10, "free_heap": 1234})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_free_heap").state == "1234"


async def test_one_subscription_for_the_base_topic(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, config_entry: MockConfigEntry
) -> None:
    """One wildcard: HA matches each message against every wildcard subscription.

    It also keeps retained capabilities from arriving before the metrics topic is
    subscribed: adopting a device asks it for its metrics.
    """
    with patch(
        "custom_components.esp_mcp_bridge.manager.mqtt.async_subscribe",
        wraps=mqtt.async_subscribe,
    ) as subscribe:
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    topics = [call.args[1] for call in subscribe.call_args_list]
    assert topics == [f"{BASE}/#"]


async def test_own_commands_echoed_are_ignored(
    hass: HomeAssistant, adopted: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Commands the integration publishes come back on `B/#`: dropped, nothing logged."""
    manager = adopted.runtime_data
    with patch.object(manager, "_dispatch", wraps=manager._dispatch) as dispatch:
        async_fire_mqtt_message(hass, f"{BASE}/{DEVICE}/cmd", '{"id":"x","cmd":"ping"}')
        async_fire_mqtt_message(
            hass, f"{BASE}/{DEVICE}/actuators/heater/set", '{"action":"toggle"}'
        )
        async_fire_mqtt_message(hass, f"{BASE}/{DEVICE}/metrics", '{"uptime_s": 5}')
        await hass.async_block_till_done()
    assert [call.args[1].value for call in dispatch.call_args_list] == ["metrics"]


async def test_requires_confirmation_shown_on_every_actuator_platform(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Every actuator entity says when the device wants a confirmation, not only numbers."""
    for actuator in caps["actuators"]:
        actuator["requires_confirmation"] = actuator["id"] in ("led", "fan_mode")
    await adopt(hass, caps)
    assert hass.states.get("light.greenhouse_led").attributes["requires_confirmation"] is True
    fan_mode = hass.states.get("select.greenhouse_fan_mode")
    assert fan_mode.attributes["requires_confirmation"] is True
    valve = hass.states.get("number.greenhouse_irrigation_valve")
    assert "requires_confirmation" not in valve.attributes


@pytest.mark.parametrize(
    ("new_spec", "reading", "attributes"),
    [
        pytest.param(
            {"value_type": "string"},
            "sensor fault",
            {},
            id="number_to_string",
        ),
        pytest.param(
            {"value_type": "enum", "options": ["low", "high"]},
            "high",
            {"device_class": "enum", "options": ["low", "high"]},
            id="number_to_enum",
        ),
    ],
)
async def test_value_type_changed_in_place(
    hass: HomeAssistant,
    adopted: MockConfigEntry,
    caps: dict[str, Any],
    *,
    new_spec: dict[str, Any],
    reading: str,
    attributes: dict[str, Any],
) -> None:
    """A sensor that changes its value type keeps no unit or state class of the old one.

    HA refuses a string state with a unit or a state class, and an enum with a unit.
    """
    fire(hass, "sensors/temperature", {"value": 23.5})
    await hass.async_block_till_done()
    for sensor in caps["sensors"]:
        if sensor["id"] == "temperature":
            sensor.update(new_spec)
    await adopt(hass, caps)
    # The number read before the change is no value of the new type.
    assert hass.states.get("sensor.greenhouse_temperature").state == STATE_UNKNOWN
    fire(hass, "sensors/temperature", {"value": reading})
    await hass.async_block_till_done()
    state = hass.states.get("sensor.greenhouse_temperature")
    assert state.state == reading
    for key in ("unit_of_measurement", "state_class", "device_class", "options"):
        assert state.attributes.get(key) == attributes.get(key), key


async def test_enum_changed_to_string_drops_its_options(
    hass: HomeAssistant, adopted: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """An enum that becomes a string shows any text, not only its old options."""
    for sensor in caps["sensors"]:
        if sensor["id"] == "irrigation_phase":
            sensor["value_type"] = "string"
            del sensor["options"]
    await adopt(hass, caps)
    fire(hass, "sensors/irrigation_phase", {"value": "flushing"})
    await hass.async_block_till_done()
    state = hass.states.get("sensor.greenhouse_irrigation_phase")
    assert state.state == "flushing"
    assert "device_class" not in state.attributes
    assert "options" not in state.attributes


async def test_energy_sensor_counts_for_the_energy_dashboard(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Energy takes a total state class (HA's Energy dashboard needs one), power stays a
    measurement."""
    caps["sensors"] += [
        {"id": "energy", "type": "energy", "name": "Energy", "unit": "kWh", "value_type": "number"},
        {"id": "power", "type": "power", "name": "Power", "unit": "W", "value_type": "number"},
    ]
    await adopt(hass, caps)
    fire(hass, "sensors/energy", {"value": 12.5})
    await hass.async_block_till_done()
    energy = hass.states.get("sensor.greenhouse_energy")
    assert energy.state == "12.5"
    assert energy.attributes["device_class"] == "energy"
    assert energy.attributes["state_class"] == "total_increasing"
    assert hass.states.get("sensor.greenhouse_power").attributes["state_class"] == "measurement"


async def test_long_string_reading_is_cut_to_the_state_limit(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """A string reading may hold 1,024 characters, a state 255: the state shows the start.

    Longer than 255, HA would refuse the state and show `unknown`.
    """
    text = "é" + "x" * 1023
    fire(hass, "sensors/status_text", {"value": text})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.greenhouse_status_text").state == text[:255]
    manager = adopted.runtime_data
    assert manager.devices[DEVICE].sensors["status_text"].value == text
