"""Starting the real system for a benchmark (through harness/) and reading process figures.

Benchmarks run the virtual devices from an optimised build without sanitizers
(``build/bench/esp_mcp_virtual_device``, compiled here with ``gcc -O2`` from the
same sources as the host build), so that the load generator takes as little of
the shared CPU as possible. ``BENCH_VD_BINARY`` overrides the binary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
import os
from pathlib import Path
import re
import shutil
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness import (
    Broker,
    HaApiError,
    HarnessError,
    HomeAssistant,
    McpServer,
    VirtualDevices,
    wait_until,
)
from harness._process import async_wait_until, run_sync
from harness.ha_client import HaClient

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
COMPONENT = ROOT / "firmware" / "components" / "esp_mcp_bridge"
VD_SOURCES = ROOT / "firmware" / "host" / "virtual_device"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def env_int(name: str, default: int) -> int:
    """An integer parameter from the environment (``BENCH_...``)."""
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _pkg_config(*args: str) -> list[str]:
    out = subprocess.run(
        ["pkg-config", *args, "libcjson", "libmosquitto"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def device_binary() -> Path:
    """The optimised virtual device program (built once, rebuilt when a source is newer)."""
    override = os.environ.get("BENCH_VD_BINARY")
    if override:
        return Path(override)
    binary = BUILD / "esp_mcp_virtual_device"
    listed = re.search(
        r"add_executable\(esp_mcp_virtual_device\s+([^)]*)\)",
        (VD_SOURCES / "CMakeLists.txt").read_text(),
    )
    if listed is None:
        raise HarnessError("no esp_mcp_virtual_device target in virtual_device/CMakeLists.txt")
    sources = sorted(
        [
            *(COMPONENT / "core" / "src").glob("*.c"),
            COMPONENT / "port" / "posix" / "mcp_port_posix.c",
            *(VD_SOURCES / name for name in listed.group(1).split()),
        ]
    )
    headers = [*COMPONENT.rglob("*.h"), *VD_SOURCES.glob("*.h")]
    if binary.exists() and all(
        p.stat().st_mtime <= binary.stat().st_mtime for p in [*sources, *headers]
    ):
        return binary
    if shutil.which("gcc") is None:
        raise HarnessError("gcc is needed to build the benchmark's virtual device")
    BUILD.mkdir(parents=True, exist_ok=True)
    includes = [
        f"-I{COMPONENT / 'include'}",
        f"-I{COMPONENT / 'core' / 'include'}",
        f"-I{COMPONENT / 'core' / 'src'}",
        f"-I{COMPONENT / 'port' / 'posix' / 'include'}",
    ]
    cmd = [
        "gcc", "-std=c11", "-O2", "-DNDEBUG", "-D_DEFAULT_SOURCE", "-D_POSIX_C_SOURCE=200809L",
        *includes, *_pkg_config("--cflags"), *map(str, sources), *_pkg_config("--libs"),
        "-lm", "-pthread", "-o", str(binary),
    ]  # fmt: skip
    built = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if built.returncode != 0:
        if binary.exists():
            print(f"   virtual device rebuild failed, using the previous one:\n{built.stderr}")
            return binary
        raise HarnessError(f"building the virtual device failed:\n{built.stderr}")
    return binary


# ----------------------------------------------------------------- process figures
def find_pid(fragment: str) -> int:
    """The pid of the process whose command line contains ``fragment`` (exactly one)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fragment in cmdline:
            found.append(int(entry.name))
    if len(found) != 1:
        raise HarnessError(f"expected one process with {fragment!r}, found {found}")
    return found[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (/proc/<pid>/statm)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def hass_pid(ha: HomeAssistant) -> int:
    return find_pid(f"-c {ha.config_dir} ")


# ------------------------------------------------------------------------ MQTT
class MqttCounter:
    """A subscriber on the broker that counts sensor readings (single and batched)."""

    def __init__(self, broker: Broker, base_topic: str = "mcp_bridge") -> None:
        self.readings = 0
        self.messages = 0
        self._lock = threading.Lock()
        self._base = base_topic
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter")
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"{base_topic}/+/sensors/+", qos=0)
        self.client.subscribe(f"{base_topic}/+/batch", qos=0)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        n = 1
        if msg.topic.endswith("/batch"):
            n = msg.payload.count(b'"id"')
        with self._lock:
            self.readings += n
            self.messages += 1

    def count(self) -> int:
        with self._lock:
            return self.readings

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---------------------------------------------------------------------- system
@dataclass
class System:
    """What a benchmark started; everything is stopped when the ``with`` block ends."""

    state_dir: Path
    broker: Broker
    hass: HomeAssistant
    devices: list[VirtualDevices]
    mcp: McpServer | None
    integration_entry: str | None

    @property
    def hass_pid(self) -> int:
        return hass_pid(self.hass)


@contextmanager
def state_directory(name: str) -> Iterator[Path]:
    """A fresh directory for one run (kept with ``BENCH_KEEP=1`` for the logs)."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)
        else:
            print(f"   state and logs kept in {path}")


@contextmanager
def running_system(
    state_dir: Path,
    profile: str,
    count: int,
    *,
    integration: bool,
    mcp: bool = False,
    interval_scale: float | None = None,
    device_prefix: str = "bench",
    ready_timeout: float = 120.0,
    ha_log_level: str = "warning",
) -> Iterator[System]:
    """Broker, HA with MQTT, ``count`` devices of ``profile``, optionally the integration + MCP."""
    with ExitStack() as stack:
        broker = stack.enter_context(Broker(state_dir))
        ha = HomeAssistant(state_dir, with_integration=integration, log_level=ha_log_level)
        stack.enter_context(ha)
        ha.setup_mqtt(broker)
        devices = VirtualDevices(
            broker,
            profile,
            device_prefix,
            state_dir,
            count=count,
            binary=device_binary(),
            interval_scale=interval_scale,
            log_level="warn",
        )
        stack.enter_context(devices)
        devices.wait_ready(ready_timeout)
        entry: str | None = None
        if integration:
            entry = setup_integration(ha, ready_timeout)
            wait_integration_online(ha, set(devices.ids), ready_timeout)
        server: McpServer | None = None
        if mcp:
            assert ha.token is not None
            server = stack.enter_context(
                McpServer(state_dir, ha_url=ha.url, ha_token=ha.token, broker=broker)
            )
        yield System(state_dir, broker, ha, [devices], server, entry)


def setup_integration(ha: HomeAssistant, within: float, base_topic: str = "mcp_bridge") -> str:
    """The harness's flow set-up, again when a discovery flow appeared meanwhile."""
    for attempt in range(3):
        try:
            return ha.setup_integration(base_topic, timeout=within)
        except HaApiError as err:
            # The device's discovery flow can start between the harness's check for
            # discovered flows and its user flow; the next attempt takes the discovered one.
            if "already_in_progress" not in str(err) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def wait_integration_online(ha: HomeAssistant, ids: set[str], within: float) -> None:
    async def wait() -> None:
        async with ha.client() as client:

            async def all_online() -> bool:
                result = await client.ws("esp_mcp_bridge/devices")
                seen = {d["device_id"] for d in result["devices"] if d["online"]}
                return ids <= seen

            await async_wait_until(all_online, within, f"{len(ids)} devices online")

    run_sync(wait)


def settle(seconds: float) -> None:
    """Let a load run for a measured interval (the quantity measured, not synchronisation)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


__all__ = [
    "MqttCounter",
    "System",
    "cpu_seconds",
    "device_binary",
    "env_float",
    "env_int",
    "find_pid",
    "hass_pid",
    "rss_bytes",
    "running_system",
    "settle",
    "state_directory",
    "wait_until",
]


PROFILES = Path(__file__).resolve().parent / "profiles"
FIVE_SENSORS = str(PROFILES / "five_sensors.json")


async def numeric_sensor_count(ha: HaClient, platform: str, prefix: str) -> int:
    """How many ``sensor`` entities of ``platform`` (for devices ``prefix``*) show a number."""
    registry = await ha.entity_registry()
    wanted = {
        e["entity_id"]
        for e in registry
        if e.get("platform") == platform
        and str(e["entity_id"]).startswith("sensor.")
        # `D_id` (MQTT), `D/id` or `B/D/id` (the integration on another base topic)
        and any(part.startswith(prefix) for part in str(e.get("unique_id", "")).split("/"))
        and e.get("entity_category") is None
    }
    numeric = 0
    for state in await ha.states():
        if state["entity_id"] in wanted:
            try:
                float(state["state"])
            except ValueError:
                continue
            numeric += 1
    return numeric


def wait_numeric_sensors(
    ha: HomeAssistant, platform: str, prefix: str, expected: int, within: float
) -> float:
    """Wait until ``expected`` sensors of ``platform`` show a number; returns the seconds taken.

    Polled every 2 s: each poll reads the whole entity registry and every state, which
    at 1,000 devices is several megabytes and loads the ``hass`` it is measuring.
    """
    began = time.monotonic()

    async def wait() -> None:
        async with ha.client() as client:

            async def enough() -> bool:
                return await numeric_sensor_count(client, platform, prefix) >= expected

            await async_wait_until(
                enough, within, f"{expected} {platform} sensors with a value", interval=2.0
            )

    run_sync(wait)
    return time.monotonic() - began
