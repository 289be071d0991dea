"""Figure 4: many devices with five sensors each on one Home Assistant; where does it bend?

Devices are added in steps (cumulative counts ``BENCH_SCALE_STEPS``, default
``100,300,600,1000``; at most ``BENCH_SCALE_PER_PROCESS`` devices (default 250) per
virtual device process, ``BENCH_SCALE_PER_ENTRY`` (default 500) per base topic and
config entry: HA 2026.x caps an entry at 10,000 enabled entities) to one ``hass``. At
each step:

* time until every sensor entity of every device shows a number (from the start
  of the step's device process; the first step includes setting the integration up);
* ``hass`` resident memory per device: (RSS now - RSS before any device) / devices;
* ``list_devices`` (first page, the default limit) and ``query_devices``
  (``sensor_type=temperature``, first page) through the MCP server over HTTP:
  latency (median of ``BENCH_SCALE_REPS`` calls, default 5) and response size.

The project's devices are new devices joining entries that exist: each holds its
discovery back (protocol §13.4) and is adopted without HA's MQTT entities in between.

Baseline, measured in the same run on a second fresh system: the same devices
in discovery mode ``mqtt`` (stored, so they announce at once) with HA's own MQTT
entities (time until available, RSS per device), and what a client reads from HA
without this project to list devices and their sensors: ``GET /api/states``
(latency and size).

Until the integration's takeover waited with keyed trackers, a 1,000-device step did not
finish on the 2-core reference machine (one registry-event listener per adopting device
made adoption quadratic); RESULTS.md has both runs.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass, field
import os
from pathlib import Path
import time
from typing import Any

import aiohttp
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from bench import common
from bench.system import (
    FIVE_SENSORS,
    device_binary,
    env_int,
    hass_pid,
    rss_bytes,
    setup_integration,
    state_directory,
    wait_numeric_sensors,
)
from harness import Broker, HarnessError, HomeAssistant, McpServer, VirtualDevices

PREFIX = "scale"
# One virtual device process runs up to 4,000 devices (poll() loops); the bench keeps the
# 250 per process its earlier runs used, so steps stay comparable between runs.
PER_PROCESS = 250
# Since HA 2026.x a config entry holds at most 10,000 enabled entities (the MQTT
# integration is exempt); a device of five sensors has about ten here, so the devices
# are spread over base topics (one entry each) of this many devices, as a user with
# thousands of devices would have to.
PER_ENTRY = 500


def base_topic(index: int) -> str:
    """The base topic of the `index`-th group of PER_ENTRY devices."""
    return "mcp_bridge" if index == 0 else f"mcp_bridge_{index}"


@dataclass
class Step:
    devices: int
    available_s: float
    rss_per_device_kib: float
    states_ms: float
    states_bytes: int
    list_ms: float | None = None
    list_bytes: int | None = None
    query_ms: float | None = None
    query_bytes: int | None = None


@dataclass
class ModeRun:
    steps: list[Step] = field(default_factory=list)


def _device_args(integration: bool) -> tuple[str, ...]:
    if not integration:
        return ("--discovery-mode", "mqtt")
    holdoff = os.environ.get("BENCH_SCALE_HOLDOFF_MS")  # the firmware's default when unset
    return ("--discovery-holdoff-ms", str(int(holdoff))) if holdoff else ()


def _steps() -> list[int]:
    raw = os.environ.get("BENCH_SCALE_STEPS", "100,300,600,1000")
    counts = [int(x) for x in raw.split(",") if x.strip()]
    if counts != sorted(counts) or not counts:
        raise ValueError("BENCH_SCALE_STEPS must be increasing device counts")
    return counts


async def _timed_get(url: str, token: str, reps: int) -> tuple[float, int]:
    times: list[float] = []
    size = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(reps):
            began = time.perf_counter()
            async with http.get(url) as resp:
                body = await resp.read()
            times.append((time.perf_counter() - began) * 1000)
            size = len(body)
    return common.Sample.of(times).median, size


async def _timed_tool(
    url: str, token: str, name: str, args: dict[str, Any], reps: int
) -> tuple[float, int]:
    times: list[float] = []
    size = 0
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for _ in range(reps + 1):
            began = time.perf_counter()
            result = await session.call_tool(name, args)
            times.append((time.perf_counter() - began) * 1000)
            if result.is_error:
                raise HarnessError(f"{name} failed: {result.content}")
            size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    return common.Sample.of(times[1:]).median, size


def _run_mode(integration: bool, counts: list[int], reps: int) -> ModeRun:
    out = ModeRun()
    per_process = env_int("BENCH_SCALE_PER_PROCESS", PER_PROCESS)
    per_entry = env_int("BENCH_SCALE_PER_ENTRY", PER_ENTRY)
    if per_entry % per_process:
        raise ValueError("BENCH_SCALE_PER_ENTRY must be a multiple of BENCH_SCALE_PER_PROCESS")
    entries: set[str] = set()
    name = "integration" if integration else "mqtt"
    platform = "esp_mcp_bridge" if integration else "mqtt"
    with state_directory(f"scale-{name}") as state, ExitStack() as stack:
        broker = stack.enter_context(Broker(state))
        ha = stack.enter_context(
            HomeAssistant(state, with_integration=integration, log_level="warning")
        )
        ha.setup_mqtt(broker)
        assert ha.token is not None
        pid = hass_pid(ha)
        rss0 = rss_bytes(pid)
        mcp: McpServer | None = None
        client_token = ha.create_token("bench scale client")
        running = 0
        for k, total in enumerate(counts):
            began = time.monotonic()
            if integration:
                # New devices join entries that exist, as in a running home: each answers
                # a fresh device's capabilities with set_discovery during its hold-off.
                topics = {base_topic(first // per_entry) for first in range(running, total)}
                for topic in sorted(topics - entries):
                    setup_integration(ha, 300, topic)
                    entries.add(topic)
            groups = []
            for j, first in enumerate(range(running, total, per_process)):
                group = VirtualDevices(
                    broker,
                    FIVE_SENSORS,
                    f"{PREFIX}{k}x{j}",
                    Path(state),
                    count=min(per_process, total - first),
                    base_topic=base_topic(first // per_entry),
                    binary=device_binary(),
                    log_level="error",
                    # The baseline's devices are plain MQTT devices: they announce at once.
                    # The project's are new devices, holding their discovery back (§13.4).
                    extra_args=_device_args(integration),
                )
                group.start(wait=False)
                stack.callback(group.terminate)
                groups.append(group)
            for group in groups:
                group.wait_ready(600)
            running = total
            wait_numeric_sensors(ha, platform, PREFIX, total * 5, 1800)
            available = time.monotonic() - began
            rss = rss_bytes(pid)
            states_ms, states_bytes = asyncio.run(
                _timed_get(f"{ha.url}/api/states", ha.token, reps)
            )
            step = Step(
                devices=total,
                available_s=round(available, 1),
                rss_per_device_kib=round((rss - rss0) / total / 1024, 1),
                states_ms=round(states_ms, 1),
                states_bytes=states_bytes,
            )
            if integration:
                if mcp is None:
                    mcp = stack.enter_context(
                        McpServer(state, ha_url=ha.url, ha_token=ha.token, broker=broker)
                    )
                step.list_ms, step.list_bytes = asyncio.run(
                    _timed_tool(mcp.url, client_token, "list_devices", {}, reps)
                )
                step.query_ms, step.query_bytes = asyncio.run(
                    _timed_tool(
                        mcp.url, client_token, "query_devices", {"sensor_type": "temperature"}, reps
                    )
                )
            print(f"   {name}: {step}")
            out.steps.append(step)
    return out


def _one(value: float) -> common.Sample:
    return common.Sample.of([value])


def run() -> list[common.Result]:
    counts = _steps()
    reps = env_int("BENCH_SCALE_REPS", 5)
    project = _run_mode(True, counts, reps)
    baseline = _run_mode(False, counts, reps)
    p, b = project.steps[-1], baseline.steps[-1]
    details: dict[str, object] = {
        "steps": counts,
        "project": [s.__dict__ for s in project.steps],
        "baseline": [s.__dict__ for s in baseline.steps],
    }
    n = p.devices
    assert p.list_ms is not None
    assert p.list_bytes is not None
    assert p.query_ms is not None
    assert p.query_bytes is not None
    # (figure, unit, project, baseline, the largest ratio the goal allows or None: reported)
    figures: list[tuple[str, str, float, float, float | None]] = [
        ("time until every entity available", "s", p.available_s, b.available_s, 1.0),
        ("hass RSS per device", "KiB", p.rss_per_device_kib, b.rss_per_device_kib, 1.2),
        ("list_devices latency (vs GET /api/states)", "ms", p.list_ms, p.states_ms, None),
        ("list_devices size (vs GET /api/states)", "B", p.list_bytes, p.states_bytes, None),
        ("query_devices latency (vs GET /api/states)", "ms", p.query_ms, p.states_ms, None),
        ("query_devices size (vs GET /api/states)", "B", p.query_bytes, p.states_bytes, None),
    ]
    return [
        common.Result(
            figure=f"scale {n} devices: {figure}",
            unit=unit,
            project=_one(project_value),
            baseline=_one(baseline_value),
            target="reported" if goal is None else f"<= {goal}x",
            met=goal is None or project_value <= goal * baseline_value,
            details=details,
        )
        for figure, unit, project_value, baseline_value, goal in figures
    ]
