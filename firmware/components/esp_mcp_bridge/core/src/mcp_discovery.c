/*
 * Capabilities JSON (DESIGN §4) and Home Assistant device-based MQTT
 * discovery (DESIGN §6) — both written with the bounded JSON writer into the
 * context's large buffer (allocated at create time).
 *
 * Discovery rules followed (HA 2025.4): `dev` with `ids`, `o` with `name`,
 * `cmps`; each component has `p`, `unique_id` and its own `qos` (device-level
 * qos is not inherited); availability is shared at device level; a switch
 * whose value_template renders ON/OFF sets state_on/state_off explicitly.
 * The exact payload for the reference device is tests/vectors/discovery.json;
 * the platform of every kind of capability is tests/vectors/platforms.json,
 * the same table the integration follows (entity ids survive a takeover).
 */
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"

#define DISCOVERY_ORIGIN "esp_mcp_bridge"

static const char TPL_VALUE[] = "{{ value_json.value }}";
static const char TPL_ONOFF[] = "{{ 'ON' if value_json.value else 'OFF' }}";
static const char PAYLOAD_TRUE[] = "{\"action\":\"write\",\"value\":true}";
static const char PAYLOAD_FALSE[] = "{\"action\":\"write\",\"value\":false}";
static const char CMD_TPL_NUMBER[] = "{\"action\":\"write\",\"value\":{{ value }}}";
static const char CMD_TPL_STRING[] = "{\"action\":\"write\",\"value\":{{ value | to_json }}}";
static const char PAYLOAD_PRESS[] = "{\"action\":\"trigger\"}";
/* HA's default-schema light compares its rendered state with payload_on/payload_off
 * verbatim (it has no state_on/state_off): render exactly those */
static const char TPL_LIGHT_STATE[] = "{{ '{\"action\":\"write\",\"value\":true}' if value_json.value else "
                                      "'{\"action\":\"write\",\"value\":false}' }}";

/* sensor type -> HA device class, with the units HA accepts for it */
typedef struct {
    const char *type;
    const char *device_class;
    const char *units[10];
} dc_map_t;

static const dc_map_t SENSOR_CLASSES[] = {
    {"temperature", "temperature", {"°C", "°F", "K", NULL}},
    {"humidity", "humidity", {"%", NULL}},
    {"pressure", "pressure", {"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi", NULL}},
    {"illuminance", "illuminance", {"lx", NULL}},
    {"light", "illuminance", {"lx", NULL}},
    {"voltage", "voltage", {"V", "mV", "µV", "kV", NULL}},
    {"current", "current", {"A", "mA", NULL}},
    {"power", "power", {"W", "kW", "mW", NULL}},
    {"energy", "energy", {"Wh", "kWh", "MWh", NULL}},
    {"battery", "battery", {"%", NULL}},
    {"moisture", "moisture", {"%", NULL}},
    {"soil_moisture", "moisture", {"%", NULL}},
    {"co2", "carbon_dioxide", {"ppm", NULL}},
    {"carbon_dioxide", "carbon_dioxide", {"ppm", NULL}},
    {"pm25", "pm25", {"µg/m³", NULL}},
    {"pm10", "pm10", {"µg/m³", NULL}},
    {"distance", "distance", {"mm", "cm", "m", "km", NULL}},
    {"signal_strength", "signal_strength", {"dB", "dBm", NULL}},
};

static const char *const BINARY_CLASSES[] = {
    "battery", "cold", "connectivity", "door", "garage_door", "gas", "heat", "light", "lock", "moisture",
    "motion", "moving", "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "vibration", "window", NULL};

/* The device class entry of a number sensor, NULL when it has none (no unit, unit not HA's) */
static const dc_map_t *number_class(const mcp_sensor_t *s)
{
    if (s->e.vt != MCP_VALUE_NUMBER || !s->e.unit[0]) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof SENSOR_CLASSES / sizeof SENSOR_CLASSES[0]; i++) {
        if (strcmp(SENSOR_CLASSES[i].type, s->e.type) == 0) {
            for (size_t k = 0; SENSOR_CLASSES[i].units[k]; k++) {
                if (strcmp(SENSOR_CLASSES[i].units[k], s->e.unit) == 0) {
                    return &SENSOR_CLASSES[i];
                }
            }
            return NULL;
        }
    }
    return NULL;
}

static const char *sensor_device_class(const mcp_sensor_t *s)
{
    if (s->e.vt == MCP_VALUE_ENUM) {
        return "enum";
    }
    if (s->e.vt == MCP_VALUE_BOOLEAN) {
        for (size_t i = 0; BINARY_CLASSES[i]; i++) {
            if (strcmp(BINARY_CLASSES[i], s->e.type) == 0) {
                return BINARY_CLASSES[i];
            }
        }
        return NULL;
    }
    const dc_map_t *m = number_class(s);
    return m ? m->device_class : NULL;
}

/* HA allows only totals for energy (and the Energy dashboard needs one): a meter
 * reading, where a smaller value is a reset */
static const char *sensor_state_class(const mcp_sensor_t *s)
{
    const dc_map_t *m = number_class(s);
    return m && strcmp(m->device_class, "energy") == 0 ? "total_increasing" : "measurement";
}

/* boolean actuators of these types are lights (in the integration too) */
static bool is_light_type(const char *type)
{
    return strcmp(type, "led") == 0 || strcmp(type, "light") == 0;
}

static void write_options(mcp_jw_t *w, const char *const *opts)
{
    mcp_jw_key(w, "options");
    mcp_jw_arr_begin(w);
    for (size_t i = 0; opts && opts[i]; i++) {
        mcp_jw_str(w, opts[i]);
    }
    mcp_jw_arr_end(w);
}

/* ------------------------------------------------------------------------ */
/* capabilities                                                              */
/* ------------------------------------------------------------------------ */

/* The members every sensor and actuator entry has (DESIGN §4). */
static void write_entity(mcp_jw_t *w, const mcp_entity_t *e)
{
    mcp_jw_kstr(w, "id", e->id);
    mcp_jw_kstr(w, "type", e->type);
    mcp_jw_kstr(w, "name", e->name);
    if (e->unit[0]) {
        mcp_jw_kstr(w, "unit", e->unit);
    }
    mcp_jw_kstr(w, "value_type", mcp_value_type_name(e->vt));
    if (e->vt == MCP_VALUE_ENUM) {
        write_options(w, e->options);
    }
    if (e->vt == MCP_VALUE_NUMBER && e->has_range) {
        mcp_jw_knum(w, "min", e->min);
        mcp_jw_knum(w, "max", e->max);
    }
}

int mcp_capabilities_build(mcp_core_t *c, char *buf, size_t cap)
{
    mcp_jw_t w;
    mcp_jw_init(&w, buf, cap);
    mcp_jw_obj_begin(&w);
    mcp_jw_kint(&w, "v", MCP_BRIDGE_PROTOCOL_VERSION);
    mcp_jw_kstr(&w, "device_id", c->device_id);
    mcp_jw_kstr(&w, "name", c->name);
    mcp_jw_kstr(&w, "manufacturer", c->manufacturer);
    mcp_jw_kstr(&w, "model", c->model);
    mcp_jw_kstr(&w, "fw", c->fw);
    if (c->hw[0]) {
        mcp_jw_kstr(&w, "hw", c->hw);
    }
    if (c->mac[0]) {
        mcp_jw_kstr(&w, "mac", c->mac);
    }
    mcp_jw_kstr(&w, "discovery", mcp_discovery_mode_name(c->mode));
    if (c->safe_mode) {
        mcp_jw_kbool(&w, "safe_mode", true);
    }
    mcp_jw_key(&w, "sensors");
    mcp_jw_arr_begin(&w);
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        const mcp_sensor_t *s = &c->sensors[i];
        mcp_jw_obj_begin(&w);
        write_entity(&w, &s->e);
        if (s->accuracy > 0) {
            mcp_jw_knum(&w, "accuracy", s->accuracy);
        }
        mcp_jw_kuint(&w, "interval_ms", s->interval_ms ? s->interval_ms : c->publish_interval_ms);
        if (s->e.description) {
            mcp_jw_kstr(&w, "description", s->e.description);
        }
        if (s->calibration_required) {
            mcp_jw_kbool(&w, "calibration_required", true);
            mcp_jw_kuint(&w, "calibration_interval_s", s->calibration_interval_s);
        }
        mcp_jw_obj_end(&w);
    }
    mcp_jw_arr_end(&w);
    mcp_jw_key(&w, "actuators");
    mcp_jw_arr_begin(&w);
    for (uint16_t i = 0; i < c->n_actuators; i++) {
        const mcp_actuator_t *a = &c->actuators[i];
        mcp_jw_obj_begin(&w);
        write_entity(&w, &a->e);
        if (a->e.vt == MCP_VALUE_NUMBER && a->step > 0) {
            mcp_jw_knum(&w, "step", a->step);
        }
        mcp_jw_key(&w, "actions");
        mcp_jw_arr_begin(&w);
        static const mcp_action_t order[] = {MCP_ACTION_READ, MCP_ACTION_WRITE, MCP_ACTION_TOGGLE, MCP_ACTION_TRIGGER};
        for (size_t k = 0; k < 4; k++) {
            if (a->actions & (unsigned)order[k]) {
                mcp_jw_str(&w, mcp_action_name(order[k]));
            }
        }
        mcp_jw_arr_end(&w);
        if (a->response_time_ms) {
            mcp_jw_kuint(&w, "response_time_ms", a->response_time_ms);
        }
        mcp_jw_kbool(&w, "requires_confirmation", a->requires_confirmation);
        if (a->e.description) {
            mcp_jw_kstr(&w, "description", a->e.description);
        }
        mcp_jw_obj_end(&w);
    }
    mcp_jw_arr_end(&w);
    mcp_jw_obj_end(&w);
    return mcp_jw_finish(&w);
}

esp_err_t mcp_core_publish_capabilities(mcp_core_t *c)
{
    int n = mcp_capabilities_build(c, c->big, c->big_cap);
    if (n < 0) {
        mcp_core_log(c, MCP_LOG_ERROR, "capabilities do not fit %u bytes", (unsigned)c->big_cap);
        return ESP_ERR_MCP_PAYLOAD_TOO_LARGE;
    }
    return mcp_core_pub(c, mcp_core_topic(c, "capabilities"), c->big, (size_t)n, 1, true);
}

/* ------------------------------------------------------------------------ */
/* discovery                                                                 */
/* ------------------------------------------------------------------------ */

static void common_component(mcp_core_t *c, mcp_jw_t *w, const char *platform, const char *id, const char *name,
                             int qos)
{
    char uid[MCP_DEVICE_ID_BUF_SIZE + MCP_ENTITY_ID_MAX_LEN + 2];
    snprintf(uid, sizeof uid, "%s_%s", c->device_id, id);
    mcp_jw_kstr(w, "p", platform);
    mcp_jw_kstr(w, "unique_id", uid);
    mcp_jw_kstr(w, "name", name);
    mcp_jw_kint(w, "qos", qos);
}

static void sensor_component(mcp_core_t *c, mcp_jw_t *w, const mcp_sensor_t *s)
{
    char topic[MCP_TOPIC_MAX];
    mcp_core_device_topic(c, topic, sizeof topic, "sensors", s->e.id, NULL);
    const char *dc = sensor_device_class(s);
    mcp_jw_key(w, s->e.id);
    mcp_jw_obj_begin(w);
    if (s->e.vt == MCP_VALUE_BOOLEAN) {
        common_component(c, w, "binary_sensor", s->e.id, s->e.name, c->qos.sensor_qos);
        mcp_jw_kstr(w, "state_topic", topic);
        mcp_jw_kstr(w, "value_template", TPL_ONOFF);
        mcp_jw_kstr(w, "payload_on", "ON");
        mcp_jw_kstr(w, "payload_off", "OFF");
        if (dc) {
            mcp_jw_kstr(w, "device_class", dc);
        }
    } else {
        common_component(c, w, "sensor", s->e.id, s->e.name, c->qos.sensor_qos);
        mcp_jw_kstr(w, "state_topic", topic);
        mcp_jw_kstr(w, "value_template", TPL_VALUE);
        if (dc) {
            mcp_jw_kstr(w, "device_class", dc);
        }
        if (s->e.vt == MCP_VALUE_ENUM) {
            write_options(w, s->e.options);
        }
        if (s->e.vt == MCP_VALUE_NUMBER) {
            if (s->e.unit[0]) {
                mcp_jw_kstr(w, "unit_of_measurement", s->e.unit);
            }
            mcp_jw_kstr(w, "state_class", sensor_state_class(s));
        }
    }
    mcp_jw_obj_end(w);
}

static void actuator_component(mcp_core_t *c, mcp_jw_t *w, const mcp_actuator_t *a)
{
    char state[MCP_TOPIC_MAX], cmd[MCP_TOPIC_MAX];
    mcp_core_device_topic(c, state, sizeof state, "actuators", a->e.id, "state");
    mcp_core_device_topic(c, cmd, sizeof cmd, "actuators", a->e.id, "set");
    int q = c->qos.actuator_qos;
    mcp_jw_key(w, a->e.id);
    mcp_jw_obj_begin(w);
    bool can_write = (a->actions & MCP_ACTION_WRITE) != 0;
    switch (a->e.vt) {
    case MCP_VALUE_BOOLEAN:
        if (!can_write) {
            common_component(c, w, "binary_sensor", a->e.id, a->e.name, q);
            mcp_jw_kstr(w, "state_topic", state);
            mcp_jw_kstr(w, "value_template", TPL_ONOFF);
            break;
        }
        if (is_light_type(a->e.type)) {
            common_component(c, w, "light", a->e.id, a->e.name, q);
            mcp_jw_kstr(w, "command_topic", cmd);
            mcp_jw_kstr(w, "payload_on", PAYLOAD_TRUE);
            mcp_jw_kstr(w, "payload_off", PAYLOAD_FALSE);
            mcp_jw_kstr(w, "state_topic", state);
            mcp_jw_kstr(w, "state_value_template", TPL_LIGHT_STATE);
            break;
        }
        common_component(c, w, "switch", a->e.id, a->e.name, q);
        mcp_jw_kstr(w, "state_topic", state);
        mcp_jw_kstr(w, "value_template", TPL_ONOFF);
        mcp_jw_kstr(w, "state_on", "ON");
        mcp_jw_kstr(w, "state_off", "OFF");
        mcp_jw_kstr(w, "command_topic", cmd);
        mcp_jw_kstr(w, "payload_on", PAYLOAD_TRUE);
        mcp_jw_kstr(w, "payload_off", PAYLOAD_FALSE);
        break;
    case MCP_VALUE_NUMBER:
        common_component(c, w, can_write ? "number" : "sensor", a->e.id, a->e.name, q);
        mcp_jw_kstr(w, "state_topic", state);
        mcp_jw_kstr(w, "value_template", TPL_VALUE);
        if (can_write) {
            mcp_jw_kstr(w, "command_topic", cmd);
            mcp_jw_kstr(w, "command_template", CMD_TPL_NUMBER);
            if (a->e.has_range) {
                mcp_jw_knum(w, "min", a->e.min);
                mcp_jw_knum(w, "max", a->e.max);
            } else {
                /* HA's defaults are 1..100 */
                mcp_jw_knum(w, "min", -1e9);
                mcp_jw_knum(w, "max", 1e9);
                mcp_jw_kstr(w, "mode", "box");
            }
            if (a->step >= 0.001f) {
                mcp_jw_knum(w, "step", a->step);
            }
        }
        if (a->e.unit[0]) {
            mcp_jw_kstr(w, "unit_of_measurement", a->e.unit);
        }
        break;
    case MCP_VALUE_ENUM:
        common_component(c, w, can_write ? "select" : "sensor", a->e.id, a->e.name, q);
        mcp_jw_kstr(w, "state_topic", state);
        mcp_jw_kstr(w, "value_template", TPL_VALUE);
        if (can_write) {
            mcp_jw_kstr(w, "command_topic", cmd);
            mcp_jw_kstr(w, "command_template", CMD_TPL_STRING);
        } else {
            mcp_jw_kstr(w, "device_class", "enum");
        }
        write_options(w, a->e.options);
        break;
    case MCP_VALUE_STRING:
        common_component(c, w, can_write ? "text" : "sensor", a->e.id, a->e.name, q);
        mcp_jw_kstr(w, "state_topic", state);
        mcp_jw_kstr(w, "value_template", TPL_VALUE);
        if (can_write) {
            mcp_jw_kstr(w, "command_topic", cmd);
            mcp_jw_kstr(w, "command_template", CMD_TPL_STRING);
        }
        break;
    case MCP_VALUE_TRIGGER:
        common_component(c, w, "button", a->e.id, a->e.name, q);
        mcp_jw_kstr(w, "command_topic", cmd);
        mcp_jw_kstr(w, "payload_press", PAYLOAD_PRESS);
        break;
    }
    mcp_jw_obj_end(w);
}

int mcp_discovery_build(mcp_core_t *c, char *buf, size_t cap)
{
    mcp_jw_t w;
    mcp_jw_init(&w, buf, cap);
    mcp_jw_obj_begin(&w);
    mcp_jw_key(&w, "dev");
    mcp_jw_obj_begin(&w);
    mcp_jw_key(&w, "ids");
    mcp_jw_arr_begin(&w);
    mcp_jw_str(&w, c->device_id);
    mcp_jw_arr_end(&w);
    mcp_jw_kstr(&w, "name", c->name);
    mcp_jw_kstr(&w, "mf", c->manufacturer);
    mcp_jw_kstr(&w, "mdl", c->model);
    mcp_jw_kstr(&w, "sw", c->fw);
    if (c->hw[0]) {
        mcp_jw_kstr(&w, "hw", c->hw);
    }
    mcp_jw_obj_end(&w);
    mcp_jw_key(&w, "o");
    mcp_jw_obj_begin(&w);
    mcp_jw_kstr(&w, "name", DISCOVERY_ORIGIN);
    mcp_jw_obj_end(&w);
    /* shared by every component (HA 2025.4 inherits availability) */
    char avail[MCP_TOPIC_MAX];
    mcp_core_device_topic(c, avail, sizeof avail, "status", NULL, NULL);
    mcp_jw_kstr(&w, "availability_topic", avail);
    mcp_jw_kstr(&w, "payload_available", "online");
    mcp_jw_kstr(&w, "payload_not_available", "offline");
    mcp_jw_key(&w, "cmps");
    mcp_jw_obj_begin(&w);
    for (uint16_t i = 0; i < c->n_sensors; i++) {
        sensor_component(c, &w, &c->sensors[i]);
    }
    for (uint16_t i = 0; i < c->n_actuators; i++) {
        actuator_component(c, &w, &c->actuators[i]);
    }
    mcp_jw_obj_end(&w);
    mcp_jw_obj_end(&w);
    return mcp_jw_finish(&w);
}

const char *mcp_core_discovery_topic(mcp_core_t *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/device/%s/config", c->disc_prefix, c->device_id);
    return buf;
}

esp_err_t mcp_core_publish_discovery(mcp_core_t *c)
{
    int n = mcp_discovery_build(c, c->big, c->big_cap);
    if (n < 0) {
        mcp_core_log(c, MCP_LOG_ERROR, "discovery does not fit %u bytes", (unsigned)c->big_cap);
        return ESP_ERR_MCP_PAYLOAD_TOO_LARGE;
    }
    char topic[MCP_TOPIC_MAX];
    c->discovery_maybe_retained = true;
    return mcp_core_pub(c, mcp_core_discovery_topic(c, topic, sizeof topic), c->big, (size_t)n, 1, true);
}

/*
 * The empty retained payload removes the device from HA's MQTT integration. A device
 * that never published a discovery message (this boot, nor before as far as it knows:
 * no stored mode) sends none: HA would log "No device components to cleanup" for it,
 * once per device of a fleet taken over during its hold-off (docs/protocol.md §13.4).
 * A message left over from before an erased store is cleared by the integration's
 * takeover fallback.
 */
esp_err_t mcp_core_clear_discovery(mcp_core_t *c)
{
    if (!c->discovery_maybe_retained) {
        return ESP_OK;
    }
    char topic[MCP_TOPIC_MAX];
    return mcp_core_pub(c, mcp_core_discovery_topic(c, topic, sizeof topic), "", 0, 1, true);
}
