/*
 * Publish and subscribe policy: what goes out when, so that a slow link loses
 * nothing and a refused subscription does not leave the device deaf.
 *
 * The client keeps every QoS 1/2 message until its PUBACK and refuses a
 * publish that would take that outbox over its limit (esp-mqtt: -2 from
 * esp_mqtt_client_publish, 16 KiB in the ESP-IDF port). A connect or Home
 * Assistant's birth message asks for status, capabilities (up to ~12 KiB),
 * discovery (up to ~11 KiB) and every actuator state at once: more than the
 * outbox holds. So the core runs that "sync" as a resumable sequence, in
 * contract order, one item at a time while port->mqtt_outbox_room() has room
 * for it plus a reserve (responses, states and errors published meanwhile
 * always fit). QoS 0 readings never wait: they do not stay in the outbox.
 *
 * Stop and restart: "offline" goes out with QoS >= 1 and the core waits for
 * its PUBACK (port->mqtt_flush) before a clean DISCONNECT; when it is not
 * acknowledged in time the connection is dropped without DISCONNECT
 * (port->mqtt_abort), so that the broker publishes the will and the retained
 * `online` does not outlive the device.
 *
 * Discovery hold-off (docs/protocol.md §13.4): a device whose discovery mode
 * was never stored is most likely about to be taken over by the integration,
 * which answers its retained capabilities with set_discovery. Publishing the
 * HA discovery first would make HA's MQTT integration create every entity
 * only to delete it again. Such a device publishes status and capabilities
 * but keeps its discovery back for holdoff_ms from its first connection; a
 * set_discovery (or a mode set by the application, or mcp_core_flush) ends
 * the wait, and when it expires the discovery goes out as in mode mqtt.
 */
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"

/* Room kept free for what is published outside the sync (one output buffer). */
#define MCP_FLOW_RESERVE MCP_OUT_BUF_SIZE
/* An item that found no room for this long is tried anyway (the port refuses
 * it, the failure is logged) so that a limit smaller than the item cannot
 * stall the sync for ever. */
#define MCP_FLOW_MAX_WAIT_MS 30000u

#define MCP_RESUB_MIN_MS 1000u
#define MCP_RESUB_MAX_MS 30000u

/*
 * The three subscriptions, all again when one failed (subscribing twice to a
 * filter is harmless in MQTT: the broker replaces it). A failed send or a
 * SUBACK with a failure code (mcp_core_on_subscribe_failed) schedules the next
 * try with a doubling delay; a new connection starts from the shortest.
 */
void mcp_flow_subscribe_all(mcp_core_t *c)
{
    char ha[MCP_TOPIC_MAX];
    snprintf(ha, sizeof ha, "%s/status", c->disc_prefix);
    bool ok = c->port.mqtt_subscribe(c->port.ctx, mcp_core_topic(c, "cmd"), 1) == ESP_OK;
    ok &= c->port.mqtt_subscribe(c->port.ctx, mcp_core_topic(c, "actuators/+/set"), c->qos.actuator_qos) == ESP_OK;
    ok &= c->port.mqtt_subscribe(c->port.ctx, ha, 1) == ESP_OK;
    c->resub_due = 0;
    if (!ok) {
        mcp_core_log(c, MCP_LOG_WARN, "subscribe failed: again in %u ms", (unsigned)c->resub_backoff_ms);
        mcp_core_on_subscribe_failed(c);
    }
}

void mcp_core_on_subscribe_failed(mcp_core_t *c)
{
    if (!c || !c->connected) {
        return;
    }
    if (c->resub_backoff_ms < MCP_RESUB_MIN_MS) {
        c->resub_backoff_ms = MCP_RESUB_MIN_MS;
    }
    if (!c->resub_due) {
        c->resub_due = mcp_core_now(c) + c->resub_backoff_ms;
        c->resub_backoff_ms = c->resub_backoff_ms >= MCP_RESUB_MAX_MS / 2 ? MCP_RESUB_MAX_MS : c->resub_backoff_ms * 2;
    }
}

void mcp_flow_on_connected(mcp_core_t *c)
{
    c->resub_due = 0;
    c->resub_backoff_ms = MCP_RESUB_MIN_MS;
    mcp_flow_subscribe_all(c);
}

bool mcp_flow_room_for(mcp_core_t *c, size_t len)
{
    if (!c->port.mqtt_outbox_room) {
        return true;
    }
    size_t room = c->port.mqtt_outbox_room(c->port.ctx);
    return room >= MCP_FLOW_RESERVE && len <= room - MCP_FLOW_RESERVE;
}

void mcp_flow_start_sync(mcp_core_t *c)
{
    c->sync.step = MCP_SYNC_CAPS;
    c->sync.index = 0;
    c->sync.need = 0;
    c->sync.since = mcp_core_now(c);
}

/* Publish big[0..n) on topic if it fits; false: keep the step and wait. */
static bool sync_send(mcp_core_t *c, const char *topic, int n)
{
    if (n < 0) {
        mcp_core_log(c, MCP_LOG_ERROR, "%s does not fit %u bytes", topic, (unsigned)c->big_cap);
        return true; /* cannot ever go out: skip it */
    }
    bool waited_long = mcp_core_now(c) - c->sync.since >= MCP_FLOW_MAX_WAIT_MS;
    if (!waited_long && !mcp_flow_room_for(c, (size_t)n)) {
        c->sync.need = (size_t)n;
        return false;
    }
    esp_err_t err = mcp_core_pub(c, topic, c->big, (size_t)n, 1, true);
    if (err != ESP_OK && !waited_long) {
        c->sync.need = (size_t)n;
        return false; /* refused after all (another publisher took the room): retry */
    }
    return true;
}

/* One step; false when it has to wait for room. */
static bool sync_step(mcp_core_t *c)
{
    char topic[MCP_TOPIC_MAX];
    switch (c->sync.step) {
    case MCP_SYNC_CAPS:
        if (!sync_send(c, mcp_core_topic(c, "capabilities"), mcp_capabilities_build(c, c->big, c->big_cap))) {
            return false;
        }
        c->sync.step =
            c->mode == MCP_DISCOVERY_MQTT && !mcp_flow_discovery_held(c) ? MCP_SYNC_DISCOVERY : MCP_SYNC_STATES;
        return true;
    case MCP_SYNC_DISCOVERY:
        if (!sync_send(c, mcp_core_discovery_topic(c, topic, sizeof topic),
                       mcp_discovery_build(c, c->big, c->big_cap))) {
            return false;
        }
        c->discovery_maybe_retained = true;
        c->sync.step = MCP_SYNC_STATES;
        return true;
    case MCP_SYNC_STATES:
        while (c->sync.index < c->n_actuators) {
            mcp_actuator_t *a = &c->actuators[c->sync.index];
            if (a->has_value && a->e.vt != MCP_VALUE_TRIGGER) {
                /* a state is at most one output buffer: the reserve is what it needs */
                if (c->qos.actuator_qos > 0 && !mcp_flow_room_for(c, MCP_FLOW_RESERVE) &&
                    mcp_core_now(c) - c->sync.since < MCP_FLOW_MAX_WAIT_MS) {
                    c->sync.need = MCP_FLOW_RESERVE;
                    return false;
                }
                if (mcp_core_publish_state_of(c, a) != ESP_OK &&
                    mcp_core_now(c) - c->sync.since < MCP_FLOW_MAX_WAIT_MS) {
                    return false;
                }
            }
            c->sync.index++;
            c->sync.since = mcp_core_now(c);
        }
        c->sync.step = MCP_SYNC_IDLE;
        return true;
    case MCP_SYNC_IDLE:
    default: return false;
    }
}

void mcp_flow_pump(mcp_core_t *c)
{
    if (!c->connected || c->sync.step == MCP_SYNC_IDLE) {
        return;
    }
    /* skip rebuilding a big item while the room it needed is not there yet */
    if (c->sync.need && !mcp_flow_room_for(c, c->sync.need) &&
        mcp_core_now(c) - c->sync.since < MCP_FLOW_MAX_WAIT_MS) {
        return;
    }
    c->sync.need = 0;
    while (c->connected && c->sync.step != MCP_SYNC_IDLE) {
        mcp_sync_step_t before = c->sync.step;
        if (!sync_step(c)) {
            return;
        }
        if (c->sync.step != before) {
            c->sync.since = mcp_core_now(c);
        }
    }
}

bool mcp_flow_sync_running(const mcp_core_t *c)
{
    return c->sync.step != MCP_SYNC_IDLE;
}

esp_err_t mcp_flow_say_offline(mcp_core_t *c)
{
    if (!c->connected) {
        return ESP_ERR_MCP_NOT_CONNECTED;
    }
    c->sync.step = MCP_SYNC_IDLE;
    int qos = c->qos.status_qos > 0 ? c->qos.status_qos : 1; /* acknowledged, whatever status_qos says */
    esp_err_t err = mcp_core_pub(c, mcp_core_topic(c, "status"), "offline", 7, qos, true);
    if (err == ESP_OK && c->port.mqtt_flush) {
        err = c->port.mqtt_flush(c->port.ctx, MCP_FLOW_OFFLINE_ACK_MS);
    }
    return err;
}

void mcp_flow_holdoff_init(mcp_core_t *c, uint32_t holdoff_ms)
{
    c->holdoff_ms = holdoff_ms ? holdoff_ms : MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS;
    c->holdoff_pending = c->holdoff_ms != MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE && !c->mode_persisted &&
                         c->mode == MCP_DISCOVERY_MQTT;
    c->holdoff_until = 0;
}

bool mcp_flow_discovery_held(const mcp_core_t *c)
{
    return c->holdoff_pending;
}

void mcp_flow_holdoff_on_connected(mcp_core_t *c)
{
    if (c->holdoff_pending && !c->holdoff_until) {
        c->holdoff_until = mcp_core_now(c) + c->holdoff_ms;
        mcp_core_log(c, MCP_LOG_INFO, "no stored discovery mode: discovery held back for %u ms",
                     (unsigned)c->holdoff_ms);
    }
}

void mcp_flow_holdoff_end(mcp_core_t *c, bool publish)
{
    if (!c->holdoff_pending) {
        return;
    }
    c->holdoff_pending = false;
    c->holdoff_until = 0;
    if (!publish || !c->connected || c->mode != MCP_DISCOVERY_MQTT) {
        return; /* not connected: the next connection publishes it */
    }
    /* discovery, then the actuator states, through the outbox budget; a sync at
     * MCP_SYNC_CAPS goes on to the discovery by itself */
    if (c->sync.step != MCP_SYNC_CAPS) {
        c->sync.step = MCP_SYNC_DISCOVERY;
        c->sync.index = 0;
        c->sync.need = 0;
        c->sync.since = mcp_core_now(c);
    }
    mcp_core_readings_after_discovery(c, mcp_core_now(c));
    mcp_flow_pump(c);
}

void mcp_flow_holdoff_tick(mcp_core_t *c, uint64_t now, uint64_t *next)
{
    if (!c->holdoff_until) {
        return;
    }
    if (now >= c->holdoff_until) {
        mcp_core_log(c, MCP_LOG_INFO, "no set_discovery within %u ms: publishing the discovery",
                     (unsigned)c->holdoff_ms);
        mcp_flow_holdoff_end(c, true);
    } else if (c->holdoff_until < *next) {
        *next = c->holdoff_until;
    }
}

#define MCP_FLUSH_STEP_MS 50u

esp_err_t mcp_core_flush(mcp_core_t *c, uint32_t timeout_ms)
{
    if (!c) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!c->connected) {
        return ESP_ERR_MCP_NOT_CONNECTED;
    }
    mcp_flow_holdoff_end(c, true); /* about to sleep: what is held back goes out now */
    uint64_t end = mcp_core_now(c) + timeout_ms;
    for (;;) {
        mcp_flow_pump(c);
        uint64_t now = mcp_core_now(c);
        if (!c->connected) {
            return ESP_ERR_MCP_NOT_CONNECTED;
        }
        uint32_t left = now < end ? (uint32_t)(end - now) : 0;
        if (!c->port.mqtt_flush) {
            return mcp_flow_sync_running(c) ? ESP_ERR_TIMEOUT : ESP_OK; /* nothing is kept */
        }
        /* while the sequence waits, flush in steps so that it can go on */
        bool more = mcp_flow_sync_running(c);
        esp_err_t err = c->port.mqtt_flush(c->port.ctx, more && left > MCP_FLUSH_STEP_MS ? MCP_FLUSH_STEP_MS : left);
        if (!more && err == ESP_OK) {
            return ESP_OK;
        }
        if (mcp_core_now(c) >= end) {
            return ESP_ERR_TIMEOUT;
        }
    }
}
