/*
 * Fake port for the unit tests: a settable clock, an in-memory key/value
 * store and a transport that records every publish and subscription.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcp_core.h"

typedef struct {
    char *topic;
    char *payload;
    size_t len;
    int qos;
    bool retain;
} fp_msg_t;

typedef struct {
    mcp_port_t port;
    mcp_core_t *attached;
    uint64_t now;
    uint64_t epoch; /* 0: not synced */
    /* recorded traffic */
    fp_msg_t *msgs;
    size_t n_msgs, cap_msgs;
    char subs[8][160];
    int sub_qos[8];
    size_t n_subs;
    int subscribe_fails; /* the next N subscribe calls fail */
    /* connection */
    int connects;
    int disconnects;
    mcp_port_mqtt_params_t last_params;
    char lwt_topic[160];
    char username[64];
    bool publish_fails;
    /* kv */
    char kv_keys[8][16];
    char kv_vals[8][64];
    size_t kv_lens[8];
    size_t n_kv;
    bool kv_store_fails;
    int kv_stores;
    /* actions */
    int restarts;
    int identifies;
    int otas;
    esp_err_t ota_result;
    char ota_version[40];
    uint32_t free_heap;
    int8_t rssi;
} fake_port_t;

void fp_init(fake_port_t *fp);
void fp_free(fake_port_t *fp);
void fp_clear(fake_port_t *fp);
/** Record one published message (what the fake transport's publish does). */
esp_err_t fp_record(fake_port_t *fp, const char *topic, const void *payload, size_t len, int qos, bool retain);
/** Last message on topic (NULL if none). */
const fp_msg_t *fp_last(const fake_port_t *fp, const char *topic);
size_t fp_count(const fake_port_t *fp, const char *topic);
/** Count messages whose topic starts with prefix. */
size_t fp_count_prefix(const fake_port_t *fp, const char *prefix);
/** Deliver a whole message to the core. */
void fp_send(mcp_core_t *core, const char *topic, const char *payload);
void fp_send_len(mcp_core_t *core, const char *topic, const void *payload, size_t len);
