"""A command while ESPHome's main loop is stalled: answered `timeout`, nothing applied.

The glue hands commands to the main loop; when the loop does not take one within its wait
(2 s plus the actuator's response time), the command is answered `timeout` and dropped,
so it is not applied later either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import time

from device_process import DeviceProcess
from esphome_support import build_program
from mqtt_recorder import Recorder
import pytest

from harness._process import wait_until
from harness.broker import Broker

YAML = Path(__file__).parent / "devices" / "stall-device.yaml"
B = "mcp_bridge/esphome-stall"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def test_command_during_a_stalled_main_loop(broker: Broker, tmp_path: Path) -> None:
    program = build_program(YAML, "esphome-stall")
    stall = tmp_path / "stall"
    recorder = Recorder(broker.host, broker.port)
    device = DeviceProcess(
        program, broker.url, tmp_path / "device", "stall", extra_env={"STALL_FILE": str(stall)}
    )
    try:
        recorder.wait_for(f"{B}/status", lambda m: m.payload == b"online", timeout=20)
        body = {"action": "write", "value": True}
        assert recorder.request(B, "actuators/relay/set", body)["result"] == {"value": True}
        assert recorder.request(B, "actuators/relay/set", {"action": "write", "value": False})["ok"]
        stall.touch()
        wait_until(lambda: Path(f"{stall}.entered").exists(), 10, "the main loop to stall")
        sent = time.monotonic()
        response = recorder.request(B, "actuators/relay/set", body, timeout=15)
        waited = time.monotonic() - sent
        assert response["ok"] is False
        assert response["error"]["code"] == "timeout"
        assert waited >= 2.0  # the glue's wait (2 s + 100 ms response time), not earlier
        stall.unlink()
        # the loop runs again; the dropped command was not applied
        assert recorder.request(B, "actuators/relay/set", {"action": "read"})["result"] == {
            "value": False
        }
        assert recorder.request(B, "actuators/relay/set", body)["result"] == {"value": True}
    finally:
        stall.unlink(missing_ok=True)
        device.stop()
        recorder.close()
