#include "vectors_loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MCP_VECTORS_DIR
#error "MCP_VECTORS_DIR must point at tests/vectors"
#endif

cJSON *vec_load(const char *kind)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", MCP_VECTORS_DIR, kind);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n <= 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    cJSON *doc = cJSON_ParseWithLength(buf, got);
    free(buf);
    return doc;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

char *vec_payload(const cJSON *vcase, size_t *len)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(vcase, "payload");
    const cJSON *hx = cJSON_GetObjectItemCaseSensitive(vcase, "payload_hex");
    const cJSON *fill = cJSON_GetObjectItemCaseSensitive(vcase, "payload_fill");
    if (cJSON_IsString(p)) {
        *len = strlen(p->valuestring);
        char *out = malloc(*len + 1);
        memcpy(out, p->valuestring, *len + 1);
        return out;
    }
    if (cJSON_IsString(hx)) {
        size_t n = strlen(hx->valuestring) / 2;
        char *out = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            out[i] = (char)(hexval(hx->valuestring[2 * i]) * 16 + hexval(hx->valuestring[2 * i + 1]));
        }
        out[n] = '\0';
        *len = n;
        return out;
    }
    if (cJSON_IsObject(fill)) {
        const char *tpl = cJSON_GetObjectItemCaseSensitive(fill, "template")->valuestring;
        size_t total = (size_t)cJSON_GetObjectItemCaseSensitive(fill, "total_bytes")->valuedouble;
        const char *pct = strstr(tpl, "%s");
        size_t head = (size_t)(pct - tpl), tail = strlen(pct + 2);
        size_t xs = total - head - tail;
        char *out = malloc(total + 1);
        memcpy(out, tpl, head);
        memset(out + head, 'x', xs);
        memcpy(out + head + xs, pct + 2, tail);
        out[total] = '\0';
        *len = total;
        return out;
    }
    *len = 0;
    return NULL;
}

static bool is_int(const cJSON *a)
{
    return cJSON_IsNumber(a) && isfinite(a->valuedouble) && floor(a->valuedouble) == a->valuedouble;
}

static bool placeholder_match(const char *ph, const cJSON *a)
{
    char base[16];
    snprintf(base, sizeof base, "%s", ph);
    size_t n = strlen(base);
    if (n && base[n - 1] == '?') {
        base[n - 1] = '\0';
    }
    if (strcmp(base, "$any") == 0) {
        return true;
    }
    if (strcmp(base, "$string") == 0) {
        return cJSON_IsString(a) && a->valuestring[0];
    }
    if (strcmp(base, "$uint") == 0) {
        return is_int(a) && a->valuedouble >= 0;
    }
    if (strcmp(base, "$int") == 0) {
        return is_int(a);
    }
    if (strcmp(base, "$number") == 0) {
        return cJSON_IsNumber(a) && isfinite(a->valuedouble);
    }
    if (strcmp(base, "$bool") == 0) {
        return cJSON_IsBool(a);
    }
    return false;
}

static bool is_placeholder(const cJSON *e)
{
    return cJSON_IsString(e) && e->valuestring[0] == '$' && strlen(e->valuestring) > 1;
}

bool vec_match(const cJSON *e, const cJSON *a, char *why, size_t cap)
{
    if (is_placeholder(e)) {
        if (!a || !placeholder_match(e->valuestring, a)) {
            snprintf(why, cap, "placeholder %s does not match", e->valuestring);
            return false;
        }
        return true;
    }
    if (!a) {
        snprintf(why, cap, "missing value");
        return false;
    }
    if (cJSON_IsNumber(e)) {
        if (!cJSON_IsNumber(a) || a->valuedouble != e->valuedouble) {
            snprintf(why, cap, "number %g differs", e->valuedouble);
            return false;
        }
        return true;
    }
    if (cJSON_IsBool(e) || cJSON_IsNull(e)) {
        if ((e->type & 0xFF) != (a->type & 0xFF)) {
            snprintf(why, cap, "bool/null differs");
            return false;
        }
        return true;
    }
    if (cJSON_IsString(e)) {
        if (!cJSON_IsString(a) || strcmp(a->valuestring, e->valuestring) != 0) {
            snprintf(why, cap, "string \"%.60s\" differs (got \"%.60s\")", e->valuestring,
                     cJSON_IsString(a) ? a->valuestring : "<not a string>");
            return false;
        }
        return true;
    }
    if (cJSON_IsArray(e)) {
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != cJSON_GetArraySize(e)) {
            snprintf(why, cap, "array size differs");
            return false;
        }
        for (int i = 0; i < cJSON_GetArraySize(e); i++) {
            if (!vec_match(cJSON_GetArrayItem(e, i), cJSON_GetArrayItem(a, i), why, cap)) {
                return false;
            }
        }
        return true;
    }
    if (cJSON_IsObject(e)) {
        if (!cJSON_IsObject(a)) {
            snprintf(why, cap, "not an object");
            return false;
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, e)
        {
            const cJSON *am = cJSON_GetObjectItemCaseSensitive(a, m->string);
            if (!am && is_placeholder(m) && m->valuestring[strlen(m->valuestring) - 1] == '?') {
                continue;
            }
            if (!vec_match(m, am, why, cap)) {
                char inner[200];
                snprintf(inner, sizeof inner, "%s", why);
                snprintf(why, cap, "%s: %s", m->string, inner);
                return false;
            }
        }
        cJSON_ArrayForEach(m, a)
        {
            if (!cJSON_GetObjectItemCaseSensitive(e, m->string)) {
                snprintf(why, cap, "unexpected member %s", m->string);
                return false;
            }
        }
        return true;
    }
    snprintf(why, cap, "unsupported expected value");
    return false;
}

/* --- reference device --------------------------------------------------- */

static const char *str_or(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(i) ? i->valuestring : dflt;
}

static double num_or(const cJSON *o, const char *key, double dflt)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(i) ? i->valuedouble : dflt;
}

static const char **string_list(ref_device_t *rd, const cJSON *arr)
{
    if (!cJSON_IsArray(arr) || rd->n_arrays >= 64) {
        return NULL;
    }
    int n = cJSON_GetArraySize(arr);
    const char **list = calloc((size_t)n + 1, sizeof *list);
    for (int i = 0; i < n; i++) {
        list[i] = cJSON_GetArrayItem(arr, i)->valuestring;
    }
    rd->arrays[rd->n_arrays++] = list;
    return list;
}

/* One sensor of a capabilities array, registered as the application would. */
static bool register_sensor(ref_device_t *rd, const cJSON *s)
{
    mcp_sensor_metadata_t md = {
        .min_range = (float)num_or(s, "min", 0),
        .max_range = (float)num_or(s, "max", 0),
        .accuracy = (float)num_or(s, "accuracy", 0),
        .description = str_or(s, "description", NULL),
        .calibration_required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "calibration_required")),
        .calibration_interval_s = (uint32_t)num_or(s, "calibration_interval_s", 0),
        .name = str_or(s, "name", NULL),
        .value_type = str_or(s, "value_type", NULL),
        .enum_options = string_list(rd, cJSON_GetObjectItemCaseSensitive(s, "options")),
        .interval_ms = (uint32_t)num_or(s, "interval_ms", 0),
    };
    return mcp_core_register_sensor(rd->core, str_or(s, "id", ""), str_or(s, "type", ""), str_or(s, "unit", NULL),
                                    &md, NULL, NULL) == ESP_OK;
}

static bool register_actuator(ref_device_t *rd, const cJSON *a)
{
    mcp_actuator_metadata_t md = {
        .value_type = str_or(a, "value_type", NULL),
        .description = str_or(a, "description", NULL),
        .supported_actions = string_list(rd, cJSON_GetObjectItemCaseSensitive(a, "actions")),
        .min_value = (float)num_or(a, "min", 0),
        .max_value = (float)num_or(a, "max", 0),
        .step = (float)num_or(a, "step", 0),
        .enum_options = string_list(rd, cJSON_GetObjectItemCaseSensitive(a, "options")),
        .response_time_ms = (uint32_t)num_or(a, "response_time_ms", 0),
        .requires_confirmation = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "requires_confirmation")),
        .name = str_or(a, "name", NULL),
        .unit = str_or(a, "unit", NULL),
    };
    return mcp_core_register_actuator(rd->core, str_or(a, "id", ""), str_or(a, "type", ""), &md, NULL, NULL) ==
           ESP_OK;
}

/* The reference device's identity and configuration, with no sensors or actuators yet
 * (room for max of each; 0: the default). */
static bool device_create(ref_device_t *rd, uint16_t max, uint32_t holdoff_ms, const char *stored_mode)
{
    memset(rd, 0, sizeof *rd);
    rd->doc = vec_load("reference_device");
    if (!rd->doc) {
        return false;
    }
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(rd->doc, "capabilities");
    const cJSON *cfgj = cJSON_GetObjectItemCaseSensitive(rd->doc, "config");
    const cJSON *qos = cJSON_GetObjectItemCaseSensitive(cfgj, "qos");
    fp_init(&rd->fp);
    if (stored_mode) { /* what an earlier set_discovery left in NVS */
        rd->fp.port.kv_store(rd->fp.port.ctx, "disc_mode", stored_mode, strlen(stored_mode));
        rd->fp.kv_stores = 0;
    }
    mcp_bridge_config_t cfg = {
        .mqtt_broker_uri = "mqtt://127.0.0.1:1883",
        .device_id = str_or(rd->doc, "device_id", NULL),
        .base_topic = str_or(rd->doc, "base_topic", NULL),
        .device_name = str_or(caps, "name", NULL),
        .manufacturer = str_or(caps, "manufacturer", NULL),
        .model = str_or(caps, "model", NULL),
        .fw_version = str_or(caps, "fw", NULL),
        .hw_version = str_or(caps, "hw", NULL),
        .sensor_publish_interval_ms = (uint32_t)num_or(cfgj, "publish_interval_ms", 10000),
        .metrics_interval_ms = (uint32_t)num_or(cfgj, "metrics_interval_ms", 60000),
        .max_command_size = (uint32_t)num_or(rd->doc, "command_max_bytes", 1024),
        .qos_config = {.sensor_qos = (uint8_t)num_or(qos, "sensor", 0),
                       .actuator_qos = (uint8_t)num_or(qos, "actuator", 1),
                       .status_qos = (uint8_t)num_or(qos, "status", 1),
                       .error_qos = (uint8_t)num_or(qos, "error", 2)},
        .max_sensors = max,
        .max_actuators = max,
        .discovery_holdoff_ms = holdoff_ms,
    };
    return mcp_core_create(&cfg, &rd->fp.port, &rd->core) == ESP_OK;
}

static bool device_start(ref_device_t *rd)
{
    if (mcp_core_start(rd->core) != ESP_OK) {
        return false;
    }
    mcp_core_on_connected(rd->core);
    return true;
}

bool vec_device_open(ref_device_t *rd, const cJSON *entries)
{
    if (!device_create(rd, (uint16_t)cJSON_GetArraySize(entries), MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE, NULL)) {
        return false;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        const char *kind = str_or(e, "kind", "");
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(e, "capability");
        bool ok = strcmp(kind, "sensor") == 0 ? register_sensor(rd, item) : register_actuator(rd, item);
        if (!ok) {
            return false;
        }
    }
    return device_start(rd);
}

bool ref_device_prepare(ref_device_t *rd, uint32_t holdoff_ms, const char *stored_mode)
{
    if (!device_create(rd, 0, holdoff_ms, stored_mode)) {
        return false;
    }
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(rd->doc, "capabilities");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(caps, "sensors"))
    {
        if (!register_sensor(rd, s)) {
            return false;
        }
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(caps, "actuators"))
    {
        if (!register_actuator(rd, a)) {
            return false;
        }
    }
    const cJSON *init;
    cJSON_ArrayForEach(init, cJSON_GetObjectItemCaseSensitive(rd->doc, "initial"))
    {
        mcp_value_t v;
        memset(&v, 0, sizeof v);
        if (cJSON_IsBool(init)) {
            v.type = MCP_VALUE_BOOLEAN;
            v.boolean = cJSON_IsTrue(init);
        } else if (cJSON_IsNumber(init)) {
            v.type = MCP_VALUE_NUMBER;
            v.number = init->valuedouble;
        } else {
            mcp_value_t cur;
            mcp_core_get_actuator_value(rd->core, init->string, &cur);
            v = mcp_value_string(cur.type, init->valuestring);
        }
        if (mcp_core_set_actuator_value(rd->core, init->string, &v) != ESP_OK) {
            return false;
        }
    }
    return true;
}

bool ref_device_open(ref_device_t *rd)
{
    /* publishing at once: the discovery hold-off has vectors of its own (lifecycle.json) */
    return ref_device_prepare(rd, MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE, NULL) && device_start(rd);
}

void ref_device_close(ref_device_t *rd)
{
    if (rd->core) {
        mcp_core_destroy(rd->core);
    }
    for (size_t i = 0; i < rd->n_arrays; i++) {
        free((void *)rd->arrays[i]);
    }
    fp_free(&rd->fp);
    cJSON_Delete(rd->doc);
    memset(rd, 0, sizeof *rd);
}
