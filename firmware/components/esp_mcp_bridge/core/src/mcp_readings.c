/*
 * Readings and actuator values: validation, the sensor and batch messages,
 * and the scheduler's part of mcp_core_tick() (sensor reads at their interval
 * or streaming interval, batching in mode integration, re-publishing stored
 * readings after a connect or Home Assistant's birth).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"

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
    mcp_core_write_ts(c, &w);
    if (quality >= 0) {
        mcp_jw_kint(&w, "quality", quality);
    }
    mcp_jw_obj_end(&w);
    return mcp_core_pub_jw(c, topic, &w, qos, retain);
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

esp_err_t mcp_core_publish_reading(mcp_core_t *c, mcp_sensor_t *s)
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
    mcp_core_write_ts(c, w);
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
    return mcp_core_pub_jw(c, mcp_core_topic(c, "batch"), w, c->qos.sensor_qos, false);
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
    err = mcp_core_publish_reading(c, s);
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
            esp_err_t e2 = mcp_core_publish_reading(c, mcp_core_find_sensor(c, readings[i].sensor_id));
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
    if (enable && !mcp_core_local_interval_ok(interval_ms)) {
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
    if (mcp_core_publish_reading(c, s) == ESP_OK) {
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

bool mcp_readings_tick(mcp_core_t *c, uint64_t now, uint64_t *next)
{
    if (c->republish_due && now >= c->republish_due) {
        c->republish_due = 0;
        for (uint16_t i = 0; i < c->n_sensors; i++) {
            mcp_sensor_t *s = &c->sensors[i];
            if (s->has_value && !s->cb) {
                mcp_core_publish_reading(c, s);
            }
        }
    } else if (c->republish_due && c->republish_due < *next) {
        *next = c->republish_due;
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
                return false;
            }
        }
        if (s->next_due < *next) {
            *next = s->next_due;
        }
    }
    if (pending > 0) {
        flush_scheduled(c, pending);
        if (!c->connected) {
            return false;
        }
    }
    return true;
}
