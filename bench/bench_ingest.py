"""Figure 1: what one sensor reading costs Home Assistant, integration versus HA's MQTT entities.

The load is one virtual device process running ``BENCH_INGEST_DEVICES`` devices
(default 20) with five numeric sensors each (``bench/profiles/five_sensors.json``),
sped up with ``--interval-scale`` to reach a given rate. Two fresh systems are
measured one after the other, each with its own broker, ``hass`` and state:

* baseline: only HA's MQTT integration; the devices stay in discovery mode ``mqtt``
  and HA's own MQTT sensor entities take the readings;
* project: the same, plus this integration set up through its config flow; it takes
  the devices over (``set_discovery integration``).

Cost: CPU seconds (utime + stime from ``/proc/<pid>/stat``) of the ``hass`` process
per 10,000 readings, while a subscriber on the broker counts the readings the
devices publish (single messages and batch entries), at ``BENCH_INGEST_RATE``
readings/s (default 200) for ``BENCH_INGEST_SECONDS`` (default 10) per repetition,
``BENCH_INGEST_REPS`` repetitions (default 3).

Highest sustained rate: the rate is doubled from ``BENCH_INGEST_START_RATE``
(default 100) for ``BENCH_INGEST_STEPS`` steps (default 6); at each step a probe
times a cheap REST call (``GET /api/``) every 100 ms. A step is sustained when the
95th percentile of that round trip stays under 100 ms (HA's event loop answers
within 100 ms) and the broker saw at least 90 % of the asked rate. The figure is the
highest sustained rate measured at the broker, and what stopped the steps (the loop
lag, or the load generator not reaching the asked rate). Machine-bound: on 2 shared cores
the load generator and the broker take CPU too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import time

import aiohttp

from bench import common
from bench.system import (
    FIVE_SENSORS,
    MqttCounter,
    System,
    cpu_seconds,
    env_float,
    env_int,
    running_system,
    settle,
    state_directory,
    wait_numeric_sensors,
)

PREFIX = "bench-ingest"
READINGS_PER_DEVICE_S = 5 / 10.0  # five sensors every 10 s at interval scale 1
# The core schedules a sensor at most every MCP_MIN_INTERVAL_MS (100 ms): a device process
# of N such devices tops out at N * 5 * 10 readings/s.
LAG_LIMIT_MS = 100.0


@dataclass
class ModeFigures:
    cpu_per_10k: list[float] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    sustained: float = 0.0
    startup_s: float = 0.0
    limited_by: str = "steps (raise BENCH_INGEST_STEPS)"


def _scale_for(rate: float, devices: int) -> float:
    return devices * READINGS_PER_DEVICE_S / rate


def _restart_devices(system: System, scale: float) -> None:
    group = system.devices[0]
    group.terminate()
    group.interval_scale = scale
    group.start(timeout=120)


async def _probe_lag(url: str, seconds: float) -> list[float]:
    lags: list[float] = []
    end = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < end:
            began = time.perf_counter()
            async with session.get(f"{url}/api/") as resp:
                await resp.read()
            lags.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.1)
    return lags


def _measure_mode(integration: bool, devices: int) -> ModeFigures:
    rate = env_float("BENCH_INGEST_RATE", 200)
    seconds = env_float("BENCH_INGEST_SECONDS", 10)
    reps = env_int("BENCH_INGEST_REPS", 3)
    start_rate = env_float("BENCH_INGEST_START_RATE", 100)
    steps = env_int("BENCH_INGEST_STEPS", 6)
    figures = ModeFigures()
    name = "integration" if integration else "mqtt"
    with (
        state_directory(f"ingest-{name}") as state,
        running_system(
            state,
            FIVE_SENSORS,
            devices,
            integration=integration,
            interval_scale=_scale_for(rate, devices),
            device_prefix=PREFIX,
        ) as system,
    ):
        platform = "esp_mcp_bridge" if integration else "mqtt"
        figures.startup_s = wait_numeric_sensors(system.hass, platform, PREFIX, devices * 5, 180)
        pid = system.hass_pid
        counter = MqttCounter(system.broker)
        try:
            settle(3)  # past the start-up burst (retained states, discovery)
            for _ in range(reps):
                c0, t0 = counter.count(), cpu_seconds(pid)
                settle(seconds)
                c1, t1 = counter.count(), cpu_seconds(pid)
                if c1 > c0:
                    figures.cpu_per_10k.append((t1 - t0) / (c1 - c0) * 10_000)
            for k in range(steps):
                asked = start_rate * 2**k
                _restart_devices(system, _scale_for(asked, devices))
                settle(2)
                c0, t0, w0 = counter.count(), cpu_seconds(pid), time.monotonic()
                lags = asyncio.run(_probe_lag(system.hass.url, seconds))
                c1, t1, w1 = counter.count(), cpu_seconds(pid), time.monotonic()
                seen = (c1 - c0) / (w1 - w0)
                p95 = common.percentile(sorted(lags), 95)
                lag_ok = p95 < LAG_LIMIT_MS
                generator_ok = seen >= 0.9 * asked
                figures.steps.append(
                    {
                        "asked_per_s": asked,
                        "seen_per_s": round(seen, 1),
                        "lag_p50_ms": round(common.percentile(sorted(lags), 50), 1),
                        "lag_p95_ms": round(p95, 1),
                        "hass_cpu_share": round((t1 - t0) / (w1 - w0), 3),
                        "lag_ok": float(lag_ok),
                        "generator_ok": float(generator_ok),
                    }
                )
                print(f"   {name}: {figures.steps[-1]}")
                if lag_ok:
                    figures.sustained = max(figures.sustained, seen)
                if not lag_ok or not generator_ok:
                    figures.limited_by = "loop lag" if not lag_ok else "load generator"
                    break
        finally:
            counter.close()
    return figures


def run() -> list[common.Result]:
    devices = env_int("BENCH_INGEST_DEVICES", 50)
    baseline = _measure_mode(False, devices)
    project = _measure_mode(True, devices)
    cpu_p = common.Sample.of(project.cpu_per_10k)
    cpu_b = common.Sample.of(baseline.cpu_per_10k)
    details: dict[str, object] = {
        "devices": devices,
        "sensors_per_device": 5,
        "rate_per_s": env_float("BENCH_INGEST_RATE", 200),
        "project_steps": project.steps,
        "baseline_steps": baseline.steps,
        "startup_s": {"project": project.startup_s, "baseline": baseline.startup_s},
        "sustained_limited_by": {"project": project.limited_by, "baseline": baseline.limited_by},
    }
    return [
        common.Result(
            figure="ingest: hass CPU per 10k readings (integration vs HA MQTT entities)",
            unit="cpu-s",
            project=cpu_p,
            baseline=cpu_b,
            target="<= 0.5x",
            met=cpu_p.median <= 0.5 * cpu_b.median,
            details=details,
        ),
        common.Result(
            figure="ingest: highest sustained rate, loop lag p95 < 100 ms",
            unit="readings/s",
            project=common.Sample.of([project.sustained]),
            baseline=common.Sample.of([baseline.sustained]),
            target=f"reported; limit: {project.limited_by} / {baseline.limited_by}",
            met=True,
            lower_is_better=False,
            details=details,
        ),
    ]
