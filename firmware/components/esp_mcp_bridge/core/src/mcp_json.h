/*
 * Bounded JSON writer (no allocation) used for every message the device
 * publishes. Writes never run past the buffer: an overflow sets a flag and
 * mcp_jw_finish() reports it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
    bool need_comma;
} mcp_jw_t;

/** buf NULL (with cap SIZE_MAX): only count the length the output would have. */
void mcp_jw_init(mcp_jw_t *w, char *buf, size_t cap);
void mcp_jw_raw(mcp_jw_t *w, const char *s, size_t n);
void mcp_jw_obj_begin(mcp_jw_t *w);
void mcp_jw_obj_end(mcp_jw_t *w);
void mcp_jw_arr_begin(mcp_jw_t *w);
void mcp_jw_arr_end(mcp_jw_t *w);
void mcp_jw_key(mcp_jw_t *w, const char *key);
void mcp_jw_str(mcp_jw_t *w, const char *s);
/** Finite number as the shortest of %.15g/%.17g that round-trips; non-finite writes null. */
void mcp_jw_num(mcp_jw_t *w, double v);
void mcp_jw_int(mcp_jw_t *w, int64_t v);
void mcp_jw_uint(mcp_jw_t *w, uint64_t v);
void mcp_jw_bool(mcp_jw_t *w, bool v);
void mcp_jw_null(mcp_jw_t *w);
/* key + value shorthands */
void mcp_jw_kstr(mcp_jw_t *w, const char *key, const char *s);
void mcp_jw_knum(mcp_jw_t *w, const char *key, double v);
void mcp_jw_kint(mcp_jw_t *w, const char *key, int64_t v);
void mcp_jw_kuint(mcp_jw_t *w, const char *key, uint64_t v);
void mcp_jw_kbool(mcp_jw_t *w, const char *key, bool v);
/** NUL-terminate; returns the length, or -1 after an overflow. */
int mcp_jw_finish(mcp_jw_t *w);
