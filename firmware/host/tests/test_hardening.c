/*
 * Unit tests of the core for what a device on real hardware needs: error
 * codes that do not collide with ESP-IDF's, strict JSON/UTF-8 on input,
 * actuator answers that tell the caller what happened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cJSON.h"
#include "fake_port.h"
#include "mcp_core.h"

#define B "mcp_bridge/dev-1/"
#define RESP B "response"

typedef struct {
    fake_port_t fp;
    mcp_core_t *core;
    esp_err_t ctl_result;
    uint64_t ctl_delay_ms;
    int ctl_calls;
} fixture_t;

static esp_err_t ctl_cb(const char *id, mcp_action_t action, mcp_value_t *v, void *ud)
{
    fixture_t *f = ud;
    (void)id;
    (void)action;
    (void)v;
    f->ctl_calls++;
    f->fp.now += f->ctl_delay_ms;
    return f->ctl_result;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    fp_init(&f->fp);
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtts://broker:8883", .device_id = "dev-1"};
    assert_int_equal(mcp_core_create(&c, &f->fp.port, &f->core), ESP_OK);
    const char *led_actions[] = {"read", "write", "toggle", NULL};
    mcp_actuator_metadata_t led = {.value_type = "boolean", .supported_actions = led_actions,
                                   .response_time_ms = 200};
    assert_int_equal(mcp_core_register_actuator(f->core, "led", "led", &led, ctl_cb, f), ESP_OK);
    static const char *const mode_opts[] = {"auto", "off", NULL};
    mcp_actuator_metadata_t mode = {.value_type = "enum", .enum_options = mode_opts};
    assert_int_equal(mcp_core_register_actuator(f->core, "mode", "mode", &mode, NULL, NULL), ESP_OK);
    mcp_actuator_metadata_t label = {.value_type = "string"};
    assert_int_equal(mcp_core_register_actuator(f->core, "label", "text", &label, NULL, NULL), ESP_OK);
    assert_int_equal(mcp_core_start(f->core), ESP_OK);
    mcp_core_on_connected(f->core);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    mcp_core_destroy(f->core);
    fp_free(&f->fp);
    free(f);
    return 0;
}

/* The last response: its error code ("ok" for success); id checked (NULL: JSON null). */
static void expect_response(fixture_t *f, const char *id, const char *code)
{
    const fp_msg_t *m = fp_last(&f->fp, RESP);
    assert_non_null(m);
    cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
    assert_non_null(j);
    const cJSON *jid = cJSON_GetObjectItem(j, "id");
    if (id) {
        assert_true(cJSON_IsString(jid));
        assert_string_equal(jid->valuestring, id);
    } else {
        assert_true(cJSON_IsNull(jid));
    }
    if (strcmp(code, "ok") == 0) {
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    } else {
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        if (!e) {
            fail_msg("expected %s, got %.200s", code, m->payload);
        }
        assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, code);
    }
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------------ */
/* Error codes                                                               */

/* ESP-IDF's own bases (esp_err.h, esp_http_client.h, esp_tls_errors.h, ...) all lie below 0x10000. */
static void test_error_base_outside_esp_idf(void **state)
{
    (void)state;
    assert_true(ESP_ERR_MCP_BASE >= 0x10000);
    assert_true(ESP_ERR_MCP_UNKNOWN_SENSOR < ESP_ERR_MCP_BASE + 0x1000);
    /* ESP_ERR_HTTP_* (0x7000 + n) and ESP_ERR_ESP_TLS_* (0x8000 + n) are driver failures */
    for (esp_err_t e = 0x7001; e <= 0x7012; e++) {
        assert_string_equal(mcp_core_error_code_name(e), "internal");
    }
    assert_string_equal(mcp_bridge_err_to_name(0x7008), "UNKNOWN_ERROR");
    assert_string_equal(mcp_bridge_err_to_name(ESP_ERR_MCP_INVALID_VALUE), "ESP_ERR_MCP_INVALID_VALUE");
}

/* An actuator driver that fails with an HTTP client error is an internal failure. */
static void test_http_error_from_callback_is_internal(void **state)
{
    fixture_t *f = *state;
    f->ctl_result = 0x7008; /* ESP_ERR_HTTP_EAGAIN */
    fp_send(f->core, B "actuators/led/set", "{\"id\":\"h1\",\"action\":\"toggle\"}");
    expect_response(f, "h1", "internal");
}

/* ------------------------------------------------------------------------ */
/* Actuator answers                                                          */

static bool last_state_is(fixture_t *f, const char *topic, const char *payload_start)
{
    const fp_msg_t *m = fp_last(&f->fp, topic);
    return m && strncmp(m->payload, payload_start, strlen(payload_start)) == 0;
}

/*
 * A driver that applied the value, only later than response_time_ms, is
 * answered with the value it applied: a caller told "timeout" would retry,
 * and a retried toggle flips the actuator back.
 */
static void test_slow_actuator_answers_what_it_applied(void **state)
{
    fixture_t *f = *state;
    f->ctl_delay_ms = 250; /* response_time_ms 200 */
    fp_clear(&f->fp);
    fp_send(f->core, B "actuators/led/set", "{\"id\":\"s1\",\"action\":\"toggle\"}");
    expect_response(f, "s1", "ok");
    assert_true(last_state_is(f, B "actuators/led/state", "{\"value\":true"));
    mcp_value_t v;
    mcp_core_get_actuator_value(f->core, "led", &v);
    assert_true(v.boolean);
    /* the slowness is reported, as a warning of type "actuator" */
    const fp_msg_t *e = fp_last(&f->fp, B "error");
    assert_non_null(e);
    assert_non_null(strstr(e->payload, "\"type\":\"actuator\""));
    assert_non_null(strstr(e->payload, "\"severity\":2"));
    /* a driver that gave up reports timeout itself: nothing applied, nothing published */
    f->ctl_delay_ms = 0;
    f->ctl_result = ESP_ERR_MCP_TIMEOUT;
    fp_clear(&f->fp);
    fp_send(f->core, B "actuators/led/set", "{\"id\":\"s2\",\"action\":\"toggle\"}");
    expect_response(f, "s2", "timeout");
    assert_int_equal(fp_count(&f->fp, B "actuators/led/state"), 0);
    mcp_core_get_actuator_value(f->core, "led", &v);
    assert_true(v.boolean);
}

/* ------------------------------------------------------------------------ */
/* Smaller items                                                             */

/* Flash is written only when the mode changes (the integration sends set_discovery on every takeover). */
static void test_discovery_mode_written_on_change_only(void **state)
{
    fixture_t *f = *state;
    int before = f->fp.kv_stores;
    fp_send(f->core, B "cmd", "{\"id\":\"m1\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\"}}");
    expect_response(f, "m1", "ok");
    assert_int_equal(f->fp.kv_stores, before + 1);
    fp_send(f->core, B "cmd", "{\"id\":\"m2\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\"}}");
    expect_response(f, "m2", "ok");
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    assert_int_equal(f->fp.kv_stores, before + 1);
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_MQTT), ESP_OK);
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_MQTT), ESP_OK);
    assert_int_equal(f->fp.kv_stores, before + 2);
    /* a failed write is tried again next time */
    f->fp.kv_store_fails = true;
    assert_int_not_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    f->fp.kv_store_fails = false;
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    assert_int_equal(f->fp.kv_stores, before + 4);
}

/* Passwords that are tokens (Azure SAS, JWTs) are longer than 127 bytes. */
static void test_long_password_accepted(void **state)
{
    (void)state;
    static char token[501];
    memset(token, 'k', sizeof token - 1);
    fake_port_t fp;
    fp_init(&fp);
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtts://broker:8883", .device_id = "dev-1",
                             .mqtt_username = "hub/dev-1", .mqtt_password = token};
    mcp_core_t *core = NULL;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    mcp_core_destroy(core);
    fp_free(&fp);
}

/* ------------------------------------------------------------------------ */
/* Subscriptions                                                             */

static bool subscribed(const fake_port_t *fp, const char *filter)
{
    for (size_t i = 0; i < fp->n_subs; i++) {
        if (strcmp(fp->subs[i], filter) == 0) {
            return true;
        }
    }
    return false;
}

static void tick_for(fixture_t *f, uint32_t ms)
{
    for (uint32_t t = 0; t < ms; t += 50) {
        f->fp.now += 50;
        (void)mcp_core_tick(f->core, f->fp.now);
    }
}

/* A subscription whose send failed is sent again, with backoff, until it went out. */
static void test_failed_subscribe_is_retried(void **state)
{
    fixture_t *f = *state;
    mcp_core_on_disconnected(f->core);
    f->fp.n_subs = 0;
    f->fp.subscribe_fails = 4; /* the three of this connect and the first retry */
    mcp_core_on_connected(f->core);
    assert_int_equal(f->fp.n_subs, 0);
    tick_for(f, 20000);
    assert_true(subscribed(&f->fp, B "cmd"));
    assert_true(subscribed(&f->fp, B "actuators/+/set"));
    assert_true(subscribed(&f->fp, "homeassistant/status"));
    /* nothing more once they are all out */
    size_t n = f->fp.n_subs;
    tick_for(f, 60000);
    assert_int_equal(f->fp.n_subs, n);
}

/* A SUBACK with a failure code (the port tells it) makes the core subscribe again. */
static void test_refused_suback_resubscribes(void **state)
{
    fixture_t *f = *state;
    f->fp.n_subs = 0;
    mcp_core_on_subscribe_failed(f->core);
    assert_int_equal(f->fp.n_subs, 0); /* not at once: the broker just refused */
    tick_for(f, 5000);
    assert_true(subscribed(&f->fp, B "cmd"));
    assert_true(subscribed(&f->fp, B "actuators/+/set"));
    assert_true(subscribed(&f->fp, "homeassistant/status"));
}

/* ------------------------------------------------------------------------ */
/* JSON and UTF-8                                                            */

static void send_raw(fixture_t *f, const char *topic, const char *payload)
{
    fp_clear(&f->fp);
    fp_send_len(f->core, topic, payload, strlen(payload));
}

/* A command that two JSON readers could read differently is malformed, answered with "id": null. */
static void test_ambiguous_json_is_malformed(void **state)
{
    fixture_t *f = *state;
    static const char *const cmds[] = {
        /* \u0000 would cut the C string: read as "mqtt" before */
        "{\"id\":\"r-1\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\\u0000zz\"}}",
        "{\"id\":\"r-\\u0000\",\"cmd\":\"ping\"}",
        /* duplicate names: the first won here, the last in Python */
        "{\"id\":\"r-2\",\"cmd\":\"set_discovery\",\"cmd\":\"ping\",\"args\":{\"mode\":\"integration\"}}",
        "{\"id\":\"r-3\",\"id\":\"r-4\",\"cmd\":\"ping\"}",
        "{\"id\":\"r-5\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\",\"mode\":\"mqtt\"}}",
        /* invalid UTF-8 in the id: echoed raw before */
        "{\"id\":\"r-\xff\",\"cmd\":\"ping\"}",
        "{\"id\":\"r-\xc0\xaf\",\"cmd\":\"ping\"}",         /* overlong '/' */
        "{\"id\":\"r-\xe0\x80\xaf\",\"cmd\":\"ping\"}",     /* overlong, 3 bytes */
        "{\"id\":\"r-\xed\xa0\x80\",\"cmd\":\"ping\"}",     /* U+D800 encoded */
        "{\"id\":\"r-\xf4\x90\x80\x80\",\"cmd\":\"ping\"}", /* above U+10FFFF */
        "{\"id\":\"r-\xf0\x9f\x98\",\"cmd\":\"ping\"}",     /* cut short */
        "{\"id\":\"r-6\",\"cmd\":\"ping\",\"args\":{\"x\":\"\\ud800\"}}", /* lone surrogate */
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        send_raw(f, B "cmd", cmds[i]);
        expect_response(f, NULL, "malformed");
    }
    assert_int_equal(mcp_core_get_discovery_mode(f->core), MCP_DISCOVERY_MQTT);
    send_raw(f, B "actuators/led/set", "{\"id\":\"a-1\",\"action\":\"read\",\"action\":\"toggle\"}");
    expect_response(f, NULL, "malformed");
    assert_int_equal(f->ctl_calls, 0);
    send_raw(f, B "actuators/label/set", "{\"id\":\"a-2\",\"action\":\"write\",\"value\":\"a\\u0000b\"}");
    expect_response(f, NULL, "malformed");
    send_raw(f, B "actuators/label/set", "{\"id\":\"a-3\",\"action\":\"write\",\"value\":\"a\xff" "b\"}");
    expect_response(f, NULL, "malformed");
    /* what is well-formed still works: 4-byte forms, U+10FFFF, escaped pairs, same name in two objects */
    send_raw(f, B "actuators/label/set",
             "{\"id\":\"\xf0\x9f\x98\x80\",\"action\":\"write\",\"value\":\"\xf4\x8f\xbf\xbf \\ud83d\\ude00\"}");
    expect_response(f, "\xf0\x9f\x98\x80", "ok");
    send_raw(f, B "cmd", "{\"id\":\"r-7\",\"cmd\":\"ping\",\"args\":{\"id\":\"x\",\"cmd\":{\"id\":1}}}");
    expect_response(f, "r-7", "ok");
}

/* An oversized command's id is echoed only when it is UTF-8. */
static void test_oversized_id_echo_is_utf8(void **state)
{
    fixture_t *f = *state;
    char big[1100];
    snprintf(big, sizeof big, "{\"id\":\"r-\xff\",\"cmd\":\"ping\",\"args\":{\"pad\":\"%01040d\"}}", 0);
    send_raw(f, B "cmd", big);
    expect_response(f, NULL, "payload_too_large");
    snprintf(big, sizeof big, "{\"id\":\"r-\xc3\xa9\",\"cmd\":\"ping\",\"args\":{\"pad\":\"%01040d\"}}", 0);
    send_raw(f, B "cmd", big);
    expect_response(f, "r-\xc3\xa9", "payload_too_large");
}

/* Text the application registers follows RFC 3629 too. */
static void test_registration_utf8_strict(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *unit;
        esp_err_t want;
    } units[] = {{"\xed\xa0\x80", ESP_ERR_INVALID_ARG},     /* surrogate */
                 {"\xed\xbf\xbf", ESP_ERR_INVALID_ARG},     /* surrogate */
                 {"\xe0\x80\xb0", ESP_ERR_INVALID_ARG},     /* overlong */
                 {"\xf0\x80\x80\xb0", ESP_ERR_INVALID_ARG}, /* overlong */
                 {"\xf4\x90\x80\x80", ESP_ERR_INVALID_ARG}, /* above U+10FFFF */
                 {"\xc0\xb0", ESP_ERR_INVALID_ARG},
                 {"\xed\x9f\xbf", ESP_OK},                  /* U+D7FF */
                 {"\xf4\x8f\xbf\xbf", ESP_OK},              /* U+10FFFF */
                 {"\xc2\xb0" "C", ESP_OK}};
    char id[16];
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        snprintf(id, sizeof id, "s%zu", i);
        mcp_sensor_metadata_t m = {.interval_ms = 1000};
        assert_int_equal(mcp_core_register_sensor(f->core, id, "temperature", units[i].unit, &m, NULL, NULL),
                         units[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_base_outside_esp_idf),
        cmocka_unit_test_setup_teardown(test_http_error_from_callback_is_internal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_actuator_answers_what_it_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_mode_written_on_change_only, setup, teardown),
        cmocka_unit_test(test_long_password_accepted),
        cmocka_unit_test_setup_teardown(test_failed_subscribe_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_suback_resubscribes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_json_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_id_echo_is_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_utf8_strict, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
