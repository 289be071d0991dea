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
    const char *mode_opts[] = {"auto", "off", NULL};
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
        assert_non_null(e);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_base_outside_esp_idf),
        cmocka_unit_test_setup_teardown(test_http_error_from_callback_is_internal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
