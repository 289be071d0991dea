"""The add-on's packaging files are present and say what the Supervisor needs."""

from __future__ import annotations

from pathlib import Path
import re
import struct

ADDON = Path(__file__).resolve().parents[1]

# Keys whose default the Supervisor already applies; setting them to it is noise.
DEFAULTS = {
    "boot": "auto",
    "startup": "application",
    "init": "true",
    "hassio_api": "false",
    "host_network": "false",
    "stage": "stable",
    "advanced": "false",
    "ingress": "false",
    "apparmor": "true",
    "auth_api": "false",
    "timeout": "10",
}


def top_level(text: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^([a-z_]+):[ ]?(.*)$", text, re.MULTILINE)
    }


def test_config_yaml() -> None:
    text = (ADDON / "config.yaml").read_text()
    keys = top_level(text)
    assert keys["slug"] == "esp_mcp_bridge_mcp"
    assert keys["version"].strip('"') == __import__("esp_mcp_server").__version__
    assert keys["homeassistant_api"] == "true"
    for required in ("name", "description", "arch", "services", "ports", "options", "schema"):
        assert required in keys, required
    assert "  - aarch64\n  - amd64\n" in text
    assert "  - mqtt:need\n" in text
    assert "8099/tcp: 8099" in text
    for key, default in DEFAULTS.items():
        assert keys.get(key) != default, f"{key} set to its default"


def test_translations_cover_schema() -> None:
    config = (ADDON / "config.yaml").read_text()
    schema = config.split("\nschema:\n", 1)[1]
    options = re.findall(r"^  ([a-z_]+):", schema, re.MULTILINE)
    translations = (ADDON / "translations" / "en.yaml").read_text()
    for option in options:
        assert f"\n  {option}:\n" in translations, option


def test_docker_and_start_script() -> None:
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert "ARG BUILD_FROM=ghcr.io/home-assistant/" in dockerfile
    assert "FROM ${BUILD_FROM}" in dockerfile
    build = (ADDON / "build.yaml").read_text()
    assert "aarch64: ghcr.io/home-assistant/aarch64-base-python:3.13" in build
    run = (ADDON / "run.sh").read_text()
    assert run.startswith("#!/usr/bin/with-contenv bashio")
    assert "python3 -m esp_mcp_server --transport http" in run
    assert (ADDON / "run.sh").stat().st_mode & 0o111


def test_images_are_png() -> None:
    for name, size in (("icon.png", (128, 128)), ("logo.png", (250, 100))):
        data = (ADDON / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack(">II", data[16:24]) == size


def test_repository_yaml() -> None:
    text = (ADDON.parent / "repository.yaml").read_text()
    assert text.startswith("name: ")


def test_docs() -> None:
    docs = (ADDON / "DOCS.md").read_text()
    for needle in ("Authorization: Bearer", "Claude Desktop", "--transport stdio", "mqtt_host"):
        assert needle in docs
    assert (ADDON / "CHANGELOG.md").read_text().startswith("# Changelog")
