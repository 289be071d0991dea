/*
 * Connection policy (core/src/mcp_link.c) on a fake clock: reconnect backoff
 * with jitter, the reboot after a long time without the broker, and the rate
 * limit of Home Assistant's birth message.
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

static uint64_t s_attempts[64];
static size_t s_n_attempts;

static esp_err_t t_reconnect(void *ctx)
{
    fake_port_t *fp = ctx;
    if (s_n_attempts < 64) {
        s_attempts[s_n_attempts++] = fp->now;
    }
    return ESP_OK;
}

static mcp_core_t *make(fake_port_t *fp, const char *id, bool driven, uint32_t reboot_ms)
{
    fp_init(fp);
    s_n_attempts = 0;
    if (driven) {
        fp->port.mqtt_reconnect = t_reconnect;
    }
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtt://broker:1883", .device_id = id,
                             .discovery_holdoff_ms = MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE,
                             .reboot_after_offline_ms = reboot_ms};
    mcp_core_t *core = NULL;
    assert_int_equal(mcp_core_create(&c, &fp->port, &core), ESP_OK);
    return core;
}

static void run_until(fake_port_t *fp, mcp_core_t *core, uint64_t until)
{
    while (fp->now < until) {
        fp->now += 10;
        mcp_core_tick(core, fp->now);
    }
}

/* Equal jitter: every wait within [step/2, step], the step doubling from 1 s to 60 s. */
static void test_backoff_doubles_with_jitter(void **state)
{
    (void)state;
    fake_port_t fp;
    mcp_core_t *core = make(&fp, "dev-1", false, 0);
    for (uint32_t attempt = 0; attempt < 12; attempt++) {
        uint32_t step = 1000u << (attempt < 6 ? attempt : 6);
        if (step > 60000u) {
            step = 60000u;
        }
        for (int k = 0; k < 50; k++) {
            uint32_t d = mcp_core_reconnect_delay_ms(core, attempt);
            assert_true(d >= step / 2);
            assert_true(d <= step);
        }
    }
    /* two devices that lost the same broker do not come back together */
    fake_port_t fp2;
    mcp_core_t *other = make(&fp2, "dev-2", false, 0);
    int same = 0;
    for (int k = 0; k < 20; k++) {
        same += mcp_core_reconnect_delay_ms(core, 3) == mcp_core_reconnect_delay_ms(other, 3);
    }
    assert_true(same < 3);
    mcp_core_destroy(other);
    fp_free(&fp2);
    mcp_core_destroy(core);
    fp_free(&fp);
}

/* A port without its own reconnecting is driven by the core: attempts at growing, jittered
 * intervals while offline, none while connected, the first one soon after a loss. */
static void test_core_drives_reconnects(void **state)
{
    (void)state;
    fake_port_t fp;
    mcp_core_t *core = make(&fp, "dev-1", true, 0);
    uint64_t t0 = fp.now;
    assert_int_equal(mcp_core_start(core), ESP_OK);
    run_until(&fp, core, t0 + 120000);
    assert_true(s_n_attempts >= 4);
    assert_true(s_n_attempts <= 9);
    uint64_t prev = t0;
    for (size_t i = 0; i < s_n_attempts; i++) {
        uint64_t gap = s_attempts[i] - prev;
        uint32_t step = 1000u << (i < 6 ? i : 6);
        step = step > 60000u ? 60000u : step;
        assert_true(gap >= step / 2);
        assert_true(gap <= step + 10);
        prev = s_attempts[i];
    }
    mcp_core_on_connected(core);
    size_t before = s_n_attempts;
    run_until(&fp, core, fp.now + 200000);
    assert_int_equal(s_n_attempts, before); /* connected: nothing */
    mcp_core_on_disconnected(core);
    uint64_t lost = fp.now;
    run_until(&fp, core, fp.now + 1010);
    assert_int_equal(s_n_attempts, before + 1); /* the first try within the shortest step */
    assert_true(s_attempts[before] - lost >= 500);
    assert_int_equal(mcp_core_stop(core), ESP_OK);
    before = s_n_attempts;
    run_until(&fp, core, fp.now + 100000);
    assert_int_equal(s_n_attempts, before); /* stopped: nothing */
    mcp_core_destroy(core);
    fp_free(&fp);
}

/* Wi-Fi back after a long outage: the next broker attempt within the shortest step. */
static void test_network_up_restarts_the_backoff(void **state)
{
    (void)state;
    fake_port_t fp;
    mcp_core_t *core = make(&fp, "dev-1", true, 0);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    run_until(&fp, core, fp.now + 300000); /* the waits have reached 60 s */
    size_t before = s_n_attempts;
    mcp_core_on_wifi_reconnected(core);
    run_until(&fp, core, fp.now + 1010);
    assert_int_equal(s_n_attempts, before + 1);
    mcp_core_destroy(core);
    fp_free(&fp);
}

/* reboot_after_offline_ms: once, after that long without a connection; never while connected. */
static void test_reboot_when_the_broker_stays_away(void **state)
{
    (void)state;
    fake_port_t fp;
    mcp_core_t *core = make(&fp, "dev-1", true, 300000);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    run_until(&fp, core, fp.now + 400000);
    assert_int_equal(fp.restarts, 0);
    mcp_core_on_disconnected(core);
    uint64_t lost = fp.now;
    run_until(&fp, core, lost + 299990);
    assert_int_equal(fp.restarts, 0);
    run_until(&fp, core, lost + 300010);
    assert_int_equal(fp.restarts, 1);
    run_until(&fp, core, fp.now + 600000);
    assert_int_equal(fp.restarts, 1);
    mcp_core_destroy(core);
    fp_free(&fp);
    /* off by default */
    core = make(&fp, "dev-1", true, 0);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    run_until(&fp, core, fp.now + 3600000);
    assert_int_equal(fp.restarts, 0);
    mcp_core_destroy(core);
    fp_free(&fp);
}

/* Births closer than 10 s are coalesced into one re-publication at the end of the interval. */
static void test_birth_flood_is_rate_limited(void **state)
{
    (void)state;
    fake_port_t fp;
    mcp_core_t *core = make(&fp, "dev-1", false, 0);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    fp_clear(&fp);
    uint64_t t0 = fp.now;
    fp_send(core, "homeassistant/status", "online");
    assert_int_equal(fp_count(&fp, B "capabilities"), 1);
    for (int i = 0; i < 50; i++) { /* a flood */
        fp.now += 100;
        fp_send(core, "homeassistant/status", "online");
        mcp_core_tick(core, fp.now);
    }
    assert_int_equal(fp_count(&fp, B "capabilities"), 1);
    run_until(&fp, core, t0 + 9990);
    assert_int_equal(fp_count(&fp, B "capabilities"), 1);
    run_until(&fp, core, t0 + 10010);
    assert_int_equal(fp_count(&fp, B "capabilities"), 2); /* the last birth is not lost */
    run_until(&fp, core, t0 + 60000);
    assert_int_equal(fp_count(&fp, B "capabilities"), 2);
    fp.now += 1000; /* a real restart later: at once */
    fp_send(core, "homeassistant/status", "online");
    assert_int_equal(fp_count(&fp, B "capabilities"), 3);
    /* a coalesced birth is dropped by a reconnection, which re-publishes everything itself */
    fp.now += 1000;
    fp_send(core, "homeassistant/status", "online");
    mcp_core_on_disconnected(core);
    mcp_core_on_connected(core);
    assert_int_equal(fp_count(&fp, B "capabilities"), 4);
    run_until(&fp, core, fp.now + 20000);
    assert_int_equal(fp_count(&fp, B "capabilities"), 4);
    mcp_core_destroy(core);
    fp_free(&fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_with_jitter),
        cmocka_unit_test(test_core_drives_reconnects),
        cmocka_unit_test(test_network_up_restarts_the_backoff),
        cmocka_unit_test(test_reboot_when_the_broker_stays_away),
        cmocka_unit_test(test_birth_flood_is_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
