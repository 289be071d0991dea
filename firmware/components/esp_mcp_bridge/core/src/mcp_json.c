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

/* Decimal digits of v, right-aligned so that they end at end; returns the first. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v);
    return p;
}

/*
 * Sensor values are mostly short decimals (23.5, 1013.25): write them without printf,
 * which costs thousands of instructions per number and runs for every reading.
 * v must be |v| in [1e-4, 1e15) or +0. The text is exactly what "%.15g" gives: the
 * decimal m / 10^d (d <= 6, m < 1e15) is tried with the smallest d; it is v's own
 * text when m / 10^d, both exact, rounds back to v, which is what strtod() of that
 * text returns too. Anything else goes to printf.
 */
static size_t short_decimal(double v, char *out)
{
    static const double P10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
    double a = fabs(v);
    if (a == 0.0 && !signbit(v)) {
        out[0] = '0';
        return 1;
    }
    if (!(a >= 1e-4 && a < 1e15)) {
        return 0;
    }
    for (size_t d = 0; d < sizeof P10 / sizeof P10[0]; d++) {
        double scaled = a * P10[d];
        if (scaled >= 1e15) {
            return 0;
        }
        uint64_t m = (uint64_t)llround(scaled);
        if ((double)m / P10[d] != a) {
            continue;
        }
        char digits[24];
        char *end = digits + sizeof digits;
        char *first = u64_digits(m, end);
        size_t nd = (size_t)(end - first);
        size_t n = 0;
        if (signbit(v)) {
            out[n++] = '-';
        }
        if (d == 0) {
            memcpy(out + n, first, nd);
            return n + nd;
        }
        if (nd <= d) { /* 0.0025: a zero, the point, leading zeros */
            out[n++] = '0';
            out[n++] = '.';
            memset(out + n, '0', d - nd);
            n += d - nd;
            memcpy(out + n, first, nd);
            return n + nd;
        }
        memcpy(out + n, first, nd - d);
        n += nd - d;
        out[n++] = '.';
        memcpy(out + n, first + (nd - d), d);
        return n + d;
    }
    return 0;
}

void mcp_jw_num(mcp_jw_t *w, double v)
{
    if (!isfinite(v)) {
        mcp_jw_null(w);
        return;
    }
    char tmp[40];
    size_t len = short_decimal(v, tmp);
    if (len > 0) {
        write_scalar(w, tmp, len);
        return;
    }
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
    char *end = tmp + sizeof tmp;
    /* the magnitude as unsigned: -INT64_MIN does not fit in int64_t */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *first = u64_digits(mag, end);
    if (v < 0) {
        *--first = '-';
    }
    write_scalar(w, first, (size_t)(end - first));
}

void mcp_jw_uint(mcp_jw_t *w, uint64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof tmp;
    char *first = u64_digits(v, end);
    write_scalar(w, first, (size_t)(end - first));
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
