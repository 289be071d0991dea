/*
 * Registration of sensors and actuators: the rules their ids and metadata
 * follow, and the large buffer sized to what capabilities and discovery need.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_core_internal.h"

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
        mcp_core_name_from_id(e->name, sizeof e->name, id);
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
        mcp_core_publish_descriptions(c);
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
    if (md && md->interval_ms && !mcp_core_local_interval_ok(md->interval_ms)) {
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

