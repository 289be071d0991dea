"""`esphome compile --only-generate` of the ESP32-C3 example (esp-idf): what the project holds.

The ESP32 toolchain and framework need the network, so the project is generated, not built.
`improv_serial` is left out of the generated copy: it pulls a library from the PlatformIO
registry already while generating (it is validated with the example in test_esphome_config).
"""

from __future__ import annotations

from pathlib import Path
import re
import shutil
import subprocess

from esphome_support import COMPONENTS, CORE_DIR, EXAMPLES, ROOT, esphome
import pytest

EXAMPLE = EXAMPLES / "esp32-c3-greenhouse.yaml"
GLUE_HEADERS = ("esp_mcp_bridge.h", "mcp_esp_err.h", "mcp_core.h", "mcp_port.h")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("c3")
    text = EXAMPLE.read_text()
    assert "\nimprov_serial:\n" in text
    text = text.replace("\nimprov_serial:\n", "\n")
    text = text.replace("path: ../components", f'path: "{COMPONENTS}"')
    (work / EXAMPLE.name).write_text(text)
    shutil.copy(EXAMPLES / "secrets.yaml", work / "secrets.yaml")
    result = esphome(
        "compile", "--only-generate", EXAMPLE.name, cwd=work, data_dir=work / "data", timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    build = work / "data" / "build" / "greenhouse-c3"
    assert build.is_dir()
    return build


def test_the_idf_component_is_referenced_by_path(project: Path) -> None:
    manifest = (project / "src" / "idf_component.yml").read_text()
    match = re.search(r"^  esp_mcp_bridge:\n    path: (.+)$", manifest, re.MULTILINE)
    assert match, manifest
    assert Path(match.group(1).strip()) == CORE_DIR


def test_the_core_headers_are_there_unchanged_and_no_core_source(project: Path) -> None:
    copied = project / "src" / "esp_mcp_bridge_core"
    assert sorted(p.name for p in copied.iterdir()) == sorted(GLUE_HEADERS)
    originals = {p.name: p for p in CORE_DIR.rglob("*.h")}
    for name in GLUE_HEADERS:
        assert (copied / name).read_bytes() == originals[name].read_bytes(), name
    # the core's sources are compiled by the IDF component, never twice
    assert not list((project / "src").rglob("mcp_core.c"))


def test_the_glue_and_the_configuration_are_generated(project: Path) -> None:
    glue = project / "src" / "esphome" / "components" / "esp_mcp_bridge"
    assert (glue / "mcp_bridge_component.cpp").exists()
    main = (project / "src" / "main.cpp").read_text()
    assert 'set_broker_uri("mqtts://homeassistant.local:8883")' in main
    assert 'set_device_id("greenhouse-c3")' in main
    assert re.search(r'add_sensor\(air_temperature, "temperature", "temperature"', main)
    assert re.search(r'add_sensor\(air_humidity, "humidity", "humidity"', main)
    assert re.search(r'add_actuator\(pump_relay, "pump", "relay"', main)
    assert re.search(r'add_actuator\(status_led, "led", "led"', main)


def test_what_the_idf_component_requires_is_not_excluded(project: Path) -> None:
    cmake = (CORE_DIR / "CMakeLists.txt").read_text()
    block = re.search(r"set\(priv_requires(.*?)\)", cmake, re.DOTALL)
    assert block
    required = set(block.group(1).split()) | {"mqtt", "json"}
    generated = (project / "CMakeLists.txt").read_text()
    excluded_match = re.search(r'set\(EXCLUDE_COMPONENTS "([^"]*)"\)', generated)
    assert excluded_match, generated[:2000]
    excluded = set(excluded_match.group(1).split(";"))
    assert "esp_lcd" in excluded  # ESPHome's exclusions are in force
    assert required & excluded == set()


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_component_from_a_git_tag(tmp_path: Path) -> None:
    """external_components from a tag: ESPHome clones the repository and the component
    finds the core in the same clone."""
    repo = tmp_path / "repo"
    for part in ("firmware/esphome/components", "firmware/components/esp_mcp_bridge"):
        shutil.copytree(
            ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__", ".esphome")
        )
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "release", cwd=repo)
    _git("tag", "v1.0.0", cwd=repo)
    work = tmp_path / "work"
    work.mkdir()
    (work / "device.yaml").write_text(
        f"""\
esphome:
  name: from-git
esp32:
  board: esp32-c3-devkitm-1
  framework:
    type: esp-idf
wifi:
  ssid: test
  password: test-password
external_components:
  - source:
      type: git
      url: file://{repo}
      ref: v1.0.0
      path: firmware/esphome/components
    components: [esp_mcp_bridge]
esp_mcp_bridge:
  broker: 127.0.0.1
"""
    )
    data = work / "data"
    result = esphome("compile", "--only-generate", "device.yaml", cwd=work, data_dir=data)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    manifest = (data / "build" / "from-git" / "src" / "idf_component.yml").read_text()
    match = re.search(r"^  esp_mcp_bridge:\n    path: (.+)$", manifest, re.MULTILINE)
    assert match, manifest
    core = Path(match.group(1).strip())
    # the clone ESPHome made of the tag, not this checkout
    assert data in core.parents
    assert (core / "CMakeLists.txt").exists()
    assert (core / "core" / "src" / "mcp_core.c").exists()
