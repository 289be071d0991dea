/*
 * Device commands on B/D/cmd (docs/protocol.md §7): ping, get_metrics,
 * reset_metrics, set_streaming, update_config, set_discovery, identify,
 * restart, ota. Parsed and answered as in mcp_commands.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"
#include "mcp_jread.h"

/* ------------------------------------------------------------------------ */
/* device commands                                                           */
/* ------------------------------------------------------------------------ */

static void reply_ok_empty(mcp_core_t *c, const reply_t *r)
{
    mcp_jw_t w;
    if (mcp_cmd_result_begin(c, &w, r)) {
        mcp_cmd_result_send(c, &w);
    }
}

static void cmd_ping(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    (void)args;
    mcp_jw_t w;
    if (!mcp_cmd_result_begin(c, &w, r)) {
        return;
    }
    mcp_bridge_status_t st;
    mcp_core_get_status(c, &st);
    mcp_jw_kuint(&w, "uptime_s", st.uptime_seconds);
    mcp_cmd_result_send(c, &w);
}

static void cmd_get_metrics(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    (void)args;
    mcp_core_publish_metrics_msg(c);
    if (!r->respond) {
        return;
    }
    mcp_jw_t w;
    mcp_cmd_reply_begin(c, &w, r, true);
    mcp_jw_key(&w, "result");
    mcp_core_write_metrics(c, &w);
    mcp_cmd_reply_send(c, &w);
}

static void cmd_set_streaming(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    const mcp_jr_node_t *sid = mcp_jr_get(args, "sensor");
    const mcp_jr_node_t *en = mcp_jr_get(args, "enable");
    const mcp_jr_node_t *iv = mcp_jr_get(args, "interval_ms");
    if (!mcp_jr_is(sid, MCP_JR_STRING)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "args.sensor must be a sensor id");
        return;
    }
    mcp_sensor_t *s = mcp_core_valid_entity_id(sid->str) ? mcp_core_find_sensor(c, sid->str) : NULL;
    if (!s) {
        mcp_cmd_reply_unknown(c, r, ESP_ERR_MCP_UNKNOWN_SENSOR, "sensor", sid->str);
        return;
    }
    if (!mcp_jr_is_bool(en)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "args.enable must be a boolean");
        return;
    }
    bool enable = mcp_jr_is(en, MCP_JR_TRUE);
    uint32_t interval = mcp_core_sensor_interval(c, s); /* default: the current interval */
    if (iv) {
        esp_err_t e = mcp_cmd_get_int_arg(iv, MCP_MIN_INTERVAL_MS, MCP_MAX_INTERVAL_MS, &interval);
        if (e != ESP_OK && (enable || e == ESP_ERR_MCP_INVALID_VALUE)) {
            mcp_cmd_reply_error(c, r, e, "args.interval_ms must be an integer in %u..%u", (unsigned)MCP_MIN_INTERVAL_MS,
                        (unsigned)MCP_MAX_INTERVAL_MS);
            return;
        }
    }
    mcp_core_set_sensor_streaming(c, s->e.id, enable, interval);
    mcp_jw_t w;
    if (!mcp_cmd_result_begin(c, &w, r)) {
        return;
    }
    mcp_jw_kstr(&w, "sensor", s->e.id);
    mcp_jw_kbool(&w, "enable", s->streaming);
    mcp_jw_kuint(&w, "interval_ms", mcp_core_sensor_interval(c, s));
    mcp_cmd_result_send(c, &w);
}

static void write_config_result(mcp_core_t *c, const reply_t *r)
{
    mcp_jw_t w;
    if (!mcp_cmd_result_begin(c, &w, r)) {
        return;
    }
    mcp_jw_kuint(&w, "publish_interval_ms", c->publish_interval_ms);
    if (c->metrics_interval_ms == UINT32_MAX) {
        mcp_jw_kuint(&w, "metrics_interval_ms", 0);
    } else {
        mcp_jw_kuint(&w, "metrics_interval_ms", c->metrics_interval_ms);
    }
    mcp_jw_key(&w, "qos");
    mcp_jw_obj_begin(&w);
    mcp_jw_kint(&w, "sensor", c->qos.sensor_qos);
    mcp_jw_kint(&w, "actuator", c->qos.actuator_qos);
    mcp_jw_kint(&w, "status", c->qos.status_qos);
    mcp_jw_kint(&w, "error", c->qos.error_qos);
    mcp_jw_obj_end(&w);
    mcp_cmd_result_send(c, &w);
}

static void cmd_update_config(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    uint32_t pub = c->publish_interval_ms;
    uint32_t met = c->metrics_interval_ms;
    bool has_pub = false, has_met = false;
    mcp_qos_config_t q = c->qos;
    const mcp_jr_node_t *item;
    for (item = args ? args->child : NULL; item; item = item->next) {
        const char *k = item->key ? item->key : "";
        esp_err_t e;
        if (strcmp(k, "publish_interval_ms") == 0 || strcmp(k, "metrics_interval_ms") == 0) {
            uint32_t v;
            uint32_t lo = k[0] == 'p' ? MCP_MIN_INTERVAL_MS : MCP_MIN_METRICS_INTERVAL_MS;
            e = mcp_cmd_get_int_arg(item, lo, MCP_MAX_INTERVAL_MS, &v);
            if (e != ESP_OK) {
                mcp_cmd_reply_error(c, r, e, "%s must be an integer in %u..%u", k, (unsigned)lo, (unsigned)MCP_MAX_INTERVAL_MS);
                return;
            }
            if (k[0] == 'p') {
                pub = v;
                has_pub = true;
            } else {
                met = v;
                has_met = true;
            }
        } else if (strcmp(k, "qos") == 0) {
            if (!mcp_jr_is(item, MCP_JR_OBJECT)) {
                mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "qos must be an object");
                return;
            }
            const mcp_jr_node_t *qi;
            for (qi = item ? item->child : NULL; qi; qi = qi->next) {
                const char *qk = qi->key ? qi->key : "";
                uint8_t *dst = NULL;
                if (strcmp(qk, "sensor") == 0) {
                    dst = &q.sensor_qos;
                } else if (strcmp(qk, "actuator") == 0) {
                    dst = &q.actuator_qos;
                } else if (strcmp(qk, "status") == 0) {
                    dst = &q.status_qos;
                } else if (strcmp(qk, "error") == 0) {
                    dst = &q.error_qos;
                } else {
                    mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "qos members: sensor, actuator, status, error");
                    return;
                }
                uint32_t v;
                e = mcp_cmd_get_int_arg(qi, 0, 2, &v);
                if (e != ESP_OK) {
                    mcp_cmd_reply_error(c, r, e, "qos.%s must be 0, 1 or 2", qk);
                    return;
                }
                *dst = (uint8_t)v;
            }
        } else {
            mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE,
                        "unknown or read-only setting (allowed: publish_interval_ms, metrics_interval_ms, qos; "
                        "the discovery mode has set_discovery)");
            return;
        }
    }
    /* everything valid: apply at once */
    uint64_t now = mcp_core_now(c);
    c->qos = q;
    if (has_pub) {
        mcp_core_apply_publish_interval(c, pub, now);
    }
    if (has_met) {
        mcp_core_apply_metrics_interval(c, met, now);
    }
    mcp_core_emit(c, MCP_EVENT_CONFIG_UPDATED, NULL);
    write_config_result(c, r);
}

static void cmd_set_discovery(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    const mcp_jr_node_t *m = mcp_jr_get(args, "mode");
    mcp_discovery_mode_t mode;
    if (!mcp_jr_is(m, MCP_JR_STRING) || !mcp_parse_discovery_mode(m->str, &mode)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "args.mode must be \"mqtt\" or \"integration\"");
        return;
    }
    esp_err_t e = mcp_core_set_discovery_mode(c, mode);
    if (e != ESP_OK) {
        mcp_cmd_reply_error(c, r, ESP_FAIL, "discovery mode switched but not persisted (%s)", mcp_bridge_err_to_name(e));
        return;
    }
    mcp_jw_t w;
    if (mcp_cmd_result_begin(c, &w, r)) {
        mcp_jw_kstr(&w, "mode", mcp_discovery_mode_name(mode));
        mcp_cmd_result_send(c, &w);
    }
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64) {
        return false;
    }
    for (size_t i = 0; i < 64; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) {
            return false;
        }
    }
    return true;
}

static bool valid_https_url(const char *s)
{
    size_t n = strlen(s);
    if (n <= 8 || n > 512 || strncmp(s, "https://", 8) != 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return false;
        }
    }
    return true;
}

static void cmd_ota(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    const mcp_jr_node_t *url = mcp_jr_get(args, "url");
    const mcp_jr_node_t *sha = mcp_jr_get(args, "sha256");
    const mcp_jr_node_t *ver = mcp_jr_get(args, "version");
    if (!mcp_jr_is(url, MCP_JR_STRING) || !valid_https_url(url->str)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "args.url must be an https:// URL");
        return;
    }
    if (!mcp_jr_is(sha, MCP_JR_STRING) || !is_hex64(sha->str)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "args.sha256 must be 64 hex digits");
        return;
    }
    if (!mcp_jr_is(ver, MCP_JR_STRING) || !ver->str[0] || !mcp_valid_utf8(ver->str, 32)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_INVALID_VALUE, "args.version must be a version string (1..32 bytes)");
        return;
    }
    if (!c->port.ota_start) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_UNSUPPORTED_ACTION, "this device has no OTA support");
        return;
    }
    mcp_event_ota_t ev = {.url = url->str, .sha256 = sha->str, .version = ver->str};
    mcp_core_emit(c, MCP_EVENT_OTA_REQUESTED, &ev);
    esp_err_t e = c->port.ota_start(c->port.ctx, url->str, sha->str, ver->str);
    if (e == ESP_ERR_INVALID_STATE || e == ESP_ERR_MCP_BUSY) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_BUSY, "an OTA update is in progress");
        return;
    }
    if (e != ESP_OK) {
        mcp_cmd_reply_error(c, r, ESP_FAIL, "OTA could not start (%s)", mcp_bridge_err_to_name(e));
        return;
    }
    mcp_jw_t w;
    if (mcp_cmd_result_begin(c, &w, r)) {
        mcp_jw_kstr(&w, "state", "started");
        mcp_jw_kstr(&w, "version", ver->str);
        mcp_cmd_result_send(c, &w);
    }
}

static void cmd_reset_metrics(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    (void)args;
    mcp_core_reset_metrics(c);
    reply_ok_empty(c, r);
}

static void cmd_identify(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    (void)args;
    if (c->port.identify) {
        c->port.identify(c->port.ctx);
    }
    mcp_core_emit(c, MCP_EVENT_IDENTIFY, NULL);
    reply_ok_empty(c, r);
}

static void cmd_restart(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args)
{
    (void)args;
    if (!c->port.restart) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_UNSUPPORTED_ACTION, "this device cannot restart remotely");
        return;
    }
    mcp_core_emit(c, MCP_EVENT_RESTART_REQUESTED, NULL);
    c->restart_due = mcp_core_now(c) + MCP_RESTART_DELAY_MS;
    reply_ok_empty(c, r);
}

/* args: the command's "args" object, or NULL */
typedef struct {
    const char *name;
    void (*run)(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *args);
} command_t;

static const command_t COMMANDS[] = {
    {"ping", cmd_ping},
    {"get_metrics", cmd_get_metrics},
    {"reset_metrics", cmd_reset_metrics},
    {"set_streaming", cmd_set_streaming},
    {"update_config", cmd_update_config},
    {"set_discovery", cmd_set_discovery},
    {"identify", cmd_identify},
    {"restart", cmd_restart},
    {"ota", cmd_ota},
};

void mcp_cmd_device(mcp_core_t *c, const mcp_jr_node_t *root, const reply_t *r)
{
    const char *name = mcp_cmd_required_string(c, r, root, "cmd");
    if (!name) {
        return;
    }
    const mcp_jr_node_t *args = mcp_jr_get(root, "args");
    if (args && !mcp_jr_is(args, MCP_JR_OBJECT) && !mcp_jr_is(args, MCP_JR_NULL)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_MALFORMED, "args must be an object");
        return;
    }
    if (args && mcp_jr_is(args, MCP_JR_NULL)) {
        args = NULL;
    }
    const command_t *command = NULL;
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(COMMANDS[i].name, name) == 0) {
            command = &COMMANDS[i];
            break;
        }
    }
    if (!command) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_UNSUPPORTED_ACTION,
                    "unknown command (ping, get_metrics, reset_metrics, set_streaming, update_config, "
                    "set_discovery, identify, restart, ota)");
        return;
    }
    mcp_event_command_t ev = {.request_id = r->id, .cmd = name};
    mcp_core_emit(c, MCP_EVENT_COMMAND_RECEIVED, &ev);
    command->run(c, r, args);
}

