/*
 * The ESP-IDF port of esp_mcp_bridge: mcp_port_t (core/include/mcp_port.h) on
 * ESP-IDF, and mcp_port_default_create() used by mcp_bridge_init().
 *
 * Targets ESP-IDF 5.5 and 6.x. Uses esp-mqtt (built-in `mqtt` in 5.x,
 * espressif/mqtt from the registry in 6.x), esp_wifi/esp_netif, NVS,
 * esp_netif_sntp, esp_timer, FreeRTOS and esp_https_ota.
 *
 * Locking. The core is entered under one recursive mutex (the port's lock,
 * also taken by the singleton API around every public call) and only from:
 *   - the bridge task (mcp_idf_task.c), every CONFIG_MCP_BRIDGE_TICK_MS or
 *     when woken: it delivers the MQTT and Wi-Fi events, then runs
 *     mcp_core_tick(), and feeds the task watchdog;
 *   - application tasks (the public API);
 *   - the actuator task: the application's actuator callbacks, queued by the
 *     core (mcp_core_run_actuator_jobs releases the lock around each one, so a
 *     slow valve holds up neither the bridge task nor the API);
 *   - the OTA task (the error report when an update fails).
 * The esp-mqtt task never takes the lock: it runs its event handlers while
 * holding esp-mqtt's own API lock, which every publish needs, so waiting
 * there for the bridge's lock could deadlock against a task that holds the
 * bridge's lock and publishes. Its handlers only record connection changes in
 * counters and copy incoming data into a bounded ring buffer (bytes beyond
 * max_command_size are not copied: the core only counts them), then wake the
 * bridge task.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_attr.h"
#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/ringbuf.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "nvs.h"
#include "sdkconfig.h"

#include "esp_mcp_bridge.h"
#include "mcp_core.h"
#include "mcp_idf.h"
#include "mcp_port.h"

#ifdef CONFIG_MCP_BRIDGE_WATCHDOG_TIMEOUT_MS
#define IDF_PORT_WDT_TIMEOUT_MS CONFIG_MCP_BRIDGE_WATCHDOG_TIMEOUT_MS
#else
#define IDF_PORT_WDT_TIMEOUT_MS 30000
#endif

/* How long stop / restart wait for queued messages ("offline", the response). */
#define IDF_PORT_FLUSH_MS 1000
/* Longest topic queued with incoming data (longer ones are not ours). */
#define IDF_PORT_TOPIC_MAX 192
#define IDF_PORT_OTA_URL_MAX 512
#define IDF_PORT_OTA_STACK 8192

typedef struct {
    mcp_core_t *core;
    SemaphoreHandle_t lock; /* recursive */
    mcp_idf_runner_t *runner;
    mcp_idf_runner_t *act_runner; /* actuator callbacks */
    bool watchdog;

    /* network */
    char *wifi_ssid;
    char *wifi_password;
    bool net_started;
    bool wifi_lost; /* the station lost its IP after having one */
    volatile uint32_t wifi_reconnects;
    uint32_t seen_wifi_reconnects;

    /* MQTT: copies of the connect parameters, valid while the client lives */
    mcp_idf_mqtt_t *mqtt;
    volatile bool started;
    bool mqtt_deferred; /* client created, started when the station has an IP */
    /* Written by the esp-mqtt task, read by the bridge task. */
    volatile uint32_t conn_gen;  /* +1 on every CONNECTED */
    volatile bool mqtt_up;
    volatile uint32_t conn_fails;
    volatile uint32_t sub_fails; /* SUBACKs with a failure code */
    volatile uint32_t rx_dropped;
    /* Seen by the bridge task. */
    uint32_t seen_gen;
    uint32_t seen_fails;
    uint32_t seen_sub_fails;
    uint32_t seen_dropped;
    bool core_up; /* the core was told "connected" */
    /* incoming data: ring buffer of rx_item_t + topic + stored bytes */
    RingbufHandle_t rx_ring;
    size_t rx_limit;        /* max_command_size: bytes beyond it are not copied */
    size_t elide_offset;    /* not-copied fragments of the current message, */
    size_t elide_len;       /* queued as one item with its last fragment */
    char *uri;
    char *client_id;
    char *username;
    char *password;
    char *lwt_topic;
    char *lwt_payload;
    mcp_tls_config_t tls; /* PEMs by pointer (the application keeps them) */
    const char *alpn[MCP_TLS_MAX_ALPN + 1];

    /* OTA */
    volatile bool ota_running;
    char ota_url[IDF_PORT_OTA_URL_MAX + 1];
    char ota_sha256[65];
} idf_port_t;

/* ------------------------------------------------------------------ utilities */

static char *dup_str(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* Frees a string that may hold a secret. */
static void free_secret(char **s)
{
    if (*s != NULL) {
        volatile char *v = *s;
        while (*v != '\0') {
            *v++ = '\0';
        }
        free(*s);
        *s = NULL;
    }
}

static void free_mqtt_params(idf_port_t *p)
{
    free(p->uri);
    free(p->client_id);
    free(p->username);
    free_secret(&p->password);
    free(p->lwt_topic);
    free(p->lwt_payload);
    p->uri = p->client_id = p->username = p->lwt_topic = p->lwt_payload = NULL;
}

static void sleep_ms(uint32_t ms)
{
    vTaskDelay(pdMS_TO_TICKS(ms) > 0 ? pdMS_TO_TICKS(ms) : 1);
}

static bool starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ------------------------------------------------------------------ events */

/* One incoming fragment in the ring: this header, then topic_len bytes of
 * topic (first fragment only), then `stored` bytes of data. The fragment
 * covers `len` bytes at `offset`; the len - stored bytes after the stored
 * ones lie beyond max_command_size and are delivered to the core as zeros
 * (it only counts them). */
typedef struct {
    uint32_t len;
    uint32_t offset;
    uint32_t total;
    uint32_t stored;
    uint32_t topic_len;
} rx_item_t;

static const uint8_t s_zeros[512];

static void wake(idf_port_t *p)
{
    mcp_idf_runner_wake(p->runner);
}

static bool rx_push(idf_port_t *p, const char *topic, size_t topic_len, const char *data, size_t stored,
                    size_t len, size_t offset, size_t total)
{
    if (p->rx_ring == NULL) {
        return false;
    }
    void *slot = NULL;
    size_t size = sizeof(rx_item_t) + topic_len + stored;
    if (xRingbufferSendAcquire(p->rx_ring, &slot, size, 0) != pdTRUE || slot == NULL) {
        return false;
    }
    rx_item_t *it = slot;
    it->len = (uint32_t)len;
    it->offset = (uint32_t)offset;
    it->total = (uint32_t)total;
    it->stored = (uint32_t)stored;
    it->topic_len = (uint32_t)topic_len;
    char *dst = (char *)(it + 1);
    if (topic_len > 0) {
        memcpy(dst, topic, topic_len);
    }
    if (stored > 0) {
        memcpy(dst + topic_len, data, stored);
    }
    return xRingbufferSendComplete(p->rx_ring, slot) == pdTRUE;
}

/* esp-mqtt task: never takes the bridge's lock (see the top of the file). */
static void on_mqtt_connected(void *arg)
{
    idf_port_t *p = arg;
    p->mqtt_up = true;
    p->conn_gen++;
    wake(p);
}

static void on_mqtt_disconnected(void *arg)
{
    idf_port_t *p = arg;
    p->mqtt_up = false;
    wake(p);
}

static void on_mqtt_error(void *arg)
{
    idf_port_t *p = arg;
    p->conn_fails++;
    wake(p);
}

static void on_mqtt_subscribe_failed(void *arg)
{
    idf_port_t *p = arg;
    p->sub_fails++;
    wake(p);
}

static void on_mqtt_data(void *arg, const char *topic, size_t topic_len, const char *data, size_t len,
                         size_t offset, size_t total)
{
    idf_port_t *p = arg;
    if (total < offset + len) {
        total = offset + len;
    }
    if (offset == 0) {
        p->elide_len = 0;
        if (topic_len > IDF_PORT_TOPIC_MAX) {
            topic_len = 0; /* the core drops a message without a usable topic */
        }
    } else {
        topic_len = 0; /* the core reads the topic of the first fragment only */
    }
    size_t stored = offset < p->rx_limit ? p->rx_limit - offset : 0;
    if (stored > len) {
        stored = len;
    }
    bool last = offset + len >= total;
    bool ok = true;
    if (stored == 0 && offset > 0) {
        /* beyond the limit: gather, and queue one item with the last fragment */
        if (p->elide_len == 0) {
            p->elide_offset = offset;
        }
        p->elide_len += len;
        if (last) {
            ok = rx_push(p, NULL, 0, NULL, 0, p->elide_len, p->elide_offset, total);
            p->elide_len = 0;
        }
    } else {
        ok = rx_push(p, topic, topic_len, data, stored, len, offset, total);
    }
    if (!ok) {
        p->rx_dropped++; /* the core sees the gap and drops the message */
    }
    wake(p);
}

/* default event loop task */
static void on_net(bool up, void *arg)
{
    idf_port_t *p = arg;
    if (!up) {
        p->wifi_lost = true;
        return;
    }
    if (p->wifi_lost) {
        p->wifi_lost = false;
        p->wifi_reconnects++;
    }
    wake(p); /* a deferred MQTT client starts now */
}

/* Bridge task, lock held: deliver what the event handlers recorded. */
static void deliver_events(idf_port_t *p)
{
    mcp_core_t *core = p->core;
    if (p->mqtt_deferred && p->mqtt != NULL && mcp_idf_wifi_is_up()) {
        p->mqtt_deferred = false;
        esp_err_t err = mcp_idf_mqtt_start(p->mqtt);
        if (err != ESP_OK) {
            ESP_LOGE(MCP_IDF_TAG, "MQTT start failed: %s", esp_err_to_name(err));
            mcp_core_on_connect_failed(core);
            p->mqtt_deferred = true; /* tried again on the next pass */
        }
    }
    while (p->seen_fails != p->conn_fails) {
        p->seen_fails++;
        mcp_core_on_connect_failed(core);
    }
    uint32_t gen = p->conn_gen;
    bool up = p->mqtt_up;
    if (gen != p->seen_gen) {
        /* a (re)connection since the last look: subscriptions are new */
        if (p->core_up) {
            mcp_core_on_disconnected(core);
        }
        p->seen_gen = gen;
        p->core_up = up;
        if (up) {
            mcp_core_on_connected(core);
        }
    } else if (!up && p->core_up) {
        p->core_up = false;
        mcp_core_on_disconnected(core);
    }
    if (p->seen_sub_fails != p->sub_fails) {
        p->seen_sub_fails = p->sub_fails;
        if (p->core_up) {
            mcp_core_on_subscribe_failed(core); /* the core subscribes again, with backoff */
        }
    }
    while (p->seen_wifi_reconnects != p->wifi_reconnects) {
        p->seen_wifi_reconnects++;
        mcp_core_on_wifi_reconnected(core);
    }
    if (p->seen_dropped != p->rx_dropped) {
        ESP_LOGW(MCP_IDF_TAG, "%" PRIu32 " incoming MQTT fragments dropped (receive queue full)",
                 (uint32_t)(p->rx_dropped - p->seen_dropped));
        p->seen_dropped = p->rx_dropped;
    }
    size_t size = 0;
    rx_item_t *it;
    while (p->rx_ring != NULL && (it = xRingbufferReceive(p->rx_ring, &size, 0)) != NULL) {
        const char *topic = (const char *)(it + 1);
        const char *data = topic + it->topic_len;
        if (it->stored > 0 || it->len == 0) {
            mcp_core_on_message(core, it->topic_len > 0 ? topic : NULL, it->topic_len, data, it->stored,
                                it->total, it->offset);
        }
        for (size_t done = it->stored; done < it->len;) {
            size_t n = it->len - done < sizeof(s_zeros) ? it->len - done : sizeof(s_zeros);
            mcp_core_on_message(core, NULL, 0, s_zeros, n, it->total, it->offset + done);
            done += n;
        }
        vRingbufferReturnItem(p->rx_ring, it);
    }
}

static void rx_discard(idf_port_t *p)
{
    size_t size = 0;
    void *it;
    while (p->rx_ring != NULL && (it = xRingbufferReceive(p->rx_ring, &size, 0)) != NULL) {
        vRingbufferReturnItem(p->rx_ring, it);
    }
}

static uint32_t on_tick(void *arg)
{
    idf_port_t *p = arg;
    if (p->core == NULL) {
        return 1000;
    }
    if (!p->started) {
        rx_discard(p);
        return 1000; /* mcp_bridge_start() and the event handlers wake the task */
    }
    deliver_events(p);
    /* the core's delay until its next work (at most 1 s): the task sleeps that long */
    return mcp_core_tick(p->core, mcp_idf_time_mono_ms());
}

/* Actuator task, lock held once: the queued actuator commands (callbacks unlocked). */
static uint32_t on_actuator_tick(void *arg)
{
    idf_port_t *p = arg;
    return p->core != NULL ? mcp_core_run_actuator_jobs(p->core) : 1000;
}

static void port_actuator_wake(void *ctx)
{
    mcp_idf_runner_wake(((idf_port_t *)ctx)->act_runner);
}

/* ------------------------------------------------------------------ safe mode */

/* The boot counter of safe mode (core/src/mcp_safe.c) in RTC memory: kept across
 * esp_restart(), panics, watchdog and brown-out resets, not across a power-on. The
 * magic tells a kept value from what RTC memory holds after power-on; a wake from
 * deep sleep is a planned start, not a crash, and starts from 0 as well. */
#define IDF_PORT_BOOT_MAGIC 0x4D43534Du
RTC_NOINIT_ATTR static uint32_t s_boot_magic;
RTC_NOINIT_ATTR static uint32_t s_boot_count;

static uint32_t port_boot_count_load(void *ctx)
{
    (void)ctx;
    esp_reset_reason_t why = esp_reset_reason();
    if (s_boot_magic != IDF_PORT_BOOT_MAGIC || why == ESP_RST_POWERON || why == ESP_RST_DEEPSLEEP) {
        return 0;
    }
    return s_boot_count;
}

static void port_boot_count_store(void *ctx, uint32_t count)
{
    (void)ctx;
    s_boot_count = count;
    s_boot_magic = IDF_PORT_BOOT_MAGIC;
}

/* ------------------------------------------------------------------ binding */

static esp_err_t port_attach(void *ctx, struct mcp_core *core)
{
    idf_port_t *p = ctx;
    if (p->runner != NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    const mcp_idf_runner_cfg_t rc = {
        .name = "mcp_bridge",
        .period_ms = CONFIG_MCP_BRIDGE_TICK_MS,
        .stack_size = CONFIG_MCP_BRIDGE_TASK_STACK_SIZE,
        .priority = CONFIG_MCP_BRIDGE_TASK_PRIORITY,
        .watchdog = p->watchdog,
        .wdt_timeout_ms = IDF_PORT_WDT_TIMEOUT_MS,
        .lock = p->lock,
        .tick = on_tick,
        .arg = p,
    };
    xSemaphoreTakeRecursive(p->lock, portMAX_DELAY);
    p->core = core;
    xSemaphoreGiveRecursive(p->lock);
    /* no watchdog here: a valve may take its time, the bridge task goes on */
    const mcp_idf_runner_cfg_t ac = {
        .name = "mcp_actuator",
        .period_ms = 1000,
        .stack_size = CONFIG_MCP_BRIDGE_ACTUATOR_TASK_STACK_SIZE,
        .priority = CONFIG_MCP_BRIDGE_TASK_PRIORITY,
        .lock = p->lock,
        .tick = on_actuator_tick,
        .arg = p,
    };
    esp_err_t err = mcp_idf_runner_start(&ac, &p->act_runner);
    if (err == ESP_OK) {
        err = mcp_idf_runner_start(&rc, &p->runner);
        if (err != ESP_OK) {
            mcp_idf_runner_stop(p->act_runner);
            p->act_runner = NULL;
        }
    }
    if (err != ESP_OK) {
        p->core = NULL;
    }
    return err;
}

static void port_detach(void *ctx)
{
    idf_port_t *p = ctx;
    mcp_idf_runner_t *r = p->runner;
    p->runner = NULL; /* event handlers stop waking it */
    mcp_idf_runner_stop(r); /* safe with the lock held */
    /* the actuator task finishes the callback it is in (it re-takes the lock to
     * answer, so this must run without the lock: mcp_bridge_deinit releases it) */
    r = p->act_runner;
    p->act_runner = NULL;
    mcp_idf_runner_stop(r);
    xSemaphoreTakeRecursive(p->lock, portMAX_DELAY);
    p->core = NULL;
    xSemaphoreGiveRecursive(p->lock);
}

static void port_lock(void *ctx)
{
    idf_port_t *p = ctx;
    xSemaphoreTakeRecursive(p->lock, portMAX_DELAY);
}

static void port_unlock(void *ctx)
{
    idf_port_t *p = ctx;
    xSemaphoreGiveRecursive(p->lock);
    wake(p); /* an API call may have moved the next due work earlier (streaming on) */
}

/* ------------------------------------------------------------------ MQTT */

/* Bridge task, lock held: the core's reconnect policy says "now" (mcp_link.c). */
static esp_err_t port_mqtt_reconnect(void *ctx)
{
    idf_port_t *p = ctx;
    if (p->mqtt == NULL || p->mqtt_deferred) {
        return ESP_ERR_INVALID_STATE; /* not started yet: it connects when the IP comes */
    }
    return mcp_idf_mqtt_reconnect(p->mqtt);
}

static esp_err_t start_network(idf_port_t *p)
{
    if (p->net_started) {
        return ESP_OK;
    }
    esp_err_t err = mcp_idf_wifi_start(p->wifi_ssid, p->wifi_password, on_net, p);
    if (err != ESP_OK) {
        return err;
    }
    p->net_started = true;
    /* without SNTP readings simply carry no "ts" */
    (void)mcp_idf_time_start(CONFIG_MCP_BRIDGE_SNTP_SERVER);
    return ESP_OK;
}

static esp_err_t port_mqtt_connect(void *ctx, const mcp_port_mqtt_params_t *params)
{
    idf_port_t *p = ctx;
    if (params == NULL || params->uri == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (p->mqtt != NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    const bool tls_uri = starts_with(params->uri, "mqtts://") || starts_with(params->uri, "wss://");
    const bool tls_wanted = params->tls != NULL && params->tls->enable_tls;
    if (tls_wanted && !tls_uri) {
        ESP_LOGE(MCP_IDF_TAG, "TLS is enabled but the broker URI is not mqtts:// or wss://");
        return ESP_ERR_INVALID_ARG;
    }
    if (!tls_uri && params->password != NULL) {
        ESP_LOGW(MCP_IDF_TAG, "broker credentials are sent without TLS (mqtt://)");
    }
    memset(&p->tls, 0, sizeof(p->tls));
    memset(p->alpn, 0, sizeof(p->alpn));
    if (params->tls != NULL) {
        p->tls = *params->tls;
    }
    /*
     * skip_cert_verification means what it says, as on the POSIX port (OpenSSL
     * SSL_VERIFY_NONE): neither the chain nor the name is checked. esp-tls
     * (components/esp-tls/esp_tls_mbedtls.c, set_client_config, ESP-IDF 5.5 and
     * 6.x) verifies with the first of crt_bundle_attach, use_global_ca_store,
     * cacert_buf, psk_hint_key that is set; only when none is set does it fall
     * back to MBEDTLS_SSL_VERIFY_NONE, and only with
     * CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY (under ESP_TLS_INSECURE); without
     * it the handshake fails with ESP_ERR_MBEDTLS_SSL_SETUP_FAILED. Its
     * skip_common_name only drops the host name check (and SNI), the chain is
     * still verified, which is all the old code did. So an unverified
     * connection passes no CA and no bundle, keeps the name (SNI) and needs
     * both Kconfig options; otherwise it is refused here, before connecting.
     */
    const bool skip_verify = tls_uri && p->tls.skip_cert_verification;
    if (skip_verify) {
#if defined(CONFIG_MCP_BRIDGE_TLS_SKIP_VERIFY) && defined(CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY)
        ESP_LOGW(MCP_IDF_TAG, "broker certificate not verified: insecure, for development only");
#else
        ESP_LOGE(MCP_IDF_TAG, "skip_cert_verification needs CONFIG_MCP_BRIDGE_TLS_SKIP_VERIFY and "
                              "CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY");
        return ESP_ERR_NOT_SUPPORTED;
#endif
    }
    for (size_t i = 0; i < MCP_TLS_MAX_ALPN && p->tls.alpn_protocols[i] != NULL; i++) {
        p->alpn[i] = p->tls.alpn_protocols[i];
    }

    esp_err_t err = start_network(p);
    if (err != ESP_OK) {
        return err;
    }

    p->uri = dup_str(params->uri);
    p->client_id = dup_str(params->client_id);
    p->username = dup_str(params->username);
    p->password = dup_str(params->password);
    p->lwt_topic = dup_str(params->lwt_topic);
    if (params->lwt_payload != NULL) {
        p->lwt_payload = malloc(params->lwt_len + 1);
        if (p->lwt_payload != NULL) {
            memcpy(p->lwt_payload, params->lwt_payload, params->lwt_len);
            p->lwt_payload[params->lwt_len] = '\0';
        }
    }
    if (p->uri == NULL || (params->client_id != NULL && p->client_id == NULL) ||
        (params->username != NULL && p->username == NULL) || (params->password != NULL && p->password == NULL) ||
        (params->lwt_topic != NULL && p->lwt_topic == NULL) ||
        (params->lwt_payload != NULL && p->lwt_payload == NULL)) {
        free_mqtt_params(p);
        return ESP_ERR_NO_MEM;
    }

    const mcp_idf_mqtt_cfg_t mc = {
        .uri = p->uri,
        .client_id = p->client_id,
        .username = p->username,
        .password = p->password,
        .ca_pem = tls_uri && !skip_verify ? p->tls.ca_cert_pem : NULL,
        .client_cert_pem = tls_uri ? p->tls.client_cert_pem : NULL,
        .client_key_pem = tls_uri ? p->tls.client_key_pem : NULL,
        .alpn_protos = (tls_uri && p->alpn[0] != NULL) ? p->alpn : NULL,
        .skip_cert_common_name_check = false, /* verified with the chain, or not at all */
        .use_crt_bundle = tls_uri && !skip_verify,
        .lwt_topic = p->lwt_topic,
        .lwt_msg = p->lwt_payload,
        .lwt_qos = params->lwt_qos,
        .lwt_retain = params->lwt_retain,
        .keepalive_s = params->keepalive_s,
        .buffer_size = 0,
    };
    const mcp_idf_mqtt_handlers_t h = {
        .on_connected = on_mqtt_connected,
        .on_disconnected = on_mqtt_disconnected,
        .on_error = on_mqtt_error,
        .on_data = on_mqtt_data,
        .on_subscribe_failed = on_mqtt_subscribe_failed,
        .arg = p,
    };
    rx_discard(p);
    p->elide_len = 0;
    p->mqtt_up = false;
    p->core_up = false;
    p->seen_gen = p->conn_gen;
    p->seen_fails = p->conn_fails;
    p->seen_sub_fails = p->sub_fails;
    err = mcp_idf_mqtt_create(&mc, &h, &p->mqtt);
    /* Start once the station has an IP: started before, esp-mqtt's first connect
     * fails on DNS/TCP and then waits for the core's next reconnect. deliver_events()
     * starts a deferred client when the IP comes. */
    p->mqtt_deferred = err == ESP_OK && !mcp_idf_wifi_is_up();
    if (err == ESP_OK && !p->mqtt_deferred) {
        err = mcp_idf_mqtt_start(p->mqtt);
        if (err != ESP_OK) {
            mcp_idf_mqtt_destroy(p->mqtt);
            p->mqtt = NULL;
        }
    }
    if (err != ESP_OK) {
        free_mqtt_params(p);
        return err;
    }
    p->started = true;
    return ESP_OK;
}

/* The core waited for the PUBACK of "offline" (port_mqtt_flush) before a clean stop. */
static esp_err_t mqtt_teardown(idf_port_t *p, bool clean)
{
    if (p->mqtt == NULL) {
        return ESP_OK;
    }
    p->started = false;
    p->mqtt_deferred = false;
    esp_err_t err = mcp_idf_mqtt_stop(p->mqtt, clean);
    esp_err_t err2 = mcp_idf_mqtt_destroy(p->mqtt);
    p->mqtt = NULL;
    p->mqtt_up = false;
    p->core_up = false;
    rx_discard(p);
    free_mqtt_params(p);
    return err != ESP_OK ? err : err2;
}

static esp_err_t port_mqtt_disconnect(void *ctx)
{
    return mqtt_teardown(ctx, true);
}

static esp_err_t port_mqtt_abort(void *ctx)
{
    return mqtt_teardown(ctx, false);
}

static size_t port_mqtt_outbox_room(void *ctx)
{
    idf_port_t *p = ctx;
    return p->mqtt == NULL ? 0 : mcp_idf_mqtt_outbox_room(p->mqtt);
}

static esp_err_t port_mqtt_flush(void *ctx, uint32_t timeout_ms)
{
    idf_port_t *p = ctx;
    return p->mqtt == NULL ? ESP_OK : mcp_idf_mqtt_flush(p->mqtt, timeout_ms, sleep_ms);
}

static esp_err_t port_mqtt_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos,
                                   bool retain)
{
    idf_port_t *p = ctx;
    if (p->mqtt == NULL) {
        return ESP_FAIL;
    }
    esp_err_t err = mcp_idf_mqtt_publish(p->mqtt, topic, payload, len, qos, retain);
    return err == ESP_ERR_INVALID_ARG ? err : (err == ESP_OK ? ESP_OK : ESP_FAIL);
}

static esp_err_t port_mqtt_subscribe(void *ctx, const char *topic_filter, int qos)
{
    idf_port_t *p = ctx;
    if (p->mqtt == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    return mcp_idf_mqtt_subscribe(p->mqtt, topic_filter, qos);
}

/* ------------------------------------------------------------------ time */

static uint64_t port_now_ms(void *ctx)
{
    (void)ctx;
    return mcp_idf_time_mono_ms();
}

static uint64_t port_epoch_ms(void *ctx)
{
    (void)ctx;
    return mcp_idf_time_wall_ms();
}

/* ------------------------------------------------------------------ persistence */

static esp_err_t port_kv_load(void *ctx, const char *key, void *buf, size_t *len)
{
    (void)ctx;
    esp_err_t err = mcp_idf_nvs_get_blob(key, buf, len);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        return ESP_ERR_NOT_FOUND;
    }
    if (err == ESP_ERR_NVS_INVALID_LENGTH) {
        return ESP_ERR_INVALID_SIZE;
    }
    return err;
}

static esp_err_t port_kv_store(void *ctx, const char *key, const void *data, size_t len)
{
    (void)ctx;
    return mcp_idf_nvs_set_blob(key, data, len);
}

/* ------------------------------------------------------------------ identity and health */

static esp_err_t port_device_id_from_mac(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    return mcp_idf_default_device_id(CONFIG_MCP_BRIDGE_DEVICE_ID_PREFIX, buf, len);
}

static esp_err_t port_mac_string(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    return mcp_idf_mac_string(buf, len);
}

static uint32_t port_free_heap(void *ctx)
{
    (void)ctx;
    return mcp_idf_free_heap();
}

static uint32_t port_min_free_heap(void *ctx)
{
    (void)ctx;
    return mcp_idf_min_free_heap();
}

static esp_err_t port_rssi(void *ctx, int8_t *out)
{
    (void)ctx;
    int rssi = mcp_idf_wifi_rssi();
    if (out == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (rssi == 0) {
        return ESP_ERR_INVALID_STATE;
    }
    *out = (int8_t)(rssi < INT8_MIN ? INT8_MIN : rssi);
    return ESP_OK;
}

/* ------------------------------------------------------------------ device actions */

static void port_restart(void *ctx)
{
    idf_port_t *p = ctx;
    if (p->mqtt != NULL) {
        (void)mcp_idf_mqtt_flush(p->mqtt, IDF_PORT_FLUSH_MS, sleep_ms); /* the response */
    }
    ESP_LOGW(MCP_IDF_TAG, "restarting on request");
    esp_restart();
}

static void ota_task(void *arg)
{
    idf_port_t *p = arg;
    const mcp_idf_ota_cfg_t oc = {
        .url = p->ota_url,
        .sha256_hex = p->ota_sha256,
        .ca_pem = NULL, /* the update server is verified with the certificate bundle */
        .use_crt_bundle = true,
        .skip_cert_common_name_check = false,
        .timeout_ms = 0,
        .progress = NULL,
        .progress_arg = NULL,
    };
    esp_err_t err = mcp_idf_ota_run(&oc);
    if (err == ESP_OK) {
        ESP_LOGI(MCP_IDF_TAG, "OTA image verified and activated, restarting");
        xSemaphoreTakeRecursive(p->lock, portMAX_DELAY);
        if (p->core != NULL) {
            (void)mcp_core_stop(p->core); /* "offline", clean disconnect */
        }
        xSemaphoreGiveRecursive(p->lock);
        esp_restart();
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "OTA update failed: %s", esp_err_to_name(err));
    xSemaphoreTakeRecursive(p->lock, portMAX_DELAY);
    if (p->core != NULL) {
        (void)mcp_core_publish_error(p->core, "ota", ESP_ERR_MCP_OTA, msg, MCP_SEVERITY_ERROR);
    }
    p->ota_running = false;
    xSemaphoreGiveRecursive(p->lock);
    vTaskDelete(NULL);
}

static esp_err_t port_ota_start(void *ctx, const char *url, const char *sha256_hex, const char *version)
{
    idf_port_t *p = ctx;
    if (url == NULL || sha256_hex == NULL || strnlen(url, IDF_PORT_OTA_URL_MAX + 1) > IDF_PORT_OTA_URL_MAX ||
        strnlen(sha256_hex, sizeof(p->ota_sha256)) != sizeof(p->ota_sha256) - 1) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!starts_with(url, "https://")) {
        ESP_LOGE(MCP_IDF_TAG, "OTA refused: only https:// URLs");
        return ESP_ERR_INVALID_ARG;
    }
    if (p->ota_running) {
        return ESP_ERR_INVALID_STATE;
    }
    strcpy(p->ota_url, url);
    strcpy(p->ota_sha256, sha256_hex);
    p->ota_running = true;
    ESP_LOGI(MCP_IDF_TAG, "OTA update to version %s started", version != NULL ? version : "?");
    if (xTaskCreate(ota_task, "mcp_ota", IDF_PORT_OTA_STACK, p, tskIDLE_PRIORITY + 2, NULL) != pdPASS) {
        p->ota_running = false;
        return ESP_ERR_NO_MEM;
    }
    return ESP_OK;
}

/* ------------------------------------------------------------------ logging */

static void port_log(void *ctx, mcp_log_level_t level, const char *fmt, va_list ap)
{
    (void)ctx;
    char line[192];
    vsnprintf(line, sizeof(line), fmt, ap);
    switch (level) {
    case MCP_LOG_ERROR:
        ESP_LOGE(MCP_IDF_TAG, "%s", line);
        break;
    case MCP_LOG_WARN:
        ESP_LOGW(MCP_IDF_TAG, "%s", line);
        break;
    case MCP_LOG_INFO:
        ESP_LOGI(MCP_IDF_TAG, "%s", line);
        break;
    case MCP_LOG_DEBUG:
        ESP_LOGD(MCP_IDF_TAG, "%s", line);
        break;
    case MCP_LOG_VERBOSE:
        ESP_LOGV(MCP_IDF_TAG, "%s", line);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ default port */

esp_err_t mcp_port_default_create(const mcp_bridge_config_t *config, mcp_port_t *out)
{
    if (config == NULL || out == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    esp_log_level_set(MCP_IDF_TAG, (esp_log_level_t)CONFIG_MCP_BRIDGE_LOG_LEVEL);
    esp_err_t err = mcp_idf_nvs_init();
    if (err != ESP_OK) {
        return err;
    }
    idf_port_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return ESP_ERR_NO_MEM;
    }
    p->lock = xSemaphoreCreateRecursiveMutex();
    p->wifi_ssid = dup_str(config->wifi_ssid);
    p->wifi_password = dup_str(config->wifi_password);
    if (p->lock == NULL || (config->wifi_ssid != NULL && p->wifi_ssid == NULL) ||
        (config->wifi_password != NULL && p->wifi_password == NULL)) {
        if (p->lock != NULL) {
            vSemaphoreDelete(p->lock);
        }
        free(p->wifi_ssid);
        free_secret(&p->wifi_password);
        free(p);
        return ESP_ERR_NO_MEM;
    }
    p->watchdog = config->enable_watchdog;
    p->rx_limit = config->max_command_size != 0 ? config->max_command_size : MCP_BRIDGE_DEFAULT_MAX_COMMAND_SIZE;
    if (p->rx_limit > MCP_MAX_COMMAND_SIZE_LIMIT) {
        p->rx_limit = MCP_MAX_COMMAND_SIZE_LIMIT; /* mcp_bridge_init refuses it anyway */
    }
    /* room for three largest items (NOSPLIT items may take up to half the buffer) */
    p->rx_ring = xRingbufferCreate(3 * (sizeof(rx_item_t) + IDF_PORT_TOPIC_MAX + p->rx_limit + 8),
                                   RINGBUF_TYPE_NOSPLIT);
    if (p->rx_ring == NULL) {
        vSemaphoreDelete(p->lock);
        free(p->wifi_ssid);
        free_secret(&p->wifi_password);
        free(p);
        return ESP_ERR_NO_MEM;
    }

    memset(out, 0, sizeof(*out));
    out->ctx = p;
    out->attach = port_attach;
    out->detach = port_detach;
    out->lock = port_lock;
    out->unlock = port_unlock;
    out->actuator_wake = port_actuator_wake;
    out->mqtt_connect = port_mqtt_connect;
    out->mqtt_disconnect = port_mqtt_disconnect;
    out->mqtt_abort = port_mqtt_abort;
    out->mqtt_reconnect = port_mqtt_reconnect;
    out->mqtt_outbox_room = port_mqtt_outbox_room;
    out->mqtt_flush = port_mqtt_flush;
    out->mqtt_publish = port_mqtt_publish;
    out->mqtt_subscribe = port_mqtt_subscribe;
    out->now_ms = port_now_ms;
    out->epoch_ms = port_epoch_ms;
    out->kv_load = port_kv_load;
    out->kv_store = port_kv_store;
    out->device_id_from_mac = port_device_id_from_mac;
    out->mac_string = port_mac_string;
    out->free_heap = port_free_heap;
    out->min_free_heap = port_min_free_heap;
    out->rssi = port_rssi;
    out->restart = port_restart;
    out->boot_count_load = port_boot_count_load;
    out->boot_count_store = port_boot_count_store;
    out->ota_start = port_ota_start;
    out->identify = NULL; /* the application reacts to MCP_EVENT_IDENTIFY */
    out->log = port_log;
    return ESP_OK;
}

void mcp_port_default_destroy(mcp_port_t *port)
{
    if (port == NULL || port->ctx == NULL) {
        return;
    }
    idf_port_t *p = port->ctx;
    if (p->runner != NULL) {
        port_detach(p);
    }
    if (p->mqtt != NULL) {
        port_mqtt_disconnect(p);
    }
    while (p->ota_running) {
        sleep_ms(100); /* the OTA task uses p until it ends (HTTP timeouts bound it) */
    }
    if (p->net_started) {
        mcp_idf_time_stop();
        mcp_idf_wifi_stop();
    }
    vRingbufferDelete(p->rx_ring);
    vSemaphoreDelete(p->lock);
    free(p->wifi_ssid);
    free_secret(&p->wifi_password);
    free(p);
    port->ctx = NULL;
}
