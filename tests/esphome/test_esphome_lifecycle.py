"""The host device's life cycle: discovery mode kept in ESPHome's preferences, offline on a
clean stop, the broker's last will when the process dies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import signal

from device_process import DeviceProcess
from mqtt_recorder import Recorder
import pytest

from harness.broker import Broker

B = "mcp_bridge/esphome-host"
DISCOVERY = "homeassistant/device/esphome-host/config"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def recorder(broker: Broker) -> Iterator[Recorder]:
    r = Recorder(broker.host, broker.port)
    yield r
    r.close()


def start(program: Path, broker: Broker, recorder: Recorder, state: Path) -> DeviceProcess:
    mark = recorder.mark()
    device = DeviceProcess(program, broker.url, state, "device")
    recorder.wait_for(f"{B}/status", lambda m: m.payload == b"online", after=mark, timeout=20)
    return device


def test_discovery_mode_survives_a_restart(
    host_program: Path, broker: Broker, recorder: Recorder, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    device = start(host_program, broker, recorder, state)
    try:
        mark = recorder.mark()
        body = {"cmd": "set_discovery", "args": {"mode": "integration"}}
        response = recorder.request(B, "cmd", body)
        assert response["result"] == {"mode": "integration"}
        caps = recorder.wait_for(
            f"{B}/capabilities", lambda m: m.json()["discovery"] == "integration", after=mark
        )
        assert caps.json()["device_id"] == "esphome-host"
    finally:
        assert device.stop() == 0
    # a clean stop says offline itself
    offline = recorder.wait_for(f"{B}/status", lambda m: m.payload == b"offline")
    assert offline.payload == b"offline"

    mark = recorder.mark()
    device = start(host_program, broker, recorder, state)  # same preferences
    try:
        caps = recorder.wait_for(f"{B}/capabilities", after=mark).json()
        assert caps["discovery"] == "integration"
        # a stored mode does not hold the discovery back: mode integration publishes none
        recorder.wait_for(f"{B}/sensors/temperature", after=mark, count=2)
        assert not [m for m in recorder.find(DISCOVERY, after=mark) if m.payload]
    finally:
        assert device.stop() == 0
    prefs = list((state / "prefs").iterdir())
    assert prefs, "ESPHome's host preferences were not written"


def test_last_will_when_the_process_dies(
    host_program: Path, broker: Broker, recorder: Recorder, tmp_path: Path
) -> None:
    device = start(host_program, broker, recorder, tmp_path / "device")
    mark = recorder.mark()
    device.stop(signal.SIGKILL)
    will = recorder.wait_for(f"{B}/status", after=mark, timeout=15)
    assert will.payload == b"offline"
    late = Recorder(broker.host, broker.port)
    try:
        retained = late.wait_for(f"{B}/status")
        assert retained.retain
        assert retained.payload == b"offline"
    finally:
        late.close()
