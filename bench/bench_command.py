"""Figure 2: command round trip, MCP ``control_actuator`` against a bare MQTT request/response.

One virtual lamp on a real Mosquitto (``set_tcp_nodelay``), a real Home Assistant
with this integration, and the MCP server over streamable HTTP. The project figure
is the wall time of one ``control_actuator`` call (write ``led``) made with the real
MCP client SDK, from the call until the acknowledged result arrives: it includes the
HTTP hop, the server's device lookup in Home Assistant, the MQTT command and the
device's response, and the logbook entry. The baseline is the bare protocol on the
same broker and device: a paho client publishes ``actuators/led/set`` with an ``id``
(QoS 1, like the server) and waits for the ``response`` with that id.

Calls alternate between the two in rounds, so both see the same machine load.
p50 is the median of all calls; p99 is reported per round (median and spread of the
rounds' p99). Parameters: ``BENCH_CMD_ROUNDS`` (default 5), ``BENCH_CMD_CALLS``
calls per round and side (default 100).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import common
from bench.system import System, env_int, running_system, state_directory
from harness import Broker, HarnessError
from harness.mcp_client import McpSession, mcp_session

DEVICE = "bench-lamp"
ACTUATOR = "led"


def _nodelay(client: mqtt.Client, userdata: object, sock: object) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BareRequester:
    """publish set with an id, wait for the response with that id (paho, its own thread)."""

    def __init__(self, broker: Broker, device_id: str) -> None:
        self._topic = f"mcp_bridge/{device_id}/actuators/{ACTUATOR}/set"
        self._waiting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare")
        self.client.on_message = self._on_message
        # Like the broker (set_tcp_nodelay): no Nagle delay behind the previous PUBACK.
        self.client.on_socket_open = _nodelay
        connected = threading.Event()
        self.client.on_subscribe = lambda *args: connected.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"mcp_bridge/{device_id}/response", qos=1)
        self.client.loop_start()
        if not connected.wait(10):
            raise HarnessError("bare MQTT client did not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            rid = str(json.loads(msg.payload)["id"])
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            event = self._waiting.get(rid)
        if event is not None:
            event.set()

    def round_trip(self, value: bool) -> float:
        rid = f"b-{secrets.token_hex(6)}"
        event = threading.Event()
        with self._lock:
            self._waiting[rid] = event
        body = json.dumps({"id": rid, "action": "write", "value": value}, separators=(",", ":"))
        began = time.perf_counter()
        self.client.publish(self._topic, body, qos=1)
        if not event.wait(5):
            raise HarnessError(f"no response to {rid} within 5 s")
        elapsed = time.perf_counter() - began
        with self._lock:
            self._waiting.pop(rid, None)
        return elapsed * 1000

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _mcp_call(session: McpSession, value: bool) -> float:
    began = time.perf_counter()
    result = await session.call(
        "control_actuator", device_id=DEVICE, actuator_id=ACTUATOR, action="write", value=value
    )
    elapsed = time.perf_counter() - began
    if result.is_error or result.data.get("status") != "done" or result.data.get("value") != value:
        raise HarnessError(f"control_actuator did not acknowledge {value}: {result.text}")
    return elapsed * 1000


async def _measure(system: System, token: str, rounds: int, calls: int) -> dict[str, list[float]]:
    assert system.mcp is not None
    bare = BareRequester(system.broker, DEVICE)
    out: dict[str, list[float]] = {"mcp": [], "bare": [], "mcp_p99": [], "bare_p99": []}
    try:
        async with mcp_session(system.mcp.url, token) as session:
            for i in range(10):  # warm-up: connections, caches, JIT-free but lazy imports
                await _mcp_call(session, i % 2 == 0)
                bare.round_trip(i % 2 == 0)
            for _ in range(rounds):
                mcp_round = [await _mcp_call(session, i % 2 == 0) for i in range(calls)]
                bare_round = [bare.round_trip(i % 2 == 0) for i in range(calls)]
                out["mcp"] += mcp_round
                out["bare"] += bare_round
                out["mcp_p99"].append(common.percentile(sorted(mcp_round), 99))
                out["bare_p99"].append(common.percentile(sorted(bare_round), 99))
    finally:
        bare.close()
    return out


def run() -> list[common.Result]:
    rounds = env_int("BENCH_CMD_ROUNDS", 5)
    calls = env_int("BENCH_CMD_CALLS", 100)
    with (
        state_directory("command") as state,
        running_system(state, "lamp", 1, integration=True, mcp=True, device_prefix=DEVICE) as sys_,
    ):
        token = sys_.hass.create_token("bench MCP client")
        data = asyncio.run(_measure(sys_, token, rounds, calls))
    mcp_p50 = common.Sample.of(data["mcp"])
    bare_p50 = common.Sample.of(data["bare"])
    ratio = mcp_p50.median / bare_p50.median
    details: dict[str, object] = {"rounds": rounds, "calls_per_round": calls}
    return [
        common.Result(
            figure="command round trip p50 (MCP control_actuator vs bare MQTT)",
            unit="ms",
            project=mcp_p50,
            baseline=bare_p50,
            target="<= 2x and < 10 ms",
            met=ratio <= 2 and mcp_p50.median < 10,
            details=details,
        ),
        common.Result(
            figure="command round trip p99 (MCP control_actuator vs bare MQTT)",
            unit="ms",
            project=common.Sample.of(data["mcp_p99"]),
            baseline=common.Sample.of(data["bare_p99"]),
            target="reported",
            met=True,
            details=details,
        ),
    ]
