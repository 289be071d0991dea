/*
 * Commands that must not run late or twice (core/src/mcp_dedup.c): a
 * repeated id is answered with the first answer and not run again; a command
 * after its deadline is answered `expired` and not run.
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
#define NOW_EPOCH 1764000000000ull

static int s_calls;
static int s_wakes;
static esp_err_t s_result;

static esp_err_t ctl_cb(const char *id, mcp_action_t action, mcp_value_t *v, void *ud)
{
    (void)id;
    (void)action;
    (void)v;
    (void)ud;
    s_calls++;
    return s_result;
}

static void t_wake(void *ctx)
{
    (void)ctx;
    s_wakes++;
}

typedef struct {
    fake_port_t fp;
    mcp_core_t *core;
} fx_t;

static int setup_mode(void **state, bool with_task)
{
    fx_t *f = calloc(1, sizeof *f);
    fp_init(&f->fp);
    if (with_task) {
        f->fp.port.actuator_wake = t_wake;
    }
    f->fp.epoch = NOW_EPOCH;
    s_calls = 0;
    s_wakes = 0;
    s_result = ESP_OK;
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtt://broker:1883", .device_id = "dev-1",
                             .discovery_holdoff_ms = MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE};
    assert_int_equal(mcp_core_create(&c, &f->fp.port, &f->core), ESP_OK);
    const char *acts[] = {"read", "write", "toggle", NULL};
    mcp_actuator_metadata_t relay = {.value_type = "boolean", .supported_actions = acts};
    assert_int_equal(mcp_core_register_actuator(f->core, "relay", "relay", &relay, ctl_cb, NULL), ESP_OK);
    const char *wr[] = {"read", "write", NULL};
    mcp_actuator_metadata_t text = {.value_type = "string", .supported_actions = wr};
    assert_int_equal(mcp_core_register_actuator(f->core, "display", "text", &text, ctl_cb, NULL), ESP_OK);
    mcp_value_t off = mcp_value_bool(false);
    assert_int_equal(mcp_core_set_actuator_value(f->core, "relay", &off), ESP_OK);
    assert_int_equal(mcp_core_start(f->core), ESP_OK);
    mcp_core_on_connected(f->core);
    fp_clear(&f->fp);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_mode(state, false);
}

static int setup_with_task(void **state)
{
    return setup_mode(state, true);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    mcp_core_destroy(f->core);
    fp_free(&f->fp);
    free(f);
    return 0;
}

static const char *last_response(fx_t *f)
{
    const fp_msg_t *m = fp_last(&f->fp, B "response");
    assert_non_null(m);
    return m->payload;
}

static void test_repeat_gets_the_first_answer(void **state)
{
    fx_t *f = *state;
    const char *toggle = "{\"id\":\"r1\",\"action\":\"toggle\"}";
    fp_send(f->core, B "actuators/relay/set", toggle);
    char first[128];
    snprintf(first, sizeof first, "%s", last_response(f));
    assert_string_equal(first, "{\"id\":\"r1\",\"ok\":true,\"result\":{\"value\":true}}");
    fp_send(f->core, B "actuators/relay/set", toggle); /* the sender retried */
    assert_int_equal(fp_count(&f->fp, B "response"), 2);
    assert_string_equal(last_response(f), first);
    assert_int_equal(s_calls, 1);
    assert_int_equal(fp_count(&f->fp, B "actuators/relay/state"), 1);
    /* the same id with another command is a new command */
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"r1\",\"action\":\"read\"}");
    assert_int_equal(s_calls, 2);
    /* device commands too: a repeated ping is answered with its first uptime */
    fp_send(f->core, B "cmd", "{\"id\":\"m1\",\"cmd\":\"ping\"}");
    snprintf(first, sizeof first, "%s", last_response(f));
    f->fp.now += 5000;
    fp_send(f->core, B "cmd", "{\"id\":\"m1\",\"cmd\":\"ping\"}");
    assert_string_equal(last_response(f), first); /* the uptime of the first answer */
}

/* Eight commands are remembered; the ninth pushes the oldest out. A busy answer is not kept. */
static void test_memory_is_bounded_and_busy_is_not_kept(void **state)
{
    fx_t *f = *state;
    char cmd[64];
    for (int i = 0; i < 9; i++) {
        snprintf(cmd, sizeof cmd, "{\"id\":\"w%d\",\"action\":\"write\",\"value\":true}", i);
        fp_send(f->core, B "actuators/relay/set", cmd);
    }
    assert_int_equal(s_calls, 9);
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"w8\",\"action\":\"write\",\"value\":true}");
    assert_int_equal(s_calls, 9);
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"w0\",\"action\":\"write\",\"value\":true}");
    assert_int_equal(s_calls, 10); /* forgotten: run again */
    s_result = ESP_ERR_MCP_BUSY;
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"b1\",\"action\":\"toggle\"}");
    assert_non_null(strstr(last_response(f), "\"busy\""));
    s_result = ESP_OK;
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"b1\",\"action\":\"toggle\"}");
    assert_int_equal(s_calls, 12);
    assert_non_null(strstr(last_response(f), "\"ok\":true"));
}

/* An answer too long to keep comes from a command that can run twice: it runs again. */
static void test_long_answer_runs_again(void **state)
{
    fx_t *f = *state;
    char cmd[700], text[501];
    memset(text, 'a', 500);
    text[500] = '\0';
    snprintf(cmd, sizeof cmd, "{\"id\":\"l1\",\"action\":\"write\",\"value\":\"%s\"}", text);
    fp_send(f->core, B "actuators/display/set", cmd);
    char *first = strdup(last_response(f));
    fp_send(f->core, B "actuators/display/set", cmd);
    assert_int_equal(s_calls, 2);
    assert_string_equal(last_response(f), first);
    free(first);
}

/* With an actuator task: a repeat while the first runs gets no second answer. */
static void test_repeat_while_running(void **state)
{
    fx_t *f = *state;
    const char *toggle = "{\"id\":\"p1\",\"action\":\"toggle\"}";
    fp_send(f->core, B "actuators/relay/set", toggle);
    fp_send(f->core, B "actuators/relay/set", toggle);
    assert_int_equal(s_wakes, 1);
    assert_int_equal(fp_count(&f->fp, B "response"), 0);
    mcp_core_run_actuator_jobs(f->core);
    assert_int_equal(s_calls, 1);
    assert_int_equal(fp_count(&f->fp, B "response"), 1);
    fp_send(f->core, B "actuators/relay/set", toggle); /* now from memory */
    assert_int_equal(fp_count(&f->fp, B "response"), 2);
    assert_string_equal(last_response(f), "{\"id\":\"p1\",\"ok\":true,\"result\":{\"value\":true}}");
    assert_int_equal(s_calls, 1);
}

static void test_deadline(void **state)
{
    fx_t *f = *state;
    /* passed: expired, not run; a repeat gets the same answer */
    const char *late = "{\"id\":\"d1\",\"action\":\"toggle\",\"deadline\":1763999999000}";
    fp_send(f->core, B "actuators/relay/set", late);
    assert_int_equal(s_calls, 0);
    assert_non_null(strstr(last_response(f), "\"code\":\"expired\""));
    assert_int_equal(fp_count(&f->fp, B "actuators/relay/state"), 0);
    f->fp.epoch -= 10000; /* even if it would be in time now: the first answer */
    fp_send(f->core, B "actuators/relay/set", late);
    assert_int_equal(s_calls, 0);
    f->fp.epoch = NOW_EPOCH;
    /* in time (the deadline itself is still in time) */
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"d2\",\"action\":\"toggle\",\"deadline\":1764000000000}");
    assert_int_equal(s_calls, 1);
    fp_send(f->core, B "cmd", "{\"id\":\"d3\",\"cmd\":\"ping\",\"deadline\":1763999999999}");
    assert_non_null(strstr(last_response(f), "\"code\":\"expired\""));
    /* not an epoch in ms: malformed, with the id */
    fp_send(f->core, B "cmd", "{\"id\":\"d4\",\"cmd\":\"ping\",\"deadline\":\"soon\"}");
    assert_non_null(strstr(last_response(f), "{\"id\":\"d4\",\"ok\":false,\"error\":{\"code\":\"malformed\""));
    fp_send(f->core, B "cmd", "{\"id\":\"d5\",\"cmd\":\"ping\",\"deadline\":1.5}");
    assert_non_null(strstr(last_response(f), "\"malformed\""));
    /* without id: not run, reported as an error message */
    fp_send(f->core, B "actuators/relay/set", "{\"action\":\"toggle\",\"deadline\":1}");
    assert_int_equal(s_calls, 1);
    assert_non_null(strstr(fp_last(&f->fp, B "error")->payload, "expired"));
    /* no synchronised clock: cannot judge, runs */
    f->fp.epoch = 0;
    fp_send(f->core, B "actuators/relay/set", "{\"id\":\"d6\",\"action\":\"toggle\",\"deadline\":1}");
    assert_int_equal(s_calls, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repeat_gets_the_first_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_is_bounded_and_busy_is_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_answer_runs_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_while_running, setup_with_task, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
