/*
 * Incoming messages (reassembled by mcp_rx.c): topic classification, command
 * parsing and dispatch, actuator commands, responses. Device commands are in
 * mcp_cmd_device.c; deadlines and repeats in mcp_dedup.c.
 *
 * Parsing: the bounded reader (mcp_jread.h) decodes at most max_command_size
 * bytes in place into the context's fixed node array, so a command allocates
 * nothing. Everything that goes out is written with the bounded JSON writer.
 *
 * Rules (docs/protocol.md, tests/vectors/actuator_set.json, cmd.json):
 * - a command with an `id` gets exactly one response with that id;
 * - a command without `id` gets no response; if it fails, an `error`
 *   message (type "command") reports it so nothing fails silently;
 * - a payload that is not JSON, not an object, has a non-string id, or was
 *   truncated gets a response with "id": null and code "malformed";
 * - a payload over max_command_size is not parsed: "payload_too_large", the
 *   id echoed when the payload starts with {"id":"<id>".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"
#include "mcp_jread.h"


/* ------------------------------------------------------------------------ */
/* responses                                                                 */
/* ------------------------------------------------------------------------ */

void mcp_cmd_reply_begin(mcp_core_t *c, mcp_jw_t *w, const reply_t *r, bool ok)
{
    mcp_jw_init(w, c->out, c->out_cap);
    mcp_jw_obj_begin(w);
    mcp_jw_key(w, "id");
    if (r->id) {
        mcp_jw_str(w, r->id);
    } else {
        mcp_jw_null(w);
    }
    mcp_jw_kbool(w, "ok", ok);
}

void mcp_cmd_reply_send(mcp_core_t *c, mcp_jw_t *w)
{
    mcp_jw_obj_end(w);
    int n = mcp_jw_finish(w);
    if (n < 0) {
        mcp_core_log(c, MCP_LOG_ERROR, "response does not fit the output buffer");
        return;
    }
    mcp_core_pub(c, mcp_core_topic(c, "response"), c->out, (size_t)n, 1, false);
    mcp_dedup_answered(c, c->out, (size_t)n, false); /* a repeat gets this again */
}

/* A successful response {"id":…,"ok":true,"result":{…}}: false (nothing to write) without an id. */
bool mcp_cmd_result_begin(mcp_core_t *c, mcp_jw_t *w, const reply_t *r)
{
    if (!r->respond) {
        return false;
    }
    mcp_cmd_reply_begin(c, w, r, true);
    mcp_jw_key(w, "result");
    mcp_jw_obj_begin(w);
    return true;
}

void mcp_cmd_result_send(mcp_core_t *c, mcp_jw_t *w)
{
    mcp_jw_obj_end(w);
    mcp_cmd_reply_send(c, w);
}

void mcp_cmd_reply_error(mcp_core_t *c, const reply_t *r, esp_err_t code, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *name = mcp_core_error_code_name(code);
    if (code == ESP_ERR_MCP_BUSY) {
        mcp_dedup_answered(c, NULL, 0, true); /* transient: not the answer a repeat gets */
    }
    if (!r->respond) {
        char text[200];
        snprintf(text, sizeof text, "%s: %s", name, msg);
        mcp_core_publish_error(c, "command", code, text, MCP_SEVERITY_WARNING);
        return;
    }
    mcp_jw_t w;
    mcp_cmd_reply_begin(c, &w, r, false);
    mcp_jw_key(&w, "error");
    mcp_jw_obj_begin(&w);
    mcp_jw_kstr(&w, "code", name);
    mcp_jw_kstr(&w, "message", msg);
    mcp_jw_obj_end(&w);
    mcp_cmd_reply_send(c, &w);
}

/* No entity of this kind has the id; its text is quoted only when it is a valid id. */
void mcp_cmd_reply_unknown(mcp_core_t *c, const reply_t *r, esp_err_t code, const char *kind, const char *id)
{
    if (mcp_core_valid_entity_id(id)) {
        mcp_cmd_reply_error(c, r, code, "no %s '%s'", kind, id);
    } else {
        mcp_cmd_reply_error(c, r, code, "no such %s (invalid id)", kind);
    }
}

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A member the command needs as a string; NULL after a malformed reply. */
const char *mcp_cmd_required_string(mcp_core_t *c, const reply_t *r, const mcp_jr_node_t *root, const char *key)
{
    const mcp_jr_node_t *item = mcp_jr_get(root, key);
    if (!item) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_MALFORMED, "%s missing", key);
        return NULL;
    }
    if (!mcp_jr_is(item, MCP_JR_STRING)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_MALFORMED, "%s must be a string", key);
        return NULL;
    }
    return item->str;
}

bool mcp_cmd_scan_id(const char *buf, size_t len, char *out, size_t out_cap)
{
    size_t i = 0;
#define SKIP_WS()                                                                                   \
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) { \
        i++;                                                                                        \
    }
    if (len < 1 || buf[0] != '{') {
        return false;
    }
    i = 1;
    SKIP_WS();
    if (len - i < 4 || memcmp(buf + i, "\"id\"", 4) != 0) {
        return false;
    }
    i += 4;
    SKIP_WS();
    if (i >= len || buf[i] != ':') {
        return false;
    }
    i++;
    SKIP_WS();
    if (i >= len || buf[i] != '"') {
        return false;
    }
    i++;
    size_t start = i;
    while (i < len && buf[i] != '"') {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\\' || ch < 0x20) {
            return false; /* escapes: not worth decoding on this path */
        }
        i++;
    }
    if (i >= len || i == start || i - start >= out_cap || i - start > MCP_REQUEST_ID_MAX_LEN) {
        return false;
    }
    memcpy(out, buf + start, i - start);
    out[i - start] = '\0';
    return mcp_valid_utf8(out, MCP_REQUEST_ID_MAX_LEN); /* never echo bytes that are not UTF-8 */
#undef SKIP_WS
}

bool mcp_cmd_json_uint(const mcp_jr_node_t *item, double max, uint32_t *out)
{
    if (!mcp_jr_is(item, MCP_JR_NUMBER) || !isfinite(item->num) || item->num < 0 ||
        floor(item->num) != item->num || item->num > max) {
        return false;
    }
    *out = (uint32_t)item->num;
    return true;
}

/** Integer-typed member check: invalid_value for a wrong type, out_of_range outside [lo, hi]. */
esp_err_t mcp_cmd_get_int_arg(const mcp_jr_node_t *item, double lo, double hi, uint32_t *out)
{
    if (!mcp_jr_is(item, MCP_JR_NUMBER) || !isfinite(item->num) || floor(item->num) != item->num) {
        return ESP_ERR_MCP_INVALID_VALUE;
    }
    if (item->num < lo || item->num > hi) {
        return ESP_ERR_MCP_OUT_OF_RANGE;
    }
    return mcp_cmd_json_uint(item, hi, out) ? ESP_OK : ESP_ERR_MCP_INVALID_VALUE;
}

void mcp_cmd_value_result(mcp_core_t *c, const reply_t *r, const mcp_value_t *v, bool null_value)
{
    mcp_jw_t w;
    if (!mcp_cmd_result_begin(c, &w, r)) {
        return;
    }
    mcp_jw_key(&w, "value");
    if (null_value) {
        mcp_jw_null(&w);
    } else {
        mcp_core_write_value(&w, v);
    }
    mcp_cmd_result_send(c, &w);
}

esp_err_t mcp_cmd_map_cb_error(esp_err_t e)
{
    switch (e) {
    case ESP_ERR_MCP_INVALID_VALUE:
    case ESP_ERR_INVALID_ARG: return ESP_ERR_MCP_INVALID_VALUE;
    case ESP_ERR_MCP_OUT_OF_RANGE: return ESP_ERR_MCP_OUT_OF_RANGE;
    case ESP_ERR_MCP_UNSUPPORTED_ACTION:
    case ESP_ERR_NOT_SUPPORTED: return ESP_ERR_MCP_UNSUPPORTED_ACTION;
    case ESP_ERR_MCP_BUSY:
    case ESP_ERR_INVALID_STATE: return ESP_ERR_MCP_BUSY;
    case ESP_ERR_MCP_TIMEOUT:
    case ESP_ERR_TIMEOUT: return ESP_ERR_MCP_TIMEOUT;
    case ESP_ERR_MCP_CONFIRMATION_REQUIRED: return ESP_ERR_MCP_CONFIRMATION_REQUIRED;
    default: return ESP_ERR_MCP_ACTUATOR;
    }
}

/* ------------------------------------------------------------------------ */
/* actuator set                                                              */
/* ------------------------------------------------------------------------ */

static esp_err_t parse_write_value(const mcp_actuator_t *a, const mcp_jr_node_t *item, mcp_value_t *v, char *msg, size_t cap)
{
    memset(v, 0, sizeof *v);
    v->type = a->e.vt;
    if (!item) {
        snprintf(msg, cap, "write needs a value");
        return ESP_ERR_MCP_INVALID_VALUE;
    }
    switch (a->e.vt) {
    case MCP_VALUE_NUMBER: {
        if (!mcp_jr_is(item, MCP_JR_NUMBER)) {
            snprintf(msg, cap, "value must be a number");
            return ESP_ERR_MCP_INVALID_VALUE;
        }
        double d = item->num;
        if (!isfinite(d)) {
            snprintf(msg, cap, "value must be a finite number");
            return ESP_ERR_MCP_INVALID_VALUE;
        }
        if (a->step > 0) {
            double base = a->e.has_range ? a->e.min : 0.0;
            double k = (d - base) / a->step;
            if (fabs(k - round(k)) > 1e-6) {
                snprintf(msg, cap, "value %g is not on the step %g", d, (double)a->step);
                return ESP_ERR_MCP_INVALID_VALUE;
            }
        }
        if (a->e.has_range && (d < a->e.min || d > a->e.max)) {
            snprintf(msg, cap, "value %g outside %g..%g", d, (double)a->e.min, (double)a->e.max);
            return ESP_ERR_MCP_OUT_OF_RANGE;
        }
        v->number = d;
        return ESP_OK;
    }
    case MCP_VALUE_BOOLEAN:
        if (!mcp_jr_is_bool(item)) {
            snprintf(msg, cap, "value must be a boolean");
            return ESP_ERR_MCP_INVALID_VALUE;
        }
        v->boolean = mcp_jr_is(item, MCP_JR_TRUE);
        return ESP_OK;
    case MCP_VALUE_STRING:
    case MCP_VALUE_ENUM: {
        if (!mcp_jr_is(item, MCP_JR_STRING)) {
            snprintf(msg, cap, "value must be a string");
            return ESP_ERR_MCP_INVALID_VALUE;
        }
        const char *s = item->str;
        if (!mcp_valid_utf8(s, MCP_VALUE_STRING_MAX)) {
            snprintf(msg, cap, "value must be UTF-8 text of at most %d bytes", MCP_VALUE_STRING_MAX);
            return ESP_ERR_MCP_INVALID_VALUE;
        }
        if (a->e.vt == MCP_VALUE_ENUM && !mcp_option_valid(a->e.options, s)) {
            snprintf(msg, cap, "value is not one of the options of '%s'", a->e.id);
            return ESP_ERR_MCP_INVALID_VALUE;
        }
        strcpy(v->string, s);
        return ESP_OK;
    }
    case MCP_VALUE_TRIGGER: break;
    }
    snprintf(msg, cap, "actuator '%s' takes no value", a->e.id);
    return ESP_ERR_MCP_UNSUPPORTED_ACTION;
}

static void handle_set(mcp_core_t *c, const mcp_jr_node_t *root, const reply_t *r, const char *aid)
{
    const char *act = mcp_cmd_required_string(c, r, root, "action");
    if (!act) {
        return;
    }
    mcp_actuator_t *a = mcp_core_valid_entity_id(aid) ? mcp_core_find_actuator(c, aid) : NULL;
    if (!a) {
        mcp_cmd_reply_unknown(c, r, ESP_ERR_MCP_UNKNOWN_ACTUATOR, "actuator", aid);
        return;
    }
    mcp_action_t action;
    if (!mcp_parse_action(act, &action)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_UNSUPPORTED_ACTION, "unknown action (read, write, toggle, trigger)");
        return;
    }
    if (!(a->actions & (unsigned)action)) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_UNSUPPORTED_ACTION, "actuator '%s' does not support '%s'", a->e.id,
                    mcp_action_name(action));
        return;
    }
    mcp_value_t *v = &c->scratch[MCP_SCRATCH_CMD]; /* not on the task's stack */
    *v = a->value;
    char msg[128];
    if (action == MCP_ACTION_WRITE) {
        esp_err_t e = parse_write_value(a, mcp_jr_get(root, "value"), v, msg, sizeof msg);
        if (e != ESP_OK) {
            mcp_cmd_reply_error(c, r, e, "%s", msg);
            return;
        }
    } else if (action == MCP_ACTION_TOGGLE) {
        v->boolean = !a->value.boolean;
    }
    /* the callback runs without the bridge's lock, queued for the port's actuator
     * task when it has one (mcp_actuate.c) */
    mcp_act_submit(c, a, action, v, r);
}

/* ------------------------------------------------------------------------ */
/* dispatch                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum { TOPIC_OTHER, TOPIC_CMD, TOPIC_SET, TOPIC_HA_STATUS } topic_kind_t;

static topic_kind_t classify(mcp_core_t *c, const char *topic, char *aid, size_t aid_cap)
{
    size_t plen = strlen(c->disc_prefix);
    if (strncmp(topic, c->disc_prefix, plen) == 0 && strcmp(topic + plen, "/status") == 0) {
        return TOPIC_HA_STATUS;
    }
    size_t blen = strlen(c->base), dlen = strlen(c->device_id);
    if (strncmp(topic, c->base, blen) != 0 || topic[blen] != '/' ||
        strncmp(topic + blen + 1, c->device_id, dlen) != 0 || topic[blen + 1 + dlen] != '/') {
        return TOPIC_OTHER;
    }
    const char *rest = topic + blen + dlen + 2;
    if (strcmp(rest, "cmd") == 0) {
        return TOPIC_CMD;
    }
    static const char pre[] = "actuators/";
    if (strncmp(rest, pre, sizeof pre - 1) != 0) {
        return TOPIC_OTHER;
    }
    const char *seg = rest + sizeof pre - 1;
    const char *slash = strchr(seg, '/');
    if (!slash || strcmp(slash, "/set") != 0) {
        return TOPIC_OTHER;
    }
    size_t n = (size_t)(slash - seg);
    if (n >= aid_cap) {
        n = aid_cap - 1; /* too long: invalid anyway, kept truncated and flagged below */
        memcpy(aid, seg, n);
        aid[n] = '\0';
        aid[0] = aid[0] ? '#' : '\0'; /* never a valid id */
        return TOPIC_SET;
    }
    memcpy(aid, seg, n);
    aid[n] = '\0';
    return TOPIC_SET;
}

void mcp_cmd_handle(mcp_core_t *c, const char *topic, char *payload, size_t len, bool oversize, bool truncated)
{
    char aid[MCP_ENTITY_ID_MAX_LEN + 8];
    aid[0] = '\0';
    topic_kind_t kind = classify(c, topic, aid, sizeof aid);
    if (kind == TOPIC_OTHER) {
        return;
    }
    c->metrics.messages_received++;
    if (kind == TOPIC_HA_STATUS) {
        if (!oversize && !truncated && len == 6 && memcmp(payload, "online", 6) == 0) {
            mcp_link_on_ha_birth(c); /* rate-limited */
        }
        return;
    }
    char idbuf[MCP_REQ_ID_MAX + 1];
    reply_t r = {.respond = true, .id = NULL};
    if (oversize) {
        if (mcp_cmd_scan_id(payload, len, idbuf, sizeof idbuf)) {
            r.id = idbuf;
        }
        mcp_cmd_reply_error(c, &r, ESP_ERR_MCP_PAYLOAD_TOO_LARGE, "command exceeds %u bytes", (unsigned)c->max_command_size);
        return;
    }
    if (truncated) {
        mcp_cmd_reply_error(c, &r, ESP_ERR_MCP_MALFORMED, "command arrived incomplete");
        return;
    }
    /* the id, for the one error found before the tree exists (too many values) */
    bool has_scanned_id = mcp_cmd_scan_id(payload, len, idbuf, sizeof idbuf);
    const mcp_jr_node_t *root = NULL;
    mcp_jr_result_t parsed = mcp_jr_parse(payload, len, c->jr_nodes, MCP_CMD_MAX_VALUES, &root);
    if (parsed == MCP_JR_TOO_MANY) {
        r.id = has_scanned_id ? idbuf : NULL;
        mcp_cmd_reply_error(c, &r, ESP_ERR_MCP_PAYLOAD_TOO_LARGE, "command has more than %d JSON values",
                    MCP_CMD_MAX_VALUES);
        return;
    }
    if (parsed != MCP_JR_OK || !mcp_jr_is(root, MCP_JR_OBJECT)) {
        mcp_cmd_reply_error(c, &r, ESP_ERR_MCP_MALFORMED,
                    parsed == MCP_JR_TOO_DEEP ? "command is nested too deeply"
                    : parsed == MCP_JR_OK     ? "command is not a JSON object"
                                              : "command is not valid JSON");
        return;
    }
    const mcp_jr_node_t *id = mcp_jr_get(root, "id");
    if (id && !mcp_jr_is(id, MCP_JR_NULL)) {
        if (!mcp_jr_is(id, MCP_JR_STRING) || !id->str[0] ||
            strlen(id->str) > MCP_REQUEST_ID_MAX_LEN) {
            mcp_cmd_reply_error(c, &r, ESP_ERR_MCP_MALFORMED, "id must be a string of 1..64 bytes");
            return;
        }
        r.id = id->str;
    } else {
        r.respond = false;
    }
    bool rerun = false;
    if (r.respond) {
        mcp_dedup_verdict_t seen = mcp_dedup_check(c, r.id, topic, payload, len);
        if (seen == MCP_DEDUP_ANSWERED || seen == MCP_DEDUP_IS_PENDING) {
            return; /* a repeat: not run again */
        }
        rerun = seen == MCP_DEDUP_RERUN;
    }
    char msg[96];
    esp_err_t late = rerun ? ESP_OK : mcp_dedup_deadline(c, mcp_jr_get(root, "deadline"), msg, sizeof msg);
    if (late != ESP_OK) {
        mcp_cmd_reply_error(c, &r, late, "%s", msg);
    } else if (kind == TOPIC_CMD) {
        mcp_cmd_device(c, root, &r);
    } else {
        handle_set(c, root, &r, aid);
    }
    c->dedup_current = -1;
}
