"""Building blocks of the real-broker tests of the virtual device.

A Mosquitto on a free loopback port (optional TLS with a CA generated here,
optional password file), a recording MQTT subscriber, and the virtual device
process. Every wait polls a condition with a timeout; nothing sleeps to
synchronise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[4]
BINARY = Path(
    os.environ.get("MCP_VIRTUAL_DEVICE", REPO_ROOT / "build" / "host" / "esp_mcp_virtual_device")
)
PROFILES = Path(
    os.environ.get(
        "MCP_PROFILE_DIR", REPO_ROOT / "firmware" / "host" / "virtual_device" / "profiles"
    )
)


class WaitTimeout(AssertionError):
    """A condition did not become true in time."""


def wait_for[T](probe: Callable[[], T | None], timeout: float, what: str, step: float = 0.02) -> T:
    """Poll ``probe`` until it returns something other than None/False; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Tls:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_ca(directory: Path) -> Tls:
    """A private CA, a server certificate for 127.0.0.1 / localhost and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", *ec, "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext",
            "-out", "server.crt")  # fmt: skip
    openssl("req", *ec, "-subj", "/CN=device", "-keyout", "client.key", "-out", "client.csr")
    (directory / "client.ext").write_text(
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    )
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "client.ext",
            "-out", "client.crt")  # fmt: skip
    for key in ("ca.key", "server.key", "client.key"):
        (directory / key).chmod(0o600)
    return Tls(
        directory / "ca.crt",
        directory / "server.crt",
        directory / "server.key",
        directory / "client.crt",
        directory / "client.key",
    )


# ------------------------------------------------------------------ broker


class Mosquitto:
    """A real Mosquitto bound to 127.0.0.1 on a free port."""

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        tls: Tls | None = None,
        require_client_cert: bool = False,
    ) -> None:
        self.dir = directory
        self.users = users
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.port = free_port()
        self.log_path = directory / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{HOST}:{self.port}"

    def _config(self) -> str:
        lines = []
        if os.geteuid() == 0:
            # as root Mosquitto drops to `mosquitto`, which cannot read files here
            lines.append("user root")
        lines += [
            f"listener {self.port} {HOST}",
            "persistence false",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type all",
            "connection_messages true",
        ]
        if self.users:
            pwfile = self.dir / "passwd"
            pwfile.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(pwfile), user, password],
                    check=True,
                    capture_output=True,
                )
            pwfile.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
            if self.require_client_cert:
                lines.append("require_certificate true")
        return "\n".join(lines) + "\n"

    def start(self) -> Mosquitto:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self._config())
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        proc = self._proc

        def up() -> bool:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"mosquitto exited: {err}\n{self.log()}")
            return port_open(self.port)

        wait_for(up, 10, f"mosquitto on port {self.port}")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# -------------------------------------------------------------- subscriber


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        return self.payload.decode()


class Recorder:
    """An MQTT client that records every message it receives."""

    def __init__(
        self,
        broker: Mosquitto,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "",
        client_cert: bool = False,
    ) -> None:
        self.messages: list[Msg] = []
        self._lock = threading.Lock()
        self._subacks: set[int] = set()
        self._connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if broker.tls is not None:
            cert = str(broker.tls.client_cert) if client_cert else None
            key = str(broker.tls.client_key) if client_cert else None
            self.client.tls_set(ca_certs=str(broker.tls.ca), certfile=cert, keyfile=key)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(HOST, broker.port, keepalive=30)
        self.client.loop_start()
        wait_for(self._connected.is_set, 10, "the test client to connect")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        with self._lock:
            self._subacks.add(mid)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Msg(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))

    def subscribe(self, *filters: str, qos: int = 1) -> None:
        """Subscribe and wait for the SUBACK (retained messages arrive right after)."""
        for topic_filter in filters:
            _, mid = self.client.subscribe(topic_filter, qos)

            def acknowledged(mid: int | None = mid) -> bool:
                return mid in self._subacks

            wait_for(acknowledged, 10, f"SUBACK for {topic_filter}")

    def sync(self, timeout: float = 10) -> None:
        """Return once every message the broker queued for us before this call has arrived.

        Publishes a unique marker to ourselves: the broker keeps the order per
        client, so the marker comes after anything already on the way.
        """
        marker = f"test/sync/{id(self)}/{time.monotonic_ns()}"
        self.subscribe(marker)
        self.publish(marker, b"x", qos=1)
        wait_for(lambda: any(m.topic == marker for m in self.snapshot()), timeout, "sync marker")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def snapshot(self) -> list[Msg]:
        with self._lock:
            return list(self.messages)

    def on(self, topic: str) -> list[Msg]:
        return [m for m in self.snapshot() if m.topic == topic]

    def wait(
        self, topic: str, pred: Callable[[Msg], bool] = lambda m: True, timeout: float = 10
    ) -> Msg:
        def probe() -> Msg | None:
            return next((m for m in self.on(topic) if pred(m)), None)

        return wait_for(probe, timeout, f"a message on {topic}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ------------------------------------------------------------------ device


class VirtualDevice:
    """The virtual device program; stdout READY lines are collected by a thread."""

    def __init__(
        self,
        broker: Mosquitto,
        profile: str | Path,
        device_id: str,
        log_dir: Path,
        *,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.device_id = device_id
        profile_path = profile if isinstance(profile, Path) else PROFILES / f"{profile}.json"
        cmd = [
            str(BINARY),
            "--broker", broker.url,
            "--profile", str(profile_path),
            "--device-id", device_id,
            *args,
        ]  # fmt: skip
        self.log_path = log_dir / f"device-{device_id}.log"
        self._log = self.log_path.open("ab")
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def ready_ids(self) -> set[str]:
        with self._lock:
            return {ln.split()[1] for ln in self.lines if ln.startswith("READY ")}

    def wait_ready(self, ids: Sequence[str] | None = None, timeout: float = 20) -> None:
        wanted = set(ids or [self.device_id])

        def probe() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"device exited with {self.proc.returncode}:\n{self.log()}")
            return wanted <= self.ready_ids()

        wait_for(probe, timeout, f"READY {sorted(wanted)}")

    def terminate(self, timeout: float = 15, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kill()
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running(device: VirtualDevice) -> Iterator[VirtualDevice]:
    try:
        yield device
    finally:
        device.close()


def run_cli(args: Sequence[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run the program to completion (argument and profile errors)."""
    return subprocess.run(
        [str(BINARY), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
