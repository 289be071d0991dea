/*
 * POSIX port: libmosquitto (own network thread per device running
 * mosquitto_loop, reconnect with backoff), a recursive pthread mutex per
 * device, CLOCK_MONOTONIC / CLOCK_REALTIME, and a file-per-key store.
 */
#define _GNU_SOURCE
#include "mcp_port_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOST_MAX 256

struct mcp_posix_device {
    mcp_port_t port;
    mcp_core_t *core;
    pthread_mutex_t mu;
    struct mosquitto *mosq;
    pthread_t net_thread;
    bool net_running;
    atomic_bool net_stop;
    atomic_bool connected;
    atomic_bool want_reconnect;
    bool own_core;
    /* singleton mode: own tick thread */
    pthread_t tick_thread;
    bool tick_running;
    atomic_bool tick_stop;

    char host[HOST_MAX];
    int port_no;
    bool tls;
    char state_dir[PATH_MAX];
    char ca_file[PATH_MAX];
    char cert_file[PATH_MAX];
    char key_file[PATH_MAX];
    bool insecure;
    int log_level;
    char mac[24];
    uint32_t free_heap;
    uint32_t min_free_heap;
    int8_t rssi;
    char log_id[MCP_DEVICE_ID_BUF_SIZE];
};

static pthread_once_t s_lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mosquitto_lib_init();
}

uint64_t mcp_posix_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t mcp_posix_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------ */
/* port functions                                                            */
/* ------------------------------------------------------------------------ */

static void p_log(void *ctx, mcp_log_level_t level, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void p_log(void *ctx, mcp_log_level_t level, const char *fmt, va_list ap)
{
    mcp_posix_device_t *d = ctx;
    if ((int)level > d->log_level || level == MCP_LOG_NONE) {
        return;
    }
    static const char *const names[] = {"", "E", "W", "I", "D", "V"};
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s [%s] %s\n", names[level], d->log_id[0] ? d->log_id : "mcp", line);
}

static void logf_dev(mcp_posix_device_t *d, mcp_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_dev(mcp_posix_device_t *d, mcp_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p_log(d, level, fmt, ap);
    va_end(ap);
}

static void p_lock(void *ctx)
{
    pthread_mutex_lock(&((mcp_posix_device_t *)ctx)->mu);
}

static void p_unlock(void *ctx)
{
    pthread_mutex_unlock(&((mcp_posix_device_t *)ctx)->mu);
}

static uint64_t p_now(void *ctx)
{
    (void)ctx;
    return mcp_posix_monotonic_ms();
}

static uint64_t p_epoch(void *ctx)
{
    (void)ctx;
    return mcp_posix_epoch_ms();
}

static bool valid_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 15) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
            return false;
        }
    }
    return true;
}

static esp_err_t p_kv_load(void *ctx, const char *key, void *buf, size_t *len)
{
    mcp_posix_device_t *d = ctx;
    if (!d->state_dir[0]) {
        return ESP_ERR_NOT_FOUND;
    }
    if (!valid_key(key)) {
        return ESP_ERR_INVALID_ARG;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", d->state_dir, key);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return ESP_ERR_NOT_FOUND;
    }
    size_t n = fread(buf, 1, *len, f);
    int extra = fgetc(f);
    fclose(f);
    if (extra != EOF) {
        return ESP_ERR_INVALID_SIZE;
    }
    *len = n;
    return ESP_OK;
}

static esp_err_t p_kv_store(void *ctx, const char *key, const void *data, size_t len)
{
    mcp_posix_device_t *d = ctx;
    if (!d->state_dir[0]) {
        return ESP_OK; /* nothing persists without a state dir */
    }
    if (!valid_key(key)) {
        return ESP_ERR_INVALID_ARG;
    }
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/%s", d->state_dir, key);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", d->state_dir, key);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return ESP_FAIL;
    }
    bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return ESP_FAIL;
    }
    return ESP_OK;
}

static esp_err_t p_device_id(void *ctx, char *buf, size_t len)
{
    mcp_posix_device_t *d = ctx;
    unsigned b[6];
    if (sscanf(d->mac, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        return ESP_FAIL;
    }
    int n = snprintf(buf, len, "esp32-%02x%02x%02x", b[3], b[4], b[5]);
    return (n > 0 && (size_t)n < len) ? ESP_OK : ESP_ERR_INVALID_SIZE;
}

static esp_err_t p_mac(void *ctx, char *buf, size_t len)
{
    mcp_posix_device_t *d = ctx;
    int n = snprintf(buf, len, "%s", d->mac);
    return (n > 0 && (size_t)n < len) ? ESP_OK : ESP_ERR_INVALID_SIZE;
}

static uint32_t p_free_heap(void *ctx)
{
    return ((mcp_posix_device_t *)ctx)->free_heap;
}

static uint32_t p_min_free_heap(void *ctx)
{
    return ((mcp_posix_device_t *)ctx)->min_free_heap;
}

static esp_err_t p_rssi(void *ctx, int8_t *out)
{
    *out = ((mcp_posix_device_t *)ctx)->rssi;
    return ESP_OK;
}

static void p_restart(void *ctx)
{
    /* a simulated reboot: drop the connection; the network thread connects
     * again and the core announces itself as after a boot */
    mcp_posix_device_t *d = ctx;
    logf_dev(d, MCP_LOG_INFO, "restart requested: reconnecting");
    atomic_store(&d->want_reconnect, true);
    if (d->mosq) {
        mosquitto_disconnect(d->mosq);
    }
}

static esp_err_t p_ota(void *ctx, const char *url, const char *sha256, const char *version)
{
    mcp_posix_device_t *d = ctx;
    (void)sha256;
    (void)url;
    logf_dev(d, MCP_LOG_INFO, "OTA to version %s requested (simulated, nothing downloaded)", version);
    return ESP_OK;
}

static void p_identify(void *ctx)
{
    logf_dev(ctx, MCP_LOG_INFO, "identify: *blink*");
}

/* --- MQTT ---------------------------------------------------------------- */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    mcp_posix_device_t *d = obj;
    pthread_mutex_lock(&d->mu);
    if (rc == 0) {
        atomic_store(&d->connected, true);
        logf_dev(d, MCP_LOG_INFO, "connected to %s:%d", d->host, d->port_no);
        mcp_core_on_connected(d->core);
    } else {
        logf_dev(d, MCP_LOG_WARN, "broker refused the connection: %s", mosquitto_connack_string(rc));
        mcp_core_on_connect_failed(d->core);
    }
    pthread_mutex_unlock(&d->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    mcp_posix_device_t *d = obj;
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->connected, false);
    if (rc != 0) {
        logf_dev(d, MCP_LOG_WARN, "connection lost (%s)", mosquitto_strerror(rc));
    }
    mcp_core_on_disconnected(d->core);
    pthread_mutex_unlock(&d->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    mcp_posix_device_t *d = obj;
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    pthread_mutex_lock(&d->mu);
    mcp_core_on_message(d->core, msg->topic, strlen(msg->topic), msg->payload, len, len, 0);
    pthread_mutex_unlock(&d->mu);
}

static void *net_main(void *arg)
{
    mcp_posix_device_t *d = arg;
    uint32_t backoff = 250;
    bool need_connect = true;
    while (!atomic_load(&d->net_stop)) {
        if (need_connect) {
            int rc = mosquitto_connect(d->mosq, d->host, d->port_no, 30);
            if (rc != MOSQ_ERR_SUCCESS) {
                if (atomic_load(&d->net_stop)) {
                    break;
                }
                logf_dev(d, MCP_LOG_WARN, "cannot connect to %s:%d (%s), retry in %u ms", d->host, d->port_no,
                         mosquitto_strerror(rc), (unsigned)backoff);
                pthread_mutex_lock(&d->mu);
                mcp_core_on_connect_failed(d->core);
                pthread_mutex_unlock(&d->mu);
                for (uint32_t t = 0; t < backoff && !atomic_load(&d->net_stop); t += 50) {
                    sleep_ms(50);
                }
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            need_connect = false;
        }
        int rc = mosquitto_loop(d->mosq, 50, 1);
        if (rc != MOSQ_ERR_SUCCESS && !atomic_load(&d->net_stop)) {
            /* lost or dropped on purpose (simulated restart): connect again */
            if (atomic_exchange(&d->want_reconnect, false)) {
                backoff = 250;
            } else {
                for (uint32_t t = 0; t < backoff && !atomic_load(&d->net_stop); t += 50) {
                    sleep_ms(50);
                }
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            }
            need_connect = true;
        } else if (rc == MOSQ_ERR_SUCCESS && atomic_load(&d->connected)) {
            backoff = 250;
        }
    }
    /* flush what the core queued on stop ("offline", DISCONNECT), bounded */
    for (int i = 0; i < 40 && mosquitto_socket(d->mosq) >= 0; i++) {
        mosquitto_loop(d->mosq, 25, 1);
    }
    return NULL;
}

static bool parse_uri(mcp_posix_device_t *d, const char *uri)
{
    const char *rest;
    if (strncmp(uri, "mqtt://", 7) == 0 || strncmp(uri, "tcp://", 6) == 0) {
        rest = strstr(uri, "://") + 3;
        d->port_no = 1883;
    } else if (strncmp(uri, "mqtts://", 8) == 0 || strncmp(uri, "ssl://", 6) == 0) {
        rest = strstr(uri, "://") + 3;
        d->port_no = 8883;
        d->tls = true;
    } else {
        return false;
    }
    const char *colon = strrchr(rest, ':');
    const char *end = rest + strlen(rest);
    if (end > rest && end[-1] == '/') {
        end--;
    }
    size_t hlen = (colon && colon < end) ? (size_t)(colon - rest) : (size_t)(end - rest);
    if (hlen == 0 || hlen >= sizeof d->host) {
        return false;
    }
    memcpy(d->host, rest, hlen);
    d->host[hlen] = '\0';
    if (colon && colon < end) {
        char *e;
        long p = strtol(colon + 1, &e, 10);
        if (e != end || p <= 0 || p > 65535) {
            return false;
        }
        d->port_no = (int)p;
    }
    return true;
}

static esp_err_t write_pem(mcp_posix_device_t *d, const char *name, const char *pem, char *out_path, size_t cap)
{
    if (!d->state_dir[0]) {
        return ESP_ERR_INVALID_ARG;
    }
    snprintf(out_path, cap, "%s/%s", d->state_dir, name);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return ESP_FAIL;
    }
    size_t n = strlen(pem);
    bool ok = write(fd, pem, n) == (ssize_t)n;
    ok = (close(fd) == 0) && ok;
    return ok ? ESP_OK : ESP_FAIL;
}

static esp_err_t p_connect(void *ctx, const mcp_port_mqtt_params_t *p)
{
    mcp_posix_device_t *d = ctx;
    if (d->net_running) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!parse_uri(d, p->uri)) {
        logf_dev(d, MCP_LOG_ERROR, "unsupported broker URI (mqtt://host:port or mqtts://host:port)");
        return ESP_ERR_INVALID_ARG;
    }
    if (p->tls && p->tls->enable_tls) {
        d->tls = true;
    }
    if (p->tls && p->tls->skip_cert_verification) {
        d->insecure = true;
    }
    if (d->tls && p->tls) {
        if (!d->ca_file[0] && p->tls->ca_cert_pem &&
            write_pem(d, "tls_ca.pem", p->tls->ca_cert_pem, d->ca_file, sizeof d->ca_file) != ESP_OK) {
            return ESP_ERR_INVALID_ARG;
        }
        if (!d->cert_file[0] && p->tls->client_cert_pem && p->tls->client_key_pem &&
            (write_pem(d, "tls_cert.pem", p->tls->client_cert_pem, d->cert_file, sizeof d->cert_file) != ESP_OK ||
             write_pem(d, "tls_key.pem", p->tls->client_key_pem, d->key_file, sizeof d->key_file) != ESP_OK)) {
            return ESP_ERR_INVALID_ARG;
        }
    }
    if (d->mosq) {
        mosquitto_destroy(d->mosq);
    }
    d->mosq = mosquitto_new(p->client_id, true, d);
    if (!d->mosq) {
        return ESP_ERR_NO_MEM;
    }
    mosquitto_threaded_set(d->mosq, true);
    mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Commands are small request/response pairs: without this, Nagle and delayed ACKs
     * add ~40 ms to every round trip (lwIP on the ESP32 sends small segments at once). */
    mosquitto_int_option(d->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(d->mosq, on_connect);
    mosquitto_disconnect_callback_set(d->mosq, on_disconnect);
    mosquitto_message_callback_set(d->mosq, on_message);
    if (p->username && mosquitto_username_pw_set(d->mosq, p->username, p->password) != MOSQ_ERR_SUCCESS) {
        return ESP_ERR_INVALID_ARG;
    }
    if (mosquitto_will_set(d->mosq, p->lwt_topic, (int)p->lwt_len, p->lwt_payload, p->lwt_qos, p->lwt_retain) !=
        MOSQ_ERR_SUCCESS) {
        return ESP_ERR_INVALID_ARG;
    }
    if (d->tls) {
        const char *cafile = d->ca_file[0] ? d->ca_file : NULL;
        const char *capath = cafile ? NULL : "/etc/ssl/certs";
        int rc = mosquitto_tls_set(d->mosq, cafile, capath, d->cert_file[0] ? d->cert_file : NULL,
                                   d->key_file[0] ? d->key_file : NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            logf_dev(d, MCP_LOG_ERROR, "TLS setup failed: %s", mosquitto_strerror(rc));
            return ESP_ERR_INVALID_ARG;
        }
        if (d->insecure) {
            mosquitto_tls_insecure_set(d->mosq, true);
            mosquitto_tls_opts_set(d->mosq, 0 /* SSL_VERIFY_NONE */, NULL, NULL);
        }
        if (p->tls && p->tls->alpn_protocols[0]) {
            mosquitto_string_option(d->mosq, MOSQ_OPT_TLS_ALPN, p->tls->alpn_protocols[0]);
        }
    }
    atomic_store(&d->net_stop, false);
    if (pthread_create(&d->net_thread, NULL, net_main, d) != 0) {
        return ESP_FAIL;
    }
    d->net_running = true;
    return ESP_OK;
}

static esp_err_t p_disconnect(void *ctx)
{
    mcp_posix_device_t *d = ctx;
    if (d->mosq) {
        mosquitto_disconnect(d->mosq); /* queued after "offline"; no LWT */
    }
    return ESP_OK;
}

static esp_err_t p_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    mcp_posix_device_t *d = ctx;
    if (!d->mosq || len > INT32_MAX) {
        return ESP_FAIL;
    }
    int rc = mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, qos, retain);
    return rc == MOSQ_ERR_SUCCESS ? ESP_OK : ESP_FAIL;
}

static esp_err_t p_subscribe(void *ctx, const char *filter, int qos)
{
    mcp_posix_device_t *d = ctx;
    if (!d->mosq) {
        return ESP_FAIL;
    }
    return mosquitto_subscribe(d->mosq, NULL, filter, qos) == MOSQ_ERR_SUCCESS ? ESP_OK : ESP_FAIL;
}

/* --- binding --------------------------------------------------------------- */

static void *tick_main(void *arg)
{
    mcp_posix_device_t *d = arg;
    while (!atomic_load(&d->tick_stop)) {
        uint32_t wait = mcp_posix_device_tick(d);
        sleep_ms(wait > 50 ? 50 : (wait == 0 ? 1 : wait));
    }
    return NULL;
}

static esp_err_t p_attach(void *ctx, mcp_core_t *core)
{
    mcp_posix_device_t *d = ctx;
    d->core = core;
    snprintf(d->log_id, sizeof d->log_id, "%s", mcp_core_device_id(core));
    if (!d->own_core) {
        atomic_store(&d->tick_stop, false);
        if (pthread_create(&d->tick_thread, NULL, tick_main, d) != 0) {
            return ESP_FAIL;
        }
        d->tick_running = true;
    }
    return ESP_OK;
}

static void stop_net(mcp_posix_device_t *d)
{
    if (d->net_running) {
        atomic_store(&d->net_stop, true);
        pthread_join(d->net_thread, NULL);
        d->net_running = false;
    }
    atomic_store(&d->connected, false);
}

static void p_detach(void *ctx)
{
    mcp_posix_device_t *d = ctx;
    if (d->tick_running) {
        atomic_store(&d->tick_stop, true);
        pthread_join(d->tick_thread, NULL);
        d->tick_running = false;
    }
    stop_net(d);
    d->core = NULL;
}

/* ------------------------------------------------------------------------ */
/* device                                                                    */
/* ------------------------------------------------------------------------ */

static esp_err_t device_init(mcp_posix_device_t *d, const mcp_posix_options_t *o)
{
    static atomic_uint counter;
    pthread_once(&s_lib_once, lib_init);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&d->mu, &a);
    pthread_mutexattr_destroy(&a);
    d->log_level = MCP_LOG_INFO;
    d->free_heap = 180000;
    d->min_free_heap = 150000;
    d->rssi = -55;
    if (o) {
        if ((o->state_dir && strlen(o->state_dir) >= sizeof d->state_dir) ||
            (o->ca_file && strlen(o->ca_file) >= sizeof d->ca_file) ||
            (o->cert_file && strlen(o->cert_file) >= sizeof d->cert_file) ||
            (o->key_file && strlen(o->key_file) >= sizeof d->key_file) || (o->cert_file && !o->key_file)) {
            return ESP_ERR_INVALID_ARG;
        }
        if (o->state_dir) {
            strcpy(d->state_dir, o->state_dir);
            if (mkdir(d->state_dir, 0700) != 0 && errno != EEXIST) {
                return ESP_ERR_INVALID_ARG;
            }
        }
        if (o->ca_file) {
            strcpy(d->ca_file, o->ca_file);
        }
        if (o->cert_file) {
            strcpy(d->cert_file, o->cert_file);
            strcpy(d->key_file, o->key_file);
        }
        d->insecure = o->insecure;
        if (o->log_level) {
            d->log_level = o->log_level;
        }
        if (o->fake_free_heap) {
            d->free_heap = o->fake_free_heap;
            d->min_free_heap = o->fake_free_heap - o->fake_free_heap / 8;
        }
        if (o->fake_rssi) {
            d->rssi = o->fake_rssi;
        }
    }
    if (o && o->mac) {
        if (strlen(o->mac) >= sizeof d->mac) {
            return ESP_ERR_INVALID_ARG;
        }
        strcpy(d->mac, o->mac);
    } else {
        /* stable per host + state dir, distinct per device in one process */
        char host[128] = "host";
        gethostname(host, sizeof host - 1);
        uint32_t h = 2166136261u;
        for (const char *s = host; *s; s++) {
            h = (h ^ (unsigned char)*s) * 16777619u;
        }
        for (const char *s = d->state_dir; *s; s++) {
            h = (h ^ (unsigned char)*s) * 16777619u;
        }
        if (!d->state_dir[0]) {
            h += atomic_fetch_add(&counter, 1u) * 2654435761u;
        }
        snprintf(d->mac, sizeof d->mac, "02:00:%02x:%02x:%02x:%02x", (unsigned)(h >> 24) & 0xff,
                 (unsigned)(h >> 16) & 0xff, (unsigned)(h >> 8) & 0xff, (unsigned)h & 0xff);
    }
    mcp_port_t *p = &d->port;
    p->ctx = d;
    p->attach = p_attach;
    p->detach = p_detach;
    p->lock = p_lock;
    p->unlock = p_unlock;
    p->mqtt_connect = p_connect;
    p->mqtt_disconnect = p_disconnect;
    p->mqtt_publish = p_publish;
    p->mqtt_subscribe = p_subscribe;
    p->now_ms = p_now;
    p->epoch_ms = p_epoch;
    p->kv_load = p_kv_load;
    p->kv_store = p_kv_store;
    p->device_id_from_mac = p_device_id;
    p->mac_string = p_mac;
    p->free_heap = p_free_heap;
    p->min_free_heap = p_min_free_heap;
    p->rssi = p_rssi;
    p->restart = p_restart;
    p->ota_start = p_ota;
    p->identify = p_identify;
    p->log = p_log;
    return ESP_OK;
}

static void device_free(mcp_posix_device_t *d)
{
    if (d->mosq) {
        mosquitto_destroy(d->mosq);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
}

esp_err_t mcp_posix_device_create(const mcp_bridge_config_t *config, const mcp_posix_options_t *options,
                                  mcp_posix_device_t **out)
{
    if (!config || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    *out = NULL;
    mcp_posix_device_t *d = calloc(1, sizeof *d);
    if (!d) {
        return ESP_ERR_NO_MEM;
    }
    d->own_core = true;
    esp_err_t err = device_init(d, options);
    if (err == ESP_OK) {
        err = mcp_core_create(config, &d->port, &d->core);
    }
    if (err != ESP_OK) {
        device_free(d);
        return err;
    }
    *out = d;
    return ESP_OK;
}

mcp_core_t *mcp_posix_device_core(mcp_posix_device_t *dev)
{
    return dev->core;
}

void mcp_posix_device_lock(mcp_posix_device_t *dev)
{
    pthread_mutex_lock(&dev->mu);
}

void mcp_posix_device_unlock(mcp_posix_device_t *dev)
{
    pthread_mutex_unlock(&dev->mu);
}

const mcp_port_t *mcp_posix_device_port(mcp_posix_device_t *dev)
{
    return &dev->port;
}

esp_err_t mcp_posix_device_start(mcp_posix_device_t *dev)
{
    pthread_mutex_lock(&dev->mu);
    esp_err_t err = mcp_core_start(dev->core);
    pthread_mutex_unlock(&dev->mu);
    return err;
}

uint32_t mcp_posix_device_tick(mcp_posix_device_t *dev)
{
    pthread_mutex_lock(&dev->mu);
    uint32_t wait = dev->core ? mcp_core_tick(dev->core, mcp_posix_monotonic_ms()) : 100;
    pthread_mutex_unlock(&dev->mu);
    return wait;
}

bool mcp_posix_device_connected(mcp_posix_device_t *dev)
{
    return atomic_load(&dev->connected);
}

esp_err_t mcp_posix_device_stop(mcp_posix_device_t *dev)
{
    pthread_mutex_lock(&dev->mu);
    esp_err_t err = ESP_OK;
    mcp_bridge_status_t st;
    mcp_core_get_status(dev->core, &st);
    if (st.state == MCP_BRIDGE_STATE_CONNECTING || st.state == MCP_BRIDGE_STATE_CONNECTED) {
        err = mcp_core_stop(dev->core);
    }
    pthread_mutex_unlock(&dev->mu);
    stop_net(dev);
    return err;
}

void mcp_posix_device_destroy(mcp_posix_device_t *dev)
{
    if (!dev) {
        return;
    }
    mcp_posix_device_stop(dev);
    mcp_core_destroy(dev->core);
    device_free(dev);
}

esp_err_t mcp_posix_run(mcp_posix_device_t *const *devices, size_t count, volatile sig_atomic_t *stop)
{
    if (!devices || !stop) {
        return ESP_ERR_INVALID_ARG;
    }
    esp_err_t result = ESP_OK;
    for (size_t i = 0; i < count; i++) {
        esp_err_t e = mcp_posix_device_start(devices[i]);
        if (e != ESP_OK && e != ESP_ERR_INVALID_STATE) {
            result = e;
        }
    }
    while (!*stop && result == ESP_OK) {
        uint32_t wait = 50;
        for (size_t i = 0; i < count; i++) {
            uint32_t w = mcp_posix_device_tick(devices[i]);
            if (w < wait) {
                wait = w;
            }
        }
        sleep_ms(wait == 0 ? 1 : wait);
    }
    for (size_t i = 0; i < count; i++) {
        mcp_posix_device_stop(devices[i]);
    }
    return result;
}

/* --- singleton glue (mcp_bridge_init on a host) ---------------------------- */

esp_err_t mcp_port_default_create(const mcp_bridge_config_t *config, mcp_port_t *out)
{
    (void)config;
    mcp_posix_device_t *d = calloc(1, sizeof *d);
    if (!d) {
        return ESP_ERR_NO_MEM;
    }
    mcp_posix_options_t o = {.state_dir = getenv("MCP_BRIDGE_STATE_DIR")};
    esp_err_t err = device_init(d, &o);
    if (err != ESP_OK) {
        device_free(d);
        return err;
    }
    *out = d->port;
    return ESP_OK;
}

void mcp_port_default_destroy(mcp_port_t *port)
{
    if (port && port->ctx) {
        mcp_posix_device_t *d = port->ctx;
        p_detach(d);
        device_free(d);
        port->ctx = NULL;
    }
}
