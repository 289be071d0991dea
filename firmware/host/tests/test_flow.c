/*
 * The publish policy on a modelled link: what esp-mqtt does with
 * esp_mqtt_client_publish() (the ESP-IDF port's call). QoS 0 goes straight to
 * the socket; QoS 1/2 also stays in the outbox until its PUBACK, and a publish
 * that would take the outbox over its limit (16 KiB in the port) is refused.
 * The link sends LINK_BYTES_PER_MS in order; a QoS 1 message is acknowledged
 * once its last byte went out. Scenario: the Kconfig worst case (16 sensors,
 * 16 actuators, long names and descriptions), every sensor streaming at
 * 100 ms, Home Assistant's birth message twice: nothing may be refused.
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
#define DISC "homeassistant/device/dev-1/config"
#define OUTBOX_LIMIT 16384u
#define LINK_BYTES_PER_MS 20u /* 20 kB/s: a weak Wi-Fi link with TLS */
#define N_SENSORS 16
#define N_ACTUATORS 16
#define TICK_MS 10u

typedef struct {
    size_t wire_len;   /* bytes on the link (topic, payload, header) */
    size_t outbox_len; /* payload bytes held in the outbox (QoS > 0), else 0 */
} wire_msg_t;

typedef struct {
    fake_port_t fp; /* first: the port's ctx */
    wire_msg_t wire[8192];
    size_t head, tail;   /* wire[head..tail) not yet sent */
    size_t head_sent;    /* bytes of wire[head] already sent */
    size_t outbox_bytes; /* QoS > 0 payload bytes not yet acknowledged */
    size_t refused;
    unsigned reads[N_SENSORS];
    int flushes, aborts;
    bool ack_lost; /* the broker never acknowledges: flush times out */
} net_t;

static esp_err_t net_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    net_t *n = ctx;
    if (qos > 0 && n->outbox_bytes + len > OUTBOX_LIMIT) {
        n->refused++; /* esp_mqtt_client_publish() returns -2 */
        print_message("refused %s (%zu bytes, outbox %zu)\n", topic, len, n->outbox_bytes);
        return ESP_FAIL;
    }
    assert_true(n->tail < sizeof n->wire / sizeof n->wire[0]);
    n->wire[n->tail++] = (wire_msg_t){.wire_len = len + strlen(topic) + 5, .outbox_len = qos > 0 ? len : 0};
    n->outbox_bytes += qos > 0 ? len : 0;
    return fp_record(&n->fp, topic, payload, len, qos, retain);
}

static size_t net_room(void *ctx)
{
    const net_t *n = ctx;
    return OUTBOX_LIMIT - n->outbox_bytes;
}

static void net_run(net_t *n, uint32_t ms);

/* Waits as esp-mqtt's outbox would empty: the link runs until it did or the time is up. */
static esp_err_t net_flush(void *ctx, uint32_t timeout_ms)
{
    net_t *n = ctx;
    n->flushes++;
    for (uint32_t t = 0; t < timeout_ms && n->outbox_bytes > 0; t += 10) {
        if (!n->ack_lost) {
            net_run(n, 10);
        }
        n->fp.now += 10;
    }
    return n->outbox_bytes == 0 ? ESP_OK : ESP_ERR_TIMEOUT;
}

static esp_err_t net_abort(void *ctx)
{
    ((net_t *)ctx)->aborts++;
    return ESP_OK;
}

/* The link sends for ms milliseconds. */
static void net_run(net_t *n, uint32_t ms)
{
    size_t budget = (size_t)ms * LINK_BYTES_PER_MS;
    while (budget > 0 && n->head < n->tail) {
        wire_msg_t *m = &n->wire[n->head];
        size_t take = m->wire_len - n->head_sent < budget ? m->wire_len - n->head_sent : budget;
        n->head_sent += take;
        budget -= take;
        if (n->head_sent == m->wire_len) {
            n->outbox_bytes -= m->outbox_len;
            n->head++;
            n->head_sent = 0;
        }
    }
}

static esp_err_t read_cb(const char *id, mcp_value_t *v, int *quality, void *ud)
{
    net_t *n = ud;
    unsigned i = (unsigned)atoi(id + 1);
    n->reads[i]++;
    v->number = 20.0 + i;
    *quality = 90;
    return ESP_OK;
}

static esp_err_t ctl_cb(const char *id, mcp_action_t action, mcp_value_t *v, void *ud)
{
    (void)id;
    (void)action;
    (void)v;
    (void)ud;
    return ESP_OK;
}

static const char LONG_DESC[] =
    "A long description, as long as the registration allows, so that the capabilities and the "
    "discovery message are as large as the worst case the Kconfig maxima permit for this device.";

static mcp_core_t *worst_case_device_holding(net_t *n, uint32_t holdoff_ms)
{
    fp_init(&n->fp);
    n->fp.port.mqtt_publish = net_publish;
    n->fp.port.mqtt_outbox_room = net_room;
    n->fp.port.mqtt_flush = net_flush;
    n->fp.port.mqtt_abort = net_abort;
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtts://broker:8883", .device_id = "dev-1",
                             .device_name = "Greenhouse controller north wing", .max_sensors = N_SENSORS,
                             .max_actuators = N_ACTUATORS, .metrics_interval_ms = 60000,
                             .discovery_holdoff_ms = holdoff_ms};
    mcp_core_t *core = NULL;
    assert_int_equal(mcp_core_create(&c, &n->fp.port, &core), ESP_OK);
    char id[16], name[48];
    for (int i = 0; i < N_SENSORS; i++) {
        snprintf(id, sizeof id, "s%d", i);
        snprintf(name, sizeof name, "Soil moisture sensor north bed number %02d", i);
        mcp_sensor_metadata_t m = {.name = name, .description = LONG_DESC, .min_range = -40, .max_range = 85,
                                   .accuracy = 0.5f, .interval_ms = 1000};
        assert_int_equal(mcp_core_register_sensor(core, id, "temperature", "°C", &m, read_cb, n), ESP_OK);
    }
    for (int i = 0; i < N_ACTUATORS; i++) {
        snprintf(id, sizeof id, "a%d", i);
        snprintf(name, sizeof name, "Irrigation valve north bed number %02d", i);
        const char *acts[] = {"read", "write", NULL};
        mcp_actuator_metadata_t m = {.name = name, .description = LONG_DESC, .value_type = "number",
                                     .min_value = 0, .max_value = 100, .step = 5, .unit = "%",
                                     .supported_actions = acts};
        assert_int_equal(mcp_core_register_actuator(core, id, "valve", &m, ctl_cb, NULL), ESP_OK);
        mcp_value_t v = {.type = MCP_VALUE_NUMBER, .number = 5.0 * i};
        assert_int_equal(mcp_core_set_actuator_value(core, id, &v), ESP_OK);
    }
    return core;
}

/* The worst case with a stored mode mqtt, or without the hold-off: the discovery at once. */
static mcp_core_t *worst_case_device(net_t *n)
{
    return worst_case_device_holding(n, MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE);
}

/* Index of the first message on topic at or after from (n_msgs when none). */
static size_t find_from(const fake_port_t *fp, const char *topic, size_t from)
{
    for (size_t i = from; i < fp->n_msgs; i++) {
        if (strcmp(fp->msgs[i].topic, topic) == 0) {
            return i;
        }
    }
    return fp->n_msgs;
}

/* After message index from: status, capabilities, discovery, then every actuator state, in that order. */
static void expect_full_sync_after(const fake_port_t *fp, size_t from)
{
    size_t st = find_from(fp, B "status", from);
    size_t caps = find_from(fp, B "capabilities", from);
    size_t disc = find_from(fp, DISC, from);
    assert_true(st < caps);
    assert_true(caps < disc);
    assert_true(disc < fp->n_msgs);
    char topic[64];
    for (int i = 0; i < N_ACTUATORS; i++) {
        snprintf(topic, sizeof topic, B "actuators/a%d/state", i);
        size_t at = find_from(fp, topic, from);
        assert_true(at < fp->n_msgs);
        assert_true(at > disc);
    }
}

static void run_for(net_t *n, mcp_core_t *core, uint32_t ms)
{
    for (uint32_t t = 0; t < ms; t += TICK_MS) {
        net_run(n, TICK_MS);
        n->fp.now += TICK_MS;
        (void)mcp_core_tick(core, n->fp.now);
    }
}

static void test_worst_case_birth_while_streaming(void **state)
{
    (void)state;
    net_t *n = calloc(1, sizeof *n);
    mcp_core_t *core = worst_case_device(n);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    for (int i = 0; i < N_SENSORS; i++) {
        char id[8];
        snprintf(id, sizeof id, "s%d", i);
        assert_int_equal(mcp_core_set_sensor_streaming(core, id, true, 100), ESP_OK);
    }
    run_for(n, core, 3000);
    expect_full_sync_after(&n->fp, 0);
    const fp_msg_t *caps = fp_last(&n->fp, B "capabilities");
    const fp_msg_t *disc = fp_last(&n->fp, DISC);
    print_message("capabilities %zu B, discovery %zu B\n", caps->len, disc->len);
    assert_true(caps->len + disc->len > OUTBOX_LIMIT); /* the case that needs the policy */
    /* Home Assistant restarts twice while the sensors stream (10 s apart: births
     * closer together are coalesced, test_link.c) */
    for (int birth = 0; birth < 2; birth++) {
        size_t mark = n->fp.n_msgs;
        memset(n->reads, 0, sizeof n->reads);
        fp_send(core, "homeassistant/status", "online");
        run_for(n, core, 5000);
        expect_full_sync_after(&n->fp, mark);
        run_for(n, core, 5000);
        /* streaming kept its rate: 100 readings each in 10 s, a few late ones at most */
        for (int i = 0; i < N_SENSORS; i++) {
            char topic[48];
            snprintf(topic, sizeof topic, B "sensors/s%d", i);
            size_t got = 0;
            for (size_t k = mark; k < n->fp.n_msgs; k++) {
                got += strcmp(n->fp.msgs[k].topic, topic) == 0;
            }
            assert_true(got >= 80);
            assert_int_equal(got, n->reads[i]);
        }
    }
    assert_int_equal(n->refused, 0);
    mcp_bridge_metrics_t m;
    mcp_core_get_metrics(core, &m);
    assert_int_equal(m.messages_sent, n->fp.n_msgs);
    mcp_core_destroy(core);
    fp_free(&n->fp);
    free(n);
}

/* "offline" goes out acknowledged before a clean DISCONNECT; unacknowledged, the will has to say it. */
static void test_offline_acknowledged_before_disconnect(void **state)
{
    (void)state;
    for (int lost = 0; lost < 2; lost++) {
        net_t *n = calloc(1, sizeof *n);
        mcp_core_t *core = worst_case_device(n);
        assert_int_equal(mcp_core_start(core), ESP_OK);
        mcp_core_on_connected(core);
        n->ack_lost = lost;
        /* stop right away: the sync still fills the outbox */
        assert_int_equal(mcp_core_stop(core), ESP_OK);
        const fp_msg_t *st = fp_last(&n->fp, B "status");
        assert_string_equal(st->payload, "offline");
        assert_true(st->qos >= 1);
        assert_true(st->retain);
        assert_int_equal(n->flushes, 1);
        assert_int_equal(n->fp.disconnects, lost ? 0 : 1);
        assert_int_equal(n->aborts, lost ? 1 : 0);
        assert_int_equal(n->refused, 0);
        mcp_core_destroy(core);
        fp_free(&n->fp);
        free(n);
    }
}

/* A deep-sleep user flushes: everything of the connect is out and acknowledged before it returns. */
static void test_flush_before_sleep(void **state)
{
    (void)state;
    net_t *n = calloc(1, sizeof *n);
    mcp_core_t *core = worst_case_device(n);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core); /* the sync is still under way */
    assert_int_equal(mcp_core_flush(core, 10000), ESP_OK);
    expect_full_sync_after(&n->fp, 0);
    assert_int_equal(n->outbox_bytes, 0);
    assert_int_equal(n->refused, 0);
    /* a broker that never acknowledges: the flush gives up in time */
    n->ack_lost = true;
    assert_int_equal(mcp_core_publish_error(core, "test", ESP_FAIL, "x", 2), ESP_OK);
    assert_int_equal(mcp_core_flush(core, 500), ESP_ERR_TIMEOUT);
    mcp_core_destroy(core);
    fp_free(&n->fp);
    free(n);
}

/* A discovery message at or after from, and after it every actuator state. */
static void expect_states_after_discovery(const fake_port_t *fp, size_t from)
{
    size_t disc = find_from(fp, DISC, from);
    assert_true(disc < fp->n_msgs);
    char topic[64];
    for (int i = 0; i < N_ACTUATORS; i++) {
        snprintf(topic, sizeof topic, B "actuators/a%d/state", i);
        assert_true(find_from(fp, topic, disc) < fp->n_msgs);
    }
}

static bool held(mcp_core_t *core)
{
    mcp_bridge_status_t st;
    assert_int_equal(mcp_core_get_status(core, &st), ESP_OK);
    return st.discovery_held;
}

/* A fresh device (no stored mode, the default hold-off of 5 s): the discovery comes
 * when the hold-off expires, through the same outbox budget, followed by the states. */
static void test_holdoff_expires_within_the_outbox_budget(void **state)
{
    (void)state;
    net_t *n = calloc(1, sizeof *n);
    mcp_core_t *core = worst_case_device_holding(n, 0);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    assert_true(held(core));
    uint64_t t0 = n->fp.now;
    mcp_core_on_connected(core);
    run_for(n, core, 4990);
    assert_int_equal(fp_count(&n->fp, DISC), 0);
    assert_true(fp_count(&n->fp, B "capabilities") == 1);
    assert_true(held(core));
    size_t before = n->fp.n_msgs;
    run_for(n, core, 3000);
    assert_false(held(core));
    assert_int_equal(fp_count(&n->fp, DISC), 1);
    expect_states_after_discovery(&n->fp, before);
    assert_int_equal(n->refused, 0);
    assert_true(n->fp.now - t0 >= MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS);
    mcp_core_destroy(core);
    fp_free(&n->fp);
    free(n);
}

/* Before deep sleep: mcp_core_flush sends the held-back discovery too (a fresh device that
 * sleeps within its hold-off on every wake would otherwise never publish it). */
static void test_flush_ends_the_holdoff(void **state)
{
    (void)state;
    net_t *n = calloc(1, sizeof *n);
    mcp_core_t *core = worst_case_device_holding(n, 60000);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    assert_int_equal(mcp_core_flush(core, 10000), ESP_OK);
    assert_false(held(core));
    expect_states_after_discovery(&n->fp, 0);
    assert_int_equal(fp_count(&n->fp, DISC), 1);
    assert_int_equal(n->outbox_bytes, 0);
    assert_int_equal(n->refused, 0);
    mcp_core_destroy(core);
    fp_free(&n->fp);
    free(n);
}

/* Limits of the setting, and a mode set by the application counts as stored. */
static void test_holdoff_config_and_application_mode(void **state)
{
    (void)state;
    fake_port_t fp;
    fp_init(&fp);
    mcp_bridge_config_t c = {.mqtt_broker_uri = "mqtt://broker:1883", .device_id = "dev-1"};
    mcp_core_t *core = NULL;
    c.discovery_holdoff_ms = MCP_BRIDGE_MAX_DISCOVERY_HOLDOFF_MS + 1;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_ERR_INVALID_ARG);
    c.discovery_holdoff_ms = MCP_BRIDGE_MAX_DISCOVERY_HOLDOFF_MS;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    assert_true(held(core));
    /* the application decides before start: stored, published at once */
    assert_int_equal(mcp_core_set_discovery_mode(core, MCP_DISCOVERY_MQTT), ESP_OK);
    assert_false(held(core));
    assert_int_equal(fp.kv_stores, 1);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    assert_int_equal(fp_count(&fp, DISC), 1);
    mcp_core_destroy(core);
    /* next boot: the stored mode, no hold-off, no flash write */
    fp_clear(&fp);
    fp.kv_stores = 0;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    assert_false(held(core));
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    assert_int_equal(fp_count(&fp, DISC), 1);
    assert_int_equal(fp.kv_stores, 0);
    mcp_core_destroy(core);
    /* a fresh device configured for mode integration has nothing to hold back, and
     * nothing to clear: it never published a discovery message (§13.4) */
    fp_free(&fp);
    fp_init(&fp);
    c.default_discovery_mode = MCP_DISCOVERY_INTEGRATION;
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    assert_false(held(core));
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    assert_int_equal(fp_count(&fp, DISC), 0);
    assert_int_equal(mcp_core_set_discovery_mode(core, MCP_DISCOVERY_INTEGRATION), ESP_OK);
    assert_int_equal(fp_count(&fp, DISC), 0);
    mcp_core_destroy(core);
    /* its next boot finds the stored mode: an earlier boot may have published one */
    fp_clear(&fp);
    assert_int_equal(mcp_core_create(&c, &fp.port, &core), ESP_OK);
    assert_int_equal(mcp_core_start(core), ESP_OK);
    mcp_core_on_connected(core);
    assert_int_equal(fp_count(&fp, DISC), 1);
    mcp_core_destroy(core);
    fp_free(&fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worst_case_birth_while_streaming),
        cmocka_unit_test(test_offline_acknowledged_before_disconnect),
        cmocka_unit_test(test_flush_before_sleep),
        cmocka_unit_test(test_holdoff_expires_within_the_outbox_budget),
        cmocka_unit_test(test_flush_ends_the_holdoff),
        cmocka_unit_test(test_holdoff_config_and_application_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
