"""Config, options and reconfigure flows."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.esp_mcp_bridge.const import (
    CONF_ALL_DIAGNOSTICS,
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    DOMAIN,
)

from .conftest import BASE, DEVICE, Device


def _discovery(topic: str, payload: Any) -> MqttServiceInfo:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    return MqttServiceInfo(
        topic=topic,
        payload=payload,
        qos=1,
        retain=True,
        subscribed_topic=f"{BASE}/+/capabilities",
        timestamp=0,
    )


async def test_user_flow(hass: HomeAssistant, mqtt_mock: MqttMockHAClient) -> None:
    """The user enters a base topic; invalid ones are refused."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: "bad/#"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BASE_TOPIC: "invalid_base_topic"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: " site/bridge "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_BASE_TOPIC: "site/bridge"}
    assert result["result"].unique_id == "site/bridge"
    await hass.async_block_till_done()


async def test_user_flow_one_entry_per_base_topic(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """A base topic that is configured already aborts."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: BASE}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_without_mqtt(hass: HomeAssistant) -> None:
    """Without the MQTT integration the flow aborts."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "mqtt_not_configured"


async def test_mqtt_discovery_flow(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, caps: dict[str, Any]
) -> None:
    """A retained capabilities message starts a confirm step for its base topic."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=_discovery(f"{BASE}/{DEVICE}/capabilities", caps),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"]["name"] == "Greenhouse"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_BASE_TOPIC: BASE}
    await hass.async_block_till_done()
    # A second device on the same base topic does not start another entry.
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=_discovery(f"{BASE}/esp32-other/capabilities", dict(caps, device_id="esp32-other")),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (f"{BASE}/{DEVICE}/capabilities", ""),
        (f"{BASE}/{DEVICE}/capabilities", "{not json"),
        (f"{BASE}/{DEVICE}/capabilities", {"v": 2, "device_id": DEVICE}),
        (f"{BASE}/other-id/capabilities", {"v": 1, "device_id": DEVICE}),
        (f"{BASE}/{DEVICE}/status", "online"),
        (f"/{DEVICE}/capabilities", {"v": 1, "device_id": DEVICE}),
        (f"a+b/{DEVICE}/capabilities", {"v": 1, "device_id": DEVICE}),
    ],
)
async def test_mqtt_discovery_invalid(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, topic: str, payload: Any
) -> None:
    """Invalid discovery messages abort without an entry."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=_discovery(topic, payload)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_options_flow_reloads(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Options change the offline timeout and takeover; the entry reloads."""
    manager_before = loaded.runtime_data
    result = await hass.config_entries.options.async_init(loaded.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_OFFLINE_TIMEOUT: 120, CONF_TAKE_OVER: False, CONF_ALL_DIAGNOSTICS: True},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded.options == {
        CONF_OFFLINE_TIMEOUT: 120,
        CONF_TAKE_OVER: False,
        CONF_ALL_DIAGNOSTICS: True,
    }
    manager = loaded.runtime_data
    assert manager is not manager_before
    assert manager.offline_timeout == 120
    assert manager.take_over is False
    assert manager.all_diagnostics is True


async def test_reconfigure_flow(
    hass: HomeAssistant, loaded: MockConfigEntry, mqtt_mock: MqttMockHAClient
) -> None:
    """Reconfigure changes the base topic (and unique id); conflicts abort."""
    other = MockConfigEntry(domain=DOMAIN, data={CONF_BASE_TOPIC: "taken"}, unique_id="taken")
    other.add_to_hass(hass)
    result = await loaded.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: "#"}
    )
    assert result["errors"] == {CONF_BASE_TOPIC: "invalid_base_topic"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: "taken"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    result = await loaded.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: "home/esp"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded.data[CONF_BASE_TOPIC] == "home/esp"
    assert loaded.unique_id == "home/esp"
    assert loaded.runtime_data.base_topic == "home/esp"


async def test_reconfigure_keeps_the_base_topic_of_an_entry_with_devices(
    hass: HomeAssistant, adopted: MockConfigEntry, device: Device
) -> None:
    """A new base topic would orphan the devices of the old one: refused, nothing sent."""
    sent = len(device.published)
    result = await adopted.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: "home/esp"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "base_topic_in_use"
    assert result["description_placeholders"] == {"base_topic": BASE, "count": "1"}
    assert adopted.data[CONF_BASE_TOPIC] == BASE
    assert adopted.unique_id == BASE
    assert adopted.runtime_data.base_topic == BASE
    assert len(device.published) == sent
    # The same base topic is accepted (it only reloads the entry).
    result = await adopted.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: BASE}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert adopted.data[CONF_BASE_TOPIC] == BASE


async def test_reconfigure_forgets_removed_devices_of_the_old_base_topic(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """Removed device ids belong to the old base topic: a new one starts without them."""
    hass.config_entries.async_update_entry(
        loaded, data={**loaded.data, "removed_devices": [DEVICE]}
    )
    result = await loaded.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: "home/esp"}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded.data == {CONF_BASE_TOPIC: "home/esp"}
