/* Internal state of one core context (not part of the public API). */
#pragma once

#include <stdarg.h>

#include "mcp_core.h"
#include "mcp_jread.h"
#include "mcp_json.h"

#define MCP_TOPIC_MAX 192
/* JSON values one command may hold (a set_streaming command has 7, update_config with qos ~12) */
#define MCP_CMD_MAX_VALUES 48
#define MCP_NAME_MAX 48
#define MCP_UNIT_MAX 15
#define MCP_STR_FIELD_MAX 64
#define MCP_REQ_ID_MAX 64
#define MCP_PASSWORD_MAX 1024
#define MCP_OUT_BUF_SIZE 1536
#define MCP_REPUBLISH_DELAY_MS 1000u
#define MCP_RESTART_DELAY_MS 300u
#define MCP_FLOW_OFFLINE_ACK_MS 3000u /* wait for the PUBACK of "offline" before disconnecting */
#define MCP_FLOW_POLL_MS 20u /* tick period while the sync waits for outbox room */
#define MCP_BIRTH_MIN_INTERVAL_MS 10000u /* HA births closer together are coalesced (mcp_link.c) */

/* Values too large for a task's stack (MCP_VALUE_STRING_MAX up to 4096), one per
 * user so that a callback re-entering the API does not overwrite its caller's. */
enum { MCP_SCRATCH_CMD, MCP_SCRATCH_READ, MCP_SCRATCH_BATCH, MCP_SCRATCH_COUNT };

/* The resumable connect / birth sequence (mcp_flow.c), after "online". */
typedef enum { MCP_SYNC_IDLE, MCP_SYNC_CAPS, MCP_SYNC_DISCOVERY, MCP_SYNC_STATES } mcp_sync_step_t;

typedef struct {
    mcp_sync_step_t step;
    uint16_t index; /* next actuator in MCP_SYNC_STATES */
    size_t need;    /* outbox room the waiting item needs (0: try) */
    uint64_t since; /* when the current item started waiting */
} mcp_sync_t;

/* What a sensor and an actuator both describe (set at registration). */
typedef struct {
    char id[MCP_ENTITY_ID_MAX_LEN + 1];
    char type[MCP_ENTITY_ID_MAX_LEN + 1];
    char unit[MCP_UNIT_MAX + 1];
    char name[MCP_NAME_MAX + 1];
    mcp_value_type_t vt;
    const char *description;
    const char *const *options;
    float min, max;
    bool has_range;
} mcp_entity_t;

typedef struct {
    mcp_entity_t e;
    float accuracy;
    uint32_t calibration_interval_s;
    uint32_t interval_ms; /* 0: config default */
    uint32_t stream_interval_ms;
    mcp_sensor_read_cb_t cb;
    void *ud;
    uint64_t next_due;
    bool calibration_required;
    bool streaming;
    bool batch_pending; /* read in this scheduler pass, not yet published (mode integration) */
    bool has_value;
    int last_quality;
    mcp_value_t last;
} mcp_sensor_t;

/* A command for an actuator with a callback, waiting for or in the callback (mcp_actuate.c). */
typedef struct {
    uint16_t actuator; /* index in the registry */
    int dedup_slot;    /* where its answer is remembered (mcp_dedup.c), -1: nowhere */
    uint32_t dedup_gen;
    mcp_action_t action;
    bool respond;      /* publish a response (the command had an id) */
    bool has_id;
    char id[MCP_REQ_ID_MAX + 1];
    mcp_value_t value; /* the value to write; after the callback the value it applied */
} mcp_act_job_t;

#define MCP_ACT_QUEUE_LEN 4 /* commands queued for the actuator task; more: busy */

/* Remembered commands (mcp_dedup.c). */
#define MCP_DEDUP_SLOTS 8
#define MCP_DEDUP_ANSWER_MAX 320
#define MCP_MAX_TS_MS 253402300799999.0 /* the last millisecond of the year 9999 */
typedef enum { MCP_DEDUP_EMPTY, MCP_DEDUP_PENDING, MCP_DEDUP_DONE, MCP_DEDUP_LONG } mcp_dedup_state_t;
typedef struct {
    uint8_t state;  /* mcp_dedup_state_t */
    uint16_t len;   /* of answer */
    uint32_t hash;  /* topic and payload */
    uint32_t gen;   /* +1 on every reuse of the slot */
    char id[MCP_REQ_ID_MAX + 1];
    char answer[MCP_DEDUP_ANSWER_MAX];
} mcp_dedup_slot_t;
typedef enum { MCP_DEDUP_NEW, MCP_DEDUP_IS_PENDING, MCP_DEDUP_ANSWERED, MCP_DEDUP_RERUN } mcp_dedup_verdict_t;

typedef struct {
    mcp_entity_t e;
    float step;
    uint32_t response_time_ms;
    bool requires_confirmation;
    unsigned actions; /* mcp_action_t mask */
    mcp_actuator_control_cb_t cb;
    void *ud;
    bool has_value;
    mcp_value_t value;
} mcp_actuator_t;

struct mcp_core {
    mcp_port_t port;

    /* configuration (strings copied) */
    char uri[256];
    char username[128];
    char password[MCP_PASSWORD_MAX + 1]; /* tokens (Azure SAS, JWT) are longer than 127 */
    char client_id[MCP_STR_FIELD_MAX + 1];
    char device_id[MCP_DEVICE_ID_BUF_SIZE];
    char base[MCP_TOPIC_PREFIX_MAX_LEN + 1];
    char disc_prefix[MCP_TOPIC_PREFIX_MAX_LEN + 1];
    char name[MCP_STR_FIELD_MAX + 1];
    char manufacturer[MCP_STR_FIELD_MAX + 1];
    char model[MCP_STR_FIELD_MAX + 1];
    char fw[MCP_STR_FIELD_MAX + 1];
    char hw[MCP_STR_FIELD_MAX + 1];
    char mac[24];
    uint16_t keepalive_s;
    uint32_t publish_interval_ms;
    uint32_t metrics_interval_ms;
    uint32_t command_timeout_ms;
    uint32_t max_command_size;
    uint32_t low_heap_threshold;
    mcp_qos_config_t qos;
    mcp_tls_config_t tls;

    /* registries */
    mcp_sensor_t *sensors;
    uint16_t n_sensors, max_sensors;
    mcp_actuator_t *actuators;
    uint16_t n_actuators, max_actuators;

    mcp_bridge_event_handler_t handler;
    void *handler_args;

    /* state */
    bool started;
    bool connected;
    bool ever_connected;
    bool cleared_discovery_once;
    mcp_discovery_mode_t mode;
    bool mode_persisted; /* the key-value store holds `mode` */
    /* A discovery message of this device may be retained on the broker: it published
     * one this boot, or it booted with a stored mode (it may have published one before).
     * Without it there is nothing to clear (mcp_core_clear_discovery). */
    bool discovery_maybe_retained;
    uint64_t boot_ms;
    uint64_t now_ms; /* last known monotonic time */
    uint64_t next_metrics_due;
    uint64_t republish_due; /* 0: none */
    uint64_t restart_due;   /* 0: none */
    uint64_t next_heap_check;
    bool low_heap_alerted;
    mcp_bridge_metrics_t metrics;
    mcp_sync_t sync;
    uint64_t resub_due; /* 0: subscriptions are out */
    uint32_t resub_backoff_ms;
    /* connection policy (mcp_link.c) */
    uint32_t reconnect_min_ms, reconnect_max_ms;
    uint32_t reboot_after_offline_ms;
    uint32_t jitter_state;
    uint32_t reconnect_attempt;
    uint64_t reconnect_due;  /* 0: none (connected, or the port reconnects itself) */
    uint64_t offline_since;  /* 0: connected or not started */
    bool offline_reboot_done;
    uint64_t last_birth_ms;  /* 0: no birth yet */
    bool birth_pending;
    /* safe mode (mcp_safe.c) */
    bool safe_mode;
    bool boot_marked_good; /* up for safe_stable_ms (or no counter): the counter is cleared */
    uint32_t quick_boots;
    uint32_t safe_stable_ms;
    /* discovery hold-off of a device with no stored mode (mcp_flow.c) */
    uint32_t holdoff_ms;
    bool holdoff_pending;   /* the discovery waits for a set_discovery or holdoff_until */
    uint64_t holdoff_until; /* 0: not started (it starts at the first connection) */

    /* remembered commands (mcp_dedup.c), allocated once */
    mcp_dedup_slot_t *dedup;
    uint8_t dedup_next;
    int dedup_current; /* slot of the command being answered, -1: none */
    /* actuator commands (mcp_actuate.c): a FIFO of jobs, allocated once */
    mcp_act_job_t *jobs;
    uint8_t job_head, job_count;
    bool job_running;

    /* receive reassembly */
    char *rx_buf;      /* max_command_size + 1 */
    mcp_jr_node_t jr_nodes[MCP_CMD_MAX_VALUES]; /* the parsed command, decoded in rx_buf */
    size_t rx_len;     /* bytes stored */
    size_t rx_seen;    /* bytes received of the current message */
    size_t rx_total;
    bool rx_active;
    bool rx_oversize;
    bool rx_topic_bad;
    char rx_topic[MCP_TOPIC_MAX];

    /* output */
    char topic[MCP_TOPIC_MAX];
    char *out;   /* responses, readings, states, errors, metrics */
    size_t out_cap;
    char *big;   /* capabilities / discovery */
    size_t big_cap;
    mcp_value_t *scratch; /* MCP_SCRATCH_COUNT values */
};

/* mcp_core.c, mcp_util.c, mcp_registry.c, mcp_readings.c */
void mcp_core_log(mcp_core_t *c, mcp_log_level_t lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
uint64_t mcp_core_now(mcp_core_t *c);
esp_err_t mcp_core_pub(mcp_core_t *c, const char *topic, const char *payload, size_t len, int qos, bool retain);
const char *mcp_core_topic(mcp_core_t *c, const char *suffix);
/** Unix epoch ms, 0 while the clock is not set. */
uint64_t mcp_core_epoch_now(mcp_core_t *c);
/** Copy src (NULL: dflt, NULL: "") into dst; false when it does not fit. */
bool mcp_core_copy_str(char *dst, size_t cap, const char *src, const char *dflt);
/** A display name from an id ("soil_moisture" -> "Soil moisture"). */
void mcp_core_name_from_id(char *dst, size_t cap, const char *id);
/** Capabilities, and in mode mqtt the discovery config (not during the hold-off). */
void mcp_core_publish_descriptions(mcp_core_t *c);
/** "ts" (epoch ms) once the clock is set; nothing before. */
void mcp_core_write_ts(mcp_core_t *c, mcp_jw_t *w);
/** Finish the message in w and publish it. */
esp_err_t mcp_core_pub_jw(mcp_core_t *c, const char *topic, mcp_jw_t *w, int qos, bool retain);
/** An interval the local API accepts (MCP_MIN_LOCAL_INTERVAL_MS..MCP_MAX_INTERVAL_MS). */
bool mcp_core_local_interval_ok(uint32_t iv);
const char *mcp_core_device_topic(const mcp_core_t *c, char *dst, size_t cap, const char *a, const char *b,
                                  const char *tail);
void mcp_core_emit(mcp_core_t *c, mcp_bridge_event_id_t id, void *data);
mcp_sensor_t *mcp_core_find_sensor(mcp_core_t *c, const char *id);
mcp_actuator_t *mcp_core_find_actuator(mcp_core_t *c, const char *id);
void mcp_core_write_value(mcp_jw_t *w, const mcp_value_t *v);
esp_err_t mcp_core_publish_state_of(mcp_core_t *c, mcp_actuator_t *a);
esp_err_t mcp_core_publish_metrics_msg(mcp_core_t *c);
void mcp_core_write_metrics(mcp_core_t *c, mcp_jw_t *w);
esp_err_t mcp_core_publish_capabilities(mcp_core_t *c);
esp_err_t mcp_core_publish_discovery(mcp_core_t *c);
esp_err_t mcp_core_clear_discovery(mcp_core_t *c);
void mcp_core_republish_all(mcp_core_t *c);
/** Readings again a moment after a discovery message (HA subscribes after a debounce). */
void mcp_core_readings_after_discovery(mcp_core_t *c, uint64_t now);
const char *mcp_value_type_name(mcp_value_type_t t);
bool mcp_parse_value_type(const char *s, mcp_value_type_t *out);
const char *mcp_action_name(mcp_action_t a);
bool mcp_parse_action(const char *s, mcp_action_t *out);
const char *mcp_discovery_mode_name(mcp_discovery_mode_t mode);
bool mcp_parse_discovery_mode(const char *s, mcp_discovery_mode_t *out);
/** s is valid UTF-8 of at most max bytes. */
bool mcp_valid_utf8(const char *s, size_t max);
bool mcp_option_valid(const char *const *options, const char *s);
uint32_t mcp_core_sensor_interval(const mcp_core_t *c, const mcp_sensor_t *s);
/** Set the default publish interval; a reading due later than one new interval from now comes sooner. */
void mcp_core_apply_publish_interval(mcp_core_t *c, uint32_t interval_ms, uint64_t now);
/** Set the metrics interval (UINT32_MAX: off); the next metrics message is one interval from now. */
void mcp_core_apply_metrics_interval(mcp_core_t *c, uint32_t interval_ms, uint64_t now);

/* mcp_readings.c */
/** The scheduler's part of mcp_core_tick (connected): stored readings re-published, sensors
 *  read when due, batches sent; lowers *next; false when the connection went meanwhile. */
bool mcp_readings_tick(mcp_core_t *c, uint64_t now, uint64_t *next);
/** Publish a sensor's stored reading on B/D/sensors/S. */
esp_err_t mcp_core_publish_reading(mcp_core_t *c, mcp_sensor_t *s);

/* mcp_discovery.c */
int mcp_discovery_build(mcp_core_t *c, char *buf, size_t cap);
const char *mcp_core_discovery_topic(mcp_core_t *c, char *buf, size_t cap);
/* mcp_flow.c */
bool mcp_flow_room_for(mcp_core_t *c, size_t len);
void mcp_flow_on_connected(mcp_core_t *c);
void mcp_flow_subscribe_all(mcp_core_t *c);
void mcp_flow_start_sync(mcp_core_t *c);
void mcp_flow_pump(mcp_core_t *c);
bool mcp_flow_sync_running(const mcp_core_t *c);
esp_err_t mcp_flow_say_offline(mcp_core_t *c);
/** Arm the hold-off at create time (after the stored mode was loaded). */
void mcp_flow_holdoff_init(mcp_core_t *c, uint32_t holdoff_ms);
/** The device keeps its discovery back (a fresh device in its hold-off). */
bool mcp_flow_discovery_held(const mcp_core_t *c);
/** On every connection: the first one starts the hold-off timer. */
void mcp_flow_holdoff_on_connected(mcp_core_t *c);
/** End the hold-off; with publish, send the discovery now (mode mqtt, connected). */
void mcp_flow_holdoff_end(mcp_core_t *c, bool publish);
/** Expire the hold-off at now; lowers *next to its deadline. */
void mcp_flow_holdoff_tick(mcp_core_t *c, uint64_t now, uint64_t *next);
int mcp_capabilities_build(mcp_core_t *c, char *buf, size_t cap);

/* mcp_commands.c */
typedef struct {
    bool respond;   /* publish a response (false: command without id) */
    const char *id; /* NULL: "id": null */
} reply_t;
void mcp_cmd_reply_error(mcp_core_t *c, const reply_t *r, esp_err_t code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/** {"id": …, "ok": ok, then the caller's members; mcp_cmd_reply_send closes and publishes it. */
void mcp_cmd_reply_begin(mcp_core_t *c, mcp_jw_t *w, const reply_t *r, bool ok);
void mcp_cmd_reply_send(mcp_core_t *c, mcp_jw_t *w);
bool mcp_cmd_result_begin(mcp_core_t *c, mcp_jw_t *w, const reply_t *r);
void mcp_cmd_result_send(mcp_core_t *c, mcp_jw_t *w);
/** {"value": v} (or null) as the result of an actuator action. */
void mcp_cmd_value_result(mcp_core_t *c, const reply_t *r, const mcp_value_t *v, bool null_value);
/** The contract code for what an actuator callback returned. */
esp_err_t mcp_cmd_map_cb_error(esp_err_t e);
/** unknown_actuator / unknown_sensor, quoting the id only when it is a valid id. */
void mcp_cmd_reply_unknown(mcp_core_t *c, const reply_t *r, esp_err_t code, const char *kind, const char *id);
/** A member the command needs as a string; NULL after a malformed reply. */
const char *mcp_cmd_required_string(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *root, const char *key);
bool mcp_cmd_json_uint(const mcp_jr_node_t *item, double max, uint32_t *out);
/** Integer member: invalid_value for a wrong type, out_of_range outside [lo, hi]. */
esp_err_t mcp_cmd_get_int_arg(const mcp_jr_node_t *item, double lo, double hi, uint32_t *out);
/** A device command on B/D/cmd (mcp_cmd_device.c). */
void mcp_cmd_device(mcp_core_t *c, const mcp_jr_node_t *root, const reply_t *r);

/* mcp_link.c */
void mcp_link_init(mcp_core_t *c, const mcp_bridge_config_t *cfg);
void mcp_link_on_started(mcp_core_t *c, uint64_t now);
void mcp_link_on_connected(mcp_core_t *c);
void mcp_link_on_disconnected(mcp_core_t *c, uint64_t now);
/** Wi-Fi came back: the next broker attempt soon, whatever the backoff had reached. */
void mcp_link_on_network_up(mcp_core_t *c, uint64_t now);
/** While started and offline: reconnect attempts and the offline reboot; lowers *next. */
void mcp_link_tick(mcp_core_t *c, uint64_t now, uint64_t *next);
/** homeassistant/status "online": re-publish now, or once at the end of the rate-limit interval. */
void mcp_link_on_ha_birth(mcp_core_t *c);
void mcp_link_birth_tick(mcp_core_t *c, uint64_t now, uint64_t *next);

/* mcp_safe.c */
void mcp_safe_init(mcp_core_t *c, const mcp_bridge_config_t *cfg);
void mcp_safe_tick(mcp_core_t *c, uint64_t now, uint64_t *next);
void mcp_safe_on_connected(mcp_core_t *c);

/* mcp_dedup.c */
/** A command with an id: new (remembered as running), a repeat (answered again, or still
 *  running: nothing to do), or a repeat to run again (its answer was too long to keep). */
mcp_dedup_verdict_t mcp_dedup_check(mcp_core_t *c, const char *id, const char *topic, const char *payload,
                                    size_t len);
/** The response just published is the answer of the current command (busy: not kept). */
void mcp_dedup_answered(mcp_core_t *c, const char *answer, size_t len, bool busy);
/** An actuator job takes the current command's slot along, and brings it back to answer. */
void mcp_dedup_detach(mcp_core_t *c, int *slot, uint32_t *gen);
void mcp_dedup_attach(mcp_core_t *c, int slot, uint32_t gen);
/** ESP_OK: no deadline or in time (or no clock); ESP_ERR_MCP_EXPIRED; ESP_ERR_MCP_MALFORMED. */
esp_err_t mcp_dedup_deadline(mcp_core_t *c, const mcp_jr_node_t *deadline, char *msg, size_t cap);

/* mcp_actuate.c */
/** A validated actuator command: done at once without a callback, else queued and run
 *  (by the port's actuator task, or right away) with the lock released around the callback. */
void mcp_act_submit(mcp_core_t *c, mcp_actuator_t *a, mcp_action_t action, const mcp_value_t *v, const reply_t *r);

void mcp_cmd_handle(mcp_core_t *c, const char *topic, char *payload, size_t len, bool oversize,
                    bool truncated);
/** Find "id":"..." in raw (possibly broken) JSON; true when found and valid. */
bool mcp_cmd_scan_id(const char *buf, size_t len, char *out, size_t out_cap);
