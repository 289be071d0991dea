"""Actuators and confirmation: control_actuator, the checks of a command against the
capabilities, the add-on's policy, asking the user, and the logbook entry."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from typing import Annotated, Any, Literal

from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    InputRequiredResult,
)
from pydantic import BaseModel, Field

from . import stats
from .common import (
    CONTROL,
    DeviceId,
    _bearer,
    _elicit_outcome,
    _fmt,
    _modern,
    _result,
    _supports_elicitation,
    _to_number,
    _who,
    progress,
    tool_errors,
)
from .confirm import ConfirmError
from .ha_client import HAError
from .ha_confirm import CannotAsk
from .models import (
    ControlResult,
    Scalar,
)
from .mqtt_commands import BrokerUnavailable, DeviceTimeout, command_timeout
from .services import Device, Services, command_error
from .text import quoted

_LOGGER = logging.getLogger(__name__)

LOGBOOK_NAME = "ESP MCP Bridge"


class ConfirmAnswer(BaseModel):
    """What the user is asked when an actuator requires confirmation."""

    confirm: bool = Field(description="true to carry out the command")


def _principal(ctx: Context) -> str:
    """Who calls, for binding confirm tokens: a digest of the client's HA token (HTTP), or
    "local" for the one stdio client."""
    bearer = _bearer(ctx)
    return hashlib.sha256(bearer.encode()).hexdigest()[:32] if bearer else "local"


def _request(ctx: Context) -> object:
    """The transport's request of this tool call (None on stdio or outside a request)."""
    try:
        return ctx.request_context.request
    except ValueError:
        return None


def check_command(actuator: dict[str, Any], action: str, value: Any) -> Scalar | None:
    """Validate action and value against the capability; return the value to send."""
    aid = actuator["id"]
    value_type = str(actuator.get("value_type", "string"))
    default_actions = ["trigger"] if value_type == "trigger" else ["read", "write"]
    actions = [str(a) for a in actuator.get("actions") or default_actions]
    if action not in actions:
        raise ToolError(f"actuator {aid} does not support action {action!r}; supported: {actions}")
    if action != "write":
        if value is not None:
            raise ToolError(f"action {action!r} takes no value; leave value out")
        return None
    if value is None:
        raise ToolError(f"action 'write' on {aid} needs a value ({_describe_range(actuator)})")
    if value_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("on", "true", "off", "false"):
            return value.lower() in ("on", "true")
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise ToolError(f"actuator {aid} takes true or false, not {value!r}")
    if value_type == "number":
        number: float | None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int | float):
            number = float(value)
        else:
            number = _to_number(str(value))
        if number is None or not math.isfinite(number):
            raise ToolError(
                f"actuator {aid} takes a finite number ({_describe_range(actuator)}), not {value!r}"
            )
        low, high = actuator.get("min"), actuator.get("max")
        if (isinstance(low, int | float) and number < low) or (
            isinstance(high, int | float) and number > high
        ):
            raise ToolError(
                f"value {_fmt(value)} is out of range for {aid}: {_describe_range(actuator)}"
            )
        step = actuator.get("step")
        if isinstance(step, int | float) and step > 0:
            origin = float(low) if isinstance(low, int | float) else 0.0
            k = (number - origin) / step
            if abs(k - round(k)) > 1e-6:
                below = origin + math.floor(k) * step
                raise ToolError(
                    f"value {_fmt(value)} is not a step of {step} for {aid}; nearest: "
                    f"{stats.round_value(below, 8)} or {stats.round_value(below + step, 8)}"
                )
        return stats.round_value(number, 12)
    if value_type == "enum":
        options = [str(o) for o in actuator.get("options") or []]
        if str(value) not in options:
            raise ToolError(f"value {value!r} is not an option of {aid}; options: {options}")
        return str(value)
    if value_type == "trigger":
        raise ToolError(f"actuator {aid} is a trigger; use action 'trigger' without value")
    if not isinstance(value, str):
        raise ToolError(f"actuator {aid} takes a string")
    return value


def _describe_range(actuator: dict[str, Any]) -> str:
    value_type = actuator.get("value_type", "string")
    unit = f" {actuator['unit']}" if actuator.get("unit") else ""
    if value_type == "number":
        parts = [f"{actuator.get('min', '-inf')}..{actuator.get('max', 'inf')}{unit}"]
        if actuator.get("step"):
            parts.append(f"step {actuator['step']}")
        return "range " + ", ".join(parts)
    if value_type == "enum":
        return f"options {actuator.get('options')}"
    if value_type == "boolean":
        return "true or false"
    return str(value_type)


def _effect(device: Device, actuator: dict[str, Any], action: str, value: Any) -> str:
    name = actuator.get("name")
    label = (
        f"{quoted(name)} ({actuator['id']}) on {device.id}"
        if name
        else (f"{actuator['id']} on {device.id}")
    )
    if action == "write":
        return f"set {label} to {_fmt(value, actuator.get('unit'))}"
    return f"{action} {label}"


def register(server: MCPServer[Any], services: Services) -> None:
    """Add control_actuator to `server`."""
    settings = services.settings

    async def logbook(ctx: Context, device: Device, item: str, text: str) -> None:
        # Written after the answer has been sent, not before it: the agent's round trip does
        # not pay for an extra Home Assistant call; stop() waits for entries still pending.
        entity_id = device.entities("actuators").get(item)
        message, token = f"{_who(ctx)}: {text}", _bearer(ctx)

        async def write() -> None:
            try:
                await services.ha.log_to_logbook(LOGBOOK_NAME, message, entity_id, token=token)
            except HAError as err:
                _LOGGER.warning("could not write the logbook entry: %s", err)

        services.after_answer(_request(ctx), write)

    # ---- control_actuator -------------------------------------------------------------------

    @server.tool(
        title="Control an actuator",
        annotations=CONTROL,
        description=(
            "Write, toggle, trigger or read one actuator and return the value the device "
            "acknowledged; checked against its capabilities (get_device_info). Where "
            "confirmation is required the user is asked first; if the result is "
            "confirmation_required, ask the user, then repeat the call with its confirm_token. "
            "Logged in Home Assistant's logbook."
        ),
    )
    @tool_errors
    async def control_actuator(
        *,
        device_id: DeviceId,
        actuator_id: Annotated[str, Field(description="actuator id, e.g. led or valve")],
        ctx: Context,
        action: Annotated[
            Literal["write", "toggle", "trigger", "read"],
            Field(description="write sets value; toggle flips a boolean; trigger presses"),
        ] = "write",
        value: Annotated[
            bool | int | float | str | None,
            Field(description="for write: boolean, number in range, option or text"),
        ] = None,
        confirm_token: Annotated[
            str | None,
            Field(description="from a confirmation_required result, after the user agreed"),
        ] = None,
    ) -> Annotated[CallToolResult, ControlResult] | InputRequiredResult:
        device = await services.device(device_id)
        actuator = device.actuator(actuator_id)
        send_value = check_command(actuator, action, value)
        effect = _effect(device, actuator, action, send_value)
        policy = settings.actuator_policy.get((device_id, actuator_id))
        if action != "read":
            if settings.read_only:
                raise ToolError(
                    "this server is read-only (add-on option read_only): it reads devices but "
                    "does not change them; use action 'read' or ask the user to change it in "
                    "Home Assistant"
                )
            if policy == "deny":
                raise ToolError(
                    f"{actuator_id} on {device_id} may not be controlled by agents (add-on "
                    "option actuator_policy: deny); action 'read' still works"
                )
        if not device.online:
            raise ToolError(
                f"device {device_id} is offline (last seen {device.last_seen or 'never'}); "
                "it cannot receive commands now"
            )

        async def not_done(outcome: str) -> CallToolResult:
            """The user declined or cancelled, or nobody answered in time: nothing is sent, the
            logbook says so."""
            said = {
                "declined": "declined by the user",
                "expired": f"not approved in Home Assistant within {settings.confirm_ttl_s:g} s",
            }.get(outcome, f"{outcome} by the user")
            await logbook(ctx, device, actuator_id, f"{effect}: {said}")
            result = ControlResult(
                status=(
                    "declined"
                    if outcome == "declined"
                    else "expired"
                    if outcome == "expired"
                    else "cancelled"
                ),
                requested=send_value,
                effect=effect,
                device_id=device_id,
                actuator_id=actuator_id,
                action=action,
            )
            return _result(result, f"Not done: {said} ({effect}).")

        who = _principal(ctx)
        # The add-on's policy can only raise what the device asks for, never lower it.
        needs_confirmation = action != "read" and (
            policy == "confirm" or bool(actuator.get("requires_confirmation"))
        )
        if needs_confirmation:
            if confirm_token is not None:
                if not settings.confirm_token_fallback:
                    raise ToolError(
                        "confirm tokens are off (add-on option confirm_token_fallback); the "
                        "user has to confirm in a client that can ask them (elicitation)"
                    )
                try:
                    services.confirms.verify(
                        confirm_token, device_id, actuator_id, action, send_value, principal=who
                    )
                except ConfirmError as err:
                    raise ToolError(str(err)) from err
            elif _modern(ctx) and _supports_elicitation(ctx):
                # 2026-07-28: ask through an input_required round trip; the request_state is a
                # confirm token bound to these exact arguments (and sealed by the SDK).
                state, responses = ctx.request_state, ctx.input_responses
                if state is None or responses is None:
                    token, _ = services.confirms.issue(
                        device_id, actuator_id, action, send_value, principal=who
                    )
                    return InputRequiredResult(
                        input_requests={
                            "confirm": ElicitRequest(
                                params=ElicitRequestFormParams(
                                    message=f"Allow this? It will {effect}.",
                                    requested_schema=render_elicitation_schema(ConfirmAnswer),
                                )
                            )
                        },
                        request_state=token,
                    )
                try:
                    services.confirms.verify(
                        state, device_id, actuator_id, action, send_value, principal=who
                    )
                except ConfirmError as err:
                    raise ToolError(str(err)) from err
                outcome = _elicit_outcome(responses.get("confirm"))
                if outcome != "accepted":
                    return await not_done(outcome)
            else:
                outcome = await confirm_with_user(ctx, effect)
                if outcome in ("declined", "cancelled"):
                    return await not_done(outcome)
                if outcome == "unsupported" and settings.confirm_in_home_assistant:
                    outcome = await ask_in_home_assistant(ctx, effect)
                    if outcome != "approved":
                        return await not_done(outcome)
                elif outcome == "unsupported" and not settings.confirm_token_fallback:
                    await logbook(
                        ctx, device, actuator_id, f"{effect}: refused, the user could not be asked"
                    )
                    raise ToolError(
                        f"{actuator_id} on {device_id} needs the user's confirmation and this "
                        "MCP client cannot ask them (no elicitation support); nothing was done. "
                        "Use a client that supports elicitation, or the Home Assistant UI "
                        "(the add-on option confirm_token_fallback lets the agent confirm with "
                        "a token instead)"
                    )
                elif outcome == "unsupported":
                    token, expiry = services.confirms.issue(
                        device_id, actuator_id, action, send_value, principal=who
                    )
                    result = ControlResult(
                        status="confirmation_required",
                        requested=send_value,
                        effect=effect,
                        confirm_token=token,
                        expires_at=stats.iso(expiry),
                        device_id=device_id,
                        actuator_id=actuator_id,
                        action=action,
                    )
                    text = (
                        f"Confirmation required, nothing done yet: this will {effect}. "
                        "Ask the user; "
                        f"if they agree, call control_actuator again with the same arguments and "
                        f"confirm_token={token!r} (valid {settings.confirm_ttl_s:g} s, once)."
                    )
                    return _result(result, text)
        payload: dict[str, Any] = {"action": action}
        if action == "write":
            payload["value"] = send_value
        timeout = command_timeout(actuator.get("response_time_ms"), settings)
        await progress(ctx, 0, timeout, f"sent to {device_id}; waiting up to {timeout:g} s for it")
        try:
            reply = await services.mqtt.request(
                device_id, f"actuators/{actuator_id}/set", payload, timeout
            )
        except (BrokerUnavailable, DeviceTimeout) as err:
            await logbook(ctx, device, actuator_id, f"{effect}: failed ({err})")
            raise command_error(err) from err
        if not reply.ok:
            await logbook(
                ctx,
                device,
                actuator_id,
                f"{effect}: refused by the device ({reply.error_code})",
            )
            if reply.error_code == "expired":
                raise ToolError(
                    f"the command reached {device_id} after this server stopped waiting for "
                    "it, so the device did not run it; nothing was done. Send it again"
                )
            raise ToolError(
                f"device {device_id} refused: {reply.error_code}: {reply.error_message}"
            )
        acked = reply.result.get("value") if isinstance(reply.result, dict) else None
        rtt = round(reply.rtt_ms, 1)
        await logbook(
            ctx,
            device,
            actuator_id,
            f"{effect}: ok, device reports {_fmt(acked, actuator.get('unit'))} ({rtt:g} ms)",
        )
        # The device list stays cached: actuator states are read from Home Assistant itself
        # (get_device_info), so a command does not cost the next one a device lookup.
        result = ControlResult(
            status="done",
            value=acked,
            requested=send_value,
            rtt_ms=rtt,
            effect=effect,
            device_id=device_id,
            actuator_id=actuator_id,
            action=action,
        )
        text = f"Done: {effect}; device reports {_fmt(acked, actuator.get('unit'))} ({rtt:g} ms)."
        return _result(result, text)

    if settings.noop_tool:

        @server.tool(
            title="Do nothing",
            annotations=CONTROL,
            description="Takes control_actuator's arguments and does nothing (benchmarks).",
        )
        @tool_errors
        async def noop(
            *,
            device_id: DeviceId,
            actuator_id: Annotated[str, Field(description="actuator id")],
            ctx: Context,
            action: Literal["write", "toggle", "trigger", "read"] = "write",
            value: bool | int | float | str | None = None,
        ) -> Annotated[CallToolResult, ControlResult]:
            result = ControlResult(
                status="done",
                value=value,
                requested=value,
                effect=f"nothing ({action} {actuator_id} on {device_id})",
                device_id=device_id,
                actuator_id=actuator_id,
                action=action,
            )
            return _result(result, "Done: nothing.")

    async def ask_in_home_assistant(ctx: Context, effect: str) -> str:
        """approved / declined / expired, asked in Home Assistant (ha_confirm.py)."""

        async def note(done: float, total: float, message: str) -> None:
            await progress(ctx, done, total, message)

        try:
            return await services.home_confirm.ask(effect, _who(ctx), _link_base(ctx), note)
        except CannotAsk as err:
            raise ToolError(
                f"this needs the user's confirmation; the MCP client cannot ask them and Home "
                f"Assistant could not either ({err}); nothing was done"
            ) from err

    def _link_base(ctx: Context) -> str | None:
        """Where the user's browser reaches this server: public_url, else the Host of the
        tool call's HTTP request (None on stdio)."""
        if settings.public_url:
            return settings.public_url
        try:
            headers = ctx.headers
        except ValueError:
            return None
        host = (headers or {}).get("host")
        if not host:
            return None
        return f"{'https' if settings.tls_certfile else 'http'}://{host}"

    async def confirm_with_user(ctx: Context, effect: str) -> str:
        """accepted / declined / cancelled, or unsupported when the client cannot be asked."""
        if not _supports_elicitation(ctx):
            return "unsupported"
        try:
            answer = await asyncio.wait_for(
                ctx.elicit(f"Allow this? It will {effect}.", ConfirmAnswer),
                settings.confirm_ttl_s,
            )
        except Exception as err:  # timeout, a client error, no back channel: not confirmed
            _LOGGER.info("elicitation failed, not carried out: %s", type(err).__name__)
            return "cancelled"
        if answer.action == "accept":
            return "accepted" if answer.data.confirm else "declined"
        return "declined" if answer.action == "decline" else "cancelled"
