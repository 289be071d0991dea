"""Virtual devices: the firmware core built for the host, talking to a real broker."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import threading
from typing import Self

from harness._process import (
    HarnessError,
    ManagedProcess,
    spawn,
    tail,
    wait_until,
)
from harness.broker import Broker

REPO_ROOT = Path(__file__).resolve().parent.parent
# MCP_VIRTUAL_DEVICE overrides the binary (e.g. a sanitizer build elsewhere).
DEFAULT_BINARY = Path(
    os.environ.get("MCP_VIRTUAL_DEVICE") or REPO_ROOT / "build" / "host" / "esp_mcp_virtual_device"
)
PROFILE_DIR = REPO_ROOT / "firmware" / "host" / "virtual_device" / "profiles"


def profile_path(name: str) -> Path:
    """Path of a shipped profile (``greenhouse``, ``lamp``, ``sensor_node``) or a given file."""
    candidate = Path(name)
    if candidate.suffix == ".json" and candidate.exists():
        return candidate
    path = PROFILE_DIR / f"{name}.json"
    if not path.exists():
        raise HarnessError(f"no virtual device profile {name!r} in {PROFILE_DIR.name}/")
    return path


class VirtualDevices(ManagedProcess):
    """One virtual device process running ``count`` devices from one profile.

    With ``count`` 1 the device id is ``device_id``; with more, the program
    suffixes ``-1`` .. ``-N``. ``ready_ids`` lists the ids that printed
    ``READY <id>`` since the last start.
    """

    def __init__(
        self,
        broker: Broker,
        profile: str,
        device_id: str,
        state_dir: Path,
        *,
        count: int = 1,
        base_topic: str = "mcp_bridge",
        username: str | None = None,
        password: str | None = None,
        binary: Path | None = None,
        log_level: str = "info",
        interval_scale: float | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.broker = broker
        self.profile = profile_path(profile)
        self.device_id = device_id
        self.count = count
        self.base_topic = base_topic
        self.username = username if username is not None else broker.username
        self.password = password if password is not None else broker.password
        self.binary = binary if binary is not None else DEFAULT_BINARY
        self.log_level = log_level
        self.interval_scale = interval_scale
        self.extra_args = extra_args
        self.state_dir = Path(state_dir) / "devices" / device_id
        super().__init__(Path(state_dir) / "logs" / f"device-{device_id}.log")
        self._reader: threading.Thread | None = None
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    @property
    def ids(self) -> list[str]:
        if self.count == 1:
            return [self.device_id]
        return [f"{self.device_id}-{i}" for i in range(1, self.count + 1)]

    @property
    def ready_ids(self) -> set[str]:
        with self._lock:
            return set(self._ready)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            "--broker", self.broker.url,
            "--device-id", self.device_id,
            "--profile", str(self.profile),
            "--count", str(self.count),
            "--base-topic", self.base_topic,
            "--state-dir", str(self.state_dir),
            "--log-level", self.log_level,
        ]  # fmt: skip
        if self.username is not None:
            # The password goes through the environment (MQTT_PASSWORD), not the command line.
            args += ["--username", self.username]
        if self.broker.ca_file is not None:
            args += ["--cafile", str(self.broker.ca_file)]
        if self.interval_scale is not None:
            args += ["--interval-scale", f"{self.interval_scale:g}"]
        return args + list(self.extra_args)

    def _read_stdout(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").strip()
                if line.startswith("READY "):
                    with self._lock:
                        self._ready.add(line.split(maxsplit=1)[1].strip())

    def start(self, timeout: float = 20.0, wait: bool = True) -> Self:
        if self.running:
            return self
        if not self.binary.exists():
            raise HarnessError(
                f"virtual device binary {self.binary.name} is not built (make bootstrap builds it)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._ready.clear()
        env = {"MQTT_PASSWORD": self.password} if self.password is not None else None
        proc = spawn(self.command(), self.log_path, env=env, stdout_pipe=True)
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_stdout, args=(proc,), name=f"stdout-{self.device_id}", daemon=True
        )
        self._reader.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        proc = self._proc
        if proc is None:
            raise HarnessError("virtual devices not started")
        wanted = set(self.ids)

        def ready() -> bool:
            if wanted <= self.ready_ids:
                return True
            self._check_alive(proc, f"virtual device {self.device_id}")
            return False

        wait_until(
            ready,
            timeout,
            f"READY from {sorted(wanted - self.ready_ids)}",
            diagnostics=lambda: tail(self.log_path),
        )

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None

    def _after_exit(self) -> None:
        self._join_reader()

    def terminate(self) -> int:
        """SIGTERM: clean disconnect, the devices publish ``offline``."""
        return self.stop()

    def kill(self) -> None:
        """SIGKILL: no clean disconnect, the broker publishes the LWT."""
        super().kill()

    def signal(self, signum: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)
