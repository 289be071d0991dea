"""Unit tests for close-match suggestions on unknown ids."""

from __future__ import annotations

from esp_mcp_server.matching import close_matches, unknown_message

DEVICES = ["greenhouse-1", "greenhouse-2", "lamp-1", "sensor-node-1"]


def test_typo_finds_device() -> None:
    assert close_matches("greenhose-1", DEVICES)[0] == "greenhouse-1"


def test_case_insensitive_exact_first() -> None:
    assert close_matches("LAMP-1", DEVICES)[0] == "lamp-1"


def test_substring_matches() -> None:
    assert close_matches("greenhouse", DEVICES) == ["greenhouse-1", "greenhouse-2"]


def test_no_match() -> None:
    assert close_matches("zzzz", DEVICES) == []
    assert close_matches("x", []) == []


def test_limit() -> None:
    assert len(close_matches("e", DEVICES, limit=2)) == 2


def test_unknown_message_suggests() -> None:
    msg = unknown_message("device", "lamp1", DEVICES)
    assert "did you mean" in msg
    assert "lamp-1" in msg


def test_unknown_message_lists_few_known() -> None:
    msg = unknown_message("sensor", "qqq", ["temperature", "humidity"])
    assert msg == "unknown sensor 'qqq'; known: humidity, temperature"


def test_unknown_message_none_known() -> None:
    assert unknown_message("device", "a", []) == "unknown device 'a'; there are none"
