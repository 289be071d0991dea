"""The server's connections and device lookups shared by every tool, resource and prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import contextlib
from dataclasses import dataclass
import logging
import time
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from .config import Settings
from .confirm import ConfirmTokens
from .ha_client import HAError, HomeAssistant
from .ha_confirm import HomeConfirmation
from .matching import unknown_message
from .mqtt_commands import BrokerUnavailable, DeviceTimeout, MqttCommander
from .stats import iso, parse_iso

_LOGGER = logging.getLogger(__name__)
DEVICE_CACHE_S = 2.0
REGISTRY_EVENT = "device_registry_updated"
AFTER_ANSWER = "esp_mcp_bridge.after_answer"
"""ASGI scope key: work to start once the request's answer is sent (http_app.AfterAnswer)."""


@dataclass
class Device:
    """One bridged device as the integration reports it, with helpers."""

    raw: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.raw.get("device_id", ""))

    @property
    def name(self) -> str | None:
        name = self.raw.get("name") or self.capabilities.get("name")
        return str(name) if name else None

    @property
    def online(self) -> bool:
        return bool(self.raw.get("online"))

    @property
    def last_seen(self) -> str | None:
        value = self.raw.get("last_seen")
        if not value:
            return None
        try:
            return iso(parse_iso(str(value)))
        except ValueError:
            return str(value)

    @property
    def area(self) -> str | None:
        value = self.raw.get("area_id")
        return str(value) if value else None

    @property
    def capabilities(self) -> dict[str, Any]:
        caps = self.raw.get("capabilities")
        return caps if isinstance(caps, dict) else {}

    @property
    def sensors(self) -> list[dict[str, Any]]:
        items = self.capabilities.get("sensors")
        return [s for s in items or [] if isinstance(s, dict) and "id" in s]

    @property
    def actuators(self) -> list[dict[str, Any]]:
        items = self.capabilities.get("actuators")
        return [a for a in items or [] if isinstance(a, dict) and "id" in a]

    def entities(self, kind: str) -> dict[str, str]:
        ents = self.raw.get("entities")
        table = ents.get(kind) if isinstance(ents, dict) else None
        if not isinstance(table, dict):
            return {}
        return {str(k): str(v) for k, v in table.items() if isinstance(v, str) and v}

    @property
    def metrics(self) -> dict[str, Any] | None:
        value = self.raw.get("metrics")
        return value if isinstance(value, dict) else None

    def sensor(self, sensor_id: str) -> dict[str, Any]:
        for sensor in self.sensors:
            if sensor["id"] == sensor_id:
                return sensor
        raise ToolError(
            unknown_message(f"sensor on {self.id}", sensor_id, [s["id"] for s in self.sensors])
        )

    def actuator(self, actuator_id: str) -> dict[str, Any]:
        for actuator in self.actuators:
            if actuator["id"] == actuator_id:
                return actuator
        raise ToolError(
            unknown_message(
                f"actuator on {self.id}", actuator_id, [a["id"] for a in self.actuators]
            )
        )


class Services:
    """Home Assistant, the broker and the confirm tokens, for one server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ha = HomeAssistant(settings.ha_url, settings.ha_token, settings.ha_auth_url)
        self.mqtt = MqttCommander(settings)
        self.confirms = ConfirmTokens(ttl_s=settings.confirm_ttl_s)
        self.home_confirm = HomeConfirmation(
            self.ha, settings.notify_service, settings.confirm_ttl_s
        )
        self.started = time.time()
        self._cache: tuple[float, list[Device]] | None = None
        self._cache_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._known_ids: frozenset[str] | None = None
        self.on_devices_changed: Callable[[], Coroutine[Any, Any, None]] | None = None
        """Called (in the background) when a device appears or disappears."""
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.mqtt.start()
        # Devices come and go with Home Assistant's device registry: look again then.
        self._watcher = asyncio.create_task(
            self.ha.watch_events(REGISTRY_EVENT, self._registry_changed, asyncio.Event())
        )

    def _registry_changed(self, data: dict[str, Any]) -> None:
        _LOGGER.debug("device registry: %s", data.get("action"))
        if data.get("action") in ("create", "remove", "update"):
            self.invalidate()
            self.in_background(self._refresh())

    async def _refresh(self) -> None:
        try:
            await self.devices()
        except ToolError as err:
            _LOGGER.info("cannot refresh the devices: %s", err)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._background:  # logbook entries still being written: finish them
            await asyncio.wait(self._background, timeout=5)
        self.mqtt.stop()
        await self.ha.close()

    def in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run work the caller must not wait for (its answer is already known)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def after_answer(self, request: object, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start `work` in the background once the answer to `request` (the HTTP request of
        a tool call) is sent, so the caller does not wait behind it; at once without one
        (stdio)."""
        scope = getattr(request, "scope", None)
        queued = scope.get(AFTER_ANSWER) if isinstance(scope, dict) else None
        if isinstance(queued, list):
            queued.append(lambda: self.in_background(work()))
        else:
            self.in_background(work())

    async def devices(self) -> list[Device]:
        async with self._cache_lock:
            now = time.monotonic()
            if self._cache is not None and now - self._cache[0] < DEVICE_CACHE_S:
                return self._cache[1]
            try:
                raw = await self.ha.bridge_devices()
            except HAError as err:
                raise ToolError(str(err)) from err
            devices = sorted((Device(d) for d in raw if d.get("device_id")), key=lambda d: d.id)
            self._cache = (now, devices)
            ids = frozenset(d.id for d in devices)
            if self._known_ids is not None and ids != self._known_ids and self.on_devices_changed:
                _LOGGER.debug("devices changed: %d now", len(ids))
                self.in_background(self.on_devices_changed())
            self._known_ids = ids
            return devices

    def invalidate(self) -> None:
        self._cache = None

    async def device(self, device_id: str) -> Device:
        devices = await self.devices()
        for device in devices:
            if device.id == device_id:
                return device
        raise ToolError(unknown_message("device", device_id, [d.id for d in devices]))


def command_error(err: Exception) -> ToolError:
    """Broker/timeout/HA failures as tool errors an agent can act on."""
    if isinstance(err, BrokerUnavailable):
        return ToolError(f"MQTT broker unreachable: {err}")
    if isinstance(err, DeviceTimeout):
        return ToolError(
            f"{err}; it may be busy, out of range or offline, and may still have acted. "
            "Read the actuator's state (action read or get_device_info) and check "
            "device_diagnostics before sending it again"
        )
    return ToolError(str(err))
