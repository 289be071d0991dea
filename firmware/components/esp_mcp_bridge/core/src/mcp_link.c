/*
 * Connection policy: when to try the broker again, when to give up and
 * reboot, and how often Home Assistant's birth message may make the device
 * re-publish everything.
 *
 * Reconnect backoff. After a lost connection the first attempt comes soon,
 * then the wait doubles up to reconnect_max_ms. Every wait is "equal jitter"
 * (half the step plus a random part of the other half), so that a thousand
 * devices that lost the same broker do not all come back in the same
 * millisecond. The random source is a per-device xorshift seeded from the
 * device id (no global state, reproducible in tests). Ports that can be told
 * when to connect (port->mqtt_reconnect: the ESP-IDF port runs esp-mqtt with
 * its own reconnect off) are driven from mcp_core_tick(); others ask
 * mcp_core_reconnect_delay_ms() for the wait of their own loop.
 *
 * Offline reboot. With reboot_after_offline_ms, a started device that has not
 * been connected for that long restarts (port->restart): a wedged Wi-Fi or
 * TLS stack is the usual cause on a chip, and a reboot is what fixes it.
 *
 * Birth rate limit. Each `online` on homeassistant/status makes the device
 * send status, capabilities, discovery and every state (~20 KB at the
 * maxima). Births closer together than MCP_BIRTH_MIN_INTERVAL_MS are
 * coalesced into one re-publication at the end of the interval: a flood costs
 * at most one per interval, and the last birth is never lost.
 */
#include <string.h>

#include "mcp_core_internal.h"

static uint32_t next_random(mcp_core_t *c)
{
    uint32_t x = c->jitter_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c->jitter_state = x;
    return x;
}

void mcp_link_init(mcp_core_t *c, const mcp_bridge_config_t *cfg)
{
    c->reconnect_min_ms = cfg->reconnect_min_ms ? cfg->reconnect_min_ms : MCP_BRIDGE_DEFAULT_RECONNECT_MIN_MS;
    c->reconnect_max_ms = cfg->reconnect_max_ms ? cfg->reconnect_max_ms : MCP_BRIDGE_DEFAULT_RECONNECT_MAX_MS;
    if (c->reconnect_max_ms < c->reconnect_min_ms) {
        c->reconnect_max_ms = c->reconnect_min_ms;
    }
    c->reboot_after_offline_ms = cfg->reboot_after_offline_ms;
    uint32_t h = 2166136261u; /* FNV-1a of the device id: every device its own sequence */
    for (const char *p = c->device_id; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    c->jitter_state = h ? h : 1u;
}

uint32_t mcp_core_reconnect_delay_ms(mcp_core_t *c, uint32_t attempt)
{
    if (!c) {
        return MCP_BRIDGE_DEFAULT_RECONNECT_MIN_MS;
    }
    uint64_t step = c->reconnect_min_ms;
    for (uint32_t i = 0; i < attempt && step < c->reconnect_max_ms; i++) {
        step *= 2;
    }
    if (step > c->reconnect_max_ms) {
        step = c->reconnect_max_ms;
    }
    uint32_t half = (uint32_t)(step / 2);
    return half + next_random(c) % ((uint32_t)step - half + 1);
}

void mcp_link_on_started(mcp_core_t *c, uint64_t now)
{
    c->offline_since = now;
    c->reconnect_attempt = 0;
    /* the port's own first attempt comes first; ours only if it did not connect */
    c->reconnect_due = c->port.mqtt_reconnect ? now + mcp_core_reconnect_delay_ms(c, 0) : 0;
}

void mcp_link_on_connected(mcp_core_t *c)
{
    c->reconnect_attempt = 0;
    c->reconnect_due = 0;
    c->offline_since = 0;
    c->birth_pending = false; /* the connect sequence re-publishes everything anyway */
}

void mcp_link_on_disconnected(mcp_core_t *c, uint64_t now)
{
    if (!c->started) {
        c->reconnect_due = 0;
        return;
    }
    if (!c->offline_since) {
        c->offline_since = now;
    }
    c->reconnect_attempt = 0;
    if (c->port.mqtt_reconnect && !c->reconnect_due) {
        c->reconnect_due = now + mcp_core_reconnect_delay_ms(c, 0);
    }
}

void mcp_link_on_network_up(mcp_core_t *c, uint64_t now)
{
    if (c->started && !c->connected && c->port.mqtt_reconnect) {
        c->reconnect_attempt = 0; /* the network was the problem: start the backoff again */
        c->reconnect_due = now + mcp_core_reconnect_delay_ms(c, 0);
    }
}

void mcp_link_tick(mcp_core_t *c, uint64_t now, uint64_t *next)
{
    if (!c->started || c->connected) {
        return;
    }
    if (c->reboot_after_offline_ms && c->offline_since && now - c->offline_since >= c->reboot_after_offline_ms &&
        c->port.restart && !c->offline_reboot_done) {
        c->offline_reboot_done = true; /* once: a port whose restart returns does not loop */
        mcp_core_log(c, MCP_LOG_ERROR, "no broker for %u s: restarting",
                     (unsigned)(c->reboot_after_offline_ms / 1000u));
        c->port.restart(c->port.ctx);
        return;
    }
    if (c->reconnect_due && now >= c->reconnect_due) {
        /* refused while the client is still busy with an attempt: the next one comes later */
        (void)c->port.mqtt_reconnect(c->port.ctx);
        c->reconnect_attempt++;
        c->reconnect_due = now + mcp_core_reconnect_delay_ms(c, c->reconnect_attempt);
    }
    if (c->reconnect_due && c->reconnect_due < *next) {
        *next = c->reconnect_due;
    }
    if (c->reboot_after_offline_ms && c->offline_since && c->offline_since + c->reboot_after_offline_ms < *next) {
        *next = c->offline_since + c->reboot_after_offline_ms;
    }
}

void mcp_link_on_ha_birth(mcp_core_t *c)
{
    uint64_t now = mcp_core_now(c);
    if (c->last_birth_ms && now - c->last_birth_ms < MCP_BIRTH_MIN_INTERVAL_MS) {
        c->birth_pending = true; /* coalesced: one re-publication at the end of the interval */
        return;
    }
    c->last_birth_ms = now ? now : 1;
    c->birth_pending = false;
    mcp_core_log(c, MCP_LOG_INFO, "Home Assistant is online: re-publishing");
    mcp_core_republish_all(c);
}

void mcp_link_birth_tick(mcp_core_t *c, uint64_t now, uint64_t *next)
{
    if (!c->birth_pending) {
        return;
    }
    uint64_t due = c->last_birth_ms + MCP_BIRTH_MIN_INTERVAL_MS;
    if (now >= due) {
        mcp_link_on_ha_birth(c);
    } else if (due < *next) {
        *next = due;
    }
}
