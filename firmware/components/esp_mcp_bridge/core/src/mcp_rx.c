/*
 * Reassembly of incoming MQTT data: fragments in order into the bounded
 * receive buffer (max_command_size), a gap, an overlap or an interrupted
 * message reported as malformed, an oversized one counted but not stored;
 * each complete message goes to mcp_cmd_handle() (mcp_commands.c).
 */
#include <string.h>

#include "mcp_core_internal.h"

/* ------------------------------------------------------------------------ */
/* reassembly                                                                */
/* ------------------------------------------------------------------------ */

static void rx_abort(mcp_core_t *c)
{
    /* the previous message never completed */
    c->rx_active = false;
    if (!c->rx_topic_bad) {
        mcp_cmd_handle(c, c->rx_topic, c->rx_buf, c->rx_len, false, true);
    }
}

void mcp_core_on_message(mcp_core_t *c, const char *topic, size_t topic_len, const void *data, size_t len,
                         size_t total_len, size_t offset)
{
    if (!c || (!data && len)) {
        return;
    }
    if (offset == 0) {
        if (c->rx_active) {
            rx_abort(c);
        }
        if (total_len < len) {
            total_len = len;
        }
        c->rx_topic_bad = (!topic || topic_len == 0 || topic_len >= sizeof c->rx_topic ||
                           memchr(topic, '\0', topic_len) != NULL);
        if (!c->rx_topic_bad) {
            memcpy(c->rx_topic, topic, topic_len);
            c->rx_topic[topic_len] = '\0';
        } else {
            c->rx_topic[0] = '\0';
        }
        c->rx_active = true;
        c->rx_total = total_len;
        c->rx_seen = 0;
        c->rx_len = 0;
        c->rx_oversize = total_len > c->max_command_size;
    } else if (!c->rx_active || offset != c->rx_seen || total_len != c->rx_total) {
        /* a gap, an overlap or a fragment of an unknown message */
        if (c->rx_active) {
            rx_abort(c);
        }
        return;
    }
    if (len > c->rx_total - c->rx_seen) {
        rx_abort(c);
        return;
    }
    size_t room = c->max_command_size - c->rx_len;
    size_t take = len < room ? len : room;
    if (take) {
        memcpy(c->rx_buf + c->rx_len, data, take);
        c->rx_len += take;
    }
    c->rx_seen += len;
    if (c->rx_seen == c->rx_total) {
        c->rx_active = false;
        c->rx_buf[c->rx_len] = '\0';
        if (!c->rx_topic_bad) {
            mcp_cmd_handle(c, c->rx_topic, c->rx_buf, c->rx_len, c->rx_oversize, false);
        }
    }
}
