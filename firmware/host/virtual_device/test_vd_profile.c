/*
 * Unit tests of the virtual device's profile parser and simulated signals
 * (cmocka). The shipped profiles directory is passed as argv[1].
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vd_profile.h"
#include "vd_signal.h"

static const char *g_profiles_dir = ".";

static vd_profile_t *load_shipped(const char *name, double scale)
{
    char path[1024];
    char err[256];
    snprintf(path, sizeof(path), "%s/%s.json", g_profiles_dir, name);
    vd_profile_t *p = NULL;
    esp_err_t e = vd_profile_load(path, scale, &p, err, sizeof(err));
    if (e != ESP_OK) {
        fail_msg("%s: %s", path, err);
    }
    return p;
}

static const vd_sensor_def_t *sensor(const vd_profile_t *p, const char *id)
{
    for (size_t i = 0; i < p->sensor_count; i++) {
        if (strcmp(p->sensors[i].id, id) == 0) {
            return &p->sensors[i];
        }
    }
    fail_msg("no sensor %s", id);
    return NULL;
}

static const vd_actuator_def_t *actuator(const vd_profile_t *p, const char *id)
{
    for (size_t i = 0; i < p->actuator_count; i++) {
        if (strcmp(p->actuators[i].id, id) == 0) {
            return &p->actuators[i];
        }
    }
    fail_msg("no actuator %s", id);
    return NULL;
}

static void test_greenhouse(void **state)
{
    (void)state;
    vd_profile_t *p = load_shipped("greenhouse", 1.0);
    assert_int_equal(p->sensor_count, 3);
    assert_int_equal(p->actuator_count, 1);
    const vd_sensor_def_t *t = sensor(p, "temperature");
    assert_string_equal(t->unit, "°C");
    assert_int_equal(t->interval_ms, 10000);
    assert_int_equal(t->signal.kind, VD_SIGNAL_SINE);
    assert_int_equal(sensor(p, "soil_moisture")->signal.kind, VD_SIGNAL_RANDOM_WALK);
    const vd_actuator_def_t *v = actuator(p, "valve");
    assert_int_equal(v->value_type, MCP_VALUE_NUMBER);
    assert_true(v->requires_confirmation);
    assert_true(v->meta.requires_confirmation);
    assert_true(v->meta.min_value == 0.0f && v->meta.max_value == 100.0f && v->meta.step == 5.0f);
    assert_string_equal(v->meta.unit, "%");
    assert_string_equal(v->meta.value_type, "number");
    vd_profile_free(p);
}

static void test_lamp_and_sensor_node(void **state)
{
    (void)state;
    vd_profile_t *p = load_shipped("lamp", 1.0);
    const vd_actuator_def_t *led = actuator(p, "led");
    assert_string_equal(led->type, "led");
    assert_int_equal(led->value_type, MCP_VALUE_BOOLEAN);
    assert_true(led->has_initial && !led->initial.boolean);
    assert_string_equal(led->meta.supported_actions[2], "toggle");
    assert_null(led->meta.supported_actions[3]);
    const vd_actuator_def_t *b = actuator(p, "brightness");
    assert_true(b->min == 0 && b->max == 255);
    vd_profile_free(p);

    p = load_shipped("sensor_node", 1.0);
    assert_int_equal(sensor(p, "motion")->value_type, MCP_VALUE_BOOLEAN);
    assert_string_equal(sensor(p, "motion")->meta.value_type, "boolean");
    assert_int_equal(sensor(p, "pressure")->quality, 98);
    vd_profile_free(p);
}

static void test_lab_every_type(void **state)
{
    (void)state;
    vd_profile_t *p = load_shipped("lab", 1.0);
    const vd_sensor_def_t *mode = sensor(p, "mode");
    assert_int_equal(mode->value_type, MCP_VALUE_ENUM);
    assert_int_equal(mode->option_count, 3);
    assert_ptr_equal(mode->meta.enum_options, mode->options);
    assert_null(mode->options[3]);
    assert_int_equal(sensor(p, "flaky")->fail_every_n, 2);
    assert_int_equal(actuator(p, "reset")->value_type, MCP_VALUE_TRIGGER);
    assert_int_equal(actuator(p, "fan_mode")->value_type, MCP_VALUE_ENUM);
    assert_string_equal(actuator(p, "fan_mode")->initial.string, "off");
    assert_int_equal(actuator(p, "display")->value_type, MCP_VALUE_STRING);
    const vd_actuator_def_t *lock = actuator(p, "door_lock");
    assert_int_equal(lock->fail_every_n, 3);
    assert_int_equal(lock->fail_code, ESP_ERR_MCP_BUSY);
    assert_int_equal(lock->delay_ms, 200);
    vd_profile_free(p);
}

static void test_interval_scale(void **state)
{
    (void)state;
    vd_profile_t *p = load_shipped("greenhouse", 0.01);
    /* 10 s and 5 s sensors, a hundred times faster; never below the core's minimum */
    assert_int_equal(sensor(p, "temperature")->interval_ms, 100 < MCP_MIN_INTERVAL_MS ? MCP_MIN_INTERVAL_MS : 100);
    assert_int_equal(sensor(p, "soil_moisture")->interval_ms, 50 < MCP_MIN_INTERVAL_MS ? MCP_MIN_INTERVAL_MS : 50);
    assert_int_equal(p->metrics_interval_ms, 600);
    assert_true(fabs(sensor(p, "temperature")->signal.period_ms - 18000.0) < 1e-6);
    vd_profile_free(p);
    p = load_shipped("greenhouse", 0.00001);
    assert_int_equal(sensor(p, "temperature")->interval_ms, MCP_MIN_INTERVAL_MS);
    vd_profile_free(p);
}

static void test_bad_profiles(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"[1]", "must be a JSON object"},
        {"{\"sensors\": [{\"id\": \"t\"}], \"colour\": 1}", "unknown key \"colour\""},
        {"{}", "no sensors and no actuators"},
        {"{\"sensors\": [{\"name\": \"x\"}]}", "missing \"id\""},
        {"{\"sensors\": [{\"id\": \"t\", \"value_type\": \"float\"}]}", "unknown value_type \"float\""},
        {"{\"sensors\": [{\"id\": \"t\", \"min\": 5}]}", "give both \"min\" and \"max\""},
        {"{\"sensors\": [{\"id\": \"t\", \"signal\": {\"kind\": \"sawtooth\"}}]}", "unknown signal kind"},
        {"{\"sensors\": [{\"id\": \"t\", \"signal\": {\"kind\": \"sine\"}}]}", "needs \"period_ms\""},
        {"{\"sensors\": [{\"id\": \"t\", \"signal\": {\"kind\": \"toggle\"}}]}", "does not fit value_type"},
        {"{\"sensors\": [{\"id\": \"t\", \"value_type\": \"enum\"}]}", "needs \"options\""},
        {"{\"sensors\": [{\"id\": \"t\", \"value_type\": \"enum\", \"options\": [\"a\"], "
         "\"signal\": {\"kind\": \"constant\", \"value\": \"b\"}}]}",
         "not one of the options"},
        {"{\"sensors\": [{\"id\": \"t\", \"interval_ms\": -1}]}", "must be an integer"},
        {"{\"sensors\": [{\"id\": \"t\", \"interval_ms\": 5}]}", "at least"},
        {"{\"sensors\": [{\"id\": \"t\", \"errors\": {\"probability\": 2}}]}", "between 0 and 1"},
        {"{\"actuators\": [{\"id\": \"a\"}]}", "missing \"value_type\""},
        {"{\"actuators\": [{\"id\": \"a\", \"value_type\": \"enum\"}]}", "\"options\" are required"},
        {"{\"actuators\": [{\"id\": \"a\", \"value_type\": \"number\", \"min\": 0, \"max\": 10, "
         "\"initial\": 11}]}",
         "outside min..max"},
        {"{\"actuators\": [{\"id\": \"a\", \"value_type\": \"boolean\", \"actions\": [\"jump\"]}]}",
         "unknown action \"jump\""},
        {"{\"actuators\": [{\"id\": \"a\", \"value_type\": \"boolean\", \"errors\": {\"code\": \"oops\"}}]}",
         "unknown error code \"oops\""},
        {"{\"actuators\": [{\"id\": \"a\", \"value_type\": \"trigger\", \"initial\": 1}]}", "no \"initial\""},
        {"{\"actuators\": [{\"id\": \"a\", \"value_type\": \"boolean\", \"min\": 0, \"max\": 1}]}",
         "only for number actuators"},
        {"{not json", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        vd_profile_t *p = (vd_profile_t *)1;
        esp_err_t e = vd_profile_parse(cases[i].json, 1.0, &p, err, sizeof(err));
        if (e != ESP_ERR_INVALID_ARG || strstr(err, cases[i].message) == NULL) {
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, (int)e, err, cases[i].message);
        }
        assert_null(p);
    }
    char err[256];
    vd_profile_t *p = NULL;
    assert_int_equal(vd_profile_parse("{\"actuators\": []}", 0.0, &p, err, sizeof(err)), ESP_ERR_INVALID_ARG);
    assert_int_equal(vd_profile_load("/nonexistent/profile.json", 1.0, &p, err, sizeof(err)), ESP_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "cannot read profile"));
}

static void test_signals(void **state)
{
    (void)state;
    vd_signal_state_t st;
    vd_signal_params_t sine = {.kind = VD_SIGNAL_SINE, .offset = 20, .amplitude = 5, .period_ms = 1000,
                               .decimals = -1};
    vd_signal_init(&st, &sine, 1);
    assert_true(fabs(vd_signal_number(&sine, &st, 0) - 20.0) < 1e-9);
    assert_true(fabs(vd_signal_number(&sine, &st, 250) - 25.0) < 1e-9);
    assert_true(fabs(vd_signal_number(&sine, &st, 750) - 15.0) < 1e-9);

    vd_signal_params_t walk = {.kind = VD_SIGNAL_RANDOM_WALK, .start = 50, .step = 2, .min = 45, .max = 55,
                               .decimals = -1};
    vd_signal_state_t a, b;
    vd_signal_init(&a, &walk, 7);
    vd_signal_init(&b, &walk, 7);
    double prev = vd_signal_number(&walk, &a, 0);
    assert_true(prev == 50.0);
    assert_true(vd_signal_number(&walk, &b, 0) == 50.0);
    bool moved = false;
    for (int i = 1; i < 2000; i++) {
        double v = vd_signal_number(&walk, &a, (uint64_t)i);
        assert_true(v >= 45.0 && v <= 55.0);
        assert_true(fabs(v - prev) <= 2.0 + 1e-9);
        moved = moved || v != prev;
        prev = v;
        assert_true(v == vd_signal_number(&walk, &b, (uint64_t)i)); /* same seed, same walk */
    }
    assert_true(moved);

    vd_signal_params_t sq = {.kind = VD_SIGNAL_SQUARE, .low = 1, .high = 2, .period_ms = 100, .duty = 0.25,
                             .decimals = -1};
    vd_signal_init(&st, &sq, 1);
    assert_true(vd_signal_number(&sq, &st, 10) == 2.0);
    assert_true(vd_signal_number(&sq, &st, 30) == 1.0);
    assert_true(vd_signal_bool(&sq, &st, 110));
    assert_false(vd_signal_bool(&sq, &st, 160));

    vd_signal_params_t tog = {.kind = VD_SIGNAL_TOGGLE, .value = 1};
    vd_signal_init(&st, &tog, 1);
    assert_true(vd_signal_bool(&tog, &st, 0));
    assert_false(vd_signal_bool(&tog, &st, 0));
    assert_true(vd_signal_bool(&tog, &st, 0));

    vd_signal_params_t never = {.kind = VD_SIGNAL_PROBABILITY, .probability = 0.0};
    vd_signal_params_t always = {.kind = VD_SIGNAL_PROBABILITY, .probability = 1.0};
    vd_signal_params_t half = {.kind = VD_SIGNAL_PROBABILITY, .probability = 0.5};
    vd_signal_init(&st, &never, 3);
    int trues = 0;
    for (int i = 0; i < 1000; i++) {
        assert_false(vd_signal_bool(&never, &st, 0));
        assert_true(vd_signal_bool(&always, &st, 0));
        trues += vd_signal_bool(&half, &st, 0) ? 1 : 0;
    }
    assert_true(trues > 400 && trues < 600);

    vd_signal_params_t cyc = {.kind = VD_SIGNAL_CYCLE};
    vd_signal_init(&st, &cyc, 1);
    assert_int_equal(vd_signal_index(&cyc, &st, 3), 0);
    assert_int_equal(vd_signal_index(&cyc, &st, 3), 1);
    assert_int_equal(vd_signal_index(&cyc, &st, 3), 2);
    assert_int_equal(vd_signal_index(&cyc, &st, 3), 0);

    vd_signal_params_t noisy = {.kind = VD_SIGNAL_CONSTANT, .value = 10, .noise = 0.5, .decimals = 1};
    vd_signal_init(&st, &noisy, 9);
    for (int i = 0; i < 100; i++) {
        double v = vd_signal_number(&noisy, &st, 0);
        assert_true(isfinite(v) && v > 7.0 && v < 13.0);
        assert_true(fabs(v * 10.0 - round(v * 10.0)) < 1e-6); /* one decimal */
    }
    assert_int_equal(vd_signal_kind_from_name("step"), VD_SIGNAL_SQUARE);
    assert_int_equal(vd_signal_kind_from_name("nope"), -1);
    assert_string_equal(vd_signal_kind_name(VD_SIGNAL_RANDOM_WALK), "random_walk");
}

static void test_error_code_names(void **state)
{
    (void)state;
    assert_int_equal(vd_error_code_from_name("busy"), ESP_ERR_MCP_BUSY);
    assert_int_equal(vd_error_code_from_name("timeout"), ESP_ERR_MCP_TIMEOUT);
    assert_int_equal(vd_error_code_from_name("out_of_range"), ESP_ERR_MCP_OUT_OF_RANGE);
    assert_int_equal(vd_error_code_from_name("internal"), ESP_FAIL);
    assert_int_equal(vd_error_code_from_name("whatever"), 0);
    assert_int_equal(vd_error_code_from_name(NULL), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        g_profiles_dir = argv[1];
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greenhouse),   cmocka_unit_test(test_lamp_and_sensor_node),
        cmocka_unit_test(test_lab_every_type), cmocka_unit_test(test_interval_scale),
        cmocka_unit_test(test_bad_profiles), cmocka_unit_test(test_signals),
        cmocka_unit_test(test_error_code_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
