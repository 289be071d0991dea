"""A command the agent was told failed never reaches the device later: the broker freezes while
the command is in flight (no PUBACK), the call times out, the broker is restarted, and the
server reconnects without sending the old command again (paho would: it keeps unacknowledged
QoS 1 messages and sends them after reconnecting)."""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import threading
import time
from typing import Any

from addon_clients import data, error_text, http_session, server_env, stdio_session
from addon_fakes import (
    BASE,
    DeviceResponder,
    FakeHomeAssistant,
    free_port,
    port_open,
    wait_until,
)
from mcp.client.session import ClientSession
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from harness._process import async_wait_until

RELAY = {"device_id": "mute-1", "actuator_id": "relay"}  # online, never answers


class Broker:
    """A Mosquitto of this test's own, to freeze, kill and start again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: port_open(self.port), what="mosquitto to listen")

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


class Recorder:
    """A device that records the commands it gets (and never answers)."""

    def __init__(self, port: int) -> None:
        self.messages: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{BASE}/+/actuators/+/set", 1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    if b.proc is not None and b.proc.poll() is None:
        b.proc.send_signal(signal.SIGCONT)
        b.kill()


async def broker_connected(session: ClientSession) -> bool:
    metrics = data(await session.call_tool("get_metrics", {}))
    return bool(metrics["server"]["broker_connected"])


async def test_failed_command_is_not_sent_after_reconnect(
    broker: Broker, fake_ha: FakeHomeAssistant
) -> None:
    env = server_env(fake_ha, broker.port)
    first = Recorder(broker.port)
    async with stdio_session(env) as session:
        baseline = await session.call_tool("control_actuator", {**RELAY, "value": True})
        wait_until(lambda: len(first.messages) == 1, what="the first command at the device")
        broker.freeze()
        frozen = await session.call_tool("control_actuator", {**RELAY, "value": False})
        first.stop()
        broker.kill()
        broker.start()
        second = Recorder(broker.port)  # subscribed before the server's first reconnect (1 s)
        assert not await broker_connected(session), "the server reconnected first"
        await async_wait_until(
            lambda: broker_connected(session), 20, "the server to reconnect to the broker"
        )
        after = await session.call_tool("control_actuator", {**RELAY, "value": True})
        wait_until(lambda: len(second.messages) >= 1, what="the new command at the device")
        second.stop()
    assert "did not answer" in error_text(baseline)
    assert "did not answer" in error_text(frozen)
    assert "did not answer" in error_text(after)
    assert [m["value"] for m in second.messages] == [True], second.messages


async def test_commands_carry_their_deadline(http_url: str, responder: DeviceResponder) -> None:
    """Every command says until when it may run (protocol 8.1): the moment the server stops
    waiting for it, so a device that gets it later does not act after a reported timeout."""
    before_ms = time.time() * 1000
    async with http_session(http_url) as session:
        result = await session.call_tool(
            "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
        )
    after_ms = time.time() * 1000
    assert not result.is_error, result.content
    command = [c for c in responder.commands("lamp-1") if c.get("action") == "write"][-1]
    assert next(iter(command)) == "id"
    assert isinstance(command["deadline"], int)
    # min_command_timeout_s .. max_command_timeout_s after the call began (1 s .. 10 s)
    assert before_ms + 1000 <= command["deadline"] <= after_ms + 10_000


async def test_server_connects_to_a_broker_that_starts_after_it(
    tmp_path: Path, fake_ha: FakeHomeAssistant
) -> None:
    """Connection attempts that fail (nothing listens yet) are repeated until one works."""
    broker = Broker(tmp_path)
    async with stdio_session(server_env(fake_ha, broker.port)) as session:
        assert not await broker_connected(session)
        broker.start()
        try:
            await async_wait_until(
                lambda: broker_connected(session), 30, "the server to connect to the broker"
            )
        finally:
            broker.kill()
