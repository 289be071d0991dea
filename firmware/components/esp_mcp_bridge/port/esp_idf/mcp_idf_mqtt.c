/*
 * esp-mqtt client for the ESP-IDF port: TLS, authentication, last will,
 * fragmented incoming data. ESP-IDF 5.5 (built-in mqtt component) and 6.x
 * (espressif/mqtt from the component registry); same mqtt_client.h API.
 */
#include <stdlib.h>
#include <string.h>

#include "esp_log.h"
#include "mqtt_client.h"
#include "sdkconfig.h"

#if CONFIG_MCP_BRIDGE_TLS_USE_CRT_BUNDLE
#include "esp_crt_bundle.h"
#endif

#include "mcp_idf.h"

/* Longest topic kept for the fragments after the first one. Longer topics are
 * not ours (base topic <= 64, device id <= 32, ids <= 32): they are dropped. */
#define MCP_IDF_MQTT_TOPIC_MAX 192

/* Publishes are refused (not queued) when the outbox would exceed this. */
#define MCP_IDF_MQTT_OUTBOX_LIMIT (16 * 1024)

struct mcp_idf_mqtt {
    esp_mqtt_client_handle_t client;
    mcp_idf_mqtt_handlers_t h;
    volatile bool connected;
    bool started;
    /* topic of the message whose fragments are arriving */
    char topic[MCP_IDF_MQTT_TOPIC_MAX + 1];
    size_t topic_len;
    bool topic_ok;
};

static void on_mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)base;
    mcp_idf_mqtt_t *m = arg;
    const esp_mqtt_event_t *ev = data;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        m->connected = true;
        if (m->h.on_connected != NULL) {
            m->h.on_connected(m->h.arg);
        }
        break;
    case MQTT_EVENT_DISCONNECTED:
        m->connected = false;
        if (m->h.on_disconnected != NULL) {
            m->h.on_disconnected(m->h.arg);
        }
        break;
    case MQTT_EVENT_SUBSCRIBED:
        /* esp-mqtt sets error_type MQTT_ERROR_TYPE_SUBSCRIBE_FAILED on this event when a
         * SUBACK return code is 0x80 or above (mqtt_client.c, deliver_suback) */
        if (ev != NULL && ev->error_handle != NULL &&
            ev->error_handle->error_type == MQTT_ERROR_TYPE_SUBSCRIBE_FAILED && m->h.on_subscribe_failed != NULL) {
            m->h.on_subscribe_failed(m->h.arg);
        }
        break;
    case MQTT_EVENT_ERROR:
        if (ev != NULL && ev->error_handle != NULL) {
            const esp_mqtt_error_codes_t *e = ev->error_handle;
            if (e->error_type == MQTT_ERROR_TYPE_CONNECTION_REFUSED) {
                ESP_LOGW(MCP_IDF_TAG, "broker refused the connection (code %d)", (int)e->connect_return_code);
            } else if (e->error_type == MQTT_ERROR_TYPE_TCP_TRANSPORT) {
                ESP_LOGW(MCP_IDF_TAG, "MQTT transport error: tls 0x%x, stack 0x%x, errno %d",
                         (unsigned)e->esp_tls_last_esp_err, (unsigned)e->esp_tls_stack_err,
                         e->esp_transport_sock_errno);
            }
        }
        if (!m->connected && m->h.on_error != NULL) {
            m->h.on_error(m->h.arg);
        }
        break;
    case MQTT_EVENT_DATA: {
        if (ev == NULL || ev->data_len < 0 || ev->current_data_offset < 0 || ev->total_data_len < 0) {
            break;
        }
        if (ev->current_data_offset == 0) {
            /* first (or only) fragment: it carries the topic */
            m->topic_ok = ev->topic != NULL && ev->topic_len > 0 && ev->topic_len <= MCP_IDF_MQTT_TOPIC_MAX;
            m->topic_len = m->topic_ok ? (size_t)ev->topic_len : 0;
            if (m->topic_ok) {
                memcpy(m->topic, ev->topic, m->topic_len);
            }
            m->topic[m->topic_len] = '\0';
        }
        if (m->topic_ok && m->h.on_data != NULL) {
            m->h.on_data(m->h.arg, m->topic, m->topic_len, ev->data, (size_t)ev->data_len,
                         (size_t)ev->current_data_offset, (size_t)ev->total_data_len);
        }
        break;
    }
    default:
        break;
    }
}

esp_err_t mcp_idf_mqtt_create(const mcp_idf_mqtt_cfg_t *cfg, const mcp_idf_mqtt_handlers_t *handlers,
                              mcp_idf_mqtt_t **out)
{
    if (cfg == NULL || handlers == NULL || out == NULL || cfg->uri == NULL || cfg->uri[0] == '\0') {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_idf_mqtt_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return ESP_ERR_NO_MEM;
    }
    m->h = *handlers;

    esp_mqtt_client_config_t mc;
    memset(&mc, 0, sizeof(mc));
    mc.broker.address.uri = cfg->uri;
    mc.broker.verification.certificate = cfg->ca_pem; /* PEM, NUL-terminated: length 0 = strlen */
#if CONFIG_MCP_BRIDGE_TLS_USE_CRT_BUNDLE
    if (cfg->ca_pem == NULL && cfg->use_crt_bundle) {
        mc.broker.verification.crt_bundle_attach = esp_crt_bundle_attach;
    }
#endif
    mc.broker.verification.skip_cert_common_name_check = cfg->skip_cert_common_name_check;
    mc.broker.verification.alpn_protos = cfg->alpn_protos;
    mc.credentials.client_id = cfg->client_id;
    mc.credentials.username = cfg->username;
    mc.credentials.authentication.password = cfg->password;
    mc.credentials.authentication.certificate = cfg->client_cert_pem;
    mc.credentials.authentication.key = cfg->client_key_pem;
    if (cfg->lwt_topic != NULL) {
        mc.session.last_will.topic = cfg->lwt_topic;
        mc.session.last_will.msg = cfg->lwt_msg;
        mc.session.last_will.msg_len = cfg->lwt_msg == NULL ? 0 : (int)strlen(cfg->lwt_msg);
        mc.session.last_will.qos = cfg->lwt_qos;
        mc.session.last_will.retain = cfg->lwt_retain ? 1 : 0;
    }
    mc.session.keepalive = cfg->keepalive_s;
    /* Reconnecting is the core's policy (backoff with jitter, core/src/mcp_link.c):
     * esp-mqtt's own waits a fixed reconnect_timeout_ms (10 s) between attempts.
     * With disable_auto_reconnect, esp-mqtt (mqtt_client.c, MQTT_STATE_WAIT_RECONNECT)
     * stays disconnected after a lost connection or a failed attempt until
     * esp_mqtt_client_reconnect() sets RECONNECT_BIT; called in any other state
     * it returns ESP_FAIL and changes nothing. */
    mc.network.disable_auto_reconnect = true;
    mc.outbox.limit = MCP_IDF_MQTT_OUTBOX_LIMIT; /* bounded memory on a slow link */
    mc.buffer.size = cfg->buffer_size > 0 ? cfg->buffer_size : CONFIG_MCP_BRIDGE_MQTT_BUFFER_SIZE;

    m->client = esp_mqtt_client_init(&mc);
    if (m->client == NULL) {
        free(m);
        return ESP_FAIL;
    }
    esp_err_t err = esp_mqtt_client_register_event(m->client, MQTT_EVENT_ANY, on_mqtt_event, m);
    if (err != ESP_OK) {
        esp_mqtt_client_destroy(m->client);
        free(m);
        return err;
    }
    *out = m;
    return ESP_OK;
}

esp_err_t mcp_idf_mqtt_start(mcp_idf_mqtt_t *m)
{
    if (m == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (m->started) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = esp_mqtt_client_start(m->client);
    if (err == ESP_OK) {
        m->started = true;
    }
    return err;
}

esp_err_t mcp_idf_mqtt_reconnect(mcp_idf_mqtt_t *m)
{
    if (m == NULL || !m->started) {
        return ESP_ERR_INVALID_STATE;
    }
    return esp_mqtt_client_reconnect(m->client);
}

esp_err_t mcp_idf_mqtt_flush(mcp_idf_mqtt_t *m, uint32_t timeout_ms, void (*sleep_ms)(uint32_t))
{
    if (m == NULL || sleep_ms == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    for (uint32_t waited = 0; m->connected && esp_mqtt_client_get_outbox_size(m->client) > 0; waited += 10) {
        if (waited >= timeout_ms) {
            return ESP_ERR_TIMEOUT;
        }
        sleep_ms(10);
    }
    return ESP_OK;
}

esp_err_t mcp_idf_mqtt_stop(mcp_idf_mqtt_t *m, bool clean)
{
    if (m == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!m->started) {
        return ESP_OK;
    }
    /* clean: DISCONNECT, so the broker drops the will. Not clean: esp_mqtt_client_stop()
     * only closes the transport (esp-mqtt sends DISCONNECT from stop() on its own only
     * in its connected state when asked through esp_mqtt_client_disconnect), and the
     * broker publishes the will on the lost connection. */
    if (clean && m->connected) {
        esp_mqtt_client_disconnect(m->client);
    }
    esp_err_t err = esp_mqtt_client_stop(m->client);
    m->started = false;
    m->connected = false;
    return err;
}

esp_err_t mcp_idf_mqtt_destroy(mcp_idf_mqtt_t *m)
{
    if (m == NULL) {
        return ESP_OK;
    }
    esp_err_t err = esp_mqtt_client_destroy(m->client); /* stops the client if it runs */
    free(m);
    return err;
}

bool mcp_idf_mqtt_is_connected(const mcp_idf_mqtt_t *m)
{
    return m != NULL && m->connected;
}

esp_err_t mcp_idf_mqtt_publish(mcp_idf_mqtt_t *m, const char *topic, const void *data, size_t len, int qos,
                               bool retain)
{
    if (m == NULL || topic == NULL || (data == NULL && len > 0) || len > INT32_MAX || qos < 0 || qos > 2) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!m->connected) {
        return ESP_ERR_INVALID_STATE;
    }
    /* esp_mqtt_client_publish() writes the PUBLISH from this task (the esp-mqtt
     * task holds its API lock only between polls, so this does not wait for
     * MQTT_POLL_READ_TIMEOUT_MS); QoS 0 is not stored, QoS 1/2 stays in the
     * outbox until its PUBACK, and -2 means the outbox limit would be exceeded.
     * esp_mqtt_client_enqueue() instead leaves every message to the esp-mqtt
     * task, which sends one queued item per loop pass and then polls for up to
     * a second: about one message a second (esp-mqtt issue 326). The core holds
     * back what does not fit the outbox (mcp_flow.c, mcp_idf_mqtt_outbox_room).
     * len 0 needs data NULL: with data, esp-mqtt takes strlen(data). */
    int id = esp_mqtt_client_publish(m->client, topic, len > 0 ? (const char *)data : NULL, (int)len, qos,
                                     retain ? 1 : 0);
    return id < 0 ? ESP_FAIL : ESP_OK;
}

size_t mcp_idf_mqtt_outbox_room(mcp_idf_mqtt_t *m)
{
    if (m == NULL) {
        return 0;
    }
    int used = esp_mqtt_client_get_outbox_size(m->client); /* bytes of unacknowledged QoS 1/2 */
    return used >= MCP_IDF_MQTT_OUTBOX_LIMIT ? 0 : (size_t)(MCP_IDF_MQTT_OUTBOX_LIMIT - (used > 0 ? used : 0));
}

esp_err_t mcp_idf_mqtt_subscribe(mcp_idf_mqtt_t *m, const char *topic, int qos)
{
    if (m == NULL || topic == NULL || qos < 0 || qos > 2) {
        return ESP_ERR_INVALID_ARG;
    }
    return esp_mqtt_client_subscribe_single(m->client, topic, qos) < 0 ? ESP_FAIL : ESP_OK;
}

esp_err_t mcp_idf_mqtt_unsubscribe(mcp_idf_mqtt_t *m, const char *topic)
{
    if (m == NULL || topic == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    return esp_mqtt_client_unsubscribe(m->client, topic) < 0 ? ESP_FAIL : ESP_OK;
}
