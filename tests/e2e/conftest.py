"""Session fixtures for the end-to-end tests: the real system, started once through harness/.

Every process writes its log to ``<tmp>/logs``; a failing test gets the tails of those
logs in its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
import secrets

import pytest

from harness import Broker, HomeAssistant, VirtualDevices

_LOG_DIRS: list[Path] = []

DEVICE_PROFILES = {"greenhouse": "greenhouse", "lamp": "lamp", "sensor_node": "sensor_node"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        log_dirs = list(_LOG_DIRS)
        tmp = getattr(item, "funcargs", {}).get("tmp_path")
        if isinstance(tmp, Path):
            log_dirs.append(tmp / "logs")
        for log_dir in log_dirs:
            for log in sorted(log_dir.glob("*.log")):
                lines = log.read_text(errors="replace").splitlines()[-30:]
                report.sections.append((f"log {log_dir.parent.name}/{log.name}", "\n".join(lines)))
    return report


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("system")
    _LOG_DIRS.append(path / "logs")
    return path


def make_state_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    path = tmp_path_factory.mktemp(name)
    _LOG_DIRS.append(path / "logs")
    return path


@pytest.fixture(scope="session")
def broker(e2e_dir: Path) -> Iterator[Broker]:
    with Broker(e2e_dir, username="e2e", password=secrets.token_urlsafe(12)) as b:
        yield b


@pytest.fixture(scope="session")
def hass(e2e_dir: Path, broker: Broker) -> Iterator[HomeAssistant]:
    with HomeAssistant(e2e_dir) as ha:
        ha.setup_mqtt(broker)
        yield ha


@pytest.fixture(scope="session")
def devices(e2e_dir: Path, broker: Broker) -> Iterator[dict[str, VirtualDevices]]:
    started: dict[str, VirtualDevices] = {}
    try:
        for device_id, profile in DEVICE_PROFILES.items():
            started[device_id] = VirtualDevices(broker, profile, device_id, e2e_dir).start()
        yield started
    finally:
        for dev in started.values():
            dev.terminate()
