/*
 * Safe mode: a device that keeps crashing soon after boot (a sensor driver
 * that faults, a callback that hangs and trips the watchdog) must stay
 * reachable for the fix, i.e. for an OTA update.
 *
 * The port keeps a boot counter where a reset does not clear it (ESP-IDF: RTC
 * memory; a power-on or a wake from deep sleep starts it at 0). The core adds
 * one at every boot and clears it once the device has been up for
 * safe_mode_stable_ms. When a boot finds more than safe_mode_boots quick boots
 * before it, the device starts in safe mode: connectivity, device commands and
 * OTA work, but the application's sensor read and actuator callbacks are never
 * called (the registrations are kept, so the capabilities and Home Assistant's
 * entities stay), actuator commands are answered `busy`, the capabilities
 * carry "safe_mode": true, mcp_bridge_get_status() says so, and an error of
 * type `safe_mode` is published on every connection. Entering safe mode clears
 * the counter, so the next restart (after an OTA, or a `restart` command)
 * tries normally again.
 */
#include <stdio.h>

#include "mcp_core_internal.h"

void mcp_safe_init(mcp_core_t *c, const mcp_bridge_config_t *cfg)
{
    uint16_t boots = cfg->safe_mode_boots ? cfg->safe_mode_boots : MCP_BRIDGE_DEFAULT_SAFE_MODE_BOOTS;
    c->safe_stable_ms = cfg->safe_mode_stable_ms ? cfg->safe_mode_stable_ms : MCP_BRIDGE_DEFAULT_SAFE_MODE_STABLE_MS;
    c->safe_mode = false;
    c->boot_marked_good = true;
    if (boots == MCP_BRIDGE_SAFE_MODE_OFF || !c->port.boot_count_load || !c->port.boot_count_store) {
        return;
    }
    uint32_t before = c->port.boot_count_load(c->port.ctx);
    c->quick_boots = before;
    if (before >= boots) {
        c->safe_mode = true;
        c->port.boot_count_store(c->port.ctx, 0); /* the next restart tries normally */
        return;
    }
    c->port.boot_count_store(c->port.ctx, before + 1);
    c->boot_marked_good = false;
}

void mcp_safe_tick(mcp_core_t *c, uint64_t now, uint64_t *next)
{
    if (c->boot_marked_good) {
        return;
    }
    uint64_t good_at = c->boot_ms + c->safe_stable_ms;
    if (now >= good_at) {
        c->boot_marked_good = true;
        c->port.boot_count_store(c->port.ctx, 0); /* up long enough: not a crash loop */
    } else if (good_at < *next) {
        *next = good_at;
    }
}

void mcp_safe_on_connected(mcp_core_t *c)
{
    if (!c->safe_mode) {
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg,
             "safe mode after %u quick restarts: sensors and actuators are off until the next restart; "
             "OTA and device commands work",
             (unsigned)c->quick_boots);
    mcp_core_publish_error(c, "safe_mode", ESP_ERR_MCP_SAFE_MODE, msg, MCP_SEVERITY_ERROR);
}

bool mcp_core_safe_mode(const mcp_core_t *c)
{
    return c && c->safe_mode;
}
