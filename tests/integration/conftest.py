"""Fixtures for the ESP32 MCP Bridge integration tests.

pytest-homeassistant-custom-component is loaded through its pytest entry point
(a `pytest_plugins` line in a non-root conftest is an error in current pytest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator
import copy
import json
from typing import Any
from unittest.mock import MagicMock, PropertyMock, patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.esp_mcp_bridge.const import (
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    DOMAIN,
)
import vectors

BASE = "mcp_bridge"
DEVICE = "esp32-a1b2c3"

type Handler = Callable[[str, dict[str, Any]], dict[str, Any] | None]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


def reference_caps() -> dict[str, Any]:
    """Capabilities of the shared reference device plus a relay (switch)."""
    caps = copy.deepcopy(vectors.reference_device()["capabilities"])
    caps["actuators"].append(
        {
            "id": "heater",
            "type": "relay",
            "name": "Heater",
            "value_type": "boolean",
            "actions": ["read", "write", "toggle"],
            "response_time_ms": 1000,
        }
    )
    return caps


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create entities that are disabled by default as enabled."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def caps() -> dict[str, Any]:
    """Capabilities used by default."""
    return reference_caps()


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Options of the test entry."""
    return {CONF_OFFLINE_TIMEOUT: 0, CONF_TAKE_OVER: True}


@pytest.fixture
def config_entry(entry_options: dict[str, Any]) -> MockConfigEntry:
    """The config entry for the default base topic."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"ESP32 MCP Bridge ({BASE})",
        data={CONF_BASE_TOPIC: BASE},
        options=entry_options,
        unique_id=BASE,
    )


class Device:
    """Plays a device on the mocked broker: answers commands that carry an id."""

    def __init__(self, hass: HomeAssistant, mqtt_mock: MqttMockHAClient) -> None:
        """Hook into the MQTT client's publish."""
        self.hass = hass
        self.mqtt_mock = mqtt_mock
        self.published: list[tuple[str, str]] = []
        self.retained: dict[str, bool] = {}  # topic -> retain flag of its last publish
        self.handler: Handler = self.default_handler
        self.values: dict[str, Any] = dict(vectors.reference_device()["initial"])
        self.values["heater"] = False
        # Like the firmware: on `set_discovery` clear or keep the discovery message and
        # re-publish the capabilities in the new mode.
        self.follow_discovery = True
        # The device's synchronised clock (epoch ms) when set: like the firmware, a
        # command received after its `deadline` is answered `expired` and not run.
        self.clock_ms: int | None = None
        # Off: the device switches to mode integration without clearing a discovery
        # message (a fresh device taken over during its hold-off never published one).
        self.clears_discovery = True
        # The (one-level) base topic whose commands this device answers.
        self.base = BASE
        # Like the broker: deliver an empty retained discovery message back to HA's own
        # discovery subscription, with retain 0 as for any live message to an existing
        # subscription (off by default: most tests play no broker).
        self.echo_discovery_clear = False
        mqtt_mock.async_publish.side_effect = self._publish

    def _switch_discovery(self, device_id: str, mode: str) -> None:
        entries = self.hass.config_entries.async_entries(DOMAIN)
        manager = getattr(entries[0], "runtime_data", None) if entries else None
        data = manager.devices.get(device_id) if manager is not None else None
        if data is None or data.capabilities is None:
            return
        if mode == "integration" and self.clears_discovery:
            async_fire_mqtt_message(self.hass, f"homeassistant/device/{device_id}/config", "")
        caps = dict(data.capabilities.raw) | {"discovery": mode}
        async_fire_mqtt_message(self.hass, f"{BASE}/{device_id}/capabilities", json.dumps(caps))

    async def _publish(
        self, topic: str, payload: Any, qos: int = 0, retain: bool = False, **kwargs: Any
    ) -> None:
        text = payload.decode() if isinstance(payload, bytes) else str(payload)
        self.published.append((topic, text))
        self.retained[topic] = retain
        cleared = retain and not text and topic.startswith("homeassistant/device/")
        if cleared and self.echo_discovery_clear:
            self.hass.loop.call_soon(async_fire_mqtt_message, self.hass, topic, "")
        if topic.startswith("homeassistant/"):
            # HA's MQTT integration clears discovery messages itself; on a real broker
            # that publish takes a few event-loop turns, not zero.
            for _ in range(5):
                await asyncio.sleep(0)
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != self.base or parts[-1] not in ("set", "cmd"):
            return
        try:
            body = json.loads(text)
        except ValueError:
            return
        deadline = body.get("deadline")
        expired = self.clock_ms is not None and deadline is not None and self.clock_ms > deadline
        if expired:
            response: dict[str, Any] | None = {
                "ok": False,
                "error": {"code": "expired", "message": "deadline passed: not run"},
            }
        else:
            if parts[-1] == "cmd" and body.get("cmd") == "set_discovery" and self.follow_discovery:
                self.hass.loop.call_soon(self._switch_discovery, parts[1], body["args"]["mode"])
            response = self.handler(topic, body) if "id" in body else None
        if response is None or "id" not in body:
            return
        response = {"id": body["id"], **response}
        device_id = parts[1]
        self.hass.loop.call_soon(
            async_fire_mqtt_message,
            self.hass,
            f"{self.base}/{device_id}/response",
            json.dumps(response),
        )

    def default_handler(self, topic: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Behave like the reference device for the common cases."""
        if topic.endswith("/set"):
            actuator = topic.split("/")[-2]
            action = body.get("action")
            if action == "write":
                self.values[actuator] = body["value"]
            elif action == "toggle":
                self.values[actuator] = not self.values[actuator]
            elif action == "trigger":
                return {"ok": True, "result": {"value": None}}
            return {"ok": True, "result": {"value": self.values.get(actuator)}}
        cmd = body.get("cmd")
        if cmd == "ping":
            return {"ok": True, "result": {"uptime_s": 42}}
        if cmd == "get_metrics":
            return {"ok": True, "result": {"uptime_s": 43, "free_heap": 1000, "rssi": -50}}
        return {"ok": True, "result": {}}

    def sent(self, suffix: str) -> list[dict[str, Any]]:
        """JSON payloads published to topics ending with `suffix`."""
        return [json.loads(p) for t, p in self.published if t.endswith(suffix)]

    def commands(self, suffix: str) -> list[dict[str, Any]]:
        """What `sent` returns without each command's own `id` and `deadline`."""
        return [
            {k: v for k, v in body.items() if k not in ("id", "deadline")}
            for body in self.sent(suffix)
        ]


@pytest.fixture
async def device(hass: HomeAssistant, mqtt_mock: MqttMockHAClient) -> Device:
    """A scripted device answering on the mocked broker."""
    return Device(hass, mqtt_mock)


@pytest.fixture(autouse=True)
def cancel_mqtt_misc_timer(request: pytest.FixtureRequest) -> Generator[None]:
    """Cancel the MQTT client's misc timer after tests that use the mocked broker."""
    hass = request.getfixturevalue("hass") if "mqtt_mock" in request.fixturenames else None
    yield
    if hass is not None:
        _cancel_mqtt_misc_timer(hass)


def _cancel_mqtt_misc_timer(hass: HomeAssistant) -> None:
    """The mocked MQTT socket never closes, so HA's 1 s misc timer would linger."""
    mqtt_data = hass.data.get("mqtt")
    client = getattr(mqtt_data, "client", None)
    timer = getattr(client, "_misc_timer", None)
    if timer is not None:
        timer.cancel()


def fire(hass: HomeAssistant, leaf: str, payload: Any, device_id: str = DEVICE) -> None:
    """Publish a device message (dicts are JSON encoded)."""
    if isinstance(payload, dict | list):
        payload = json.dumps(payload)
    async_fire_mqtt_message(hass, f"{BASE}/{device_id}/{leaf}", payload)


async def adopt(hass: HomeAssistant, caps: dict[str, Any], device_id: str = DEVICE) -> None:
    """Announce a device (status online + retained capabilities)."""
    fire(hass, "status", "online", device_id)
    fire(hass, "capabilities", caps, device_id)
    await hass.async_block_till_done()
    # A takeover adds the entities once the device has switched its discovery mode.
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
async def loaded(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    config_entry: MockConfigEntry,
    device: Device,
) -> AsyncGenerator[MockConfigEntry]:
    """Set up the entry (no device yet)."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    if (
        hass.config_entries.async_get_entry(config_entry.entry_id) is not None
        and config_entry.state is ConfigEntryState.LOADED
    ):
        await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
async def adopted(
    hass: HomeAssistant, loaded: MockConfigEntry, caps: dict[str, Any]
) -> MockConfigEntry:
    """Entry set up with the reference device adopted."""
    await adopt(hass, caps)
    return loaded


def publish_mock(mqtt_mock: MqttMockHAClient) -> MagicMock:
    """The mocked publish of the MQTT client."""
    mock: MagicMock = mqtt_mock.async_publish
    return mock


def find_device(hass: HomeAssistant, identifier: tuple[str, str]) -> dr.DeviceEntry | None:
    """The device registered with `identifier`, on both sides of HA's 2026 registry change.

    Since 2026.x identifiers are unique per config entry only and `async_get_device` is
    deprecated (the test plugin turns its use into an error); 2025.4 has only that.
    """
    registry = dr.async_get(hass)
    if hasattr(registry, "async_get_devices"):
        found: list[dr.DeviceEntry] = registry.async_get_devices(identifiers={identifier})
        return found[0] if found else None
    return registry.async_get_device(identifiers={identifier})


def device_ids(hass: HomeAssistant) -> set[str]:
    """Ids of every registered device (`devices` is a mapping on 2025.4, a collection since)."""
    registry = dr.async_get(hass)
    devices: Any = registry.devices
    if hasattr(registry, "async_get_devices"):
        return {d.id for d in devices}
    return set(devices)
