/*
 * Commands that must not run late or twice (docs/protocol.md §8.1).
 *
 * Deadline: a command may carry "deadline" (Unix epoch ms). A device whose
 * clock is synchronised answers a command that arrives after it with
 * `expired` and does nothing; without a synchronised clock it cannot judge
 * and runs the command.
 *
 * Repeats: the device remembers its last MCP_DEDUP_SLOTS commands with an id
 * (allocated with the core). A command whose id and content (topic and
 * payload, hashed) equal a remembered one is a repeat (a sender that retried
 * after a lost response): it is answered with the first answer, published
 * again, and not run. A repeat that arrives while the first one still runs
 * (an actuator job) gets nothing now: the first answer is on its way. A
 * `busy` answer is not kept (the repeat is tried for real). An answer longer
 * than MCP_DEDUP_ANSWER_MAX is not kept either; those come only from commands
 * that can run twice without harm (reads, writes of long strings, ping,
 * get_metrics: toggle, trigger, restart, ota and reset_metrics answer in a
 * few bytes), so such a repeat runs again, without its deadline. The same id
 * with other content is a new command.
 */
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"

static uint32_t content_hash(const char *topic, const char *payload, size_t len)
{
    uint32_t h = 2166136261u;
    for (const char *p = topic; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    h = (h ^ 0xffu) * 16777619u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)payload[i]) * 16777619u;
    }
    return h;
}

mcp_dedup_verdict_t mcp_dedup_check(mcp_core_t *c, const char *id, const char *topic, const char *payload,
                                    size_t len)
{
    c->dedup_current = -1;
    if (!c->dedup) {
        return MCP_DEDUP_NEW;
    }
    uint32_t h = content_hash(topic, payload, len);
    for (int i = 0; i < MCP_DEDUP_SLOTS; i++) {
        mcp_dedup_slot_t *s = &c->dedup[i];
        if (s->state == MCP_DEDUP_EMPTY || s->hash != h || strcmp(s->id, id) != 0) {
            continue;
        }
        if (s->state == MCP_DEDUP_PENDING) {
            return MCP_DEDUP_IS_PENDING;
        }
        if (s->state == MCP_DEDUP_DONE) {
            mcp_core_log(c, MCP_LOG_INFO, "command %s repeated: first answer again", id);
            mcp_core_pub(c, mcp_core_topic(c, "response"), s->answer, s->len, 1, false);
            return MCP_DEDUP_ANSWERED;
        }
        /* MCP_DEDUP_LONG: run again (harmless, see above) */
        s->state = MCP_DEDUP_PENDING;
        c->dedup_current = i;
        return MCP_DEDUP_RERUN;
    }
    int i = c->dedup_next;
    c->dedup_next = (uint8_t)((c->dedup_next + 1) % MCP_DEDUP_SLOTS);
    mcp_dedup_slot_t *s = &c->dedup[i];
    s->state = MCP_DEDUP_PENDING;
    s->gen++;
    s->hash = h;
    s->len = 0;
    strncpy(s->id, id, sizeof s->id - 1);
    s->id[sizeof s->id - 1] = '\0';
    c->dedup_current = i;
    return MCP_DEDUP_NEW;
}

void mcp_dedup_detach(mcp_core_t *c, int *slot, uint32_t *gen)
{
    *slot = c->dedup_current;
    *gen = *slot >= 0 ? c->dedup[*slot].gen : 0;
    c->dedup_current = -1;
}

void mcp_dedup_attach(mcp_core_t *c, int slot, uint32_t gen)
{
    c->dedup_current = (slot >= 0 && c->dedup && c->dedup[slot].gen == gen) ? slot : -1;
}

void mcp_dedup_answered(mcp_core_t *c, const char *answer, size_t len, bool busy)
{
    int i = c->dedup_current;
    c->dedup_current = -1;
    if (i < 0 || !c->dedup) {
        return;
    }
    mcp_dedup_slot_t *s = &c->dedup[i];
    if (busy) {
        s->state = MCP_DEDUP_EMPTY; /* transient: a repeat is tried for real */
    } else if (len <= sizeof s->answer) {
        memcpy(s->answer, answer, len);
        s->len = (uint16_t)len;
        s->state = MCP_DEDUP_DONE;
    } else {
        s->state = MCP_DEDUP_LONG;
    }
}

esp_err_t mcp_dedup_deadline(mcp_core_t *c, const mcp_jr_node_t *deadline, char *msg, size_t cap)
{
    if (!deadline || mcp_jr_is(deadline, MCP_JR_NULL)) {
        return ESP_OK;
    }
    if (!mcp_jr_is(deadline, MCP_JR_NUMBER) || deadline->num < 0 || deadline->num > MCP_MAX_TS_MS ||
        deadline->num != (double)(uint64_t)deadline->num) {
        snprintf(msg, cap, "deadline must be Unix epoch milliseconds");
        return ESP_ERR_MCP_MALFORMED;
    }
    uint64_t now = c->port.epoch_ms ? c->port.epoch_ms(c->port.ctx) : 0;
    uint64_t until = (uint64_t)deadline->num;
    if (now == 0 || now <= until) {
        return ESP_OK; /* in time, or no clock to judge by */
    }
    snprintf(msg, cap, "deadline passed %llu ms ago: not run", (unsigned long long)(now - until));
    return ESP_ERR_MCP_EXPIRED;
}
