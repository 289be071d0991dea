"""1,000 virtual devices in one process against a real Mosquitto.

The POSIX port serves every MQTT client of the process from a few poll() loops;
libmosquitto's own loop uses select(), which stops at file descriptor 1024 (about
330 devices with a socket and libmosquitto's socket pair each). These tests start
1,000 devices of a one-sensor profile in one process and check that all of them
come up, answer commands, go offline cleanly on SIGTERM and get their will on SIGKILL.
"""

from __future__ import annotations

from collections.abc import Iterator
import functools
import json
from pathlib import Path
import re
import resource
import signal

from mqtt_env import Mosquitto, Msg, Recorder, VirtualDevice, running, wait_for
import pytest

B = "mcp_bridge"
COUNT = 1000
ONE_SENSOR = {
    "name": "One sensor",
    "sensors": [
        {
            "id": "temperature",
            "type": "temperature",
            "unit": "°C",
            "interval_ms": 60000,
            "signal": {"kind": "sine", "offset": 21.0, "amplitude": 1.0, "period_s": 600},
        }
    ],
}
STATUS = re.compile(r"^mcp_bridge/([a-z0-9_-]+)/status$")
OWN_OFFLINE = re.compile(
    r"Received PUBLISH from ([a-z0-9_-]+) \([^']*'mcp_bridge/\1/status', \.\.\. \(7 bytes\)\)"
)


@pytest.fixture(scope="module")
def scale_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of its own (1,000 connections, its retained statuses stay out of the others')."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = COUNT * 3 + 256  # the device process; the broker needs one per connection
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by Mosquitto
    try:
        b = Mosquitto(tmp_path_factory.mktemp("mosquitto-scale")).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    yield b
    b.stop()


@pytest.fixture
def one_sensor(tmp_path: Path) -> Path:
    path = tmp_path / "one_sensor.json"
    path.write_text(json.dumps(ONE_SENSOR))
    return path


def answers(msg: Msg, request_id: str) -> bool:
    return bool(json.loads(msg.payload).get("id") == request_id)


def last_status(rec: Recorder) -> dict[str, str]:
    """The newest status text per device id."""
    out: dict[str, str] = {}
    for msg in rec.snapshot():
        match = STATUS.match(msg.topic)
        if match:
            out[match.group(1)] = msg.text
    return out


def retained_online(broker: Mosquitto, ids: set[str]) -> None:
    """A new subscriber gets a retained `online` from every device."""
    late = Recorder(broker)
    try:
        late.subscribe(f"{B}/+/status")

        def all_online() -> bool:
            got = {m.topic for m in late.snapshot() if m.retain and m.text == "online"}
            return {f"{B}/{i}/status" for i in ids} <= got

        wait_for(all_online, 30, f"{len(ids)} retained online statuses")
    finally:
        late.close()


def test_thousand_devices_sigterm_offline(
    scale_broker: Mosquitto, logs: Path, one_sensor: Path
) -> None:
    ids = {f"vd-scale-{i}" for i in range(1, COUNT + 1)}
    rec = Recorder(scale_broker)
    rec.subscribe(f"{B}/+/status", f"{B}/+/response")
    try:
        args = ("--count", str(COUNT))
        dev = VirtualDevice(scale_broker, one_sensor, "vd-scale", logs, args=args)
        with running(dev):
            dev.wait_ready(sorted(ids), timeout=60)
            retained_online(scale_broker, ids)
            # the last devices have descriptors far above 1024: they still answer
            for n in (1, COUNT):
                rec.publish(f"{B}/vd-scale-{n}/cmd", json.dumps({"id": f"p{n}", "cmd": "ping"}))
            for n in (1, COUNT):
                pong = functools.partial(answers, request_id=f"p{n}")
                resp = rec.wait(f"{B}/vd-scale-{n}/response", pong)
                assert json.loads(resp.payload)["ok"] is True
            assert dev.terminate(timeout=60) == 0
        wait_for(
            lambda: {i for i, s in last_status(rec).items() if s == "offline"} >= ids,
            30,
            "offline from every device",
        )

        def own_offline() -> set[str]:
            return set(OWN_OFFLINE.findall(scale_broker.log())) & ids

        # every "offline" was published by the device itself, not the broker's will
        wait_for(lambda: own_offline() == ids, 10, "the devices' own offline in the broker log")
    finally:
        rec.close()


def test_thousand_devices_sigkill_will(
    scale_broker: Mosquitto, logs: Path, one_sensor: Path
) -> None:
    ids = {f"vd-will-{i}" for i in range(1, COUNT + 1)}
    rec = Recorder(scale_broker)
    rec.subscribe(f"{B}/+/status")
    try:
        args = ("--count", str(COUNT))
        dev = VirtualDevice(scale_broker, one_sensor, "vd-will", logs, args=args)
        with running(dev):
            dev.wait_ready(sorted(ids), timeout=60)
            wait_for(
                lambda: {i for i, s in last_status(rec).items() if s == "online"} >= ids,
                30,
                "online from every device",
            )
            dev.terminate(timeout=10, sig=signal.SIGKILL)
        wait_for(
            lambda: {i for i, s in last_status(rec).items() if s == "offline"} >= ids,
            30,
            "the will of every device",
        )
        assert not set(OWN_OFFLINE.findall(scale_broker.log())) & ids  # all were wills
    finally:
        rec.close()


def test_reconnect_with_backoff_after_broker_restart_and_restart_command(
    tmp_path: Path, logs: Path, one_sensor: Path
) -> None:
    """The shared network loops reconnect every client: after the broker went away (failed
    attempts are counted, retries back off) and after a `restart` command."""
    broker = Mosquitto(tmp_path).start()
    ids = {f"vd-back-{i}" for i in (1, 2, 3)}
    try:
        dev = VirtualDevice(broker, one_sensor, "vd-back", logs, args=("--count", "3"))
        with running(dev):
            dev.wait_ready(sorted(ids))
            broker.stop()
            wait_for(lambda: dev.log().count(": disconnected") >= 3, 10, "the devices to notice")
            # a few refused attempts before the broker is back (250 ms, 500 ms, ... apart)
            wait_for(
                lambda: dev.log().count("cannot connect to") >= 6, 10, "failed connection attempts"
            )
            broker.start()  # same port
            rec = Recorder(broker)
            rec.subscribe(f"{B}/+/status", f"{B}/+/response")
            wait_for(
                lambda: {i for i, s in last_status(rec).items() if s == "online"} >= ids,
                15,
                "every device online again",
            )
            rec.publish(f"{B}/vd-back-2/cmd", json.dumps({"id": "m1", "cmd": "get_metrics"}))
            metrics = json.loads(
                rec.wait(f"{B}/vd-back-2/response", lambda m: answers(m, "m1")).payload
            )["result"]
            assert metrics["connection_failures"] >= 2
            assert metrics["mqtt_reconnections"] == 1

            # restart: "offline", then a new connection of the same client
            rec.publish(f"{B}/vd-back-3/cmd", json.dumps({"id": "r1", "cmd": "restart"}))
            rec.wait(f"{B}/vd-back-3/response", lambda m: answers(m, "r1"))

            def texts() -> list[str]:
                return [m.text for m in rec.on(f"{B}/vd-back-3/status")]

            wait_for(lambda: texts()[-2:] == ["offline", "online"], 10, "offline, then online")
            # a round trip after the reconnect: whatever the device sent before is through
            rec.publish(f"{B}/vd-back-3/cmd", json.dumps({"id": "p1", "cmd": "ping"}))
            rec.wait(f"{B}/vd-back-3/response", lambda m: answers(m, "p1"))
            assert texts()[-1] == "online"  # no stale "offline" re-sent after the new "online"
            retained_online(broker, {"vd-back-3"})
            assert dev.terminate() == 0
            rec.close()
    finally:
        broker.stop()
