"""Starts the real system on one machine: Mosquitto, virtual devices, Home Assistant, MCP server.

Used by `make demo` (`python -m harness.demo`), tests/e2e, the add-on's tests that need a
real Home Assistant, and bench/. Every process binds 127.0.0.1 on a free port, writes its log
to ``<state_dir>/logs/`` and is killed when the Python process exits.
"""

from harness._process import HarnessError, free_port, install_signal_handlers, kill_all, wait_until
from harness.broker import Broker
from harness.devices import VirtualDevices, profile_path
from harness.ha_client import HaApiError, HaClient
from harness.homeassistant import HomeAssistant, integration_available
from harness.mcp_server import McpServer

__all__ = [
    "Broker",
    "HaApiError",
    "HaClient",
    "HarnessError",
    "HomeAssistant",
    "McpServer",
    "VirtualDevices",
    "free_port",
    "install_signal_handlers",
    "integration_available",
    "kill_all",
    "profile_path",
    "wait_until",
]
