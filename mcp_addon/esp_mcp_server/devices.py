"""Tools about devices: list_devices, get_device_info, query_devices; the device resources."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import (
    CallToolResult,
)
from pydantic import Field

from . import stats
from .common import (
    RO,
    Cursor,
    DeviceId,
    Limit,
    _fmt,
    _matches_capability,
    _metrics_row,
    _page,
    _result,
    _state_ts,
    _state_value,
    _summary_row,
    tool_errors,
)
from .matching import unknown_message
from .models import (
    DeviceInfo,
    DeviceList,
    DeviceMatch,
    DeviceMatches,
)
from .services import Services
from .text import NAME_LIMIT, TEXT_LIMIT, clean, clean_tree, quoted

_LOGGER = logging.getLogger(__name__)


def register(server: MCPServer[Any], services: Services) -> None:
    """Add the device tools and resources to `server`."""
    # ---- list_devices -----------------------------------------------------------------------

    @server.tool(
        title="List devices",
        annotations=RO,
        description=(
            "List bridged ESP32 devices with online state, last seen and sensor/actuator "
            "counts; filter by online, area or capability (sensor/actuator id or type). Paged."
        ),
    )
    @tool_errors
    async def list_devices(
        *,
        online: Annotated[bool | None, Field(description="only online (true) or offline")] = None,
        area: Annotated[str | None, Field(description="Home Assistant area id")] = None,
        capability: Annotated[
            str | None, Field(description="sensor/actuator id or type, e.g. temperature")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Annotated[CallToolResult, DeviceList]:
        devices = await services.devices()
        if online is not None:
            devices = [d for d in devices if d.online == online]
        if area:
            devices = [d for d in devices if d.area and area.lower() in d.area.lower()]
        if capability:
            devices = [d for d in devices if _matches_capability(d, capability)]
        page, nxt = _page(devices, cursor, limit)
        result = DeviceList(
            devices=[_summary_row(d) for d in page],
            total=len(devices),
            online=sum(d.online for d in devices),
            next_cursor=nxt,
        )
        names = ", ".join(f"{d.id} ({'online' if d.online else 'offline'})" for d in page)
        text = f"{len(devices)} device(s), {result.online} online: {names or 'none'}"
        if nxt:
            text += f"; more with cursor={nxt}"
        return _result(result, text)

    # ---- get_device_info ---------------------------------------------------------------------

    @server.tool(
        title="Device details",
        annotations=RO,
        description=(
            "One device in full: sensors and actuators with their metadata (units, ranges, "
            "options, actions, confirmation), entity ids, actuators' current state and age, "
            "firmware and health."
        ),
    )
    @tool_errors
    async def get_device_info(device_id: DeviceId) -> Annotated[CallToolResult, DeviceInfo]:
        device = await services.device(device_id)
        caps = device.capabilities
        sensor_ents = device.entities("sensors")
        actuator_ents = device.entities("actuators")
        sensors = [
            {
                **clean_tree(s),
                **({"entity_id": sensor_ents[s["id"]]} if s["id"] in sensor_ents else {}),
            }
            for s in device.sensors
        ]
        actuators = [
            {
                **clean_tree(a),
                **({"entity_id": actuator_ents[a["id"]]} if a["id"] in actuator_ents else {}),
            }
            for a in device.actuators
        ]
        await add_actuator_states(actuators)
        health = None
        if device.metrics:
            row = _metrics_row(device, time.time())
            health = row.model_dump(exclude_none=True, exclude={"device_id", "online"})
        info = DeviceInfo(
            device_id=device.id,
            name=device.name,
            online=device.online,
            last_seen=device.last_seen,
            area=device.area,
            manufacturer=caps.get("manufacturer"),
            model=caps.get("model"),
            firmware=caps.get("fw"),
            hardware=caps.get("hw"),
            mac=caps.get("mac"),
            discovery_mode=device.raw.get("discovery_mode") or caps.get("discovery"),
            sensors=sensors,
            actuators=actuators,
            diagnostics=device.entities("diagnostics") or None,
            health=health,
        )
        states = [
            f"{a['id']}={_fmt(a['state'], a.get('unit'))}" if "state" in a else str(a["id"])
            for a in actuators
        ]
        text = (
            f"{device.id} ({quoted(device.name) if device.name else 'unnamed'}), "
            f"{'online' if device.online else 'offline'}, "
            f"fw {quoted(caps.get('fw', '?'))}: "
            f"sensors {', '.join(s['id'] for s in sensors) or 'none'}; "
            f"actuators {', '.join(states) or 'none'}"
        )
        return _result(info, text)

    async def add_actuator_states(actuators: list[dict[str, Any]]) -> None:
        """Each actuator's current state as Home Assistant has it, with its age in seconds
        (`state`, `state_age_s`); `state` is left out when unknown or unavailable."""
        now = time.time()
        entity_ids = [a.get("entity_id") for a in actuators]
        found = await asyncio.gather(
            *(services.ha.get_state(e) for e in entity_ids if isinstance(e, str)),
            return_exceptions=True,
        )
        by_entity = dict(zip([e for e in entity_ids if isinstance(e, str)], found, strict=True))
        for actuator in actuators:
            state = by_entity.get(str(actuator.get("entity_id")))
            value_type = str(actuator.get("value_type", "string"))
            if not isinstance(state, dict) or value_type == "trigger":
                continue
            value = _state_value(str(state.get("state", "")), value_type)
            if value is None:
                actuator["state_unavailable"] = clean(state.get("state", "unknown"), NAME_LIMIT)
                continue
            actuator["state"] = clean(value, TEXT_LIMIT) if isinstance(value, str) else value
            ts = _state_ts(state)
            if ts is not None:
                actuator["state_age_s"] = stats.age_seconds(ts, now)

    # ---- query_devices -----------------------------------------------------------------------

    @server.tool(
        title="Find devices",
        annotations=RO,
        description=(
            "Find devices by sensor type, actuator type, value type, online state and free "
            "text (ids, names, descriptions); all given filters must match. Says what matched."
        ),
    )
    @tool_errors
    async def query_devices(
        *,
        sensor_type: Annotated[str | None, Field(description="e.g. temperature")] = None,
        actuator_type: Annotated[str | None, Field(description="e.g. led, valve")] = None,
        value_type: Annotated[
            Literal["number", "boolean", "string", "enum", "trigger"] | None,
            Field(description="of a sensor or actuator"),
        ] = None,
        online: bool | None = None,
        text: Annotated[str | None, Field(description="free text")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Annotated[CallToolResult, DeviceMatches]:
        matches: list[DeviceMatch] = []
        for device in await services.devices():
            if online is not None and device.online != online:
                continue
            matched: list[str] = []
            ok = True
            if sensor_type:
                hits = [
                    f"sensor:{s['id']}"
                    for s in device.sensors
                    if sensor_type.lower() in (str(s.get("type", "")).lower(), str(s["id"]).lower())
                ]
                ok = ok and bool(hits)
                matched += hits
            if actuator_type:
                hits = [
                    f"actuator:{a['id']}"
                    for a in device.actuators
                    if actuator_type.lower()
                    in (str(a.get("type", "")).lower(), str(a["id"]).lower())
                ]
                ok = ok and bool(hits)
                matched += hits
            if value_type:
                hits = [
                    f"sensor:{s['id']}" for s in device.sensors if s.get("value_type") == value_type
                ]
                hits += [
                    f"actuator:{a['id']}"
                    for a in device.actuators
                    if a.get("value_type") == value_type
                ]
                ok = ok and bool(hits)
                matched += hits
            if text:
                needle = text.lower()
                hits = []
                if needle in f"{device.id} {device.name or ''} {device.area or ''}".lower():
                    hits.append("device")
                for kind, items in (("sensor", device.sensors), ("actuator", device.actuators)):
                    for item in items:
                        hay = " ".join(
                            str(item.get(k, "")) for k in ("id", "name", "type", "description")
                        ).lower()
                        if needle in hay:
                            hits.append(f"{kind}:{item['id']}")
                ok = ok and bool(hits)
                matched += hits
            if ok:
                matches.append(
                    DeviceMatch(
                        id=device.id,
                        name=device.name,
                        online=device.online,
                        matched=list(dict.fromkeys(matched)),
                    )
                )
        page, nxt = _page(matches, cursor, limit)
        result = DeviceMatches(devices=page, total=len(matches), next_cursor=nxt)
        text_out = f"{len(matches)} match(es)" + (
            ": " + "; ".join(f"{m.id} [{', '.join(m.matched)}]" for m in page) if page else ""
        )
        return _result(result, text_out)

    # ---- resources ---------------------------------------------------------------------------

    @server.resource(
        "esp-mcp://devices",
        name="devices",
        title="Bridged devices",
        description="All devices with online state and sensor/actuator counts (JSON)",
        mime_type="application/json",
    )
    async def devices_resource() -> str:
        try:
            devices = await services.devices()
        except ToolError as err:
            raise ResourceError(str(err)) from err
        return json.dumps(
            [_summary_row(d).model_dump(exclude_none=True) for d in devices], separators=(",", ":")
        )

    @server.resource(
        "esp-mcp://devices/{device_id}/capabilities",
        name="device_capabilities",
        title="Device capabilities",
        description="The capabilities document a device published (JSON)",
        mime_type="application/json",
    )
    async def capabilities_resource(device_id: str) -> str:
        try:
            devices = await services.devices()
        except ToolError as err:
            raise ResourceNotFoundError(str(err)) from err
        for device in devices:
            if device.id == device_id:
                return json.dumps(device.capabilities, separators=(",", ":"))
        raise ResourceNotFoundError(unknown_message("device", device_id, [d.id for d in devices]))
