"""The MCP server (mcp_addon) over streamable HTTP, pointed at a real HA and broker."""

from __future__ import annotations

from pathlib import Path
import sys
from typing import Self

from harness._process import (
    HarnessError,
    ManagedProcess,
    free_port,
    spawn,
)
from harness.broker import Broker

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO_ROOT / "mcp_addon"
HOST = "127.0.0.1"


def server_available() -> bool:
    """Whether the MCP server package is in this checkout."""
    return (ADDON_DIR / "esp_mcp_server" / "__main__.py").exists()


class McpServer(ManagedProcess):
    """``python -m esp_mcp_server --transport http`` with HA_URL/HA_TOKEN/MQTT_* set."""

    def __init__(
        self,
        state_dir: Path,
        *,
        ha_url: str,
        ha_token: str,
        broker: Broker,
        base_topic: str = "mcp_bridge",
        port: int | None = None,
        python: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.ha_url = ha_url
        self.ha_token = ha_token
        self.broker = broker
        self.base_topic = base_topic
        self.port = port if port is not None else free_port(HOST)
        self.python = python if python is not None else Path(sys.executable)
        self.extra_env = dict(extra_env or {})
        super().__init__(self.state_dir / "logs" / "mcp_server.log")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/mcp"

    def env(self) -> dict[str, str]:
        env = {
            "HA_URL": self.ha_url,
            "HA_TOKEN": self.ha_token,
            "MQTT_HOST": self.broker.host,
            "MQTT_PORT": str(self.broker.port),
            "BASE_TOPIC": self.base_topic,
            "MCP_HOST": HOST,
            "MCP_PORT": str(self.port),
            "PYTHONPATH": str(ADDON_DIR),
            "PYTHONUNBUFFERED": "1",
        }
        if self.broker.username is not None and self.broker.password is not None:
            env["MQTT_USERNAME"] = self.broker.username
            env["MQTT_PASSWORD"] = self.broker.password
        if self.broker.ca_file is not None:
            env["MQTT_TLS"] = "1"
            env["MQTT_CAFILE"] = str(self.broker.ca_file)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> Self:
        if self.running:
            return self
        if not server_available():
            raise HarnessError("the MCP server (mcp_addon/esp_mcp_server) is not in this checkout")
        proc = spawn(
            [
                str(self.python), "-m", "esp_mcp_server", "--transport", "http",
                "--host", HOST, "--port", str(self.port),
            ],
            self.log_path,
            env=self.env(),
            cwd=ADDON_DIR,
        )  # fmt: skip
        self._proc = proc
        try:
            self._wait_listening(proc, "MCP server", HOST, self.port, timeout)
        except BaseException:
            self.stop()
            raise
        return self
