"""Commands to devices over MQTT: publish with an `id`, wait for the matching `response`.

paho runs its network loop on its own thread and reconnects by itself; replies are handed to
the asyncio loop with `call_soon_threadsafe` and resolve futures keyed by the request id.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass
import json
import logging
import secrets
import socket
import ssl
import statistics
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .config import Settings

_LOGGER = logging.getLogger(__name__)
CONNECT_GRACE_S = 2.0


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Send small commands at once: Nagle + delayed ACKs add ~40 ms per round trip."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BrokerUnavailable(Exception):
    """The MQTT broker is not connected."""


class DeviceTimeout(Exception):
    """The device did not answer within the timeout."""


@dataclass(frozen=True)
class Reply:
    """A device `response` and the measured round trip."""

    ok: bool
    result: Any
    error_code: str | None
    error_message: str | None
    rtt_ms: float


class LatencyStats:
    """Rolling figures of this server's own device commands."""

    def __init__(self, window: int = 200) -> None:
        self.sent = 0
        self.ok = 0
        self.failed = 0
        self.timeouts = 0
        self._rtts: deque[float] = deque(maxlen=window)

    def record(self, outcome: str, rtt_ms: float | None = None) -> None:
        self.sent += 1
        if outcome == "ok":
            self.ok += 1
        elif outcome == "timeout":
            self.timeouts += 1
        else:
            self.failed += 1
        if rtt_ms is not None:
            self._rtts.append(rtt_ms)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "timeouts": self.timeouts,
        }
        if self._rtts:
            ordered = sorted(self._rtts)
            out["rtt_ms"] = {
                "p50": round(statistics.median(ordered), 1),
                "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
                "max": round(ordered[-1], 1),
            }
        return out


class MqttCommander:
    """One paho client for the server's lifetime."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.base = settings.base_topic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], str]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._connected_async: asyncio.Event | None = None
        self.latency = LatencyStats()
        client_id = f"esp-mcp-server-{secrets.token_hex(4)}"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if settings.mqtt_username:
            self._client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        if settings.mqtt_tls:
            self._client.tls_set(
                ca_certs=settings.mqtt_cafile,
                cert_reqs=ssl.CERT_NONE if settings.mqtt_tls_insecure else ssl.CERT_REQUIRED,
            )
            if settings.mqtt_tls_insecure:
                self._client.tls_insecure_set(True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_socket_open = _no_delay

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connected_async = asyncio.Event()
        self._client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.cancel()

    # paho thread ---------------------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            _LOGGER.warning("MQTT broker refused the connection: %s", reason)
            return
        # paho would now send again every QoS 1 command it kept from before the drop, whose
        # callers were already told it failed: a command must never act after that.
        dropped = client.drop_out_messages()
        if dropped:
            _LOGGER.warning("dropped %d command(s) from before the reconnect", len(dropped))
        client.subscribe(f"{self.base}/+/response", qos=1)
        self._connected.set()
        self._signal(True)
        _LOGGER.info("connected to the MQTT broker")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._signal(False)
        client.drop_out_messages()
        with self._lock:
            pending, self._pending = self._pending, {}
        loop = self._loop
        if pending and loop is not None and not loop.is_closed():
            err = BrokerUnavailable(
                "the connection to the MQTT broker was lost while waiting for the device; it "
                "may or may not have acted, and the command is not sent again"
            )
            for future, _ in pending.values():
                loop.call_soon_threadsafe(_fail, future, err)
        _LOGGER.warning("disconnected from the MQTT broker (%s); reconnecting", reason)

    def _signal(self, up: bool) -> None:
        loop, event = self._loop, self._connected_async
        if loop is None or event is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(event.set if up else event.clear)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if len(message.payload) > 16384:
            return
        try:
            data = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        with self._lock:
            entry = self._pending.get(data["id"])
            if entry is None or message.topic != f"{self.base}/{entry[1]}/response":
                return
            del self._pending[data["id"]]
        future = entry[0]
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, future, data)

    # asyncio side --------------------------------------------------------------------------

    async def wait_connected(self, wait_s: float) -> bool:
        if self._connected.is_set():
            return True
        event = self._connected_async
        if event is None:
            return False
        try:
            await asyncio.wait_for(event.wait(), wait_s)
        except TimeoutError:
            return False
        return self._connected.is_set()

    async def request(
        self, device_id: str, subtopic: str, payload: dict[str, Any], wait_s: float
    ) -> Reply:
        """Publish `payload` (an `id` is added) on B/D/subtopic and wait for the response."""
        if not await self.wait_connected(min(wait_s, CONNECT_GRACE_S)):
            self.latency.record("failed")
            raise BrokerUnavailable(
                f"the MQTT broker at {self._settings.mqtt_host}:{self._settings.mqtt_port} is "
                "not connected; the server keeps retrying"
            )
        request_id = f"m-{secrets.token_hex(6)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._pending[request_id] = (future, device_id)
        # The deadline is when this waiting ends (protocol 8.1): a device that gets the command
        # later does not run it, so it cannot act after the caller was told it timed out.
        deadline = int((time.time() + wait_s) * 1000)
        body = json.dumps(
            {"id": request_id, **payload, "deadline": deadline}, separators=(",", ":")
        )
        started = time.perf_counter()
        info = self._client.publish(f"{self.base}/{device_id}/{subtopic}", body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # paho keeps a QoS 1 message it could not send and sends it after reconnecting;
            # this caller is told it failed, so it must not go out later.
            self._client.drop_out_messages()
            with self._lock:
                self._pending.pop(request_id, None)
            self.latency.record("failed")
            raise BrokerUnavailable(
                f"publishing to the broker failed ({mqtt.error_string(info.rc)})"
            )
        try:
            data = await asyncio.wait_for(future, wait_s)
        except TimeoutError as err:
            with self._lock:
                self._pending.pop(request_id, None)
            self.latency.record("timeout")
            raise DeviceTimeout(f"device {device_id} did not answer within {wait_s:.1f} s") from err
        except BrokerUnavailable:
            self.latency.record("failed")
            raise
        rtt_ms = (time.perf_counter() - started) * 1000.0
        ok = bool(data.get("ok"))
        raw_error = data.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        self.latency.record("ok" if ok else "failed", rtt_ms)
        return Reply(
            ok=ok,
            result=data.get("result"),
            error_code=None if ok else str(error.get("code", "error")),
            error_message=None if ok else str(error.get("message", "")),
            rtt_ms=rtt_ms,
        )


def _resolve(future: asyncio.Future[dict[str, Any]], data: dict[str, Any]) -> None:
    if not future.done():
        future.set_result(data)


def _fail(future: asyncio.Future[dict[str, Any]], err: Exception) -> None:
    if not future.done():
        future.set_exception(err)


def command_timeout(response_time_ms: Any, settings: Settings) -> float:
    """Device response time plus margin, bounded to [min, max] seconds."""
    base = (
        float(response_time_ms) / 1000.0 * 3 + 0.5
        if isinstance(response_time_ms, int | float) and response_time_ms > 0
        else settings.min_command_timeout_s
    )
    return max(settings.min_command_timeout_s, min(settings.max_command_timeout_s, base))
