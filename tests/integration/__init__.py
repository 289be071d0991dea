"""Tests of the ESP32 MCP Bridge integration."""
