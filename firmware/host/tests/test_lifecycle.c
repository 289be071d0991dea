/*
 * tests/vectors/lifecycle.json against the core: sequences of events (connect,
 * disconnect, ticks, received messages) on the reference device with a fake
 * clock, and what the device publishes at each step. They pin down the
 * discovery hold-off of a device whose discovery mode was never stored, and
 * commands that must not run late (deadline) or twice (repeated ids).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vectors_loader.h"

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One expectation of "published": exactly one message on its topic in this step, matching. */
static bool check_published(const fake_port_t *fp, const cJSON *want, char *why, size_t cap)
{
    const char *topic = str_of(want, "topic");
    if (fp_count(fp, topic) != 1) {
        snprintf(why, cap, "%s: %zu messages, expected exactly one", topic, fp_count(fp, topic));
        return false;
    }
    const fp_msg_t *m = fp_last(fp, topic);
    const cJSON *retain = cJSON_GetObjectItemCaseSensitive(want, "retain");
    if (retain && cJSON_IsTrue(retain) != m->retain) {
        snprintf(why, cap, "%s: retain %d", topic, m->retain);
        return false;
    }
    const char *payload = str_of(want, "payload");
    if (payload && (strlen(payload) != m->len || memcmp(payload, m->payload, m->len) != 0)) {
        snprintf(why, cap, "%s: payload %.80s", topic, m->payload);
        return false;
    }
    const cJSON *json = cJSON_GetObjectItemCaseSensitive(want, "json");
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(want, "json_members");
    if (!json && !members) {
        return true;
    }
    cJSON *got = cJSON_ParseWithLength(m->payload, m->len);
    bool ok = got != NULL;
    if (!ok) {
        snprintf(why, cap, "%s: not JSON", topic);
    } else if (json) {
        ok = vec_match(json, got, why, cap);
    } else {
        const cJSON *item;
        cJSON_ArrayForEach(item, members)
        {
            const cJSON *actual = cJSON_GetObjectItemCaseSensitive(got, item->string);
            if (!actual) {
                snprintf(why, cap, "%s: no member %s", topic, item->string);
                ok = false;
            } else if (!vec_match(item, actual, why, cap)) {
                ok = false;
            }
            if (!ok) {
                break;
            }
        }
    }
    cJSON_Delete(got);
    return ok;
}

static bool run_step(ref_device_t *rd, uint64_t t0, const cJSON *epoch0, const cJSON *step, char *why, size_t cap)
{
    const char *what = str_of(step, "do");
    uint64_t at = (uint64_t)cJSON_GetObjectItemCaseSensitive(step, "at_ms")->valuedouble;
    rd->fp.now = t0 + at;
    /* the wall clock: synchronised (epoch_ms at 0) or not (null, absent) */
    rd->fp.epoch = cJSON_IsNumber(epoch0) ? (uint64_t)epoch0->valuedouble + at : 0;
    fp_clear(&rd->fp);
    if (strcmp(what, "connect") == 0) {
        mcp_core_on_connected(rd->core); /* started before the first step */
    } else if (strcmp(what, "disconnect") == 0) {
        mcp_core_on_disconnected(rd->core);
    } else if (strcmp(what, "tick") == 0) {
        mcp_core_tick(rd->core, rd->fp.now);
    } else if (strcmp(what, "message") == 0) {
        fp_send(rd->core, str_of(step, "topic"), str_of(step, "payload"));
    } else {
        snprintf(why, cap, "unknown step %s", what);
        return false;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(step, "published"))
    {
        if (!check_published(&rd->fp, e, why, cap)) {
            return false;
        }
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(step, "not_published"))
    {
        if (fp_count(&rd->fp, e->valuestring) != 0) {
            snprintf(why, cap, "%s: published, expected nothing", e->valuestring);
            return false;
        }
    }
    return true;
}

/* The discovery mode the fake key/value store holds at the end (NULL: none). */
static bool stored_is(const ref_device_t *rd, const char *want)
{
    for (size_t i = 0; i < rd->fp.n_kv; i++) {
        if (strcmp(rd->fp.kv_keys[i], "disc_mode") == 0) {
            return want && rd->fp.kv_lens[i] == strlen(want) && memcmp(rd->fp.kv_vals[i], want, strlen(want)) == 0;
        }
    }
    return want == NULL;
}

static void test_lifecycle_vectors(void **state)
{
    (void)state;
    cJSON *doc = vec_load("lifecycle");
    assert_non_null(doc);
    int n = 0, failures = 0;
    const cJSON *vc;
    cJSON_ArrayForEach(vc, cJSON_GetObjectItemCaseSensitive(doc, "cases"))
    {
        const char *name = str_of(vc, "name");
        uint32_t holdoff = (uint32_t)cJSON_GetObjectItemCaseSensitive(vc, "holdoff_ms")->valuedouble;
        ref_device_t rd;
        assert_true(ref_device_prepare(&rd, holdoff ? holdoff : MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE,
                                       str_of(vc, "stored_mode")));
        assert_int_equal(mcp_core_start(rd.core), ESP_OK);
        uint64_t t0 = rd.fp.now;
        char why[256] = "";
        bool ok = true;
        int index = 0;
        const cJSON *step;
        cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(vc, "steps"))
        {
            if (!run_step(&rd, t0, cJSON_GetObjectItemCaseSensitive(vc, "epoch_ms"), step, why, sizeof why)) {
                print_message("lifecycle/%s step %d (%s at %d ms): %s\n", name, index, str_of(step, "do"),
                              cJSON_GetObjectItemCaseSensitive(step, "at_ms")->valueint, why);
                ok = false;
                break;
            }
            index++;
        }
        if (ok && !stored_is(&rd, str_of(vc, "stored_after"))) {
            print_message("lifecycle/%s: stored mode is not %s\n", name, str_of(vc, "stored_after"));
            ok = false;
        }
        failures += !ok;
        n++;
        ref_device_close(&rd);
    }
    print_message("lifecycle: %d cases, %d failed\n", n, failures);
    cJSON_Delete(doc);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
