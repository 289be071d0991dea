"""Figure 2: command round trip, MCP ``control_actuator`` against a bare MQTT request/response.

One virtual lamp on a real Mosquitto (``set_tcp_nodelay``), a real Home Assistant
with this integration, and the MCP server over streamable HTTP. The project figure
is the wall time of one ``control_actuator`` call (write ``led``) made with the real
MCP client SDK, from the call until the acknowledged result arrives: it includes the
HTTP hop, the server's device lookup in Home Assistant, the MQTT command and the
device's response (the logbook entry is written after the answer, so the next calls share
the machine with it). The baseline is the bare protocol on the
same broker and device: a paho client publishes ``actuators/led/set`` with an ``id``
(QoS 1, like the server) and waits for the ``response`` with that id.

The server also runs a no-op tool (``noop``, listed only with ``NOOP_TOOL``) that takes
``control_actuator``'s arguments and answers the same result without sending anything:
the same HTTP hop, auth, session, argument validation and result serialisation. Figure
2b is ``control_actuator`` minus ``noop`` (the difference of their medians per round)
against the bare round trip: what the server adds to the MQTT command itself (device
lookup, checks, the paho client, queueing the logbook entry), goal within 1 ms of it.

Calls alternate between the three in rounds, so all see the same machine load.
p50 is the median of all calls; p99 is reported per round (median and spread of the
rounds' p99). Parameters: ``BENCH_CMD_ROUNDS`` (default 5), ``BENCH_CMD_CALLS``
calls per round and side (default 100).
"""

from __future__ import annotations

import asyncio
import json
import os
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


SERVER_MQTT_MS: list[float] = []
"""The MQTT wait as the server measured it (rtt_ms of each control_actuator result)."""


async def _mcp_call(session: McpSession, value: bool, tool: str = "control_actuator") -> float:
    began = time.perf_counter()
    result = await session.call(
        tool, device_id=DEVICE, actuator_id=ACTUATOR, action="write", value=value
    )
    elapsed = time.perf_counter() - began
    rtt = result.data.get("rtt_ms")
    if tool == "control_actuator" and isinstance(rtt, int | float):
        SERVER_MQTT_MS.append(float(rtt))
    if result.is_error or result.data.get("status") != "done" or result.data.get("value") != value:
        raise HarnessError(f"{tool} did not acknowledge {value}: {result.text}")
    return elapsed * 1000


async def _measure(system: System, token: str, rounds: int, calls: int) -> dict[str, list[float]]:
    assert system.mcp is not None
    bare = BareRequester(system.broker, DEVICE)
    out: dict[str, list[float]] = {
        "mcp": [],
        "noop": [],
        "bare": [],
        "mcp_p99": [],
        "bare_p99": [],
        "overhead": [],
    }
    try:
        async with mcp_session(system.mcp.url, token) as session:
            for i in range(10):  # warm-up: connections, caches, JIT-free but lazy imports
                await _mcp_call(session, i % 2 == 0)
                await _mcp_call(session, i % 2 == 0, "noop")
                bare.round_trip(i % 2 == 0)
            for _ in range(rounds):
                mcp_round = [await _mcp_call(session, i % 2 == 0) for i in range(calls)]
                noop_round = [await _mcp_call(session, i % 2 == 0, "noop") for i in range(calls)]
                bare_round = [bare.round_trip(i % 2 == 0) for i in range(calls)]
                out["mcp"] += mcp_round
                out["noop"] += noop_round
                out["bare"] += bare_round
                out["mcp_p99"].append(common.percentile(sorted(mcp_round), 99))
                out["bare_p99"].append(common.percentile(sorted(bare_round), 99))
                out["overhead"].append(
                    common.Sample.of(mcp_round).median - common.Sample.of(noop_round).median
                )
    finally:
        bare.close()
    return out


def run() -> list[common.Result]:
    rounds = env_int("BENCH_CMD_ROUNDS", 5)
    calls = env_int("BENCH_CMD_CALLS", 100)
    before = os.environ.get("NOOP_TOOL")
    os.environ["NOOP_TOOL"] = "true"  # the MCP server process inherits it
    try:
        with (
            state_directory("command") as state,
            running_system(
                state, "lamp", 1, integration=True, mcp=True, device_prefix=DEVICE
            ) as sys_,
        ):
            token = sys_.hass.create_token("bench MCP client")
            data = asyncio.run(_measure(sys_, token, rounds, calls))
    finally:
        if before is None:
            os.environ.pop("NOOP_TOOL", None)
        else:
            os.environ["NOOP_TOOL"] = before
    mcp_p50 = common.Sample.of(data["mcp"])
    noop_p50 = common.Sample.of(data["noop"])
    bare_p50 = common.Sample.of(data["bare"])
    overhead = common.Sample.of(data["overhead"])
    ratio = mcp_p50.median / bare_p50.median
    details: dict[str, object] = {
        "rounds": rounds,
        "calls_per_round": calls,
        "noop_p50_ms": noop_p50.median,
        "noop_p10_ms": noop_p50.p10,
        "noop_p90_ms": noop_p50.p90,
        "server_mqtt_p50_ms": common.Sample.of(SERVER_MQTT_MS).median,
    }
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
            figure="command cost in the server p50 (control_actuator - no-op vs bare MQTT)",
            unit="ms",
            project=overhead,
            baseline=bare_p50,
            target="within 1 ms of bare",
            met=overhead.median - bare_p50.median <= 1.0,
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
