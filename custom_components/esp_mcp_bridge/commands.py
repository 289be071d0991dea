"""Commands to devices: requests with an id, matched with the device's response.

Every command carries a fresh `id` and a `deadline` (protocol section 8.1): the moment
this side stops waiting for the answer (now + the command's timeout). A device with a
synchronised clock that gets it later answers `expired` and does nothing, so a command
reported as timed out cannot run afterwards (HA's MQTT client sends a QoS 1 message
queued during a broker outage once it is back). Commands nobody waits for (the first
metrics request, `set_discovery`) carry both too, with UNANSWERED_COMMAND_TIMEOUT.
Nothing here sends a command twice: a second metrics request or hand-back is a new
command with its own id (the first one ran; its answer was missed).

A mixin of the device manager (it needs the manager's devices and state updates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import secrets
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN, LOGGER, UNANSWERED_COMMAND_TIMEOUT
from .models import DeviceData
from .naming import device_id_from_identifier
from .protocol import (
    Action,
    DiscoveryMode,
    ErrorCode,
    Metrics,
    ProtocolError,
    Response,
    Value,
    ValueType,
    actuator_set_topic,
    build_actuator_set,
    build_command,
    check_actuator_command,
    cmd_topic,
    deadline_after,
    metrics_from_object,
    parse_response,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry


def new_request_id() -> str:
    """A fresh command id (48 random bits: unique among the commands in flight)."""
    return f"ha-{secrets.token_hex(6)}"


async def async_send_unanswered(
    hass: HomeAssistant,
    base_topic: str,
    device_id: str,
    cmd: str,
    args: Mapping[str, Any],
    *,
    timeout_s: float = UNANSWERED_COMMAND_TIMEOUT,
) -> None:
    """Send a device command whose answer nobody waits for (its id and deadline set).

    Raises HomeAssistantError when the MQTT client cannot publish it.
    """
    payload = build_command(cmd, args, new_request_id(), deadline=deadline_after(timeout_s))
    await mqtt.async_publish(hass, cmd_topic(base_topic, device_id), payload, qos=1)


class DeviceCommands:
    """Sends actuator actions and device commands and waits for their responses."""

    hass: HomeAssistant
    entry: ConfigEntry[Any]
    base_topic: str
    devices: dict[str, DeviceData]
    _pending: dict[tuple[str, str], asyncio.Future[Response]]

    if TYPE_CHECKING:
        # Provided by the manager.
        def is_available(self, device: DeviceData) -> bool: ...
        def _seen(self, device: DeviceData) -> None: ...
        def _signal(self, device_id: str, key: str) -> None: ...
        def _log_once(self, device_id: str, kind: str, err: ProtocolError | str) -> None: ...
        def command_timeout(self, response_time_ms: int | None) -> float: ...
        def _apply_metrics(self, device: DeviceData, metrics: Metrics) -> None: ...
        def _apply_actuator_value(
            self, device: DeviceData, actuator_id: str, value: Value | None
        ) -> None: ...

    def _handle_response(self, device_id: str, payload: bytes) -> None:
        response = parse_response(payload)
        if response.id is None:
            return
        future = self._pending.get((device_id, response.id))
        if future is not None and not future.done():
            future.set_result(response)
        # Responses to other clients (the MCP add-on) are not ours: ignore them.

    # ----------------------------------------------------------- commands

    def _require_device(self, device_id: str) -> DeviceData:
        # Also accepts a registry identifier value (`B/D` below a non-default base topic).
        device_id = device_id_from_identifier(self.base_topic, device_id) or device_id
        device = self.devices.get(device_id)
        if device is None or device.capabilities is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_device",
                translation_placeholders={"device_id": device_id},
            )
        return device

    async def _async_request(
        self,
        device: DeviceData,
        topic: str,
        build: Callable[[str, int], str],
        timeout_s: float,
    ) -> Response:
        if not self.is_available(device):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="device_unavailable",
                translation_placeholders={"device_id": device.device_id},
            )
        request_id = new_request_id()
        try:
            # Built once: what goes out is this payload, with this id and deadline.
            payload = build(request_id, deadline_after(timeout_s))
        except ProtocolError as err:
            # The caller's input is wrong (not the device): a validation error, shown
            # to the user without a traceback in the log.
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_command",
                translation_placeholders={"error": str(err)},
            ) from err
        key = (device.device_id, request_id)
        future: asyncio.Future[Response] = self.hass.loop.create_future()
        self._pending[key] = future
        try:
            await mqtt.async_publish(self.hass, topic, payload, qos=1)
            async with asyncio.timeout(timeout_s):
                response = await future
        except TimeoutError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_timeout",
                translation_placeholders={
                    "device_id": device.device_id,
                    "timeout": f"{timeout_s:g}",
                },
            ) from err
        finally:
            self._pending.pop(key, None)
        self._seen(device)
        if not response.ok and response.error_code == ErrorCode.EXPIRED.value:
            # Not run: it reached the device after this side had stopped waiting.
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_expired",
                translation_placeholders={
                    "device_id": device.device_id,
                    "message": response.error_message or "",
                },
            )
        if not response.ok:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={
                    "device_id": device.device_id,
                    "code": response.error_code or "",
                    "message": response.error_message or "",
                },
            )
        return response

    async def async_actuate(
        self, device_id: str, actuator_id: str, action: Action, value: Value | None = None
    ) -> Value | None:
        """Send an actuator action and return the value the device acknowledged."""
        device = self._require_device(device_id)
        device_id = device.device_id
        assert device.capabilities is not None
        spec = device.capabilities.actuator(actuator_id)
        if spec is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_device",
                translation_placeholders={"device_id": f"{device_id}/{actuator_id}"},
            )

        def build(request_id: str, deadline: int) -> str:
            assert spec is not None
            check_actuator_command(spec, action, value)
            return build_actuator_set(action, value, request_id, deadline)

        response = await self._async_request(
            device,
            actuator_set_topic(self.base_topic, device_id, actuator_id),
            build,
            self.command_timeout(spec.response_time_ms),
        )
        result = response.result
        if spec.value_type is ValueType.TRIGGER:
            return None
        if not isinstance(result, Mapping) or "value" not in result:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={
                    "device_id": device_id,
                    "code": ErrorCode.MALFORMED.value,
                    "message": "response without a value",
                },
            )
        try:
            self._apply_actuator_value(device, actuator_id, result["value"])
        except ProtocolError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={
                    "device_id": device_id,
                    "code": err.code.value,
                    "message": err.detail,
                },
            ) from err
        return device.actuators[actuator_id]

    async def async_command(
        self,
        device_id: str,
        cmd: str,
        args: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """Send a device command and return the device's response."""
        device = self._require_device(device_id)
        device_id = device.device_id
        response = await self._async_request(
            device,
            cmd_topic(self.base_topic, device_id),
            lambda rid, deadline: build_command(
                cmd, args or {}, rid, device.capabilities, deadline
            ),
            timeout_s if timeout_s is not None else self.command_timeout(None),
        )
        if cmd == "get_metrics" and response.result is not None:
            try:
                self._apply_metrics(device, metrics_from_object(response.result))
            except ProtocolError as err:
                self._log_once(device_id, "get_metrics", err)
        elif cmd == "reset_metrics":
            device.metrics = None
            self._signal(device_id, "metrics")
        elif cmd == "set_discovery":
            device.discovery_mode = str((args or {}).get("mode"))
        return response

    def _request_metrics(self, device: DeviceData) -> None:
        device.metrics_requests += 1
        self.entry.async_create_task(
            self.hass,
            self._async_request_metrics(device.device_id),
            f"{DOMAIN} metrics {device.device_id}",
        )

    def _request_metrics_again(self, device_id: str) -> None:
        """Ask once more when the first answer was missed.

        Right after setup HA's MQTT client may still be subscribing to the metrics
        topic when the device answers; a live message from the device means the
        subscriptions are in place by now.
        """
        device = self.devices.get(device_id)
        if (
            device is not None
            and device.capabilities is not None
            and device.metrics is None
            and device.metrics_requests == 1
        ):
            self._request_metrics(device)

    async def _async_request_metrics(self, device_id: str) -> None:
        """Ask a newly seen device for its metrics (it also publishes them on its topic).

        Otherwise the diagnostic sensors stay unknown for a whole metrics interval after
        every start of Home Assistant. The response is not waited for: the metrics
        topic brings them.
        """
        try:
            await async_send_unanswered(self.hass, self.base_topic, device_id, "get_metrics", {})
        except HomeAssistantError as err:
            LOGGER.debug("Could not ask device %s for its metrics: %s", device_id, err)

    async def async_publish_discovery_mode(self, device_id: str, mode: DiscoveryMode) -> None:
        """Send `set_discovery` without waiting for the answer.

        The device's new capabilities confirm it (see takeover).
        """
        try:
            await async_send_unanswered(
                self.hass, self.base_topic, device_id, "set_discovery", {"mode": mode.value}
            )
        except HomeAssistantError as err:
            LOGGER.warning("Could not send set_discovery %s to %s: %s", mode, device_id, err)
            return
        device = self.devices.get(device_id)
        if device is not None:
            device.discovery_mode = mode.value
