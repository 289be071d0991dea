"""`esphome config` of every example, and bad YAMLs refused with a message at their key."""

from __future__ import annotations

from pathlib import Path
import textwrap

from esphome_support import COMPONENTS, EXAMPLES, esphome
import pytest

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "secrets.yaml")


def test_examples_are_found() -> None:
    assert "host-template.yaml" in EXAMPLE_FILES
    assert "esp32-c3-greenhouse.yaml" in EXAMPLE_FILES


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_example_is_valid(example: str, tmp_path: Path) -> None:
    result = esphome("config", example, cwd=EXAMPLES, data_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration is valid!" in result.stdout + result.stderr
    # the validated configuration carries the bridge block with its defaults filled in
    assert "esp_mcp_bridge:" in result.stdout
    assert "base_topic: mcp_bridge" in result.stdout


BASE = """\
esphome:
  name: bad-device
host:
external_components:
  - source: {{type: local, path: "{components}"}}
    components: [esp_mcp_bridge]
sensor:
  - platform: template
    id: temp
    lambda: return 1;
  - platform: template
    id: humidity
    lambda: return 2;
switch:
  - platform: template
    id: relay
    optimistic: true
number:
  - platform: template
    id: valve
    optimistic: true
    min_value: 0
    max_value: 100
    step: 1
{extra}
esp_mcp_bridge:
  broker: 127.0.0.1
{bridge}
"""


def write_yaml(tmp_path: Path, bridge: str, extra: str = "") -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        BASE.format(
            components=COMPONENTS,
            extra=extra,
            bridge=textwrap.indent(textwrap.dedent(bridge).strip("\n"), "  "),
        )
    )
    return path


def refused(tmp_path: Path, bridge: str, extra: str = "") -> list[str]:
    path = write_yaml(tmp_path, bridge, extra)
    result = esphome("config", path.name, cwd=tmp_path, data_dir=tmp_path / "data")
    assert result.returncode != 0, result.stdout
    assert "Failed config" in result.stdout + result.stderr
    return result.stdout.splitlines()


def assert_message_at_key(lines: list[str], message: str, key: str) -> None:
    """ESPHome prints the message right above the offending YAML line."""
    for i, line in enumerate(lines):
        if message in line:
            following = next(s.strip() for s in lines[i + 1 :] if s.strip())
            assert following.lstrip("- ").startswith(f"{key}:"), (line, following)
            return
    raise AssertionError(f"no line with {message!r} in:\n" + "\n".join(lines))


def test_good_base_is_valid(tmp_path: Path) -> None:
    """The bad cases below differ from this valid file only in what they test."""
    path = write_yaml(
        tmp_path,
        """
        sensors:
          - sensor: temp
        actuators:
          - switch: relay
          - number: valve
            min: 0
            max: 100
        """,
    )
    result = esphome("config", path.name, cwd=tmp_path, data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr


BAD_CASES = {
    "device_id_uppercase": (
        "device_id: Greenhouse",
        "breaks the device id rule",
        "device_id",
    ),
    "device_id_33_chars": (
        "device_id: esp32-aaaaaaaaaaaaaaaaaaaaaaaaaab",
        "breaks the device id rule",
        "device_id",
    ),
    "device_id_leading_hyphen": (
        "device_id: -esp32",
        "breaks the device id rule",
        "device_id",
    ),
    "mcp_id_with_hyphen": (
        """
        sensors:
          - sensor: temp
            mcp_id: soil-moisture
        """,
        "breaks the sensor/actuator id rule",
        "mcp_id",
    ),
    "mcp_id_33_chars": (
        """
        sensors:
          - sensor: temp
            mcp_id: soil_moisture_sensor_north_bed_1x
        """,
        "breaks the sensor/actuator id rule",
        "mcp_id",
    ),
    "duplicate_id_across_lists": (
        """
        sensors:
          - sensor: temp
            mcp_id: shared
        actuators:
          - switch: relay
            mcp_id: shared
        """,
        "mcp_id 'shared' is used twice",
        "mcp_id",
    ),
    "duplicate_default_id": (
        """
        sensors:
          - sensor: temp
          - sensor: humidity
            mcp_id: temp
        """,
        "mcp_id 'temp' is used twice",
        "mcp_id",
    ),
    "entity_listed_twice": (
        """
        sensors:
          - sensor: temp
          - sensor: temp
            mcp_id: temperature_again
        """,
        "sensor 'temp' is listed twice",
        "sensor",
    ),
    "use_id_of_wrong_type": (
        """
        actuators:
          - switch: temp
        """,
        "doesn't inherit from switch_::Switch",
        "switch",
    ),
    "number_without_range": (
        """
        actuators:
          - number: valve
        """,
        "a number actuator needs its range: 'min' is missing",
        "number",
    ),
    "number_without_max": (
        """
        actuators:
          - number: valve
            min: 0
        """,
        "a number actuator needs its range: 'max' is missing",
        "number",
    ),
    "two_entities_in_one_entry": (
        """
        sensors:
          - sensor: temp
            binary_sensor: temp
        """,
        "names exactly one entity",
        "sensor",
    ),
    "toggle_on_a_number": (
        """
        actuators:
          - number: valve
            min: 0
            max: 100
            actions: [read, toggle]
        """,
        "supports the actions read, write, not 'toggle'",
        "actions",
    ),
    "base_topic_with_wildcard": (
        "base_topic: mcp/#",
        "is not a topic prefix",
        "base_topic",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_yaml_is_refused_at_its_key(case: str, tmp_path: Path) -> None:
    bridge, message, key = BAD_CASES[case]
    lines = refused(tmp_path, bridge)
    assert_message_at_key(lines, message, key)


ESP32_BASE = """\
esphome:
  name: esp32-device
esp32:
  board: esp32-c3-devkitm-1
  framework:
    type: {framework}
wifi:
  ssid: test
  password: test-password
external_components:
  - source: {{type: local, path: "{components}"}}
    components: [esp_mcp_bridge]
{extra}
esp_mcp_bridge:
  broker: 127.0.0.1
"""


def esp32_config(tmp_path: Path, framework: str, extra: str = "") -> str:
    path = tmp_path / "esp32.yaml"
    path.write_text(ESP32_BASE.format(framework=framework, components=COMPONENTS, extra=extra))
    result = esphome("config", path.name, cwd=tmp_path, data_dir=tmp_path / "data")
    assert result.returncode != 0, result.stdout
    return result.stdout


def test_esp32_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "esp32.yaml"
    path.write_text(ESP32_BASE.format(framework="esp-idf", components=COMPONENTS, extra=""))
    result = esphome("config", path.name, cwd=tmp_path, data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr


def test_esphome_mqtt_is_refused(tmp_path: Path) -> None:
    out = esp32_config(tmp_path, "esp-idf", extra="mqtt:\n  broker: 127.0.0.1\n")
    assert "esp_mcp_bridge and ESPHome's 'mqtt:' cannot be used together" in out


def test_esp32_arduino_is_refused(tmp_path: Path) -> None:
    out = esp32_config(tmp_path, "arduino")
    assert "needs the esp-idf framework" in out


def test_esphome_api_is_allowed_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "esp32.yaml"
    path.write_text(ESP32_BASE.format(framework="esp-idf", components=COMPONENTS, extra="api:\n"))
    result = esphome("config", path.name, cwd=tmp_path, data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mark the bridged entities 'internal: true'" in result.stdout + result.stderr
