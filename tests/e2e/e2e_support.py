"""Helpers for the end-to-end tests: an MQTT observer and polling helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import json
from pathlib import Path
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from harness import Broker, HarnessError, HomeAssistant, McpServer, VirtualDevices, wait_until


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    received: float

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttObserver:
    """A paho client that records every message on its subscriptions (thread-safe)."""

    def __init__(self, broker: Broker, *topics: str, client_id: str = "e2e-observer") -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._connected = threading.Event()
        self._topics = topics or ("#",)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.ca_file is not None:
            self.client.tls_set(ca_certs=str(broker.ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        wait_until(self._connected.is_set, 10, "the MQTT observer to connect")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        for topic in self._topics:
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Message(msg.topic, bytes(msg.payload), msg.retain, time.time()))

    def messages(self, topic: str | None = None, since: float = 0.0) -> list[Message]:
        with self._lock:
            return [
                m
                for m in self._messages
                if (topic is None or mqtt.topic_matches_sub(topic, m.topic)) and m.received >= since
            ]

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Message], bool] = lambda m: True,
        timeout: float = 15.0,
        since: float = 0.0,
    ) -> Message:
        found: list[Message] = []

        def check() -> bool:
            found[:] = [m for m in self.messages(topic, since) if predicate(m)]
            return bool(found)

        try:
            wait_until(check, timeout, f"an MQTT message on {topic}")
        except HarnessError as err:
            seen = [(m.topic, m.payload[:120]) for m in self.messages(topic, since)][-5:]
            raise HarnessError(f"{err}; seen: {seen}") from err
        return found[0]

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# Log folders whose tails a failing test prints (filled by the fixtures).
LOG_DIRS: list[Path] = []


def make_state_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A state folder for a stack of processes; its logs are shown when a test fails."""
    path = tmp_path_factory.mktemp(name)
    LOG_DIRS.append(path / "logs")
    return path


@dataclass(frozen=True)
class System:
    """Everything running, with the integration set up and the MCP server started."""

    hass: HomeAssistant
    broker: Broker
    devices: dict[str, VirtualDevices]
    mcp: McpServer
    client_token: str
    observer: MqttObserver
