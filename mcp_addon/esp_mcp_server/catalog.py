"""The resources of single sensors and actuators, completions of device, sensor and actuator
ids (resource templates and the diagnose_device prompt), and the resource list-changed
notifications when devices come and go."""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import Completion, CompletionArgument, CompletionContext

from .matching import unknown_message
from .services import Services

_LOGGER = logging.getLogger(__name__)
DEVICES_URI = "esp-mcp://devices"
SENSOR_URI = "esp-mcp://devices/{device_id}/sensors/{sensor_id}"
ACTUATOR_URI = "esp-mcp://devices/{device_id}/actuators/{actuator_id}"
MAX_VALUES = 100


def _matching(values: list[str], prefix: str) -> Completion:
    wanted = prefix.lower()
    found = sorted(v for v in values if v.lower().startswith(wanted))
    return Completion(values=found[:MAX_VALUES], total=len(found), has_more=len(found) > MAX_VALUES)


class Announcer:
    """Tells connected clients that the device list changed: listeners of
    `subscriptions/listen` (2026-07-28) through the server's bus, and sessions of earlier
    revisions that made a request since connecting (the server's `sessions`) on their own
    stream."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server
        self.announced = 0

    async def devices_changed(self) -> None:
        bus = Context(mcp_server=self.server, subscriptions=self.server._subscriptions)
        try:
            await bus.notify_resources_changed()
            await bus.notify_resource_updated(DEVICES_URI)
        except Exception as err:  # a listener gone changes nothing for the others
            _LOGGER.debug("list-changed to listeners failed: %s", err)
        sessions: dict[int, Any] = getattr(self.server, "sessions", {})
        _LOGGER.debug("telling %d sessions the device list changed", len(sessions))
        for key, session in list(sessions.items()):
            try:
                await session.send_resource_list_changed()
            except Exception as err:  # a closed session: forget it
                _LOGGER.debug("list-changed to a session failed: %s", err)
                sessions.pop(key, None)
        self.announced += 1


def register(server: MCPServer[Any], services: Services) -> Announcer:
    """Add the item resources and the completion handler; returns the announcer that
    `services` calls when the set of devices changes."""
    announcer = Announcer(server)

    async def capability_json(device_id: str, kind: str, item_id: str) -> str:
        """One sensor or actuator (`kind`: sensors / actuators) with its entity id."""
        try:
            device = await services.device(device_id)
        except ToolError as err:
            raise ResourceNotFoundError(str(err)) from err
        items = device.sensors if kind == "sensors" else device.actuators
        for item in items:
            if item["id"] == item_id:
                entity = device.entities(kind).get(item_id)
                return json.dumps({**item, "entity_id": entity}, separators=(",", ":"))
        ids = [i["id"] for i in items]
        raise ResourceNotFoundError(unknown_message(f"{kind[:-1]} on {device_id}", item_id, ids))

    @server.resource(
        SENSOR_URI,
        name="sensor",
        title="Sensor capability",
        description="One sensor as its device describes it, with its entity id (JSON)",
        mime_type="application/json",
    )
    async def sensor_resource(device_id: str, sensor_id: str) -> str:
        return await capability_json(device_id, "sensors", sensor_id)

    @server.resource(
        ACTUATOR_URI,
        name="actuator",
        title="Actuator capability",
        description="One actuator as its device describes it, with its entity id (JSON)",
        mime_type="application/json",
    )
    async def actuator_resource(device_id: str, actuator_id: str) -> str:
        return await capability_json(device_id, "actuators", actuator_id)

    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]
    async def complete(
        ref: Any, argument: CompletionArgument, context: CompletionContext | None
    ) -> Completion | None:
        try:
            devices = await services.devices()
        except ToolError:
            return None
        if argument.name == "device_id":
            return _matching([d.id for d in devices], argument.value)
        if argument.name not in ("sensor_id", "actuator_id"):
            return None
        chosen = (context.arguments or {}).get("device_id") if context else None
        pool = [d for d in devices if chosen is None or d.id == chosen]
        if argument.name == "sensor_id":
            values = {str(s["id"]) for d in pool for s in d.sensors}
        else:
            values = {str(a["id"]) for d in pool for a in d.actuators}
        return _matching(sorted(values), argument.value)

    return announcer
