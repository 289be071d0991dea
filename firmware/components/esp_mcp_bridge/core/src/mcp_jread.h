/*
 * A bounded JSON reader for incoming commands: parses a mutable buffer in place
 * into a caller-owned, fixed array of nodes. No allocation, no recursion beyond
 * MCP_JR_MAX_DEPTH, strict RFC 8259 (no trailing content, no raw control
 * characters, valid escapes and surrogate pairs) and stricter where RFC 8259
 * leaves room for two readers to disagree: strings are well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), "\u0000"
 * is refused (the NUL would cut the decoded C string short), and a member name
 * repeated in one object is refused (Python keeps the last, a C reader the
 * first). Strings and member names are decoded in place and NUL-terminated
 * inside the buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MCP_JR_MAX_DEPTH 8

typedef enum {
    MCP_JR_NULL,
    MCP_JR_FALSE,
    MCP_JR_TRUE,
    MCP_JR_NUMBER,
    MCP_JR_STRING,
    MCP_JR_ARRAY,
    MCP_JR_OBJECT,
} mcp_jr_type_t;

typedef struct mcp_jr_node {
    mcp_jr_type_t type;
    const char *key;          /* member name inside an object, else NULL */
    const char *str;          /* MCP_JR_STRING */
    double num;               /* MCP_JR_NUMBER (may be +-inf when out of range) */
    struct mcp_jr_node *child; /* first element or member */
    struct mcp_jr_node *next;  /* next sibling */
} mcp_jr_node_t;

typedef enum {
    MCP_JR_OK,
    MCP_JR_INVALID,   /* not JSON */
    MCP_JR_TOO_DEEP,  /* nested deeper than MCP_JR_MAX_DEPTH */
    MCP_JR_TOO_MANY,  /* more values than nodes */
} mcp_jr_result_t;

/* Parse text[0..len) (text[len] must be writable and is set to NUL); *root on success. */
mcp_jr_result_t mcp_jr_parse(char *text, size_t len, mcp_jr_node_t *nodes, size_t n_nodes,
                             const mcp_jr_node_t **root);

/*
 * Length (1-4) of the well-formed UTF-8 sequence at p[0..avail), 0 when it is
 * not one (RFC 3629 table 3-7: overlong forms, surrogates D800-DFFF and code
 * points above U+10FFFF are not).
 */
size_t mcp_utf8_seq_len(const unsigned char *p, size_t avail);

/* The first member named key of an object; NULL when obj is not an object or has none. */
const mcp_jr_node_t *mcp_jr_get(const mcp_jr_node_t *obj, const char *key);

static inline bool mcp_jr_is(const mcp_jr_node_t *n, mcp_jr_type_t t)
{
    return n && n->type == t;
}

static inline bool mcp_jr_is_bool(const mcp_jr_node_t *n)
{
    return n && (n->type == MCP_JR_TRUE || n->type == MCP_JR_FALSE);
}
