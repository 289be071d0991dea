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

/* sensor: for every valid case, publishing the decoded value must encode to it */
static void test_sensor_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("sensor");
    int checked = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(vc, "expect");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "valid"))) {
            continue;
        }
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(exp, "decoded");
        const char *sid = cJSON_GetObjectItemCaseSensitive(dec, "sensor_id")->valuestring;
        ref_device_t rd;
        assert_true(ref_device_open(&rd));
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(dec, "ts");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(dec, "quality");
        rd.fp.epoch = cJSON_IsNumber(ts) ? (uint64_t)ts->valuedouble : 0;
        mcp_value_t v;
        assert_true(json_to_value(cJSON_GetObjectItemCaseSensitive(dec, "value"), sensor_type_of(&rd, sid), &v));
        assert_int_equal(mcp_core_publish_sensor_value(rd.core, sid, &v, cJSON_IsNumber(q) ? (int)q->valuedouble : -1),
                         ESP_OK);
        const char *topic = cJSON_GetObjectItemCaseSensitive(vc, "topic")->valuestring;
        const fp_msg_t *m = fp_last(&rd.fp, topic);
        assert_non_null(m);
        assert_false(m->retain);
        cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
        /* decode like a receiver */
        cJSON *norm = cJSON_CreateObject();
        cJSON_AddStringToObject(norm, "device_id", "esp32-a1b2c3");
        cJSON_AddStringToObject(norm, "sensor_id", topic_tail(topic, "/sensors/"));
        cJSON_AddItemToObject(norm, "value", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(got, "value"), 1));
        const cJSON *gts = cJSON_GetObjectItemCaseSensitive(got, "ts");
        const cJSON *gq = cJSON_GetObjectItemCaseSensitive(got, "quality");
        cJSON_AddItemToObject(norm, "ts", gts ? cJSON_Duplicate(gts, 1) : cJSON_CreateNull());
        cJSON_AddItemToObject(norm, "quality", gq ? cJSON_Duplicate(gq, 1) : cJSON_CreateNull());
        char why[256];
        if (!vec_match(dec, norm, why, sizeof why)) {
            fail_msg("sensor/%s: %s (%s)", cJSON_GetObjectItemCaseSensitive(vc, "name")->valuestring, why, m->payload);
        }
        cJSON_Delete(norm);
        cJSON_Delete(got);
        ref_device_close(&rd);
        checked++;
    }
    assert_true(checked >= 5);
    cJSON_Delete(doc);
}

static void test_actuator_state_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("actuator_state");
    int checked = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(vc, "expect");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "valid"))) {
            continue;
        }
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(exp, "decoded");
        const char *aid = cJSON_GetObjectItemCaseSensitive(dec, "actuator_id")->valuestring;
        ref_device_t rd;
        assert_true(ref_device_open(&rd));
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(dec, "ts");
        rd.fp.epoch = cJSON_IsNumber(ts) ? (uint64_t)ts->valuedouble : 0;
        mcp_value_t cur, v;
        assert_int_equal(mcp_core_get_actuator_value(rd.core, aid, &cur), ESP_OK);
        assert_true(json_to_value(cJSON_GetObjectItemCaseSensitive(dec, "value"), cur.type, &v));
        assert_int_equal(mcp_core_publish_actuator_state(rd.core, aid, &v), ESP_OK);
        const char *topic = cJSON_GetObjectItemCaseSensitive(vc, "topic")->valuestring;
        const fp_msg_t *m = fp_last(&rd.fp, topic);
        assert_non_null(m);
        assert_true(m->retain);
        cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
        cJSON *norm = cJSON_CreateObject();
        cJSON_AddStringToObject(norm, "device_id", "esp32-a1b2c3");
        cJSON_AddStringToObject(norm, "actuator_id", aid);
        cJSON_AddItemToObject(norm, "value", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(got, "value"), 1));
        const cJSON *gts = cJSON_GetObjectItemCaseSensitive(got, "ts");
        cJSON_AddItemToObject(norm, "ts", gts ? cJSON_Duplicate(gts, 1) : cJSON_CreateNull());
        char why[256];
        if (!vec_match(dec, norm, why, sizeof why)) {
            fail_msg("actuator_state: %s (%s)", why, m->payload);
        }
        cJSON_Delete(norm);
        cJSON_Delete(got);
        ref_device_close(&rd);
        checked++;
    }
    assert_true(checked >= 4);
    cJSON_Delete(doc);
}

static void test_error_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("error");
    int checked = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(vc, "expect");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "valid"))) {
            continue;
        }
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(exp, "decoded");
        double sev = cJSON_GetObjectItemCaseSensitive(dec, "severity")->valuedouble;
        if (sev > MCP_SEVERITY_CRITICAL) {
            continue; /* receivers accept 0..255; this device only emits 0..4 */
        }
        ref_device_t rd;
        assert_true(ref_device_open(&rd));
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(dec, "ts");
        rd.fp.epoch = cJSON_IsNumber(ts) ? (uint64_t)ts->valuedouble : 0;
        assert_int_equal(mcp_core_publish_error(rd.core, cJSON_GetObjectItemCaseSensitive(dec, "type")->valuestring,
                                                (esp_err_t)cJSON_GetObjectItemCaseSensitive(dec, "code")->valuedouble,
                                                cJSON_GetObjectItemCaseSensitive(dec, "message")->valuestring,
                                                (uint8_t)sev),
                         ESP_OK);
        const fp_msg_t *m = fp_last(&rd.fp, "mcp_bridge/esp32-a1b2c3/error");
        assert_non_null(m);
        assert_int_equal(m->qos, 2);
        cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
        cJSON_AddStringToObject(got, "device_id", "esp32-a1b2c3");
        if (!cJSON_GetObjectItemCaseSensitive(got, "ts")) {
            cJSON_AddNullToObject(got, "ts");
        }
        char why[256];
        if (!vec_match(dec, got, why, sizeof why)) {
            fail_msg("error: %s (%s)", why, m->payload);
        }
        cJSON_Delete(got);
        ref_device_close(&rd);
        checked++;
    }
    assert_true(checked >= 2);
    cJSON_Delete(doc);
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

static void test_batch_encoding(void **state)
{
    (void)state;
    cJSON *doc = vec_load("batch");
    int checked = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cases_of(doc))
    {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(vc, "expect");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "valid"))) {
            continue;
        }
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(exp, "decoded");
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(dec, "readings");
        int n = cJSON_GetArraySize(rs);
        if (n == 0) {
            continue; /* the API publishes 1..max_sensors readings */
        }
        ref_device_t rd;
        assert_true(ref_device_open(&rd));
        assert_int_equal(mcp_core_set_discovery_mode(rd.core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(dec, "ts");
        rd.fp.epoch = cJSON_IsNumber(ts) ? (uint64_t)ts->valuedouble : 0;
        mcp_sensor_reading_t readings[16];
        memset(readings, 0, sizeof readings);
        for (int i = 0; i < n && i < 16; i++) {
            const cJSON *r = cJSON_GetArrayItem(rs, i);
            const char *sid = cJSON_GetObjectItemCaseSensitive(r, "sensor_id")->valuestring;
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(r, "value");
            const cJSON *rts = cJSON_GetObjectItemCaseSensitive(r, "ts");
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "quality");
            readings[i].sensor_id = sid;
            readings[i].value_type = sensor_type_of(&rd, sid);
            readings[i].value = cJSON_IsNumber(val) ? val->valuedouble : 0;
            readings[i].bool_value = cJSON_IsTrue(val);
            readings[i].string_value = cJSON_IsString(val) ? val->valuestring : NULL;
            readings[i].quality = cJSON_IsNumber(q) ? (float)q->valuedouble : -1.0f;
            if (cJSON_IsNumber(rts) && (!cJSON_IsNumber(ts) || rts->valuedouble != ts->valuedouble)) {
                readings[i].timestamp = (uint64_t)rts->valuedouble;
            }
        }
        assert_int_equal(mcp_core_publish_sensor_batch(rd.core, readings, (size_t)n), ESP_OK);
        const fp_msg_t *m = fp_last(&rd.fp, "mcp_bridge/esp32-a1b2c3/batch");
        assert_non_null(m);
        cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
        /* decode like a receiver: reading ts = own ts, else batch ts, else null */
        cJSON *norm = cJSON_CreateObject();
        cJSON_AddStringToObject(norm, "device_id", "esp32-a1b2c3");
        const cJSON *gts = cJSON_GetObjectItemCaseSensitive(got, "ts");
        cJSON_AddItemToObject(norm, "ts", gts ? cJSON_Duplicate(gts, 1) : cJSON_CreateNull());
        cJSON *arr = cJSON_AddArrayToObject(norm, "readings");
        const cJSON *gr;
        cJSON_ArrayForEach(gr, cJSON_GetObjectItemCaseSensitive(got, "readings"))
        {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "sensor_id", cJSON_GetObjectItemCaseSensitive(gr, "id")->valuestring);
            cJSON_AddItemToObject(o, "value", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(gr, "value"), 1));
            const cJSON *own = cJSON_GetObjectItemCaseSensitive(gr, "ts");
            cJSON_AddItemToObject(o, "ts", own ? cJSON_Duplicate(own, 1) : (gts ? cJSON_Duplicate(gts, 1) : cJSON_CreateNull()));
            const cJSON *gq = cJSON_GetObjectItemCaseSensitive(gr, "quality");
            cJSON_AddItemToObject(o, "quality", gq ? cJSON_Duplicate(gq, 1) : cJSON_CreateNull());
            cJSON_AddItemToArray(arr, o);
        }
        char why[256];
        if (!vec_match(dec, norm, why, sizeof why)) {
            fail_msg("batch/%s: %s (%s)", cJSON_GetObjectItemCaseSensitive(vc, "name")->valuestring, why, m->payload);
        }
        cJSON_Delete(norm);
        cJSON_Delete(got);
        ref_device_close(&rd);
        checked++;
    }
    assert_true(checked >= 3);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actuator_set_vectors), cmocka_unit_test(test_cmd_vectors),
        cmocka_unit_test(test_capabilities_encoding), cmocka_unit_test(test_discovery_encoding),
        cmocka_unit_test(test_sensor_encoding),       cmocka_unit_test(test_actuator_state_encoding),
        cmocka_unit_test(test_error_encoding),        cmocka_unit_test(test_status_encoding),
        cmocka_unit_test(test_id_vectors),            cmocka_unit_test(test_batch_encoding),
        cmocka_unit_test(test_metrics_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
