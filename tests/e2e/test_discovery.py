"""Plain MQTT discovery without this integration, then the integration's takeover.

A stack of its own: a fresh device (discovery mode ``mqtt``) and a Home Assistant that
first has only the MQTT integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import time
from typing import Any

from e2e_support import MqttObserver, make_state_dir
import pytest

from harness import Broker, HomeAssistant, VirtualDevices, integration_available
from harness._process import async_wait_until
from harness.ha_client import HaClient

DEVICE = "plain-lamp"
DISCOVERY_TOPIC = f"homeassistant/device/{DEVICE}/config"
LED_SET = f"mcp_bridge/{DEVICE}/actuators/led/set"
LED_STATE = f"mcp_bridge/{DEVICE}/actuators/led/state"


@dataclass
class Plain:
    broker: Broker
    hass: HomeAssistant
    device: VirtualDevices
    observer: MqttObserver


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plain]:
    state = make_state_dir(tmp_path_factory, "plain")
    with Broker(state, username="plain", password="plain-pw-1", log_name="mosquitto") as broker:
        observer = MqttObserver(broker, "mcp_bridge/#", "homeassistant/#", client_id="plain-obs")
        try:
            with (
                VirtualDevices(broker, "lamp", DEVICE, state) as device,
                HomeAssistant(state, with_integration=False) as hass,
            ):
                hass.setup_mqtt(broker)
                yield Plain(broker, hass, device, observer)
        finally:
            observer.close()


async def _registry(ha: HaClient) -> list[dict[str, Any]]:
    return [e for e in await ha.entity_registry() if str(e.get("unique_id", "")).startswith(DEVICE)]


async def test_plain_mqtt_discovery_then_takeover(plain: Plain) -> None:
    # 1. Only HA's MQTT integration: the device's discovery message gives working entities.
    async with plain.hass.client() as ha:

        async def mqtt_entities() -> bool:
            uids = {e["unique_id"] for e in await _registry(ha) if e["platform"] == "mqtt"}
            return {f"{DEVICE}_led", f"{DEVICE}_brightness"} <= uids

        await async_wait_until(mqtt_entities, 30, "MQTT entities from the device's discovery")
        by_uid = {e["unique_id"]: e for e in await _registry(ha)}
        mqtt_light = by_uid[f"{DEVICE}_led"]["entity_id"]
        # A light under MQTT discovery as under the integration (one platform table).
        assert mqtt_light.startswith("light.")
        assert {e["platform"] for e in by_uid.values()} == {"mqtt"}
        await ha.wait_state(mqtt_light, "off", within=30)

        since = time.time()
        await ha.call_service("light", "turn_on", {"entity_id": mqtt_light})
        command = plain.observer.wait_for(LED_SET, since=since)
        assert command.json()["value"] is True
        # The virtual device acted on it and reports the new state, which HA shows.
        plain.observer.wait_for(LED_STATE, lambda m: m.json()["value"] is True, since=since)
        await ha.wait_state(mqtt_light, "on", within=15)
        since = time.time()
        await ha.call_service("light", "turn_off", {"entity_id": mqtt_light})
        plain.observer.wait_for(LED_STATE, lambda m: m.json()["value"] is False, since=since)
        await ha.wait_state(mqtt_light, "off", within=15)

    if not integration_available():
        pytest.fail("custom_components/esp_mcp_bridge is missing")

    # 2. Install this integration (restart HA with it) and accept its discovery flow.
    plain.hass.stop()
    plain.hass.with_integration = True
    since = time.time()
    plain.hass.start()
    plain.hass.setup_integration("mcp_bridge", prefer_discovery=True)

    # The integration asks the device to drop its MQTT discovery message ...
    plain.observer.wait_for(DISCOVERY_TOPIC, lambda m: m.payload == b"", since=since)
    # HA sends its birth message once its MQTT subscriptions are on the broker (before
    # that, the integration's subscription to the device's responses may still be pending).
    plain.observer.wait_for("homeassistant/status", lambda m: m.payload == b"online", since=since)
    async with plain.hass.client() as ha:
        # The integration's own unique ids (`D/id` on the default base topic).
        wanted = {f"{DEVICE}/led", f"{DEVICE}/brightness"}

        async def taken_over() -> bool:
            entries = await _registry(ha)
            platforms = {e["platform"] for e in entries}
            uids = {e["unique_id"] for e in entries if e["platform"] == "esp_mcp_bridge"}
            return platforms == {"esp_mcp_bridge"} and wanted <= uids

        await async_wait_until(taken_over, 30, "the integration's entities replacing MQTT's")
        # ... leaving exactly one set of entities and one device.
        entries = await _registry(ha)
        uids = [e["unique_id"] for e in entries]
        assert len(uids) == len(set(uids))
        assert sorted(u for u in uids if "/diag:" not in u) == sorted(wanted)
        devices = [
            d
            for d in await ha.device_registry()
            if any(ident[1] == DEVICE for ident in d["identifiers"])
        ]
        assert len(devices) == 1
        assert ["esp_mcp_bridge", DEVICE] in devices[0]["identifiers"]
        # After HA's restart the device re-published its states: nothing stays unknown.
        brightness = next(
            e["entity_id"] for e in entries if e["unique_id"] == f"{DEVICE}/brightness"
        )
        await ha.wait_state(brightness, {"128", "128.0"}, within=15)
        light = next(e["entity_id"] for e in entries if e["unique_id"] == f"{DEVICE}/led")
        await ha.wait_state(light, "off", within=15)
        # The takeover kept the entity id automations and dashboards refer to.
        assert light == mqtt_light
        since = time.time()
        await ha.call_service("light", "turn_on", {"entity_id": light})
        plain.observer.wait_for(LED_STATE, lambda m: m.json()["value"] is True, since=since)
        await ha.wait_state(light, "on", within=15)
