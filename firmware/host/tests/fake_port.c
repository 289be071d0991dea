#include "fake_port.h"

#include <stdlib.h>
#include <string.h>

static char *dup_mem(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (n) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

static esp_err_t f_attach(void *ctx, mcp_core_t *core)
{
    ((fake_port_t *)ctx)->attached = core;
    return ESP_OK;
}

static void f_detach(void *ctx)
{
    ((fake_port_t *)ctx)->attached = NULL;
}

static esp_err_t f_connect(void *ctx, const mcp_port_mqtt_params_t *p)
{
    fake_port_t *fp = ctx;
    fp->connects++;
    fp->last_params = *p;
    strncpy(fp->lwt_topic, p->lwt_topic, sizeof fp->lwt_topic - 1);
    if (p->username) {
        strncpy(fp->username, p->username, sizeof fp->username - 1);
    }
    fp->last_params.lwt_topic = fp->lwt_topic;
    fp->last_params.uri = NULL;
    fp->last_params.client_id = NULL;
    fp->last_params.username = NULL;
    fp->last_params.password = NULL;
    fp->last_params.tls = NULL;
    return ESP_OK;
}

static esp_err_t f_disconnect(void *ctx)
{
    ((fake_port_t *)ctx)->disconnects++;
    return ESP_OK;
}

static esp_err_t f_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    fake_port_t *fp = ctx;
    if (fp->publish_fails) {
        return ESP_FAIL;
    }
    return fp_record(fp, topic, payload, len, qos, retain);
}

esp_err_t fp_record(fake_port_t *fp, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    if (fp->n_msgs == fp->cap_msgs) {
        fp->cap_msgs = fp->cap_msgs ? fp->cap_msgs * 2 : 64;
        fp->msgs = realloc(fp->msgs, fp->cap_msgs * sizeof *fp->msgs);
    }
    fp_msg_t *m = &fp->msgs[fp->n_msgs++];
    m->topic = dup_mem(topic, strlen(topic));
    m->payload = dup_mem(payload, len);
    m->len = len;
    m->qos = qos;
    m->retain = retain;
    return ESP_OK;
}

static esp_err_t f_subscribe(void *ctx, const char *filter, int qos)
{
    fake_port_t *fp = ctx;
    if (fp->subscribe_fails > 0) {
        fp->subscribe_fails--;
        return ESP_FAIL;
    }
    if (fp->n_subs < 8) {
        strncpy(fp->subs[fp->n_subs], filter, sizeof fp->subs[0] - 1);
        fp->sub_qos[fp->n_subs] = qos;
        fp->n_subs++;
    }
    return ESP_OK;
}

static uint64_t f_now(void *ctx)
{
    return ((fake_port_t *)ctx)->now;
}

static uint64_t f_epoch(void *ctx)
{
    return ((fake_port_t *)ctx)->epoch;
}

static esp_err_t f_kv_load(void *ctx, const char *key, void *buf, size_t *len)
{
    fake_port_t *fp = ctx;
    for (size_t i = 0; i < fp->n_kv; i++) {
        if (strcmp(fp->kv_keys[i], key) == 0) {
            if (*len < fp->kv_lens[i]) {
                return ESP_ERR_INVALID_SIZE;
            }
            memcpy(buf, fp->kv_vals[i], fp->kv_lens[i]);
            *len = fp->kv_lens[i];
            return ESP_OK;
        }
    }
    return ESP_ERR_NOT_FOUND;
}

static esp_err_t f_kv_store(void *ctx, const char *key, const void *data, size_t len)
{
    fake_port_t *fp = ctx;
    fp->kv_stores++;
    if (fp->kv_store_fails) {
        return ESP_FAIL;
    }
    if (len > sizeof fp->kv_vals[0]) {
        return ESP_ERR_INVALID_SIZE;
    }
    size_t i = 0;
    while (i < fp->n_kv && strcmp(fp->kv_keys[i], key) != 0) {
        i++;
    }
    if (i == fp->n_kv) {
        if (fp->n_kv == 8) {
            return ESP_ERR_NO_MEM;
        }
        fp->n_kv++;
        strncpy(fp->kv_keys[i], key, sizeof fp->kv_keys[0] - 1);
    }
    memcpy(fp->kv_vals[i], data, len);
    fp->kv_lens[i] = len;
    return ESP_OK;
}

static esp_err_t f_devid(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    strncpy(buf, "esp32-a1b2c3", len - 1);
    buf[len - 1] = '\0';
    return ESP_OK;
}

static esp_err_t f_mac(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    strncpy(buf, "a4:cf:12:a1:b2:c3", len - 1);
    buf[len - 1] = '\0';
    return ESP_OK;
}

static uint32_t f_heap(void *ctx)
{
    return ((fake_port_t *)ctx)->free_heap;
}

static uint32_t f_min_heap(void *ctx)
{
    return ((fake_port_t *)ctx)->free_heap / 2;
}

static esp_err_t f_rssi(void *ctx, int8_t *out)
{
    *out = ((fake_port_t *)ctx)->rssi;
    return ESP_OK;
}

static void f_restart(void *ctx)
{
    ((fake_port_t *)ctx)->restarts++;
}

static void f_identify(void *ctx)
{
    ((fake_port_t *)ctx)->identifies++;
}

static esp_err_t f_ota(void *ctx, const char *url, const char *sha, const char *version)
{
    fake_port_t *fp = ctx;
    (void)url;
    (void)sha;
    fp->otas++;
    strncpy(fp->ota_version, version, sizeof fp->ota_version - 1);
    return fp->ota_result;
}

void fp_init(fake_port_t *fp)
{
    memset(fp, 0, sizeof *fp);
    fp->now = 1000;
    fp->free_heap = 200000;
    fp->rssi = -61;
    mcp_port_t *p = &fp->port;
    p->ctx = fp;
    p->attach = f_attach;
    p->detach = f_detach;
    p->mqtt_connect = f_connect;
    p->mqtt_disconnect = f_disconnect;
    p->mqtt_publish = f_publish;
    p->mqtt_subscribe = f_subscribe;
    p->now_ms = f_now;
    p->epoch_ms = f_epoch;
    p->kv_load = f_kv_load;
    p->kv_store = f_kv_store;
    p->device_id_from_mac = f_devid;
    p->mac_string = f_mac;
    p->free_heap = f_heap;
    p->min_free_heap = f_min_heap;
    p->rssi = f_rssi;
    p->restart = f_restart;
    p->identify = f_identify;
    p->ota_start = f_ota;
}

void fp_clear(fake_port_t *fp)
{
    for (size_t i = 0; i < fp->n_msgs; i++) {
        free(fp->msgs[i].topic);
        free(fp->msgs[i].payload);
    }
    fp->n_msgs = 0;
}

void fp_free(fake_port_t *fp)
{
    fp_clear(fp);
    free(fp->msgs);
    fp->msgs = NULL;
    fp->cap_msgs = 0;
}

const fp_msg_t *fp_last(const fake_port_t *fp, const char *topic)
{
    for (size_t i = fp->n_msgs; i > 0; i--) {
        if (strcmp(fp->msgs[i - 1].topic, topic) == 0) {
            return &fp->msgs[i - 1];
        }
    }
    return NULL;
}

size_t fp_count(const fake_port_t *fp, const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < fp->n_msgs; i++) {
        n += strcmp(fp->msgs[i].topic, topic) == 0;
    }
    return n;
}

size_t fp_count_prefix(const fake_port_t *fp, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (size_t i = 0; i < fp->n_msgs; i++) {
        n += strncmp(fp->msgs[i].topic, prefix, pl) == 0;
    }
    return n;
}

void fp_send_len(mcp_core_t *core, const char *topic, const void *payload, size_t len)
{
    mcp_core_on_message(core, topic, strlen(topic), payload, len, len, 0);
}

void fp_send(mcp_core_t *core, const char *topic, const char *payload)
{
    fp_send_len(core, topic, payload, strlen(payload));
}
