"""A Lovelace dashboard for the bridged devices, made through Home Assistant's own API.

``async_ensure_dashboard`` creates the dashboard (WebSocket ``lovelace/dashboards/create``)
when it is missing and saves a configuration built from ``esp_mcp_bridge/devices``
(``lovelace/config/save``), so a second call leaves the same single dashboard. The demo
calls it after its devices are online; the e2e tests use it the same way.
"""

from __future__ import annotations

from typing import Any, cast

from harness.ha_client import HaClient, JsonDict

URL_PATH = "esp-mcp-bridge"  # Lovelace wants a hyphen in a dashboard's url_path
TITLE = "ESP32 MCP Bridge"
ICON = "mdi:chip"
# Diagnostics worth a row on a dashboard (the others are on the device page), with the
# names the integration gives them.
DIAGNOSTIC_ROWS = {
    "status": "Status",
    "firmware": "Firmware",
    "uptime_s": "Uptime",
    "free_heap": "Free heap",
}


def device_cards(device: JsonDict) -> list[JsonDict]:
    """The cards of one device: its sensors and actuators, a few diagnostics, a graph."""
    caps: JsonDict = device.get("capabilities") or {}
    entities: JsonDict = device.get("entities") or {}
    sensors: dict[str, str | None] = entities.get("sensors") or {}
    actuators: dict[str, str | None] = entities.get("actuators") or {}
    diagnostics: dict[str, str | None] = entities.get("diagnostics") or {}
    # The card's title names the device, so rows carry the capability's own name (an entity's
    # friendly name starts with the device name). Capability order, as the device announces
    # them; ids without an entity are skipped.
    rows: list[Any] = []
    for kind, ids in (("sensors", sensors), ("actuators", actuators)):
        for spec in caps.get(kind) or []:
            if entity := ids.get(spec.get("id")):
                rows.append({"entity": entity, "name": str(spec.get("name") or spec["id"])})
    diag_rows = [
        {"entity": diagnostics[key], "name": label}
        for key, label in DIAGNOSTIC_ROWS.items()
        if diagnostics.get(key)
    ]
    if diag_rows:
        rows += [{"type": "section", "label": "Diagnostics"}, *diag_rows]
    name = str(device.get("name") or device["device_id"])
    cards: list[JsonDict] = [
        {"type": "entities", "title": name, "show_header_toggle": False, "entities": rows}
    ]
    numeric = [
        sensors[s["id"]]
        for s in caps.get("sensors") or []
        if s.get("value_type") == "number" and sensors.get(s["id"])
    ]
    if numeric:
        cards.append(
            {
                "type": "history-graph",
                "title": f"{name}: last hour",
                "hours_to_show": 1,
                "entities": numeric,
            }
        )
    return cards


def dashboard_config(devices: list[JsonDict]) -> JsonDict:
    """One view with a column of cards per device, devices sorted by name."""
    ordered = sorted(devices, key=lambda d: (str(d.get("name") or ""), str(d["device_id"])))
    cards: list[JsonDict] = [
        {"type": "vertical-stack", "cards": device_cards(device)} for device in ordered
    ]
    return {
        "title": TITLE,
        "views": [{"title": "Devices", "path": "devices", "icon": ICON, "cards": cards}],
    }


async def async_ensure_dashboard(
    client: HaClient, url_path: str = URL_PATH, title: str = TITLE
) -> JsonDict:
    """Create the dashboard if missing and save its configuration; returns the configuration."""
    result = cast(JsonDict, await client.ws("esp_mcp_bridge/devices"))
    config = dashboard_config(cast(list[JsonDict], result["devices"]))
    dashboards = cast(list[JsonDict], await client.ws("lovelace/dashboards/list"))
    if not any(d.get("url_path") == url_path for d in dashboards):
        await client.ws(
            "lovelace/dashboards/create",
            url_path=url_path,
            title=title,
            icon=ICON,
            show_in_sidebar=True,
            require_admin=False,
            mode="storage",
        )
    await client.ws("lovelace/config/save", url_path=url_path, config=config)
    return config


def entity_ids(config: JsonDict) -> list[str]:
    """Every entity id a dashboard configuration shows (for checks)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "entities" and isinstance(value, list):
                    for row in value:
                        entity = row.get("entity") if isinstance(row, dict) else row
                        if isinstance(entity, str):
                            found.append(entity)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return list(dict.fromkeys(found))
