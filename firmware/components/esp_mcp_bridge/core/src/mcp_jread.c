#include "mcp_jread.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    char *end;
    mcp_jr_node_t *nodes;
    size_t cap, used;
    mcp_jr_result_t err;
} reader_t;

static void skip_ws(reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
        r->p++;
    }
}

static mcp_jr_node_t *fail(reader_t *r, mcp_jr_result_t why)
{
    if (r->err == MCP_JR_OK) {
        r->err = why;
    }
    return NULL;
}

static mcp_jr_node_t *new_node(reader_t *r, mcp_jr_type_t type)
{
    if (r->used == r->cap) {
        return fail(r, MCP_JR_TOO_MANY);
    }
    mcp_jr_node_t *n = &r->nodes[r->used++];
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') {
            v |= (uint32_t)(ch - '0');
        } else if (ch >= 'a' && ch <= 'f') {
            v |= (uint32_t)(ch - 'a' + 10);
        } else if (ch >= 'A' && ch <= 'F') {
            v |= (uint32_t)(ch - 'A' + 10);
        } else {
            return 0;
        }
    }
    *out = v;
    return 1;
}

size_t mcp_utf8_seq_len(const unsigned char *p, size_t avail)
{
    if (avail == 0) {
        return 0;
    }
    unsigned char c = p[0];
    if (c < 0x80) {
        return 1;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* below: overlong */
        } else if (c == 0xED) {
            hi = 0x9F; /* above: surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90; /* below: overlong */
        } else if (c == 0xF4) {
            hi = 0x8F; /* above: beyond U+10FFFF */
        }
    } else {
        return 0; /* continuation byte, C0/C1 (overlong) or F5-FF */
    }
    if (avail < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t k = 2; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* r->p at the opening quote. Decodes in place (never longer than the source) and
 * returns the text, NUL-terminated; NULL when invalid. */
static const char *parse_string(reader_t *r)
{
    char *rd = r->p + 1;
    char *wr = rd;
    char *start = rd;
    for (;;) {
        if (rd >= r->end) {
            return NULL;
        }
        unsigned char ch = (unsigned char)*rd;
        if (ch == '"') {
            *wr = '\0';
            r->p = rd + 1;
            return start;
        }
        if (ch < 0x20) {
            return NULL;
        }
        if (ch >= 0x80) {
            size_t n = mcp_utf8_seq_len((const unsigned char *)rd, (size_t)(r->end - rd));
            if (n == 0) {
                return NULL;
            }
            memmove(wr, rd, n);
            wr += n;
            rd += n;
            continue;
        }
        if (ch != '\\') {
            *wr++ = (char)ch;
            rd++;
            continue;
        }
        if (r->end - rd < 2) {
            return NULL;
        }
        char esc = rd[1];
        rd += 2;
        switch (esc) {
        case '"': *wr++ = '"'; continue;
        case '\\': *wr++ = '\\'; continue;
        case '/': *wr++ = '/'; continue;
        case 'b': *wr++ = '\b'; continue;
        case 'f': *wr++ = '\f'; continue;
        case 'n': *wr++ = '\n'; continue;
        case 'r': *wr++ = '\r'; continue;
        case 't': *wr++ = '\t'; continue;
        case 'u': break;
        default: return NULL;
        }
        uint32_t cp;
        if (r->end - rd < 4 || !hex4(rd, &cp)) {
            return NULL;
        }
        rd += 4;
        if (cp == 0) {
            return NULL; /* would end the C string early: "mqtt\u0000zz" read as "mqtt" */
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return NULL; /* a low surrogate alone */
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (r->end - rd < 6 || rd[0] != '\\' || rd[1] != 'u' || !hex4(rd + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
                return NULL;
            }
            rd += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp < 0x80) {
            *wr++ = (char)cp;
        } else if (cp < 0x800) {
            *wr++ = (char)(0xC0 | (cp >> 6));
            *wr++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *wr++ = (char)(0xE0 | (cp >> 12));
            *wr++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *wr++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *wr++ = (char)(0xF0 | (cp >> 18));
            *wr++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *wr++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *wr++ = (char)(0x80 | (cp & 0x3F));
        }
    }
}

static bool digit(const reader_t *r, const char *q)
{
    return q < r->end && *q >= '0' && *q <= '9';
}

static mcp_jr_node_t *parse_number(reader_t *r)
{
    char *q = r->p;
    if (q < r->end && *q == '-') {
        q++;
    }
    if (!digit(r, q)) {
        return fail(r, MCP_JR_INVALID);
    }
    if (*q == '0') {
        q++;
    } else {
        while (digit(r, q)) {
            q++;
        }
    }
    if (q < r->end && *q == '.') {
        q++;
        if (!digit(r, q)) {
            return fail(r, MCP_JR_INVALID);
        }
        while (digit(r, q)) {
            q++;
        }
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < r->end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (!digit(r, q)) {
            return fail(r, MCP_JR_INVALID);
        }
        while (digit(r, q)) {
            q++;
        }
    }
    /* strtod on exactly the span the grammar accepted: it stops at the same place */
    char *e = NULL;
    double v = strtod(r->p, &e);
    if (e != q) {
        return fail(r, MCP_JR_INVALID);
    }
    mcp_jr_node_t *n = new_node(r, MCP_JR_NUMBER);
    if (n) {
        n->num = v;
        r->p = q;
    }
    return n;
}

static mcp_jr_node_t *parse_value(reader_t *r, unsigned depth);

/* An object or an array: r->p at '{' or '['. */
static mcp_jr_node_t *parse_container(reader_t *r, unsigned depth, bool object)
{
    if (depth >= MCP_JR_MAX_DEPTH) {
        return fail(r, MCP_JR_TOO_DEEP);
    }
    mcp_jr_node_t *n = new_node(r, object ? MCP_JR_OBJECT : MCP_JR_ARRAY);
    if (!n) {
        return NULL;
    }
    const char close = object ? '}' : ']';
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return n;
    }
    mcp_jr_node_t **link = &n->child;
    for (;;) {
        const char *key = NULL;
        if (object) {
            skip_ws(r);
            if (r->p >= r->end || *r->p != '"' || !(key = parse_string(r))) {
                return fail(r, MCP_JR_INVALID);
            }
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':') {
                return fail(r, MCP_JR_INVALID);
            }
            r->p++;
        }
        if (key) {
            for (const mcp_jr_node_t *m = n->child; m; m = m->next) {
                if (strcmp(m->key, key) == 0) {
                    return fail(r, MCP_JR_INVALID); /* duplicate member name */
                }
            }
        }
        mcp_jr_node_t *item = parse_value(r, depth + 1);
        if (!item) {
            return NULL;
        }
        item->key = key;
        *link = item;
        link = &item->next;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return n;
        }
        return fail(r, MCP_JR_INVALID);
    }
}

static mcp_jr_node_t *literal(reader_t *r, const char *word, mcp_jr_type_t type)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) {
        return fail(r, MCP_JR_INVALID);
    }
    r->p += n;
    return new_node(r, type);
}

static mcp_jr_node_t *parse_value(reader_t *r, unsigned depth)
{
    skip_ws(r);
    if (r->p >= r->end) {
        return fail(r, MCP_JR_INVALID);
    }
    switch (*r->p) {
    case '{': return parse_container(r, depth, true);
    case '[': return parse_container(r, depth, false);
    case 't': return literal(r, "true", MCP_JR_TRUE);
    case 'f': return literal(r, "false", MCP_JR_FALSE);
    case 'n': return literal(r, "null", MCP_JR_NULL);
    case '"': {
        mcp_jr_node_t *n = new_node(r, MCP_JR_STRING);
        if (!n) {
            return NULL;
        }
        n->str = parse_string(r);
        return n->str ? n : fail(r, MCP_JR_INVALID);
    }
    default: return parse_number(r);
    }
}

mcp_jr_result_t mcp_jr_parse(char *text, size_t len, mcp_jr_node_t *nodes, size_t n_nodes,
                             const mcp_jr_node_t **root)
{
    reader_t r = {.p = text, .end = text + len, .nodes = nodes, .cap = n_nodes, .used = 0, .err = MCP_JR_OK};
    text[len] = '\0';
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        r.p += 3; /* a UTF-8 byte order mark, as cJSON skipped it */
    }
    const mcp_jr_node_t *v = parse_value(&r, 0);
    if (!v) {
        return r.err == MCP_JR_OK ? MCP_JR_INVALID : r.err;
    }
    skip_ws(&r);
    if (r.p != r.end) {
        return MCP_JR_INVALID; /* trailing content */
    }
    *root = v;
    return MCP_JR_OK;
}

const mcp_jr_node_t *mcp_jr_get(const mcp_jr_node_t *obj, const char *key)
{
    if (!obj || obj->type != MCP_JR_OBJECT) {
        return NULL;
    }
    for (const mcp_jr_node_t *m = obj->child; m; m = m->next) {
        if (strcmp(m->key, key) == 0) {
            return m;
        }
    }
    return NULL;
}
