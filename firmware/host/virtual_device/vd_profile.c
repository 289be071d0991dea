#include "vd_profile.h"

#include "cJSON.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VD_MAX_PROFILE_BYTES (256u * 1024u)

typedef struct {
    char *err;
    size_t err_len;
    double scale;
} parse_ctx_t;

static esp_err_t fail(parse_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static esp_err_t fail(parse_ctx_t *c, const char *fmt, ...)
{
    if (c->err != NULL && c->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_len, fmt, ap);
        va_end(ap);
    }
    return ESP_ERR_INVALID_ARG;
}

/* Every key of `obj` must be in the NULL-terminated list `allowed`. */
static esp_err_t check_keys(parse_ctx_t *c, const cJSON *obj, const char *where, const char *const *allowed)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (item->string != NULL && strcmp(item->string, *a) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            return fail(c, "%s: unknown key \"%s\"", where, item->string ? item->string : "?");
        }
    }
    return ESP_OK;
}

static esp_err_t get_string(parse_ctx_t *c, const cJSON *obj, const char *where, const char *key, bool required,
                            const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL) {
        if (required) {
            return fail(c, "%s: missing \"%s\"", where, key);
        }
        return ESP_OK;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return fail(c, "%s: \"%s\" must be a string", where, key);
    }
    *out = v->valuestring;
    return ESP_OK;
}

static esp_err_t get_number(parse_ctx_t *c, const cJSON *obj, const char *where, const char *key, bool *present,
                            double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present != NULL) {
        *present = v != NULL;
    }
    if (v == NULL) {
        return ESP_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        return fail(c, "%s: \"%s\" must be a number", where, key);
    }
    *out = v->valuedouble;
    return ESP_OK;
}

static esp_err_t get_uint(parse_ctx_t *c, const cJSON *obj, const char *where, const char *key, uint32_t max,
                          uint32_t *out)
{
    bool present = false;
    double d = 0;
    esp_err_t e = get_number(c, obj, where, key, &present, &d);
    if (e != ESP_OK || !present) {
        return e;
    }
    if (d < 0 || d > (double)max || d != floor(d)) {
        return fail(c, "%s: \"%s\" must be an integer 0..%u", where, key, (unsigned)max);
    }
    *out = (uint32_t)d;
    return ESP_OK;
}

static esp_err_t get_bool(parse_ctx_t *c, const cJSON *obj, const char *where, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL) {
        return ESP_OK;
    }
    if (!cJSON_IsBool(v)) {
        return fail(c, "%s: \"%s\" must be true or false", where, key);
    }
    *out = cJSON_IsTrue(v);
    return ESP_OK;
}

static esp_err_t get_probability(parse_ctx_t *c, const cJSON *obj, const char *where, const char *key, double *out)
{
    bool present = false;
    esp_err_t e = get_number(c, obj, where, key, &present, out);
    if (e == ESP_OK && present && (*out < 0.0 || *out > 1.0)) {
        return fail(c, "%s: \"%s\" must be between 0 and 1", where, key);
    }
    return e;
}

static uint32_t scale_interval(const parse_ctx_t *c, uint32_t ms)
{
    if (ms == 0) {
        return 0;
    }
    double v = (double)ms * c->scale;
    if (v < MCP_MIN_INTERVAL_MS) {
        v = MCP_MIN_INTERVAL_MS;
    }
    if (v > MCP_MAX_INTERVAL_MS) {
        v = MCP_MAX_INTERVAL_MS;
    }
    return (uint32_t)v;
}

static int value_type_from_name(const char *s, bool actuator)
{
    if (s == NULL || strcmp(s, "number") == 0) {
        return MCP_VALUE_NUMBER;
    }
    if (strcmp(s, "boolean") == 0) {
        return MCP_VALUE_BOOLEAN;
    }
    if (strcmp(s, "string") == 0) {
        return MCP_VALUE_STRING;
    }
    if (strcmp(s, "enum") == 0) {
        return MCP_VALUE_ENUM;
    }
    if (actuator && strcmp(s, "trigger") == 0) {
        return MCP_VALUE_TRIGGER;
    }
    return -1;
}

static const char *value_type_name(mcp_value_type_t t)
{
    switch (t) {
    case MCP_VALUE_BOOLEAN:
        return "boolean";
    case MCP_VALUE_STRING:
        return "string";
    case MCP_VALUE_ENUM:
        return "enum";
    case MCP_VALUE_TRIGGER:
        return "trigger";
    case MCP_VALUE_NUMBER:
    default:
        return "number";
    }
}

static esp_err_t get_string_list(parse_ctx_t *c, const cJSON *obj, const char *where, const char *key,
                                 const char **list, size_t *count)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    *count = 0;
    list[0] = NULL;
    if (arr == NULL) {
        return ESP_OK;
    }
    if (!cJSON_IsArray(arr)) {
        return fail(c, "%s: \"%s\" must be a list of strings", where, key);
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
            return fail(c, "%s: \"%s\" must be a list of non-empty strings", where, key);
        }
        if (strlen(item->valuestring) > MCP_VALUE_STRING_MAX) {
            return fail(c, "%s: an entry of \"%s\" is longer than %d bytes", where, key, MCP_VALUE_STRING_MAX);
        }
        if (*count >= VD_MAX_OPTIONS) {
            return fail(c, "%s: \"%s\" has more than %d entries", where, key, VD_MAX_OPTIONS);
        }
        list[(*count)++] = item->valuestring;
    }
    list[*count] = NULL;
    return ESP_OK;
}

static size_t option_index(const char *const *options, size_t count, const char *s)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(options[i], s) == 0) {
            return i;
        }
    }
    return count;
}

/* ------------------------------------------------------------------ signal */

static esp_err_t parse_signal(parse_ctx_t *c, const cJSON *obj, const char *where, vd_sensor_def_t *s)
{
    static const char *const keys[] = {"kind", "value", "offset", "amplitude", "period_ms", "period_s", "phase",
                                       "start", "step", "min", "max", "low", "high", "duty", "probability",
                                       "noise", "decimals", NULL};
    vd_signal_params_t *p = &s->signal;
    memset(p, 0, sizeof(*p));
    p->decimals = -1;
    if (obj == NULL) {
        /* No signal: a constant (0 / false / first option). */
        p->kind = VD_SIGNAL_CONSTANT;
        return ESP_OK;
    }
    if (!cJSON_IsObject(obj)) {
        return fail(c, "%s: \"signal\" must be an object", where);
    }
    esp_err_t e = check_keys(c, obj, where, keys);
    if (e != ESP_OK) {
        return e;
    }
    const char *kind = NULL;
    if ((e = get_string(c, obj, where, "kind", true, &kind)) != ESP_OK) {
        return e;
    }
    int k = vd_signal_kind_from_name(kind);
    if (k < 0) {
        return fail(c, "%s: unknown signal kind \"%s\" (constant, sine, random_walk, square/step, toggle, "
                       "probability, cycle)",
                    where, kind);
    }
    p->kind = (vd_signal_kind_t)k;

    bool allowed;
    switch (s->value_type) {
    case MCP_VALUE_NUMBER:
        allowed = k == VD_SIGNAL_CONSTANT || k == VD_SIGNAL_SINE || k == VD_SIGNAL_RANDOM_WALK ||
                  k == VD_SIGNAL_SQUARE;
        break;
    case MCP_VALUE_BOOLEAN:
        allowed = k == VD_SIGNAL_CONSTANT || k == VD_SIGNAL_TOGGLE || k == VD_SIGNAL_PROBABILITY ||
                  k == VD_SIGNAL_SQUARE;
        break;
    default:
        allowed = k == VD_SIGNAL_CONSTANT || k == VD_SIGNAL_CYCLE;
        break;
    }
    if (!allowed) {
        return fail(c, "%s: signal \"%s\" does not fit value_type \"%s\"", where, kind,
                    value_type_name(s->value_type));
    }

    bool present = false;
    double d = 0;
    const char *num_keys[] = {"offset", "amplitude", "phase", "start", "step", "min", "max", "low", "high",
                              "duty", "noise"};
    double *num_dst[] = {&p->offset, &p->amplitude, &p->phase, &p->start, &p->step, &p->min,
                         &p->max,    &p->low,       &p->high,  &p->duty,  &p->noise};
    for (size_t i = 0; i < sizeof(num_keys) / sizeof(num_keys[0]); i++) {
        if ((e = get_number(c, obj, where, num_keys[i], NULL, num_dst[i])) != ESP_OK) {
            return e;
        }
    }
    if (p->noise < 0 || p->step < 0 || p->duty < 0 || p->duty > 1) {
        return fail(c, "%s: noise and step must be >= 0, duty between 0 and 1", where);
    }
    if ((e = get_probability(c, obj, where, "probability", &p->probability)) != ESP_OK) {
        return e;
    }
    if ((e = get_number(c, obj, where, "period_ms", &present, &d)) != ESP_OK) {
        return e;
    }
    if (present) {
        p->period_ms = d;
    }
    if ((e = get_number(c, obj, where, "period_s", &present, &d)) != ESP_OK) {
        return e;
    }
    if (present) {
        p->period_ms = d * 1000.0;
    }
    if (p->period_ms < 0) {
        return fail(c, "%s: the signal period must be positive", where);
    }
    if ((k == VD_SIGNAL_SINE || k == VD_SIGNAL_SQUARE) && p->period_ms <= 0) {
        return fail(c, "%s: signal \"%s\" needs \"period_ms\" or \"period_s\"", where, kind);
    }
    p->period_ms *= c->scale;
    if (k == VD_SIGNAL_RANDOM_WALK && p->min > p->max) {
        return fail(c, "%s: random_walk min > max", where);
    }
    if ((e = get_number(c, obj, where, "decimals", &present, &d)) != ESP_OK) {
        return e;
    }
    if (present) {
        if (d < 0 || d > 9 || d != floor(d)) {
            return fail(c, "%s: \"decimals\" must be an integer 0..9", where);
        }
        p->decimals = (int)d;
    }

    const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, "value");
    if (value != NULL) {
        if (s->value_type == MCP_VALUE_NUMBER && cJSON_IsNumber(value) && isfinite(value->valuedouble)) {
            p->value = value->valuedouble;
        } else if (s->value_type == MCP_VALUE_BOOLEAN && cJSON_IsBool(value)) {
            p->value = cJSON_IsTrue(value) ? 1.0 : 0.0;
        } else if ((s->value_type == MCP_VALUE_ENUM || s->value_type == MCP_VALUE_STRING) && cJSON_IsString(value)) {
            if (s->value_type == MCP_VALUE_STRING && s->option_count == 0) {
                s->options[0] = value->valuestring;
                s->options[1] = NULL;
                s->option_count = 1;
            }
            size_t idx = option_index(s->options, s->option_count, value->valuestring);
            if (idx >= s->option_count) {
                return fail(c, "%s: signal value \"%s\" is not one of the options", where, value->valuestring);
            }
            p->value = (double)idx;
        } else {
            return fail(c, "%s: signal \"value\" does not match value_type \"%s\"", where,
                        value_type_name(s->value_type));
        }
    }
    return ESP_OK;
}

/* ------------------------------------------------------------------ sensor */

static esp_err_t parse_errors(parse_ctx_t *c, const cJSON *obj, const char *where, bool actuator, double *prob,
                              uint32_t *every_n, esp_err_t *code)
{
    static const char *const sensor_keys[] = {"probability", "every_n", NULL};
    static const char *const actuator_keys[] = {"probability", "every_n", "code", NULL};
    if (obj == NULL) {
        return ESP_OK;
    }
    if (!cJSON_IsObject(obj)) {
        return fail(c, "%s: \"errors\" must be an object", where);
    }
    esp_err_t e = check_keys(c, obj, where, actuator ? actuator_keys : sensor_keys);
    if (e == ESP_OK) {
        e = get_probability(c, obj, where, "probability", prob);
    }
    if (e == ESP_OK) {
        e = get_uint(c, obj, where, "every_n", 1000000, every_n);
    }
    if (e == ESP_OK && actuator) {
        const char *name = NULL;
        e = get_string(c, obj, where, "code", false, &name);
        if (e == ESP_OK && name != NULL) {
            *code = vd_error_code_from_name(name);
            if (*code == 0) {
                return fail(c, "%s: unknown error code \"%s\" (invalid_value, out_of_range, unsupported_action, "
                               "busy, timeout, confirmation_required, internal)",
                            where, name);
            }
        }
    }
    return e;
}

static esp_err_t parse_sensor(parse_ctx_t *c, const cJSON *obj, size_t index, vd_sensor_def_t *s)
{
    static const char *const keys[] = {"id", "type", "name", "unit", "value_type", "description", "min", "max",
                                       "accuracy", "interval_ms", "quality", "calibration_required",
                                       "calibration_interval_s", "options", "signal", "errors", NULL};
    char where[64];
    snprintf(where, sizeof(where), "sensors[%zu]", index);
    if (!cJSON_IsObject(obj)) {
        return fail(c, "%s: must be an object", where);
    }
    esp_err_t e = check_keys(c, obj, where, keys);
    if (e == ESP_OK) {
        e = get_string(c, obj, where, "id", true, &s->id);
    }
    if (e != ESP_OK) {
        return e;
    }
    snprintf(where, sizeof(where), "sensor \"%.32s\"", s->id);
    const char *vt = NULL;
    s->quality = -1;
    if ((e = get_string(c, obj, where, "type", false, &s->type)) != ESP_OK ||
        (e = get_string(c, obj, where, "name", false, &s->name)) != ESP_OK ||
        (e = get_string(c, obj, where, "unit", false, &s->unit)) != ESP_OK ||
        (e = get_string(c, obj, where, "description", false, &s->description)) != ESP_OK ||
        (e = get_string(c, obj, where, "value_type", false, &vt)) != ESP_OK) {
        return e;
    }
    int t = value_type_from_name(vt, false);
    if (t < 0) {
        return fail(c, "%s: unknown value_type \"%s\" (number, boolean, string, enum)", where, vt);
    }
    s->value_type = (mcp_value_type_t)t;
    if (s->type == NULL) {
        s->type = s->id;
    }
    bool has_min = false, has_max = false;
    uint32_t quality = 0;
    bool has_quality = cJSON_GetObjectItemCaseSensitive(obj, "quality") != NULL;
    if ((e = get_number(c, obj, where, "min", &has_min, &s->min)) != ESP_OK ||
        (e = get_number(c, obj, where, "max", &has_max, &s->max)) != ESP_OK ||
        (e = get_number(c, obj, where, "accuracy", NULL, &s->accuracy)) != ESP_OK ||
        (e = get_uint(c, obj, where, "interval_ms", MCP_MAX_INTERVAL_MS, &s->interval_ms)) != ESP_OK ||
        (e = get_uint(c, obj, where, "quality", 100, &quality)) != ESP_OK ||
        (e = get_bool(c, obj, where, "calibration_required", &s->calibration_required)) != ESP_OK ||
        (e = get_uint(c, obj, where, "calibration_interval_s", UINT32_MAX, &s->calibration_interval_s)) != ESP_OK) {
        return e;
    }
    if (has_min != has_max || (has_min && s->min >= s->max)) {
        return fail(c, "%s: give both \"min\" and \"max\", with min < max", where);
    }
    s->has_range = has_min;
    if (has_quality) {
        s->quality = (int)quality;
    }
    if (s->interval_ms != 0 && s->interval_ms < MCP_MIN_INTERVAL_MS) {
        return fail(c, "%s: \"interval_ms\" must be at least %u", where, (unsigned)MCP_MIN_INTERVAL_MS);
    }
    s->interval_ms = scale_interval(c, s->interval_ms);
    if ((e = get_string_list(c, obj, where, "options", s->options, &s->option_count)) != ESP_OK) {
        return e;
    }
    if (s->value_type == MCP_VALUE_ENUM && s->option_count == 0) {
        return fail(c, "%s: an enum sensor needs \"options\"", where);
    }
    if (s->value_type != MCP_VALUE_ENUM && s->value_type != MCP_VALUE_STRING && s->option_count > 0) {
        return fail(c, "%s: \"options\" only for enum and string sensors", where);
    }
    if ((e = parse_signal(c, cJSON_GetObjectItemCaseSensitive(obj, "signal"), where, s)) != ESP_OK) {
        return e;
    }
    if (s->value_type == MCP_VALUE_STRING && s->option_count == 0) {
        return fail(c, "%s: a string sensor needs \"options\" (values to cycle) or a constant signal value", where);
    }
    if ((e = parse_errors(c, cJSON_GetObjectItemCaseSensitive(obj, "errors"), where, false, &s->fail_probability,
                          &s->fail_every_n, NULL)) != ESP_OK) {
        return e;
    }

    mcp_sensor_metadata_t *m = &s->meta;
    memset(m, 0, sizeof(*m));
    if (s->has_range) {
        m->min_range = (float)s->min;
        m->max_range = (float)s->max;
    }
    m->accuracy = (float)s->accuracy;
    m->description = s->description;
    m->calibration_required = s->calibration_required;
    m->calibration_interval_s = s->calibration_interval_s;
    m->name = s->name;
    m->value_type = s->value_type == MCP_VALUE_NUMBER ? NULL : value_type_name(s->value_type);
    m->enum_options = s->value_type == MCP_VALUE_ENUM ? s->options : NULL;
    m->interval_ms = s->interval_ms;
    return ESP_OK;
}

/* ---------------------------------------------------------------- actuator */

static esp_err_t parse_initial(parse_ctx_t *c, const cJSON *v, const char *where, vd_actuator_def_t *a)
{
    if (v == NULL) {
        return ESP_OK;
    }
    a->has_initial = true;
    a->initial.type = a->value_type;
    switch (a->value_type) {
    case MCP_VALUE_NUMBER:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
            return fail(c, "%s: \"initial\" must be a number", where);
        }
        if (a->has_range && (v->valuedouble < a->min || v->valuedouble > a->max)) {
            return fail(c, "%s: \"initial\" is outside min..max", where);
        }
        a->initial.number = v->valuedouble;
        return ESP_OK;
    case MCP_VALUE_BOOLEAN:
        if (!cJSON_IsBool(v)) {
            return fail(c, "%s: \"initial\" must be true or false", where);
        }
        a->initial.boolean = cJSON_IsTrue(v);
        return ESP_OK;
    case MCP_VALUE_STRING:
    case MCP_VALUE_ENUM:
        if (!cJSON_IsString(v) || strlen(v->valuestring) > MCP_VALUE_STRING_MAX) {
            return fail(c, "%s: \"initial\" must be a string of at most %d bytes", where, MCP_VALUE_STRING_MAX);
        }
        if (a->value_type == MCP_VALUE_ENUM && option_index(a->options, a->option_count, v->valuestring) >=
                                                   a->option_count) {
            return fail(c, "%s: \"initial\" \"%s\" is not one of the options", where, v->valuestring);
        }
        a->initial = mcp_value_string(a->value_type, v->valuestring);
        return ESP_OK;
    case MCP_VALUE_TRIGGER:
    default:
        return fail(c, "%s: a trigger has no \"initial\" value", where);
    }
}

static esp_err_t parse_actuator(parse_ctx_t *c, const cJSON *obj, size_t index, vd_actuator_def_t *a)
{
    static const char *const keys[] = {"id", "type", "name", "unit", "value_type", "description", "min", "max",
                                       "step", "options", "actions", "response_time_ms", "requires_confirmation",
                                       "initial", "delay_ms", "errors", NULL};
    char where[64];
    snprintf(where, sizeof(where), "actuators[%zu]", index);
    if (!cJSON_IsObject(obj)) {
        return fail(c, "%s: must be an object", where);
    }
    esp_err_t e = check_keys(c, obj, where, keys);
    if (e == ESP_OK) {
        e = get_string(c, obj, where, "id", true, &a->id);
    }
    if (e != ESP_OK) {
        return e;
    }
    snprintf(where, sizeof(where), "actuator \"%.32s\"", a->id);
    const char *vt = NULL;
    if ((e = get_string(c, obj, where, "type", false, &a->type)) != ESP_OK ||
        (e = get_string(c, obj, where, "name", false, &a->name)) != ESP_OK ||
        (e = get_string(c, obj, where, "unit", false, &a->unit)) != ESP_OK ||
        (e = get_string(c, obj, where, "description", false, &a->description)) != ESP_OK ||
        (e = get_string(c, obj, where, "value_type", true, &vt)) != ESP_OK) {
        return e;
    }
    int t = value_type_from_name(vt, true);
    if (t < 0) {
        return fail(c, "%s: unknown value_type \"%s\" (number, boolean, string, enum, trigger)", where, vt);
    }
    a->value_type = (mcp_value_type_t)t;
    if (a->type == NULL) {
        a->type = a->id;
    }
    bool has_min = false, has_max = false;
    if ((e = get_number(c, obj, where, "min", &has_min, &a->min)) != ESP_OK ||
        (e = get_number(c, obj, where, "max", &has_max, &a->max)) != ESP_OK ||
        (e = get_number(c, obj, where, "step", NULL, &a->step)) != ESP_OK ||
        (e = get_uint(c, obj, where, "response_time_ms", 600000, &a->response_time_ms)) != ESP_OK ||
        (e = get_bool(c, obj, where, "requires_confirmation", &a->requires_confirmation)) != ESP_OK ||
        (e = get_uint(c, obj, where, "delay_ms", 60000, &a->delay_ms)) != ESP_OK) {
        return e;
    }
    if (has_min != has_max || (has_min && a->min >= a->max) || a->step < 0) {
        return fail(c, "%s: give both \"min\" and \"max\" with min < max, and step >= 0", where);
    }
    if ((has_min || a->step > 0) && a->value_type != MCP_VALUE_NUMBER) {
        return fail(c, "%s: min/max/step only for number actuators", where);
    }
    a->has_range = has_min;
    if ((e = get_string_list(c, obj, where, "options", a->options, &a->option_count)) != ESP_OK) {
        return e;
    }
    if ((a->value_type == MCP_VALUE_ENUM) != (a->option_count > 0)) {
        return fail(c, "%s: \"options\" are required for enum actuators and only for them", where);
    }
    size_t n_actions = 0;
    if ((e = get_string_list(c, obj, where, "actions", a->actions, &n_actions)) != ESP_OK) {
        return e;
    }
    if (n_actions > 4) {
        return fail(c, "%s: at most 4 actions", where);
    }
    for (size_t i = 0; i < n_actions; i++) {
        if (strcmp(a->actions[i], "read") != 0 && strcmp(a->actions[i], "write") != 0 &&
            strcmp(a->actions[i], "toggle") != 0 && strcmp(a->actions[i], "trigger") != 0) {
            return fail(c, "%s: unknown action \"%s\" (read, write, toggle, trigger)", where, a->actions[i]);
        }
    }
    if ((e = parse_initial(c, cJSON_GetObjectItemCaseSensitive(obj, "initial"), where, a)) != ESP_OK) {
        return e;
    }
    a->fail_code = ESP_ERR_MCP_BUSY;
    if ((e = parse_errors(c, cJSON_GetObjectItemCaseSensitive(obj, "errors"), where, true, &a->fail_probability,
                          &a->fail_every_n, &a->fail_code)) != ESP_OK) {
        return e;
    }

    mcp_actuator_metadata_t *m = &a->meta;
    memset(m, 0, sizeof(*m));
    m->value_type = value_type_name(a->value_type);
    m->description = a->description;
    m->supported_actions = n_actions > 0 ? a->actions : NULL;
    if (a->has_range) {
        m->min_value = (float)a->min;
        m->max_value = (float)a->max;
    }
    m->step = (float)a->step;
    m->enum_options = a->value_type == MCP_VALUE_ENUM ? a->options : NULL;
    m->response_time_ms = a->response_time_ms;
    m->requires_confirmation = a->requires_confirmation;
    m->name = a->name;
    m->unit = a->unit;
    return ESP_OK;
}

/* ----------------------------------------------------------------- profile */

esp_err_t vd_error_code_from_name(const char *name)
{
    static const struct {
        const char *name;
        esp_err_t code;
    } map[] = {
        {"invalid_value", ESP_ERR_MCP_INVALID_VALUE},
        {"out_of_range", ESP_ERR_MCP_OUT_OF_RANGE},
        {"unsupported_action", ESP_ERR_MCP_UNSUPPORTED_ACTION},
        {"busy", ESP_ERR_MCP_BUSY},
        {"timeout", ESP_ERR_MCP_TIMEOUT},
        {"confirmation_required", ESP_ERR_MCP_CONFIRMATION_REQUIRED},
        {"internal", ESP_FAIL},
    };
    for (size_t i = 0; name != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].name, name) == 0) {
            return map[i].code;
        }
    }
    return 0;
}

static esp_err_t parse_profile(parse_ctx_t *c, const cJSON *root, vd_profile_t *p)
{
    static const char *const keys[] = {"name", "description", "manufacturer", "model", "fw", "hw",
                                       "publish_interval_ms", "metrics_interval_ms", "command_timeout_ms",
                                       "sensors", "actuators", NULL};
    if (!cJSON_IsObject(root)) {
        return fail(c, "profile: the document must be a JSON object");
    }
    esp_err_t e = check_keys(c, root, "profile", keys);
    const char *ignored = NULL;
    if (e != ESP_OK || (e = get_string(c, root, "profile", "name", false, &p->name)) != ESP_OK ||
        (e = get_string(c, root, "profile", "description", false, &ignored)) != ESP_OK ||
        (e = get_string(c, root, "profile", "manufacturer", false, &p->manufacturer)) != ESP_OK ||
        (e = get_string(c, root, "profile", "model", false, &p->model)) != ESP_OK ||
        (e = get_string(c, root, "profile", "fw", false, &p->fw)) != ESP_OK ||
        (e = get_string(c, root, "profile", "hw", false, &p->hw)) != ESP_OK ||
        (e = get_uint(c, root, "profile", "publish_interval_ms", MCP_MAX_INTERVAL_MS, &p->publish_interval_ms)) !=
            ESP_OK ||
        (e = get_uint(c, root, "profile", "metrics_interval_ms", MCP_MAX_INTERVAL_MS, &p->metrics_interval_ms)) !=
            ESP_OK ||
        (e = get_uint(c, root, "profile", "command_timeout_ms", 600000, &p->command_timeout_ms)) != ESP_OK) {
        return e;
    }
    if ((p->publish_interval_ms != 0 && p->publish_interval_ms < MCP_MIN_INTERVAL_MS) ||
        (p->metrics_interval_ms != 0 && p->metrics_interval_ms < MCP_MIN_INTERVAL_MS)) {
        return fail(c, "profile: intervals must be at least %u ms", (unsigned)MCP_MIN_INTERVAL_MS);
    }
    p->publish_interval_ms = scale_interval(c, p->publish_interval_ms);
    p->metrics_interval_ms = scale_interval(c, p->metrics_interval_ms);

    const cJSON *sensors = cJSON_GetObjectItemCaseSensitive(root, "sensors");
    const cJSON *actuators = cJSON_GetObjectItemCaseSensitive(root, "actuators");
    if ((sensors != NULL && !cJSON_IsArray(sensors)) || (actuators != NULL && !cJSON_IsArray(actuators))) {
        return fail(c, "profile: \"sensors\" and \"actuators\" must be lists");
    }
    if (cJSON_GetArraySize(sensors) > VD_MAX_ITEMS || cJSON_GetArraySize(actuators) > VD_MAX_ITEMS) {
        return fail(c, "profile: at most %d sensors and %d actuators", VD_MAX_ITEMS, VD_MAX_ITEMS);
    }
    if (cJSON_GetArraySize(sensors) + cJSON_GetArraySize(actuators) == 0) {
        return fail(c, "profile: no sensors and no actuators");
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, sensors)
    {
        if ((e = parse_sensor(c, item, p->sensor_count, &p->sensors[p->sensor_count])) != ESP_OK) {
            return e;
        }
        p->sensor_count++;
    }
    cJSON_ArrayForEach(item, actuators)
    {
        if ((e = parse_actuator(c, item, p->actuator_count, &p->actuators[p->actuator_count])) != ESP_OK) {
            return e;
        }
        p->actuator_count++;
    }
    return ESP_OK;
}

esp_err_t vd_profile_parse(const char *text, double interval_scale, vd_profile_t **out, char *err,
                           size_t err_len)
{
    parse_ctx_t c = {err, err_len, interval_scale};
    *out = NULL;
    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (text == NULL || !(interval_scale > 0.0) || !isfinite(interval_scale)) {
        return fail(&c, "profile: no text or a bad interval scale");
    }
    cJSON *root = cJSON_Parse(text);
    if (root == NULL) {
        const char *where = cJSON_GetErrorPtr();
        return fail(&c, "profile: invalid JSON near \"%.20s\"", where != NULL ? where : "");
    }
    vd_profile_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cJSON_Delete(root);
        return ESP_ERR_NO_MEM;
    }
    p->json = root;
    esp_err_t e = parse_profile(&c, root, p);
    if (e != ESP_OK) {
        vd_profile_free(p);
        return e;
    }
    *out = p;
    return ESP_OK;
}

esp_err_t vd_profile_load(const char *path, double interval_scale, vd_profile_t **out, char *err,
                          size_t err_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_len, "cannot read profile %s: %s", path, strerror(errno));
        return ESP_ERR_NOT_FOUND;
    }
    char *buf = malloc(VD_MAX_PROFILE_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return ESP_ERR_NO_MEM;
    }
    size_t n = fread(buf, 1, VD_MAX_PROFILE_BYTES + 1, f);
    bool read_error = ferror(f) != 0;
    fclose(f);
    if (read_error || n > VD_MAX_PROFILE_BYTES) {
        free(buf);
        snprintf(err, err_len, "cannot read profile %s: %s", path,
                 read_error ? "read error" : "larger than 256 KiB");
        return ESP_ERR_INVALID_SIZE;
    }
    buf[n] = '\0';
    esp_err_t e = vd_profile_parse(buf, interval_scale, out, err, err_len);
    free(buf);
    return e;
}

void vd_profile_free(vd_profile_t *profile)
{
    if (profile == NULL) {
        return;
    }
    cJSON_Delete((cJSON *)profile->json);
    free(profile);
}
