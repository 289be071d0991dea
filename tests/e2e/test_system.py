"""The three parts working together through real processes only.

Mosquitto, the virtual devices (firmware core), Home Assistant with MQTT and this
integration, and the MCP server, driven with the real MCP client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import math
import time
from typing import Any

from e2e_support import Message, MqttObserver, System

from harness import HarnessError
from harness._process import async_wait_until
from harness.ha_client import HaClient
from harness.mcp_client import McpSession, ToolResult, mcp_session


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


async def _device(ha: HaClient, device_id: str) -> dict[str, Any]:
    result = await ha.ws("esp_mcp_bridge/devices", device_id=device_id)
    devices: list[dict[str, Any]] = result["devices"]
    assert [d["device_id"] for d in devices] == [device_id]
    return devices[0]


async def _entity(ha: HaClient, device_id: str, kind: str, item: str) -> str:
    device = await _device(ha, device_id)
    entity_id = device["entities"][kind].get(item)
    assert isinstance(entity_id, str), f"no entity for {device_id} {kind}/{item}: {device}"
    return entity_id


def _published_values(observer: MqttObserver, device_id: str, sensor_id: str) -> list[float]:
    """Every value of one sensor the device published (single readings and batches)."""
    values: list[float] = []
    for msg in observer.messages(f"mcp_bridge/{device_id}/#"):
        if msg.topic.endswith(f"/sensors/{sensor_id}") and msg.payload:
            values.append(float(msg.json()["value"]))
        elif msg.topic.endswith("/batch") and msg.payload:
            values += [float(r["value"]) for r in msg.json()["readings"] if r["id"] == sensor_id]
    return values


def _close(a: float, b: float) -> bool:
    """Equal up to the 4 significant digits the MCP server rounds to."""
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-3)


def _has_id(request_id: str) -> Callable[[Message], bool]:
    def check(msg: Message) -> bool:
        return bool(msg.json().get("id") == request_id)

    return check


async def _call_ok(mcp: McpSession, tool: str, **args: Any) -> ToolResult:
    result = await mcp.call(tool, **args)
    assert not result.is_error, f"{tool}({args}) failed: {result.text}"
    return result


async def test_reading_to_entity_to_history_to_read_sensor(system: System) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    async with system.hass.client() as ha:
        entity_id = await _entity(ha, "greenhouse", "sensors", "temperature")

        # Readings become the entity's state: a numeric state equal to a published value.
        async def numeric_state() -> bool:
            state = await ha.state(entity_id)
            if state is None:
                return False
            try:
                value = float(state["state"])
            except ValueError:
                return False
            return any(
                _close(value, v)
                for v in _published_values(system.observer, "greenhouse", "temperature")
            )

        await async_wait_until(numeric_state, 30, f"{entity_id} to show a published reading")
        state = await ha.state(entity_id)
        assert state is not None
        assert state["attributes"]["unit_of_measurement"] == "°C"
        assert state["attributes"]["state_class"] == "measurement"

        # The recorder keeps them: wait for at least 4 readings in the history window.
        async def history_rows() -> list[float]:
            rows = await ha.history(entity_id, _iso(start), _iso(datetime.now(UTC)))
            out: list[float] = []
            for row in rows:
                try:
                    out.append(float(row["state"]))
                except ValueError:
                    continue
            return out

        async def enough() -> bool:
            return len(await history_rows()) >= 4

        await async_wait_until(enough, 40, "4 temperature readings in the recorder's history")
        end = datetime.now(UTC)
        published = _published_values(system.observer, "greenhouse", "temperature")
        for value in await history_rows():
            assert any(_close(value, p) for p in published), f"{value} was never published"

        # read_sensor over the same window returns the same statistics as the recorder.
        async with mcp_session(system.mcp.url, system.client_token) as mcp:
            checked: dict[str, Any] = {}

            async def recorded_window() -> dict[str, Any]:
                rows: dict[str, Any] = await ha.ws(
                    "history/history_during_period",
                    entity_ids=[entity_id],
                    start_time=_iso(start),
                    end_time=_iso(end),
                    minimal_response=True,
                    no_attributes=True,
                    significant_changes_only=False,
                    include_start_time_state=True,
                )
                return rows

            async def same_statistics() -> bool:
                before = await recorded_window()
                result = await _call_ok(
                    mcp,
                    "read_sensor",
                    device_id="greenhouse",
                    sensor_id="temperature",
                    start=_iso(start),
                    end=_iso(end),
                    points=200,
                )
                after = await recorded_window()
                if before != after:  # the recorder committed in between: ask again
                    return False
                values = []
                for row in after.get(entity_id, []):
                    try:
                        values.append(float(row["s"]))
                    except (KeyError, ValueError):
                        continue
                checked.update(result=result.data, values=values)
                return True

            await async_wait_until(same_statistics, 20, "a stable history window")
        data, values = checked["result"], checked["values"]
        stats = data["stats"]
        assert data["window"]["source"] == "history"
        assert stats["count"] == len(values) >= 4
        assert _close(stats["min"], min(values))
        assert _close(stats["max"], max(values))
        assert _close(stats["mean"], sum(values) / len(values))
        assert _close(stats["last"], values[-1])
        assert data["unit"] == "°C"
        assert len(data["series"]) == len(values)


async def test_control_actuator_reaches_device_and_ha_state(system: System) -> None:
    async with system.hass.client() as ha, mcp_session(system.mcp.url, system.client_token) as mcp:
        entity_id = await _entity(ha, "lamp", "actuators", "led")
        assert entity_id.startswith("light.")
        for wanted in (True, False, True):
            since = time.time()
            result = await _call_ok(
                mcp, "control_actuator", device_id="lamp", actuator_id="led", value=wanted
            )
            assert result.data["status"] == "done"
            assert result.data["value"] is wanted
            # On the wire: a write with an id, answered by the device with the same id.
            command = system.observer.wait_for("mcp_bridge/lamp/actuators/led/set", since=since)
            request = command.json()
            assert request["action"] == "write"
            assert request["value"] is wanted
            response = system.observer.wait_for(
                "mcp_bridge/lamp/response",
                _has_id(request["id"]),
                since=since,
            )
            assert response.json()["ok"] is True
            assert response.json()["result"]["value"] is wanted
            await ha.wait_state(entity_id, "on" if wanted else "off", within=15)


async def test_confirmation_required_then_done_and_logbook(system: System) -> None:
    since = time.time()
    started = datetime.now(UTC)
    async with system.hass.client() as ha, mcp_session(system.mcp.url, system.client_token) as mcp:
        entity_id = await _entity(ha, "greenhouse", "actuators", "valve")
        ask = await _call_ok(
            mcp, "control_actuator", device_id="greenhouse", actuator_id="valve", value=35
        )
        assert ask.data["status"] == "confirmation_required"
        token = ask.data["confirm_token"]
        assert token
        # The token is bound to the exact arguments.
        other = await mcp.call(
            "control_actuator",
            device_id="greenhouse",
            actuator_id="valve",
            value=90,
            confirm_token=token,
        )
        assert other.is_error
        assert system.observer.messages("mcp_bridge/greenhouse/actuators/valve/set", since) == []

        done = await _call_ok(
            mcp,
            "control_actuator",
            device_id="greenhouse",
            actuator_id="valve",
            value=35,
            confirm_token=token,
        )
        assert done.data["status"] == "done"
        assert done.data["value"] == 35
        # The device answered, so the set went out; the observer's copy may still be on its
        # way (a client of its own on the broker).
        valve_set = "mcp_bridge/greenhouse/actuators/valve/set"
        system.observer.wait_for(valve_set, since=since)
        sets = system.observer.messages(valve_set, since)
        assert [m.json()["value"] for m in sets] == [35]
        await ha.wait_state(entity_id, {"35", "35.0"}, within=15)

        # A token works once.
        again = await mcp.call(
            "control_actuator",
            device_id="greenhouse",
            actuator_id="valve",
            value=35,
            confirm_token=token,
        )
        assert again.is_error

        # The logbook records the command on the valve's entity.
        async def logged() -> bool:
            entries = await ha.logbook(_iso(started))
            return any(
                e.get("entity_id") == entity_id
                and e.get("domain") == "esp_mcp_bridge"
                and "to 35" in str(e.get("message", ""))
                and "ok" in str(e.get("message", ""))
                for e in entries
            )

        try:
            await async_wait_until(logged, 15, "a logbook entry for the valve command")
        except HarnessError as err:
            everything = await ha.logbook(_iso(started))
            raise HarnessError(f"{err}; logbook since the start: {everything}") from err


async def _mcp_online(mcp: McpSession, device_id: str) -> bool:
    result = await _call_ok(mcp, "list_devices")
    rows = {d["id"]: d for d in result.data["devices"]}
    return bool(rows[device_id]["online"])


async def test_sigkill_device_goes_unavailable_and_comes_back(system: System) -> None:
    node = system.devices["sensor-node"]
    async with system.hass.client() as ha, mcp_session(system.mcp.url, system.client_token) as mcp:
        pressure = await _entity(ha, "sensor-node", "sensors", "pressure")
        status = (await _device(ha, "sensor-node"))["entities"]["diagnostics"]["status"]
        await ha.wait_state(status, "on")
        assert await _mcp_online(mcp, "sensor-node")

        since = time.time()
        node.kill()
        # The broker publishes the last will.
        system.observer.wait_for(
            "mcp_bridge/sensor-node/status", lambda m: m.payload == b"offline", since=since
        )
        await ha.wait_state(pressure, "unavailable", within=20)
        await ha.wait_state(status, "off", within=20)

        async def offline_in_mcp() -> bool:
            return not await _mcp_online(mcp, "sensor-node")

        await async_wait_until(offline_in_mcp, 20, "sensor-node offline in list_devices")
        reading = await _call_ok(mcp, "read_sensor", device_id="sensor-node", sensor_id="pressure")
        assert reading.data["online"] is False
        offline = await mcp.call("list_devices", online=False)
        assert [d["id"] for d in offline.data["devices"]] == ["sensor-node"]

        node.start()
        await ha.wait_state(status, "on", within=30)

        async def available() -> bool:
            state = await ha.state(pressure)
            return state is not None and state["state"] not in ("unavailable", "unknown")

        await async_wait_until(available, 30, f"{pressure} available again")

        async def online_in_mcp() -> bool:
            return await _mcp_online(mcp, "sensor-node")

        await async_wait_until(online_in_mcp, 20, "sensor-node online in list_devices")


async def test_broker_restart_everything_reconnects(system: System) -> None:
    system.broker.restart()
    async with system.hass.client() as ha:
        entity_id = await _entity(ha, "lamp", "actuators", "led")

        async def all_online() -> bool:
            result = await ha.ws("esp_mcp_bridge/devices")
            return all(d["online"] for d in result["devices"]) and len(result["devices"]) >= len(
                system.devices
            )

        await async_wait_until(all_online, 60, "every device online again in HA")
        async with mcp_session(system.mcp.url, system.client_token) as mcp:
            # The MCP server's own MQTT connection comes back too: a command goes through.
            last: dict[str, str] = {}

            async def command_works() -> bool:
                result = await mcp.call(
                    "control_actuator", device_id="lamp", actuator_id="led", action="toggle"
                )
                last["text"] = result.text
                return not result.is_error and result.data.get("status") == "done"

            try:
                await async_wait_until(command_works, 60, "a command through the MCP server")
            except HarnessError as err:
                raise HarnessError(f"{err}; last answer: {last.get('text')}") from err
            # HA's MQTT connection is back as well: a command from HA reaches the device.
            await ha.call_service("light", "turn_on", {"entity_id": entity_id})
            await ha.wait_state(entity_id, "on", within=20)
            await ha.call_service("light", "turn_off", {"entity_id": entity_id})
            await ha.wait_state(entity_id, "off", within=20)
