"""The shared vectors' device-side checks, played on the reference device built with ESPHome.

devices/reference-device.yaml mirrors tests/vectors/reference_device.json with template
entities. Every `cmd` and `actuator_set` case is sent to the running device and its
response (or its silence) compared with `device_response`. The vectors expect a fresh
device for every case: after a case, the actuator value, configuration, discovery mode or
streaming setting it changed is set back over MQTT.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any

from device_process import DeviceProcess
from esphome_support import build_program
from mqtt_recorder import Recorder
import pytest

from harness.broker import Broker
from vectors import Case, load, matches, reference_device

YAML = Path(__file__).parent / "devices" / "reference-device.yaml"
REF = reference_device()
DEVICE = REF["device_id"]
B = f"{REF['base_topic']}/{DEVICE}"
# Cases that cannot apply to an ESPHome device, with the reason.
NOT_APPLICABLE = {
    # ESPHome's text entities hold at most 255 characters; the core accepts the value
    # and ESPHome's text call refuses it, so the answer is the unchanged state.
    "actuator_set:size_1024_exact": "ESPHome text entities hold at most 255 characters",
}
CASES = [c for kind in ("cmd", "actuator_set") for c in load(kind)]


@pytest.fixture(scope="module")
def program() -> Path:
    return build_program(YAML, DEVICE)


@pytest.fixture(scope="module")
def device(
    program: Path, broker: Broker, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeviceProcess]:
    d = DeviceProcess(program, broker.url, tmp_path_factory.mktemp("ref"), "reference")
    recorder.wait_for(f"{B}/status", lambda m: m.payload == b"online", timeout=20)
    # the ESPHome entities have their first states
    recorder.wait_for(f"{B}/actuators/fan_mode/state")
    yield d
    d.stop()


def restore(recorder: Recorder, case: Case, response: dict[str, Any] | None) -> None:
    """Set back what the case changed on the device (the vectors expect a fresh device)."""
    executed = response.get("ok") is True if response is not None else case.valid
    if not executed:
        return  # refused: nothing changed
    try:
        body = json.loads(case.payload)
    except ValueError:
        return
    if case.kind == "actuator_set":
        actuator = case.topic.split("/")[-2]
        if actuator in REF["initial"] and body.get("action") in {"write", "toggle"}:
            value = REF["initial"][actuator]
            back = {"action": "write", "value": value}
            assert recorder.request(B, f"actuators/{actuator}/set", back)["ok"] is True
        return
    args = body.get("args") if isinstance(body.get("args"), dict) else {}
    undo: dict[str, Any] | None = None
    if body.get("cmd") == "update_config":
        undo = {"cmd": "update_config", "args": REF["config"]}
    elif body.get("cmd") == "set_discovery":
        undo = {"cmd": "set_discovery", "args": {"mode": "mqtt"}}
    elif body.get("cmd") == "set_streaming":
        sensor = next(s for s in REF["capabilities"]["sensors"] if s["id"] == args["sensor"])
        undo = {
            "cmd": "set_streaming",
            "args": {"sensor": sensor["id"], "enable": False, "interval_ms": sensor["interval_ms"]},
        }
    if undo is not None:
        assert recorder.request(B, "cmd", undo)["ok"] is True, undo


def play(recorder: Recorder, case: Case) -> dict[str, Any] | None:
    """Send the case; the response with its id, or None when none came."""
    start = recorder.mark()
    recorder.publish(case.topic.replace("esp32-a1b2c3", DEVICE, 1), case.payload)
    expected = case.device_response
    if expected is None:
        # No response is due: a ping with an id after it is answered, and nothing else came.
        recorder.request(B, "cmd", {"cmd": "ping"})
        stray = [
            m.json()
            for m in recorder.find(f"{B}/response", after=start)
            if not str(m.json().get("id", "")).startswith("t-")
        ]
        assert stray == [], stray
        return None
    want_id = expected.get("id")
    msg = recorder.wait_for(
        f"{B}/response", lambda m: m.json().get("id") == want_id, after=start, timeout=10
    )
    response: dict[str, Any] = msg.json()
    if b'"restart"' in case.payload and response.get("ok"):
        # the host port's restart reconnects: wait until the device is back
        recorder.wait_for(f"{B}/status", lambda m: m.payload == b"online", after=start)
    return response


def test_vectors_are_loaded() -> None:
    assert len(CASES) > 80
    assert all(c.has_device_response for c in CASES)
    assert set(NOT_APPLICABLE) <= {f"{c.kind}:{c.name}" for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}:{c.name}")
def test_device_side_vector(case: Case, device: DeviceProcess, recorder: Recorder) -> None:
    key = f"{case.kind}:{case.name}"
    if key in NOT_APPLICABLE:
        pytest.skip(NOT_APPLICABLE[key])
    response = play(recorder, case)
    try:
        if case.device_response is None:
            assert response is None
            return
        assert matches(case.device_response, response), (
            f"{key}: expected {json.dumps(case.device_response)}, got {json.dumps(response)}"
        )
    finally:
        restore(recorder, case, response)


def test_reference_device_capabilities(device: DeviceProcess, recorder: Recorder) -> None:
    caps = recorder.wait_for(f"{B}/capabilities").json()
    want = REF["capabilities"]
    assert [s["id"] for s in caps["sensors"]] == [s["id"] for s in want["sensors"]]
    assert [a["id"] for a in caps["actuators"]] == [a["id"] for a in want["actuators"]]
    for got, ref in zip(caps["actuators"], want["actuators"], strict=True):
        for key in (
            "value_type",
            "actions",
            "min",
            "max",
            "step",
            "options",
            "requires_confirmation",
        ):
            assert got.get(key) == ref.get(key), (ref["id"], key)
