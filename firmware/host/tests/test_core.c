/*
 * Unit tests of the portable core on the fake port (fake clock, recording
 * transport): registration rules, lifecycle, commands and error codes beyond
 * the shared vectors, scheduling, batch, metrics, discovery modes and
 * persistence, hostile input and fragmentation, and the singleton API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "cJSON.h"
#include "fake_port.h"
#include "mcp_core.h"

#define B "mcp_bridge/dev-1/"
#define RESP B "response"
#define DISC "homeassistant/device/dev-1/config"

typedef struct {
    fake_port_t fp;
    mcp_core_t *core;
    int reads;
    esp_err_t read_result;
    double read_value;
    esp_err_t ctl_result;
    uint64_t ctl_delay_ms;
    int ctl_calls;
    int events[16];
} fixture_t;

static esp_err_t read_cb(const char *id, mcp_value_t *v, int *quality, void *ud)
{
    fixture_t *f = ud;
    (void)id;
    f->reads++;
    v->number = f->read_value;
    *quality = 90;
    return f->read_result;
}

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

static void on_event(void *args, mcp_event_base_t base, int32_t id, void *data)
{
    fixture_t *f = args;
    (void)data;
    assert_string_equal(base, MCP_BRIDGE_EVENT);
    if (id >= 0 && id < 16) {
        f->events[id]++;
    }
}

static mcp_bridge_config_t base_config(void)
{
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtts://broker:8883",
                             .mqtt_username = "user",
                             .mqtt_password = "secret",
                             .device_id = "dev-1",
                             .device_name = "Test device",
                             .sensor_publish_interval_ms = 1000,
                             .metrics_interval_ms = 5000,
                             /* these tests look at a device publishing at once (the hold-off: test_lifecycle.c, test_flow.c) */
                             .discovery_holdoff_ms = MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE};
    return c;
}

/* A core on a new fake port (not started) with room for max_sensors sensors. */
static mcp_core_t *core_with_max_sensors(fake_port_t *fp, uint16_t max_sensors)
{
    fp_init(fp);
    mcp_bridge_config_t cfg = base_config();
    cfg.max_sensors = max_sensors;
    mcp_core_t *c = NULL;
    assert_int_equal(mcp_core_create(&cfg, &fp->port, &c), ESP_OK);
    return c;
}

static const char *const FAN_OPTS[] = {"auto", "manual", "off", NULL};

static void register_all(fixture_t *f)
{
    mcp_sensor_metadata_t t = {.min_range = -40, .max_range = 85, .accuracy = 0.5f};
    assert_int_equal(mcp_core_register_sensor(f->core, "temperature", "temperature", "°C", &t, read_cb, f), ESP_OK);
    mcp_sensor_metadata_t h = {.interval_ms = 3000};
    assert_int_equal(mcp_core_register_sensor(f->core, "humidity", "humidity", "%", &h, NULL, NULL), ESP_OK);
    mcp_sensor_metadata_t door = {.value_type = "boolean"};
    assert_int_equal(mcp_core_register_sensor(f->core, "door", "door", NULL, &door, NULL, NULL), ESP_OK);
    const char *led_actions[] = {"read", "write", "toggle", NULL};
    mcp_actuator_metadata_t led = {.value_type = "boolean", .supported_actions = led_actions};
    assert_int_equal(mcp_core_register_actuator(f->core, "led", "led", &led, ctl_cb, f), ESP_OK);
    mcp_actuator_metadata_t valve = {.value_type = "number", .min_value = 0, .max_value = 100, .step = 5,
                                     .requires_confirmation = true, .response_time_ms = 200, .unit = "%"};
    assert_int_equal(mcp_core_register_actuator(f->core, "valve", "valve", &valve, ctl_cb, f), ESP_OK);
    mcp_actuator_metadata_t fan = {.value_type = "enum", .enum_options = FAN_OPTS};
    assert_int_equal(mcp_core_register_actuator(f->core, "fan_mode", "fan", &fan, NULL, NULL), ESP_OK);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    fp_init(&f->fp);
    mcp_bridge_config_t c = base_config();
    assert_int_equal(mcp_core_create(&c, &f->fp.port, &f->core), ESP_OK);
    assert_ptr_equal(f->fp.attached, f->core);
    mcp_core_set_event_handler(f->core, on_event, f);
    register_all(f);
    assert_int_equal(mcp_core_start(f->core), ESP_OK);
    mcp_core_on_connected(f->core);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    mcp_core_destroy(f->core);
    assert_null(f->fp.attached);
    fp_free(&f->fp);
    free(f);
    return 0;
}

static cJSON *last_json(fixture_t *f, const char *topic)
{
    const fp_msg_t *m = fp_last(&f->fp, topic);
    assert_non_null(m);
    cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
    assert_non_null(j);
    return j;
}

/* code of the last response (or "ok"), with its id checked */
static void expect_response(fixture_t *f, const char *id, const char *code)
{
    cJSON *j = last_json(f, RESP);
    const cJSON *jid = cJSON_GetObjectItem(j, "id");
    if (id) {
        assert_string_equal(jid->valuestring, id);
    } else {
        assert_true(cJSON_IsNull(jid));
    }
    if (strcmp(code, "ok") == 0) {
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    } else {
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")));
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, code);
        assert_true(strlen(cJSON_GetObjectItem(e, "message")->valuestring) > 0);
    }
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------------ */

static void test_config_validation(void **state)
{
    (void)state;
    fake_port_t fp;
    fp_init(&fp);
    mcp_core_t *c = NULL;
    mcp_bridge_config_t cfg = base_config();
    cfg.mqtt_broker_uri = NULL;
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_ERR_INVALID_ARG);
    cfg = base_config();
    cfg.device_id = "Bad/Id";
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_ERR_INVALID_ARG);
    cfg = base_config();
    cfg.base_topic = "a/+/b";
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_ERR_INVALID_ARG);
    cfg = base_config();
    cfg.qos_config.error_qos = 3;
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_ERR_INVALID_ARG);
    cfg = base_config();
    cfg.enable_device_auth = true;
    cfg.mqtt_username = NULL;
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_ERR_INVALID_ARG);
    cfg = base_config();
    cfg.max_command_size = MCP_MAX_COMMAND_SIZE_LIMIT + 1;
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_ERR_INVALID_ARG);
    assert_null(c);
    /* default device id from the MAC */
    cfg = base_config();
    cfg.device_id = NULL;
    assert_int_equal(mcp_core_create(&cfg, &fp.port, &c), ESP_OK);
    assert_string_equal(mcp_core_device_id(c), "esp32-a1b2c3");
    mcp_core_destroy(c);
    fp_free(&fp);
}

static void test_registration_rules(void **state)
{
    fixture_t *f = *state;
    mcp_sensor_metadata_t md = {0};
    const char *bad_ids[] = {"", "Temp", "temp-1", "temp/1", "temp+", "temp#", "a b",
                             "soil_moisture_sensor_north_bed_1x", "températur", NULL};
    for (size_t i = 0; bad_ids[i]; i++) {
        assert_int_equal(mcp_core_register_sensor(f->core, bad_ids[i], "t", NULL, &md, NULL, NULL),
                         ESP_ERR_INVALID_ARG);
    }
    assert_int_equal(mcp_core_register_sensor(f->core, NULL, "t", NULL, &md, NULL, NULL), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_core_register_sensor(f->core, "x", "Bad Type", NULL, &md, NULL, NULL), ESP_ERR_INVALID_ARG);
    /* one id space for sensors and actuators */
    assert_int_equal(mcp_core_register_sensor(f->core, "temperature", "t", NULL, &md, NULL, NULL),
                     ESP_ERR_MCP_DUPLICATE_ID);
    assert_int_equal(mcp_core_register_sensor(f->core, "led", "t", NULL, &md, NULL, NULL), ESP_ERR_MCP_DUPLICATE_ID);
    mcp_sensor_metadata_t trig = {.value_type = "trigger"};
    assert_int_equal(mcp_core_register_sensor(f->core, "x", "t", NULL, &trig, NULL, NULL), ESP_ERR_INVALID_ARG);
    mcp_sensor_metadata_t en = {.value_type = "enum"};
    assert_int_equal(mcp_core_register_sensor(f->core, "x", "t", NULL, &en, NULL, NULL), ESP_ERR_INVALID_ARG);
    /* actuators */
    mcp_actuator_metadata_t none = {0};
    assert_int_equal(mcp_core_register_actuator(f->core, "x", "t", &none, NULL, NULL), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_core_register_actuator(f->core, "x", "t", NULL, NULL, NULL), ESP_ERR_INVALID_ARG);
    const char *bad_actions[] = {"read", "explode", NULL};
    mcp_actuator_metadata_t a1 = {.value_type = "number", .supported_actions = bad_actions};
    assert_int_equal(mcp_core_register_actuator(f->core, "x", "t", &a1, NULL, NULL), ESP_ERR_INVALID_ARG);
    const char *toggle[] = {"toggle", NULL};
    mcp_actuator_metadata_t a2 = {.value_type = "number", .supported_actions = toggle};
    assert_int_equal(mcp_core_register_actuator(f->core, "x", "t", &a2, NULL, NULL), ESP_ERR_INVALID_ARG);
    mcp_actuator_metadata_t a3 = {.value_type = "float"};
    assert_int_equal(mcp_core_register_actuator(f->core, "x", "t", &a3, NULL, NULL), ESP_ERR_INVALID_ARG);
    /* registry full */
    fake_port_t fp;
    mcp_core_t *c = core_with_max_sensors(&fp, 1);
    assert_int_equal(mcp_core_register_sensor(c, "a", "t", NULL, NULL, NULL, NULL), ESP_OK);
    assert_int_equal(mcp_core_register_sensor(c, "b", "t", NULL, NULL, NULL, NULL), ESP_ERR_MCP_REGISTRY_FULL);
    mcp_core_destroy(c);
    fp_free(&fp);
}

static void test_large_registry_fits(void **state)
{
    (void)state;
    fake_port_t fp;
    mcp_core_t *c = core_with_max_sensors(&fp, 32);
    char desc[257];
    memset(desc, 'd', 256);
    desc[256] = '\0';
    mcp_sensor_metadata_t md = {.description = desc, .min_range = -1, .max_range = 1};
    for (int i = 0; i < 32; i++) {
        char id[16];
        snprintf(id, sizeof id, "sensor_%02d", i);
        assert_int_equal(mcp_core_register_sensor(c, id, "temperature", "°C", &md, NULL, NULL), ESP_OK);
    }
    desc[200] = '\0';
    assert_int_equal(mcp_core_register_sensor(c, "one_more", "t", NULL, &md, NULL, NULL), ESP_ERR_MCP_REGISTRY_FULL);
    assert_int_equal(mcp_core_start(c), ESP_OK);
    mcp_core_on_connected(c);
    const fp_msg_t *m = fp_last(&fp, B "capabilities");
    assert_non_null(m);
    assert_true(m->len > 32 * 256);
    cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "sensors")), 32);
    cJSON_Delete(j);
    m = fp_last(&fp, DISC);
    assert_non_null(m);
    j = cJSON_ParseWithLength(m->payload, m->len);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "cmps")), 32);
    cJSON_Delete(j);
    /* and to mode integration (longer mode name) */
    assert_int_equal(mcp_core_set_discovery_mode(c, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    j = cJSON_ParseWithLength(fp_last(&fp, B "capabilities")->payload, fp_last(&fp, B "capabilities")->len);
    assert_non_null(j);
    cJSON_Delete(j);
    mcp_core_destroy(c);
    fp_free(&fp);
}

static void test_connect_publishes_everything(void **state)
{
    fixture_t *f = *state;
    /* LWT, auth and TLS handed to the port */
    assert_int_equal(f->fp.connects, 1);
    assert_string_equal(f->fp.lwt_topic, B "status");
    assert_int_equal(f->fp.last_params.lwt_qos, 1);
    assert_true(f->fp.last_params.lwt_retain);
    assert_string_equal(f->fp.username, "user");
    /* subscriptions */
    assert_int_equal(f->fp.n_subs, 3);
    assert_string_equal(f->fp.subs[0], B "cmd");
    assert_string_equal(f->fp.subs[1], B "actuators/+/set");
    assert_string_equal(f->fp.subs[2], "homeassistant/status");
    /* status, capabilities, discovery (retained), actuator states */
    const fp_msg_t *st = fp_last(&f->fp, B "status");
    assert_non_null(st);
    assert_string_equal(st->payload, "online");
    assert_true(st->retain);
    assert_true(fp_last(&f->fp, B "capabilities")->retain);
    const fp_msg_t *d = fp_last(&f->fp, DISC);
    assert_non_null(d);
    assert_true(d->retain);
    assert_non_null(fp_last(&f->fp, B "actuators/led/state"));
    assert_true(fp_last(&f->fp, B "actuators/led/state")->retain);
    assert_int_equal(f->events[MCP_EVENT_CONNECTED], 1);
    mcp_bridge_status_t s;
    mcp_core_get_status(f->core, &s);
    assert_int_equal(s.state, MCP_BRIDGE_STATE_CONNECTED);
    assert_int_equal(s.sensor_count, 3);
    assert_int_equal(s.actuator_count, 3);
}

static void test_discovery_payload_ha_rules(void **state)
{
    fixture_t *f = *state;
    cJSON *j = last_json(f, DISC);
    const cJSON *dev = cJSON_GetObjectItem(j, "dev");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(dev, "ids"), 0)->valuestring, "dev-1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "o"), "name")->valuestring, "esp_mcp_bridge");
    assert_string_equal(cJSON_GetObjectItem(j, "availability_topic")->valuestring, B "status");
    const cJSON *cmps = cJSON_GetObjectItem(j, "cmps");
    int n = 0;
    const cJSON *cmp;
    cJSON_ArrayForEach(cmp, cmps)
    {
        n++;
        /* every component: p, unique_id {D}_{id}, its own qos */
        char uid[80];
        snprintf(uid, sizeof uid, "dev-1_%s", cmp->string);
        assert_string_equal(cJSON_GetObjectItem(cmp, "unique_id")->valuestring, uid);
        assert_non_null(cJSON_GetObjectItem(cmp, "p"));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cmp, "qos")));
    }
    assert_int_equal(n, 6);
    const cJSON *led = cJSON_GetObjectItem(cmps, "led");
    /* a light (as in the integration); its state template renders the payloads */
    assert_string_equal(cJSON_GetObjectItem(led, "p")->valuestring, "light");
    assert_null(cJSON_GetObjectItem(led, "state_on"));
    assert_non_null(strstr(cJSON_GetObjectItem(led, "state_value_template")->valuestring,
                           cJSON_GetObjectItem(led, "payload_on")->valuestring));
    /* the command payloads are exactly the JSON commands the device accepts */
    const char *on = cJSON_GetObjectItem(led, "payload_on")->valuestring;
    fp_clear(&f->fp);
    fp_send(f->core, cJSON_GetObjectItem(led, "command_topic")->valuestring, on);
    cJSON *st = last_json(f, B "actuators/led/state");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(st, "value")));
    cJSON_Delete(st);
    assert_int_equal(fp_count(&f->fp, RESP), 0); /* no id, no response */
    const cJSON *valve = cJSON_GetObjectItem(cmps, "valve");
    assert_string_equal(cJSON_GetObjectItem(valve, "p")->valuestring, "number");
    assert_string_equal(cJSON_GetObjectItem(valve, "command_template")->valuestring,
                        "{\"action\":\"write\",\"value\":{{ value }}}");
    assert_int_equal((int)cJSON_GetObjectItem(valve, "step")->valuedouble, 5);
    const cJSON *temp = cJSON_GetObjectItem(cmps, "temperature");
    assert_string_equal(cJSON_GetObjectItem(temp, "device_class")->valuestring, "temperature");
    assert_string_equal(cJSON_GetObjectItem(temp, "state_class")->valuestring, "measurement");
    assert_string_equal(cJSON_GetObjectItem(temp, "value_template")->valuestring, "{{ value_json.value }}");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cmps, "door"), "p")->valuestring, "binary_sensor");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cmps, "fan_mode"), "p")->valuestring, "select");
    cJSON_Delete(j);
}

static void test_discovery_mode_switch_and_persistence(void **state)
{
    fixture_t *f = *state;
    fp_clear(&f->fp);
    fp_send(f->core, B "cmd", "{\"id\":\"m1\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\"}}");
    expect_response(f, "m1", "ok");
    const fp_msg_t *d = fp_last(&f->fp, DISC);
    assert_non_null(d);
    assert_int_equal(d->len, 0); /* cleared */
    assert_true(d->retain);
    cJSON *caps = last_json(f, B "capabilities");
    assert_string_equal(cJSON_GetObjectItem(caps, "discovery")->valuestring, "integration");
    cJSON_Delete(caps);
    assert_int_equal(f->events[MCP_EVENT_DISCOVERY_MODE_CHANGED], 1);
    /* HA's birth message: no discovery in mode integration, but status/caps/states again */
    fp_clear(&f->fp);
    fp_send(f->core, "homeassistant/status", "online");
    assert_int_equal(fp_count(&f->fp, DISC), 0);
    assert_int_equal(fp_count(&f->fp, B "capabilities"), 1);
    assert_int_equal(fp_count(&f->fp, B "status"), 1);
    assert_int_equal(fp_count(&f->fp, B "actuators/led/state"), 1);
    /* a new core on the same store comes up in mode integration */
    mcp_bridge_config_t cfg = base_config();
    mcp_core_t *c2;
    assert_int_equal(mcp_core_create(&cfg, &f->fp.port, &c2), ESP_OK);
    assert_int_equal(mcp_core_get_discovery_mode(c2), MCP_DISCOVERY_INTEGRATION);
    mcp_core_destroy(c2);
    f->fp.attached = f->core;
    /* and back: discovery is published again */
    fp_clear(&f->fp);
    fp_send(f->core, B "cmd", "{\"id\":\"m2\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"mqtt\"}}");
    expect_response(f, "m2", "ok");
    assert_true(fp_last(&f->fp, DISC)->len > 100);
    /* persisting fails: mode applied, answered internal */
    f->fp.kv_store_fails = true;
    fp_send(f->core, B "cmd", "{\"id\":\"m3\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\"}}");
    expect_response(f, "m3", "internal");
}

static void test_ha_birth_republishes_readings_later(void **state)
{
    fixture_t *f = *state;
    mcp_value_t h = mcp_value_number(55);
    assert_int_equal(mcp_core_publish_sensor_value(f->core, "humidity", &h, -1), ESP_OK);
    fp_clear(&f->fp);
    fp_send(f->core, "homeassistant/status", "offline"); /* ignored */
    assert_int_equal(f->fp.n_msgs, 0);
    fp_send(f->core, "homeassistant/status", "online");
    assert_int_equal(fp_count(&f->fp, DISC), 1);
    assert_int_equal(fp_count(&f->fp, B "sensors/humidity"), 0); /* not before HA subscribed */
    f->fp.now += 999;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "sensors/humidity"), 0);
    f->fp.now += 1;
    mcp_core_tick(f->core, f->fp.now);
    cJSON *j = last_json(f, B "sensors/humidity");
    assert_int_equal((int)cJSON_GetObjectItem(j, "value")->valuedouble, 55);
    cJSON_Delete(j);
}

/* The value's text in a published reading, as written (not parsed). */
static void published_value_text(fixture_t *f, char *out, size_t cap)
{
    const fp_msg_t *m = fp_last(&f->fp, B "sensors/humidity");
    assert_non_null(m);
    const char *start = strstr(m->payload, "\"value\":");
    assert_non_null(start);
    start += strlen("\"value\":");
    size_t n = strcspn(start, ",}");
    assert_true(n < cap);
    memcpy(out, start, n);
    out[n] = '\0';
}

/* What the writer printed before its printf-free path: %.15g, or %.17g when that does not round-trip. */
static void printf_number(double v, char *out, size_t cap)
{
    snprintf(out, cap, "%.15g", v);
    if (strtod(out, NULL) != v) {
        snprintf(out, cap, "%.17g", v);
    }
}

static void expect_number_text(fixture_t *f, double v)
{
    mcp_value_t value = mcp_value_number(v);
    assert_int_equal(mcp_core_publish_sensor_value(f->core, "humidity", &value, 90), ESP_OK);
    char got[48], want[48];
    published_value_text(f, got, sizeof got);
    printf_number(v, want, sizeof want);
    if (strcmp(got, want) != 0) {
        fail_msg("%.17g written as %s, printf gives %s", v, got, want);
    }
    assert_true(strtod(got, NULL) == v);
}

static void test_number_text_is_printf_text(void **state)
{
    fixture_t *f = *state;
    static const double edge[] = {0.0,        -0.0,      1.0,     -1.0,    23.5,       -40.25,    0.1,
                                  0.2,        0.3,       1.0 / 3, 1013.25, 0.0001,     0.00012,   0.000123456,
                                  0.00009999, 1e-5,      1e-7,    999999999999999.0,   1e15,      123456789012.345,
                                  4.35,       2.675,     1e300,   -1e-300, 5e-324,     1.7976931348623157e308,
                                  9007199254740993.0,     0.000001, 0.1234567, 65535.0, 4294967296.5};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        expect_number_text(f, edge[i]);
    }
    /* short decimals as sensors produce them, and arbitrary doubles */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (i & 1) {
            static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7};
            v = (double)(int64_t)(x % 2000000001ull - 1000000000ull) / scale[(x >> 40) % 8];
        } else {
            memcpy(&v, &x, sizeof v);
            if (!isfinite(v)) {
                continue;
            }
        }
        expect_number_text(f, v);
    }
}

static void test_sensor_schedule_and_streaming(void **state)
{
    fixture_t *f = *state;
    f->read_value = 21.5;
    fp_clear(&f->fp);
    /* first read one republish delay after connect, then every 1000 ms */
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(f->reads, 0);
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(f->reads, 1);
    cJSON *j = last_json(f, B "sensors/temperature");
    assert_true(cJSON_GetObjectItem(j, "value")->valuedouble == 21.5);
    assert_int_equal((int)cJSON_GetObjectItem(j, "quality")->valuedouble, 90);
    assert_null(cJSON_GetObjectItem(j, "ts")); /* clock not synced */
    cJSON_Delete(j);
    f->fp.now += 999;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(f->reads, 1);
    f->fp.now += 1;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(f->reads, 2);
    /* streaming at 200 ms: 5 readings per second */
    fp_send(f->core, B "cmd", "{\"id\":\"s1\",\"cmd\":\"set_streaming\",\"args\":{\"sensor\":\"temperature\",\"enable\":true,\"interval_ms\":200}}");
    expect_response(f, "s1", "ok");
    int before = f->reads;
    for (int i = 0; i < 10; i++) {
        mcp_core_tick(f->core, f->fp.now);
        f->fp.now += 100;
    }
    assert_int_equal(f->reads - before, 5);
    assert_int_equal(f->events[MCP_EVENT_STREAMING_CHANGED], 1);
    /* disable: back to 1000 ms, interval_ms reported */
    fp_send(f->core, B "cmd", "{\"id\":\"s2\",\"cmd\":\"set_streaming\",\"args\":{\"sensor\":\"temperature\",\"enable\":false}}");
    cJSON *r = last_json(f, RESP);
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "interval_ms")->valuedouble, 1000);
    cJSON_Delete(r);
    /* update_config changes the default interval */
    fp_send(f->core, B "cmd", "{\"id\":\"u1\",\"cmd\":\"update_config\",\"args\":{\"publish_interval_ms\":500}}");
    expect_response(f, "u1", "ok");
    f->fp.now += 500;
    before = f->reads;
    mcp_core_tick(f->core, f->fp.now);
    f->fp.now += 500;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(f->reads - before, 2);
}

static void test_failed_read_publishes_error_not_reading(void **state)
{
    fixture_t *f = *state;
    f->fp.epoch = 1764000000123ull;
    f->read_result = ESP_FAIL;
    fp_clear(&f->fp);
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "sensors/temperature"), 0);
    cJSON *e = last_json(f, B "error");
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "sensor_read");
    assert_int_equal((int)cJSON_GetObjectItem(e, "code")->valuedouble, ESP_ERR_MCP_SENSOR_READ);
    assert_int_equal((int)cJSON_GetObjectItem(e, "severity")->valuedouble, MCP_SEVERITY_WARNING);
    assert_true(cJSON_GetObjectItem(e, "ts")->valuedouble == 1764000000123.0);
    cJSON_Delete(e);
    assert_int_equal(fp_last(&f->fp, B "error")->qos, 2);
    /* NaN is a failed read too */
    f->read_result = ESP_OK;
    f->read_value = NAN;
    fp_clear(&f->fp);
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "sensors/temperature"), 0);
    assert_int_equal(fp_count(&f->fp, B "error"), 1);
    mcp_bridge_metrics_t m;
    mcp_core_get_metrics(f->core, &m);
    assert_int_equal(m.sensor_read_errors, 2);
    /* the API refuses NaN / Inf as well */
    mcp_value_t inf = mcp_value_number(INFINITY);
    assert_int_equal(mcp_core_publish_sensor_value(f->core, "humidity", &inf, -1), ESP_ERR_INVALID_ARG);
    mcp_value_t wrong = mcp_value_bool(true);
    assert_int_equal(mcp_core_publish_sensor_value(f->core, "humidity", &wrong, -1), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_core_publish_sensor_value(f->core, "nope", &wrong, -1), ESP_ERR_NOT_FOUND);
}

static void test_batch(void **state)
{
    fixture_t *f = *state;
    mcp_sensor_reading_t r[3] = {{"temperature", "temperature", 23.5, "°C", 0, 95.0f, MCP_VALUE_NUMBER, false, NULL},
                                 {"humidity", "humidity", 60.25, "%", 0, -1.0f, MCP_VALUE_NUMBER, false, NULL},
                                 {"door", "door", 0, NULL, 0, -1.0f, MCP_VALUE_BOOLEAN, true, NULL}};
    /* mode mqtt: batch plus the single topics HA reads */
    fp_clear(&f->fp);
    assert_int_equal(mcp_core_publish_sensor_batch(f->core, r, 3), ESP_OK);
    assert_int_equal(fp_count(&f->fp, B "batch"), 1);
    assert_int_equal(fp_count_prefix(&f->fp, B "sensors/"), 3);
    cJSON *b = last_json(f, B "batch");
    const cJSON *rs = cJSON_GetObjectItem(b, "readings");
    assert_int_equal(cJSON_GetArraySize(rs), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rs, 0), "id")->valuestring, "temperature");
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(rs, 0), "quality")->valuedouble, 95);
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(rs, 1), "quality"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(rs, 2), "value")));
    cJSON_Delete(b);
    /* mode integration: only the batch */
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    fp_clear(&f->fp);
    assert_int_equal(mcp_core_publish_sensor_batch(f->core, r, 3), ESP_OK);
    assert_int_equal(fp_count(&f->fp, B "batch"), 1);
    assert_int_equal(fp_count_prefix(&f->fp, B "sensors/"), 0);
    /* all or nothing */
    r[1].sensor_id = "nope";
    fp_clear(&f->fp);
    assert_int_equal(mcp_core_publish_sensor_batch(f->core, r, 3), ESP_ERR_INVALID_ARG);
    r[1].sensor_id = "humidity";
    r[2].value_type = MCP_VALUE_NUMBER;
    assert_int_equal(mcp_core_publish_sensor_batch(f->core, r, 3), ESP_ERR_INVALID_ARG);
    r[2].value_type = MCP_VALUE_BOOLEAN;
    r[0].value = NAN;
    assert_int_equal(mcp_core_publish_sensor_batch(f->core, r, 3), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_core_publish_sensor_batch(f->core, r, 0), ESP_ERR_INVALID_ARG);
    assert_int_equal(f->fp.n_msgs, 0);
}

/* --- the scheduler in mode integration: readings due together, one batch --- */

#define MANY 5

static esp_err_t long_string_cb(const char *id, mcp_value_t *v, int *quality, void *ud)
{
    fixture_t *f = ud;
    (void)quality;
    f->reads++;
    /* 400 bytes: "<id>:" and filler, so every reading is distinct */
    int n = snprintf(v->string, sizeof v->string, "%s:", id);
    memset(v->string + n, 'x', (size_t)(400 - n));
    v->string[400] = '\0';
    return ESP_OK;
}

static uint32_t sent_so_far(fixture_t *f)
{
    mcp_bridge_metrics_t m;
    assert_int_equal(mcp_core_get_metrics(f->core, &m), ESP_OK);
    return m.messages_sent;
}

/* count the readings of every batch recorded; checks each id appears once */
static size_t batch_readings(fixture_t *f, const char *const *ids, size_t n_ids, size_t *seen, size_t max_len)
{
    size_t total = 0;
    memset(seen, 0, n_ids * sizeof *seen);
    for (size_t i = 0; i < f->fp.n_msgs; i++) {
        const fp_msg_t *m = &f->fp.msgs[i];
        if (strcmp(m->topic, B "batch") != 0) {
            continue;
        }
        assert_true(m->len <= max_len);
        assert_int_equal(m->qos, 0);
        assert_false(m->retain);
        cJSON *b = cJSON_ParseWithLength(m->payload, m->len);
        assert_non_null(b);
        assert_true(cJSON_GetObjectItem(b, "ts")->valuedouble == 1764000000123.0);
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(b, "readings"))
        {
            const char *id = cJSON_GetObjectItem(r, "id")->valuestring;
            bool known = false;
            for (size_t k = 0; k < n_ids; k++) {
                if (strcmp(ids[k], id) == 0) {
                    seen[k]++;
                    known = true;
                }
            }
            assert_true(known);
            assert_non_null(cJSON_GetObjectItem(r, "value"));
            total++;
        }
        cJSON_Delete(b);
    }
    return total;
}

static void test_scheduler_batches_in_integration_mode(void **state)
{
    fixture_t *f = *state;
    f->fp.epoch = 1764000000123ull;
    f->read_value = 21.5;
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    /* one reading due alone goes on its own topic, not as a batch of one */
    fp_clear(&f->fp);
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "sensors/temperature"), 1);
    assert_int_equal(fp_count(&f->fp, B "batch"), 0);

    static const char *const ids[MANY] = {"temperature", "s1", "s2", "s3", "s4"};
    for (size_t i = 1; i < MANY; i++) {
        assert_int_equal(mcp_core_register_sensor(f->core, ids[i], "temperature", "°C", NULL, read_cb, f), ESP_OK);
    }
    /* far enough ahead that every sensor is due in the same pass */
    f->fp.now += 10000;
    for (int round = 0; round < 3; round++) {
        fp_clear(&f->fp);
        int reads = f->reads;
        int events = f->events[MCP_EVENT_SENSOR_READ];
        uint32_t sent = sent_so_far(f);
        mcp_core_tick(f->core, f->fp.now);
        assert_int_equal(f->reads - reads, MANY);
        assert_int_equal(fp_count(&f->fp, B "batch"), 1);
        assert_int_equal(fp_count_prefix(&f->fp, B "sensors/"), 0);
        size_t seen[MANY];
        assert_int_equal(batch_readings(f, ids, MANY, seen, SIZE_MAX), MANY);
        for (size_t k = 0; k < MANY; k++) {
            assert_int_equal(seen[k], 1);
        }
        cJSON *b = last_json(f, B "batch");
        const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "readings"), 0);
        assert_true(cJSON_GetObjectItem(r0, "value")->valuedouble == 21.5);
        assert_int_equal((int)cJSON_GetObjectItem(r0, "quality")->valuedouble, 90);
        cJSON_Delete(b);
        /* one message counted per batch, one event per reading */
        assert_int_equal(sent_so_far(f) - sent, f->fp.n_msgs);
        assert_int_equal(f->events[MCP_EVENT_SENSOR_READ] - events, MANY);
        f->fp.now += 1000;
    }
    /* back to mode mqtt: the same pass publishes MANY single readings and no batch */
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_MQTT), ESP_OK);
    fp_clear(&f->fp);
    uint32_t sent = sent_so_far(f);
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "batch"), 0);
    for (size_t k = 0; k < MANY; k++) {
        char topic[96];
        snprintf(topic, sizeof topic, B "sensors/%s", ids[k]);
        assert_int_equal(fp_count(&f->fp, topic), 1);
    }
    assert_int_equal(sent_so_far(f) - sent, f->fp.n_msgs);
}

static void test_scheduler_batch_split_when_full(void **state)
{
    fixture_t *f = *state;
    f->fp.epoch = 1764000000123ull;
    assert_int_equal(mcp_core_set_discovery_mode(f->core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    /* 12 readings of ~430 bytes each: more than one batch buffer holds */
    enum { N = 12 };
    static const char *const ids[N + 1] = {"t00", "t01", "t02", "t03", "t04", "t05", "t06",
                                           "t07", "t08", "t09", "t10", "t11", "temperature"};
    mcp_sensor_metadata_t md = {.value_type = "string"};
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(mcp_core_register_sensor(f->core, ids[i], "text", NULL, &md, long_string_cb, f), ESP_OK);
    }
    f->fp.now += 10000;
    fp_clear(&f->fp);
    int events = f->events[MCP_EVENT_SENSOR_READ];
    uint32_t sent = sent_so_far(f);
    mcp_core_tick(f->core, f->fp.now);
    /* the output buffer: 1536 + max_command_size (default 1024) */
    size_t seen[N + 1];
    size_t total = batch_readings(f, ids, N + 1, seen, 1536 + 1024 - 1);
    assert_int_equal(total, N + 1); /* nothing lost */
    for (size_t k = 0; k < N + 1; k++) {
        assert_int_equal(seen[k], 1); /* nothing twice */
    }
    size_t batches = fp_count(&f->fp, B "batch");
    assert_true(batches >= 3); /* 13 readings, at most 5 fit */
    assert_true(batches <= 4);
    assert_int_equal(fp_count_prefix(&f->fp, B "sensors/"), 0);
    assert_int_equal(sent_so_far(f) - sent, f->fp.n_msgs);
    assert_int_equal(f->events[MCP_EVENT_SENSOR_READ] - events, N + 1);
    /* the readings keep their order and their value */
    const fp_msg_t *first = NULL;
    for (size_t i = 0; i < f->fp.n_msgs && !first; i++) {
        if (strcmp(f->fp.msgs[i].topic, B "batch") == 0) {
            first = &f->fp.msgs[i];
        }
    }
    assert_non_null(first);
    cJSON *b = cJSON_ParseWithLength(first->payload, first->len);
    const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "readings"), 0);
    assert_string_equal(cJSON_GetObjectItem(r0, "id")->valuestring, "temperature");
    const cJSON *r1 = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "readings"), 1);
    assert_string_equal(cJSON_GetObjectItem(r1, "id")->valuestring, "t00");
    assert_int_equal(strlen(cJSON_GetObjectItem(r1, "value")->valuestring), 400);
    assert_memory_equal(cJSON_GetObjectItem(r1, "value")->valuestring, "t00:xxx", 7);
    cJSON_Delete(b);
}

static void test_metrics_interval_request_and_reset(void **state)
{
    fixture_t *f = *state;
    fp_clear(&f->fp);
    f->fp.now += 4999;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "metrics"), 0);
    f->fp.now += 1;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "metrics"), 1);
    cJSON *m = last_json(f, B "metrics");
    assert_int_equal((int)cJSON_GetObjectItem(m, "uptime_s")->valuedouble, 5);
    assert_int_equal((int)cJSON_GetObjectItem(m, "rssi")->valuedouble, -61);
    assert_int_equal((int)cJSON_GetObjectItem(m, "free_heap")->valuedouble, 200000);
    assert_true(cJSON_GetObjectItem(m, "messages_sent")->valuedouble > 5);
    assert_int_equal(cJSON_GetArraySize(m), 11); /* 12 members, ts only once synced */
    cJSON_Delete(m);
    /* on request: published and answered */
    fp_send(f->core, B "cmd", "{\"id\":\"g1\",\"cmd\":\"get_metrics\"}");
    assert_int_equal(fp_count(&f->fp, B "metrics"), 2);
    cJSON *r = last_json(f, RESP);
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "messages_received")->valuedouble >= 1);
    cJSON_Delete(r);
    /* reset */
    fp_send(f->core, B "cmd", "{\"id\":\"g2\",\"cmd\":\"reset_metrics\"}");
    expect_response(f, "g2", "ok");
    mcp_bridge_metrics_t mm;
    mcp_core_get_metrics(f->core, &mm);
    assert_true(mm.messages_sent <= 1);
    assert_int_equal(mm.messages_received, 0);
    assert_int_equal(mm.uptime_seconds, 5); /* not reset */
    assert_int_equal(f->events[MCP_EVENT_METRICS_RESET], 1);
}

static void test_actuator_callbacks_and_error_codes(void **state)
{
    fixture_t *f = *state;
    /* toggle calls the callback, stores and publishes the state */
    fp_send(f->core, B "actuators/led/set", "{\"id\":\"a1\",\"action\":\"toggle\"}");
    expect_response(f, "a1", "ok");
    assert_int_equal(f->ctl_calls, 1);
    assert_int_equal(f->events[MCP_EVENT_ACTUATOR_SET], 1);
    mcp_value_t v;
    mcp_core_get_actuator_value(f->core, "led", &v);
    assert_true(v.boolean);
    /* write on a requires_confirmation actuator is executed (confirmation is the caller's job) */
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"a2\",\"action\":\"write\",\"value\":40}");
    expect_response(f, "a2", "ok");
    /* callback error codes */
    static const struct {
        esp_err_t ret;
        const char *code;
    } map[] = {{ESP_ERR_MCP_BUSY, "busy"},
               {ESP_ERR_INVALID_STATE, "busy"},
               {ESP_ERR_MCP_TIMEOUT, "timeout"},
               {ESP_ERR_MCP_CONFIRMATION_REQUIRED, "confirmation_required"},
               {ESP_ERR_MCP_OUT_OF_RANGE, "out_of_range"},
               {ESP_ERR_MCP_INVALID_VALUE, "invalid_value"},
               {ESP_FAIL, "internal"},
               {ESP_ERR_NO_MEM, "internal"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        f->ctl_result = map[i].ret;
        char cmd[80], id[8];
        snprintf(id, sizeof id, "e%zu", i); /* one id per command: a repeated one is answered from memory */
        snprintf(cmd, sizeof cmd, "{\"id\":\"%s\",\"action\":\"write\",\"value\":10}", id);
        fp_send(f->core, B "actuators/valve/set", cmd);
        expect_response(f, id, map[i].code);
    }
    mcp_core_get_actuator_value(f->core, "valve", &v);
    assert_true(v.number == 40.0); /* failures change nothing */
    f->ctl_result = ESP_OK;
    /* slower than response_time_ms (200) but applied: answered with the value (test_hardening) */
    f->ctl_delay_ms = 250;
    fp_send(f->core, B "actuators/valve/set", "{\"id\":\"t1\",\"action\":\"write\",\"value\":55}");
    expect_response(f, "t1", "ok");
    f->ctl_delay_ms = 0;
    mcp_bridge_metrics_t m;
    mcp_core_get_metrics(f->core, &m);
    assert_int_equal(m.actuator_errors, 8);
    /* a failing command without id: no response, an error message instead */
    fp_clear(&f->fp);
    fp_send(f->core, B "actuators/valve/set", "{\"action\":\"write\",\"value\":150}");
    assert_int_equal(fp_count(&f->fp, RESP), 0);
    cJSON *e = last_json(f, B "error");
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "command");
    assert_non_null(strstr(cJSON_GetObjectItem(e, "message")->valuestring, "out_of_range"));
    cJSON_Delete(e);
}

static void test_device_commands(void **state)
{
    fixture_t *f = *state;
    fp_send(f->core, B "cmd", "{\"id\":\"i1\",\"cmd\":\"identify\"}");
    expect_response(f, "i1", "ok");
    assert_int_equal(f->fp.identifies, 1);
    assert_int_equal(f->events[MCP_EVENT_IDENTIFY], 1);
    /* restart: response first, offline + restart after the delay */
    fp_clear(&f->fp);
    fp_send(f->core, B "cmd", "{\"id\":\"r1\",\"cmd\":\"restart\"}");
    expect_response(f, "r1", "ok");
    assert_int_equal(f->fp.restarts, 0);
    f->fp.now += 300;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(f->fp.restarts, 1);
    assert_string_equal(fp_last(&f->fp, B "status")->payload, "offline");
    /* ota: started, then busy */
#define OTA_CMD(id)                                                                                     \
    "{\"id\":\"" id "\",\"cmd\":\"ota\",\"args\":{\"url\":\"https://x.example/fw.bin\",\"sha256\":"           \
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\",\"version\":\"2.0.0\"}}"
    fp_send(f->core, B "cmd", OTA_CMD("o1"));
    expect_response(f, "o1", "ok");
    assert_string_equal(f->fp.ota_version, "2.0.0");
    int otas = f->fp.otas;
    fp_send(f->core, B "cmd", OTA_CMD("o1")); /* a repeat (test_dedup.c): the first answer, not run */
    expect_response(f, "o1", "ok");
    assert_int_equal(f->fp.otas, otas);
    f->fp.ota_result = ESP_ERR_INVALID_STATE;
    fp_send(f->core, B "cmd", OTA_CMD("o2"));
    expect_response(f, "o2", "busy");
    f->fp.ota_result = ESP_FAIL;
    fp_send(f->core, B "cmd", OTA_CMD("o3"));
    expect_response(f, "o3", "internal");
#undef OTA_CMD
    /* update_config is all or nothing */
    fp_send(f->core, B "cmd", "{\"id\":\"u\",\"cmd\":\"update_config\",\"args\":{\"publish_interval_ms\":2000,\"qos\":{\"error\":5}}}");
    expect_response(f, "u", "out_of_range");
    fp_send(f->core, B "cmd", "{\"id\":\"u\",\"cmd\":\"update_config\",\"args\":{\"qos\":{\"sensor\":1,\"bogus\":1}}}");
    expect_response(f, "u", "invalid_value");
    fp_send(f->core, B "cmd", "{\"id\":\"u\",\"cmd\":\"update_config\",\"args\":{\"discovery\":\"integration\"}}");
    expect_response(f, "u", "invalid_value"); /* the mode has its own command */
    assert_int_equal(mcp_core_get_discovery_mode(f->core), MCP_DISCOVERY_MQTT);
    fp_send(f->core, B "cmd", "{\"id\":\"u\",\"cmd\":\"update_config\",\"args\":{}}");
    cJSON *r = last_json(f, RESP);
    const cJSON *res = cJSON_GetObjectItem(r, "result");
    assert_int_equal((int)cJSON_GetObjectItem(res, "publish_interval_ms")->valuedouble, 1000);
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetObjectItem(res, "qos"), "sensor")->valuedouble, 0);
    cJSON_Delete(r);
    /* qos change takes effect on the next publish */
    fp_send(f->core, B "cmd", "{\"id\":\"u\",\"cmd\":\"update_config\",\"args\":{\"qos\":{\"sensor\":1}}}");
    mcp_value_t h = mcp_value_number(50);
    mcp_core_publish_sensor_value(f->core, "humidity", &h, -1);
    assert_int_equal(fp_last(&f->fp, B "sensors/humidity")->qos, 1);
    assert_int_equal(f->events[MCP_EVENT_CONFIG_UPDATED], 2); /* rejected updates change nothing */
}

static void test_hostile_input(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *topic;
        const char *payload;
        const char *id;
        const char *code;
    } cases[] = {
        {B "cmd", "{\"id\":\"h1\",\"cmd\":\"ping\"", NULL, "malformed"},
        {B "cmd", "[1,2]", NULL, "malformed"},
        {B "cmd", "{\"id\":\"\",\"cmd\":\"ping\"}", NULL, "malformed"},
        {B "cmd", "{\"id\":{\"x\":1},\"cmd\":\"ping\"}", NULL, "malformed"},
        {B "cmd", "{\"id\":\"h2\",\"cmd\":\"set_streaming\",\"args\":{\"sensor\":\"#\",\"enable\":true}}", "h2",
         "unknown_sensor"},
        {B "cmd", "{\"id\":\"h3\",\"cmd\":\"set_streaming\",\"args\":{\"sensor\":7,\"enable\":true}}", "h3",
         "invalid_value"},
        {B "actuators/+/set", "{\"id\":\"h4\",\"action\":\"read\"}", "h4", "unknown_actuator"},
        {B "actuators/#/set", "{\"id\":\"h5\",\"action\":\"read\"}", "h5", "unknown_actuator"},
        {B "actuators/led/set", "{\"id\":\"h6\",\"action\":\"write\",\"value\":[true]}", "h6", "invalid_value"},
        {B "actuators/fan_mode/set", "{\"id\":\"h7\",\"action\":\"write\",\"value\":\"AUTO\"}", "h7", "invalid_value"},
        {B "actuators/valve/set", "{\"id\":\"h8\",\"action\":\"write\",\"value\":1e308}", "h8", "out_of_range"},
        {B "actuators/valve/set", "{\"id\":\"h10\",\"action\":\"write\",\"value\":1e999}", "h10", "invalid_value"},
        /* the command reader is strict JSON: trailing content, raw control characters, lone
         * surrogates, non-JSON numbers and literals are malformed (no id: it was never read) */
        {B "cmd", "{\"id\":\"h11\",\"cmd\":\"ping\"} x", NULL, "malformed"},
        {B "cmd", "{\"id\":\"h12\",\"cmd\":\"pi\nng\"}", NULL, "malformed"},
        {B "cmd", "{\"id\":\"h13\\udc00\",\"cmd\":\"ping\"}", NULL, "malformed"},
        {B "actuators/valve/set", "{\"id\":\"h14\",\"action\":\"write\",\"value\":+5}", NULL, "malformed"},
        {B "actuators/valve/set", "{\"id\":\"h15\",\"action\":\"write\",\"value\":05}", NULL, "malformed"},
        {B "actuators/valve/set", "{\"id\":\"h16\",\"action\":\"write\",\"value\":NaN}", NULL, "malformed"},
        {B "cmd", "{\"id\":\"h17\",\"cmd\":\"ping\",}", NULL, "malformed"},
        {B "cmd", "{\"id\":\"h18\",\"cmd\":\"ping\",\"args\":{\"a\":[[[[[[[[1]]]]]]]]}}", NULL, "malformed"},
        /* more values than the reader's fixed node array: refused by size, id found by the prefix scan */
        {B "cmd",
         "{\"id\":\"h19\",\"cmd\":\"ping\",\"args\":{\"a\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,"
         "21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48]}}",
         "h19", "payload_too_large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fp_clear(&f->fp);
        fp_send(f->core, cases[i].topic, cases[i].payload);
        assert_int_equal(fp_count(&f->fp, RESP), 1);
        expect_response(f, cases[i].id, cases[i].code);
    }
    /* escapes are decoded: an id with \u escapes and a surrogate pair comes back as UTF-8 */
    fp_clear(&f->fp);
    fp_send(f->core, B "cmd", "\xEF\xBB\xBF { \"id\" : \"r\\u00e9-\\ud83d\\ude00\" , \"cmd\" : \"p\\u0069ng\" } ");
    cJSON *pong = last_json(f, RESP);
    assert_string_equal(cJSON_GetObjectItem(pong, "id")->valuestring, "r\xC3\xA9-\xF0\x9F\x98\x80");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(pong, "ok")));
    cJSON_Delete(pong);
    /* a duplicate member is malformed (two readers could pick different ones) */
    fp_clear(&f->fp);
    fp_send(f->core, B "cmd", "{\"id\":\"d1\",\"cmd\":\"ping\",\"cmd\":\"restart\"}");
    expect_response(f, NULL, "malformed");
    assert_int_equal(f->fp.restarts, 0);
    /* invalid UTF-8 in a string value: not JSON text */
    const char bad_utf8[] = "{\"id\":\"h9\",\"action\":\"write\",\"value\":\"a\xff\"}";
    fp_send(f->core, B "actuators/fan_mode/set", bad_utf8);
    expect_response(f, NULL, "malformed");
    /* messages on foreign topics are ignored */
    fp_clear(&f->fp);
    fp_send(f->core, "mcp_bridge/other-dev/cmd", "{\"id\":\"x\",\"cmd\":\"ping\"}");
    fp_send(f->core, B "sensors/temperature", "{\"value\":1}");
    assert_int_equal(f->fp.n_msgs, 0);
    /* an overlong topic is dropped without reading past it */
    char topic[400];
    memset(topic, 'a', sizeof topic);
    mcp_core_on_message(f->core, topic, sizeof topic, "{}", 2, 2, 0);
    assert_int_equal(f->fp.n_msgs, 0);
    /* the device still works */
    fp_send(f->core, B "cmd", "{\"id\":\"alive\",\"cmd\":\"ping\"}");
    expect_response(f, "alive", "ok");
}

static void test_fragmented_messages(void **state)
{
    fixture_t *f = *state;
    const char *msg = "{\"id\":\"frag\",\"action\":\"write\",\"value\":\"manual\"}";
    size_t len = strlen(msg);
    const char *topic = B "actuators/fan_mode/set";
    /* in order, the topic only with the first fragment */
    fp_clear(&f->fp);
    mcp_core_on_message(f->core, topic, strlen(topic), msg, 10, len, 0);
    mcp_core_on_message(f->core, NULL, 0, msg + 10, 20, len, 10);
    assert_int_equal(fp_count(&f->fp, RESP), 0);
    mcp_core_on_message(f->core, NULL, 0, msg + 30, len - 30, len, 30);
    expect_response(f, "frag", "ok");
    /* a gap: answered malformed (id unknown), never executed */
    fp_clear(&f->fp);
    mcp_core_on_message(f->core, topic, strlen(topic), msg, 10, len, 0);
    mcp_core_on_message(f->core, NULL, 0, msg + 20, len - 20, len, 20);
    expect_response(f, NULL, "malformed");
    /* a new message before the last one completed: the first is malformed, the second runs */
    fp_clear(&f->fp);
    mcp_core_on_message(f->core, topic, strlen(topic), msg, 10, len, 0);
    fp_send(f->core, B "cmd", "{\"id\":\"next\",\"cmd\":\"ping\"}");
    assert_int_equal(fp_count(&f->fp, RESP), 2);
    expect_response(f, "next", "ok");
    /* a fragment claiming more than its total */
    fp_clear(&f->fp);
    mcp_core_on_message(f->core, topic, strlen(topic), msg, len, 10, 0);
    assert_int_equal(fp_count(&f->fp, RESP), 1);
    /* oversized and fragmented: buffered only up to the limit, answered with the id */
    size_t big = 5000;
    char *p = malloc(big);
    memset(p, 'x', big);
    memcpy(p, "{\"id\" : \"big\",\"pad\":\"", 21);
    fp_clear(&f->fp);
    for (size_t off = 0; off < big; off += 1000) {
        mcp_core_on_message(f->core, off ? NULL : topic, off ? 0 : strlen(topic), p + off, 1000, big, off);
    }
    expect_response(f, "big", "payload_too_large");
    assert_int_equal(fp_count(&f->fp, RESP), 1);
    free(p);
    /* fragments of an unknown message are ignored */
    fp_clear(&f->fp);
    mcp_core_on_message(f->core, NULL, 0, "abc", 3, 10, 5);
    assert_int_equal(f->fp.n_msgs, 0);
}

static void test_stop_and_restart(void **state)
{
    fixture_t *f = *state;
    fp_clear(&f->fp);
    assert_int_equal(mcp_core_stop(f->core), ESP_OK);
    assert_string_equal(fp_last(&f->fp, B "status")->payload, "offline");
    assert_true(fp_last(&f->fp, B "status")->retain);
    assert_int_equal(f->fp.disconnects, 1);
    assert_int_equal(mcp_core_stop(f->core), ESP_ERR_INVALID_STATE);
    /* not connected: publishing reports it, nothing is sent */
    fp_clear(&f->fp);
    mcp_value_t h = mcp_value_number(1);
    assert_int_equal(mcp_core_publish_sensor_value(f->core, "humidity", &h, -1), ESP_ERR_MCP_NOT_CONNECTED);
    assert_int_equal(f->fp.n_msgs, 0);
    assert_int_equal(mcp_core_start(f->core), ESP_OK);
    assert_int_equal(mcp_core_start(f->core), ESP_ERR_INVALID_STATE);
    mcp_core_on_connected(f->core);
    mcp_bridge_metrics_t m;
    mcp_core_get_metrics(f->core, &m);
    assert_int_equal(m.mqtt_reconnections, 1);
    mcp_core_on_disconnected(f->core);
    mcp_core_on_connect_failed(f->core);
    mcp_core_get_metrics(f->core, &m);
    assert_int_equal(m.connection_failures, 1);
    mcp_bridge_status_t s;
    mcp_core_get_status(f->core, &s);
    assert_int_equal(s.state, MCP_BRIDGE_STATE_CONNECTING);
}

static void test_low_heap_alert(void **state)
{
    fixture_t *f = *state;
    mcp_bridge_config_t upd = {.low_heap_threshold = 100000};
    assert_int_equal(mcp_core_update_config(f->core, &upd), ESP_OK);
    fp_clear(&f->fp);
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "error"), 0); /* 200000 free */
    f->fp.free_heap = 50000;
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    cJSON *e = last_json(f, B "error");
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "low_heap");
    assert_int_equal((int)cJSON_GetObjectItem(e, "code")->valuedouble, ESP_ERR_MCP_LOW_HEAP);
    assert_int_equal((int)cJSON_GetObjectItem(e, "severity")->valuedouble, MCP_SEVERITY_ERROR);
    cJSON_Delete(e);
    /* once per episode */
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "error"), 1);
    /* recovered, then low again: a new alert */
    f->fp.free_heap = 150000;
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    f->fp.free_heap = 40000;
    f->fp.now += 1000;
    mcp_core_tick(f->core, f->fp.now);
    assert_int_equal(fp_count(&f->fp, B "error"), 2);
}

static void test_singleton_api(void **state)
{
    (void)state;
    fake_port_t fp;
    fp_init(&fp);
    mcp_bridge_status_t s;
    assert_int_equal(mcp_bridge_get_status(&s), ESP_OK);
    assert_int_equal(s.state, MCP_BRIDGE_STATE_UNINITIALIZED);
    assert_int_equal(mcp_bridge_start(), ESP_ERR_INVALID_STATE);
    mcp_bridge_config_t cfg = base_config();
    assert_int_equal(mcp_bridge_init_with_port(&cfg, &fp.port), ESP_OK);
    assert_int_equal(mcp_bridge_init_with_port(&cfg, &fp.port), ESP_ERR_INVALID_STATE);
    mcp_sensor_metadata_t md = {.description = "d"};
    assert_int_equal(mcp_bridge_register_sensor("temp", "temperature", "°C", &md, NULL, NULL), ESP_OK);
    assert_int_equal(mcp_bridge_register_sensor("Temp", "temperature", "°C", &md, NULL, NULL), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_bridge_start(), ESP_OK);
    mcp_core_on_connected(mcp_bridge_core());
    assert_int_equal(mcp_bridge_publish_sensor_data("temp", 21.7f), ESP_OK);
    assert_non_null(strstr(fp_last(&fp, B "sensors/temp")->payload, "\"value\":21.7}")); /* not 21.700000762939453 */
    assert_int_equal(mcp_bridge_publish_sensor_data("temp", NAN), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_bridge_publish_error("custom", "something happened", MCP_SEVERITY_ERROR), ESP_OK);
    assert_int_equal(mcp_bridge_publish_error("custom", "x", 9), ESP_ERR_INVALID_ARG);
    char id[MCP_DEVICE_ID_BUF_SIZE];
    assert_int_equal(mcp_bridge_get_device_id(id, sizeof id), ESP_OK);
    assert_string_equal(id, "dev-1");
    assert_int_equal(mcp_bridge_get_device_id(id, 3), ESP_ERR_INVALID_SIZE);
    mcp_bridge_metrics_t m;
    assert_int_equal(mcp_bridge_get_metrics(&m), ESP_OK);
    assert_true(m.messages_sent > 0);
    assert_int_equal(mcp_bridge_reset_metrics(), ESP_OK);
    assert_int_equal(mcp_bridge_set_sensor_streaming("temp", true, 5), ESP_ERR_INVALID_ARG);
    assert_int_equal(mcp_bridge_set_sensor_streaming("temp", true, 500), ESP_OK);
    mcp_bridge_config_t upd = {.sensor_publish_interval_ms = 2000};
    assert_int_equal(mcp_bridge_update_config(&upd), ESP_OK);
    assert_int_equal(mcp_bridge_set_discovery_mode(MCP_DISCOVERY_INTEGRATION), ESP_OK);
    assert_int_equal(mcp_bridge_stop(), ESP_OK);
    assert_int_equal(mcp_bridge_deinit(), ESP_OK);
    assert_int_equal(mcp_bridge_deinit(), ESP_ERR_INVALID_STATE);
    fp_free(&fp);
    /* mcp_bridge_init with the platform's default port (POSIX here): no broker needed until start */
    cfg.device_id = NULL;
    assert_int_equal(mcp_bridge_init(&cfg), ESP_OK);
    assert_int_equal(mcp_bridge_get_device_id(id, sizeof id), ESP_OK);
    assert_int_equal(strncmp(id, "esp32-", 6), 0);
    assert_int_equal(mcp_bridge_get_status(&s), ESP_OK);
    assert_int_equal(s.state, MCP_BRIDGE_STATE_INITIALIZED);
    assert_int_equal(mcp_bridge_deinit(), ESP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test_setup_teardown(test_registration_rules, setup, teardown),
        cmocka_unit_test(test_large_registry_fits),
        cmocka_unit_test_setup_teardown(test_connect_publishes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_payload_ha_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_mode_switch_and_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ha_birth_republishes_readings_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_text_is_printf_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensor_schedule_and_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_read_publishes_error_not_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_batches_in_integration_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_batch_split_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_interval_request_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actuator_callbacks_and_error_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fragmented_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_low_heap_alert, setup, teardown),
        cmocka_unit_test(test_singleton_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
