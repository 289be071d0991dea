"""The ESPHome external component: config validation, code generation, a real host build.

ESPHome runs from its own environment (.venv/esphome, requirements/esphome.txt); these
tests drive its CLI as a user would. The host build of the host example is cached under
build/esphome/, keyed on a hash of everything that goes into it.
"""

from __future__ import annotations

from pathlib import Path

from esphome_support import CACHE, EXAMPLES, HOST_EXAMPLE, HOST_NAME, esphome, inputs_hash
import pytest


@pytest.fixture(scope="session")
def host_program() -> Path:
    """The host example, built (or taken from the cache when nothing changed)."""
    data_dir = CACHE / "host-data"
    program = data_dir / "build" / HOST_NAME / ".pioenvs" / HOST_NAME / "program"
    stamp = CACHE / "host-template.sha256"
    digest = inputs_hash()
    if not (program.exists() and stamp.exists() and stamp.read_text() == digest):
        stamp.unlink(missing_ok=True)
        result = esphome("compile", HOST_EXAMPLE.name, cwd=EXAMPLES, data_dir=data_dir)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        CACHE.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    assert program.exists()
    return program
