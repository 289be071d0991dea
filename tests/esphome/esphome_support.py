"""Paths and the esphome CLI for the ESPHome component tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import subprocess

import pytest

ROOT = Path(__file__).resolve().parents[2]
ESPHOME = ROOT / ".venv" / "esphome" / "bin" / "esphome"
COMPONENTS = ROOT / "firmware" / "esphome" / "components"
EXAMPLES = ROOT / "firmware" / "esphome" / "examples"
CORE_DIR = ROOT / "firmware" / "components" / "esp_mcp_bridge"
CACHE = ROOT / "build" / "esphome"
HOST_EXAMPLE = EXAMPLES / "host-template.yaml"
HOST_NAME = "esphome-host"
# What the host build compiles: a change in any of these means a new build.
BUILD_INPUTS = (
    ROOT / "requirements" / "esphome.txt",
    *sorted(COMPONENTS.rglob("*.py")),
    *sorted(COMPONENTS.rglob("*.cpp")),
    *sorted(COMPONENTS.rglob("*.h")),
    *sorted((CORE_DIR / "include").glob("*.h")),
    *sorted((CORE_DIR / "core").rglob("*.[ch]")),
    *sorted((CORE_DIR / "port" / "posix").rglob("*.[ch]")),
)


def esphome(
    *args: str, cwd: Path, data_dir: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the esphome CLI; its build state goes to data_dir, never next to the YAML."""
    if not ESPHOME.exists():
        pytest.fail(f"{ESPHOME} is missing: run scripts/bootstrap.sh")
    env = {**os.environ, "ESPHOME_DATA_DIR": str(data_dir), "ESPHOME_NO_COLOR": "1"}
    return subprocess.run(
        [str(ESPHOME), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def inputs_hash(yaml: Path) -> str:
    h = hashlib.sha256()
    # the YAML, what it includes from its folder, and the component and the core
    for path in (yaml, *sorted(yaml.parent.glob("*.h")), *BUILD_INPUTS):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def build_program(yaml: Path, name: str) -> Path:
    """A host YAML's program, built, or taken from the cache when nothing changed."""
    data_dir = CACHE / f"{yaml.stem}-data"
    program = data_dir / "build" / name / ".pioenvs" / name / "program"
    stamp = CACHE / f"{yaml.stem}.sha256"
    digest = inputs_hash(yaml)
    if not (program.exists() and stamp.exists() and stamp.read_text() == digest):
        stamp.unlink(missing_ok=True)
        result = esphome("compile", yaml.name, cwd=yaml.parent, data_dir=data_dir)
        if result.returncode != 0:
            raise RuntimeError(
                "esphome compile failed:\n" + result.stdout[-4000:] + result.stderr[-4000:]
            )
        CACHE.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    return program


def build_host_program() -> Path:
    """The host example's program."""
    return build_program(HOST_EXAMPLE, HOST_NAME)
