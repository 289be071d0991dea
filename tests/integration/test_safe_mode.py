"""A device in safe mode (protocol section 14) is a repair issue, and says so in its views."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.esp_mcp_bridge.const import DOMAIN

from .conftest import DEVICE, adopt, find_device


def _issue(hass: HomeAssistant, entry: MockConfigEntry, device_id: str = DEVICE) -> Any:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{entry.entry_id}_safe_mode_{device_id}")


async def _ws_device(hass: HomeAssistant, hass_ws_client: Any) -> dict[str, Any]:
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": f"{DOMAIN}/devices", "device_id": DEVICE})
    msg = await client.receive_json()
    assert msg["success"], msg
    (device,) = msg["result"]["devices"]
    result: dict[str, Any] = device
    return result


async def test_safe_mode_issue_views_and_recovery(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    caps: dict[str, Any],
    hass_ws_client: Any,
    hass_client: ClientSessionGenerator,
) -> None:
    """safe_mode true: an issue, true in the WebSocket and diagnostics; normal caps clear it."""
    assert await async_setup_component(hass, "diagnostics", {})
    await adopt(hass, caps | {"safe_mode": True})
    issue = _issue(hass, loaded)
    assert issue is not None
    assert issue.translation_key == "safe_mode"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"device_id": DEVICE, "name": "Greenhouse"}
    # Its entities stay: the device keeps its registrations in safe mode.
    assert hass.states.get("sensor.greenhouse_temperature") is not None
    assert (await _ws_device(hass, hass_ws_client))["safe_mode"] is True
    entry_diag = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    assert entry_diag["devices"][0]["safe_mode"] is True
    ha_device = find_device(hass, (DOMAIN, DEVICE))
    assert ha_device is not None
    device_diag = await get_diagnostics_for_device(hass, hass_client, loaded, ha_device)
    assert device_diag["device"]["safe_mode"] is True

    # The next (normal) restart: capabilities without safe_mode.
    await adopt(hass, caps | {"discovery": "integration"})
    assert _issue(hass, loaded) is None
    assert (await _ws_device(hass, hass_ws_client))["safe_mode"] is False
    device_diag = await get_diagnostics_for_device(hass, hass_client, loaded, ha_device)
    assert device_diag["device"]["safe_mode"] is False


async def test_safe_mode_issue_is_per_device(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Only the device in safe mode has the issue."""
    await adopt(hass, caps | {"safe_mode": True})
    await adopt(hass, caps | {"device_id": "esp32-0002", "name": "Shed"}, "esp32-0002")
    assert _issue(hass, loaded) is not None
    assert _issue(hass, loaded, "esp32-0002") is None


async def test_safe_mode_issue_removed_with_the_device(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any], hass_ws_client: Any
) -> None:
    """Removing the device from HA removes its issue."""
    assert await async_setup_component(hass, "config", {})
    await adopt(hass, caps | {"safe_mode": True})
    assert _issue(hass, loaded) is not None
    ha_device = find_device(hass, (DOMAIN, DEVICE))
    assert ha_device is not None
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": loaded.entry_id,
            "device_id": ha_device.id,
        }
    )
    msg = await client.receive_json()
    assert msg["success"], msg
    await hass.async_block_till_done()
    assert _issue(hass, loaded) is None


async def test_safe_mode_issue_removed_with_the_entry(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> None:
    """Removing the config entry removes its issues."""
    await adopt(hass, caps | {"safe_mode": True})
    assert _issue(hass, loaded) is not None
    await hass.config_entries.async_remove(loaded.entry_id)
    await hass.async_block_till_done()
    assert _issue(hass, loaded) is None
