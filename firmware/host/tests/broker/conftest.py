"""Fixtures of the real-broker tests: one Mosquitto per module, a CA for TLS."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

from mqtt_env import BINARY, Mosquitto, Recorder, Tls, make_ca
import pytest


@pytest.fixture(scope="module", autouse=True)
def _binary_built() -> None:
    if not BINARY.exists():
        pytest.fail(f"virtual device binary missing: {BINARY} (build firmware/host first)")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def logs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Directory of the device logs; printed (tail) when the test failed."""
    d = tmp_path / "logs"
    d.mkdir()
    yield d
    if request.node.stash.get(_FAILED, False):
        for log in sorted(d.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-40:]
            print(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[Recorder]:
    r = Recorder(broker)
    yield r
    r.close()
