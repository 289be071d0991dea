"""Session fixtures for the end-to-end tests: the real system, started once through harness/.

Every process writes its log to ``<tmp>/logs``; a failing test gets the tails of those
logs in its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
import secrets

from e2e_support import LOG_DIRS, MqttObserver, System
import pytest

from harness import Broker, HomeAssistant, McpServer, VirtualDevices, integration_available
from harness._process import async_wait_until, run_sync

# device id -> shipped profile
DEVICE_PROFILES = {"greenhouse": "greenhouse", "lamp": "lamp", "sensor-node": "sensor_node"}
# Readings every second instead of every ten, so the history fills quickly.
INTERVAL_SCALE = 0.1


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
        log_dirs = list(LOG_DIRS)
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
    LOG_DIRS.append(path / "logs")
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
def devices(
    e2e_dir: Path, broker: Broker, observer: MqttObserver
) -> Iterator[dict[str, VirtualDevices]]:
    # The observer subscribes first, so it sees every message the devices publish.
    started: dict[str, VirtualDevices] = {}
    try:
        for device_id, profile in DEVICE_PROFILES.items():
            started[device_id] = VirtualDevices(
                broker, profile, device_id, e2e_dir, interval_scale=INTERVAL_SCALE
            ).start()
        yield started
    finally:
        for dev in started.values():
            dev.terminate()


@pytest.fixture(scope="session")
def integration(hass: HomeAssistant, devices: dict[str, VirtualDevices]) -> str:
    """This integration set up through HA's flows, every device online in it.

    HA's MQTT discovery offers the integration (a flow for the devices' base topic) first;
    a user flow for the same base topic is then refused as already in progress, and the
    harness finishes the discovered flow instead.
    """
    if not integration_available():
        pytest.fail("custom_components/esp_mcp_bridge is missing")

    async def discovered() -> None:
        async with hass.client() as ha:

            async def offered() -> bool:
                flows = await ha.flows_in_progress("esp_mcp_bridge")
                return any(f["context"].get("unique_id") == "mcp_bridge" for f in flows)

            await async_wait_until(offered, 30, "HA's discovery flow for the integration")

    run_sync(discovered)
    entry_id = hass.setup_integration("mcp_bridge", prefer_discovery=False)

    async def online() -> None:
        async with hass.client() as ha:
            assert await ha.flows_in_progress("esp_mcp_bridge") == []
            assert [e["entry_id"] for e in await ha.config_entries("esp_mcp_bridge")] == [entry_id]

            async def all_online() -> bool:
                result = await ha.ws("esp_mcp_bridge/devices")
                seen = {d["device_id"] for d in result["devices"] if d["online"]}
                return set(devices) <= seen

            await async_wait_until(all_online, 60, "every device online in the integration")

    run_sync(online)
    return entry_id


@pytest.fixture(scope="session")
def client_token(hass: HomeAssistant) -> str:
    """A long-lived token of its own for the MCP clients of the tests."""
    return hass.create_token("e2e MCP client")


@pytest.fixture(scope="session")
def mcp_server(
    e2e_dir: Path, hass: HomeAssistant, broker: Broker, integration: str
) -> Iterator[McpServer]:
    assert hass.token is not None
    # The tests' client cannot elicit: they confirm with the model-held token, which a user
    # has to turn on (off by default; the add-on's own tests cover the default and
    # elicitation).
    with McpServer(
        e2e_dir,
        ha_url=hass.url,
        ha_token=hass.token,
        broker=broker,
        extra_env={"CONFIRM_TOKEN_FALLBACK": "true"},
    ) as server:
        yield server


@pytest.fixture(scope="session")
def observer(broker: Broker) -> Iterator[MqttObserver]:
    obs = MqttObserver(broker, "mcp_bridge/#", "homeassistant/#")
    yield obs
    obs.close()


@pytest.fixture(scope="session")
def system(  # noqa: PLR0917 - pytest passes fixtures by name
    hass: HomeAssistant,
    broker: Broker,
    devices: dict[str, VirtualDevices],
    mcp_server: McpServer,
    client_token: str,
    observer: MqttObserver,
) -> System:
    return System(hass, broker, devices, mcp_server, client_token, observer)
