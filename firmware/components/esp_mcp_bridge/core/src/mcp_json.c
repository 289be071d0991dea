#include "mcp_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mcp_jw_init(mcp_jw_t *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = (cap == 0);
    w->need_comma = false;
    if (cap > 0 && buf) {
        buf[0] = '\0';
    }
}

void mcp_jw_raw(mcp_jw_t *w, const char *s, size_t n)
{
    if (w->overflow) {
        return;
    }
    /* keep one byte for the terminating NUL */
    if (n >= w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (w->buf) {
        memcpy(w->buf + w->len, s, n);
    }
    w->len += n;
}

static void put(mcp_jw_t *w, char c)
{
    mcp_jw_raw(w, &c, 1);
}

static void value_prefix(mcp_jw_t *w)
{
    if (w->need_comma) {
        put(w, ',');
    }
}

void mcp_jw_obj_begin(mcp_jw_t *w)
{
    value_prefix(w);
    put(w, '{');
    w->need_comma = false;
}

void mcp_jw_obj_end(mcp_jw_t *w)
{
    put(w, '}');
    w->need_comma = true;
}

void mcp_jw_arr_begin(mcp_jw_t *w)
{
    value_prefix(w);
    put(w, '[');
    w->need_comma = false;
}

void mcp_jw_arr_end(mcp_jw_t *w)
{
    put(w, ']');
    w->need_comma = true;
}

static void write_escaped(mcp_jw_t *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(w, '"');
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20) {
            mcp_jw_raw(w, run, (size_t)(p - run));
            run = p + 1;
            switch (c) {
            case '"': mcp_jw_raw(w, "\\\"", 2); break;
            case '\\': mcp_jw_raw(w, "\\\\", 2); break;
            case '\n': mcp_jw_raw(w, "\\n", 2); break;
            case '\r': mcp_jw_raw(w, "\\r", 2); break;
            case '\t': mcp_jw_raw(w, "\\t", 2); break;
            default: {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
                mcp_jw_raw(w, u, 6);
            }
            }
        }
    }
    mcp_jw_raw(w, run, strlen(run));
    put(w, '"');
}

void mcp_jw_key(mcp_jw_t *w, const char *key)
{
    value_prefix(w);
    write_escaped(w, key);
    put(w, ':');
    w->need_comma = false;
}

void mcp_jw_str(mcp_jw_t *w, const char *s)
{
    value_prefix(w);
    write_escaped(w, s ? s : "");
    w->need_comma = true;
}

/* One scalar value: comma if needed, its text, then a comma is due. */
static void write_scalar(mcp_jw_t *w, const char *text, size_t n)
{
    value_prefix(w);
    mcp_jw_raw(w, text, n);
    w->need_comma = true;
}

void mcp_jw_num(mcp_jw_t *w, double v)
{
    if (!isfinite(v)) {
        mcp_jw_null(w);
        return;
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.15g", v);
    if (n > 0 && strtod(tmp, NULL) != v) {
        n = snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    if (n > 0 && (size_t)n < sizeof tmp) {
        write_scalar(w, tmp, (size_t)n);
    } else {
        w->overflow = true;
    }
}

void mcp_jw_int(mcp_jw_t *w, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    write_scalar(w, tmp, (size_t)n);
}

void mcp_jw_uint(mcp_jw_t *w, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    write_scalar(w, tmp, (size_t)n);
}

void mcp_jw_bool(mcp_jw_t *w, bool v)
{
    if (v) {
        write_scalar(w, "true", 4);
    } else {
        write_scalar(w, "false", 5);
    }
}

void mcp_jw_null(mcp_jw_t *w)
{
    write_scalar(w, "null", 4);
}

void mcp_jw_kstr(mcp_jw_t *w, const char *key, const char *s)
{
    mcp_jw_key(w, key);
    mcp_jw_str(w, s);
}

void mcp_jw_knum(mcp_jw_t *w, const char *key, double v)
{
    mcp_jw_key(w, key);
    mcp_jw_num(w, v);
}

void mcp_jw_kint(mcp_jw_t *w, const char *key, int64_t v)
{
    mcp_jw_key(w, key);
    mcp_jw_int(w, v);
}

void mcp_jw_kuint(mcp_jw_t *w, const char *key, uint64_t v)
{
    mcp_jw_key(w, key);
    mcp_jw_uint(w, v);
}

void mcp_jw_kbool(mcp_jw_t *w, const char *key, bool v)
{
    mcp_jw_key(w, key);
    mcp_jw_bool(w, v);
}

int mcp_jw_finish(mcp_jw_t *w)
{
    if (w->overflow || w->len > (size_t)INT32_MAX) {
        if (w->cap > 0 && w->buf) {
            w->buf[0] = '\0';
        }
        return -1;
    }
    if (w->buf) {
        w->buf[w->len] = '\0';
    }
    return (int)w->len;
}
