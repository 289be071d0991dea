/*
 * mcp_core.h — the portable core as a context object.
 *
 * One mcp_core_t is one device: registry, scheduler, protocol encoder and
 * decoder, command dispatch, metrics, discovery. It holds all its state in
 * the context (no globals), so one process can run many devices. The public
 * singleton API (esp_mcp_bridge.h) wraps one context.
 *
 * The core talks to the outside only through the mcp_port_t given at create
 * time (see mcp_port.h for who calls what, and the locking rule: the core
 * itself does not lock; callers serialise calls per context).
 *
 * Allocation: mcp_core_create() allocates the context, the registries
 * (max_sensors / max_actuators) and the message buffers. Nothing else
 * allocates: commands are parsed in place (core/src/mcp_jread.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_mcp_bridge.h"
#include "mcp_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcp_core mcp_core_t;

/** Component version reported as "o.sw" and as default "fw". */
#define MCP_CORE_VERSION "1.0.0"

/* Lifecycle --------------------------------------------------------------- */

/**
 * Validate `config` (see mcp_bridge_init), copy it, allocate the context and
 * call port->attach(). The port table is copied. Loads the persisted discovery
 * mode through port->kv_load.
 */
esp_err_t mcp_core_create(const mcp_bridge_config_t *config, const mcp_port_t *port, mcp_core_t **out);

/** Detach from the port and free everything (does not publish; call mcp_core_stop first). */
void mcp_core_destroy(mcp_core_t *core);

/** Ask the port to connect (LWT, TLS, auth from the config). ESP_ERR_INVALID_STATE if started. */
esp_err_t mcp_core_start(mcp_core_t *core);

/** Publish "offline" (retained) if connected, then port->mqtt_disconnect(). */
esp_err_t mcp_core_stop(mcp_core_t *core);

/* Events from the port ---------------------------------------------------- */

/** The broker accepted the connection: subscribe, publish status, capabilities, discovery, states. */
void mcp_core_on_connected(mcp_core_t *core);
/** The connection was lost (the port reconnects on its own). */
void mcp_core_on_disconnected(mcp_core_t *core);
/** One connection attempt failed (counts connection_failures). */
void mcp_core_on_connect_failed(mcp_core_t *core);
/** The broker refused a subscription (SUBACK failure code): the core subscribes again after a backoff. */
void mcp_core_on_subscribe_failed(mcp_core_t *core);
/** Wi-Fi came back after a loss (counts wifi_reconnections). */
void mcp_core_on_wifi_reconnected(mcp_core_t *core);

/**
 * A received message or one fragment of it. `topic`/`topic_len` (not
 * necessarily NUL-terminated) are read for the first fragment (offset 0) and
 * ignored for later ones (esp-mqtt sends the topic only once). `total_len` is
 * the whole payload length (0 or < len: len, i.e. unfragmented). Fragments
 * must arrive in order; a gap, an overlap, or a new message before the last
 * one completed makes the incomplete one "malformed". A payload larger than
 * max_command_size is answered with payload_too_large (using the request id
 * when one can be found in its first bytes) without being buffered beyond the
 * limit.
 */
void mcp_core_on_message(mcp_core_t *core, const char *topic, size_t topic_len, const void *data,
                         size_t len, size_t total_len, size_t offset);

/**
 * Run due work at monotonic time now_ms: sensor reads (per-sensor interval or
 * streaming interval), metrics, delayed re-publish of states after HA's birth
 * message, restart after its response. Cheap when nothing is due.
 * In discovery mode integration the readings taken in one call are published
 * as one B/D/batch message (split only when the output buffer is full; a
 * single reading goes on its sensor topic); in mode mqtt each reading is
 * published on its sensor topic.
 * Returns the number of ms until the next scheduled work (capped at 1000).
 */
uint32_t mcp_core_tick(mcp_core_t *core, uint64_t now_ms);

/**
 * Run the queued actuator commands (a port with an actuator task calls it from
 * there after port->actuator_wake, holding the lock once): each control
 * callback runs with the lock released, then its state and response are
 * published. Returns the ms until it has work again (1000: only when woken).
 */
uint32_t mcp_core_run_actuator_jobs(mcp_core_t *core);

/**
 * The wait before reconnect attempt `attempt` (0: the first after a loss): the
 * configured minimum doubled per attempt up to the maximum, half of it fixed
 * and half random (per-device sequence). For ports that reconnect by
 * themselves; call with the lock held.
 */
uint32_t mcp_core_reconnect_delay_ms(mcp_core_t *core, uint32_t attempt);

/* Application API (same semantics as the mcp_bridge_* functions) ---------- */

esp_err_t mcp_core_set_event_handler(mcp_core_t *core, mcp_bridge_event_handler_t handler, void *args);
esp_err_t mcp_core_register_sensor(mcp_core_t *core, const char *sensor_id, const char *type,
                                   const char *unit, const mcp_sensor_metadata_t *metadata,
                                   mcp_sensor_read_cb_t read_cb, void *user_data);
esp_err_t mcp_core_register_actuator(mcp_core_t *core, const char *actuator_id, const char *type,
                                     const mcp_actuator_metadata_t *metadata,
                                     mcp_actuator_control_cb_t control_cb, void *user_data);
/** Set the stored value of an actuator without publishing (initial state before start). */
esp_err_t mcp_core_set_actuator_value(mcp_core_t *core, const char *actuator_id, const mcp_value_t *value);
esp_err_t mcp_core_get_actuator_value(mcp_core_t *core, const char *actuator_id, mcp_value_t *out);
esp_err_t mcp_core_publish_sensor_value(mcp_core_t *core, const char *sensor_id, const mcp_value_t *value,
                                        int quality);
esp_err_t mcp_core_publish_sensor_batch(mcp_core_t *core, const mcp_sensor_reading_t *readings, size_t count);
esp_err_t mcp_core_publish_actuator_state(mcp_core_t *core, const char *actuator_id, const mcp_value_t *value);
esp_err_t mcp_core_set_sensor_streaming(mcp_core_t *core, const char *sensor_id, bool enable,
                                        uint32_t interval_ms);
esp_err_t mcp_core_update_config(mcp_core_t *core, const mcp_bridge_config_t *config);
esp_err_t mcp_core_publish_error(mcp_core_t *core, const char *error_type, esp_err_t code, const char *message,
                                 uint8_t severity);
/** Send what the connect / birth sequence still holds back and wait until every QoS 1/2
 *  message is acknowledged, at most timeout_ms (mcp_bridge_flush). */
esp_err_t mcp_core_flush(mcp_core_t *core, uint32_t timeout_ms);
esp_err_t mcp_core_get_metrics(mcp_core_t *core, mcp_bridge_metrics_t *out);
esp_err_t mcp_core_reset_metrics(mcp_core_t *core);
esp_err_t mcp_core_get_status(mcp_core_t *core, mcp_bridge_status_t *out);
/** The device id (valid as long as the core lives). */
const char *mcp_core_device_id(const mcp_core_t *core);
esp_err_t mcp_core_set_discovery_mode(mcp_core_t *core, mcp_discovery_mode_t mode);
mcp_discovery_mode_t mcp_core_get_discovery_mode(const mcp_core_t *core);
/** Started in safe mode (core/src/mcp_safe.c). */
bool mcp_core_safe_mode(const mcp_core_t *core);

/* Helpers shared with ports and tests -------------------------------------- */

/** Device id rule [a-z0-9][a-z0-9_-]{0,31}. */
bool mcp_core_valid_device_id(const char *id);
/** Sensor/actuator id rule [a-z0-9_]{1,32}. */
bool mcp_core_valid_entity_id(const char *id);
/** Base topic / discovery prefix rule. */
bool mcp_core_valid_topic_prefix(const char *prefix);
/** Contract error code string for an esp_err_t ("malformed", "out_of_range", ... "internal"). */
const char *mcp_core_error_code_name(esp_err_t err);

/* Singleton glue ------------------------------------------------------------ */

/**
 * mcp_bridge_init() with an explicit port (tests, hosts). mcp_bridge_init()
 * itself calls mcp_port_default_create() which the linked port provides.
 */
esp_err_t mcp_bridge_init_with_port(const mcp_bridge_config_t *config, const mcp_port_t *port);
/** The context behind the singleton API (NULL before init). */
mcp_core_t *mcp_bridge_core(void);

/**
 * Provided by the platform port linked into the application (port/esp_idf on
 * the ESP32, port/posix on hosts): build the port for the singleton from the
 * configuration. The port starts driving the core (events, tick) once
 * attach() is called and the core is started.
 */
esp_err_t mcp_port_default_create(const mcp_bridge_config_t *config, mcp_port_t *out);
/** Release what mcp_port_default_create() allocated (after mcp_core_destroy). */
void mcp_port_default_destroy(mcp_port_t *port);

#ifdef __cplusplus
}
#endif
