"""Each tool family is a module of its own that registers on any server; build_server composes
them all."""

from __future__ import annotations

from types import ModuleType

import pytest

from esp_mcp_server import actuators, devices, health, sensors
from esp_mcp_server.config import Settings
from esp_mcp_server.server import INSTRUCTIONS, BridgeServer, build_server
from esp_mcp_server.services import Services

FAMILIES: list[tuple[ModuleType, set[str], set[str]]] = [
    (
        devices,
        {"list_devices", "get_device_info", "query_devices"},
        {"esp-mcp://devices"},
    ),
    (sensors, {"read_sensor"}, set()),
    (actuators, {"control_actuator"}, set()),
    (health, {"get_alerts", "get_metrics", "device_diagnostics"}, set()),
]


def services() -> Services:
    """Nothing is connected: registering tools needs no Home Assistant and no broker."""
    return Services(Settings(ha_token="unused"))


@pytest.mark.parametrize(("family", "tools", "resources"), FAMILIES)
async def test_family_registers_alone(
    family: ModuleType, tools: set[str], resources: set[str]
) -> None:
    server = BridgeServer(name="one-family", instructions=INSTRUCTIONS)
    family.register(server, services())
    assert {t.name for t in await server.list_tools()} == tools
    assert {str(r.uri) for r in await server.list_resources()} == resources


async def test_build_server_composes_every_family() -> None:
    server = build_server(services())
    listed = {t.name for t in await server.list_tools()}
    assert listed == set().union(*(tools for _, tools, _ in FAMILIES))
    assert [p.name for p in await server.list_prompts()] == ["diagnose_device"]


def test_fixed_lists_carry_cache_hints() -> None:
    """Clients of protocol 2026-07-28 may reuse the tool, prompt and template lists for an
    hour, across callers; the device list changes and is announced, never to be reused."""
    hints = build_server(services())._lowlevel_server.cache_hints
    for method in ("tools/list", "prompts/list", "resources/templates/list"):
        assert (hints[method].ttl_ms, hints[method].scope) == (3_600_000, "public")
    assert "resources/list" not in hints
