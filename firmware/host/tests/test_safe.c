/*
 * Safe mode (core/src/mcp_safe.c): the boot counter across simulated
 * restarts, and what a device in safe mode does and does not do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_port.h"
#include "mcp_core.h"

#define B "mcp_bridge/dev-1/"

static uint32_t s_rtc; /* what survives a reset */
static int s_reads, s_actuations;

static uint32_t t_load(void *ctx)
{
    (void)ctx;
    return s_rtc;
}

static void t_store(void *ctx, uint32_t n)
{
    (void)ctx;
    s_rtc = n;
}

static esp_err_t read_cb(const char *id, mcp_value_t *v, int *quality, void *ud)
{
    (void)id;
    (void)quality;
    (void)ud;
    s_reads++;
    *v = mcp_value_number(1.0);
    return ESP_OK;
}

static esp_err_t ctl_cb(const char *id, mcp_action_t action, mcp_value_t *v, void *ud)
{
    (void)id;
    (void)action;
    (void)v;
    (void)ud;
    s_actuations++;
    return ESP_OK;
}

/* One boot: create, register, start, connect. */
static mcp_core_t *boot(fake_port_t *fp)
{
    fp_init(fp);
    fp->port.boot_count_load = t_load;
    fp->port.boot_count_store = t_store;
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtt://broker:1883", .device_id = "dev-1",
                             .discovery_holdoff_ms = MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE, .safe_mode_boots = 3,
                             .safe_mode_stable_ms = 30000};
    mcp_core_t *core = NULL;
    assert_int_equal(mcp_core_create(&c, &fp->port, &core), ESP_OK);
    mcp_sensor_metadata_t m = {.interval_ms = 1000};
    assert_int_equal(mcp_core_register_sensor(core, "temp", "temperature", "°C", &m, read_cb, NULL), ESP_OK);
    const char *acts[] = {"read", "write", NULL};
    mcp_actuator_metadata_t a = {.value_type = "boolean", .supported_actions = acts};
    assert_int_equal(mcp_core_register_actuator(core, "relay", "relay", &a, ctl_cb, NULL), ESP_OK);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    return core;
}

static void run_for(fake_port_t *fp, mcp_core_t *core, uint32_t ms)
{
    for (uint32_t t = 0; t < ms; t += 100) {
        fp->now += 100;
        mcp_core_tick(core, fp->now);
    }
}

static bool in_safe_mode(mcp_core_t *core)
{
    mcp_bridge_status_t st;
    assert_int_equal(mcp_core_get_status(core, &st), ESP_OK);
    assert_int_equal(st.safe_mode, mcp_core_safe_mode(core));
    return st.safe_mode;
}

static void test_quick_restarts_lead_to_safe_mode(void **state)
{
    (void)state;
    s_rtc = 0;
    fake_port_t fp;
    /* three crashes 5 s after boot: still normal */
    for (int i = 0; i < 3; i++) {
        mcp_core_t *core = boot(&fp);
        assert_false(in_safe_mode(core));
        run_for(&fp, core, 5000);
        assert_int_equal(s_rtc, (uint32_t)i + 1);
        mcp_core_destroy(core);
        fp_free(&fp);
    }
    /* the fourth boot: safe mode, said on the wire, callbacks off */
    s_reads = s_actuations = 0;
    mcp_core_t *core = boot(&fp);
    assert_true(in_safe_mode(core));
    assert_int_equal(s_rtc, 0); /* the next restart tries normally */
    const fp_msg_t *err = fp_last(&fp, B "error");
    assert_non_null(err);
    assert_non_null(strstr(err->payload, "\"type\":\"safe_mode\""));
    assert_non_null(strstr(err->payload, "\"severity\":3"));
    const fp_msg_t *caps = fp_last(&fp, B "capabilities");
    assert_non_null(strstr(caps->payload, "\"safe_mode\":true"));
    assert_non_null(strstr(caps->payload, "\"id\":\"temp\"")); /* registrations kept */
    run_for(&fp, core, 10000);
    assert_int_equal(s_reads, 0);
    fp_send(core, B "actuators/relay/set", "{\"id\":\"s1\",\"action\":\"write\",\"value\":true}");
    assert_int_equal(s_actuations, 0);
    assert_non_null(strstr(fp_last(&fp, B "response")->payload, "\"code\":\"busy\""));
    fp_send(core, B "cmd", "{\"id\":\"s2\",\"cmd\":\"ping\"}"); /* device commands work */
    assert_non_null(strstr(fp_last(&fp, B "response")->payload, "\"ok\":true"));
    mcp_core_destroy(core);
    fp_free(&fp);
    /* and the restart after it is normal */
    core = boot(&fp);
    assert_false(in_safe_mode(core));
    assert_int_equal(fp_count(&fp, B "error"), 0);
    caps = fp_last(&fp, B "capabilities");
    assert_null(strstr(caps->payload, "safe_mode"));
    mcp_core_destroy(core);
    fp_free(&fp);
}

/* A boot that stays up for the stable time clears the counter: crashes far apart never add up. */
static void test_stable_boots_clear_the_counter(void **state)
{
    (void)state;
    s_rtc = 0;
    fake_port_t fp;
    for (int i = 0; i < 10; i++) {
        s_reads = 0;
        mcp_core_t *core = boot(&fp);
        assert_false(in_safe_mode(core));
        run_for(&fp, core, 29900);
        assert_int_equal(s_rtc, 1);
        run_for(&fp, core, 200);
        assert_int_equal(s_rtc, 0);
        assert_true(s_reads > 0);
        mcp_core_destroy(core);
        fp_free(&fp);
    }
    /* no boot counter in the port, or switched off: never */
    fp_init(&fp);
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtt://broker:1883", .device_id = "dev-1"};
    mcp_core_t *core = NULL;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    assert_false(in_safe_mode(core));
    mcp_core_destroy(core);
    s_rtc = 100;
    fp.port.boot_count_load = t_load;
    fp.port.boot_count_store = t_store;
    c.safe_mode_boots = MCP_BRIDGE_SAFE_MODE_OFF;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    assert_false(in_safe_mode(core));
    assert_int_equal(s_rtc, 100);
    mcp_core_destroy(core);
    fp_free(&fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick_restarts_lead_to_safe_mode),
        cmocka_unit_test(test_stable_boots_clear_the_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
