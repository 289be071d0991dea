/*
 * bench_core — drives the portable core (firmware/components/esp_mcp_bridge/core)
 * through a no-op port with a fake clock, for the firmware measurements in
 * bench/firmware/measure.py:
 *
 *   bench_core reading N     N sensor readings published by the application API
 *   bench_core tick N        N scheduler-driven reads (read callback + publish)
 *   bench_core tick5 N       N scheduler passes with 5 sensors due, mode mqtt (5 messages each)
 *   bench_core tick5_batch N the same in mode integration (one batch message each)
 *   bench_core ping N        N `cmd ping` commands with an id (parse, dispatch, response)
 *   bench_core write N       N actuator writes with an id (parse, validate, callback, state, response)
 *   bench_core heap          heap bytes per registry slot and per registration (mallinfo2)
 *   bench_core wire          MQTT bytes of 10 readings sent singly vs as one batch
 *
 * The per-operation instruction counts come from running the first six
 * under callgrind with N and with 0 and dividing the difference by N.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_mcp_bridge.h"
#include "mcp_core.h"
#include "mcp_port.h"

typedef struct {
    uint64_t now;
    unsigned long messages;
    unsigned long topic_bytes;
    unsigned long payload_bytes;
    unsigned long wire_bytes;
} fake_t;

/* MQTT 3.1.1 PUBLISH: 1 byte packet type/flags + remaining-length varint (1..4 bytes),
 * then 2-byte topic length + topic + 2-byte packet id (QoS > 0 only) + payload. */
static unsigned long mqtt_publish_size(size_t topic_len, size_t payload_len, int qos)
{
    unsigned long rl = 2ul + topic_len + (qos > 0 ? 2ul : 0ul) + payload_len;
    unsigned long varint = rl < 128ul ? 1ul : rl < 16384ul ? 2ul : rl < 2097152ul ? 3ul : 4ul;
    return 1ul + varint + rl;
}

static esp_err_t f_connect(void *ctx, const mcp_port_mqtt_params_t *p)
{
    (void)ctx;
    (void)p;
    return ESP_OK;
}
static esp_err_t f_disconnect(void *ctx)
{
    (void)ctx;
    return ESP_OK;
}
static esp_err_t f_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    fake_t *f = ctx;
    (void)payload;
    (void)retain;
    size_t tl = strlen(topic);
    f->messages++;
    f->topic_bytes += tl;
    f->payload_bytes += len;
    f->wire_bytes += mqtt_publish_size(tl, len, qos);
    return ESP_OK;
}
static esp_err_t f_subscribe(void *ctx, const char *filter, int qos)
{
    (void)ctx;
    (void)filter;
    (void)qos;
    return ESP_OK;
}
static uint64_t f_now(void *ctx)
{
    return ((fake_t *)ctx)->now;
}
static uint64_t f_epoch(void *ctx)
{
    return 1764000000000ull + ((fake_t *)ctx)->now;
}
static void f_log(void *ctx, mcp_log_level_t level, const char *fmt, va_list ap)
{
    (void)ctx;
    (void)level;
    (void)fmt;
    (void)ap;
}

/* The singleton API (core/src/esp_mcp_bridge.c) links against a platform port; the
 * bench drives a context directly and never calls mcp_bridge_init(). */
esp_err_t mcp_port_default_create(const mcp_bridge_config_t *config, mcp_port_t *out)
{
    (void)config;
    (void)out;
    return ESP_ERR_NOT_SUPPORTED;
}

void mcp_port_default_destroy(mcp_port_t *port)
{
    (void)port;
}

static esp_err_t read_cb(const char *id, mcp_value_t *value, int *quality, void *ud)
{
    (void)id;
    (void)ud;
    value->number = 23.5;
    *quality = 95;
    return ESP_OK;
}

static esp_err_t control_cb(const char *id, mcp_action_t action, mcp_value_t *value, void *ud)
{
    (void)id;
    (void)action;
    (void)value;
    (void)ud;
    return ESP_OK;
}

static mcp_port_t make_port(fake_t *f)
{
    mcp_port_t p;
    memset(&p, 0, sizeof(p));
    p.ctx = f;
    p.mqtt_connect = f_connect;
    p.mqtt_disconnect = f_disconnect;
    p.mqtt_publish = f_publish;
    p.mqtt_subscribe = f_subscribe;
    p.now_ms = f_now;
    p.epoch_ms = f_epoch;
    p.log = f_log;
    return p;
}

static void check(esp_err_t e, const char *what)
{
    if (e != ESP_OK) {
        fprintf(stderr, "bench_core: %s failed: %d\n", what, (int)e);
        exit(1);
    }
}

static const char *const SENSOR_IDS[10] = {"temperature", "humidity",   "pressure", "soil_moisture", "co2",
                                           "illuminance", "voltage", "current",  "power",         "battery"};

static mcp_core_t *setup(fake_t *f, uint16_t max_sensors, uint16_t max_actuators, size_t n_sensors)
{
    mcp_bridge_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.mqtt_broker_uri = "mqtt://127.0.0.1:1883";
    cfg.device_id = "esp32-a1b2c3";
    cfg.max_sensors = max_sensors;
    cfg.max_actuators = max_actuators;
    cfg.metrics_interval_ms = UINT32_MAX;
    mcp_port_t port = make_port(f);
    mcp_core_t *core = NULL;
    check(mcp_core_create(&cfg, &port, &core), "create");
    mcp_sensor_metadata_t meta;
    memset(&meta, 0, sizeof(meta));
    meta.interval_ms = 1000;
    for (size_t i = 0; i < n_sensors; i++) {
        check(mcp_core_register_sensor(core, SENSOR_IDS[i], SENSOR_IDS[i], "°C", &meta, read_cb, NULL),
              "register sensor");
    }
    return core;
}

static void connect(mcp_core_t *core, fake_t *f)
{
    check(mcp_core_start(core), "start");
    mcp_core_on_connected(core);
    f->now += 1;
    mcp_core_tick(core, f->now);
}

static int run_ops(const char *kind, long n)
{
    fake_t f = {.now = 1000};
    bool five = strncmp(kind, "tick5", 5) == 0;
    mcp_core_t *core = setup(&f, 16, 16, five ? 5 : 1);
    mcp_actuator_metadata_t am;
    memset(&am, 0, sizeof(am));
    am.value_type = "boolean";
    check(mcp_core_register_actuator(core, "led", "led", &am, control_cb, NULL), "register actuator");
    connect(core, &f);
    if (strcmp(kind, "tick5_batch") == 0) {
        check(mcp_core_set_discovery_mode(core, MCP_DISCOVERY_INTEGRATION), "integration mode");
    }
    /* Let the re-publish after connect (HA birth handling) and first reads happen before measuring. */
    f.now += 5000;
    mcp_core_tick(core, f.now);
    unsigned long before = f.messages;

    static const char ping[] = "{\"id\":\"r-9a01\",\"cmd\":\"ping\",\"args\":{}}";
    static const char write_on[] = "{\"id\":\"r-81f2\",\"action\":\"write\",\"value\":true}";
    static const char write_off[] = "{\"id\":\"r-81f3\",\"action\":\"write\",\"value\":false}";
    static const char cmd_topic[] = "mcp_bridge/esp32-a1b2c3/cmd";
    static const char set_topic[] = "mcp_bridge/esp32-a1b2c3/actuators/led/set";
    mcp_value_t v = mcp_value_number(23.5);
    for (long i = 0; i < n; i++) {
        if (strcmp(kind, "reading") == 0) {
            v.number = 20.0 + (double)(i % 100) * 0.1;
            mcp_core_publish_sensor_value(core, "temperature", &v, 95);
        } else if (strcmp(kind, "tick") == 0 || five) {
            f.now += 1000;
            mcp_core_tick(core, f.now);
        } else if (strcmp(kind, "ping") == 0) {
            mcp_core_on_message(core, cmd_topic, sizeof(cmd_topic) - 1, ping, sizeof(ping) - 1, 0, 0);
        } else if (strcmp(kind, "write") == 0) {
            const char *w = (i & 1) ? write_off : write_on;
            mcp_core_on_message(core, set_topic, sizeof(set_topic) - 1, w, strlen(w), 0, 0);
        } else {
            fprintf(stderr, "bench_core: unknown kind %s\n", kind);
            return 2;
        }
    }
    unsigned long published = f.messages - before;
    mcp_core_stop(core);
    mcp_core_destroy(core);
    printf("{\"kind\": \"%s\", \"n\": %ld, \"published\": %lu}\n", kind, n, published);
    return 0;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

static long heap_of_create(uint16_t max_sensors, uint16_t max_actuators)
{
    fake_t f = {.now = 1000};
    size_t before = heap_in_use();
    mcp_core_t *core = setup(&f, max_sensors, max_actuators, 0);
    long used = (long)(heap_in_use() - before);
    mcp_core_destroy(core);
    return used;
}

static int run_heap(void)
{
    long base = heap_of_create(1, 1);
    long s33 = heap_of_create(33, 1);
    long a33 = heap_of_create(1, 33);
    /* Registration itself (after create): 10 sensors and 10 actuators into preallocated slots. */
    fake_t f = {.now = 1000};
    mcp_core_t *core = setup(&f, 16, 16, 0);
    size_t before = heap_in_use();
    mcp_sensor_metadata_t sm;
    memset(&sm, 0, sizeof(sm));
    for (size_t i = 0; i < 10; i++) {
        check(mcp_core_register_sensor(core, SENSOR_IDS[i], SENSOR_IDS[i], "°C", &sm, read_cb, NULL), "reg");
    }
    long reg_s = (long)(heap_in_use() - before);
    before = heap_in_use();
    mcp_actuator_metadata_t am;
    memset(&am, 0, sizeof(am));
    am.value_type = "number";
    am.min_value = 0;
    am.max_value = 100;
    for (size_t i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "valve_%zu", i);
        check(mcp_core_register_actuator(core, id, "valve", &am, control_cb, NULL), "reg");
    }
    long reg_a = (long)(heap_in_use() - before);
    mcp_core_destroy(core);
    double per_s = (double)(s33 - base) / 32.0;
    double per_a = (double)(a33 - base) / 32.0;
    printf("{\"create_1_1\": %ld, \"create_16_16\": %ld, \"per_sensor_slot\": %.1f, \"per_actuator_slot\": %.1f, "
           "\"register_10_sensors\": %ld, \"register_10_actuators\": %ld, \"per_sensor_total\": %.1f, "
           "\"per_actuator_total\": %.1f}\n",
           base, heap_of_create(16, 16), per_s, per_a, reg_s, reg_a, per_s + (double)reg_s / 10.0,
           per_a + (double)reg_a / 10.0);
    return 0;
}

static int run_wire(void)
{
    fake_t f = {.now = 1000};
    mcp_core_t *core = setup(&f, 16, 16, 10);
    connect(core, &f);
    check(mcp_core_set_discovery_mode(core, MCP_DISCOVERY_INTEGRATION), "integration mode");
    f.now += 5000;
    mcp_core_tick(core, f.now);

    fake_t single0 = f;
    for (size_t i = 0; i < 10; i++) {
        mcp_value_t v = mcp_value_number(20.0 + (double)i * 1.25);
        check(mcp_core_publish_sensor_value(core, SENSOR_IDS[i], &v, 95), "publish");
    }
    fake_t single1 = f;

    mcp_sensor_reading_t r[10];
    memset(r, 0, sizeof(r));
    for (size_t i = 0; i < 10; i++) {
        r[i].sensor_id = SENSOR_IDS[i];
        r[i].value = 20.0 + (double)i * 1.25;
        r[i].quality = 95;
        r[i].value_type = MCP_VALUE_NUMBER;
    }
    check(mcp_core_publish_sensor_batch(core, r, 10), "batch");
    fake_t batch1 = f;
    mcp_core_stop(core);
    mcp_core_destroy(core);
    printf("{\"single\": {\"messages\": %lu, \"topic_bytes\": %lu, \"payload_bytes\": %lu, \"wire_bytes\": %lu}, "
           "\"batch\": {\"messages\": %lu, \"topic_bytes\": %lu, \"payload_bytes\": %lu, \"wire_bytes\": %lu}}\n",
           single1.messages - single0.messages, single1.topic_bytes - single0.topic_bytes,
           single1.payload_bytes - single0.payload_bytes, single1.wire_bytes - single0.wire_bytes,
           batch1.messages - single1.messages, batch1.topic_bytes - single1.topic_bytes,
           batch1.payload_bytes - single1.payload_bytes, batch1.wire_bytes - single1.wire_bytes);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "heap") == 0) {
        return run_heap();
    }
    if (argc >= 2 && strcmp(argv[1], "wire") == 0) {
        return run_wire();
    }
    if (argc == 3) {
        return run_ops(argv[1], strtol(argv[2], NULL, 10));
    }
    fprintf(stderr, "usage: bench_core reading|tick|tick5|tick5_batch|ping|write N | heap | wire\n");
    return 2;
}
