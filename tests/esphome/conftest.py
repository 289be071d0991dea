"""The ESPHome external component: config validation, code generation, a real host build.

ESPHome runs from its own environment (.venv/esphome, requirements/esphome.txt); these
tests drive its CLI as a user would. The host build of the host example is cached under
build/esphome/, keyed on a hash of everything that goes into it.
"""

from __future__ import annotations

from pathlib import Path

from esphome_support import build_host_program
import pytest


@pytest.fixture(scope="session")
def host_program() -> Path:
    """The host example, built (or taken from the cache when nothing changed)."""
    program = build_host_program()
    assert program.exists()
    return program
