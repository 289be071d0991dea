"""Print the requirements `hass --skip-pip` needs for the integrations it will load.

Run with the Python of a Home Assistant environment. Without pip, Home Assistant cannot
install an integration's requirements (its manifest's `requirements`) at start-up, and
newer releases set up many integrations by default (bootstrap's integration sets). The
closure follows `dependencies` and `after_dependencies`, so it may list a little more
than a given start loads: that only costs disk space.

Usage: python ha_requirements.py DOMAIN... (the domains of configuration.yaml and of
the custom integrations to run).
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

from homeassistant import bootstrap
import homeassistant.components


def _manifest(domain: str) -> dict[str, object] | None:
    path = Path(homeassistant.components.__path__[0]) / domain / "manifest.json"
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except OSError:
        return None
    return data


def closure(roots: set[str]) -> dict[str, dict[str, object]]:
    """Every built-in integration reachable from `roots` with its manifest."""
    seen: dict[str, dict[str, object]] = {}
    todo = list(roots)
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        manifest = _manifest(domain)
        if manifest is None:
            continue  # a custom integration, or a configuration key that is no integration
        seen[domain] = manifest
        for key in ("dependencies", "after_dependencies"):
            todo.extend(str(d) for d in manifest.get(key, []) or [])  # type: ignore[attr-defined]
    return seen


def main(argv: list[str]) -> None:
    roots = set(argv) | bootstrap.CORE_INTEGRATIONS | bootstrap.DEFAULT_INTEGRATIONS
    roots |= bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS | bootstrap.FRONTEND_INTEGRATIONS
    requirements: set[str] = set()
    for manifest in closure(roots).values():
        for req in manifest.get("requirements", []) or []:  # type: ignore[attr-defined]
            requirements.add(str(req))
    print("\n".join(sorted(requirements, key=str.lower)))


if __name__ == "__main__":
    main(sys.argv[1:])
