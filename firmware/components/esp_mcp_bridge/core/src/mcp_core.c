/*
 * Portable core: lifecycle, registry, publishing, scheduler, metrics.
 * Commands are in mcp_commands.c, capabilities + discovery in mcp_discovery.c.
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
/* small helpers                                                             */
/* ------------------------------------------------------------------------ */

void mcp_core_log(mcp_core_t *c, mcp_log_level_t lvl, const char *fmt, ...)
{
    if (!c->port.log) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    c->port.log(c->port.ctx, lvl, fmt, ap);
    va_end(ap);
}

uint64_t mcp_core_now(mcp_core_t *c)
{
    uint64_t t = c->port.now_ms(c->port.ctx);
    if (t > c->now_ms) {
        c->now_ms = t;
    }
    return c->now_ms;
}

static uint64_t epoch_now(mcp_core_t *c)
{
    return c->port.epoch_ms ? c->port.epoch_ms(c->port.ctx) : 0;
}

/* "ts" (epoch ms) once the clock is set; nothing before. */
static void write_ts(mcp_core_t *c, mcp_jw_t *w)
{
    uint64_t ts = epoch_now(c);
    if (ts) {
        mcp_jw_kuint(w, "ts", ts);
    }
}

/* Finish the message in w and publish it. */
static esp_err_t pub_jw(mcp_core_t *c, const char *topic, mcp_jw_t *w, int qos, bool retain)
{
    int n = mcp_jw_finish(w);
    if (n < 0) {
        return ESP_ERR_MCP_PAYLOAD_TOO_LARGE;
    }
    return mcp_core_pub(c, topic, w->buf, (size_t)n, qos, retain);
}

static bool copy_str(char *dst, size_t cap, const char *src, const char *dflt)
{
    const char *s = src ? src : dflt;
    if (!s) {
        dst[0] = '\0';
        return true;
    }
    size_t n = strlen(s);
    if (n >= cap) {
        return false;
    }
    memcpy(dst, s, n + 1);
    return true;
}

/* 1..max_len of [a-z0-9_]; a device id may also hold '-' and starts with [a-z0-9]. */
static bool valid_id(const char *id, size_t max_len, bool device)
{
    if (!id || !id[0]) {
        return false;
    }
    size_t n = strlen(id);
    if (n > max_len) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        bool sep = ch == '_' || (device && ch == '-');
        if (!alnum && !(sep && (i > 0 || !device))) {
            return false;
        }
    }
    return true;
}

bool mcp_core_valid_device_id(const char *id)
{
    return valid_id(id, MCP_DEVICE_ID_MAX_LEN, true);
}

bool mcp_core_valid_entity_id(const char *id)
{
    return valid_id(id, MCP_ENTITY_ID_MAX_LEN, false);
}

bool mcp_core_valid_topic_prefix(const char *p)
{
    if (!p || !p[0]) {
        return false;
    }
    size_t n = strlen(p);
    if (n > MCP_TOPIC_PREFIX_MAX_LEN || p[0] == '/' || p[n - 1] == '/') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '+' || ch == '#' || ch < 0x21 || ch == 0x7f) {
            return false;
        }
        if (ch == '/' && p[i + 1] == '/') {
            return false;
        }
    }
    return true;
}

const char *mcp_core_error_code_name(esp_err_t err)
{
    switch (err) {
    case ESP_ERR_MCP_MALFORMED: return "malformed";
    case ESP_ERR_MCP_PAYLOAD_TOO_LARGE: return "payload_too_large";
    case ESP_ERR_MCP_INVALID_VALUE:
    case ESP_ERR_INVALID_ARG: return "invalid_value";
    case ESP_ERR_MCP_OUT_OF_RANGE: return "out_of_range";
    case ESP_ERR_MCP_UNSUPPORTED_ACTION:
    case ESP_ERR_NOT_SUPPORTED: return "unsupported_action";
    case ESP_ERR_MCP_BUSY:
    case ESP_ERR_INVALID_STATE: return "busy";
    case ESP_ERR_MCP_TIMEOUT:
    case ESP_ERR_TIMEOUT: return "timeout";
    case ESP_ERR_MCP_CONFIRMATION_REQUIRED: return "confirmation_required";
    case ESP_ERR_MCP_UNKNOWN_ACTUATOR: return "unknown_actuator";
    case ESP_ERR_MCP_UNKNOWN_SENSOR: return "unknown_sensor";
    case ESP_ERR_MCP_EXPIRED: return "expired";
    default: return "internal";
    }
}

const char *mcp_bridge_err_to_name(esp_err_t err)
{
    switch (err) {
    case ESP_OK: return "ESP_OK";
    case ESP_FAIL: return "ESP_FAIL";
    case ESP_ERR_NO_MEM: return "ESP_ERR_NO_MEM";
    case ESP_ERR_INVALID_ARG: return "ESP_ERR_INVALID_ARG";
    case ESP_ERR_INVALID_STATE: return "ESP_ERR_INVALID_STATE";
    case ESP_ERR_INVALID_SIZE: return "ESP_ERR_INVALID_SIZE";
    case ESP_ERR_NOT_FOUND: return "ESP_ERR_NOT_FOUND";
    case ESP_ERR_NOT_SUPPORTED: return "ESP_ERR_NOT_SUPPORTED";
    case ESP_ERR_TIMEOUT: return "ESP_ERR_TIMEOUT";
    case ESP_ERR_MCP_SENSOR_READ: return "ESP_ERR_MCP_SENSOR_READ";
    case ESP_ERR_MCP_ACTUATOR: return "ESP_ERR_MCP_ACTUATOR";
    case ESP_ERR_MCP_NOT_CONNECTED: return "ESP_ERR_MCP_NOT_CONNECTED";
    case ESP_ERR_MCP_PAYLOAD_TOO_LARGE: return "ESP_ERR_MCP_PAYLOAD_TOO_LARGE";
    case ESP_ERR_MCP_MALFORMED: return "ESP_ERR_MCP_MALFORMED";
    case ESP_ERR_MCP_REGISTRY_FULL: return "ESP_ERR_MCP_REGISTRY_FULL";
    case ESP_ERR_MCP_DUPLICATE_ID: return "ESP_ERR_MCP_DUPLICATE_ID";
    case ESP_ERR_MCP_INVALID_VALUE: return "ESP_ERR_MCP_INVALID_VALUE";
    case ESP_ERR_MCP_OUT_OF_RANGE: return "ESP_ERR_MCP_OUT_OF_RANGE";
    case ESP_ERR_MCP_UNSUPPORTED_ACTION: return "ESP_ERR_MCP_UNSUPPORTED_ACTION";
    case ESP_ERR_MCP_BUSY: return "ESP_ERR_MCP_BUSY";
    case ESP_ERR_MCP_TIMEOUT: return "ESP_ERR_MCP_TIMEOUT";
    case ESP_ERR_MCP_CONFIRMATION_REQUIRED: return "ESP_ERR_MCP_CONFIRMATION_REQUIRED";
    case ESP_ERR_MCP_CONNECTION: return "ESP_ERR_MCP_CONNECTION";
    case ESP_ERR_MCP_LOW_HEAP: return "ESP_ERR_MCP_LOW_HEAP";
    case ESP_ERR_MCP_OTA: return "ESP_ERR_MCP_OTA";
    case ESP_ERR_MCP_UNKNOWN_ACTUATOR: return "ESP_ERR_MCP_UNKNOWN_ACTUATOR";
    case ESP_ERR_MCP_UNKNOWN_SENSOR: return "ESP_ERR_MCP_UNKNOWN_SENSOR";
    case ESP_ERR_MCP_SAFE_MODE: return "ESP_ERR_MCP_SAFE_MODE";
    case ESP_ERR_MCP_EXPIRED: return "ESP_ERR_MCP_EXPIRED";
    default: return "UNKNOWN_ERROR";
    }
}

mcp_value_t mcp_value_string(mcp_value_type_t type, const char *s)
{
    mcp_value_t v;
    memset(&v, 0, sizeof v);
    v.type = type;
    if (s && strlen(s) <= MCP_VALUE_STRING_MAX) {
        strcpy(v.string, s);
    }
    return v;
}

/* Names on the wire of enum values; the first entry is the default name. */
typedef struct {
    const char *name;
    int value;
} name_map_t;

static const name_map_t VALUE_TYPES[] = {{"number", MCP_VALUE_NUMBER}, {"boolean", MCP_VALUE_BOOLEAN},
                                         {"string", MCP_VALUE_STRING}, {"enum", MCP_VALUE_ENUM},
                                         {"trigger", MCP_VALUE_TRIGGER}, {NULL, 0}};
static const name_map_t ACTIONS[] = {{"read", MCP_ACTION_READ},
                                     {"write", MCP_ACTION_WRITE},
                                     {"toggle", MCP_ACTION_TOGGLE},
                                     {"trigger", MCP_ACTION_TRIGGER},
                                     {NULL, 0}};
static const name_map_t DISCOVERY_MODES[] = {
    {"integration", MCP_DISCOVERY_INTEGRATION}, {"mqtt", MCP_DISCOVERY_MQTT}, {NULL, 0}};

static const char *map_name(const name_map_t *map, int value)
{
    for (const name_map_t *m = map; m->name; m++) {
        if (m->value == value) {
            return m->name;
        }
    }
    return map[0].name;
}

static bool map_parse(const name_map_t *map, const char *name, int *value)
{
    for (const name_map_t *m = map; m->name; m++) {
        if (strcmp(m->name, name) == 0) {
            *value = m->value;
            return true;
        }
    }
    return false;
}

const char *mcp_value_type_name(mcp_value_type_t t)
{
    return map_name(VALUE_TYPES, (int)t);
}

bool mcp_parse_value_type(const char *s, mcp_value_type_t *out)
{
    int v;
    if (!map_parse(VALUE_TYPES, s, &v)) {
        return false;
    }
    *out = (mcp_value_type_t)v;
    return true;
}

const char *mcp_action_name(mcp_action_t a)
{
    return map_name(ACTIONS, (int)a);
}

bool mcp_parse_action(const char *s, mcp_action_t *out)
{
    int v;
    if (!map_parse(ACTIONS, s, &v)) {
        return false;
    }
    *out = (mcp_action_t)v;
    return true;
}

const char *mcp_discovery_mode_name(mcp_discovery_mode_t mode)
{
    return map_name(DISCOVERY_MODES, (int)mode);
}

bool mcp_parse_discovery_mode(const char *s, mcp_discovery_mode_t *out)
{
    int v;
    if (!map_parse(DISCOVERY_MODES, s, &v)) {
        return false;
    }
    *out = (mcp_discovery_mode_t)v;
    return true;
}

bool mcp_option_valid(const char *const *options, const char *s)
{
    if (!options) {
        return false;
    }
    for (size_t i = 0; options[i]; i++) {
        if (strcmp(options[i], s) == 0) {
            return true;
        }
    }
    return false;
}

bool mcp_valid_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        return false;
    }
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = mcp_utf8_seq_len(p + i, n - i);
        if (k == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

static void name_from_id(char *dst, size_t cap, const char *id)
{
    size_t i = 0;
    for (; id[i] && i + 1 < cap; i++) {
        char ch = id[i] == '_' ? ' ' : id[i];
        dst[i] = (i == 0) ? (char)toupper((unsigned char)ch) : ch;
    }
    dst[i] = '\0';
}

/* Append s to dst at *n; false when it does not fit (with the NUL). */
static bool topic_put(char *dst, size_t cap, size_t *n, const char *s)
{
    size_t len = strlen(s);
    if (len >= cap - *n) {
        return false;
    }
    memcpy(dst + *n, s, len);
    *n += len;
    return true;
}

/* base/device_id/a[/b[/tail]] into dst, "" when it does not fit. Not snprintf: this
 * runs for every reading and actuator state, and printf costs about 1,000 instructions. */
const char *mcp_core_device_topic(const mcp_core_t *c, char *dst, size_t cap, const char *a, const char *b,
                                  const char *tail)
{
    const char *parts[] = {c->base, c->device_id, a, b, tail};
    size_t n = 0;
    bool fits = cap > 0;
    for (size_t i = 0; fits && i < sizeof parts / sizeof parts[0] && parts[i]; i++) {
        fits = (i == 0 || topic_put(dst, cap, &n, "/")) && topic_put(dst, cap, &n, parts[i]);
    }
    if (cap > 0) {
        dst[fits ? n : 0] = '\0';
    }
    return dst;
}

const char *mcp_core_topic(mcp_core_t *c, const char *suffix)
{
    return mcp_core_device_topic(c, c->topic, sizeof c->topic, suffix, NULL, NULL);
}

esp_err_t mcp_core_pub(mcp_core_t *c, const char *topic, const char *payload, size_t len, int qos, bool retain)
{
    if (!c->connected) {
        return ESP_ERR_MCP_NOT_CONNECTED;
    }
    if (!topic[0]) {
        return ESP_ERR_INVALID_SIZE;
    }
    esp_err_t err = c->port.mqtt_publish(c->port.ctx, topic, payload, len, qos, retain);
    if (err == ESP_OK) {
        c->metrics.messages_sent++;
    } else {
        mcp_core_log(c, MCP_LOG_WARN, "publish to %s failed (%s)", topic, mcp_bridge_err_to_name(err));
    }
    return err;
}

void mcp_core_emit(mcp_core_t *c, mcp_bridge_event_id_t id, void *data)
{
    if (c->handler) {
        c->handler(c->handler_args, MCP_BRIDGE_EVENT, (int32_t)id, data);
    }
}

mcp_sensor_t *mcp_core_find_sensor(mcp_core_t *c, const char *id)
{
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        if (strcmp(c->sensors[i].e.id, id) == 0) {
            return &c->sensors[i];
        }
    }
    return NULL;
}

mcp_actuator_t *mcp_core_find_actuator(mcp_core_t *c, const char *id)
{
    for (uint16_t i = 0; i < c->n_actuators; i++) {
        if (strcmp(c->actuators[i].e.id, id) == 0) {
            return &c->actuators[i];
        }
    }
    return NULL;
}

void mcp_core_write_value(mcp_jw_t *w, const mcp_value_t *v)
{
    switch (v->type) {
    case MCP_VALUE_NUMBER: mcp_jw_num(w, v->number); break;
    case MCP_VALUE_BOOLEAN: mcp_jw_bool(w, v->boolean); break;
    case MCP_VALUE_STRING:
    case MCP_VALUE_ENUM: mcp_jw_str(w, v->string); break;
    case MCP_VALUE_TRIGGER: mcp_jw_null(w); break;
    }
}

uint32_t mcp_core_sensor_interval(const mcp_core_t *c, const mcp_sensor_t *s)
{
    if (s->streaming) {
        return s->stream_interval_ms;
    }
    return s->interval_ms ? s->interval_ms : c->publish_interval_ms;
}

/* ------------------------------------------------------------------------ */
/* lifecycle                                                                 */
/* ------------------------------------------------------------------------ */

static bool local_interval_ok(uint32_t iv)
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
    if (!local_interval_ok(pub_iv)) {
        return ESP_ERR_INVALID_ARG;
    }
    uint32_t met_iv = cfg->metrics_interval_ms ? cfg->metrics_interval_ms : MCP_BRIDGE_DEFAULT_METRICS_INTERVAL_MS;
    if (met_iv != UINT32_MAX && !local_interval_ok(met_iv)) {
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
    if (!copy_str(c->uri, sizeof c->uri, cfg->mqtt_broker_uri, NULL) ||
        !copy_str(c->username, sizeof c->username, cfg->mqtt_username, NULL) ||
        !copy_str(c->password, sizeof c->password, cfg->mqtt_password, NULL) ||
        !copy_str(c->base, sizeof c->base, cfg->base_topic, MCP_BRIDGE_DEFAULT_BASE_TOPIC) ||
        !copy_str(c->disc_prefix, sizeof c->disc_prefix, cfg->discovery_prefix,
                  MCP_BRIDGE_DEFAULT_DISCOVERY_PREFIX) ||
        !copy_str(c->manufacturer, sizeof c->manufacturer, cfg->manufacturer, "Espressif") ||
        !copy_str(c->model, sizeof c->model, cfg->model, "ESP32") ||
        !copy_str(c->fw, sizeof c->fw, cfg->fw_version, MCP_CORE_VERSION) ||
        !copy_str(c->hw, sizeof c->hw, cfg->hw_version, NULL)) {
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
    if (!copy_str(c->client_id, sizeof c->client_id, cfg->mqtt_client_id, c->device_id) ||
        !copy_str(c->name, sizeof c->name, cfg->device_name, c->device_id) || !mcp_valid_utf8(c->name, 64)) {
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
static void publish_descriptions(mcp_core_t *c)
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

static esp_err_t publish_reading(mcp_core_t *c, mcp_sensor_t *s);

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
/* registration                                                              */
/* ------------------------------------------------------------------------ */

esp_err_t mcp_core_set_event_handler(mcp_core_t *c, mcp_bridge_event_handler_t handler, void *args)
{
    if (!c) {
        return ESP_ERR_INVALID_ARG;
    }
    c->handler = handler;
    c->handler_args = args;
    return ESP_OK;
}

static bool id_taken(mcp_core_t *c, const char *id)
{
    return mcp_core_find_sensor(c, id) || mcp_core_find_actuator(c, id);
}

static bool valid_options(const char *const *opts)
{
    if (!opts || !opts[0]) {
        return false;
    }
    for (size_t i = 0; opts[i]; i++) {
        if (i >= 64 || !opts[i][0] || !mcp_valid_utf8(opts[i], MCP_VALUE_STRING_MAX)) {
            return false;
        }
    }
    return true;
}

/* Size the large buffer for the capabilities and discovery of the current
 * registry (counted, not written). Registration time only, never on the hot path. */
static esp_err_t size_big_buffer(mcp_core_t *c)
{
    int a = mcp_capabilities_build(c, NULL, SIZE_MAX);
    int d = mcp_discovery_build(c, NULL, SIZE_MAX);
    if (a < 0 || d < 0) {
        return ESP_ERR_NO_MEM;
    }
    size_t need = (size_t)(a > d ? a : d) + 64; /* + the longer discovery mode name, NUL */
    if (need <= c->big_cap) {
        return ESP_OK;
    }
    char *nb = realloc(c->big, need);
    if (!nb) {
        return ESP_ERR_NO_MEM;
    }
    c->big = nb;
    c->big_cap = need;
    return ESP_OK;
}

/* The registration checks sensors and actuators share (metadata text, enum options). */
static bool valid_entity_args(const char *id, const char *type, const char *unit, const char *name,
                              const char *description, mcp_value_type_t vt, const char *const *options)
{
    return mcp_core_valid_entity_id(id) && mcp_core_valid_entity_id(type) &&
           (!unit || mcp_valid_utf8(unit, MCP_UNIT_MAX)) &&
           (!name || (name[0] && mcp_valid_utf8(name, MCP_NAME_MAX))) &&
           (!description || mcp_valid_utf8(description, 256)) && (vt != MCP_VALUE_ENUM || valid_options(options));
}

/* Room for one more entity with a new id: ESP_OK, or the registration error. */
static esp_err_t registry_room(mcp_core_t *c, const char *id, uint16_t n, uint16_t max)
{
    if (id_taken(c, id)) {
        return ESP_ERR_MCP_DUPLICATE_ID;
    }
    return n >= max ? ESP_ERR_MCP_REGISTRY_FULL : ESP_OK;
}

/* Fill the shared part of a checked entity (a NULL name comes from the id). */
static void entity_init(mcp_entity_t *e, const char *id, const char *type, const char *unit, const char *name,
                        const char *description, mcp_value_type_t vt, const char *const *options, float min,
                        float max)
{
    strcpy(e->id, id);
    strcpy(e->type, type);
    if (unit) {
        strcpy(e->unit, unit);
    }
    if (name) {
        strcpy(e->name, name);
    } else {
        name_from_id(e->name, sizeof e->name, id);
    }
    e->vt = vt;
    e->description = description;
    e->options = options;
    e->min = min;
    e->max = max;
    e->has_range = min < max;
}

/* Count the entity just written at index *n: size the large buffer, announce. */
static esp_err_t registry_add(mcp_core_t *c, uint16_t *n)
{
    (*n)++;
    if (size_big_buffer(c) != ESP_OK) {
        (*n)--;
        return ESP_ERR_NO_MEM;
    }
    if (c->connected) {
        publish_descriptions(c);
    }
    return ESP_OK;
}

esp_err_t mcp_core_register_sensor(mcp_core_t *c, const char *id, const char *type, const char *unit,
                                   const mcp_sensor_metadata_t *md, mcp_sensor_read_cb_t cb, void *ud)
{
    if (!c) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_value_type_t vt = MCP_VALUE_NUMBER;
    if (md && md->value_type && (!mcp_parse_value_type(md->value_type, &vt) || vt == MCP_VALUE_TRIGGER)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!valid_entity_args(id, type, unit, md ? md->name : NULL, md ? md->description : NULL, vt,
                           md ? md->enum_options : NULL)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (md && md->interval_ms && !local_interval_ok(md->interval_ms)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (md && (!isfinite(md->min_range) || !isfinite(md->max_range) || !isfinite(md->accuracy))) {
        return ESP_ERR_INVALID_ARG;
    }
    esp_err_t err = registry_room(c, id, c->n_sensors, c->max_sensors);
    if (err != ESP_OK) {
        return err;
    }
    mcp_sensor_t *s = &c->sensors[c->n_sensors];
    memset(s, 0, sizeof *s);
    if (md) {
        entity_init(&s->e, id, type, unit, md->name, md->description, vt, md->enum_options, md->min_range,
                    md->max_range);
        s->accuracy = md->accuracy;
        s->calibration_required = md->calibration_required;
        s->calibration_interval_s = md->calibration_interval_s;
        s->interval_ms = md->interval_ms;
    } else {
        entity_init(&s->e, id, type, unit, NULL, NULL, vt, NULL, 0, 0);
    }
    s->cb = cb;
    s->ud = ud;
    s->last_quality = -1;
    s->next_due = c->connected ? mcp_core_now(c) : 0;
    return registry_add(c, &c->n_sensors);
}

static esp_err_t parse_actions(const char **list, mcp_value_type_t vt, unsigned *mask)
{
    if (!list) {
        switch (vt) {
        case MCP_VALUE_BOOLEAN: *mask = MCP_ACTION_READ | MCP_ACTION_WRITE | MCP_ACTION_TOGGLE; break;
        case MCP_VALUE_TRIGGER: *mask = MCP_ACTION_TRIGGER; break;
        default: *mask = MCP_ACTION_READ | MCP_ACTION_WRITE; break;
        }
        return ESP_OK;
    }
    unsigned m = 0;
    for (size_t i = 0; list[i]; i++) {
        mcp_action_t a;
        if (!mcp_parse_action(list[i], &a)) {
            return ESP_ERR_INVALID_ARG;
        }
        m |= (unsigned)a;
    }
    if (m == 0) {
        return ESP_ERR_INVALID_ARG;
    }
    if ((m & MCP_ACTION_TOGGLE) && vt != MCP_VALUE_BOOLEAN) {
        return ESP_ERR_INVALID_ARG;
    }
    if ((m & MCP_ACTION_TRIGGER) && vt != MCP_VALUE_TRIGGER) {
        return ESP_ERR_INVALID_ARG;
    }
    if (vt == MCP_VALUE_TRIGGER && (m & ~(unsigned)MCP_ACTION_TRIGGER)) {
        return ESP_ERR_INVALID_ARG;
    }
    *mask = m;
    return ESP_OK;
}

esp_err_t mcp_core_register_actuator(mcp_core_t *c, const char *id, const char *type,
                                     const mcp_actuator_metadata_t *md, mcp_actuator_control_cb_t cb, void *ud)
{
    if (!c || !md || !md->value_type) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_value_type_t vt;
    if (!mcp_parse_value_type(md->value_type, &vt)) {
        return ESP_ERR_INVALID_ARG;
    }
    unsigned mask;
    if (parse_actions(md->supported_actions, vt, &mask) != ESP_OK) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!valid_entity_args(id, type, md->unit, md->name, md->description, vt, md->enum_options)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!isfinite(md->min_value) || !isfinite(md->max_value) || !isfinite(md->step) || md->step < 0) {
        return ESP_ERR_INVALID_ARG;
    }
    esp_err_t err = registry_room(c, id, c->n_actuators, c->max_actuators);
    if (err != ESP_OK) {
        return err;
    }
    mcp_actuator_t *a = &c->actuators[c->n_actuators];
    memset(a, 0, sizeof *a);
    entity_init(&a->e, id, type, md->unit, md->name, md->description, vt, md->enum_options, md->min_value,
                md->max_value);
    a->step = md->step;
    a->response_time_ms = md->response_time_ms;
    a->requires_confirmation = md->requires_confirmation;
    a->actions = mask;
    a->cb = cb;
    a->ud = ud;
    a->value.type = vt;
    /* initial value: the type's zero (first enum option, range minimum) */
    if (vt == MCP_VALUE_ENUM) {
        strcpy(a->value.string, md->enum_options[0]);
    } else if (vt == MCP_VALUE_NUMBER && a->e.has_range && (0.0 < a->e.min || 0.0 > a->e.max)) {
        a->value.number = a->e.min;
    }
    a->has_value = (vt != MCP_VALUE_TRIGGER);
    return registry_add(c, &c->n_actuators);
}

/* ------------------------------------------------------------------------ */
/* values                                                                    */
/* ------------------------------------------------------------------------ */

/** Check a value against a type (+ options for enum). */
static esp_err_t check_value(mcp_value_type_t vt, const char *const *options, const mcp_value_t *v)
{
    if (v->type != vt) {
        return ESP_ERR_INVALID_ARG;
    }
    switch (vt) {
    case MCP_VALUE_NUMBER: return isfinite(v->number) ? ESP_OK : ESP_ERR_INVALID_ARG;
    case MCP_VALUE_BOOLEAN:
    case MCP_VALUE_TRIGGER: return ESP_OK;
    case MCP_VALUE_STRING:
        return (memchr(v->string, '\0', sizeof v->string) && mcp_valid_utf8(v->string, MCP_VALUE_STRING_MAX))
                   ? ESP_OK
                   : ESP_ERR_INVALID_ARG;
    case MCP_VALUE_ENUM:
        return (memchr(v->string, '\0', sizeof v->string) && mcp_option_valid(options, v->string))
                   ? ESP_OK
                   : ESP_ERR_INVALID_ARG;
    }
    return ESP_ERR_INVALID_ARG;
}

esp_err_t mcp_core_set_actuator_value(mcp_core_t *c, const char *id, const mcp_value_t *v)
{
    if (!c || !id || !v) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_actuator_t *a = mcp_core_find_actuator(c, id);
    if (!a) {
        return ESP_ERR_NOT_FOUND;
    }
    if (a->e.vt == MCP_VALUE_TRIGGER || check_value(a->e.vt, a->e.options, v) != ESP_OK) {
        return ESP_ERR_INVALID_ARG;
    }
    a->value = *v;
    a->has_value = true;
    return ESP_OK;
}

esp_err_t mcp_core_get_actuator_value(mcp_core_t *c, const char *id, mcp_value_t *out)
{
    if (!c || !id || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_actuator_t *a = mcp_core_find_actuator(c, id);
    if (!a) {
        return ESP_ERR_NOT_FOUND;
    }
    *out = a->value;
    return ESP_OK;
}

/* {"value":…[,"ts":…][,"quality":…]} on topic (quality < 0: none). */
static esp_err_t publish_value(mcp_core_t *c, const char *topic, const mcp_value_t *v, int quality, int qos,
                               bool retain)
{
    mcp_jw_t w;
    mcp_jw_init(&w, c->out, c->out_cap);
    mcp_jw_obj_begin(&w);
    mcp_jw_key(&w, "value");
    mcp_core_write_value(&w, v);
    write_ts(c, &w);
    if (quality >= 0) {
        mcp_jw_kint(&w, "quality", quality);
    }
    mcp_jw_obj_end(&w);
    return pub_jw(c, topic, &w, qos, retain);
}

esp_err_t mcp_core_publish_state_of(mcp_core_t *c, mcp_actuator_t *a)
{
    char topic[MCP_TOPIC_MAX];
    mcp_core_device_topic(c, topic, sizeof topic, "actuators", a->e.id, "state");
    return publish_value(c, topic, &a->value, -1, c->qos.actuator_qos, true);
}

esp_err_t mcp_core_publish_actuator_state(mcp_core_t *c, const char *id, const mcp_value_t *v)
{
    esp_err_t err = mcp_core_set_actuator_value(c, id, v);
    if (err != ESP_OK) {
        return err;
    }
    return mcp_core_publish_state_of(c, mcp_core_find_actuator(c, id));
}

static esp_err_t publish_reading(mcp_core_t *c, mcp_sensor_t *s)
{
    char topic[MCP_TOPIC_MAX];
    mcp_core_device_topic(c, topic, sizeof topic, "sensors", s->e.id, NULL);
    return publish_value(c, topic, &s->last, s->last_quality, c->qos.sensor_qos, false);
}

/* Start a batch message in buf, keeping room for the closing "]}". */
static void batch_begin(mcp_core_t *c, mcp_jw_t *w, char *buf, size_t cap)
{
    mcp_jw_init(w, buf, cap - 2);
    mcp_jw_obj_begin(w);
    write_ts(c, w);
    mcp_jw_key(w, "readings");
    mcp_jw_arr_begin(w);
}

/* One reading of a batch (quality < 0, ts 0: left out). */
static void batch_item(mcp_jw_t *w, const char *id, const mcp_value_t *v, int quality, uint64_t ts)
{
    mcp_jw_obj_begin(w);
    mcp_jw_kstr(w, "id", id);
    mcp_jw_key(w, "value");
    mcp_core_write_value(w, v);
    if (quality >= 0) {
        mcp_jw_kint(w, "quality", quality);
    }
    if (ts) {
        mcp_jw_kuint(w, "ts", ts);
    }
    mcp_jw_obj_end(w);
}

/* Close the batch (the room kept by batch_begin) and publish it on B/D/batch. */
static esp_err_t batch_close(mcp_core_t *c, mcp_jw_t *w)
{
    w->cap += 2;
    mcp_jw_arr_end(w);
    mcp_jw_obj_end(w);
    return pub_jw(c, mcp_core_topic(c, "batch"), w, c->qos.sensor_qos, false);
}

static void emit_sensor_event(mcp_core_t *c, mcp_sensor_t *s, mcp_bridge_event_id_t id, const mcp_value_t *value)
{
    mcp_event_sensor_t ev = {.sensor_id = s->e.id, .value = value, .streaming = s->streaming,
                             .interval_ms = mcp_core_sensor_interval(c, s)};
    mcp_core_emit(c, id, &ev);
}

static void emit_sensor_read(mcp_core_t *c, mcp_sensor_t *s)
{
    emit_sensor_event(c, s, MCP_EVENT_SENSOR_READ, &s->last);
}

static esp_err_t store_reading(mcp_core_t *c, mcp_sensor_t *s, const mcp_value_t *v, int quality)
{
    if (check_value(s->e.vt, s->e.options, v) != ESP_OK) {
        char msg[96];
        snprintf(msg, sizeof msg, "sensor %s produced an invalid %s value", s->e.id, mcp_value_type_name(s->e.vt));
        c->metrics.sensor_read_errors++;
        mcp_core_publish_error(c, "sensor_read", ESP_ERR_MCP_SENSOR_READ, msg, MCP_SEVERITY_WARNING);
        return ESP_ERR_INVALID_ARG;
    }
    s->last = *v;
    s->last_quality = (quality > 100) ? 100 : quality;
    s->has_value = true;
    return ESP_OK;
}

/* Store a reading of s and publish it on the sensor's own topic. */
static esp_err_t store_and_publish(mcp_core_t *c, mcp_sensor_t *s, const mcp_value_t *v, int quality)
{
    esp_err_t err = store_reading(c, s, v, quality);
    if (err != ESP_OK) {
        return err;
    }
    err = publish_reading(c, s);
    if (err == ESP_OK) {
        emit_sensor_read(c, s);
    }
    return err;
}

esp_err_t mcp_core_publish_sensor_value(mcp_core_t *c, const char *id, const mcp_value_t *v, int quality)
{
    if (!c || !id || !v) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_sensor_t *s = mcp_core_find_sensor(c, id);
    if (!s) {
        return ESP_ERR_NOT_FOUND;
    }
    return store_and_publish(c, s, v, quality);
}

static esp_err_t reading_to_value(const mcp_sensor_t *s, const mcp_sensor_reading_t *r, mcp_value_t *v)
{
    memset(v, 0, sizeof *v);
    v->type = r->value_type;
    switch (r->value_type) {
    case MCP_VALUE_NUMBER: v->number = r->value; break;
    case MCP_VALUE_BOOLEAN: v->boolean = r->bool_value; break;
    case MCP_VALUE_STRING:
    case MCP_VALUE_ENUM:
        if (!r->string_value || strlen(r->string_value) > MCP_VALUE_STRING_MAX) {
            return ESP_ERR_INVALID_ARG;
        }
        strcpy(v->string, r->string_value);
        break;
    default: return ESP_ERR_INVALID_ARG;
    }
    return check_value(s->e.vt, s->e.options, v);
}

/* A reading's quality as published: 0..100, or -1 for none. */
static int reading_quality(const mcp_sensor_reading_t *r)
{
    if (r->quality < 0) {
        return -1;
    }
    return r->quality > 100 ? 100 : (int)lroundf(r->quality);
}

esp_err_t mcp_core_publish_sensor_batch(mcp_core_t *c, const mcp_sensor_reading_t *readings, size_t count)
{
    if (!c || !readings || count == 0 || count > c->max_sensors) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_value_t *v = &c->scratch[MCP_SCRATCH_BATCH]; /* not on the caller's stack (4 KiB at the maximum) */
    /* validate everything first: all or nothing */
    for (size_t i = 0; i < count; i++) {
        if (!readings[i].sensor_id) {
            return ESP_ERR_INVALID_ARG;
        }
        mcp_sensor_t *s = mcp_core_find_sensor(c, readings[i].sensor_id);
        if (!s || reading_to_value(s, &readings[i], v) != ESP_OK || !isfinite(readings[i].quality)) {
            return ESP_ERR_INVALID_ARG;
        }
    }
    for (size_t i = 0; i < count; i++) {
        mcp_sensor_t *s = mcp_core_find_sensor(c, readings[i].sensor_id);
        reading_to_value(s, &readings[i], v);
        store_reading(c, s, v, reading_quality(&readings[i]));
    }
    if (!c->connected) {
        return ESP_ERR_MCP_NOT_CONNECTED;
    }
    mcp_jw_t w;
    batch_begin(c, &w, c->big, c->big_cap);
    for (size_t i = 0; i < count; i++) {
        mcp_sensor_t *s = mcp_core_find_sensor(c, readings[i].sensor_id);
        reading_to_value(s, &readings[i], v);
        batch_item(&w, s->e.id, v, reading_quality(&readings[i]), readings[i].timestamp);
    }
    esp_err_t err = batch_close(c, &w);
    if (c->mode == MCP_DISCOVERY_MQTT) {
        for (size_t i = 0; i < count; i++) {
            esp_err_t e2 = publish_reading(c, mcp_core_find_sensor(c, readings[i].sensor_id));
            if (err == ESP_OK) {
                err = e2;
            }
        }
    }
    return err;
}

esp_err_t mcp_core_set_sensor_streaming(mcp_core_t *c, const char *id, bool enable, uint32_t interval_ms)
{
    if (!c || !id) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_sensor_t *s = mcp_core_find_sensor(c, id);
    if (!s) {
        return ESP_ERR_NOT_FOUND;
    }
    if (enable && !local_interval_ok(interval_ms)) {
        return ESP_ERR_INVALID_ARG;
    }
    uint64_t now = mcp_core_now(c);
    s->streaming = enable;
    if (enable) {
        s->stream_interval_ms = interval_ms;
        s->next_due = now; /* first streamed reading right away */
    } else {
        s->stream_interval_ms = 0;
        s->next_due = now + mcp_core_sensor_interval(c, s);
    }
    emit_sensor_event(c, s, MCP_EVENT_STREAMING_CHANGED, NULL);
    return ESP_OK;
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
    if (cfg->sensor_publish_interval_ms && !local_interval_ok(cfg->sensor_publish_interval_ms)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->metrics_interval_ms && cfg->metrics_interval_ms != UINT32_MAX &&
        !local_interval_ok(cfg->metrics_interval_ms)) {
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
    write_ts(c, &w);
    mcp_jw_obj_end(&w);
    return pub_jw(c, mcp_core_topic(c, "error"), &w, c->qos.error_qos, false);
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
    write_ts(c, w);
    mcp_jw_obj_end(w);
}

esp_err_t mcp_core_publish_metrics_msg(mcp_core_t *c)
{
    mcp_jw_t w;
    mcp_jw_init(&w, c->out, c->out_cap);
    mcp_core_write_metrics(c, &w);
    return pub_jw(c, mcp_core_topic(c, "metrics"), &w, 0, false);
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
    out->time_synced = epoch_now(c) != 0;
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

/* ------------------------------------------------------------------------ */
/* scheduler                                                                 */
/* ------------------------------------------------------------------------ */

/* Call the read callback of s. A failed or non-finite read publishes an
 * `error` and counts sensor_read_errors; true when *v / *quality hold a reading. */
static bool take_reading(mcp_core_t *c, mcp_sensor_t *s, mcp_value_t *v, int *quality)
{
    memset(v, 0, sizeof *v);
    v->type = s->e.vt;
    *quality = -1;
    esp_err_t err = s->cb(s->e.id, v, quality, s->ud);
    if (err != ESP_OK || v->type != s->e.vt || (v->type == MCP_VALUE_NUMBER && !isfinite(v->number))) {
        char msg[96];
        snprintf(msg, sizeof msg, "reading sensor %s failed (%s)", s->e.id,
                 err != ESP_OK ? mcp_bridge_err_to_name(err) : "not a finite value");
        c->metrics.sensor_read_errors++;
        mcp_core_publish_error(c, "sensor_read", ESP_ERR_MCP_SENSOR_READ, msg, MCP_SEVERITY_WARNING);
        return false;
    }
    v->string[MCP_VALUE_STRING_MAX] = '\0';
    if (*quality > 100 || *quality < -1) {
        *quality = *quality > 100 ? 100 : -1;
    }
    return true;
}

/* Mode mqtt: read and publish on the sensor's own topic right away. */
static void read_sensor(mcp_core_t *c, mcp_sensor_t *s)
{
    mcp_value_t *v = &c->scratch[MCP_SCRATCH_READ];
    int quality;
    if (take_reading(c, s, v, &quality)) {
        store_and_publish(c, s, v, quality);
    }
}

/* Mode integration: read and store; the reading goes out with the others of
 * this scheduler pass (flush_scheduled). True when one was stored. */
static bool read_sensor_deferred(mcp_core_t *c, mcp_sensor_t *s)
{
    mcp_value_t *v = &c->scratch[MCP_SCRATCH_READ];
    int quality;
    if (!take_reading(c, s, v, &quality) || store_reading(c, s, v, quality) != ESP_OK) {
        return false;
    }
    s->batch_pending = true;
    return true;
}

/* Append one reading; on overflow the writer is left as it was and false is returned. */
static bool batch_add(mcp_jw_t *w, const mcp_sensor_t *s)
{
    size_t mark = w->len;
    bool comma = w->need_comma;
    batch_item(w, s->e.id, &s->last, s->last_quality, 0);
    if (!w->overflow) {
        return true;
    }
    w->len = mark;
    w->need_comma = comma;
    w->overflow = false;
    return false;
}

/* Close and publish the batch holding the pending readings of sensors[from, to). */
static void batch_send(mcp_core_t *c, mcp_jw_t *w, uint16_t from, uint16_t to)
{
    esp_err_t err = batch_close(c, w);
    for (uint16_t i = from; i < to; i++) {
        mcp_sensor_t *s = &c->sensors[i];
        if (s->batch_pending) {
            s->batch_pending = false;
            if (err == ESP_OK) {
                emit_sensor_read(c, s);
            }
        }
    }
}

/* A reading alone on its own topic B/D/sensors/S. */
static void send_single(mcp_core_t *c, mcp_sensor_t *s)
{
    s->batch_pending = false;
    if (publish_reading(c, s) == ESP_OK) {
        emit_sensor_read(c, s);
    }
}

/*
 * Mode integration: publish the `pending` readings taken in this scheduler
 * pass as one B/D/batch message. A batch is written into the bounded output
 * buffer (c->out); when the next reading does not fit, the batch so far goes
 * out and a new one starts, so nothing is dropped. One reading alone goes on
 * its own topic (fewer bytes than a batch of one, and the same message as in
 * mode mqtt); so does a reading too large for any batch.
 */
static void flush_scheduled(mcp_core_t *c, uint16_t pending)
{
    if (pending == 1) {
        for (uint16_t i = 0; i < c->n_sensors; i++) {
            if (c->sensors[i].batch_pending) {
                send_single(c, &c->sensors[i]);
            }
        }
        return;
    }
    mcp_jw_t w;
    batch_begin(c, &w, c->out, c->out_cap);
    uint16_t from = 0;
    uint16_t in_batch = 0;
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        mcp_sensor_t *s = &c->sensors[i];
        if (!s->batch_pending) {
            continue;
        }
        if (batch_add(&w, s)) {
            in_batch++;
            continue;
        }
        if (in_batch > 0) { /* full: send what is there, retry in a new batch */
            batch_send(c, &w, from, i);
            batch_begin(c, &w, c->out, c->out_cap);
            from = i;
            in_batch = 0;
            if (batch_add(&w, s)) {
                in_batch = 1;
                continue;
            }
        }
        send_single(c, s); /* too large for a batch */
        batch_begin(c, &w, c->out, c->out_cap);
        from = (uint16_t)(i + 1);
    }
    if (in_batch > 0) {
        batch_send(c, &w, from, c->n_sensors);
    }
}

static void drop_pending(mcp_core_t *c)
{
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        c->sensors[i].batch_pending = false;
    }
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
    if (c->republish_due && now >= c->republish_due) {
        c->republish_due = 0;
        for (uint16_t i = 0; i < c->n_sensors; i++) {
            mcp_sensor_t *s = &c->sensors[i];
            if (s->has_value && !s->cb) {
                publish_reading(c, s);
            }
        }
    } else if (c->republish_due && c->republish_due < next) {
        next = c->republish_due;
    }
    /* mode mqtt: every reading on its own topic (HA's MQTT entities read
     * those); mode integration: the readings due now go out together */
    bool batching = (c->mode == MCP_DISCOVERY_INTEGRATION);
    uint16_t pending = 0;
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        mcp_sensor_t *s = &c->sensors[i];
        if (!s->cb || c->safe_mode) {
            continue; /* safe mode: the application's callbacks are off */
        }
        if (now >= s->next_due) {
            uint32_t iv = mcp_core_sensor_interval(c, s);
            /* keep the cadence, but never try to catch up on missed slots */
            s->next_due = (s->next_due && now - s->next_due < iv) ? s->next_due + iv : now + iv;
            if (!batching) {
                read_sensor(c, s);
            } else if (read_sensor_deferred(c, s)) {
                pending++;
            }
            if (!c->connected) {
                drop_pending(c);
                return 100;
            }
        }
        if (s->next_due < next) {
            next = s->next_due;
        }
    }
    if (pending > 0) {
        flush_scheduled(c, pending);
        if (!c->connected) {
            return 100;
        }
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
