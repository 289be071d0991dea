"""MCP server for ESP32 devices bridged into Home Assistant (sensors, actuators, health)."""

__version__ = "0.1.0"
