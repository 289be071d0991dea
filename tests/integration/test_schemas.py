"""The integration's voluptuous schemas on both ends of the supported range.

Since 2026.x Home Assistant validates with probatio and makes `import voluptuous`
resolve to probatio's voluptuous-compatible shim (`install_as_voluptuous()` in
`homeassistant/__init__.py`, before anything imports voluptuous); its flow manager and
service layer catch `probatio.Invalid`. The design's voluptuous schemas stay: on
2026.x they are probatio schemas, on 2025.4 plain voluptuous ones.
"""

from __future__ import annotations

import importlib.util

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.esp_mcp_bridge import config_flow, services, websocket
from custom_components.esp_mcp_bridge.const import DOMAIN

from .conftest import DEVICE

HAS_PROBATIO = importlib.util.find_spec("probatio") is not None


@pytest.mark.skipif(not HAS_PROBATIO, reason="this Home Assistant validates with voluptuous")
def test_voluptuous_is_probatio_where_ha_uses_it() -> None:
    """Our modules' `vol` is the shim, so HA catches what our schemas raise."""
    import probatio  # noqa: PLC0415

    for module in (config_flow, services, websocket):
        assert module.vol.Schema is probatio.Schema, module.__name__
        assert issubclass(module.vol.Invalid, probatio.Invalid), module.__name__


async def test_invalid_service_data_is_an_error_not_a_crash(
    hass: HomeAssistant, adopted: MockConfigEntry
) -> None:
    """A value outside a schema's range is refused by HA with the schema's message."""
    with pytest.raises((vol.Invalid, HomeAssistantError)) as err:
        await hass.services.async_call(
            DOMAIN,
            "set_streaming",
            {"device_id": DEVICE, "sensor": "temperature", "enable": True, "interval_ms": -5},
            blocking=True,
        )
    assert "interval_ms" in str(err.value)
