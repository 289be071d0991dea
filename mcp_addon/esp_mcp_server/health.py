"""Health: get_alerts, get_metrics, device_diagnostics, and the diagnose_device prompt."""

from __future__ import annotations

from datetime import timedelta
import logging
import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CallToolResult,
)
from pydantic import Field

from . import stats
from .common import (
    RO,
    RO_LIVE,
    DeviceId,
    _metrics_row,
    _now,
    _numeric_series,
    _result,
    _state_ts,
    progress,
    tool_errors,
)
from .ha_client import HAError
from .models import (
    Alert,
    AlertList,
    Diagnostics,
    Finding,
    MetricsResult,
)
from .mqtt_commands import BrokerUnavailable, DeviceTimeout, command_timeout
from .services import Device, Services
from .text import TEXT_LIMIT, clean, quoted

_LOGGER = logging.getLogger(__name__)


def register(server: MCPServer[Any], services: Services) -> None:
    """Add the health tools and the prompt to `server`."""
    settings = services.settings
    # ---- get_alerts --------------------------------------------------------------------------

    @server.tool(
        title="Device alerts",
        annotations=RO,
        description=(
            "Device errors, newest first, by device, since (ISO 8601 or e.g. 24h) and minimum "
            "severity (0 info, 1 warning, 2 error, 3 critical)."
        ),
    )
    @tool_errors
    async def get_alerts(
        *,
        device_id: Annotated[str | None, Field(description="only this device")] = None,
        since: Annotated[str | None, Field(description="ISO 8601 or e.g. 24h")] = None,
        min_severity: Annotated[int | None, Field(ge=0, le=10)] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 20,
    ) -> Annotated[CallToolResult, AlertList]:
        if device_id is not None:
            await services.device(device_id)
        since_dt = stats.parse_time(since, _now()) if since else None
        rows = await services.ha.bridge_alerts(device_id, since_dt, min_severity, limit)
        alerts = [
            Alert(
                device_id=str(r.get("device_id", "")),
                type=str(r.get("type", "")),
                code=r.get("code") if isinstance(r.get("code"), int | str) else None,
                message=clean(r["message"]) if r.get("message") else None,
                severity=int(r.get("severity") or 0),
                ts=str(r.get("ts") or r.get("received") or ""),
            )
            for r in rows[:limit]
        ]
        by_sev: dict[str, int] = {}
        for alert in alerts:
            by_sev[str(alert.severity)] = by_sev.get(str(alert.severity), 0) + 1
        result = AlertList(alerts=alerts, count=len(alerts), by_severity=by_sev or None)
        if alerts:
            latest = alerts[0]
            text = (
                f"{len(alerts)} alert(s); latest {latest.ts} {latest.device_id} {latest.type}: "
                f"{quoted(latest.message, TEXT_LIMIT) if latest.message else latest.code} "
                f"(severity {latest.severity})"
            )
        else:
            text = "no alerts"
        return _result(result, text)

    # ---- get_metrics -------------------------------------------------------------------------

    @server.tool(
        title="Metrics",
        annotations=RO_LIVE,
        description=(
            "Without device_id: system view (online, message and error rates, alerts last "
            "hour, a row per device, this server's command latency). With device_id: its "
            "metrics; live=true asks the device now."
        ),
    )
    @tool_errors
    async def get_metrics(
        *,
        device_id: Annotated[str | None, Field(description="one device; omit for system")] = None,
        live: Annotated[bool, Field(description="ask the device now (device scope)")] = False,
    ) -> Annotated[CallToolResult, MetricsResult]:
        now = time.time()
        if device_id is not None:
            device = await services.device(device_id)
            metrics = device.metrics
            received = device.raw.get("metrics_received")
            fetched = False
            if live:
                if not device.online:
                    raise ToolError(f"device {device_id} is offline; live metrics unavailable")
                reply = await services.mqtt.request(
                    device_id,
                    "cmd",
                    {"cmd": "get_metrics", "args": {}},
                    command_timeout(None, settings),
                )
                if not reply.ok:
                    raise ToolError(f"device {device_id} refused get_metrics: {reply.error_code}")
                if isinstance(reply.result, dict):
                    metrics, received, fetched = reply.result, stats.iso(now), True
            result = MetricsResult(
                scope="device",
                device_id=device_id,
                metrics=metrics,
                metrics_received=str(received) if received else None,
                live=fetched or None,
            )
            if metrics:
                text = f"{device_id}: " + ", ".join(
                    f"{k} {v}"
                    for k, v in metrics.items()
                    if k in ("uptime_s", "rssi", "free_heap", "messages_sent", "sensor_read_errors")
                )
            else:
                text = f"{device_id}: no metrics received yet"
            return _result(result, text)
        devices = await services.devices()
        rows = [_metrics_row(d, now) for d in devices]
        rates = [r.msgs_per_min for r in rows if r.msgs_per_min is not None]
        err_rates = []
        for device in devices:
            m = device.metrics or {}
            uptime = m.get("uptime_s")
            if isinstance(uptime, int | float) and uptime > 0:
                errs = sum(
                    int(m.get(k) or 0)
                    for k in ("sensor_read_errors", "actuator_errors", "connection_failures")
                )
                err_rates.append(errs / uptime * 3600.0)
        try:
            recent = await services.ha.bridge_alerts(None, _now() - timedelta(hours=1), None, 500)
            alerts_hour: int | None = len(recent)
        except HAError:
            alerts_hour = None
        server_figures = services.mqtt.latency.as_dict()
        server_figures["broker_connected"] = services.mqtt.connected
        server_figures["uptime_s"] = round(now - services.started)
        result = MetricsResult(
            scope="system",
            devices_total=len(devices),
            devices_online=sum(d.online for d in devices),
            messages_per_min=stats.round_value(sum(rates), 3) if rates else None,
            errors_per_hour=stats.round_value(sum(err_rates), 3) if err_rates else None,
            alerts_last_hour=alerts_hour,
            devices=rows,
            server=server_figures,
        )
        text = (
            f"{result.devices_online}/{result.devices_total} online; "
            f"{result.messages_per_min or 0} msg/min; alerts last hour: {alerts_hour}; "
            f"commands sent {server_figures['sent']}"
        )
        return _result(result, text)

    # ---- device_diagnostics ------------------------------------------------------------------

    @server.tool(
        title="Diagnose a device",
        annotations=RO_LIVE,
        description=(
            "Live health check of one device: a verdict and findings (online, last seen, ping, "
            "RSSI, heap, error rate, alerts, stale sensors)."
        ),
    )
    @tool_errors
    async def device_diagnostics(
        device_id: DeviceId, ctx: Context
    ) -> Annotated[CallToolResult, Diagnostics]:
        device = await services.device(device_id)
        findings = await run_diagnostics(device, ctx)
        ping_ms = None
        for finding in findings:
            if finding.check == "ping" and finding.status == "ok":
                ping_ms = float(finding.detail.split(" ")[0])
        statuses = {f.status for f in findings}
        verdict: Literal["healthy", "degraded", "unhealthy", "offline"]
        if not device.online:
            verdict = "offline"
        elif "fail" in statuses:
            verdict = "unhealthy"
        elif "warn" in statuses:
            verdict = "degraded"
        else:
            verdict = "healthy"
        result = Diagnostics(
            device_id=device_id, verdict=verdict, findings=findings, ping_ms=ping_ms
        )
        problems = [f"{f.check}: {f.detail}" for f in findings if f.status in ("warn", "fail")]
        text = f"{device_id}: {verdict}" + (f" - {'; '.join(problems)}" if problems else "")
        return _result(result, text)

    async def run_diagnostics(device: Device, ctx: Context) -> list[Finding]:
        now = time.time()
        findings: list[Finding] = []
        intervals = [
            float(s["interval_ms"]) / 1000.0
            for s in device.sensors
            if isinstance(s.get("interval_ms"), int | float) and s["interval_ms"] > 0
        ]
        expected = max([*intervals, 10.0])
        findings.append(
            Finding(
                check="online",
                status="ok" if device.online else "fail",
                detail="online" if device.online else "offline (status topic says offline)",
            )
        )
        if device.last_seen:
            try:
                age = stats.age_seconds(stats.parse_iso(device.last_seen), now)
            except ValueError:
                age = None
            if age is not None:
                status: Literal["ok", "warn", "fail"] = (
                    "ok" if age <= 3 * expected else "warn" if age <= 10 * expected else "fail"
                )
                findings.append(
                    Finding(
                        check="last_seen",
                        status=status,
                        detail=f"{age:g} s ago (expected every {expected:g} s)",
                    )
                )
        else:
            findings.append(Finding(check="last_seen", status="warn", detail="never seen"))
        if device.online:
            wait = max(settings.min_command_timeout_s, 2.0)
            await progress(ctx, 0, wait, f"pinging {device.id}; waiting up to {wait:g} s")
            try:
                reply = await services.mqtt.request(
                    device.id, "cmd", {"cmd": "ping", "args": {}}, wait
                )
                if reply.ok:
                    findings.append(
                        Finding(
                            check="ping", status="ok", detail=f"{reply.rtt_ms:.1f} ms round trip"
                        )
                    )
                else:
                    findings.append(
                        Finding(check="ping", status="fail", detail=f"refused: {reply.error_code}")
                    )
            except DeviceTimeout as err:
                findings.append(Finding(check="ping", status="fail", detail=str(err)))
            except BrokerUnavailable as err:
                findings.append(Finding(check="ping", status="skip", detail=f"broker: {err}"))
        else:
            findings.append(Finding(check="ping", status="skip", detail="device offline"))
        metrics = device.metrics or {}
        rssi = metrics.get("rssi")
        if isinstance(rssi, int | float):
            rssi_status: Literal["ok", "warn", "fail"] = (
                "ok" if rssi >= -75 else "warn" if rssi >= -85 else "fail"
            )
            findings.append(Finding(check="rssi", status=rssi_status, detail=f"{rssi:g} dBm"))
        free, low = metrics.get("free_heap"), metrics.get("min_free_heap")
        if isinstance(free, int | float):
            heap_status: Literal["ok", "warn", "fail"] = (
                "ok" if free >= 20000 else "warn" if free >= 8000 else "fail"
            )
            detail = f"free {int(free)} B" + (
                f", lowest {int(low)} B" if isinstance(low, int | float) else ""
            )
            heap_entity = device.entities("diagnostics").get("free_heap")
            if heap_entity:
                try:
                    rows = await services.ha.history(
                        heap_entity, _now() - timedelta(hours=6), _now()
                    )
                    slope = stats.slope_per_hour(_numeric_series(rows, "number"))
                    if slope is not None:
                        detail += f", trend {stats.round_value(slope, 3):+g} B/h"
                        if slope < -0.02 * free and heap_status == "ok":
                            heap_status = "warn"
                except HAError:
                    pass
            findings.append(Finding(check="heap", status=heap_status, detail=detail))
        uptime = metrics.get("uptime_s")
        if isinstance(uptime, int | float) and uptime > 0:
            errs = sum(
                int(metrics.get(k) or 0)
                for k in ("sensor_read_errors", "actuator_errors", "connection_failures")
            )
            per_hour = errs / uptime * 3600.0
            err_status: Literal["ok", "warn", "fail"] = (
                "ok" if per_hour < 1 else "warn" if per_hour < 10 else "fail"
            )
            findings.append(
                Finding(
                    check="error_rate",
                    status=err_status,
                    detail=f"{errs} error(s) in {int(uptime)} s uptime ({per_hour:.2g}/h)",
                )
            )
        try:
            alerts = await services.ha.bridge_alerts(
                device.id, _now() - timedelta(hours=1), None, 100
            )
            worst = max((int(a.get("severity") or 0) for a in alerts), default=0)
            alert_status: Literal["ok", "warn", "fail"] = (
                "ok" if not alerts else "fail" if worst >= 3 else "warn"
            )
            findings.append(
                Finding(
                    check="alerts",
                    status=alert_status,
                    detail=f"{len(alerts)} in the last hour"
                    + (f", worst severity {worst}" if alerts else ""),
                )
            )
        except HAError as err:
            findings.append(Finding(check="alerts", status="skip", detail=str(err)))
        stale: list[str] = []
        sensor_ents = device.entities("sensors")
        for sensor in device.sensors:
            entity_id = sensor_ents.get(sensor["id"])
            if entity_id is None:
                continue
            interval = sensor.get("interval_ms")
            limit_s = (
                3 * max(float(interval) / 1000.0, 10.0)
                if isinstance(interval, int | float)
                else 3 * expected
            )
            state = await services.ha.get_state(entity_id)
            ts = _state_ts(state) if state else None
            if state is None or state.get("state") in ("unavailable", "unknown") or ts is None:
                stale.append(f"{sensor['id']} (no value)")
            elif now - ts > limit_s:
                stale.append(f"{sensor['id']} ({stats.age_seconds(ts, now):g} s old)")
        if device.sensors:
            findings.append(
                Finding(
                    check="sensors",
                    status="warn" if stale else "ok",
                    detail=("stale: " + ", ".join(stale))
                    if stale
                    else f"{len(device.sensors)} fresh",
                )
            )
        return findings

    # ---- prompt ------------------------------------------------------------------------------

    @server.prompt(
        name="diagnose_device",
        title="Diagnose a device",
        description="Step-by-step diagnosis of one device with the tools of this server",
    )
    def diagnose_device(device_id: str) -> str:
        return (
            f"Diagnose the ESP32 device '{device_id}'.\n"
            f"1. Call device_diagnostics with device_id='{device_id}' and read the verdict.\n"
            f"2. Call get_alerts with device_id='{device_id}' and since='24h'.\n"
            "3. For every stale or suspicious sensor, call read_sensor with window='24h' and "
            "look at min/max, trend and last_change.\n"
            f"4. Call get_metrics with device_id='{device_id}' and live=true if the device is "
            "online.\n"
            "5. Summarise: the likely cause, the evidence, and what the user can do. Do not "
            "change any actuator unless the user asks for it."
        )
