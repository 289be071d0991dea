/*
 * Actuator commands: the application's control callback runs without the
 * bridge's lock.
 *
 * A valve that takes seconds to move must not stall the bridge: while its
 * callback runs, the bridge task keeps reading sensors, answering pings and
 * feeding its watchdog, and application tasks can publish. So a validated
 * command for an actuator with a callback becomes a job in a bounded FIFO
 * (MCP_ACT_QUEUE_LEN, allocated with the core). A port with an actuator task
 * (port->actuator_wake) runs the jobs there through
 * mcp_core_run_actuator_jobs(); without one they run at once, inside
 * mcp_core_on_message. Either way the core releases the lock around the
 * callback (port->unlock, then port->lock), which is why both are entered
 * with the lock held exactly once. The job holds everything the answer needs
 * (request id, value), so nothing else of the core is used while unlocked.
 *
 * Queued commands run in order: a toggle reads the value it flips when it
 * runs, so two queued toggles flip twice. A full queue answers `busy`.
 *
 * The answer is sent only after the callback returned: with the value it
 * applied, also when it took longer than the actuator's response_time_ms
 * (then an `actuator` warning follows), or with the error it returned;
 * `timeout` only when the driver gave up (ESP_ERR_TIMEOUT: nothing applied).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mcp_core_internal.h"

/* Publish the outcome of an action on a (lock held). */
static void complete(mcp_core_t *c, mcp_actuator_t *a, mcp_action_t action, mcp_value_t *v, const reply_t *r)
{
    if (action == MCP_ACTION_TRIGGER) {
        mcp_event_actuator_t ev = {.actuator_id = a->e.id, .action = action, .value = NULL, .request_id = r->id};
        mcp_core_emit(c, MCP_EVENT_ACTUATOR_SET, &ev);
        mcp_cmd_value_result(c, r, v, true);
        return;
    }
    if (action != MCP_ACTION_READ) {
        a->value = *v;
        a->has_value = true;
        mcp_core_publish_state_of(c, a);
        mcp_event_actuator_t ev = {.actuator_id = a->e.id, .action = action, .value = &a->value, .request_id = r->id};
        mcp_core_emit(c, MCP_EVENT_ACTUATOR_SET, &ev);
    } else if (a->cb) {
        a->value = *v; /* a read callback may refresh the value */
    }
    mcp_cmd_value_result(c, r, &a->value, false);
}

/* The callback's verdict on job j (lock held again); false: answered with an error. */
static bool judge(mcp_core_t *c, mcp_actuator_t *a, mcp_act_job_t *j, const reply_t *r, esp_err_t e, uint64_t took)
{
    if (e != ESP_OK) {
        c->metrics.actuator_errors++;
        mcp_cmd_reply_error(c, r, mcp_cmd_map_cb_error(e), "actuator '%s' failed: %s", a->e.id,
                            mcp_bridge_err_to_name(e));
        return false;
    }
    mcp_value_t *v = &j->value;
    if (j->action != MCP_ACTION_TRIGGER &&
        (v->type != a->e.vt || (a->e.vt == MCP_VALUE_NUMBER && !isfinite(v->number)))) {
        c->metrics.actuator_errors++;
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_ACTUATOR, "actuator '%s' reported an invalid value", a->e.id);
        return false;
    }
    v->string[MCP_VALUE_STRING_MAX] = '\0';
    /* Late but applied: answered with what was applied (a caller told "timeout"
     * would retry, and a retried toggle flips it back); the slowness is a warning. */
    uint32_t limit = a->response_time_ms ? a->response_time_ms : c->command_timeout_ms;
    if (took > limit) {
        char text[96];
        snprintf(text, sizeof text, "actuator '%s' took %u ms (response_time_ms %u)", a->e.id, (unsigned)took,
                 (unsigned)limit);
        mcp_core_publish_error(c, "actuator", ESP_ERR_MCP_TIMEOUT, text, MCP_SEVERITY_WARNING);
    }
    return true;
}

uint32_t mcp_core_run_actuator_jobs(mcp_core_t *c)
{
    if (!c || c->job_running) {
        return 1000; /* re-entered from a callback: the outer call goes on */
    }
    while (c->job_count > 0) {
        mcp_act_job_t *j = &c->jobs[c->job_head];
        mcp_actuator_t *a = &c->actuators[j->actuator];
        if (j->action == MCP_ACTION_TOGGLE) {
            j->value = a->value;
            j->value.boolean = !a->value.boolean; /* what it is now, after the jobs before it */
        } else if (j->action == MCP_ACTION_READ) {
            j->value = a->value;
        }
        c->job_running = true;
        uint64_t t0 = mcp_core_now(c);
        if (c->port.unlock) {
            c->port.unlock(c->port.ctx);
        }
        esp_err_t e = a->cb(a->e.id, j->action, &j->value, a->ud);
        if (c->port.lock) {
            c->port.lock(c->port.ctx);
        }
        uint64_t took = mcp_core_now(c) - t0;
        reply_t r = {.respond = j->respond, .id = j->has_id ? j->id : NULL};
        mcp_dedup_attach(c, j->dedup_slot, j->dedup_gen);
        if (judge(c, a, j, &r, e, took)) {
            complete(c, a, j->action, &j->value, &r);
        }
        c->dedup_current = -1;
        c->job_head = (uint8_t)((c->job_head + 1) % MCP_ACT_QUEUE_LEN);
        c->job_count--;
        c->job_running = false;
    }
    return 1000;
}

void mcp_act_submit(mcp_core_t *c, mcp_actuator_t *a, mcp_action_t action, const mcp_value_t *v, const reply_t *r)
{
    if (!a->cb) {
        mcp_value_t *w = &c->scratch[MCP_SCRATCH_CMD];
        if (w != v) {
            *w = *v;
        }
        complete(c, a, action, w, r);
        return;
    }
    if (c->safe_mode) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_BUSY, "safe mode: actuator '%s' is off until the next restart",
                            a->e.id);
        return;
    }
    if (c->job_count >= MCP_ACT_QUEUE_LEN) {
        mcp_cmd_reply_error(c, r, ESP_ERR_MCP_BUSY, "%u actuator commands are still running",
                            (unsigned)MCP_ACT_QUEUE_LEN);
        return;
    }
    mcp_act_job_t *j = &c->jobs[(c->job_head + c->job_count) % MCP_ACT_QUEUE_LEN];
    j->actuator = (uint16_t)(a - c->actuators);
    j->action = action;
    j->respond = r->respond;
    j->has_id = r->id != NULL;
    if (r->id) {
        snprintf(j->id, sizeof j->id, "%s", r->id);
    }
    j->value = *v;
    mcp_dedup_detach(c, &j->dedup_slot, &j->dedup_gen); /* answered when the job is done */
    c->job_count++;
    if (c->port.actuator_wake) {
        c->port.actuator_wake(c->port.ctx);
    } else {
        mcp_core_run_actuator_jobs(c);
    }
}
