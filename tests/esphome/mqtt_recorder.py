"""An MQTT client that records everything on the broker and waits on conditions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import itertools
import json
import threading
from typing import Any
import uuid

import paho.mqtt.client as mqtt


@dataclass(frozen=True)
class Message:
    index: int
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    def __init__(self, host: str, port: int) -> None:
        self._cond = threading.Condition()
        self.messages: list[Message] = []
        self._subscribed = threading.Event()
        self._ids = itertools.count(1)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"esphome-test-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the recorder did not subscribe")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Message(len(self.messages), msg.topic, msg.payload, msg.retain))
            self._cond.notify_all()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def mark(self) -> int:
        """Index of the next message: wait_for(after=mark) sees only what came later."""
        with self._cond:
            return len(self.messages)

    def find(
        self, topic: str, where: Callable[[Message], bool] = lambda m: True, after: int = 0
    ) -> list[Message]:
        with self._cond:
            return [m for m in self.messages[after:] if m.topic == topic and where(m)]

    def wait_for(
        self,
        topic: str,
        where: Callable[[Message], bool] = lambda m: True,
        after: int = 0,
        count: int = 1,
        timeout: float = 10.0,
    ) -> Message:
        """The count-th message on topic (from index `after`) that satisfies where."""

        def found() -> list[Message]:
            return [m for m in self.messages[after:] if m.topic == topic and where(m)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(found()) >= count, timeout):
                seen = [m.payload[:200] for m in self.messages[after:] if m.topic == topic]
                raise TimeoutError(f"no message {count} on {topic} within {timeout} s; saw {seen}")
            return found()[count - 1]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(10)

    def request(
        self, base: str, topic: str, body: dict[str, Any], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Publish a command with a fresh id and wait for its response."""
        rid = f"t-{next(self._ids)}"
        start = self.mark()
        self.publish(f"{base}/{topic}", json.dumps({"id": rid, **body}))
        msg = self.wait_for(
            f"{base}/response", lambda m: m.json().get("id") == rid, after=start, timeout=timeout
        )
        response: dict[str, Any] = msg.json()
        return response
