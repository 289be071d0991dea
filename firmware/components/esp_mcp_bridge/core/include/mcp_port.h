/*
 * mcp_port.h — the port interface: everything the portable core needs from
 * the platform, as a table of function pointers plus one opaque context.
 *
 * Implementations: port/esp_idf (esp-mqtt, Wi-Fi, NVS, esp_timer, OTA),
 * port/posix (libmosquitto, pthreads, files) and the fake port of the host
 * unit tests.
 *
 * Contract between port and core
 * ------------------------------
 * - The core has no threads and no locks. The port serialises every call into
 *   the core (mcp_core_*) for one context, e.g. with a recursive mutex that it
 *   exposes through lock/unlock (the singleton API in esp_mcp_bridge.c takes
 *   it around every public call, and callbacks may re-enter the API, hence
 *   recursive).
 * - The port drives the core:
 *     mcp_core_on_connected()     after the broker accepted the connection
 *                                 (the core then subscribes and publishes);
 *     mcp_core_on_disconnected()  when the connection is lost;
 *     mcp_core_on_connect_failed() for each failed attempt (metrics);
 *     mcp_core_on_message()       for every received message or fragment;
 *     mcp_core_tick()             periodically (every 10..100 ms), from a task
 *                                 or timer, while started.
 * - Callbacks of the port are called by the core with the lock held. They must
 *   not call back into the core synchronously (publish must only enqueue).
 * - The application's actuator control callbacks run without the lock: the
 *   core releases it around each one (unlock, callback, lock). So
 *   mcp_core_on_message() and mcp_core_run_actuator_jobs() must be entered
 *   holding the lock exactly once. With actuator_wake the callbacks run on the
 *   port's actuator task, so a slow actuator does not hold up the ticks.
 * - All functions return ESP_OK or an esp_err_t. Optional functions may be
 *   NULL; the core then uses the documented fallback.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_mcp_bridge.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mcp_core;

/** Log levels (same order as esp_log_level_t). */
typedef enum {
    MCP_LOG_NONE = 0,
    MCP_LOG_ERROR,
    MCP_LOG_WARN,
    MCP_LOG_INFO,
    MCP_LOG_DEBUG,
    MCP_LOG_VERBOSE,
} mcp_log_level_t;

/** Everything the port needs to open the MQTT connection. Valid during the call only. */
typedef struct {
    const char *uri;        /**< mqtt://host:port or mqtts://host:port */
    const char *client_id;
    const char *username;   /**< NULL: none */
    const char *password;   /**< NULL: none */
    uint16_t keepalive_s;
    bool clean_session;     /**< always true (no persistent session) */
    /* Last will: B/D/status "offline", retained, status QoS. */
    const char *lwt_topic;
    const char *lwt_payload;
    size_t lwt_len;
    int lwt_qos;
    bool lwt_retain;
    /* TLS (tls->enable_tls or an mqtts:// URI). PEMs by pointer. */
    const mcp_tls_config_t *tls;
} mcp_port_mqtt_params_t;

typedef struct mcp_port {
    void *ctx; /**< passed as first argument to every function */

    /* --- binding (optional) ------------------------------------------- */
    /** Called by mcp_core_create(): from now on the port delivers events to `core`. */
    esp_err_t (*attach)(void *ctx, struct mcp_core *core);
    /** Called by mcp_core_destroy() before the core is freed. */
    void (*detach)(void *ctx);
    /** Serialise access to the core (recursive). NULL: single-threaded use. */
    void (*lock)(void *ctx);
    void (*unlock)(void *ctx);

    /* --- MQTT (required) ---------------------------------------------- */
    /** Start connecting (asynchronous, reconnects by itself until mqtt_disconnect). */
    esp_err_t (*mqtt_connect)(void *ctx, const mcp_port_mqtt_params_t *params);
    /** Clean disconnect (after the core published "offline"); no LWT is sent. */
    esp_err_t (*mqtt_disconnect)(void *ctx);
    /** Queue one message. Must not block for long; ESP_FAIL when not queued. */
    esp_err_t (*mqtt_publish)(void *ctx, const char *topic, const void *payload, size_t len, int qos,
                              bool retain);
    /** Subscribe (topic filter may contain '+'). */
    esp_err_t (*mqtt_subscribe)(void *ctx, const char *topic_filter, int qos);
    /** Free bytes for QoS 1/2 payloads, which the client keeps until their PUBACK; a
     *  QoS 1/2 publish larger than this is refused. The core holds back what does not
     *  fit (mcp_flow.c). NULL: unbounded. */
    size_t (*mqtt_outbox_room)(void *ctx);
    /** Wait (at most timeout_ms) until every QoS 1/2 message is acknowledged;
     *  ESP_ERR_TIMEOUT when not. NULL: nothing is kept, nothing to wait for. */
    esp_err_t (*mqtt_flush)(void *ctx, uint32_t timeout_ms);
    /** Try the broker again now (a client whose own reconnecting is off). The core
     *  calls it with its backoff and jitter while started and not connected
     *  (core/src/mcp_link.c); an error (the client is busy with an attempt) is
     *  harmless. NULL: the port reconnects by itself, and may ask
     *  mcp_core_reconnect_delay_ms() how long to wait. */
    esp_err_t (*mqtt_reconnect)(void *ctx);
    /** Drop the connection without DISCONNECT, so that the broker publishes the last
     *  will (used when "offline" was not acknowledged). NULL: mqtt_disconnect. */
    esp_err_t (*mqtt_abort)(void *ctx);

    /* --- time (required: now_ms) --------------------------------------- */
    /** Monotonic milliseconds (any origin, never goes back). */
    uint64_t (*now_ms)(void *ctx);
    /** Unix epoch milliseconds, 0 while the wall clock is not synchronised (NULL: never). */
    uint64_t (*epoch_ms)(void *ctx);

    /* --- persistence (optional: NULL = nothing persists) --------------- */
    /** Load value of `key` (<= 15 chars, [a-z0-9_]) into buf; *len in: size, out: length.
     *  ESP_ERR_NOT_FOUND when absent, ESP_ERR_INVALID_SIZE when buf is too small. */
    esp_err_t (*kv_load)(void *ctx, const char *key, void *buf, size_t *len);
    /** Store (replace) value of `key` durably. */
    esp_err_t (*kv_store)(void *ctx, const char *key, const void *data, size_t len);

    /* --- safe mode (optional, both or none) ---------------------------- */
    /** Quick boots counted so far, from memory a reset keeps but a power-on or a
     *  deep-sleep wake clears (ESP-IDF: RTC memory); 0 when unknown. Called at create. */
    uint32_t (*boot_count_load)(void *ctx);
    void (*boot_count_store)(void *ctx, uint32_t count);

    /* --- identity and health (optional) -------------------------------- */
    /** Write the default device id (e.g. "esp32-a1b2c3" from the station MAC), NUL-terminated. */
    esp_err_t (*device_id_from_mac)(void *ctx, char *buf, size_t len);
    /** MAC as "a4:cf:12:a1:b2:c3" for capabilities/discovery (NULL or error: omitted). */
    esp_err_t (*mac_string)(void *ctx, char *buf, size_t len);
    uint32_t (*free_heap)(void *ctx);
    uint32_t (*min_free_heap)(void *ctx);
    /** Wi-Fi RSSI in dBm; ESP_ERR_NOT_SUPPORTED / error when unknown (reported as 0). */
    esp_err_t (*rssi)(void *ctx, int8_t *out);

    /* --- actuator task (optional) -------------------------------------- */
    /** An actuator command is queued: make the port's actuator task call
     *  mcp_core_run_actuator_jobs() (holding the lock once). NULL: the core runs
     *  it inside mcp_core_on_message, still with the lock released around the
     *  application's callback. Called with the lock held; must not block. */
    void (*actuator_wake)(void *ctx);

    /* --- device actions (optional) ------------------------------------- */
    /** Reboot. Called by the core after the `restart` response went out. NULL: unsupported. */
    void (*restart)(void *ctx);
    /** Start an OTA update in the background; ESP_ERR_INVALID_STATE when one runs.
     *  NULL: `ota` answers unsupported_action. */
    esp_err_t (*ota_start)(void *ctx, const char *url, const char *sha256_hex, const char *version);
    /** Make the device noticeable for a while (LED blink). NULL: only the event fires. */
    void (*identify)(void *ctx);

    /* --- logging (optional) -------------------------------------------- */
    void (*log)(void *ctx, mcp_log_level_t level, const char *fmt, va_list ap);
} mcp_port_t;

#ifdef __cplusplus
}
#endif
