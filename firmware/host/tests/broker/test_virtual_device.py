"""The virtual device (firmware core + POSIX port) against a real Mosquitto.

Each test starts the program, watches the wire with a recording MQTT client
and asserts the contract of docs/protocol.md: retained capabilities and
status, clean offline and the LWT, command round trips, readings, injected
errors, metrics, Home Assistant discovery and its removal, TLS and auth.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
import signal
from typing import Any

from mqtt_env import (
    PROFILES,
    Mosquitto,
    Msg,
    Recorder,
    Tls,
    VirtualDevice,
    make_ca,
    run_cli,
    running,
    wait_for,
)
import pytest

B = "mcp_bridge"
FAST = ("--interval-scale", "0.01")  # 10 s -> 100 ms: readings and metrics within a second


def t(device_id: str, suffix: str) -> str:
    return f"{B}/{device_id}/{suffix}"


def doc(msg: Msg) -> Any:
    return json.loads(msg.payload)


def sent_offline(broker: Mosquitto, dev_id: str) -> bool:
    """Whether the broker got "offline" (7 bytes) on the status topic from the device itself."""
    own = f"Received PUBLISH from {dev_id} ("
    status = f"'{B}/{dev_id}/status', ... (7 bytes))"
    return any(own in line and status in line for line in broker.log().splitlines())


def command(rec: Recorder, device_id: str, payload: dict[str, Any], topic: str = "cmd") -> None:
    rec.publish(t(device_id, topic), json.dumps(payload))


def response(rec: Recorder, device_id: str, request_id: str, timeout: float = 10) -> Any:
    msg = rec.wait(
        t(device_id, "response"), lambda m: doc(m).get("id") == request_id, timeout=timeout
    )
    return doc(msg)


# ------------------------------------------------------------------ lifecycle


def test_capabilities_retained_then_online_and_clean_offline(broker: Mosquitto, logs: Path) -> None:
    dev_id = "vd-life"
    with running(VirtualDevice(broker, "lamp", dev_id, logs)) as dev:
        dev.wait_ready()
        rec = Recorder(broker)
        rec.subscribe(t(dev_id, "status"), t(dev_id, "capabilities"))
        status = rec.wait(t(dev_id, "status"))
        assert (status.text, status.retain) == ("online", True)
        caps_msg = rec.wait(t(dev_id, "capabilities"))
        assert caps_msg.retain
        caps = doc(caps_msg)
        assert caps["v"] == 1
        assert caps["device_id"] == dev_id
        assert caps["name"] == "Lamp"
        assert caps["discovery"] == "mqtt"
        acts = {a["id"]: a for a in caps["actuators"]}
        assert acts["led"]["value_type"] == "boolean"
        assert acts["led"]["type"] == "led"
        assert set(acts["led"]["actions"]) >= {"read", "write", "toggle"}
        assert acts["brightness"]["value_type"] == "number"
        assert (acts["brightness"]["min"], acts["brightness"]["max"]) == (0, 255)

        assert dev.terminate() == 0
        rec.wait(t(dev_id, "status"), lambda m: m.text == "offline")
        rec.close()
    # The device published "offline" itself (not only the broker's will).
    wait_for(lambda: sent_offline(broker, dev_id), 5, "the device's own offline in the broker log")
    late = Recorder(broker)
    late.subscribe(t(dev_id, "status"))
    last = late.wait(t(dev_id, "status"))
    assert (last.text, last.retain) == ("offline", True)
    late.close()


def test_lwt_offline_after_sigkill(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    dev_id = "vd-kill"
    recorder.subscribe(t(dev_id, "status"))
    with running(VirtualDevice(broker, "sensor_node", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.wait(t(dev_id, "status"), lambda m: m.text == "online")
        dev.kill()
        recorder.wait(t(dev_id, "status"), lambda m: m.text == "offline")
    line = f"Client {dev_id} closed its connection."  # no DISCONNECT: the broker sent the will
    wait_for(lambda: line in broker.log(), 5, "the broker to log the dropped connection")
    assert not sent_offline(broker, dev_id)  # the offline seen above is the will
    assert [m.text for m in recorder.on(t(dev_id, "status"))] == ["online", "offline"]


def test_many_devices_in_one_process(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    ids = [f"vd-multi-{i}" for i in (1, 2, 3)]
    multi = VirtualDevice(broker, "sensor_node", "vd-multi", logs, args=("--count", "3"))
    with running(multi) as dev:
        dev.wait_ready(ids)
        recorder.subscribe(f"{B}/+/capabilities", f"{B}/+/status")
        for i, dev_id in enumerate(ids, start=1):
            caps = doc(recorder.wait(t(dev_id, "capabilities")))
            assert caps["device_id"] == dev_id
            assert caps["name"] == f"Sensor node {i}"
            assert [s["id"] for s in caps["sensors"]] == ["pressure", "motion"]
            recorder.wait(t(dev_id, "status"), lambda m: m.text == "online")
        assert len({doc(recorder.on(t(d, "capabilities"))[0])["mac"] for d in ids}) == 3
        # Ctrl-C: every device of the process says goodbye cleanly
        assert dev.terminate(sig=signal.SIGINT) == 0
        for dev_id in ids:
            recorder.wait(t(dev_id, "status"), lambda m: m.text == "offline")
            wait_for(
                functools.partial(sent_offline, broker, dev_id), 5, f"offline sent by {dev_id}"
            )


# ------------------------------------------------------------------- commands


def test_ping_and_led_write_round_trip(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    dev_id = "vd-cmd"
    with running(VirtualDevice(broker, "lamp", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.subscribe(t(dev_id, "response"), t(dev_id, "actuators/+/state"))

        command(recorder, dev_id, {"id": "t-ping", "cmd": "ping", "args": {}})
        pong = response(recorder, dev_id, "t-ping")
        assert pong["ok"] is True
        assert isinstance(pong["result"]["uptime_s"], int)

        state_topic = t(dev_id, "actuators/led/state")
        initial = recorder.wait(state_topic)
        assert (doc(initial)["value"], initial.retain) == (False, True)

        write = {"id": "t-w1", "action": "write", "value": True}
        command(recorder, dev_id, write, "actuators/led/set")
        ack = response(recorder, dev_id, "t-w1")
        assert ack == {"id": "t-w1", "ok": True, "result": {"value": True}}
        recorder.wait(state_topic, lambda m: doc(m)["value"] is True)

        # No id: acted on, but no response. The ping after it is the next response.
        before = len(recorder.on(t(dev_id, "response")))
        command(recorder, dev_id, {"action": "toggle"}, "actuators/led/set")
        command(recorder, dev_id, {"id": "t-ping2", "cmd": "ping", "args": {}})
        response(recorder, dev_id, "t-ping2")
        assert [doc(m)["id"] for m in recorder.on(t(dev_id, "response"))[before:]] == ["t-ping2"]
        recorder.wait(state_topic, lambda m: doc(m)["value"] is False and m is not initial)

        write = {"id": "t-b", "action": "write", "value": 200}
        command(recorder, dev_id, write, "actuators/brightness/set")
        assert response(recorder, dev_id, "t-b")["result"] == {"value": 200}

        # The state is retained: a new subscriber sees the last value.
        late = Recorder(broker)
        late.subscribe(t(dev_id, "actuators/brightness/state"))
        last = late.wait(t(dev_id, "actuators/brightness/state"))
        assert (doc(last)["value"], last.retain) == (200, True)
        late.close()
        assert dev.terminate() == 0


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("actuators/nope/set", {"id": "e1", "action": "write", "value": 1}, "unknown_actuator"),
        ("actuators/brightness/set", {"id": "e2", "action": "write", "value": 300}, "out_of_range"),
        ("actuators/led/set", {"id": "e3", "action": "write", "value": "yes"}, "invalid_value"),
        ("actuators/brightness/set", {"id": "e4", "action": "toggle"}, "unsupported_action"),
        ("cmd", {"id": "e5", "cmd": "get_metrics", "args": []}, None),
        ("cmd", {"id": "e6", "cmd": "no_such_command", "args": {}}, "unsupported_action"),
    ],
)
def test_command_errors_answered(
    broker: Mosquitto,
    logs: Path,
    recorder: Recorder,
    *,
    topic: str,
    payload: dict[str, Any],
    code: str | None,
) -> None:
    dev_id = "vd-err"
    with running(VirtualDevice(broker, "lamp", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.subscribe(t(dev_id, "response"))
        command(recorder, dev_id, payload, topic)
        answer = response(recorder, dev_id, payload["id"])
        if code is None:
            # args of the wrong type: still exactly one answer, ok or malformed
            assert answer["ok"] is True or answer["error"]["code"] == "malformed"
        else:
            assert answer["ok"] is False
            assert answer["error"]["code"] == code
            assert answer["error"]["message"]
        # the device is still alive and answering
        command(recorder, dev_id, {"id": "alive", "cmd": "ping", "args": {}})
        assert response(recorder, dev_id, "alive")["ok"] is True
        assert dev.terminate() == 0


def test_actuators_of_every_value_type_and_injected_failures(
    broker: Mosquitto, logs: Path, recorder: Recorder
) -> None:
    dev_id = "vd-acts"
    with running(VirtualDevice(broker, "lab", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.subscribe(t(dev_id, "response"), t(dev_id, "actuators/+/state"))

        def act(actuator: str, request_id: str, **body: Any) -> Any:
            command(recorder, dev_id, {"id": request_id, **body}, f"actuators/{actuator}/set")
            return response(recorder, dev_id, request_id)

        assert act("fan_mode", "a1", action="write", value="high")["result"] == {"value": "high"}
        assert act("fan_mode", "a2", action="write", value="turbo")["error"]["code"] in (
            "invalid_value",
            "out_of_range",
        )
        assert act("fan_mode", "a3", action="read")["result"] == {"value": "high"}
        assert act("display", "a4", action="write", value="Grüße")["result"] == {"value": "Grüße"}
        assert act("setpoint", "a5", action="write", value=22.5)["result"] == {"value": 22.5}
        assert act("reset", "a6", action="trigger")["ok"] is True
        assert act("relay", "a7", action="toggle")["result"] == {"value": True}
        recorder.wait(t(dev_id, "actuators/fan_mode/state"), lambda m: doc(m)["value"] == "high")

        # door_lock: takes 200 ms, every third action is refused as busy
        assert act("door_lock", "l1", action="write", value=False)["result"] == {"value": False}
        assert act("door_lock", "l2", action="write", value=True)["result"] == {"value": True}
        busy = act("door_lock", "l3", action="write", value=False)
        assert (busy["ok"], busy["error"]["code"]) == (False, "busy")
        assert act("door_lock", "l4", action="read")["result"] == {"value": True}  # unchanged
        assert dev.terminate() == 0


def test_get_metrics_on_request(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    dev_id = "vd-metrics"
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.subscribe(t(dev_id, "response"), t(dev_id, "metrics"))
        command(recorder, dev_id, {"id": "m1", "cmd": "get_metrics", "args": {}})
        answer = response(recorder, dev_id, "m1")
        assert answer["ok"] is True
        metrics = answer["result"]
        for key in ("uptime_s", "messages_sent", "messages_received", "connection_failures",
                    "sensor_read_errors", "actuator_errors", "wifi_reconnections",
                    "mqtt_reconnections", "free_heap", "min_free_heap", "rssi"):  # fmt: skip
            assert isinstance(metrics[key], int), key
        assert metrics["messages_received"] >= 1
        assert metrics["messages_sent"] >= 3  # status, capabilities, discovery at least
        published = doc(recorder.wait(t(dev_id, "metrics")))
        assert published["messages_received"] >= 1
        assert dev.terminate() == 0


def test_oversized_command_answered_payload_too_large(
    broker: Mosquitto, logs: Path, recorder: Recorder
) -> None:
    dev_id = "vd-big"
    with running(VirtualDevice(broker, "lamp", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.subscribe(t(dev_id, "response"))
        big = json.dumps({"id": "big-1", "action": "write", "value": "x" * 1100})
        recorder.publish(t(dev_id, "actuators/led/set"), big)
        answer = response(recorder, dev_id, "big-1")
        assert (answer["ok"], answer["error"]["code"]) == (False, "payload_too_large")
        command(recorder, dev_id, {"id": "after", "cmd": "ping", "args": {}})
        assert response(recorder, dev_id, "after")["ok"] is True
        assert dev.terminate() == 0


def test_streaming_on_and_off(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    """set_streaming: a 10 s sensor reads every 100 ms until streaming is disabled."""
    dev_id = "vd-stream"
    topic = t(dev_id, "sensors/temperature")
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs)) as dev:
        dev.wait_ready()
        recorder.subscribe(t(dev_id, "response"), topic)
        args = {"sensor": "temperature", "enable": True, "interval_ms": 50}
        command(recorder, dev_id, {"id": "s0", "cmd": "set_streaming", "args": args})
        too_fast = response(recorder, dev_id, "s0")
        assert too_fast["ok"] is False  # below the remote minimum of 100 ms
        assert too_fast["error"]["code"] in ("out_of_range", "invalid_value")
        args["interval_ms"] = 100
        command(recorder, dev_id, {"id": "s1", "cmd": "set_streaming", "args": args})
        assert response(recorder, dev_id, "s1")["ok"] is True
        # 10 readings within 5 s cannot come from the 10 s interval
        wait_for(lambda: len(recorder.on(topic)) >= 10, 5, "10 streamed readings")
        args = {"sensor": "temperature", "enable": False}
        command(recorder, dev_id, {"id": "s2", "cmd": "set_streaming", "args": args})
        assert response(recorder, dev_id, "s2")["ok"] is True
        command(
            recorder,
            dev_id,
            {"id": "s3", "cmd": "set_streaming", "args": {"sensor": "nope", "enable": True}},
        )
        assert response(recorder, dev_id, "s3")["error"]["code"] == "unknown_sensor"
        assert dev.terminate() == 0


def test_home_assistant_birth_republishes(
    broker: Mosquitto, logs: Path, recorder: Recorder
) -> None:
    """HA's birth message makes the device re-send discovery, status and states."""
    dev_id = "vd-birth"
    disc_topic = f"homeassistant/device/{dev_id}/config"
    state = t(dev_id, "actuators/led/state")
    # a stored mode mqtt: the discovery goes out on connect, no hold-off
    args = ("--discovery-mode", "mqtt")
    with running(VirtualDevice(broker, "lamp", dev_id, logs, args=args)) as dev:
        dev.wait_ready()
        recorder.subscribe(disc_topic, t(dev_id, "status"), state)
        recorder.sync()
        # what a subscriber gets now is the retained copy
        assert [m.retain for m in recorder.on(disc_topic)] == [True]
        assert [m.retain for m in recorder.on(state)] == [True]
        recorder.publish("homeassistant/status", "online", qos=1)
        # fresh (not retained) copies follow
        recorder.wait(disc_topic, lambda m: not m.retain)
        recorder.wait(t(dev_id, "status"), lambda m: not m.retain and m.text == "online")
        recorder.wait(state, lambda m: not m.retain and doc(m)["value"] is False)
        assert dev.terminate() == 0


# ------------------------------------------------------------- sensor traffic


def test_readings_of_every_type_and_injected_read_errors(
    broker: Mosquitto, logs: Path, recorder: Recorder
) -> None:
    dev_id = "vd-lab"
    recorder.subscribe(f"{B}/{dev_id}/#")
    with running(VirtualDevice(broker, "lab", dev_id, logs, args=FAST)) as dev:
        dev.wait_ready()
        volt = doc(recorder.wait(t(dev_id, "sensors/voltage")))
        assert volt["value"] in (3.3, 5.0)
        assert doc(recorder.wait(t(dev_id, "sensors/light")))["value"] == 350

        # enum and string sensors cycle through their options, the boolean toggles
        def seen(sensor: str) -> set[Any]:
            return {doc(m)["value"] for m in recorder.on(t(dev_id, f"sensors/{sensor}"))}

        wait_for(lambda: seen("mode") == {"idle", "heating", "cooling"}, 10, "every mode")
        wait_for(lambda: seen("status_text") == {"all good", "check filter"}, 10, "both texts")
        wait_for(lambda: seen("door") == {True, False}, 10, "the door to toggle")
        # the flaky probe fails every second read: an error message, and readings in between
        error = doc(recorder.wait(t(dev_id, "error"), lambda m: doc(m)["type"] == "sensor_read"))
        assert error["severity"] in range(5)
        assert isinstance(error["code"], int)
        assert "flaky" in error["message"]
        reading = doc(recorder.wait(t(dev_id, "sensors/flaky")))
        assert 19.0 <= reading["value"] <= 21.0
        # metrics on their (scaled) interval
        assert doc(recorder.wait(t(dev_id, "metrics")))["sensor_read_errors"] >= 0
        assert dev.terminate() == 0
    # the readings never carry NaN/Inf, every payload is JSON
    for msg in recorder.snapshot():
        if "/sensors/" in msg.topic:
            json.loads(msg.payload)


def test_greenhouse_signals_realistic(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    dev_id = "vd-green"
    recorder.subscribe(t(dev_id, "sensors/+"), t(dev_id, "capabilities"))
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs, args=FAST)) as dev:
        dev.wait_ready()
        caps = doc(recorder.wait(t(dev_id, "capabilities")))
        valve = next(a for a in caps["actuators"] if a["id"] == "valve")
        assert valve["requires_confirmation"] is True
        assert (valve["min"], valve["max"], valve["step"], valve["unit"]) == (0, 100, 5, "%")
        assert [s["id"] for s in caps["sensors"]] == ["temperature", "humidity", "soil_moisture"]
        soil_topic = t(dev_id, "sensors/soil_moisture")
        wait_for(lambda: len(recorder.on(soil_topic)) >= 5, 10, "5 soil readings")
        temps = [doc(m)["value"] for m in recorder.on(t(dev_id, "sensors/temperature"))]
        assert temps
        assert all(17.0 <= v <= 27.0 for v in temps)
        soil = [doc(m)["value"] for m in recorder.on(t(dev_id, "sensors/soil_moisture"))]
        assert all(20.0 <= v <= 80.0 for v in soil)
        steps = [abs(a - b) for a, b in itertools.pairwise(soil)]
        assert max(steps) <= 0.8 + 0.1 + 1e-9  # random walk: step 0.8, rounded to 0.1
        assert doc(recorder.on(t(dev_id, "sensors/temperature"))[0]).get("quality") == 95
        assert dev.terminate() == 0


def test_same_seed_same_walk(broker: Mosquitto, logs: Path) -> None:
    """--seed makes the simulated signals reproducible (the pressure random walk)."""
    dev_id = "vd-seed"
    topic = t(dev_id, "sensors/pressure")

    def first_readings(seed: str) -> list[float]:
        rec = Recorder(broker)
        rec.subscribe(topic)
        args = (*FAST, "--seed", seed)
        with running(VirtualDevice(broker, "sensor_node", dev_id, logs, args=args)) as dev:
            dev.wait_ready()
            wait_for(lambda: len(rec.on(topic)) >= 4, 10, "4 pressure readings")
            assert dev.terminate() == 0
        rec.close()
        return [doc(m)["value"] for m in rec.on(topic)][:4]

    first = first_readings("42")
    assert first[0] == 1013.2  # the walk starts where the profile says
    assert first_readings("42") == first
    assert first_readings("43") != first


# ------------------------------------------------------------------ discovery


def test_discovery_published_removed_and_mode_persisted(
    broker: Mosquitto, logs: Path, tmp_path: Path
) -> None:
    dev_id = "vd-disc"
    disc_topic = f"homeassistant/device/{dev_id}/config"
    state = tmp_path / "state"
    args = ("--state-dir", str(state))
    # a fresh device without the hold-off: discovery at once (the hold-off: next test)
    first = (*args, "--discovery-holdoff-ms", "0")
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs, args=first)) as dev:
        dev.wait_ready()
        rec = Recorder(broker)
        rec.subscribe(disc_topic, t(dev_id, "response"))
        disc_msg = rec.wait(disc_topic)
        assert disc_msg.retain
        disc = doc(disc_msg)
        assert disc["dev"]["ids"]
        assert disc["o"]["name"]
        unique_ids = {c["unique_id"] for c in disc["cmps"].values()}
        assert {f"{dev_id}_temperature", f"{dev_id}_humidity", f"{dev_id}_soil_moisture",
                f"{dev_id}_valve"} <= unique_ids  # fmt: skip
        assert all("p" in c for c in disc["cmps"].values())
        valve = next(c for c in disc["cmps"].values() if c["unique_id"] == f"{dev_id}_valve")
        assert valve["p"] == "number"
        assert valve["command_topic"].endswith(f"{dev_id}/actuators/valve/set")

        command(rec, dev_id, {"id": "d1", "cmd": "set_discovery", "args": {"mode": "integration"}})
        assert response(rec, dev_id, "d1")["ok"] is True
        removal = rec.wait(disc_topic, lambda m: m.payload == b"")
        assert removal is not None
        assert dev.terminate() == 0
        rec.close()

    # Restart with the same state dir: still integration, no discovery retained.
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs, args=args)) as dev:
        dev.wait_ready()
        rec = Recorder(broker)
        rec.subscribe(disc_topic, t(dev_id, "capabilities"), t(dev_id, "response"))
        caps = doc(rec.wait(t(dev_id, "capabilities")))
        assert caps["discovery"] == "integration"
        rec.sync()
        assert [m for m in rec.on(disc_topic) if m.payload] == []

        # and back: set_discovery mqtt publishes it again
        command(rec, dev_id, {"id": "d2", "cmd": "set_discovery", "args": {"mode": "mqtt"}})
        assert response(rec, dev_id, "d2")["ok"] is True
        back = rec.wait(disc_topic, lambda m: bool(m.payload))
        assert doc(back)["dev"]["ids"]
        assert dev.terminate() == 0
        rec.close()


def test_fresh_device_holds_its_discovery_back_for_a_takeover(
    broker: Mosquitto, logs: Path, tmp_path: Path
) -> None:
    """No stored mode: status and capabilities at once, the discovery only after the
    hold-off; a set_discovery during it is applied (integration: never published) and
    stored, so the next start does not wait; --discovery-mode counts as stored."""
    dev_id = "vd-hold"
    disc_topic = f"homeassistant/device/{dev_id}/config"
    state = tmp_path / "state"
    args = ("--state-dir", str(state), "--discovery-holdoff-ms", "600000")
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs, args=args)) as dev:
        dev.wait_ready()
        rec = Recorder(broker)
        rec.subscribe(
            disc_topic, t(dev_id, "capabilities"), t(dev_id, "status"), t(dev_id, "response")
        )
        assert doc(rec.wait(t(dev_id, "capabilities")))["discovery"] == "mqtt"
        assert rec.wait(t(dev_id, "status")).text == "online"
        rec.sync()
        assert rec.on(disc_topic) == []  # held back
        command(rec, dev_id, {"id": "h1", "cmd": "set_discovery", "args": {"mode": "integration"}})
        assert response(rec, dev_id, "h1") == {
            "id": "h1",
            "ok": True,
            "result": {"mode": "integration"},
        }
        command(rec, dev_id, {"id": "h2", "cmd": "ping"})
        response(rec, dev_id, "h2")
        assert [m for m in rec.on(disc_topic) if m.payload] == []
        assert dev.terminate() == 0
        rec.close()
    assert (state / dev_id / "disc_mode").read_text() == "integration"

    # a fresh device answered with set_discovery mqtt publishes at once
    other = "vd-hold2"
    other_disc = f"homeassistant/device/{other}/config"
    with running(
        VirtualDevice(broker, "lamp", other, logs, args=("--discovery-holdoff-ms", "600000"))
    ) as dev:
        dev.wait_ready()
        rec = Recorder(broker)
        rec.subscribe(other_disc, t(other, "response"))
        rec.sync()
        assert rec.on(other_disc) == []
        command(rec, other, {"id": "h3", "cmd": "set_discovery", "args": {"mode": "mqtt"}})
        assert response(rec, other, "h3")["ok"] is True
        assert doc(rec.wait(other_disc, lambda m: bool(m.payload)))["dev"]["ids"] == [other]
        assert dev.terminate() == 0
        rec.close()

    # --discovery-mode mqtt: taken as stored, the discovery is retained right after READY
    third = "vd-hold3"
    stored = ("--discovery-holdoff-ms", "600000", "--discovery-mode", "mqtt")
    with running(VirtualDevice(broker, "lamp", third, logs, args=stored)) as dev:
        dev.wait_ready()
        rec = Recorder(broker)
        rec.subscribe(f"homeassistant/device/{third}/config")
        assert rec.wait(f"homeassistant/device/{third}/config").retain
        assert dev.terminate() == 0
        rec.close()


def test_batch_in_integration_mode(broker: Mosquitto, logs: Path, recorder: Recorder) -> None:
    """--batch: singles in mode mqtt, one batch per round in mode integration."""
    dev_id = "vd-batch"
    sensors = {"temperature", "humidity", "soil_moisture"}
    recorder.subscribe(f"{B}/{dev_id}/#")
    args = (*FAST, "--batch")
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs, args=args)) as dev:
        dev.wait_ready()
        for sensor in sensors:
            recorder.wait(t(dev_id, f"sensors/{sensor}"))
        assert recorder.on(t(dev_id, "batch")) == []  # mode mqtt: HA's entities need singles

        command(
            recorder, dev_id, {"id": "b1", "cmd": "set_discovery", "args": {"mode": "integration"}}
        )
        assert response(recorder, dev_id, "b1")["ok"] is True
        full = recorder.wait(
            t(dev_id, "batch"), lambda m: {r["id"] for r in doc(m)["readings"]} == sensors
        )
        batch = doc(full)
        assert isinstance(batch["ts"], int)
        for reading in batch["readings"]:
            assert isinstance(reading["value"], float | int)
        wait_for(lambda: len(recorder.on(t(dev_id, "batch"))) >= 5, 10, "5 batches")
        messages = recorder.snapshot()
        switched = next(i for i, m in enumerate(messages) if m.topic == t(dev_id, "response"))
        after = [m.topic for m in messages[switched:]]
        assert after.count(t(dev_id, "batch")) >= 5
        # Batches replace the single readings; at most the one re-publish of the stored
        # readings that follows a connect (1 s after it) may still appear per sensor.
        for sensor in sensors:
            assert after.count(t(dev_id, f"sensors/{sensor}")) <= 1, sensor
        assert dev.terminate() == 0


def test_core_scheduler_batches_in_integration_mode(
    broker: Mosquitto, logs: Path, recorder: Recorder
) -> None:
    """Without --batch the core reads the sensors: the readings due in one pass go out as one
    batch in mode integration; in mode mqtt there is never a batch."""
    dev_id = "vd-sched-batch"
    both = {"temperature", "humidity"}  # same interval: due in the same pass
    recorder.subscribe(f"{B}/{dev_id}/#")
    with running(VirtualDevice(broker, "greenhouse", dev_id, logs, args=FAST)) as dev:
        dev.wait_ready()
        for sensor in (*both, "soil_moisture"):
            recorder.wait(t(dev_id, f"sensors/{sensor}"))
        assert recorder.on(t(dev_id, "batch")) == []  # mode mqtt: HA's entities need singles

        command(
            recorder, dev_id, {"id": "sb1", "cmd": "set_discovery", "args": {"mode": "integration"}}
        )
        assert response(recorder, dev_id, "sb1")["ok"] is True
        recorder.wait(t(dev_id, "batch"), lambda m: both <= {r["id"] for r in doc(m)["readings"]})
        wait_for(lambda: len(recorder.on(t(dev_id, "batch"))) >= 5, 10, "5 batches")
        messages = recorder.snapshot()
        switched = next(i for i, m in enumerate(messages) if m.topic == t(dev_id, "response"))
        after = messages[switched + 1 :]
        batches = [doc(m) for m in after if m.topic == t(dev_id, "batch")]
        for batch in batches:
            ids = [r["id"] for r in batch["readings"]]
            assert len(ids) == len(set(ids)) >= 2  # one reading alone goes singly
            assert isinstance(batch["ts"], int)
        # temperature and humidity are never due alone: after the switch they only come in
        # batches (at most the stored readings re-published once after the switch).
        for sensor in both:
            assert [m.topic for m in after].count(t(dev_id, f"sensors/{sensor}")) <= 1, sensor

        command(recorder, dev_id, {"id": "sb2", "cmd": "set_discovery", "args": {"mode": "mqtt"}})
        assert response(recorder, dev_id, "sb2")["ok"] is True

        def after_mqtt() -> list[str]:
            topics = [m.topic for m in recorder.snapshot()]
            resp = t(dev_id, "response")
            return topics[max(i for i, x in enumerate(topics) if x == resp) + 1 :]

        wait_for(
            lambda: all(after_mqtt().count(t(dev_id, f"sensors/{s}")) >= 3 for s in both),
            10,
            "single readings again in mode mqtt",
        )
        assert t(dev_id, "batch") not in after_mqtt()
        assert dev.terminate() == 0


# ------------------------------------------------------------ TLS and auth


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Any:
    b = Mosquitto(
        tmp_path_factory.mktemp("mosquitto-tls"), users={"device": "s3cret-pw!"}, tls=tls
    ).start()
    yield b
    b.stop()


def test_tls_with_generated_ca_and_password(secure_broker: Mosquitto, tls: Tls, logs: Path) -> None:
    dev_id = "vd-tls"
    args = ("--cafile", str(tls.ca), "--username", "device")
    env = {"MQTT_PASSWORD": "s3cret-pw!"}
    with running(VirtualDevice(secure_broker, "lamp", dev_id, logs, args=args, env=env)) as dev:
        dev.wait_ready()
        rec = Recorder(secure_broker, username="device", password="s3cret-pw!")
        rec.subscribe(t(dev_id, "status"), t(dev_id, "response"))
        assert rec.wait(t(dev_id, "status")).text == "online"
        command(rec, dev_id, {"id": "tls-1", "cmd": "ping", "args": {}})
        assert response(rec, dev_id, "tls-1")["ok"] is True
        assert dev.terminate() == 0
        rec.wait(t(dev_id, "status"), lambda m: m.text == "offline")
        rec.close()
        assert "s3cret-pw!" not in dev.log()


def test_mutual_tls_with_client_certificate(tmp_path: Path, tls: Tls, logs: Path) -> None:
    """A broker that requires a client certificate: --cert/--key get in, without them not."""
    broker = Mosquitto(tmp_path / "mq-mtls", tls=tls, require_client_cert=True).start()
    try:
        dev_id = "vd-mtls"
        args = (
            "--cafile",
            str(tls.ca),
            "--cert",
            str(tls.client_cert),
            "--key",
            str(tls.client_key),
        )
        with running(VirtualDevice(broker, "lamp", dev_id, logs, args=args)) as dev:
            dev.wait_ready()
            rec = Recorder(broker, client_cert=True)
            rec.subscribe(t(dev_id, "status"))
            assert rec.wait(t(dev_id, "status")).text == "online"
            rec.close()
            assert dev.terminate() == 0
        mark = len(broker.log())
        no_cert = VirtualDevice(broker, "lamp", "vd-nocert", logs, args=("--cafile", str(tls.ca)))
        with running(no_cert) as dev:
            wait_for(
                lambda: (
                    "New connection from" in broker.log()[mark:]
                    and ("error" in broker.log()[mark:].lower() or "closed" in broker.log()[mark:])
                ),
                10,
                "the broker to refuse a client without certificate",
            )
            assert dev.ready_ids() == set()
            assert dev.terminate() == 0
    finally:
        broker.stop()


def test_password_on_command_line_is_hidden(secure_broker: Mosquitto, tls: Tls, logs: Path) -> None:
    dev_id = "vd-argv"
    args = ("--cafile", str(tls.ca), "--username", "device", "--password", "s3cret-pw!")
    with running(VirtualDevice(secure_broker, "lamp", dev_id, logs, args=args)) as dev:
        dev.wait_ready()
        cmdline = Path(f"/proc/{dev.proc.pid}/cmdline").read_bytes()
        assert b"s3cret-pw!" not in cmdline
        assert b"--password" in cmdline
        assert dev.terminate() == 0


def test_wrong_password_is_refused(tmp_path: Path, tls: Tls, logs: Path) -> None:
    broker = Mosquitto(tmp_path / "mq", users={"device": "right"}).start()
    try:
        dev_id = "vd-badpw"
        env = {"MQTT_PASSWORD": "Wr0ng-pass#1"}
        args = ("--username", "device")
        with running(VirtualDevice(broker, "lamp", dev_id, logs, args=args, env=env)) as dev:
            wait_for(lambda: "not authorised" in broker.log(), 10, "the broker to refuse")
            assert dev.ready_ids() == set()
            rec = Recorder(broker, username="device", password="right")
            rec.subscribe(t(dev_id, "status"), t(dev_id, "capabilities"))
            rec.sync()
            assert rec.on(t(dev_id, "status")) == []
            assert rec.on(t(dev_id, "capabilities")) == []
            rec.close()
            assert dev.terminate() == 0
            assert dev.ready_ids() == set()
            assert "Wr0ng-pass#1" not in dev.log()
    finally:
        broker.stop()


def test_tls_with_unknown_ca_never_connects(
    secure_broker: Mosquitto, tmp_path: Path, logs: Path
) -> None:
    other = make_ca(tmp_path / "other-ca")
    args = ("--cafile", str(other.ca), "--username", "device")
    env = {"MQTT_PASSWORD": "s3cret-pw!"}
    dev_id = "vd-badca"
    mark = len(secure_broker.log())
    with running(VirtualDevice(secure_broker, "lamp", dev_id, logs, args=args, env=env)) as dev:
        wait_for(
            lambda: (
                "OpenSSL Error" in secure_broker.log()[mark:]
                or "protocol error" in secure_broker.log()[mark:]
                or "closed its connection" in secure_broker.log()[mark:]
            ),
            10,
            "the TLS handshake to fail",
        )
        assert dev.ready_ids() == set()
        assert dev.terminate() == 0


# ------------------------------------------------------------------ bad input


def test_bad_arguments_and_profiles_are_clear_errors(tmp_path: Path) -> None:
    lamp = str(PROFILES / "lamp.json")
    res = run_cli(["--profile", lamp])
    assert res.returncode == 2
    assert "--broker is required" in res.stderr

    res = run_cli(["--broker", "http://127.0.0.1:1", "--profile", lamp])
    assert res.returncode == 2
    assert "mqtt://" in res.stderr

    res = run_cli(["--broker", "mqtt://127.0.0.1:1", "--profile", lamp, "--device-id", "Bad/Id"])
    assert res.returncode == 2
    assert "--device-id" in res.stderr

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sensors": [{"id": "t", "signal": {"kind": "sine", "periode": 1}}]}))
    res = run_cli(["--broker", "mqtt://127.0.0.1:1", "--profile", str(bad)])
    assert res.returncode == 2
    assert 'unknown key "periode"' in res.stderr

    bad.write_text("{not json")
    res = run_cli(["--broker", "mqtt://127.0.0.1:1", "--profile", str(bad)])
    assert res.returncode == 2
    assert "invalid JSON" in res.stderr

    bad.write_text(json.dumps({"actuators": [{"id": "Bad-Id", "value_type": "boolean"}]}))
    res = run_cli(["--broker", "mqtt://127.0.0.1:1", "--profile", str(bad), "--device-id", "x1"])
    assert res.returncode == 2
    assert "Bad-Id" in res.stderr

    res = run_cli(
        ["--broker", "mqtt://127.0.0.1:1", "--profile", lamp, "--discovery-mode", "bridge"]
    )
    assert res.returncode == 2
    assert "--discovery-mode must be mqtt or integration" in res.stderr

    res = run_cli(
        ["--broker", "mqtt://127.0.0.1:1", "--profile", lamp, "--discovery-holdoff-ms", "-1"]
    )
    assert res.returncode == 2
    assert "--discovery-holdoff-ms" in res.stderr

    res = run_cli(["--help"])
    assert res.returncode == 0
    assert "--interval-scale" in res.stdout
    assert "--discovery-mode" in res.stdout
