/*
 * Small helpers of the core: logging, clocks, id rules, names of codes and
 * enums, UTF-8, topics, lookups.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_core_internal.h"

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

uint64_t mcp_core_epoch_now(mcp_core_t *c)
{
    return c->port.epoch_ms ? c->port.epoch_ms(c->port.ctx) : 0;
}

/* "ts" (epoch ms) once the clock is set; nothing before. */
void mcp_core_write_ts(mcp_core_t *c, mcp_jw_t *w)
{
    uint64_t ts = mcp_core_epoch_now(c);
    if (ts) {
        mcp_jw_kuint(w, "ts", ts);
    }
}

/* Finish the message in w and publish it. */
esp_err_t mcp_core_pub_jw(mcp_core_t *c, const char *topic, mcp_jw_t *w, int qos, bool retain)
{
    int n = mcp_jw_finish(w);
    if (n < 0) {
        return ESP_ERR_MCP_PAYLOAD_TOO_LARGE;
    }
    return mcp_core_pub(c, topic, w->buf, (size_t)n, qos, retain);
}

bool mcp_core_copy_str(char *dst, size_t cap, const char *src, const char *dflt)
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

void mcp_core_name_from_id(char *dst, size_t cap, const char *id)
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

