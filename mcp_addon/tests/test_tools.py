"""Every tool through the real MCP client over streamable HTTP against the running server."""

from __future__ import annotations

import json
import math
from typing import Any

from addon_clients import USER_TOKEN, data, error_text, http_session
from addon_fakes import DeviceResponder, FakeHomeAssistant, wait_until
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import TextResourceContents
import pytest

from esp_mcp_server.actuators import check_command

TOOLS = {
    "list_devices",
    "read_sensor",
    "control_actuator",
    "get_device_info",
    "query_devices",
    "get_alerts",
    "get_metrics",
    "device_diagnostics",
}


async def test_tools_have_schemas_and_annotations(http_url: str) -> None:
    async with http_session(http_url) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert session.initialize_result is not None
        assert "control_actuator" in (session.initialize_result.instructions or "")
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.output_schema is not None, name
        assert tool.input_schema["type"] == "object"
        assert tool.description
        assert tool.annotations is not None
        if name == "control_actuator":
            assert tool.annotations.read_only_hint is False
            assert tool.annotations.destructive_hint is True
            # toggle and trigger act again on every call: not idempotent
            assert tool.annotations.idempotent_hint is False
        else:
            assert tool.annotations.read_only_hint is True, name
    assert set(tools["read_sensor"].input_schema["required"]) == {"device_id", "sensor_id"}
    # Listed compact: no generated titles, no `default: null` (an LLM reads these).
    listed = json.dumps([[t.input_schema, t.output_schema] for t in tools.values()])
    assert '"title"' not in listed
    assert '"default": null' not in listed


async def test_list_devices_filters_and_pages(http_url: str) -> None:
    async with http_session(http_url) as session:
        everything = data(await session.call_tool("list_devices", {}))
        online = data(await session.call_tool("list_devices", {"online": True}))
        temp = data(await session.call_tool("list_devices", {"capability": "temperature"}))
        area = data(await session.call_tool("list_devices", {"area": "living_room"}))
        page1 = data(await session.call_tool("list_devices", {"limit": 3}))
        page2 = data(
            await session.call_tool("list_devices", {"limit": 3, "cursor": page1["next_cursor"]})
        )
        bad = await session.call_tool("list_devices", {"cursor": "zz"})
    assert everything["total"] == 4
    assert everything["online"] == 3
    sensor_node = next(d for d in everything["devices"] if d["id"] == "sensor-node-1")
    assert sensor_node == {
        "id": "sensor-node-1",
        "name": "Sensor node",
        "online": False,
        "last_seen": sensor_node["last_seen"],
        "sensors": 2,
        "actuators": 1,
    }
    assert sensor_node["last_seen"].endswith("Z")
    assert {d["id"] for d in online["devices"]} == {"greenhouse-1", "lamp-1", "mute-1"}
    assert [d["id"] for d in temp["devices"]] == ["greenhouse-1"]
    assert [d["id"] for d in area["devices"]] == ["lamp-1"]
    assert len(page1["devices"]) == 3
    assert page1["next_cursor"] == "3"
    assert [d["id"] for d in page2["devices"]] == ["sensor-node-1"]
    assert "next_cursor" not in page2
    assert "cursor" in error_text(bad)


async def test_read_sensor_current(http_url: str) -> None:
    async with http_session(http_url) as session:
        result = await session.call_tool(
            "read_sensor", {"device_id": "greenhouse-1", "sensor_id": "temperature"}
        )
        unavailable = data(
            await session.call_tool(
                "read_sensor", {"device_id": "greenhouse-1", "sensor_id": "soil_moisture"}
            )
        )
    reading = data(result)
    assert reading["value"] == 21.5
    assert reading["unit"] == "°C"
    assert reading["quality"] == 95
    assert 4 <= reading["age_s"] < 120
    assert "stats" not in reading
    assert "series" not in reading
    text = result.content[0]
    assert text.type == "text"
    assert "21.5 °C" in text.text
    assert "value" not in unavailable
    assert unavailable["state"] == "unavailable"


async def test_read_sensor_window_history(http_url: str) -> None:
    async with http_session(http_url) as session:
        reading = data(
            await session.call_tool(
                "read_sensor",
                {
                    "device_id": "greenhouse-1",
                    "sensor_id": "temperature",
                    "window": "1h",
                    "points": 10,
                },
            )
        )
    assert reading["window"]["source"] == "history"
    stats = reading["stats"]
    assert stats["count"] >= 100
    assert stats["min"] >= 20
    assert stats["max"] <= 21.2
    assert stats["trend_per_hour"] == pytest.approx(1.2, abs=0.05)
    assert "last_change" in stats
    assert 2 <= len(reading["series"]) <= 10
    times = [p[0] for p in reading["series"]]
    assert times == sorted(times)


async def test_read_sensor_long_window_uses_statistics(
    http_url: str, fake_ha: FakeHomeAssistant
) -> None:
    async with http_session(http_url) as session:
        reading = data(
            await session.call_tool(
                "read_sensor",
                {"device_id": "greenhouse-1", "sensor_id": "temperature", "window": "7d"},
            )
        )
    assert reading["window"]["source"] == "statistics"
    assert reading["window"]["period"] == "hour"
    assert reading["stats"]["min"] == 19
    assert reading["stats"]["max"] == pytest.approx(26.75)
    assert len(reading["series"]) == 24
    assert any(c["type"] == "recorder/statistics_during_period" for c in fake_ha.ws_commands)


async def test_read_sensor_boolean_window(http_url: str) -> None:
    async with http_session(http_url) as session:
        reading = data(
            await session.call_tool(
                "read_sensor",
                {
                    "device_id": "sensor-node-1",
                    "sensor_id": "motion",
                    "start": "2h",
                },
            )
        )
    assert reading["value"] is False
    assert reading["online"] is False
    assert reading["stats"]["count"] == 3
    assert reading["stats"]["max"] == 1


async def test_read_sensor_enum_window_lists_changes(http_url: str) -> None:
    async with http_session(http_url) as session:
        reading = data(
            await session.call_tool(
                "read_sensor",
                {"device_id": "mute-1", "sensor_id": "mode", "window": "1h", "points": 2},
            )
        )
    assert reading["value"] == "manual"
    assert [state for _, state in reading["changes"]] == ["auto", "manual"]
    assert "stats" not in reading
    assert "series" not in reading


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"device_id": "greenhose-1", "sensor_id": "temperature"}, "did you mean: greenhouse-1"),
        ({"device_id": "greenhouse-1", "sensor_id": "temprature"}, "did you mean: temperature"),
        ({"device_id": "greenhouse-1", "sensor_id": "qqq"}, "known: humidity, soil_moisture"),
        (
            {"device_id": "greenhouse-1", "sensor_id": "temperature", "window": "1y"},
            "window '1y' not understood",
        ),
        (
            {"device_id": "greenhouse-1", "sensor_id": "temperature", "points": 1},
            "points",
        ),
    ],
)
async def test_read_sensor_errors(http_url: str, args: dict[str, Any], expected: str) -> None:
    async with http_session(http_url) as session:
        result = await session.call_tool("read_sensor", args)
    assert expected in error_text(result)


async def test_control_boolean_and_toggle(
    http_url: str, responder: DeviceResponder, fake_ha: FakeHomeAssistant
) -> None:
    before = len(fake_ha.logbook)
    async with http_session(http_url) as session:
        on = data(
            await session.call_tool(
                "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": True}
            )
        )
        toggled = data(
            await session.call_tool(
                "control_actuator",
                {"device_id": "lamp-1", "actuator_id": "led", "action": "toggle"},
            )
        )
    assert on["status"] == "done"
    assert on["value"] is True
    assert on["rtt_ms"] > 0
    assert toggled["value"] is False
    sent = responder.commands("lamp-1")[-2:]
    assert sent[0]["action"] == "write"
    assert sent[0]["value"] is True
    assert sent[0]["id"]
    assert sent[1]["action"] == "toggle"
    wait_until(lambda: len(fake_ha.logbook) >= before + 2, what="two logbook entries")
    entries = fake_ha.logbook[before:]
    assert len(entries) == 2
    assert entries[0]["data"]["entity_id"] == "light.lamp_1_led"
    assert entries[0]["data"]["domain"] == "esp_mcp_bridge"
    assert "ok" in entries[0]["data"]["message"]
    assert entries[0]["token"] == USER_TOKEN


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"device_id": "lamp-1", "actuator_id": "brightness", "value": 300}, "range 0..255"),
        ({"device_id": "lamp-1", "actuator_id": "led", "action": "trigger"}, "supported"),
        ({"device_id": "lamp-1", "actuator_id": "led", "value": "blue"}, "true or false"),
        ({"device_id": "lamp-1", "actuator_id": "led"}, "needs a value"),
        ({"device_id": "lamp-1", "actuator_id": "lde", "value": True}, "did you mean: led"),
        ({"device_id": "greenhouse-1", "actuator_id": "valve", "value": 52}, "nearest: 50 or 55"),
        ({"device_id": "sensor-node-1", "actuator_id": "buzzer", "action": "trigger"}, "offline"),
        ({"device_id": "lamp-1", "actuator_id": "brightness", "value": 10}, "refused: busy"),
    ],
)
async def test_control_rejections(
    http_url: str, responder: DeviceResponder, args: dict[str, Any], expected: str
) -> None:
    device = args["device_id"]
    before = len(responder.commands(device))
    async with http_session(http_url) as session:
        result = await session.call_tool("control_actuator", args)
    assert expected in error_text(result)
    reached_device = expected == "refused: busy"
    assert len(responder.commands(device)) == before + (1 if reached_device else 0)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "actuator",
    [
        {"id": "level", "value_type": "number", "min": 0, "max": 100, "step": 5},
        {"id": "level", "value_type": "number", "min": 0, "max": 255},
        {"id": "level", "value_type": "number"},
    ],
)
def test_non_finite_numbers_refused(actuator: dict[str, Any], number: float) -> None:
    """NaN passes every range comparison and round(nan) raises: refuse before either."""
    with pytest.raises(ToolError, match="finite number"):
        check_command(actuator, "write", number)
    with pytest.raises(ToolError, match="finite number"):
        check_command(actuator, "write", str(number))


async def test_control_timeout_is_reported_and_logged(
    http_url: str, responder: DeviceResponder, fake_ha: FakeHomeAssistant
) -> None:
    before = len(fake_ha.logbook)
    async with http_session(http_url) as session:
        result = await session.call_tool(
            "control_actuator", {"device_id": "mute-1", "actuator_id": "relay", "value": True}
        )
        still_serving = await session.call_tool("list_devices", {"limit": 1})
    assert "did not answer within 1.0 s" in error_text(result)
    assert responder.commands("mute-1")[-1]["value"] is True
    wait_until(lambda: len(fake_ha.logbook) > before, what="the logbook entry")
    assert "failed" in fake_ha.logbook[before]["data"]["message"]
    assert not still_serving.is_error


async def test_get_device_info(http_url: str) -> None:
    async with http_session(http_url) as session:
        info = data(await session.call_tool("get_device_info", {"device_id": "greenhouse-1"}))
    assert info["firmware"] == "1.2.0"
    assert info["model"] == "ESP32-S3"
    valve = info["actuators"][0]
    assert valve["entity_id"] == "number.greenhouse_1_valve"
    assert valve["requires_confirmation"] is True
    assert (valve["min"], valve["max"], valve["step"]) == (0, 100, 5)
    temp = info["sensors"][0]
    assert temp["entity_id"] == "sensor.greenhouse_1_temperature"
    assert temp["accuracy"] == 0.5
    assert info["diagnostics"] == {"free_heap": "sensor.greenhouse_1_free_heap"}
    assert info["health"]["rssi"] == -60
    assert valve["state"] == 35
    assert 9 <= valve["state_age_s"] <= 60


async def test_get_device_info_actuator_states_and_device_text(http_url: str) -> None:
    """Current actuator states from HA with their age; text the device wrote is one line, cut
    to length, and quoted in the summary; the structured result is also there as JSON text."""
    async with http_session(http_url) as session:
        result = await session.call_tool("get_device_info", {"device_id": "lamp-1"})
    info = data(result)
    led, brightness = info["actuators"]
    assert led["state"] is True
    assert 2 <= led["state_age_s"] <= 60
    assert "state" not in brightness
    assert brightness["state_unavailable"] == "unavailable"
    assert len(led["description"]) <= 200
    assert "\n" not in led["description"]
    assert led["description"].endswith("…")
    summary, serialised = result.content
    assert summary.type == "text"
    assert serialised.type == "text"
    assert 'lamp-1 ("Desk lamp"), online, fw "1.0.0"' in summary.text
    assert "led=true" in summary.text
    assert json.loads(serialised.text) == info


async def test_tool_list_is_small(http_url: str) -> None:
    """Agents pay for the tool list in every conversation: at most 12,000 bytes of JSON."""
    async with http_session(http_url) as session:
        listed = await session.list_tools()
    body = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
    size = len(json.dumps(body, separators=(",", ":")).encode())
    assert size <= 12000, size
    control = next(t for t in body["tools"] if t["name"] == "control_actuator")
    assert control["inputSchema"]["properties"]["action"]["enum"] == [
        "write",
        "toggle",
        "trigger",
        "read",
    ]
    assert "confirm_token" in control["description"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"sensor_type": "temperature"}, {"greenhouse-1": ["sensor:temperature"]}),
        ({"actuator_type": "led"}, {"lamp-1": ["actuator:led"]}),
        ({"text": "irrigation"}, {"greenhouse-1": ["actuator:valve"]}),
        (
            {"value_type": "boolean", "online": True},
            {"lamp-1": ["actuator:led"], "mute-1": ["actuator:relay"]},
        ),
        ({"sensor_type": "temperature", "actuator_type": "led"}, {}),
    ],
)
async def test_query_devices(
    http_url: str, args: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    async with http_session(http_url) as session:
        found = data(await session.call_tool("query_devices", args))
    assert {d["id"]: d["matched"] for d in found["devices"]} == expected
    assert found["total"] == len(expected)


async def test_get_alerts(http_url: str) -> None:
    async with http_session(http_url) as session:
        every = data(await session.call_tool("get_alerts", {}))
        severe = data(await session.call_tool("get_alerts", {"min_severity": 2}))
        recent = data(await session.call_tool("get_alerts", {"since": "1h"}))
        limited = data(await session.call_tool("get_alerts", {"limit": 1}))
        none = data(await session.call_tool("get_alerts", {"device_id": "lamp-1"}))
        unknown = await session.call_tool("get_alerts", {"device_id": "lamp-9"})
    assert [a["type"] for a in every["alerts"]] == ["sensor_read", "wifi"]
    assert every["by_severity"] == {"2": 1, "1": 1}
    assert [a["type"] for a in severe["alerts"]] == ["sensor_read"]
    assert [a["type"] for a in recent["alerts"]] == ["sensor_read"]
    assert limited["count"] == 1
    assert none == {"alerts": [], "count": 0}
    assert "did you mean: lamp-1" in error_text(unknown)


async def test_get_metrics_system_and_device(http_url: str, responder: DeviceResponder) -> None:
    async with http_session(http_url) as session:
        await session.call_tool(
            "control_actuator", {"device_id": "lamp-1", "actuator_id": "led", "value": False}
        )
        system = data(await session.call_tool("get_metrics", {}))
        device = data(await session.call_tool("get_metrics", {"device_id": "greenhouse-1"}))
        live = data(
            await session.call_tool("get_metrics", {"device_id": "greenhouse-1", "live": True})
        )
        offline = await session.call_tool(
            "get_metrics", {"device_id": "sensor-node-1", "live": True}
        )
    assert system["scope"] == "system"
    assert system["devices_total"] == 4
    assert system["devices_online"] == 3
    assert system["messages_per_min"] == 24
    assert system["alerts_last_hour"] == 1
    assert system["server"]["sent"] >= 1
    assert system["server"]["broker_connected"] is True
    assert system["server"]["rtt_ms"]["max"] > 0
    assert device["metrics"]["free_heap"] == 150000
    assert "live" not in device
    assert live["live"] is True
    assert live["metrics"]["free_heap"] == 149000
    assert responder.commands("greenhouse-1")[-1]["cmd"] == "get_metrics"
    assert "offline" in error_text(offline)


async def test_device_diagnostics(http_url: str, responder: DeviceResponder) -> None:
    async with http_session(http_url) as session:
        greenhouse = data(
            await session.call_tool("device_diagnostics", {"device_id": "greenhouse-1"})
        )
        lamp = data(await session.call_tool("device_diagnostics", {"device_id": "lamp-1"}))
        node = data(await session.call_tool("device_diagnostics", {"device_id": "sensor-node-1"}))
    checks = {f["check"]: f for f in greenhouse["findings"]}
    assert checks["ping"]["status"] == "ok"
    assert greenhouse["ping_ms"] > 0
    assert checks["rssi"]["status"] == "ok"
    assert checks["alerts"]["status"] == "warn"
    assert "soil_moisture" in checks["sensors"]["detail"]
    assert "humidity" not in checks["sensors"]["detail"]
    assert "trend +0 B/h" in checks["heap"]["detail"]
    assert greenhouse["verdict"] == "degraded"
    assert lamp["verdict"] == "unhealthy"
    assert {f["check"]: f["status"] for f in lamp["findings"]}["rssi"] == "fail"
    assert node["verdict"] == "offline"
    assert {f["check"]: f["status"] for f in node["findings"]}["ping"] == "skip"
    wait_until(
        lambda: any(c.get("cmd") == "ping" for c in responder.commands("greenhouse-1")),
        what="the ping to reach the device",
    )


async def test_resources_and_prompt(http_url: str) -> None:
    async with http_session(http_url) as session:
        resources = await session.list_resources()
        templates = await session.list_resource_templates()
        listing = await session.read_resource("esp-mcp://devices")
        caps = await session.read_resource("esp-mcp://devices/greenhouse-1/capabilities")
        prompts = await session.list_prompts()
        prompt = await session.get_prompt("diagnose_device", {"device_id": "greenhouse-1"})
        with pytest.raises(Exception, match="did you mean: greenhouse-1"):
            await session.read_resource("esp-mcp://devices/greenhose-1/capabilities")
    assert [str(r.uri) for r in resources.resources] == ["esp-mcp://devices"]
    assert [t.uri_template for t in templates.resource_templates] == [
        "esp-mcp://devices/{device_id}/capabilities",
        "esp-mcp://devices/{device_id}/sensors/{sensor_id}",
        "esp-mcp://devices/{device_id}/actuators/{actuator_id}",
    ]
    first = listing.contents[0]
    assert isinstance(first, TextResourceContents)
    assert first.mime_type == "application/json"
    assert [d["id"] for d in json.loads(first.text)][:2] == ["greenhouse-1", "lamp-1"]
    assert isinstance(caps.contents[0], TextResourceContents)
    assert json.loads(caps.contents[0].text)["fw"] == "1.2.0"
    assert [p.name for p in prompts.prompts] == ["diagnose_device"]
    message = prompt.messages[0].content
    assert "device_diagnostics" in getattr(message, "text", "")
