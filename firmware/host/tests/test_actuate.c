/*
 * Actuator callbacks run without the bridge's lock (mcp_actuate.c): while a
 * slow valve moves, another task gets the lock, ticks the core and publishes;
 * with an actuator task the commands queue (bounded, in order) and are
 * answered once their callback returned, never with `timeout` after the value
 * was applied.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fake_port.h"
#include "mcp_core.h"

#define B "mcp_bridge/dev-1/"

static pthread_mutex_t s_mu;
static int s_depth; /* lock depth held by whoever holds s_mu */

static void t_lock(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&s_mu);
    s_depth++;
}

static void t_unlock(void *ctx)
{
    (void)ctx;
    s_depth--;
    pthread_mutex_unlock(&s_mu);
}

static int s_wakes;
static void t_wake(void *ctx)
{
    (void)ctx;
    s_wakes++;
}

typedef struct {
    fake_port_t fp;
    mcp_core_t *core;
    int calls;
    esp_err_t result;
    uint32_t takes_ms;     /* the fake clock moves this much during the callback */
    bool other_task_ran;   /* another thread got the lock during the callback */
} fx_t;


/* "Another task": takes the lock (bounded wait: a held lock fails the test
 * instead of hanging it), ticks the core and publishes a reading. */
static void *other_task(void *arg)
{
    fx_t *f = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    if (pthread_mutex_timedlock(&s_mu, &until) != 0) {
        return NULL;
    }
    s_depth++;
    mcp_core_tick(f->core, f->fp.now);
    mcp_value_t v = mcp_value_number(21.5);
    f->other_task_ran = mcp_core_publish_sensor_value(f->core, "temp", &v, -1) == ESP_OK;
    s_depth--;
    pthread_mutex_unlock(&s_mu);
    return NULL;
}

static esp_err_t valve_cb(const char *id, mcp_action_t action, mcp_value_t *value, void *ud)
{
    (void)id;
    (void)action;
    (void)value;
    fx_t *f = ud;
    f->calls++;
    assert_int_equal(s_depth, 0); /* not under the bridge's lock */
    f->fp.now += f->takes_ms;
    if (f->fp.port.lock) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, other_task, f), 0);
        pthread_join(t, NULL);
    }
    return f->result;
}

static esp_err_t temp_cb(const char *id, mcp_value_t *value, int *quality, void *ud)
{
    (void)id;
    (void)quality;
    (void)ud;
    *value = mcp_value_number(20.0);
    return ESP_OK;
}

enum { PLAIN, LOCKED, WITH_TASK };

/* The core copies the port table at create: what a test needs is set before. */
static int setup_mode(void **state, int mode)
{
    fx_t *f = calloc(1, sizeof *f);
    fp_init(&f->fp);
    if (mode == LOCKED) {
        f->fp.port.lock = t_lock;
        f->fp.port.unlock = t_unlock;
    } else if (mode == WITH_TASK) {
        f->fp.port.actuator_wake = t_wake;
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s_mu, &attr);
    pthread_mutexattr_destroy(&attr);
    s_depth = 0;
    s_wakes = 0;
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtt://broker:1883", .device_id = "dev-1",
                             .discovery_holdoff_ms = MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE};
    assert_int_equal(mcp_core_create(&c, &f->fp.port, &f->core), ESP_OK);
    const char *acts[] = {"read", "write", "toggle", NULL};
    mcp_actuator_metadata_t relay = {.value_type = "boolean", .supported_actions = acts, .response_time_ms = 1000};
    assert_int_equal(mcp_core_register_actuator(f->core, "valve", "valve", &relay, valve_cb, f), ESP_OK);
    mcp_sensor_metadata_t m = {.interval_ms = 1000};
    assert_int_equal(mcp_core_register_sensor(f->core, "temp", "temperature", "°C", &m, temp_cb, NULL), ESP_OK);
    mcp_value_t off = mcp_value_bool(false);
    assert_int_equal(mcp_core_set_actuator_value(f->core, "valve", &off), ESP_OK);
    assert_int_equal(mcp_core_start(f->core), ESP_OK);
    mcp_core_on_connected(f->core);
    fp_clear(&f->fp);
    *state = f;
    return 0;
}

static int setup_plain(void **state)
{
    return setup_mode(state, PLAIN);
}

static int setup_locked(void **state)
{
    return setup_mode(state, LOCKED);
}

static int setup_with_task(void **state)
{
    return setup_mode(state, WITH_TASK);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    mcp_core_destroy(f->core);
    fp_free(&f->fp);
    pthread_mutex_destroy(&s_mu);
    free(f);
    return 0;
}

/* Deliver a message the way a port does: holding the lock once. */
static void deliver(fx_t *f, const char *topic, const char *payload)
{
    if (f->fp.port.lock) {
        f->fp.port.lock(f->fp.port.ctx);
    }
    fp_send(f->core, topic, payload);
    if (f->fp.port.unlock) {
        f->fp.port.unlock(f->fp.port.ctx);
    }
}

/* Index of the n-th message (from 0) on topic. */
static size_t find_msg(const fake_port_t *fp, const char *topic, size_t n)
{
    for (size_t i = 0; i < fp->n_msgs; i++) {
        if (strcmp(fp->msgs[i].topic, topic) == 0 && n-- == 0) {
            return i;
        }
    }
    fail_msg("no message %zu on %s", n, topic);
    return 0;
}

static void expect_response(fx_t *f, const char *want)
{
    const fp_msg_t *m = fp_last(&f->fp, B "response");
    assert_non_null(m);
    assert_string_equal(m->payload, want);
}

/* No actuator task: the callback runs inside on_message, but without the lock. */
static void test_callback_runs_without_the_lock(void **state)
{
    fx_t *f = *state;
    f->fp.now += 1000; /* the temperature is due: the other task's tick reads it */
    deliver(f, B "actuators/valve/set", "{\"id\":\"v1\",\"action\":\"write\",\"value\":true}");
    assert_int_equal(f->calls, 1);
    assert_true(f->other_task_ran);
    assert_true(fp_count(&f->fp, B "sensors/temp") >= 1);
    expect_response(f, "{\"id\":\"v1\",\"ok\":true,\"result\":{\"value\":true}}");
    assert_int_equal(fp_count(&f->fp, B "actuators/valve/state"), 1);
    assert_int_equal(s_depth, 0);
}

/* Slow but applied: the applied value, then a warning; a driver that gave up: timeout, no state. */
static void test_late_is_answered_with_the_applied_value(void **state)
{
    fx_t *f = *state;
    f->takes_ms = 4000; /* response_time_ms 1000 */
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"v2\",\"action\":\"toggle\"}");
    expect_response(f, "{\"id\":\"v2\",\"ok\":true,\"result\":{\"value\":true}}");
    const fp_msg_t *warn = fp_last(&f->fp, B "error");
    assert_non_null(warn);
    assert_non_null(strstr(warn->payload, "\"type\":\"actuator\""));
    assert_non_null(strstr(warn->payload, "\"severity\":2"));
    fp_clear(&f->fp);
    f->result = ESP_ERR_TIMEOUT;
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"v3\",\"action\":\"toggle\"}");
    const fp_msg_t *m = fp_last(&f->fp, B "response");
    assert_non_null(strstr(m->payload, "\"code\":\"timeout\""));
    assert_int_equal(fp_count(&f->fp, B "actuators/valve/state"), 0);
    mcp_value_t v;
    assert_int_equal(mcp_core_get_actuator_value(f->core, "valve", &v), ESP_OK);
    assert_true(v.boolean); /* unchanged */
}

/* With an actuator task: queued in order, answered when run; the fifth waiting one is busy. */
static void test_actuator_task_queues_in_order(void **state)
{
    fx_t *f = *state;
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"q1\",\"action\":\"toggle\"}");
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"q2\",\"action\":\"toggle\"}");
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"q3\",\"action\":\"read\"}");
    fp_send(f->core, B "actuators/valve/set", "{\"action\":\"write\",\"value\":true}");
    assert_int_equal(f->calls, 0);
    assert_int_equal(s_wakes, 4);
    assert_int_equal(fp_count(&f->fp, B "response"), 0);
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"q5\",\"action\":\"toggle\"}");
    expect_response(f, "{\"id\":\"q5\",\"ok\":false,\"error\":{\"code\":\"busy\","
                       "\"message\":\"4 actuator commands are still running\"}}");
    fp_clear(&f->fp);
    mcp_core_run_actuator_jobs(f->core);
    assert_int_equal(f->calls, 4);
    assert_int_equal(fp_count(&f->fp, B "response"), 3); /* the fourth had no id */
    /* two toggles flip twice: true, then false; the read sees false; the write sets true */
    assert_string_equal(f->fp.msgs[find_msg(&f->fp, B "response", 0)].payload,
                        "{\"id\":\"q1\",\"ok\":true,\"result\":{\"value\":true}}");
    assert_string_equal(f->fp.msgs[find_msg(&f->fp, B "response", 1)].payload,
                        "{\"id\":\"q2\",\"ok\":true,\"result\":{\"value\":false}}");
    assert_string_equal(f->fp.msgs[find_msg(&f->fp, B "response", 2)].payload,
                        "{\"id\":\"q3\",\"ok\":true,\"result\":{\"value\":false}}");
    mcp_value_t v;
    assert_int_equal(mcp_core_get_actuator_value(f->core, "valve", &v), ESP_OK);
    assert_true(v.boolean);
    assert_int_equal(fp_count(&f->fp, B "actuators/valve/state"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_callback_runs_without_the_lock, setup_locked, teardown),
        cmocka_unit_test_setup_teardown(test_late_is_answered_with_the_applied_value, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_actuator_task_queues_in_order, setup_with_task, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
