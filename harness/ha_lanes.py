"""The Home Assistant releases the project runs on: the oldest it supports and the newest.

`make bootstrap` installs both: the oldest (`hacs.json`) in `.venv/ha` on Python 3.13,
the newest in `.venv/ha-newest` on Python 3.14 inside a Debian root (see
`scripts/in_sid.sh`). `HA_LANE=oldest|newest` picks one for the demo, the end-to-end
tests and the benchmarks; the newest is the default, as it is what users run.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

from harness._process import HarnessError

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV = REPO_ROOT / ".venv"
LANES = ("newest", "oldest")
DEFAULT_LANE = "newest"


@dataclass(frozen=True)
class HaLane:
    """One installed Home Assistant: how to start its `hass` and which release it is."""

    name: str
    venv: Path
    wrapper: tuple[str, ...]  # prefix that runs a program of this venv

    @property
    def hass(self) -> Path:
        return self.venv / "bin" / "hass"

    def command(self, *args: str) -> list[str]:
        """The argv that runs this lane's `hass` with `args`."""
        return [*self.wrapper, str(self.hass), *args]

    @property
    def installed(self) -> bool:
        return self.hass.exists() and bool(self._dist_info())

    @property
    def version(self) -> str:
        """The release, read from the installed package's metadata folder."""
        found = self._dist_info()
        if not found:
            raise HarnessError(f"Home Assistant ({self.name}) is not installed; run make bootstrap")
        return found[0].name.removeprefix("homeassistant-").removesuffix(".dist-info")

    def _dist_info(self) -> list[Path]:
        return sorted(self.venv.glob("lib/python3.*/site-packages/homeassistant-*.dist-info"))


def lane(name: str | None = None) -> HaLane:
    """The lane `name`, or the one `HA_LANE` names (default: the newest)."""
    chosen = name or os.environ.get("HA_LANE") or DEFAULT_LANE
    if chosen == "oldest":
        return HaLane("oldest", VENV / "ha", ())
    if chosen == "newest":
        return HaLane("newest", VENV / "ha-newest", (str(REPO_ROOT / "scripts" / "in_sid.sh"),))
    raise HarnessError(f"HA_LANE must be one of {', '.join(LANES)}, not {chosen!r}")
