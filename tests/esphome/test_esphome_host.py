"""The host example built with ESPHome, run against a real Mosquitto.

What ESPHome's template entities do reaches the broker through the unchanged core, and
commands on the contract's topics call ESPHome's own entity calls and are answered with
the entity's resulting state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import shlex
import subprocess
from typing import Any

from device_process import DeviceProcess
from esphome_support import COMPONENTS
from mqtt_recorder import Recorder
import pytest

from harness.broker import Broker

B = "mcp_bridge/esphome-host"


@pytest.fixture(scope="module")
def device(
    host_program: Path, broker: Broker, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeviceProcess]:
    d = DeviceProcess(host_program, broker.url, tmp_path_factory.mktemp("device"), "device")
    recorder.wait_for(f"{B}/status", lambda m: m.payload == b"online", timeout=20)
    yield d
    d.stop()


def set_(recorder: Recorder, actuator: str, **body: Any) -> dict[str, Any]:
    return recorder.request(B, f"actuators/{actuator}/set", body)


def error_code(response: dict[str, Any]) -> str:
    assert response["ok"] is False, response
    code: str = response["error"]["code"]
    return code


def build_cxxflags(src: Path) -> list[str]:
    """The C++ flags ESPHome's host build used (its build.ninja)."""
    ninja = (src.parent / ".pioenvs" / "esphome-host" / "build.ninja").read_text()
    line = next(x for x in ninja.splitlines() if x.startswith("cxxflags = "))
    return shlex.split(line.removeprefix("cxxflags = "))


@pytest.mark.parametrize("log_level", ["DEBUG", "NONE"])
def test_glue_compiles_warning_free(host_program: Path, log_level: str) -> None:
    src = host_program.parents[2] / "src"
    flags: list[str] = []
    for f in build_cxxflags(src):
        if f.startswith("-I"):
            # ESPHome's own headers are not -Wextra clean: only the glue is held to it
            flags += ["-isystem", f[2:]]
        elif not f.startswith(("-DESPHOME_LOG_LEVEL", "-Wno-")):
            flags.append(f)
    glue = COMPONENTS / "esp_mcp_bridge" / "mcp_bridge_component.cpp"
    result = subprocess.run(
        [
            "g++",
            *flags,
            f"-DESPHOME_LOG_LEVEL=ESPHOME_LOG_LEVEL_{log_level}",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            str(glue),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_status_online_retained(device: DeviceProcess, broker: Broker) -> None:
    late = Recorder(broker.host, broker.port)  # subscribes after the device went online
    try:
        retained = late.wait_for(f"{B}/status")
        assert retained.retain
        assert retained.payload == b"online"
        caps = late.wait_for(f"{B}/capabilities")
        assert caps.retain
    finally:
        late.close()


def test_capabilities_as_declared(device: DeviceProcess, recorder: Recorder) -> None:
    caps = recorder.wait_for(f"{B}/capabilities").json()
    assert caps["v"] == 1
    assert caps["device_id"] == "esphome-host"
    assert caps["name"] == "ESPHome host bridge"  # ESPHome's friendly_name
    assert caps["fw"] == "esphome 2026.10.0"  # ESPHome's version (no project version set)
    assert caps["discovery"] == "mqtt"
    sensors = {s["id"]: s for s in caps["sensors"]}
    actuators = {a["id"]: a for a in caps["actuators"]}
    assert list(sensors) == [
        "temperature",
        "ramp",
        "no_reading",
        "presses",
        "identifies",
        "door",
        "phase",
    ]
    assert list(actuators) == ["led", "stuck", "valve", "fan_mode", "buzzer", "display", "lamp"]
    t = sensors["temperature"]
    assert (t["type"], t["name"], t["unit"], t["value_type"]) == (
        "temperature",
        "Temperature",
        "°C",  # from the ESPHome sensor's unit_of_measurement
        "number",
    )
    assert (t["min"], t["max"], t["accuracy"], t["description"]) == (
        -40,
        85,
        0.5,
        "Template temperature",
    )
    assert sensors["door"]["value_type"] == "boolean"
    assert sensors["phase"]["value_type"] == "string"
    assert actuators["led"]["value_type"] == "boolean"
    assert actuators["led"]["name"] == "Relay"  # the ESPHome entity's name
    assert actuators["led"]["actions"] == ["read", "write", "toggle"]
    assert actuators["led"]["response_time_ms"] == 100
    valve = actuators["valve"]
    assert (valve["value_type"], valve["min"], valve["max"], valve["step"], valve["unit"]) == (
        "number",
        0,
        100,
        5,
        "%",
    )
    assert valve["requires_confirmation"] is True
    assert actuators["fan_mode"]["value_type"] == "enum"
    assert actuators["fan_mode"]["options"] == ["auto", "low", "high"]
    assert actuators["buzzer"]["value_type"] == "trigger"
    assert actuators["buzzer"]["actions"] == ["trigger"]
    assert actuators["display"]["value_type"] == "string"
    assert actuators["lamp"]["value_type"] == "boolean"
    assert actuators["lamp"]["actions"] == ["read", "write", "toggle"]


def test_discovery_message_has_the_entities(device: DeviceProcess, recorder: Recorder) -> None:
    config = recorder.wait_for("homeassistant/device/esphome-host/config").json()
    platforms = {key: cmp["p"] for key, cmp in config["cmps"].items()}
    assert platforms == {
        "temperature": "sensor",
        "ramp": "sensor",
        "no_reading": "sensor",
        "presses": "sensor",
        "identifies": "sensor",
        "door": "binary_sensor",
        "phase": "sensor",
        "led": "light",  # type led
        "stuck": "switch",
        "valve": "number",
        "fan_mode": "select",
        "buzzer": "button",
        "display": "text",
        "lamp": "light",  # type light
    }
    assert config["dev"]["ids"] == ["esphome-host"]


def test_readings_from_template_sensors(device: DeviceProcess, recorder: Recorder) -> None:
    temp = recorder.wait_for(f"{B}/sensors/temperature", count=2).json()
    assert temp["value"] == 21.5
    assert isinstance(temp["ts"], int)
    assert recorder.wait_for(f"{B}/sensors/phase").json()["value"] == "idle"
    assert recorder.wait_for(f"{B}/sensors/door").json()["value"] is False


def test_a_sensor_without_state_publishes_nothing(
    device: DeviceProcess, recorder: Recorder
) -> None:
    start = recorder.mark()
    # three more temperature readings (one a second): no_reading had its chances
    recorder.wait_for(f"{B}/sensors/temperature", after=start, count=3)
    assert recorder.find(f"{B}/sensors/no_reading") == []
    assert not [m for m in recorder.find(f"{B}/error") if b"no_reading" in m.payload]


def test_initial_actuator_states(device: DeviceProcess, recorder: Recorder) -> None:
    assert recorder.wait_for(f"{B}/actuators/fan_mode/state").json()["value"] == "auto"
    assert recorder.wait_for(f"{B}/actuators/valve/state").json()["value"] == 0
    assert recorder.find(f"{B}/actuators/buzzer/state") == []  # triggers have no state


def test_switch_write_changes_esphome_state(
    device: DeviceProcess, recorder: Recorder, broker: Broker
) -> None:
    start = recorder.mark()
    response = set_(recorder, "led", action="write", value=True)
    assert response == {"id": response["id"], "ok": True, "result": {"value": True}}
    state = recorder.wait_for(f"{B}/actuators/led/state", after=start)
    assert state.json()["value"] is True
    late = Recorder(broker.host, broker.port)
    try:
        retained = late.wait_for(f"{B}/actuators/led/state")
        assert retained.retain
        assert retained.json()["value"] is True
    finally:
        late.close()
    # the template binary sensor reads id(relay).state: ESPHome's switch really changed
    door = recorder.wait_for(f"{B}/sensors/door", lambda m: m.json()["value"] is True, after=start)
    assert door.json()["value"] is True
    assert set_(recorder, "led", action="read")["result"] == {"value": True}


def test_switch_toggle(device: DeviceProcess, recorder: Recorder) -> None:
    before = set_(recorder, "led", action="read")["result"]["value"]
    after = set_(recorder, "led", action="toggle")["result"]["value"]
    assert after is (not before)
    assert set_(recorder, "led", action="read")["result"]["value"] is after


def test_answer_is_the_entity_state_not_the_request(
    device: DeviceProcess, recorder: Recorder
) -> None:
    """A switch whose turn_on does nothing stays off, and says so."""
    response = set_(recorder, "stuck", action="write", value=True)
    assert response["ok"] is True
    assert response["result"] == {"value": False}


def test_number_write_and_its_errors(device: DeviceProcess, recorder: Recorder) -> None:
    assert set_(recorder, "valve", action="write", value=35)["result"] == {"value": 35}
    assert set_(recorder, "valve", action="read")["result"] == {"value": 35}
    assert error_code(set_(recorder, "valve", action="write", value=150)) == "out_of_range"
    assert error_code(set_(recorder, "valve", action="write", value=37)) == "invalid_value"
    assert error_code(set_(recorder, "valve", action="write", value="35")) == "invalid_value"
    assert error_code(set_(recorder, "valve", action="toggle")) == "unsupported_action"
    assert set_(recorder, "valve", action="read")["result"] == {"value": 35}


def test_select_write(device: DeviceProcess, recorder: Recorder) -> None:
    start = recorder.mark()
    assert set_(recorder, "fan_mode", action="write", value="high")["result"] == {"value": "high"}
    state = recorder.wait_for(f"{B}/actuators/fan_mode/state", after=start)
    assert state.json()["value"] == "high"
    assert error_code(set_(recorder, "fan_mode", action="write", value="turbo")) == "invalid_value"


def test_button_press_runs_its_automation(device: DeviceProcess, recorder: Recorder) -> None:
    start = recorder.mark()
    assert set_(recorder, "buzzer", action="trigger")["result"] == {"value": None}
    # on_press publishes the presses sensor
    presses = recorder.wait_for(f"{B}/sensors/presses", after=start)
    assert presses.json()["value"] == 1
    assert error_code(set_(recorder, "buzzer", action="write", value=True)) == "unsupported_action"


def test_text_write(device: DeviceProcess, recorder: Recorder) -> None:
    response = set_(recorder, "display", action="write", value="hello ESPHome")
    assert response["result"] == {"value": "hello ESPHome"}
    assert error_code(set_(recorder, "display", action="write", value=42)) == "invalid_value"


def test_errors_of_bad_commands(device: DeviceProcess, recorder: Recorder) -> None:
    assert error_code(set_(recorder, "pump", action="write", value=True)) == "unknown_actuator"
    assert error_code(set_(recorder, "led", action="explode")) == "unsupported_action"
    assert error_code(set_(recorder, "led", action="write")) == "invalid_value"
    assert error_code(set_(recorder, "led", value=True)) == "malformed"
    start = recorder.mark()
    recorder.publish(f"{B}/actuators/led/set", b'{"id": "r-1", "action": ')
    bad = recorder.wait_for(f"{B}/response", after=start).json()
    assert bad["id"] is None
    assert bad["error"]["code"] == "malformed"
    start = recorder.mark()
    recorder.publish(f"{B}/cmd", '{"id":"r-big","cmd":"ping","pad":"' + "x" * 1100 + '"}')
    big = recorder.wait_for(f"{B}/response", after=start).json()
    assert big["id"] == "r-big"
    assert big["error"]["code"] == "payload_too_large"


def test_device_commands(device: DeviceProcess, recorder: Recorder) -> None:
    ping = recorder.request(B, "cmd", {"cmd": "ping"})
    assert ping["ok"] is True
    assert isinstance(ping["result"]["uptime_s"], int)
    metrics = recorder.request(B, "cmd", {"cmd": "get_metrics"})
    assert metrics["result"]["messages_received"] >= 1
    assert error_code(recorder.request(B, "cmd", {"cmd": "fly"})) == "unsupported_action"
    unknown = recorder.request(
        B, "cmd", {"cmd": "set_streaming", "args": {"sensor": "pressure", "enable": True}}
    )
    assert error_code(unknown) == "unknown_sensor"


def test_light_on_off(device: DeviceProcess, recorder: Recorder) -> None:
    start = recorder.mark()
    assert set_(recorder, "lamp", action="write", value=True)["result"] == {"value": True}
    state = recorder.wait_for(f"{B}/actuators/lamp/state", after=start)
    assert state.json()["value"] is True
    assert set_(recorder, "lamp", action="toggle")["result"] == {"value": False}
    assert set_(recorder, "lamp", action="read")["result"] == {"value": False}


def test_identify_runs_on_identify(device: DeviceProcess, recorder: Recorder) -> None:
    start = recorder.mark()
    response = recorder.request(B, "cmd", {"cmd": "identify"})
    assert response["ok"] is True
    assert response["result"] == {}
    # the automation ran in ESPHome: it counted, and turned the lamp on
    count = recorder.wait_for(f"{B}/sensors/identifies", after=start)
    assert count.json()["value"] == 1
    lamp = recorder.wait_for(
        f"{B}/actuators/lamp/state", lambda m: m.json()["value"] is True, after=start
    )
    assert lamp.json()["value"] is True
