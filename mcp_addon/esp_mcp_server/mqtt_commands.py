"""Commands to devices over MQTT: publish with an `id`, wait for the matching `response`.

paho runs on the asyncio loop (as Home Assistant's MQTT client does): the loop watches its
socket and calls `loop_read`/`loop_write`, `loop_misc` once a second; only connecting runs in a
worker thread. A reply resolves the future keyed by its request id where it is read, with no
hand-over between threads.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
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
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 10.0


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
    """One paho client for the server's lifetime, driven by the asyncio loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.base = settings.base_topic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], str]] = {}
        self._connected = False
        self._connected_async: asyncio.Event | None = None
        self._stopping = False
        self._fd: int | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._connector: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        """Set when a connection is wanted: at start, after a drop, after a failed attempt."""
        self._retry_s = RECONNECT_MIN_S
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
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_socket_open = self._on_socket_open
        self._client.on_socket_close = self._on_socket_close
        self._client.on_socket_register_write = self._on_socket_register_write
        self._client.on_socket_unregister_write = self._on_socket_unregister_write

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._connected_async = asyncio.Event()
        # Only records where to connect; _keep_connected connects.
        self._client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, keepalive=30)
        self._wanted.set()
        self._connector = self._loop.create_task(self._keep_connected())

    def stop(self) -> None:
        self._stopping = True
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        if self._client.disconnect() == mqtt.MQTT_ERR_SUCCESS:
            self._client.loop_write()  # sends DISCONNECT and closes the socket
        self._unwatch()
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.cancel()

    # connection ----------------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        """Connect whenever a connection is wanted, in a worker thread (name lookup, TCP and
        TLS handshakes block): the first time at once, then after a pause of RECONNECT_MIN_S
        that doubles up to RECONNECT_MAX_S until the broker accepts us again (paho's own
        loop waits the same way)."""
        loop = asyncio.get_running_loop()
        first = True
        while True:
            await self._wanted.wait()
            if not first:
                wait_s, self._retry_s = self._retry_s, min(self._retry_s * 2, RECONNECT_MAX_S)
                await asyncio.sleep(wait_s)
            first = False
            # Cleared before the attempt: a drop while it is under way asks again.
            self._wanted.clear()
            try:
                await loop.run_in_executor(None, self._client.reconnect)
            except (OSError, ValueError, mqtt.WebsocketConnectionError) as err:
                _LOGGER.info("cannot connect to the MQTT broker (%s); retrying", err)
                self._wanted.set()

    def _call_in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn` on the loop: at once from its own thread, else handed over (paho calls
        the socket callbacks from the worker thread that connects)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        _no_delay(client, userdata, sock)
        self._call_in_loop(self._watch, sock)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._unwatch)

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._want_write, sock)

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._written, sock)

    def _watch(self, sock: Any) -> None:
        loop = self._loop
        fd = sock.fileno()
        if loop is None or fd < 0 or sock is not self._client.socket():
            return  # closed again before the loop got to it
        self._unwatch()
        self._fd = fd
        loop.add_reader(fd, self._read)
        if self._client.want_write():
            loop.add_writer(fd, self._write)
        self._misc = loop.call_later(1.0, self._tick)
        self._read()

    def _unwatch(self) -> None:
        loop, fd = self._loop, self._fd
        self._fd = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if loop is None or fd is None or loop.is_closed():
            return
        with contextlib.suppress(OSError, ValueError):
            loop.remove_writer(fd)
        with contextlib.suppress(OSError, ValueError):
            loop.remove_reader(fd)

    def _want_write(self, sock: Any) -> None:
        if self._loop is not None and self._fd is not None and sock.fileno() == self._fd:
            self._loop.add_writer(self._fd, self._write)

    def _written(self, sock: Any) -> None:
        if self._loop is not None and self._fd is not None and sock.fileno() == self._fd:
            self._loop.remove_writer(self._fd)

    def _read(self) -> None:
        client = self._client
        client.loop_read()
        sock = client.socket()
        # TLS may hold decrypted bytes the selector cannot see: read them now.
        while isinstance(sock, ssl.SSLSocket) and sock.pending() and client.socket() is sock:
            client.loop_read()

    def _write(self) -> None:
        self._client.loop_write()

    def _tick(self) -> None:
        """Keepalive (PINGREQ) and its timeout, once a second."""
        self._misc = None
        if self._client.loop_misc() == mqtt.MQTT_ERR_SUCCESS and self._loop is not None:
            self._misc = self._loop.call_later(1.0, self._tick)

    # paho callbacks (on the loop) ----------------------------------------------------------

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
        self._retry_s = RECONNECT_MIN_S
        self._connected = True
        if self._connected_async is not None:
            self._connected_async.set()
        _LOGGER.info("connected to the MQTT broker")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected = False
        if self._connected_async is not None:
            self._connected_async.clear()
        client.drop_out_messages()
        pending, self._pending = self._pending, {}
        if pending:
            err = BrokerUnavailable(
                "the connection to the MQTT broker was lost while waiting for the device; it "
                "may or may not have acted, and the command is not sent again"
            )
            for future, _ in pending.values():
                _fail(future, err)
        if self._stopping:
            return
        _LOGGER.warning("disconnected from the MQTT broker (%s); reconnecting", reason)
        self._wanted.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if len(message.payload) > 16384:
            return
        try:
            data = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        entry = self._pending.get(data["id"])
        if entry is None or message.topic != f"{self.base}/{entry[1]}/response":
            return
        del self._pending[data["id"]]
        _resolve(entry[0], data)

    # requests ------------------------------------------------------------------------------

    async def wait_connected(self, wait_s: float) -> bool:
        if self._connected:
            return True
        event = self._connected_async
        if event is None:
            return False
        try:
            await asyncio.wait_for(event.wait(), wait_s)
        except TimeoutError:
            return False
        return self._connected

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
        self._pending[request_id] = (future, device_id)
        # The deadline is when this waiting ends (protocol 8.1): a device that gets the command
        # later does not run it, so it cannot act after the caller was told it timed out.
        deadline = int((time.time() + wait_s) * 1000)
        body = json.dumps(
            {"id": request_id, **payload, "deadline": deadline}, separators=(",", ":")
        )
        started = time.perf_counter()
        info = self._client.publish(f"{self.base}/{device_id}/{subtopic}", body, qos=1)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self._client.loop_write()  # now, not on the loop's next turn
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # paho keeps a QoS 1 message it could not send and sends it after reconnecting;
            # this caller is told it failed, so it must not go out later.
            self._client.drop_out_messages()
            self._pending.pop(request_id, None)
            self.latency.record("failed")
            raise BrokerUnavailable(
                f"publishing to the broker failed ({mqtt.error_string(info.rc)})"
            )
        try:
            data = await asyncio.wait_for(future, wait_s)
        except TimeoutError as err:
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
