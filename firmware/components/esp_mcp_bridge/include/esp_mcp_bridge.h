/*
 * esp_mcp_bridge — public API of the ESP32 MCP bridge component.
 *
 * An application initialises the bridge with one mcp_bridge_config_t,
 * registers its sensors and actuators (with metadata), and starts it. The
 * component then does the rest over MQTT, following the wire contract in
 * docs/protocol.md (protocol version 1):
 *
 *   B/D/status                online/offline, retained, offline is the LWT
 *   B/D/capabilities          retained capabilities JSON
 *   B/D/sensors/S             {"value": .., "ts": .., "quality": ..}
 *   B/D/batch                 {"ts": .., "readings": [{"id", "value", "quality"}]}
 *   B/D/actuators/A/state     {"value": .., "ts": ..}, retained
 *   B/D/actuators/A/set       <- {"id", "action", "value"}
 *   B/D/cmd                   <- {"id", "cmd", "args"}
 *   B/D/response              {"id", "ok", "result" | "error": {"code", "message"}}
 *   B/D/metrics               metrics JSON
 *   B/D/error                 {"type", "code", "message", "severity", "ts"}
 *   homeassistant/device/D/config   HA device-based discovery (mode "mqtt")
 *
 * B is the base topic (default "mcp_bridge"), D the device id.
 *
 * Threading: every function here may be called from any task. The bridge
 * serialises access to its state with a recursive lock, so sensor/actuator
 * callbacks and the event handler may call back into this API (for example
 * mcp_bridge_publish_sensor_data() from inside an actuator callback).
 * Sensor read callbacks and the event handler run on the bridge task: keep
 * them short and non-blocking. Actuator control callbacks run on the bridge's
 * actuator task without the lock (one at a time, in order), so a slow
 * actuator holds up neither the readings nor the API; the command is
 * answered when the callback returns.
 *
 * Memory: all registries and message buffers are allocated by
 * mcp_bridge_init(); publishing readings, states, responses, metrics and
 * errors and handling a command do not allocate (a command of at most
 * max_command_size bytes is parsed in place into a fixed array of 48 values).
 *
 * The same header compiles on ESP-IDF (5.x, 6.x) and on a POSIX host (the
 * virtual device and the unit tests); on the host esp_err_t comes from
 * mcp_esp_err.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcp_esp_err.h"
#ifdef ESP_PLATFORM
#include "sdkconfig.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Limits and defaults                                                       */
/* ------------------------------------------------------------------------ */

#define MCP_BRIDGE_PROTOCOL_VERSION 1

/** ESP-IDF log tag of everything the bridge logs: esp_log_level_set(MCP_BRIDGE_LOG_TAG, ESP_LOG_DEBUG)
 *  after mcp_bridge_init() changes its level (Kconfig MCP_BRIDGE_LOG_LEVEL sets it at init). */
#define MCP_BRIDGE_LOG_TAG "mcp_bridge"

#define MCP_BRIDGE_DEFAULT_BASE_TOPIC "mcp_bridge"
#define MCP_BRIDGE_DEFAULT_DISCOVERY_PREFIX "homeassistant"
#define MCP_BRIDGE_DEFAULT_PUBLISH_INTERVAL_MS 10000u
#define MCP_BRIDGE_DEFAULT_METRICS_INTERVAL_MS 60000u
#define MCP_BRIDGE_DEFAULT_COMMAND_TIMEOUT_MS 5000u
#define MCP_BRIDGE_DEFAULT_MAX_COMMAND_SIZE 1024u
#define MCP_BRIDGE_DEFAULT_MAX_SENSORS 16u
#define MCP_BRIDGE_DEFAULT_MAX_ACTUATORS 16u
/** discovery_holdoff_ms: no hold-off, a fresh device publishes its discovery at once. */
#define MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE UINT32_MAX
/** How long a device with no stored discovery mode keeps its MQTT discovery back
 *  after its first connection, waiting for a set_discovery (docs/protocol.md §13.4):
 *  Kconfig MCP_BRIDGE_DISCOVERY_HOLDOFF_MS on ESP-IDF (0 there: no hold-off), else 5 s. */
#if defined(CONFIG_MCP_BRIDGE_DISCOVERY_HOLDOFF_MS) && CONFIG_MCP_BRIDGE_DISCOVERY_HOLDOFF_MS == 0
#define MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE
#elif defined(CONFIG_MCP_BRIDGE_DISCOVERY_HOLDOFF_MS)
#define MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS ((uint32_t)CONFIG_MCP_BRIDGE_DISCOVERY_HOLDOFF_MS)
#else
#define MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS 5000u
#endif
/** Broker reconnect backoff (equal jitter, doubling from min to max): Kconfig
 *  MCP_BRIDGE_MQTT_BACKOFF_MIN_MS / _MAX_MS on ESP-IDF, else 1 s and 60 s. */
#if defined(CONFIG_MCP_BRIDGE_MQTT_BACKOFF_MIN_MS)
#define MCP_BRIDGE_DEFAULT_RECONNECT_MIN_MS ((uint32_t)CONFIG_MCP_BRIDGE_MQTT_BACKOFF_MIN_MS)
#else
#define MCP_BRIDGE_DEFAULT_RECONNECT_MIN_MS 1000u
#endif
#if defined(CONFIG_MCP_BRIDGE_MQTT_BACKOFF_MAX_MS)
#define MCP_BRIDGE_DEFAULT_RECONNECT_MAX_MS ((uint32_t)CONFIG_MCP_BRIDGE_MQTT_BACKOFF_MAX_MS)
#else
#define MCP_BRIDGE_DEFAULT_RECONNECT_MAX_MS 60000u
#endif
/** safe_mode_boots: never enter safe mode. */
#define MCP_BRIDGE_SAFE_MODE_OFF 0xFFFFu
/** Safe mode after this many quick restarts in a row (Kconfig MCP_BRIDGE_SAFE_MODE_BOOTS, 0
 *  there: off), a boot counting as quick until it has been up for the stable time
 *  (Kconfig MCP_BRIDGE_SAFE_MODE_STABLE_S). Needs a port with a boot counter. */
#if defined(CONFIG_MCP_BRIDGE_SAFE_MODE_BOOTS) && CONFIG_MCP_BRIDGE_SAFE_MODE_BOOTS == 0
#define MCP_BRIDGE_DEFAULT_SAFE_MODE_BOOTS MCP_BRIDGE_SAFE_MODE_OFF
#elif defined(CONFIG_MCP_BRIDGE_SAFE_MODE_BOOTS)
#define MCP_BRIDGE_DEFAULT_SAFE_MODE_BOOTS ((uint16_t)CONFIG_MCP_BRIDGE_SAFE_MODE_BOOTS)
#else
#define MCP_BRIDGE_DEFAULT_SAFE_MODE_BOOTS 5u
#endif
#if defined(CONFIG_MCP_BRIDGE_SAFE_MODE_STABLE_S)
#define MCP_BRIDGE_DEFAULT_SAFE_MODE_STABLE_MS ((uint32_t)CONFIG_MCP_BRIDGE_SAFE_MODE_STABLE_S * 1000u)
#else
#define MCP_BRIDGE_DEFAULT_SAFE_MODE_STABLE_MS 60000u
#endif
/** Longest hold-off the configuration accepts (besides MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE). */
#define MCP_BRIDGE_MAX_DISCOVERY_HOLDOFF_MS 600000u

/** Device id: [a-z0-9][a-z0-9_-]{0,31}. Buffer size including NUL. */
#define MCP_DEVICE_ID_MAX_LEN 32
#define MCP_DEVICE_ID_BUF_SIZE (MCP_DEVICE_ID_MAX_LEN + 1)
/** Sensor/actuator id: [a-z0-9_]{1,32}. */
#define MCP_ENTITY_ID_MAX_LEN 32
/** Base topic / discovery prefix: 1..64 chars, no '+', '#', NUL, no leading/trailing '/'. */
#define MCP_TOPIC_PREFIX_MAX_LEN 64
/**
 * Longest string/enum value in bytes (excluding NUL) carried by mcp_value_t.
 * Every sensor and actuator keeps one mcp_value_t, so on small targets lower
 * it (Kconfig MCP_BRIDGE_VALUE_STRING_MAX, or -DMCP_VALUE_STRING_MAX=...).
 * The default lets a string actuator take any value that fits in a command
 * of max_command_size (1024) bytes.
 */
#ifndef MCP_VALUE_STRING_MAX
#if defined(CONFIG_MCP_BRIDGE_VALUE_STRING_MAX)
#define MCP_VALUE_STRING_MAX CONFIG_MCP_BRIDGE_VALUE_STRING_MAX
#else
#define MCP_VALUE_STRING_MAX 1024
#endif
#endif
/** Interval limits of the remote commands (set_streaming, update_config). */
#define MCP_MIN_INTERVAL_MS 100u
#define MCP_MAX_INTERVAL_MS 3600000u
#define MCP_MIN_METRICS_INTERVAL_MS 1000u
/** Smallest interval the local API (config, metadata, streaming) accepts: the
 *  application may go faster than a remote caller (simulations, tests). */
#define MCP_MIN_LOCAL_INTERVAL_MS 10u
/** Request ids: 1..64 bytes. */
#define MCP_REQUEST_ID_MAX_LEN 64
/** Upper bound of max_command_size (a larger configured value is an error). */
#define MCP_MAX_COMMAND_SIZE_LIMIT 16384u

/* ------------------------------------------------------------------------ */
/* Component error codes (esp_err_t)                                         */
/* ------------------------------------------------------------------------ */

/*
 * Besides the standard ESP_ERR_* codes (ESP_ERR_INVALID_ARG for ids or
 * arguments that break the rules, ESP_ERR_INVALID_STATE for calls in the
 * wrong state, ESP_ERR_NOT_FOUND for unknown sensors/actuators,
 * ESP_ERR_NO_MEM), the component uses these. Actuator control callbacks may
 * return the ones marked "(cb)" to choose the error code of the response.
 */
/*
 * Every ESP-IDF error base lies below 0x10000 (0x7000 is ESP_ERR_HTTP_BASE,
 * 0x8000 ESP_ERR_ESP_TLS_BASE, ...): the component's codes sit above them
 * ('M','C' in the upper half), so a driver failing with an IDF code is never
 * read as one of these.
 */
#define ESP_ERR_MCP_BASE 0x4D430000
#define ESP_ERR_MCP_SENSOR_READ (ESP_ERR_MCP_BASE + 1)      /**< a sensor read callback failed (error type "sensor_read") */
#define ESP_ERR_MCP_ACTUATOR (ESP_ERR_MCP_BASE + 2)         /**< an actuator callback failed (error type "actuator") */
#define ESP_ERR_MCP_NOT_CONNECTED (ESP_ERR_MCP_BASE + 3)    /**< publishing while the broker is not connected */
#define ESP_ERR_MCP_PAYLOAD_TOO_LARGE (ESP_ERR_MCP_BASE + 4) /**< message larger than its buffer / limit */
#define ESP_ERR_MCP_MALFORMED (ESP_ERR_MCP_BASE + 5)        /**< incoming message is not valid */
#define ESP_ERR_MCP_REGISTRY_FULL (ESP_ERR_MCP_BASE + 6)    /**< max_sensors / max_actuators reached */
#define ESP_ERR_MCP_DUPLICATE_ID (ESP_ERR_MCP_BASE + 7)     /**< id already registered */
#define ESP_ERR_MCP_INVALID_VALUE (ESP_ERR_MCP_BASE + 8)    /**< (cb) wrong value -> "invalid_value" */
#define ESP_ERR_MCP_OUT_OF_RANGE (ESP_ERR_MCP_BASE + 9)     /**< (cb) value out of range -> "out_of_range" */
#define ESP_ERR_MCP_UNSUPPORTED_ACTION (ESP_ERR_MCP_BASE + 10) /**< (cb) -> "unsupported_action" */
#define ESP_ERR_MCP_BUSY (ESP_ERR_MCP_BASE + 11)            /**< (cb) device busy -> "busy" */
#define ESP_ERR_MCP_TIMEOUT (ESP_ERR_MCP_BASE + 12)         /**< (cb) -> "timeout" */
#define ESP_ERR_MCP_CONFIRMATION_REQUIRED (ESP_ERR_MCP_BASE + 13) /**< (cb) -> "confirmation_required" */
#define ESP_ERR_MCP_CONNECTION (ESP_ERR_MCP_BASE + 14)      /**< broker connection failed (error type "connection") */
#define ESP_ERR_MCP_LOW_HEAP (ESP_ERR_MCP_BASE + 15)        /**< free heap below threshold (error type "low_heap") */
#define ESP_ERR_MCP_OTA (ESP_ERR_MCP_BASE + 16)             /**< OTA update failed (error type "ota") */
#define ESP_ERR_MCP_UNKNOWN_ACTUATOR (ESP_ERR_MCP_BASE + 17) /**< command for an actuator that is not registered */
#define ESP_ERR_MCP_UNKNOWN_SENSOR (ESP_ERR_MCP_BASE + 18)  /**< command for a sensor that is not registered */
#define ESP_ERR_MCP_SAFE_MODE (ESP_ERR_MCP_BASE + 19)       /**< started in safe mode after quick restarts (error type "safe_mode") */
#define ESP_ERR_MCP_EXPIRED (ESP_ERR_MCP_BASE + 20)         /**< a command arrived after its deadline -> "expired" */

/** Static name of an esp_err_t (component codes and the common ESP_ERR_* ones). */
const char *mcp_bridge_err_to_name(esp_err_t err);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/** QoS per message class (0..2). Capabilities, commands and responses use QoS 1. */
typedef struct {
    uint8_t sensor_qos;   /**< readings and batch (default 0) */
    uint8_t actuator_qos; /**< actuator state and set subscription (default 1) */
    uint8_t status_qos;   /**< online/offline and LWT (default 1) */
    uint8_t error_qos;    /**< error messages (default 2) */
} mcp_qos_config_t;

#define MCP_TLS_MAX_ALPN 4

/** TLS settings. PEM strings must stay valid while the bridge runs. */
typedef struct {
    bool enable_tls;              /**< also implied by an mqtts:// or wss:// URI */
    const char *ca_cert_pem;      /**< CA that signed the broker certificate (NULL: platform bundle if any) */
    const char *client_cert_pem;  /**< client certificate for mutual TLS (optional) */
    const char *client_key_pem;   /**< client private key (optional, with client_cert_pem) */
    bool skip_cert_verification;  /**< testing only, never in production: the broker certificate is not checked at all (ESP-IDF: needs CONFIG_MCP_BRIDGE_TLS_SKIP_VERIFY and CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY, else ESP_ERR_NOT_SUPPORTED) */
    const char *alpn_protocols[MCP_TLS_MAX_ALPN]; /**< NULL-terminated list, e.g. {"mqtt", NULL} */
} mcp_tls_config_t;

/** Discovery modes (DESIGN §6). */
typedef enum {
    MCP_DISCOVERY_MQTT = 0,        /**< publish HA device-based MQTT discovery (default, fresh device) */
    MCP_DISCOVERY_INTEGRATION = 1, /**< the custom integration owns the device; no MQTT discovery */
} mcp_discovery_mode_t;

/**
 * The one configuration struct. Zero / NULL fields take the documented
 * defaults, so `mcp_bridge_config_t c = { .mqtt_broker_uri = "mqtt://..." };`
 * is a complete configuration. Strings are copied by mcp_bridge_init() except
 * the TLS PEMs (kept by pointer).
 */
typedef struct {
    /* Wi-Fi station (ESP-IDF port; ignored on the host). NULL ssid: the
     * application brings up the network itself. */
    const char *wifi_ssid;
    const char *wifi_password;

    /* Broker. */
    const char *mqtt_broker_uri;  /**< mqtt://host:1883, mqtts://host:8883 (required) */
    const char *mqtt_username;    /**< NULL: no auth */
    const char *mqtt_password;    /**< at most 1024 bytes (SAS tokens, JWTs) */
    const char *mqtt_client_id;   /**< NULL: the device id */
    uint16_t mqtt_keepalive_s;    /**< 0: 30 s */

    /* Identity and topics. */
    const char *device_id;        /**< NULL: derived from the MAC ("esp32-a1b2c3") */
    const char *base_topic;       /**< NULL: "mcp_bridge" */
    const char *discovery_prefix; /**< NULL: "homeassistant" */
    const char *device_name;      /**< capabilities "name" / HA device name (NULL: device id) */
    const char *manufacturer;     /**< NULL: "Espressif" */
    const char *model;            /**< NULL: "ESP32" */
    const char *fw_version;       /**< NULL: component version */
    const char *hw_version;       /**< NULL: omitted */

    /* Timing. */
    uint32_t sensor_publish_interval_ms; /**< default sensor interval (0: 10000) */
    uint32_t metrics_interval_ms;        /**< metrics publish interval (0: 60000; UINT32_MAX: never) */
    uint32_t command_timeout_ms;         /**< an actuator callback slower than this (or than the actuator's response_time_ms when set) is reported as a warning; its command is still answered with the applied value (0: 5000) */

    uint32_t reconnect_min_ms;           /**< first wait before reconnecting to the broker, doubled per failed attempt, with jitter (0: MCP_BRIDGE_DEFAULT_RECONNECT_MIN_MS) */
    uint32_t reconnect_max_ms;           /**< longest wait between attempts (0: MCP_BRIDGE_DEFAULT_RECONNECT_MAX_MS) */
    uint32_t reboot_after_offline_ms;    /**< restart the chip when started but not connected to the broker for this long (0: never) */

    /* Limits. */
    uint32_t max_command_size; /**< largest accepted command payload in bytes (0: 1024, max 16384) */
    uint16_t max_sensors;      /**< registry size (0: 16) */
    uint16_t max_actuators;    /**< registry size (0: 16) */

    /* Behaviour. */
    bool enable_watchdog;      /**< ESP-IDF: restart the chip when the bridge task makes no progress for the Kconfig watchdog timeout */
    bool enable_device_auth;   /**< require mqtt_username + mqtt_password (init fails without) */
    uint32_t low_heap_threshold; /**< publish a "low_heap" error below this many free bytes (0: off) */
    mcp_discovery_mode_t default_discovery_mode; /**< mode of a fresh device (persisted mode wins) */
    /** A device in mode mqtt whose mode was never stored (no set_discovery, no
     *  mcp_bridge_set_discovery_mode) publishes status and capabilities on its first
     *  connection but keeps its discovery back this long, so that the integration can
     *  take it over without HA creating and deleting MQTT entities; a set_discovery in
     *  the meantime ends the wait (0: MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS, i.e. the
     *  Kconfig setting or 5000; at most 600000; MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE:
     *  publish at once, as before the hold-off). */
    uint32_t discovery_holdoff_ms;
    /** Start in safe mode (the application's sensor and actuator callbacks off, only
     *  connectivity, device commands and OTA) after this many restarts in a row that
     *  each came sooner than safe_mode_stable_ms after boot (0: the Kconfig setting or 5;
     *  MCP_BRIDGE_SAFE_MODE_OFF: never). Needs a port with a boot counter (ESP-IDF). */
    uint16_t safe_mode_boots;
    uint32_t safe_mode_stable_ms; /**< up this long, a boot was not a crash (0: Kconfig or 60000) */

    mcp_qos_config_t qos_config; /**< all zero: sensor 0, actuator 1, status 1, error 2 */
    mcp_tls_config_t tls_config;
} mcp_bridge_config_t;

/* ------------------------------------------------------------------------ */
/* Values, sensors, actuators                                                */
/* ------------------------------------------------------------------------ */

/** Value types of the contract (capabilities "value_type"). */
typedef enum {
    MCP_VALUE_NUMBER = 0,
    MCP_VALUE_BOOLEAN,
    MCP_VALUE_STRING,
    MCP_VALUE_ENUM,
    MCP_VALUE_TRIGGER, /**< actuators only (buttons); carries no value */
} mcp_value_type_t;

/**
 * A value. `type` selects the member that is meaningful: number (finite,
 * never NaN/Inf), boolean, or string (string and enum; NUL-terminated,
 * at most MCP_VALUE_STRING_MAX bytes, valid UTF-8).
 */
typedef struct {
    mcp_value_type_t type;
    double number;
    bool boolean;
    char string[MCP_VALUE_STRING_MAX + 1];
} mcp_value_t;

/** Actuator actions (bit values, combinable in a mask). */
typedef enum {
    MCP_ACTION_READ = 1u << 0,
    MCP_ACTION_WRITE = 1u << 1,
    MCP_ACTION_TOGGLE = 1u << 2,
    MCP_ACTION_TRIGGER = 1u << 3,
} mcp_action_t;

/**
 * Sensor metadata (all optional; a NULL pointer to it means "none").
 * Pointers (description, value_type, enum_options) must stay valid while the
 * sensor is registered (string literals are fine).
 */
typedef struct {
    float min_range;          /**< capabilities "min" (only if min_range < max_range) */
    float max_range;          /**< capabilities "max" */
    float accuracy;           /**< capabilities "accuracy" (0: omitted) */
    const char *description;
    bool calibration_required;
    uint32_t calibration_interval_s;
    /* Extensions of the seed's metadata: */
    const char *name;         /**< human name (NULL: derived from the id) */
    const char *value_type;   /**< "number" (NULL), "boolean", "string", "enum" */
    const char *const *enum_options; /**< NULL-terminated, for "enum" */
    uint32_t interval_ms;     /**< read/publish interval (0: sensor_publish_interval_ms) */
} mcp_sensor_metadata_t;

/**
 * Actuator metadata. value_type is required: "number", "boolean", "string",
 * "enum" or "trigger". supported_actions is a NULL-terminated list of
 * "read", "write", "toggle", "trigger" (NULL: read+write, toggle for boolean,
 * trigger for trigger). Pointers must stay valid while registered.
 * requires_confirmation is advertised in the capabilities only: the
 * confirmation itself is the caller's job (the MCP add-on asks the user).
 */
typedef struct {
    const char *value_type;
    const char *description;
    const char **supported_actions;
    float min_value;          /**< number: used when min_value < max_value */
    float max_value;
    float step;               /**< number: 0 = any */
    const char *const *enum_options; /**< NULL-terminated, for "enum" */
    uint32_t response_time_ms;
    bool requires_confirmation;
    /* Extensions: */
    const char *name;         /**< human name (NULL: derived from the id) */
    const char *unit;         /**< number: unit of measurement (optional) */
} mcp_actuator_metadata_t;

/**
 * Sensor read callback. `value->type` is preset to the sensor's value type;
 * fill the matching member. `*quality` is preset to -1 (omitted); set 0..100
 * to publish a quality. Return ESP_OK, or an error: the bridge then publishes
 * an error message (type "sensor_read") and no reading. A number that is NaN
 * or infinite is treated as a failed read.
 *
 * The bridge calls it at the sensor's interval. In discovery mode "mqtt" each
 * reading is published on B/D/sensors/S. In mode "integration" the readings
 * of all sensors due at the same scheduler pass go out together as one
 * B/D/batch message (split into several only when they exceed the bounded
 * output buffer, 1536 bytes + max_command_size); a reading due alone still
 * goes on B/D/sensors/S, which is smaller than a batch of one.
 */
typedef esp_err_t (*mcp_sensor_read_cb_t)(const char *sensor_id, mcp_value_t *value, int *quality,
                                          void *user_data);

/**
 * Actuator control callback, called for "write", "toggle", "trigger" (and
 * "read" when the callback wants to refresh the value). For write and toggle,
 * `*value` holds the validated new value (toggle: the inverted current one);
 * the callback applies it and may adjust `*value` to what was really applied.
 * For read, `*value` holds the stored value. On ESP_OK the bridge stores
 * `*value`, publishes the state (retained) and answers the command. Return
 * one of the ESP_ERR_MCP_* "(cb)" codes to pick the response error code;
 * other errors answer "internal". A NULL callback makes a state-only actuator.
 */
typedef esp_err_t (*mcp_actuator_control_cb_t)(const char *actuator_id, mcp_action_t action,
                                               mcp_value_t *value, void *user_data);

/**
 * One reading for mcp_bridge_publish_sensor_batch(). The first six members
 * match the seed's positional initialiser
 * `{"temp", "temperature", 23.5, "°C", time_now, 95.0}`.
 */
typedef struct {
    const char *sensor_id;  /**< a registered sensor */
    const char *type;       /**< informational (the registered type wins) */
    double value;           /**< number readings */
    const char *unit;       /**< informational */
    uint64_t timestamp;     /**< epoch ms of the reading (0: now) */
    float quality;          /**< 0..100; negative: omitted */
    /* Extensions for non-number sensors (value_type NUMBER by default): */
    mcp_value_type_t value_type;
    bool bool_value;
    const char *string_value;
} mcp_sensor_reading_t;

/* ------------------------------------------------------------------------ */
/* Metrics and status                                                        */
/* ------------------------------------------------------------------------ */

/** The seed's counters plus RSSI. Counters count since boot or the last reset. */
typedef struct {
    uint32_t messages_sent;
    uint32_t messages_received;
    uint32_t connection_failures;
    uint32_t sensor_read_errors;
    uint32_t actuator_errors;
    uint32_t wifi_reconnections;
    uint32_t mqtt_reconnections;
    uint32_t uptime_seconds;
    uint32_t free_heap;
    uint32_t min_free_heap;
    int8_t rssi;            /**< dBm; 0 when unknown */
} mcp_bridge_metrics_t;

typedef enum {
    MCP_BRIDGE_STATE_UNINITIALIZED = 0,
    MCP_BRIDGE_STATE_INITIALIZED,  /**< init done, not started */
    MCP_BRIDGE_STATE_CONNECTING,   /**< started, broker not (yet / any more) connected */
    MCP_BRIDGE_STATE_CONNECTED,    /**< started and connected */
    MCP_BRIDGE_STATE_STOPPED,      /**< stopped; can be started again */
} mcp_bridge_state_t;

typedef struct {
    mcp_bridge_state_t state;
    bool connected;
    mcp_discovery_mode_t discovery_mode;
    uint16_t sensor_count;
    uint16_t actuator_count;
    uint32_t uptime_seconds;
    bool time_synced;       /**< readings carry "ts" */
    bool discovery_held;    /**< a fresh device still keeps its MQTT discovery back (discovery_holdoff_ms) */
    bool safe_mode;         /**< started in safe mode: sensor and actuator callbacks are not called */
} mcp_bridge_status_t;

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

/** Event base; the handler signature matches ESP-IDF's esp_event_handler_t. */
typedef const char *mcp_event_base_t;
extern const char MCP_BRIDGE_EVENT[];

typedef enum {
    MCP_EVENT_CONNECTED = 0,          /**< data: NULL */
    MCP_EVENT_DISCONNECTED,           /**< data: NULL */
    MCP_EVENT_COMMAND_RECEIVED,       /**< data: mcp_event_command_t* (device command, before it runs) */
    MCP_EVENT_ACTUATOR_SET,           /**< data: mcp_event_actuator_t* (after a successful action) */
    MCP_EVENT_SENSOR_READ,            /**< data: mcp_event_sensor_t* (after a reading was published) */
    MCP_EVENT_ERROR,                  /**< data: mcp_event_error_t* (every published error) */
    MCP_EVENT_DISCOVERY_MODE_CHANGED, /**< data: mcp_discovery_mode_t* */
    MCP_EVENT_CONFIG_UPDATED,         /**< data: NULL (update_config command or API) */
    MCP_EVENT_STREAMING_CHANGED,      /**< data: mcp_event_sensor_t* (value unset) */
    MCP_EVENT_IDENTIFY,               /**< data: NULL (blink an LED, beep, ...) */
    MCP_EVENT_RESTART_REQUESTED,      /**< data: NULL (the port restarts shortly after) */
    MCP_EVENT_OTA_REQUESTED,          /**< data: mcp_event_ota_t* */
    MCP_EVENT_METRICS_RESET,          /**< data: NULL */
} mcp_bridge_event_id_t;

typedef struct {
    const char *request_id; /**< NULL when the command carried no id */
    const char *cmd;        /**< "ping", "get_metrics", ... */
} mcp_event_command_t;

typedef struct {
    const char *actuator_id;
    mcp_action_t action;
    const mcp_value_t *value; /**< value after the action (NULL for trigger) */
    const char *request_id;   /**< NULL without id */
} mcp_event_actuator_t;

typedef struct {
    const char *sensor_id;
    const mcp_value_t *value; /**< NULL for MCP_EVENT_STREAMING_CHANGED */
    bool streaming;
    uint32_t interval_ms;
} mcp_event_sensor_t;

typedef struct {
    const char *error_type; /**< "sensor_read", "actuator", "command", "connection", ... */
    esp_err_t code;
    const char *message;
    uint8_t severity;       /**< 0 debug, 1 info, 2 warning, 3 error, 4 critical */
} mcp_event_error_t;

typedef struct {
    const char *url;
    const char *sha256;
    const char *version;
} mcp_event_ota_t;

typedef void (*mcp_bridge_event_handler_t)(void *handler_args, mcp_event_base_t event_base,
                                           int32_t event_id, void *event_data);

/* Error severities for mcp_bridge_publish_error(). */
#define MCP_SEVERITY_DEBUG 0
#define MCP_SEVERITY_INFO 1
#define MCP_SEVERITY_WARNING 2
#define MCP_SEVERITY_ERROR 3
#define MCP_SEVERITY_CRITICAL 4

/* ------------------------------------------------------------------------ */
/* API                                                                       */
/* ------------------------------------------------------------------------ */

/**
 * Initialise the bridge (allocates everything it needs). Validates the
 * configuration: ESP_ERR_INVALID_ARG for a missing broker URI, a bad device id,
 * base topic or QoS, enable_device_auth without credentials, a limit out of
 * range. ESP_ERR_INVALID_STATE when already initialised.
 */
esp_err_t mcp_bridge_init(const mcp_bridge_config_t *config);

/** Set (or with NULL clear) the one event handler. */
esp_err_t mcp_bridge_register_event_handler(mcp_bridge_event_handler_t handler, void *handler_args);

/**
 * Register a sensor. id: [a-z0-9_]{1,32}, unique (ESP_ERR_INVALID_ARG /
 * ESP_ERR_MCP_DUPLICATE_ID); type: [a-z0-9_]{1,32} (e.g. "temperature");
 * unit: optional, up to 15 bytes. read_cb NULL: the application publishes the
 * readings itself with mcp_bridge_publish_sensor_data(). Registering after
 * start re-publishes the capabilities (and discovery).
 */
esp_err_t mcp_bridge_register_sensor(const char *sensor_id, const char *type, const char *unit,
                                     const mcp_sensor_metadata_t *metadata, mcp_sensor_read_cb_t read_cb,
                                     void *user_data);

/** Register an actuator (id rules as for sensors; metadata required for value_type). */
esp_err_t mcp_bridge_register_actuator(const char *actuator_id, const char *type,
                                       const mcp_actuator_metadata_t *metadata,
                                       mcp_actuator_control_cb_t control_cb, void *user_data);

/** Connect to the broker and start publishing (ESP_ERR_INVALID_STATE if not initialised or running). */
esp_err_t mcp_bridge_start(void);

/** Publish "offline", disconnect cleanly, stop the scheduler. Can be started again. */
esp_err_t mcp_bridge_stop(void);

/** Stop if running and free everything. */
esp_err_t mcp_bridge_deinit(void);

/**
 * Publish a number reading of a registered sensor now. NaN/Inf are refused
 * with ESP_ERR_INVALID_ARG (and an error message is published instead).
 * ESP_ERR_MCP_NOT_CONNECTED when not connected (the value is still kept as the
 * sensor's current value and re-published on HA's birth message).
 */
esp_err_t mcp_bridge_publish_sensor_data(const char *sensor_id, float value);

/** Publish a reading of any value type; quality 0..100 or negative to omit. */
esp_err_t mcp_bridge_publish_sensor_value(const char *sensor_id, const mcp_value_t *value, int quality);

/**
 * Publish several readings as one B/D/batch message (1..max_sensors readings
 * of registered sensors, each valid for its value type; otherwise
 * ESP_ERR_INVALID_ARG and nothing is published). In discovery mode "mqtt" the
 * readings are also published on their sensor topics, because HA's MQTT
 * entities cannot read the batch.
 */
esp_err_t mcp_bridge_publish_sensor_batch(const mcp_sensor_reading_t *readings, size_t count);

/** Store and publish (retained) the state of an actuator, e.g. after a local button press. */
esp_err_t mcp_bridge_publish_actuator_state(const char *actuator_id, const mcp_value_t *value);

/**
 * Streaming: read and publish `sensor_id` every interval_ms
 * (MCP_MIN_LOCAL_INTERVAL_MS..MCP_MAX_INTERVAL_MS) while enabled; disable returns to
 * the sensor's normal interval.
 */
esp_err_t mcp_bridge_set_sensor_streaming(const char *sensor_id, bool enable, uint32_t interval_ms);

/**
 * Runtime configuration update. Applied: sensor_publish_interval_ms,
 * metrics_interval_ms, command_timeout_ms (each left unchanged when 0),
 * qos_config (all four replaced, unless all four are 0: unchanged; the LWT QoS
 * changes at the next connect), low_heap_threshold (always). Everything else
 * (broker, credentials, TLS, ids, limits) needs deinit + init and is ignored
 * here. ESP_ERR_INVALID_ARG (nothing applied) for a QoS above 2 or an interval
 * out of range.
 */
esp_err_t mcp_bridge_update_config(const mcp_bridge_config_t *config);

/**
 * Publish an error message {"type", "code", "message", "severity", "ts"} on
 * B/D/error (error_qos). error_type: [a-z0-9_]{1,32}; severity 0..4.
 */
esp_err_t mcp_bridge_publish_error(const char *error_type, const char *message, uint8_t severity);

/**
 * Before deep sleep or a power cut: send what the bridge still holds back
 * (the connect / Home Assistant birth sequence waits for room in the MQTT
 * outbox, and a fresh device its discovery during discovery_holdoff_ms) and
 * wait until every QoS 1/2 message is acknowledged by the broker.
 * ESP_ERR_TIMEOUT after timeout_ms, ESP_ERR_MCP_NOT_CONNECTED when offline.
 * Blocks the calling task (and the bridge) for up to timeout_ms.
 */
esp_err_t mcp_bridge_flush(uint32_t timeout_ms);

/** Copy the current metrics (uptime, heap and RSSI refreshed). */
esp_err_t mcp_bridge_get_metrics(mcp_bridge_metrics_t *metrics);

/** Zero the counters (not uptime, heap, RSSI). */
esp_err_t mcp_bridge_reset_metrics(void);

/** Current state. */
esp_err_t mcp_bridge_get_status(mcp_bridge_status_t *status);

/** Copy the device id (buffer of at least MCP_DEVICE_ID_BUF_SIZE bytes). */
esp_err_t mcp_bridge_get_device_id(char *buf, size_t buf_len);

/**
 * True when the bridge started in safe mode (safe_mode_boots quick restarts in a
 * row): valid after mcp_bridge_init(). An application should then leave out what
 * may crash it (drivers, its own tasks); the bridge calls no sensor or actuator
 * callback and keeps connectivity and OTA running until the next restart.
 */
bool mcp_bridge_safe_mode(void);

/** Switch the discovery mode (also done remotely by `set_discovery`); persisted. A mode set
 *  this way (e.g. before mcp_bridge_start) counts as stored: no discovery hold-off. */
esp_err_t mcp_bridge_set_discovery_mode(mcp_discovery_mode_t mode);

/* Convenience constructors for mcp_value_t. */
static inline mcp_value_t mcp_value_number(double v)
{
    mcp_value_t x = {MCP_VALUE_NUMBER, v, false, {0}};
    return x;
}
static inline mcp_value_t mcp_value_bool(bool v)
{
    mcp_value_t x = {MCP_VALUE_BOOLEAN, 0.0, v, {0}};
    return x;
}
/** String / enum value; returns a value with an empty string if s is too long. */
mcp_value_t mcp_value_string(mcp_value_type_t type, const char *s);

#ifdef __cplusplus
}
#endif
