"""The devices' dashboard made through Home Assistant's Lovelace API (as the demo makes it)."""

from __future__ import annotations

from typing import Any, cast

from harness import HomeAssistant
from harness._process import run_sync
from harness.dashboard import URL_PATH, async_ensure_dashboard, entity_ids


def test_dashboard_shows_every_device_and_is_made_once(
    hass: HomeAssistant, integration: str
) -> None:
    async def check() -> None:
        async with hass.client() as ha:
            first = await async_ensure_dashboard(ha)
            second = await async_ensure_dashboard(ha)  # a second demo run does the same
            assert second == first
            dashboards = [
                d
                for d in cast(list[dict[str, Any]], await ha.ws("lovelace/dashboards/list"))
                if d.get("url_path") == URL_PATH
            ]
            assert len(dashboards) == 1
            assert dashboards[0]["mode"] == "storage"
            # What Home Assistant stored is what the frontend will render.
            stored = await ha.ws("lovelace/config", url_path=URL_PATH)
            assert stored == first

            devices = (await ha.ws("esp_mcp_bridge/devices"))["devices"]
            shown = set(entity_ids(first))
            for device in devices:
                wanted = {
                    *device["entities"]["sensors"].values(),
                    *device["entities"]["actuators"].values(),
                    device["entities"]["diagnostics"]["status"],
                } - {None}
                assert wanted, device["device_id"]
                assert wanted <= shown, device["device_id"]
            titles = [
                card["cards"][0]["title"] for card in first["views"][0]["cards"]
            ]  # one column per device, sorted by name
            assert titles == sorted(d["name"] for d in devices)
            states = {s["entity_id"] for s in await ha.states()}
            assert shown <= states  # no card points at an entity that does not exist

    run_sync(check)
