"""Figure 3: 24 hours of one sensor, MCP ``read_sensor`` against HA's raw history API.

Seeding 24 h of readings every 10 s honestly: Home Assistant records the time it
receives a state, so publishing readings with past ``ts`` does not create past
history, and no API writes past states (``recorder/import_statistics`` writes
long-term statistics only, which is not what ``/api/history/period`` returns). So
the run pre-generates the recorder database, the way a Home Assistant that ran for
a day would have it:

1. a fresh system (broker, ``hass`` with MQTT and this integration, one virtual
   device with five sensors) runs until the temperature entity has live states;
2. ``hass`` is stopped cleanly, and 8,640 states (one every 10 s for the 24 h
   before the first live state, a sine like the device's signal) are inserted
   into its ``states`` table for that entity, with the entity's own
   ``metadata_id`` and ``attributes_id`` (the recorder's schema, read from the
   database itself);
3. ``hass`` is started again on the same database and the device reconnects.

Both sides then read the same rows: the project is ``read_sensor(window="24h")``
through the MCP server over HTTP (the real MCP client; summary statistics plus a
downsampled series, 24 points by default); the baseline is
``GET /api/history/period/<start>?filter_entity_id=<entity>&end_time=<now>``, the
raw history a client gets without this project. Latency is the wall time of the
call at the client; size is the bytes of the response body (for MCP: the JSON-RPC
result, ``CallToolResult`` as JSON). The trimmed raw variant
(``minimal_response&no_attributes``) is in the details. Calls alternate;
``BENCH_HISTORY_REPS`` pairs (default 20).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import math
from pathlib import Path
import secrets
import sqlite3
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from bench import common
from bench.system import (
    FIVE_SENSORS,
    System,
    env_int,
    running_system,
    state_directory,
    wait_integration_online,
    wait_numeric_sensors,
)
from harness import HarnessError, McpServer
from harness._process import run_sync

PREFIX = "bench-history"
SENSOR = "temperature"
STEP_S = 10
SPAN_S = 24 * 3600


async def _entity_id(system: System) -> str:
    async with system.hass.client() as ha:
        result = await ha.ws("esp_mcp_bridge/devices", device_id=PREFIX)
        devices = result["devices"]
        if not devices:
            raise HarnessError(f"{PREFIX} is not in the integration")
        return str(devices[0]["entities"]["sensors"][SENSOR])


def seed_states(db: Path, entity_id: str) -> int:
    """Insert 24 h of states every 10 s before the entity's first recorded state."""
    con = sqlite3.connect(db)
    try:
        row = con.execute(
            "SELECT metadata_id FROM states_meta WHERE entity_id = ?", (entity_id,)
        ).fetchone()
        if row is None:
            raise HarnessError(f"{entity_id} has no recorded states to extend")
        metadata_id = int(row[0])
        first = con.execute(
            "SELECT MIN(last_updated_ts), MAX(attributes_id), MAX(origin_idx) FROM states"
            " WHERE metadata_id = ?",
            (metadata_id,),
        ).fetchone()
        first_ts, attributes_id, origin = float(first[0]), first[1], first[2]
        start = first_ts - SPAN_S
        rows = []
        for i in range(SPAN_S // STEP_S):
            ts = start + i * STEP_S
            value = 22.0 + 4.0 * math.sin(2 * math.pi * ts / 1800)
            rows.append(
                (
                    f"{value:.2f}",
                    ts,
                    attributes_id,
                    origin,
                    metadata_id,
                    secrets.token_bytes(16),
                )
            )
        con.executemany(
            # last_changed_ts stays NULL: the recorder's own way of saying "same as last_updated".
            "INSERT INTO states (state, last_updated_ts, attributes_id,"
            " origin_idx, metadata_id, context_id_bin) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.commit()
        return len(rows)
    finally:
        con.close()


async def _raw_call(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    async with session.get(url) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise HarnessError(f"history API -> {resp.status}")
    return (time.perf_counter() - began) * 1000, len(body)


async def _mcp_call(session: ClientSession) -> tuple[float, int, dict[str, Any]]:
    began = time.perf_counter()
    result = await session.call_tool(
        "read_sensor", {"device_id": PREFIX, "sensor_id": SENSOR, "window": "24h"}
    )
    elapsed = (time.perf_counter() - began) * 1000
    if result.is_error:
        raise HarnessError(f"read_sensor failed: {result.content}")
    body = result.model_dump_json(by_alias=True, exclude_none=True)
    return elapsed, len(body.encode()), dict(result.structured_content or {})


async def _measure(system: System, entity_id: str, token: str, reps: int) -> dict[str, Any]:
    assert system.mcp is not None
    now = datetime.now(UTC)
    start = (now - timedelta(hours=24)).isoformat()
    end = now.isoformat()
    base = f"{system.hass.url}/api/history/period/{quote(start)}"
    raw_url = f"{base}?{urlencode({'filter_entity_id': entity_id, 'end_time': end})}"
    minimal_url = raw_url + "&minimal_response&no_attributes"
    out: dict[str, Any] = {"mcp_ms": [], "raw_ms": [], "minimal_ms": []}
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {system.hass.token}"}) as http,
        create_mcp_http_client(headers=headers) as client,
        streamable_http_client(system.mcp.url, http_client=client) as (read, write),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        _, _, first = await _mcp_call(mcp)
        await _raw_call(http, raw_url)
        for _ in range(reps):
            ms, size, data = await _mcp_call(mcp)
            out["mcp_ms"].append(ms)
            out["mcp_bytes"] = size
            raw_ms, raw_bytes = await _raw_call(http, raw_url)
            out["raw_ms"].append(raw_ms)
            out["raw_bytes"] = raw_bytes
            min_ms, min_bytes = await _raw_call(http, minimal_url)
            out["minimal_ms"].append(min_ms)
            out["minimal_bytes"] = min_bytes
        out["mcp_stats"] = data.get("stats")
        out["mcp_window"] = data.get("window")
        out["mcp_points"] = len(data.get("series") or [])
        del first
    return out


def run() -> list[common.Result]:
    reps = env_int("BENCH_HISTORY_REPS", 20)
    with (
        state_directory("history") as state,
        running_system(state, FIVE_SENSORS, 1, integration=True, device_prefix=PREFIX) as system,
    ):
        wait_numeric_sensors(system.hass, "esp_mcp_bridge", PREFIX, 5, 120)
        entity_id = run_sync(lambda: _entity_id(system))
        system.hass.stop()
        seeded = seed_states(system.hass.config_dir / "home-assistant_v2.db", entity_id)
        system.hass.start()
        wait_integration_online(system.hass, {PREFIX}, 120)
        assert system.hass.token is not None
        with McpServer(
            state, ha_url=system.hass.url, ha_token=system.hass.token, broker=system.broker
        ) as server:
            system.mcp = server
            token = system.hass.create_token("bench MCP client")
            data = asyncio.run(_measure(system, entity_id, token, reps))
    if not data.get("mcp_stats") or int(data["mcp_stats"].get("count", 0)) < seeded // 2:
        raise HarnessError(f"read_sensor did not see the seeded day: {data.get('mcp_stats')}")
    latency_p = common.Sample.of(data["mcp_ms"])
    latency_b = common.Sample.of(data["raw_ms"])
    details: dict[str, object] = {
        "seeded_states": seeded,
        "entity_id": entity_id,
        "mcp_points": data["mcp_points"],
        "mcp_window": data["mcp_window"],
        "mcp_stats_count": data["mcp_stats"].get("count"),
        "minimal_raw_ms": common.Sample.of(data["minimal_ms"]).median,
        "minimal_raw_bytes": data["minimal_bytes"],
        "reps": reps,
    }
    size_p = float(data["mcp_bytes"])
    size_b = float(data["raw_bytes"])
    return [
        common.Result(
            figure="history 24h: latency (read_sensor vs /api/history/period)",
            unit="ms",
            project=latency_p,
            baseline=latency_b,
            target="<= 1.5x",
            met=latency_p.median <= 1.5 * latency_b.median,
            details=details,
        ),
        common.Result(
            figure="history 24h: response size (read_sensor vs /api/history/period)",
            unit="B",
            project=common.Sample.of([size_p]),
            baseline=common.Sample.of([size_b]),
            target="<= 0.1x",
            met=size_p * 10 <= size_b,
            details=details,
        ),
    ]
