/*
 * Portable core: lifecycle, connection events, configuration, errors,
 * metrics, status, the discovery mode and mcp_core_tick(). Helpers are in
 * mcp_util.c, registration in mcp_registry.c, readings and the scheduler in
 * mcp_readings.c, commands in mcp_commands.c, capabilities and discovery in
 * mcp_discovery.c, the policies in mcp_flow.c, mcp_link.c, mcp_safe.c,
 * mcp_dedup.c and mcp_actuate.c.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_core_internal.h"

const char MCP_BRIDGE_EVENT[] = "MCP_BRIDGE_EVENT";

#define KV_KEY_DISCOVERY "disc_mode"

/* ------------------------------------------------------------------------ */
/* lifecycle                                                                 */
/* ------------------------------------------------------------------------ */

bool mcp_core_local_interval_ok(uint32_t iv)
{
    return iv >= MCP_MIN_LOCAL_INTERVAL_MS && iv <= MCP_MAX_INTERVAL_MS;
}

/* The next metrics message one interval from now (never while metrics are off). */
static void schedule_metrics(mcp_core_t *c, uint64_t now)
{
    c->next_metrics_due = (c->metrics_interval_ms == UINT32_MAX) ? UINT64_MAX : now + c->metrics_interval_ms;
}

static bool valid_qos(const mcp_qos_config_t *q)
{
    return q->sensor_qos <= 2 && q->actuator_qos <= 2 && q->status_qos <= 2 && q->error_qos <= 2;
}

static void free_context(mcp_core_t *c)
{
    free(c->sensors);
    free(c->actuators);
    free(c->rx_buf);
    free(c->out);
    free(c->big);
    free(c->scratch);
    free(c->jobs);
    free(c->dedup);
    free(c);
}

static void load_discovery_mode(mcp_core_t *c)
{
    if (!c->port.kv_load) {
        return;
    }
    char buf[16];
    size_t len = sizeof buf - 1;
    if (c->port.kv_load(c->port.ctx, KV_KEY_DISCOVERY, buf, &len) != ESP_OK || len >= sizeof buf) {
        return;
    }
    buf[len] = '\0';
    c->mode_persisted = mcp_parse_discovery_mode(buf, &c->mode);
    c->discovery_maybe_retained = c->mode_persisted;
}

esp_err_t mcp_core_create(const mcp_bridge_config_t *cfg, const mcp_port_t *port, mcp_core_t **out)
{
    if (!cfg || !port || !out || !port->mqtt_connect || !port->mqtt_publish || !port->mqtt_subscribe ||
        !port->mqtt_disconnect || !port->now_ms) {
        return ESP_ERR_INVALID_ARG;
    }
    *out = NULL;
    if (!cfg->mqtt_broker_uri || !cfg->mqtt_broker_uri[0]) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->enable_device_auth && (!cfg->mqtt_username || !cfg->mqtt_username[0] || !cfg->mqtt_password)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->max_command_size > MCP_MAX_COMMAND_SIZE_LIMIT || (cfg->max_command_size && cfg->max_command_size < 64)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->default_discovery_mode != MCP_DISCOVERY_MQTT && cfg->default_discovery_mode != MCP_DISCOVERY_INTEGRATION) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_qos_config_t qos = cfg->qos_config;
    if (qos.sensor_qos == 0 && qos.actuator_qos == 0 && qos.status_qos == 0 && qos.error_qos == 0) {
        qos = (mcp_qos_config_t){.sensor_qos = 0, .actuator_qos = 1, .status_qos = 1, .error_qos = 2};
    }
    if (!valid_qos(&qos)) {
        return ESP_ERR_INVALID_ARG;
    }
    uint32_t pub_iv = cfg->sensor_publish_interval_ms ? cfg->sensor_publish_interval_ms
                                                      : MCP_BRIDGE_DEFAULT_PUBLISH_INTERVAL_MS;
    if (!mcp_core_local_interval_ok(pub_iv)) {
        return ESP_ERR_INVALID_ARG;
    }
    uint32_t met_iv = cfg->metrics_interval_ms ? cfg->metrics_interval_ms : MCP_BRIDGE_DEFAULT_METRICS_INTERVAL_MS;
    if (met_iv != UINT32_MAX && !mcp_core_local_interval_ok(met_iv)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->discovery_holdoff_ms > MCP_BRIDGE_MAX_DISCOVERY_HOLDOFF_MS &&
        cfg->discovery_holdoff_ms != MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE) {
        return ESP_ERR_INVALID_ARG;
    }

    mcp_core_t *c = calloc(1, sizeof *c);
    if (!c) {
        return ESP_ERR_NO_MEM;
    }
    c->port = *port;
    c->qos = qos;
    c->publish_interval_ms = pub_iv;
    c->metrics_interval_ms = met_iv;
    c->command_timeout_ms = cfg->command_timeout_ms ? cfg->command_timeout_ms : MCP_BRIDGE_DEFAULT_COMMAND_TIMEOUT_MS;
    c->max_command_size = cfg->max_command_size ? cfg->max_command_size : MCP_BRIDGE_DEFAULT_MAX_COMMAND_SIZE;
    c->max_sensors = cfg->max_sensors ? cfg->max_sensors : MCP_BRIDGE_DEFAULT_MAX_SENSORS;
    c->max_actuators = cfg->max_actuators ? cfg->max_actuators : MCP_BRIDGE_DEFAULT_MAX_ACTUATORS;
    c->keepalive_s = cfg->mqtt_keepalive_s ? cfg->mqtt_keepalive_s : 30;
    c->low_heap_threshold = cfg->low_heap_threshold;
    c->tls = cfg->tls_config;
    c->mode = cfg->default_discovery_mode;

    esp_err_t err = ESP_ERR_INVALID_ARG;
    if (!mcp_core_copy_str(c->uri, sizeof c->uri, cfg->mqtt_broker_uri, NULL) ||
        !mcp_core_copy_str(c->username, sizeof c->username, cfg->mqtt_username, NULL) ||
        !mcp_core_copy_str(c->password, sizeof c->password, cfg->mqtt_password, NULL) ||
        !mcp_core_copy_str(c->base, sizeof c->base, cfg->base_topic, MCP_BRIDGE_DEFAULT_BASE_TOPIC) ||
        !mcp_core_copy_str(c->disc_prefix, sizeof c->disc_prefix, cfg->discovery_prefix,
                  MCP_BRIDGE_DEFAULT_DISCOVERY_PREFIX) ||
        !mcp_core_copy_str(c->manufacturer, sizeof c->manufacturer, cfg->manufacturer, "Espressif") ||
        !mcp_core_copy_str(c->model, sizeof c->model, cfg->model, "ESP32") ||
        !mcp_core_copy_str(c->fw, sizeof c->fw, cfg->fw_version, MCP_CORE_VERSION) ||
        !mcp_core_copy_str(c->hw, sizeof c->hw, cfg->hw_version, NULL)) {
        goto fail;
    }
    if (!mcp_core_valid_topic_prefix(c->base) || !mcp_core_valid_topic_prefix(c->disc_prefix)) {
        goto fail;
    }
    if (cfg->device_id) {
        if (!mcp_core_valid_device_id(cfg->device_id)) {
            goto fail;
        }
        strcpy(c->device_id, cfg->device_id);
    } else {
        if (!port->device_id_from_mac ||
            port->device_id_from_mac(port->ctx, c->device_id, sizeof c->device_id) != ESP_OK ||
            !mcp_core_valid_device_id(c->device_id)) {
            goto fail;
        }
    }
    if (!mcp_core_copy_str(c->client_id, sizeof c->client_id, cfg->mqtt_client_id, c->device_id) ||
        !mcp_core_copy_str(c->name, sizeof c->name, cfg->device_name, c->device_id) || !mcp_valid_utf8(c->name, 64)) {
        goto fail;
    }
    mcp_link_init(c, cfg);
    if (port->mac_string && port->mac_string(port->ctx, c->mac, sizeof c->mac) != ESP_OK) {
        c->mac[0] = '\0';
    }

    err = ESP_ERR_NO_MEM;
    c->sensors = calloc(c->max_sensors, sizeof *c->sensors);
    c->actuators = calloc(c->max_actuators, sizeof *c->actuators);
    c->rx_buf = malloc((size_t)c->max_command_size + 1);
    c->out_cap = MCP_OUT_BUF_SIZE + (size_t)c->max_command_size;
    c->out = malloc(c->out_cap);
    /* grows at registration time to what capabilities / discovery need */
    c->big_cap = 2048;
    c->big = malloc(c->big_cap);
    c->scratch = calloc(MCP_SCRATCH_COUNT, sizeof *c->scratch);
    c->jobs = calloc(MCP_ACT_QUEUE_LEN, sizeof *c->jobs);
    c->dedup = calloc(MCP_DEDUP_SLOTS, sizeof *c->dedup);
    c->dedup_current = -1;
    if (!c->sensors || !c->actuators || !c->rx_buf || !c->out || !c->big || !c->scratch || !c->jobs ||
        !c->dedup) {
        goto fail;
    }

    load_discovery_mode(c);
    c->boot_ms = port->now_ms(port->ctx);
    c->now_ms = c->boot_ms;
    mcp_flow_holdoff_init(c, cfg->discovery_holdoff_ms);
    mcp_safe_init(c, cfg);
    c->metrics.min_free_heap = UINT32_MAX;
    if (port->attach) {
        err = port->attach(port->ctx, c);
        if (err != ESP_OK) {
            goto fail;
        }
    }
    *out = c;
    return ESP_OK;

fail:
    free_context(c);
    return err;
}

void mcp_core_destroy(mcp_core_t *c)
{
    if (!c) {
        return;
    }
    if (c->port.detach) {
        c->port.detach(c->port.ctx);
    }
    free_context(c);
}

esp_err_t mcp_core_start(mcp_core_t *c)
{
    if (!c) {
        return ESP_ERR_INVALID_ARG;
    }
    if (c->started) {
        return ESP_ERR_INVALID_STATE;
    }
    char lwt_topic[MCP_TOPIC_MAX];
    mcp_core_device_topic(c, lwt_topic, sizeof lwt_topic, "status", NULL, NULL);
    mcp_port_mqtt_params_t p = {
        .uri = c->uri,
        .client_id = c->client_id,
        .username = c->username[0] ? c->username : NULL,
        .password = c->username[0] ? c->password : NULL,
        .keepalive_s = c->keepalive_s,
        .clean_session = true,
        .lwt_topic = lwt_topic,
        .lwt_payload = "offline",
        .lwt_len = 7,
        .lwt_qos = c->qos.status_qos,
        .lwt_retain = true,
        .tls = &c->tls,
    };
    c->started = true;
    esp_err_t err = c->port.mqtt_connect(c->port.ctx, &p);
    if (err != ESP_OK) {
        c->started = false;
        c->metrics.connection_failures++;
        mcp_core_log(c, MCP_LOG_ERROR, "connect failed: %s", mcp_bridge_err_to_name(err));
    } else {
        mcp_link_on_started(c, mcp_core_now(c));
    }
    return err;
}

static void publish_status(mcp_core_t *c, const char *state)
{
    mcp_core_pub(c, mcp_core_topic(c, "status"), state, strlen(state), c->qos.status_qos, true);
}

static void mark_disconnected(mcp_core_t *c)
{
    bool was = c->connected;
    c->connected = false;
    c->rx_active = false;
    c->sync.step = MCP_SYNC_IDLE; /* the next connect starts it again */
    c->resub_due = 0;
    mcp_link_on_disconnected(c, mcp_core_now(c));
    if (was) {
        mcp_core_emit(c, MCP_EVENT_DISCONNECTED, NULL);
    }
}

esp_err_t mcp_core_stop(mcp_core_t *c)
{
    if (!c) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!c->started) {
        return ESP_ERR_INVALID_STATE;
    }
    /* "offline" acknowledged, then a clean DISCONNECT; not acknowledged: drop the
     * connection so that the broker publishes the will (mcp_flow.c) */
    esp_err_t said = mcp_flow_say_offline(c);
    esp_err_t err = (said != ESP_OK && said != ESP_ERR_MCP_NOT_CONNECTED && c->port.mqtt_abort)
                        ? c->port.mqtt_abort(c->port.ctx)
                        : c->port.mqtt_disconnect(c->port.ctx);
    c->started = false;
    mark_disconnected(c);
    return err;
}

/* ------------------------------------------------------------------------ */
/* connection events                                                         */
/* ------------------------------------------------------------------------ */

/* Capabilities, and in mode mqtt the discovery config: what describes the registry. */
void mcp_core_publish_descriptions(mcp_core_t *c)
{
    mcp_core_publish_capabilities(c);
    if (c->mode == MCP_DISCOVERY_MQTT && !mcp_flow_discovery_held(c)) {
        mcp_core_publish_discovery(c);
    }
}

static void publish_states(mcp_core_t *c)
{
    for (uint16_t i = 0; i < c->n_actuators; i++) {
        if (c->actuators[i].has_value && c->actuators[i].e.vt != MCP_VALUE_TRIGGER) {
            mcp_core_publish_state_of(c, &c->actuators[i]);
        }
    }
}


void mcp_core_republish_all(mcp_core_t *c)
{
    uint64_t now = mcp_core_now(c);
    publish_status(c, "online");
    /* capabilities, discovery, states: as the outbox has room (mcp_flow.c) */
    mcp_flow_start_sync(c);
    mcp_flow_pump(c);
    mcp_core_readings_after_discovery(c, now);
}

void mcp_core_readings_after_discovery(mcp_core_t *c, uint64_t now)
{
    /* HA subscribes to new state topics after a short debounce: unretained
     * readings go out a moment later. */
    c->republish_due = now + MCP_REPUBLISH_DELAY_MS;
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        mcp_sensor_t *s = &c->sensors[i];
        if (s->cb && s->next_due < now + MCP_REPUBLISH_DELAY_MS) {
            s->next_due = now + MCP_REPUBLISH_DELAY_MS;
        }
    }
}

void mcp_core_on_connected(mcp_core_t *c)
{
    if (!c || !c->started) {
        return;
    }
    uint64_t now = mcp_core_now(c);
    if (c->ever_connected) {
        c->metrics.mqtt_reconnections++;
    }
    c->ever_connected = true;
    c->connected = true;
    c->rx_active = false;
    mcp_link_on_connected(c);
    mcp_flow_holdoff_on_connected(c);
    mcp_flow_on_connected(c); /* subscriptions, retried until they went out */
    if (c->mode == MCP_DISCOVERY_INTEGRATION && !c->cleared_discovery_once) {
        mcp_core_clear_discovery(c);
        c->cleared_discovery_once = true;
    }
    mcp_core_republish_all(c); /* stored readings follow after the republish delay */
    mcp_safe_on_connected(c);
    if (c->next_metrics_due == 0 || c->next_metrics_due < now) {
        schedule_metrics(c, now);
    }
    mcp_core_emit(c, MCP_EVENT_CONNECTED, NULL);
}

void mcp_core_on_disconnected(mcp_core_t *c)
{
    if (c) {
        mark_disconnected(c);
    }
}

void mcp_core_on_connect_failed(mcp_core_t *c)
{
    if (c) {
        c->metrics.connection_failures++;
    }
}

void mcp_core_on_wifi_reconnected(mcp_core_t *c)
{
    if (c) {
        c->metrics.wifi_reconnections++;
        mcp_link_on_network_up(c, mcp_core_now(c)); /* the broker may be back too: no long wait */
    }
}

/* ------------------------------------------------------------------------ */
/* config, errors, metrics, status                                           */
/* ------------------------------------------------------------------------ */

void mcp_core_apply_publish_interval(mcp_core_t *c, uint32_t interval_ms, uint64_t now)
{
    c->publish_interval_ms = interval_ms;
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        mcp_sensor_t *s = &c->sensors[i];
        uint64_t due = now + mcp_core_sensor_interval(c, s);
        if (s->next_due > due) {
            s->next_due = due;
        }
    }
}

void mcp_core_apply_metrics_interval(mcp_core_t *c, uint32_t interval_ms, uint64_t now)
{
    c->metrics_interval_ms = interval_ms;
    schedule_metrics(c, now);
}

esp_err_t mcp_core_update_config(mcp_core_t *c, const mcp_bridge_config_t *cfg)
{
    if (!c || !cfg) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_qos_config_t q = cfg->qos_config;
    if (!valid_qos(&q)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->sensor_publish_interval_ms && !mcp_core_local_interval_ok(cfg->sensor_publish_interval_ms)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->metrics_interval_ms && cfg->metrics_interval_ms != UINT32_MAX &&
        !mcp_core_local_interval_ok(cfg->metrics_interval_ms)) {
        return ESP_ERR_INVALID_ARG;
    }
    uint64_t now = mcp_core_now(c);
    if (q.sensor_qos || q.actuator_qos || q.status_qos || q.error_qos) {
        c->qos = q;
    }
    if (cfg->sensor_publish_interval_ms) {
        mcp_core_apply_publish_interval(c, cfg->sensor_publish_interval_ms, now);
    }
    if (cfg->metrics_interval_ms) {
        mcp_core_apply_metrics_interval(c, cfg->metrics_interval_ms, now);
    }
    if (cfg->command_timeout_ms) {
        c->command_timeout_ms = cfg->command_timeout_ms;
    }
    c->low_heap_threshold = cfg->low_heap_threshold;
    mcp_core_emit(c, MCP_EVENT_CONFIG_UPDATED, NULL);
    return ESP_OK;
}

esp_err_t mcp_core_publish_error(mcp_core_t *c, const char *type, esp_err_t code, const char *message,
                                 uint8_t severity)
{
    if (!c || !mcp_core_valid_entity_id(type) || !message || severity > MCP_SEVERITY_CRITICAL) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_event_error_t ev = {.error_type = type, .code = code, .message = message, .severity = severity};
    mcp_core_emit(c, MCP_EVENT_ERROR, &ev);
    mcp_core_log(c, severity >= MCP_SEVERITY_ERROR ? MCP_LOG_ERROR : MCP_LOG_WARN, "%s: %s", type, message);
    /* a message that is too long or not UTF-8 is cut / replaced, never dropped */
    char msg[256];
    size_t n = strlen(message);
    if (n >= sizeof msg) {
        n = sizeof msg - 1;
    }
    memcpy(msg, message, n);
    msg[n] = '\0';
    while (n > 0 && !mcp_valid_utf8(msg, sizeof msg - 1)) {
        msg[--n] = '\0';
    }
    mcp_jw_t w;
    mcp_jw_init(&w, c->out, c->out_cap);
    mcp_jw_obj_begin(&w);
    mcp_jw_kstr(&w, "type", type);
    mcp_jw_kint(&w, "code", code);
    mcp_jw_kstr(&w, "message", msg);
    mcp_jw_kint(&w, "severity", severity);
    mcp_core_write_ts(c, &w);
    mcp_jw_obj_end(&w);
    return mcp_core_pub_jw(c, mcp_core_topic(c, "error"), &w, c->qos.error_qos, false);
}

static void refresh_metrics(mcp_core_t *c)
{
    uint64_t now = mcp_core_now(c);
    c->metrics.uptime_seconds = (uint32_t)((now - c->boot_ms) / 1000u);
    if (c->port.free_heap) {
        c->metrics.free_heap = c->port.free_heap(c->port.ctx);
    }
    if (c->port.min_free_heap) {
        c->metrics.min_free_heap = c->port.min_free_heap(c->port.ctx);
    } else if (c->metrics.free_heap < c->metrics.min_free_heap) {
        c->metrics.min_free_heap = c->metrics.free_heap;
    }
    int8_t rssi = 0;
    if (c->port.rssi && c->port.rssi(c->port.ctx, &rssi) == ESP_OK) {
        c->metrics.rssi = rssi;
    } else {
        c->metrics.rssi = 0;
    }
}

esp_err_t mcp_core_get_metrics(mcp_core_t *c, mcp_bridge_metrics_t *out)
{
    if (!c || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    refresh_metrics(c);
    *out = c->metrics;
    if (out->min_free_heap == UINT32_MAX) {
        out->min_free_heap = out->free_heap;
    }
    return ESP_OK;
}

esp_err_t mcp_core_reset_metrics(mcp_core_t *c)
{
    if (!c) {
        return ESP_ERR_INVALID_ARG;
    }
    c->metrics.messages_sent = 0;
    c->metrics.messages_received = 0;
    c->metrics.connection_failures = 0;
    c->metrics.sensor_read_errors = 0;
    c->metrics.actuator_errors = 0;
    c->metrics.wifi_reconnections = 0;
    c->metrics.mqtt_reconnections = 0;
    mcp_core_emit(c, MCP_EVENT_METRICS_RESET, NULL);
    return ESP_OK;
}

void mcp_core_write_metrics(mcp_core_t *c, mcp_jw_t *w)
{
    mcp_bridge_metrics_t m;
    mcp_core_get_metrics(c, &m);
    mcp_jw_obj_begin(w);
    mcp_jw_kuint(w, "uptime_s", m.uptime_seconds);
    mcp_jw_kuint(w, "messages_sent", m.messages_sent);
    mcp_jw_kuint(w, "messages_received", m.messages_received);
    mcp_jw_kuint(w, "connection_failures", m.connection_failures);
    mcp_jw_kuint(w, "sensor_read_errors", m.sensor_read_errors);
    mcp_jw_kuint(w, "actuator_errors", m.actuator_errors);
    mcp_jw_kuint(w, "wifi_reconnections", m.wifi_reconnections);
    mcp_jw_kuint(w, "mqtt_reconnections", m.mqtt_reconnections);
    mcp_jw_kuint(w, "free_heap", m.free_heap);
    mcp_jw_kuint(w, "min_free_heap", m.min_free_heap);
    mcp_jw_kint(w, "rssi", m.rssi);
    mcp_core_write_ts(c, w);
    mcp_jw_obj_end(w);
}

esp_err_t mcp_core_publish_metrics_msg(mcp_core_t *c)
{
    mcp_jw_t w;
    mcp_jw_init(&w, c->out, c->out_cap);
    mcp_core_write_metrics(c, &w);
    return mcp_core_pub_jw(c, mcp_core_topic(c, "metrics"), &w, 0, false);
}

esp_err_t mcp_core_get_status(mcp_core_t *c, mcp_bridge_status_t *out)
{
    if (!c || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if (!c->started) {
        out->state = c->ever_connected ? MCP_BRIDGE_STATE_STOPPED : MCP_BRIDGE_STATE_INITIALIZED;
    } else {
        out->state = c->connected ? MCP_BRIDGE_STATE_CONNECTED : MCP_BRIDGE_STATE_CONNECTING;
    }
    out->connected = c->connected;
    out->discovery_mode = c->mode;
    out->sensor_count = c->n_sensors;
    out->actuator_count = c->n_actuators;
    out->uptime_seconds = (uint32_t)((mcp_core_now(c) - c->boot_ms) / 1000u);
    out->time_synced = mcp_core_epoch_now(c) != 0;
    out->discovery_held = mcp_flow_discovery_held(c);
    out->safe_mode = c->safe_mode;
    return ESP_OK;
}

const char *mcp_core_device_id(const mcp_core_t *c)
{
    return c ? c->device_id : "";
}

mcp_discovery_mode_t mcp_core_get_discovery_mode(const mcp_core_t *c)
{
    return c->mode;
}

esp_err_t mcp_core_set_discovery_mode(mcp_core_t *c, mcp_discovery_mode_t mode)
{
    if (!c || (mode != MCP_DISCOVERY_MQTT && mode != MCP_DISCOVERY_INTEGRATION)) {
        return ESP_ERR_INVALID_ARG;
    }
    const char *name = mcp_discovery_mode_name(mode);
    esp_err_t perr = ESP_OK;
    bool changed = (c->mode != mode);
    mcp_flow_holdoff_end(c, false); /* the mode is known now; published below */
    /* flash only when the stored mode changes (the integration repeats set_discovery) */
    if (c->port.kv_store && (changed || !c->mode_persisted)) {
        perr = c->port.kv_store(c->port.ctx, KV_KEY_DISCOVERY, name, strlen(name));
        c->mode_persisted = perr == ESP_OK;
        if (perr != ESP_OK) {
            mcp_core_log(c, MCP_LOG_WARN, "could not persist discovery mode (%s)", mcp_bridge_err_to_name(perr));
        }
    }
    c->mode = mode;
    if (c->connected) {
        if (mode == MCP_DISCOVERY_INTEGRATION) {
            mcp_core_clear_discovery(c);
        } else {
            mcp_core_publish_discovery(c);
            publish_states(c);
            c->republish_due = mcp_core_now(c) + MCP_REPUBLISH_DELAY_MS;
        }
        mcp_core_publish_capabilities(c);
    }
    if (changed) {
        mcp_discovery_mode_t m = mode;
        mcp_core_emit(c, MCP_EVENT_DISCOVERY_MODE_CHANGED, &m);
    }
    return perr;
}

uint32_t mcp_core_tick(mcp_core_t *c, uint64_t now_ms)
{
    if (!c) {
        return 1000;
    }
    if (now_ms > c->now_ms) {
        c->now_ms = now_ms;
    }
    uint64_t now = c->now_ms;
    uint64_t next = now + 1000;

    if (c->restart_due && now >= c->restart_due) {
        c->restart_due = 0;
        (void)mcp_flow_say_offline(c); /* a restart drops the connection: the will covers a miss */
        if (c->port.restart) {
            c->port.restart(c->port.ctx);
        }
    } else if (c->restart_due && c->restart_due < next) {
        next = c->restart_due;
    }
    mcp_flow_holdoff_tick(c, now, &next);
    mcp_link_tick(c, now, &next);
    mcp_safe_tick(c, now, &next);
    if (!c->started || !c->connected) {
        return 100;
    }
    mcp_link_birth_tick(c, now, &next);
    if (c->resub_due && now >= c->resub_due) {
        mcp_flow_subscribe_all(c);
    }
    if (c->resub_due && c->resub_due < next) {
        next = c->resub_due;
    }
    mcp_flow_pump(c);
    if (mcp_flow_sync_running(c) && now + MCP_FLOW_POLL_MS < next) {
        next = now + MCP_FLOW_POLL_MS; /* waiting for acknowledgements */
    }
    if (!mcp_readings_tick(c, now, &next)) {
        return 100; /* the connection went while publishing */
    }
    if (c->metrics_interval_ms != UINT32_MAX && now >= c->next_metrics_due) {
        schedule_metrics(c, now);
        mcp_core_publish_metrics_msg(c);
    }
    if (c->next_metrics_due < next) {
        next = c->next_metrics_due;
    }
    if (c->low_heap_threshold && c->port.free_heap && now >= c->next_heap_check) {
        c->next_heap_check = now + 1000;
        uint32_t fh = c->port.free_heap(c->port.ctx);
        if (fh < c->low_heap_threshold && !c->low_heap_alerted) {
            char msg[80];
            snprintf(msg, sizeof msg, "free heap %u bytes below %u", (unsigned)fh, (unsigned)c->low_heap_threshold);
            c->low_heap_alerted = true;
            mcp_core_publish_error(c, "low_heap", ESP_ERR_MCP_LOW_HEAP, msg, MCP_SEVERITY_ERROR);
        } else if (fh >= c->low_heap_threshold + c->low_heap_threshold / 10) {
            c->low_heap_alerted = false;
        }
    }
    return next > now ? (uint32_t)(next - now) : 0;
}
