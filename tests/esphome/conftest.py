"""The ESPHome external component: config validation, code generation, a real host build.

ESPHome runs from its own environment (.venv/esphome, requirements/esphome.txt); these
tests drive its CLI as a user would. The host build of the host example is cached under
build/esphome/, keyed on a hash of everything that goes into it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from esphome_support import build_host_program
from mqtt_recorder import Recorder
import pytest

from harness.broker import Broker


@pytest.fixture(scope="session")
def host_program() -> Path:
    """The host example, built (or taken from the cache when nothing changed)."""
    program = build_host_program()
    assert program.exists()
    return program


# One broker and one recorder per test module (a module may define its own, per test).
@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def recorder(broker: Broker) -> Iterator[Recorder]:
    r = Recorder(broker.host, broker.port)
    yield r
    r.close()
