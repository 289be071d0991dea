/*
 * ESP-IDF services used by the ESP-IDF port of esp_mcp_bridge (private header).
 *
 * Targets ESP-IDF 5.5 and 6.x (6.x with espressif/mqtt and espressif/cjson from
 * the component registry). Each service is a thin layer over the ESP-IDF API;
 * mcp_port_esp_idf.c wires them to the portable core's port interface.
 *
 * Wi-Fi, SNTP and NVS exist once per chip, so their state is module state of
 * this port (never of the portable core).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "esp_mcp_bridge.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log tag of the whole component. */
#define MCP_IDF_TAG MCP_BRIDGE_LOG_TAG

/* ------------------------------------------------------------------ NVS */

/* NVS namespace holding the persisted settings (discovery mode, ...). */
#define MCP_IDF_NVS_NAMESPACE "mcp_bridge"

/* Initialises the default NVS partition if the application has not done so.
 * Does not erase anything: a partition that needs erasing is reported as the
 * error nvs_flash_init() returned (the application decides). */
esp_err_t mcp_idf_nvs_init(void);
/* Keys: at most 15 characters (NVS_KEY_NAME_MAX_SIZE - 1).
 * get: *len in: size of buf, out: length of the value. ESP_ERR_NVS_NOT_FOUND
 * when the key (or the namespace) does not exist, ESP_ERR_NVS_INVALID_LENGTH
 * when buf is too small. set: replaces the value and commits. */
esp_err_t mcp_idf_nvs_get_blob(const char *key, void *buf, size_t *len);
esp_err_t mcp_idf_nvs_set_blob(const char *key, const void *data, size_t len);
/* Erasing a key that does not exist is not an error. */
esp_err_t mcp_idf_nvs_erase_key(const char *key);

/* ------------------------------------------------------------------ identity */

/* "<prefix>-<last three bytes of the station MAC, lower-case hex>", e.g.
 * "esp32-a1b2c3". The prefix is cut so that the id has at most 32 characters.
 * ESP_ERR_INVALID_ARG for an empty prefix or one outside [a-z0-9_-]. */
esp_err_t mcp_idf_default_device_id(const char *prefix, char *buf, size_t len);
/* "a4:cf:12:a1:b2:c3" (station MAC); len >= 18. */
esp_err_t mcp_idf_mac_string(char *buf, size_t len);

/* ------------------------------------------------------------------ Wi-Fi */

/* Called from the default event loop task when the station gets (up=true) or
 * loses (up=false) its IP address. */
typedef void (*mcp_idf_net_cb_t)(bool up, void *arg);

/* Starts the Wi-Fi station (esp_netif, default event loop, esp_wifi) and keeps
 * it connected: after a disconnect it reconnects with exponential backoff
 * (CONFIG_MCP_BRIDGE_WIFI_BACKOFF_MIN_MS doubling up to _MAX_MS, with jitter).
 * ssid NULL or "" means the application runs the network itself: nothing is
 * started and the network counts as up. The password is never logged. */
esp_err_t mcp_idf_wifi_start(const char *ssid, const char *password, mcp_idf_net_cb_t cb, void *arg);
esp_err_t mcp_idf_wifi_stop(void);
bool mcp_idf_wifi_is_up(void);
/* RSSI of the current AP in dBm, 0 when not connected (or not managed here). */
int mcp_idf_wifi_rssi(void);
/* Successful reconnections after the first connection since start. */
uint32_t mcp_idf_wifi_reconnections(void);

/* ------------------------------------------------------------------ time */

/* Starts SNTP (esp_netif_sntp) with one server; NULL or "" starts nothing.
 * If the application already runs SNTP, that is used as it is. */
esp_err_t mcp_idf_time_start(const char *server);
void mcp_idf_time_stop(void);
/* Milliseconds since boot (esp_timer). */
uint64_t mcp_idf_time_mono_ms(void);
/* Unix epoch milliseconds, or 0 while the clock has not been set (by SNTP or
 * by the application). */
uint64_t mcp_idf_time_wall_ms(void);

/* ------------------------------------------------------------------ MQTT */

typedef struct mcp_idf_mqtt mcp_idf_mqtt_t;

typedef struct {
    /* Called from the esp-mqtt task. */
    void (*on_connected)(void *arg);
    void (*on_disconnected)(void *arg);
    /* Connection attempt failed (TCP/TLS error or refused by the broker). */
    void (*on_error)(void *arg);
    /* One fragment of an incoming PUBLISH: data[0..len) is at offset `offset`
     * of a payload of `total` bytes. The topic is given with every fragment
     * (esp-mqtt gives it only with the first). */
    void (*on_data)(void *arg, const char *topic, size_t topic_len, const char *data, size_t len,
                    size_t offset, size_t total);
    /* A SUBACK carried a failure return code (0x80). */
    void (*on_subscribe_failed)(void *arg);
    void *arg;
} mcp_idf_mqtt_handlers_t;

typedef struct {
    const char *uri;       /* mqtt://, mqtts://, ws://, wss:// */
    const char *client_id; /* NULL: esp-mqtt's default */
    const char *username;  /* NULL: none */
    const char *password;  /* NULL: none */
    /* TLS (mqtts:// and wss://) */
    const char *ca_pem;           /* NULL: certificate bundle if use_crt_bundle */
    const char *client_cert_pem;  /* mutual TLS, with client_key_pem */
    const char *client_key_pem;
    const char **alpn_protos;     /* NULL-terminated, or NULL */
    bool skip_cert_common_name_check;
    bool use_crt_bundle;
    /* Last will: retained `lwt_msg` on `lwt_topic` */
    const char *lwt_topic;
    const char *lwt_msg;
    int lwt_qos;
    bool lwt_retain;
    int keepalive_s;  /* 0: esp-mqtt's default */
    int buffer_size;  /* 0: CONFIG_MCP_BRIDGE_MQTT_BUFFER_SIZE */
} mcp_idf_mqtt_cfg_t;

/* Every string of cfg (including the certificates) must stay valid until
 * mcp_idf_mqtt_destroy(). */
esp_err_t mcp_idf_mqtt_create(const mcp_idf_mqtt_cfg_t *cfg, const mcp_idf_mqtt_handlers_t *handlers,
                              mcp_idf_mqtt_t **out);
esp_err_t mcp_idf_mqtt_start(mcp_idf_mqtt_t *m);
/* Disconnects cleanly (the broker does not publish the last will). */
/* clean: DISCONNECT first (no will); otherwise the broker publishes the will. */
esp_err_t mcp_idf_mqtt_stop(mcp_idf_mqtt_t *m, bool clean);
esp_err_t mcp_idf_mqtt_destroy(mcp_idf_mqtt_t *m);
/* Waits (calling sleep_ms(10) in between) until the outbox is empty, the
 * connection is gone, or timeout_ms passed (ESP_ERR_TIMEOUT). */
/* Try the broker again now (the client does not reconnect by itself); ESP_FAIL
 * while it is connecting or connected. */
esp_err_t mcp_idf_mqtt_reconnect(mcp_idf_mqtt_t *m);
esp_err_t mcp_idf_mqtt_flush(mcp_idf_mqtt_t *m, uint32_t timeout_ms, void (*sleep_ms)(uint32_t));
bool mcp_idf_mqtt_is_connected(const mcp_idf_mqtt_t *m);
/* Bytes the outbox still takes for QoS 1/2 payloads. */
size_t mcp_idf_mqtt_outbox_room(mcp_idf_mqtt_t *m);
/* Sends one PUBLISH from the calling task (QoS 1/2 kept in the outbox until
 * acknowledged). ESP_ERR_INVALID_STATE when not connected, ESP_FAIL when
 * esp-mqtt refused it (outbox limit, write error). */
esp_err_t mcp_idf_mqtt_publish(mcp_idf_mqtt_t *m, const char *topic, const void *data, size_t len, int qos,
                               bool retain);
esp_err_t mcp_idf_mqtt_subscribe(mcp_idf_mqtt_t *m, const char *topic, int qos);
esp_err_t mcp_idf_mqtt_unsubscribe(mcp_idf_mqtt_t *m, const char *topic);

/* ------------------------------------------------------------------ OTA */

typedef struct {
    const char *url;        /* https:// (http:// only if the application's sdkconfig allows it) */
    const char *sha256_hex; /* 64 hex digits: SHA-256 of the whole image file */
    const char *ca_pem;     /* NULL: certificate bundle if use_crt_bundle */
    bool use_crt_bundle;
    bool skip_cert_common_name_check;
    int timeout_ms;         /* HTTP timeout, 0: 10000 */
    /* Called between downloaded blocks (e.g. to feed the watchdog); may be NULL. */
    void (*progress)(void *arg, size_t done, size_t total);
    void *progress_arg;
} mcp_idf_ota_cfg_t;

/* Downloads the image into the next OTA partition with esp_https_ota, checks
 * the SHA-256 of the downloaded bytes, and only then marks the partition for
 * the next boot. It does not restart. Errors: ESP_ERR_INVALID_ARG (bad url or
 * sha256), ESP_ERR_INVALID_CRC (SHA-256 mismatch, partition not activated),
 * or what esp_https_ota returned. Blocks for the whole download. */
esp_err_t mcp_idf_ota_run(const mcp_idf_ota_cfg_t *cfg);

/* ------------------------------------------------------------------ health */

uint32_t mcp_idf_free_heap(void);
uint32_t mcp_idf_min_free_heap(void);

/* ------------------------------------------------------------------ task */

typedef struct mcp_idf_runner mcp_idf_runner_t;

typedef struct {
    const char *name;
    uint32_t period_ms;
    uint32_t stack_size;
    uint32_t priority;
    bool watchdog;           /* restart the chip when a tick has not finished for wdt_timeout_ms */
    uint32_t wdt_timeout_ms;
    SemaphoreHandle_t lock;  /* recursive mutex taken around tick() (not owned) */
    /* Called with the lock held; returns the ms until it has work again. The task
     * sleeps that long (at least one period, so the chip can light-sleep) unless
     * mcp_idf_runner_wake() wakes it. */
    uint32_t (*tick)(void *arg);
    void *arg;
} mcp_idf_runner_cfg_t;

/* Creates the FreeRTOS task. */
esp_err_t mcp_idf_runner_start(const mcp_idf_runner_cfg_t *cfg, mcp_idf_runner_t **out);
/* Stops the task (waits until it has left its loop) and frees the runner.
 * Must not be called from the task itself; may be called with the lock held. */
esp_err_t mcp_idf_runner_stop(mcp_idf_runner_t *r);
/* Runs tick() now instead of at the end of the period. */
void mcp_idf_runner_wake(mcp_idf_runner_t *r);

#ifdef __cplusplus
}
#endif
