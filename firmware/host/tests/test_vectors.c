/*
 * The shared vectors (tests/vectors) against the core: every to_device case
 * is sent to a fresh reference device and its response must match
 * device_response exactly; from_device kinds check the device's encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vectors_loader.h"

#define RESPONSE_TOPIC "mcp_bridge/esp32-a1b2c3/response"

static const cJSON *cases_of(const cJSON *doc)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    assert_non_null(c);
    assert_true(cJSON_GetArraySize(c) > 0);
    return c;
}

static const cJSON *find_case(const cJSON *doc, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cases_of(doc))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, name) == 0) {
            return c;
        }
    }
    fail_msg("vector case %s not found", name);
    return NULL;
}

static void run_to_device(const char *kind)
{
    cJSON *doc = vec_load(kind);
    assert_non_null(doc);
    int n = 0, failures = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(vc, "name")->valuestring;
        const char *topic = cJSON_GetObjectItemCaseSensitive(vc, "topic")->valuestring;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(vc, "device_response");
        size_t len;
        char *payload = vec_payload(vc, &len);
        assert_non_null(payload);
        ref_device_t rd;
        assert_true(ref_device_open(&rd));
        fp_clear(&rd.fp);
        fp_send_len(rd.core, topic, payload, len);
        size_t got = fp_count(&rd.fp, RESPONSE_TOPIC);
        char why[256] = "";
        bool ok;
        if (cJSON_IsNull(want)) {
            ok = got == 0;
            snprintf(why, sizeof why, "expected no response, got %zu", got);
        } else {
            ok = got == 1;
            snprintf(why, sizeof why, "expected one response, got %zu", got);
            if (ok) {
                const fp_msg_t *m = fp_last(&rd.fp, RESPONSE_TOPIC);
                cJSON *actual = cJSON_ParseWithLength(m->payload, m->len);
                ok = actual && vec_match(want, actual, why, sizeof why);
                if (!ok) {
                    print_message("  response: %.300s\n", m->payload);
                }
                assert_int_equal(m->qos, 1);
                assert_false(m->retain);
                cJSON_Delete(actual);
            }
        }
        if (!ok) {
            print_message("%s/%s: %s\n", kind, name, why);
            failures++;
        }
        n++;
        ref_device_close(&rd);
        free(payload);
    }
    print_message("%s: %d cases, %d failed\n", kind, n, failures);
    cJSON_Delete(doc);
    assert_int_equal(failures, 0);
}

static void test_actuator_set_vectors(void **state)
{
    (void)state;
    run_to_device("actuator_set");
}

static void test_cmd_vectors(void **state)
{
    (void)state;
    run_to_device("cmd");
}

/* Commands the device refuses because two JSON readers could read them differently. */
static void test_strict_json_vectors(void **state)
{
    (void)state;
    run_to_device("strict_json");
}

/* compare a published message with a case's payload, both parsed */
static void assert_same_json(const fp_msg_t *m, const cJSON *vcase)
{
    assert_non_null(m);
    size_t len;
    char *payload = vec_payload(vcase, &len);
    cJSON *want = cJSON_ParseWithLength(payload, len);
    cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
    assert_non_null(want);
    assert_non_null(got);
    char why[256];
    if (!vec_match(want, got, why, sizeof why)) {
        print_message("got: %s\n", m->payload);
        fail_msg("%s", why);
    }
    cJSON_Delete(want);
    cJSON_Delete(got);
    free(payload);
}

static void test_capabilities_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("capabilities");
    ref_device_t rd;
    assert_true(ref_device_open(&rd));
    const fp_msg_t *m = fp_last(&rd.fp, "mcp_bridge/esp32-a1b2c3/capabilities");
    assert_non_null(m);
    assert_true(m->retain);
    assert_int_equal(m->qos, 1);
    assert_same_json(m, find_case(doc, "reference_device"));
    ref_device_close(&rd);
    cJSON_Delete(doc);
}

static void test_discovery_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("discovery");
    ref_device_t rd;
    assert_true(ref_device_open(&rd));
    const char *topic = "homeassistant/device/esp32-a1b2c3/config";
    const fp_msg_t *m = fp_last(&rd.fp, topic);
    assert_non_null(m);
    assert_true(m->retain);
    assert_same_json(m, find_case(doc, "reference_device_mode_mqtt"));
    /* switching to integration removes it with an empty retained payload */
    assert_int_equal(mcp_core_set_discovery_mode(rd.core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    m = fp_last(&rd.fp, topic);
    size_t len;
    char *empty = vec_payload(find_case(doc, "removal_empty_retained"), &len);
    assert_int_equal(m->len, len);
    assert_true(m->retain);
    free(empty);
    ref_device_close(&rd);
    cJSON_Delete(doc);
}

/* platforms.json: every capability gets its platform (and a sensor its state class) in
 * the discovery message, the table the integration follows as well. */
static void test_discovery_platforms(void **state)
{
    (void)state;
    cJSON *doc = vec_load("platforms");
    assert_non_null(doc);
    ref_device_t rd;
    assert_true(vec_device_open(&rd, cases_of(doc)));
    const fp_msg_t *m = fp_last(&rd.fp, "homeassistant/device/esp32-a1b2c3/config");
    assert_non_null(m);
    cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
    assert_non_null(got);
    const cJSON *cmps = cJSON_GetObjectItemCaseSensitive(got, "cmps");
    int failures = 0, n = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(vc, "name")->valuestring;
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(vc, "capability");
        const char *id = cJSON_GetObjectItemCaseSensitive(cap, "id")->valuestring;
        const char *want = cJSON_GetObjectItemCaseSensitive(vc, "platform")->valuestring;
        const cJSON *comp = cJSON_GetObjectItemCaseSensitive(cmps, id);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(comp, "p");
        if (!cJSON_IsString(p) || strcmp(p->valuestring, want) != 0) {
            print_message("%s: p %s, expected %s\n", name, cJSON_IsString(p) ? p->valuestring : "-", want);
            failures++;
        }
        const cJSON *sc_want = cJSON_GetObjectItemCaseSensitive(vc, "state_class");
        if (sc_want) {
            const cJSON *sc = cJSON_GetObjectItemCaseSensitive(comp, "state_class");
            bool ok = cJSON_IsNull(sc_want) ? sc == NULL
                                            : cJSON_IsString(sc) && strcmp(sc->valuestring, sc_want->valuestring) == 0;
            if (!ok) {
                print_message("%s: state_class %s\n", name, cJSON_IsString(sc) ? sc->valuestring : "absent");
                failures++;
            }
        }
        n++;
    }
    assert_int_equal(cJSON_GetArraySize(cmps), n);
    cJSON_Delete(got);
    ref_device_close(&rd);
    cJSON_Delete(doc);
    assert_int_equal(failures, 0);
}

static const char *topic_tail(const char *topic, const char *marker)
{
    const char *p = strstr(topic, marker);
    return p ? p + strlen(marker) : NULL;
}

static bool json_to_value(const cJSON *j, mcp_value_type_t type, mcp_value_t *v)
{
    memset(v, 0, sizeof *v);
    v->type = type;
    if (cJSON_IsBool(j)) {
        v->boolean = cJSON_IsTrue(j);
        return type == MCP_VALUE_BOOLEAN;
    }
    if (cJSON_IsNumber(j)) {
        v->number = j->valuedouble;
        return type == MCP_VALUE_NUMBER;
    }
    if (cJSON_IsString(j) && strlen(j->valuestring) <= MCP_VALUE_STRING_MAX) {
        strcpy(v->string, j->valuestring);
        return type == MCP_VALUE_STRING || type == MCP_VALUE_ENUM;
    }
    return false;
}

static mcp_value_type_t sensor_type_of(ref_device_t *rd, const char *sid)
{
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(rd->doc, "capabilities");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(caps, "sensors"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(s, "id")->valuestring, sid) == 0) {
            const char *vt = cJSON_GetObjectItemCaseSensitive(s, "value_type")->valuestring;
            if (strcmp(vt, "boolean") == 0) {
                return MCP_VALUE_BOOLEAN;
            }
            if (strcmp(vt, "string") == 0) {
                return MCP_VALUE_STRING;
            }
            if (strcmp(vt, "enum") == 0) {
                return MCP_VALUE_ENUM;
            }
            return MCP_VALUE_NUMBER;
        }
    }
    return MCP_VALUE_NUMBER;
}

/*
 * One valid from_device case: publish its decoded form through the API on the
 * fresh reference device rd (its clock at the case's ts) and return what a
 * receiver decodes from the message (*m); NULL to leave the case out.
 */
typedef cJSON *(*encode_fn)(ref_device_t *rd, const cJSON *vc, const cJSON *dec, const fp_msg_t **m);

/* Every valid case of a from_device kind must encode to its decoded object. */
static void run_from_device(const char *kind, int min_checked, encode_fn encode)
{
    cJSON *doc = vec_load(kind);
    int checked = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(vc, "expect");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "valid"))) {
            continue;
        }
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(exp, "decoded");
        ref_device_t rd;
        assert_true(ref_device_open(&rd));
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(dec, "ts");
        rd.fp.epoch = cJSON_IsNumber(ts) ? (uint64_t)ts->valuedouble : 0;
        const fp_msg_t *m = NULL;
        cJSON *got = encode(&rd, vc, dec, &m);
        if (got) {
            char why[256];
            if (!vec_match(dec, got, why, sizeof why)) {
                fail_msg("%s/%s: %s (%s)", kind, cJSON_GetObjectItemCaseSensitive(vc, "name")->valuestring, why,
                         m->payload);
            }
            cJSON_Delete(got);
            checked++;
        }
        ref_device_close(&rd);
    }
    assert_true(checked >= min_checked);
    cJSON_Delete(doc);
}

/* The last message on topic, parsed. */
static cJSON *parse_last(ref_device_t *rd, const char *topic, const fp_msg_t **m)
{
    *m = fp_last(&rd->fp, topic);
    assert_non_null(*m);
    cJSON *got = cJSON_ParseWithLength((*m)->payload, (*m)->len);
    assert_non_null(got);
    return got;
}

/* A receiver's decoded object so far: the device id from the topic (and id_key: id when given). */
static cJSON *decoded_of(const char *id_key, const char *id)
{
    cJSON *norm = cJSON_CreateObject();
    cJSON_AddStringToObject(norm, "device_id", "esp32-a1b2c3");
    if (id_key) {
        cJSON_AddStringToObject(norm, id_key, id);
    }
    return norm;
}

/* dst[key] = a copy of src[key], else of fallback, else null (how receivers fill absent members) */
static void add_copy(cJSON *dst, const char *key, const cJSON *src, const cJSON *fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);
    if (!v) {
        v = fallback;
    }
    cJSON_AddItemToObject(dst, key, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

/* A received reading decoded: value, ts (its own, else ts_fallback), quality. */
static void add_reading(cJSON *dst, const cJSON *got, const cJSON *ts_fallback)
{
    add_copy(dst, "value", got, NULL);
    add_copy(dst, "ts", got, ts_fallback);
    add_copy(dst, "quality", got, NULL);
}

/* sensor: publishing the decoded value must encode to it */
static cJSON *encode_sensor(ref_device_t *rd, const cJSON *vc, const cJSON *dec, const fp_msg_t **m)
{
    const char *sid = cJSON_GetObjectItemCaseSensitive(dec, "sensor_id")->valuestring;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(dec, "quality");
    mcp_value_t v;
    assert_true(json_to_value(cJSON_GetObjectItemCaseSensitive(dec, "value"), sensor_type_of(rd, sid), &v));
    assert_int_equal(mcp_core_publish_sensor_value(rd->core, sid, &v, cJSON_IsNumber(q) ? (int)q->valuedouble : -1),
                     ESP_OK);
    const char *topic = cJSON_GetObjectItemCaseSensitive(vc, "topic")->valuestring;
    cJSON *got = parse_last(rd, topic, m);
    assert_false((*m)->retain);
    cJSON *norm = decoded_of("sensor_id", topic_tail(topic, "/sensors/"));
    add_reading(norm, got, NULL);
    cJSON_Delete(got);
    return norm;
}

static void test_sensor_encoding(void **state)
{
    (void)state;
    run_from_device("sensor", 5, encode_sensor);
}

static cJSON *encode_actuator_state(ref_device_t *rd, const cJSON *vc, const cJSON *dec, const fp_msg_t **m)
{
    const char *aid = cJSON_GetObjectItemCaseSensitive(dec, "actuator_id")->valuestring;
    mcp_value_t cur, v;
    assert_int_equal(mcp_core_get_actuator_value(rd->core, aid, &cur), ESP_OK);
    assert_true(json_to_value(cJSON_GetObjectItemCaseSensitive(dec, "value"), cur.type, &v));
    assert_int_equal(mcp_core_publish_actuator_state(rd->core, aid, &v), ESP_OK);
    cJSON *got = parse_last(rd, cJSON_GetObjectItemCaseSensitive(vc, "topic")->valuestring, m);
    assert_true((*m)->retain);
    cJSON *norm = decoded_of("actuator_id", aid);
    add_copy(norm, "value", got, NULL);
    add_copy(norm, "ts", got, NULL);
    cJSON_Delete(got);
    return norm;
}

static void test_actuator_state_encoding(void **state)
{
    (void)state;
    run_from_device("actuator_state", 4, encode_actuator_state);
}

static cJSON *encode_error(ref_device_t *rd, const cJSON *vc, const cJSON *dec, const fp_msg_t **m)
{
    (void)vc;
    double sev = cJSON_GetObjectItemCaseSensitive(dec, "severity")->valuedouble;
    if (sev > MCP_SEVERITY_CRITICAL) {
        return NULL; /* receivers accept 0..255; this device only emits 0..4 */
    }
    assert_int_equal(mcp_core_publish_error(rd->core, cJSON_GetObjectItemCaseSensitive(dec, "type")->valuestring,
                                            (esp_err_t)cJSON_GetObjectItemCaseSensitive(dec, "code")->valuedouble,
                                            cJSON_GetObjectItemCaseSensitive(dec, "message")->valuestring,
                                            (uint8_t)sev),
                     ESP_OK);
    cJSON *got = parse_last(rd, "mcp_bridge/esp32-a1b2c3/error", m);
    assert_int_equal((*m)->qos, 2);
    cJSON_AddStringToObject(got, "device_id", "esp32-a1b2c3");
    if (!cJSON_GetObjectItemCaseSensitive(got, "ts")) {
        cJSON_AddNullToObject(got, "ts");
    }
    return got;
}

static void test_error_encoding(void **state)
{
    (void)state;
    run_from_device("error", 2, encode_error);
}

static void test_status_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("status");
    ref_device_t rd;
    assert_true(ref_device_open(&rd));
    size_t len;
    char *online = vec_payload(find_case(doc, "online"), &len);
    const fp_msg_t *m = fp_last(&rd.fp, "mcp_bridge/esp32-a1b2c3/status");
    assert_non_null(m);
    assert_true(m->retain);
    assert_int_equal(m->len, len);
    assert_memory_equal(m->payload, online, len);
    char *offline = vec_payload(find_case(doc, "offline_lwt"), &len);
    assert_string_equal(rd.fp.lwt_topic, "mcp_bridge/esp32-a1b2c3/status");
    assert_true(rd.fp.last_params.lwt_retain);
    assert_int_equal(rd.fp.last_params.lwt_len, len);
    assert_int_equal(mcp_core_stop(rd.core), ESP_OK);
    m = fp_last(&rd.fp, "mcp_bridge/esp32-a1b2c3/status");
    assert_int_equal(m->len, len);
    assert_memory_equal(m->payload, offline, len);
    free(online);
    free(offline);
    ref_device_close(&rd);
    cJSON_Delete(doc);
}

/* metrics: the same twelve members as the vector, all integers */
static void test_metrics_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("metrics");
    size_t len;
    char *payload = vec_payload(find_case(doc, "full"), &len);
    cJSON *want = cJSON_ParseWithLength(payload, len);
    assert_non_null(want);
    ref_device_t rd;
    assert_true(ref_device_open(&rd));
    rd.fp.epoch = 1764000000123ull;
    fp_send(rd.core, "mcp_bridge/esp32-a1b2c3/cmd", "{\"cmd\":\"get_metrics\"}");
    const fp_msg_t *m = fp_last(&rd.fp, "mcp_bridge/esp32-a1b2c3/metrics");
    assert_non_null(m);
    cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
    assert_int_equal(cJSON_GetArraySize(got), cJSON_GetArraySize(want));
    const cJSON *w;
    cJSON_ArrayForEach(w, want)
    {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
        if (!g || !cJSON_IsNumber(g) || (double)(int64_t)g->valuedouble != g->valuedouble) {
            fail_msg("metrics member %s missing or not an integer (%s)", w->string, m->payload);
        }
    }
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(payload);
    ref_device_close(&rd);
    cJSON_Delete(doc);
}

static void test_id_vectors(void **state)
{
    (void)state;
    cJSON *doc = vec_load("ids");
    int checked = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(vc, "name")->valuestring;
        const char *kind = cJSON_GetObjectItemCaseSensitive(vc, "id_kind")->valuestring;
        size_t len;
        char *id = vec_payload(vc, &len);
        bool valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(vc, "expect"), "valid"));
        if (strstr(name, "_nul") != NULL) {
            /* cJSON ends the string at the NUL; a C string API never sees one */
            assert_false(valid);
            free(id);
            continue;
        }
        bool got = strcmp(kind, "device") == 0 ? mcp_core_valid_device_id(id) : mcp_core_valid_entity_id(id);
        if (got != valid) {
            fail_msg("ids/%s: expected %s", name, valid ? "valid" : "invalid");
        }
        free(id);
        checked++;
    }
    assert_true(checked > 20);
    cJSON_Delete(doc);
}

static cJSON *encode_batch(ref_device_t *rd, const cJSON *vc, const cJSON *dec, const fp_msg_t **m)
{
    (void)vc;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(dec, "readings");
    int n = cJSON_GetArraySize(rs);
    if (n == 0) {
        return NULL; /* the API publishes 1..max_sensors readings */
    }
    assert_int_equal(mcp_core_set_discovery_mode(rd->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(dec, "ts");
    mcp_sensor_reading_t readings[16];
    memset(readings, 0, sizeof readings);
    for (int i = 0; i < n && i < 16; i++) {
        const cJSON *r = cJSON_GetArrayItem(rs, i);
        const char *sid = cJSON_GetObjectItemCaseSensitive(r, "sensor_id")->valuestring;
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(r, "value");
        const cJSON *rts = cJSON_GetObjectItemCaseSensitive(r, "ts");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "quality");
        readings[i].sensor_id = sid;
        readings[i].value_type = sensor_type_of(rd, sid);
        readings[i].value = cJSON_IsNumber(val) ? val->valuedouble : 0;
        readings[i].bool_value = cJSON_IsTrue(val);
        readings[i].string_value = cJSON_IsString(val) ? val->valuestring : NULL;
        readings[i].quality = cJSON_IsNumber(q) ? (float)q->valuedouble : -1.0f;
        if (cJSON_IsNumber(rts) && (!cJSON_IsNumber(ts) || rts->valuedouble != ts->valuedouble)) {
            readings[i].timestamp = (uint64_t)rts->valuedouble;
        }
    }
    assert_int_equal(mcp_core_publish_sensor_batch(rd->core, readings, (size_t)n), ESP_OK);
    cJSON *got = parse_last(rd, "mcp_bridge/esp32-a1b2c3/batch", m);
    /* decode like a receiver: reading ts = own ts, else batch ts, else null */
    cJSON *norm = decoded_of(NULL, NULL);
    add_copy(norm, "ts", got, NULL);
    const cJSON *gts = cJSON_GetObjectItemCaseSensitive(got, "ts");
    cJSON *arr = cJSON_AddArrayToObject(norm, "readings");
    const cJSON *gr;
    cJSON_ArrayForEach(gr, cJSON_GetObjectItemCaseSensitive(got, "readings"))
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sensor_id", cJSON_GetObjectItemCaseSensitive(gr, "id")->valuestring);
        add_reading(o, gr, gts);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_Delete(got);
    return norm;
}

static void test_batch_encoding(void **state)
{
    (void)state;
    run_from_device("batch", 3, encode_batch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actuator_set_vectors), cmocka_unit_test(test_cmd_vectors),
        cmocka_unit_test(test_strict_json_vectors),
        cmocka_unit_test(test_capabilities_encoding), cmocka_unit_test(test_discovery_encoding),
        cmocka_unit_test(test_discovery_platforms),
        cmocka_unit_test(test_sensor_encoding),       cmocka_unit_test(test_actuator_state_encoding),
        cmocka_unit_test(test_error_encoding),        cmocka_unit_test(test_status_encoding),
        cmocka_unit_test(test_id_vectors),            cmocka_unit_test(test_batch_encoding),
        cmocka_unit_test(test_metrics_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
