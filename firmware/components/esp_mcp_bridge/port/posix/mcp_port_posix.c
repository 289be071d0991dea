/*
 * POSIX port: libmosquitto driven by a few shared poll() loops (reconnect
 * with backoff), a recursive pthread mutex per device, CLOCK_MONOTONIC /
 * CLOCK_REALTIME, and a file-per-key store.
 *
 * Network loops: mosquitto_loop() uses select(), which cannot watch a file
 * descriptor above FD_SETSIZE (1024) -- a process with a few hundred clients
 * gets there. Instead NET_LOOPS threads each serve any number of clients with
 * poll(): mosquitto_socket() + mosquitto_want_write() give the events,
 * mosquitto_loop_read/loop_write/loop_misc do the work, and
 * mosquitto_connect_async() starts connections without blocking the others.
 * A publish from another thread (the core's tick, the application) only
 * queues inside libmosquitto; it wakes the loop through a pipe.
 */
#define _GNU_SOURCE
#include "mcp_port_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOST_MAX 256
#define NET_LOOPS 2               /* poll() threads shared by all devices of the process */
#define NET_MAX_CONNECTING 64     /* connection attempts in flight per loop (broker's listen backlog) */
#define NET_MISC_PERIOD_MS 250u   /* keepalive / retry checks */
#define NET_STOP_FLUSH_MS 1000u   /* how long a stopping device may take to send "offline" + DISCONNECT */
#define NET_BACKOFF_MIN_MS 250u
#define NET_BACKOFF_MAX_MS 5000u
#define FDS_PER_DEVICE 3          /* the socket + libmosquitto's internal socket pair */

typedef struct net_loop net_loop_t;

typedef enum {
    NS_WAIT,       /* not connected: connect at ns_next */
    NS_ACTIVE,     /* socket open (connecting or connected) */
} net_state_t;

struct mcp_posix_device {
    mcp_port_t port;
    mcp_core_t *core;
    pthread_mutex_t mu;
    struct mosquitto *mosq;
    net_loop_t *loop;        /* the network loop serving this device (NULL: none) */
    bool net_running;        /* registered with a loop (guarded by the caller of start/stop) */
    atomic_bool net_stop;    /* asked to leave its loop */
    bool net_done;           /* left its loop (guarded by loop->mu) */
    atomic_bool disconnecting; /* clean disconnect queued: do not reconnect */
    atomic_bool connected;
    atomic_bool want_reconnect;
    /* loop thread only */
    net_state_t ns_state;
    uint64_t ns_next;
    uint32_t ns_backoff;  /* the wait before the next attempt (logs) */
    uint32_t ns_attempt;  /* attempts since the last session */
    uint64_t ns_stop_deadline;
    bool ns_session;         /* CONNACK accepted since the last attempt */
    bool ns_refused;         /* CONNACK refused since the last attempt (already counted) */
    bool ns_finished;        /* may leave the loop */
    bool own_core;
    /* singleton mode: own tick thread */
    pthread_t tick_thread;
    bool tick_running;
    atomic_bool tick_stop;

    char host[HOST_MAX];
    int port_no;
    int keepalive_s;
    /* connection settings, kept for the fresh client of a simulated reboot */
    char client_id[MCP_DEVICE_ID_BUF_SIZE + 32];
    char username[128];
    char password[128];
    char lwt_topic[256];
    char lwt_payload[16];
    size_t lwt_len;
    int lwt_qos;
    bool lwt_retain;
    char alpn[32];
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

static void net_wake(net_loop_t *l);
static esp_err_t net_add(mcp_posix_device_t *d);
static esp_err_t client_new(mcp_posix_device_t *d);
static void net_remove(mcp_posix_device_t *d);

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
        net_wake(d->loop);
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
        d->ns_session = true;
        atomic_store(&d->connected, true);
        logf_dev(d, MCP_LOG_INFO, "connected to %s:%d", d->host, d->port_no);
        mcp_core_on_connected(d->core);
    } else {
        d->ns_refused = true;
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
    if (rc != 0 && d->ns_session) {
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

/* --- network loops ----------------------------------------------------------- */

struct net_loop {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* a device left the loop, or the loop ended */
    pthread_t thread;
    bool running;            /* the thread serves devices */
    bool joinable;           /* the thread ended but was not joined yet */
    int wake_r, wake_w;      /* pipe: a publish from another thread is waiting */
    atomic_bool wake_pending;
    mcp_posix_device_t **devs; /* guarded by mu */
    size_t n, cap;
    /* loop thread only: a copy of devs and the poll set (grown with the device count) */
    mcp_posix_device_t **snap;
    struct pollfd *pfd;
    mcp_posix_device_t **pfd_dev;
    size_t snap_cap;
    uint64_t next_misc;
};

static pthread_mutex_t s_net_mu = PTHREAD_MUTEX_INITIALIZER;
static net_loop_t s_net[NET_LOOPS];
static bool s_net_init;

static void net_wake(net_loop_t *l)
{
    /* from the loop thread itself (callbacks) the next poll set sees the queue anyway */
    if (l && !pthread_equal(pthread_self(), l->thread) && !atomic_exchange(&l->wake_pending, true)) {
        char b = 1;
        if (write(l->wake_w, &b, 1) < 0) {
            /* the pipe is full: a wake-up is pending anyway */
        }
    }
}

/* The wait comes from the core's policy (doubling, with jitter: core/src/mcp_link.c). */
static void net_schedule_retry(mcp_posix_device_t *d, uint64_t now)
{
    if (atomic_exchange(&d->want_reconnect, false)) {
        d->ns_attempt = 0; /* dropped on purpose (simulated restart) */
        d->ns_next = now;
        return;
    }
    if (d->ns_session) {
        d->ns_attempt = 0; /* was up: first retry soon */
    }
    pthread_mutex_lock(&d->mu);
    d->ns_backoff = mcp_core_reconnect_delay_ms(d->core, d->ns_attempt);
    pthread_mutex_unlock(&d->mu);
    d->ns_attempt++;
    d->ns_next = now + d->ns_backoff;
}

/* Advance one device's connection state; returns true when it has an open socket. */
static bool net_service(mcp_posix_device_t *d, uint64_t now, unsigned *connecting, int *timeout)
{
    bool stop = atomic_load(&d->net_stop);
    if (stop && d->ns_stop_deadline == 0) {
        d->ns_stop_deadline = now + NET_STOP_FLUSH_MS;
    }
    if (d->ns_state == NS_ACTIVE && mosquitto_socket(d->mosq) < 0) {
        /* closed: by the broker, by an error, or after our DISCONNECT went out */
        d->ns_state = NS_WAIT;
        if (!stop && atomic_load(&d->want_reconnect)) {
            /* a simulated reboot: a rebooted ESP32 has an empty outbox, so a new
             * client (libmosquitto would re-send the unacknowledged "offline"
             * after the new "online", leaving the retained status wrong) */
            pthread_mutex_lock(&d->mu);
            esp_err_t err = client_new(d);
            pthread_mutex_unlock(&d->mu);
            if (err != ESP_OK) {
                logf_dev(d, MCP_LOG_ERROR, "cannot create the MQTT client (%s)", mcp_bridge_err_to_name(err));
            }
        }
        bool failed = !d->ns_session && !d->ns_refused && !stop;
        net_schedule_retry(d, now);
        if (failed) {
            logf_dev(d, MCP_LOG_WARN, "cannot connect to %s:%d, retry in %u ms", d->host, d->port_no,
                     (unsigned)d->ns_backoff);
            pthread_mutex_lock(&d->mu);
            mcp_core_on_connect_failed(d->core);
            pthread_mutex_unlock(&d->mu);
        }
    }
    if (stop) {
        if (d->ns_state != NS_ACTIVE || now >= d->ns_stop_deadline) {
            d->ns_finished = true;
            *timeout = 0;
            return false;
        }
        int left = (int)(d->ns_stop_deadline - now);
        *timeout = left < *timeout ? left : *timeout;
        return true;
    }
    if (d->ns_state == NS_ACTIVE) {
        if (!d->ns_session && !d->ns_refused) {
            (*connecting)++;
        }
        return true;
    }
    if (atomic_load(&d->disconnecting)) {
        return false; /* stopped cleanly: wait for the stop request */
    }
    if (now < d->ns_next || *connecting >= NET_MAX_CONNECTING) {
        uint64_t wait = now < d->ns_next ? d->ns_next - now : NET_MISC_PERIOD_MS;
        if (wait < (uint64_t)*timeout) {
            *timeout = (int)wait;
        }
        return false;
    }
    d->ns_session = false;
    d->ns_refused = false;
    atomic_store(&d->want_reconnect, false);
    if (!d->mosq) {
        pthread_mutex_lock(&d->mu);
        esp_err_t err = client_new(d);
        pthread_mutex_unlock(&d->mu);
        if (err != ESP_OK) {
            net_schedule_retry(d, now);
            return false;
        }
    }
    int rc = mosquitto_connect_async(d->mosq, d->host, d->port_no, d->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        net_schedule_retry(d, now);
        logf_dev(d, MCP_LOG_WARN, "cannot connect to %s:%d (%s), retry in %u ms", d->host, d->port_no,
                 mosquitto_strerror(rc), (unsigned)d->ns_backoff);
        pthread_mutex_lock(&d->mu);
        mcp_core_on_connect_failed(d->core);
        pthread_mutex_unlock(&d->mu);
        return false;
    }
    d->ns_state = NS_ACTIVE;
    (*connecting)++;
    return mosquitto_socket(d->mosq) >= 0;
}

static bool net_grow(net_loop_t *l, size_t n)
{
    if (n <= l->snap_cap) {
        return true;
    }
    size_t cap = l->snap_cap ? l->snap_cap : 16;
    while (cap < n) {
        cap *= 2;
    }
    mcp_posix_device_t **snap = realloc(l->snap, cap * sizeof *snap);
    if (snap) {
        l->snap = snap;
    }
    struct pollfd *pfd = realloc(l->pfd, (cap + 1) * sizeof *pfd);
    if (pfd) {
        l->pfd = pfd;
    }
    mcp_posix_device_t **pd = realloc(l->pfd_dev, (cap + 1) * sizeof *pd);
    if (pd) {
        l->pfd_dev = pd;
    }
    if (!snap || !pfd || !pd) {
        return false;
    }
    l->snap_cap = cap;
    return true;
}

static void *net_main(void *arg)
{
    net_loop_t *l = arg;
    for (;;) {
        /* devices that are done leave; the rest is served without the lock */
        pthread_mutex_lock(&l->mu);
        size_t kept = 0;
        bool left = false;
        for (size_t i = 0; i < l->n; i++) {
            mcp_posix_device_t *d = l->devs[i];
            if (d->ns_finished) {
                d->net_done = true;
                left = true;
            } else {
                l->devs[kept++] = d;
            }
        }
        l->n = kept;
        if (left) {
            pthread_cond_broadcast(&l->cv);
        }
        if (l->n == 0 || !net_grow(l, l->n)) {
            /* nothing to serve (or no memory for the poll set: the devices are
             * released as if stopped, nothing is left hanging) */
            for (size_t i = 0; i < l->n; i++) {
                l->devs[i]->net_done = true;
            }
            l->n = 0;
            l->running = false;
            l->joinable = true;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            return NULL;
        }
        size_t n = l->n;
        memcpy(l->snap, l->devs, n * sizeof *l->snap);
        pthread_mutex_unlock(&l->mu);

        uint64_t now = mcp_posix_monotonic_ms();
        int timeout = (int)NET_MISC_PERIOD_MS;
        unsigned connecting = 0;
        size_t np = 1;
        l->pfd[0] = (struct pollfd){.fd = l->wake_r, .events = POLLIN};
        for (size_t i = 0; i < n; i++) {
            mcp_posix_device_t *d = l->snap[i];
            if (!net_service(d, now, &connecting, &timeout)) {
                continue;
            }
            int fd = mosquitto_socket(d->mosq);
            if (fd < 0) {
                continue;
            }
            l->pfd[np] = (struct pollfd){.fd = fd, .events = (short)(POLLIN | (mosquitto_want_write(d->mosq) ? POLLOUT : 0))};
            l->pfd_dev[np] = d;
            np++;
        }
        int ready = poll(l->pfd, (nfds_t)np, timeout);
        if (ready < 0 && errno != EINTR) {
            logf_dev(l->snap[0], MCP_LOG_ERROR, "poll failed (%s)", strerror(errno));
            sleep_ms(10);
        }
        if (ready > 0 && (l->pfd[0].revents & POLLIN)) {
            atomic_store(&l->wake_pending, false);
            char buf[64];
            while (read(l->wake_r, buf, sizeof buf) > 0) {
            }
        }
        for (size_t k = 1; ready > 0 && k < np; k++) {
            short re = l->pfd[k].revents;
            if (!re) {
                continue;
            }
            struct mosquitto *m = l->pfd_dev[k]->mosq;
            int rc = MOSQ_ERR_SUCCESS;
            if (re & (POLLIN | POLLERR | POLLHUP)) {
                rc = mosquitto_loop_read(m, 1);
            }
            /* answers queued by the callbacks go out at once */
            if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(m) >= 0 && ((re & POLLOUT) || mosquitto_want_write(m))) {
                mosquitto_loop_write(m, 1);
            }
        }
        now = mcp_posix_monotonic_ms();
        if (now >= l->next_misc) {
            l->next_misc = now + NET_MISC_PERIOD_MS;
            for (size_t i = 0; i < n; i++) {
                mcp_posix_device_t *d = l->snap[i];
                if (d->ns_state == NS_ACTIVE && mosquitto_socket(d->mosq) >= 0) {
                    mosquitto_loop_misc(d->mosq); /* keepalive: PINGREQ, or drop a dead connection */
                }
            }
        }
    }
}

static void net_loop_close(net_loop_t *l)
{
    /* l->mu held, the thread ended */
    if (l->joinable) {
        pthread_join(l->thread, NULL);
        l->joinable = false;
        close(l->wake_r);
        close(l->wake_w);
        l->wake_r = l->wake_w = -1;
    }
}

/* Hand the device to the least busy loop (starting its thread when needed). */
static esp_err_t net_add(mcp_posix_device_t *d)
{
    pthread_mutex_lock(&s_net_mu);
    if (!s_net_init) {
        for (size_t i = 0; i < NET_LOOPS; i++) {
            pthread_mutex_init(&s_net[i].mu, NULL);
            pthread_cond_init(&s_net[i].cv, NULL);
            s_net[i].wake_r = s_net[i].wake_w = -1;
        }
        s_net_init = true;
    }
    net_loop_t *l = NULL;
    size_t least = SIZE_MAX;
    for (size_t i = 0; i < NET_LOOPS; i++) {
        pthread_mutex_lock(&s_net[i].mu);
        if (s_net[i].n < least) {
            least = s_net[i].n;
            l = &s_net[i];
        }
        pthread_mutex_unlock(&s_net[i].mu);
    }
    pthread_mutex_lock(&l->mu);
    esp_err_t err = ESP_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        mcp_posix_device_t **devs = realloc(l->devs, cap * sizeof *devs);
        if (!devs) {
            err = ESP_ERR_NO_MEM;
        } else {
            l->devs = devs;
            l->cap = cap;
        }
    }
    if (err == ESP_OK && !l->running) {
        net_loop_close(l);
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            err = ESP_FAIL;
        } else {
            l->wake_r = fds[0];
            l->wake_w = fds[1];
            atomic_store(&l->wake_pending, false);
            l->next_misc = 0;
            if (pthread_create(&l->thread, NULL, net_main, l) != 0) {
                close(fds[0]);
                close(fds[1]);
                l->wake_r = l->wake_w = -1;
                err = ESP_FAIL;
            } else {
                l->running = true;
            }
        }
    }
    if (err == ESP_OK) {
        d->loop = l;
        d->net_done = false;
        d->ns_state = NS_WAIT;
        d->ns_next = 0;
        d->ns_backoff = NET_BACKOFF_MIN_MS;
        d->ns_attempt = 0;
        d->ns_stop_deadline = 0;
        d->ns_finished = false;
        d->ns_session = false;
        d->ns_refused = false;
        l->devs[l->n++] = d;
    }
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&s_net_mu);
    if (err == ESP_OK) {
        net_wake(l);
    }
    return err;
}

/* Ask the loop to let the device go (after flushing what is queued, bounded)
 * and wait until it did. Must not be called with d->mu held. */
static void net_remove(mcp_posix_device_t *d)
{
    net_loop_t *l = d->loop;
    if (!l) {
        return;
    }
    atomic_store(&d->net_stop, true);
    net_wake(l);
    pthread_mutex_lock(&l->mu);
    while (!d->net_done) {
        pthread_cond_wait(&l->cv, &l->mu);
    }
    if (!l->running) {
        net_loop_close(l);
    }
    pthread_mutex_unlock(&l->mu);
    d->loop = NULL;
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

/* A new mosquitto client from the settings p_connect stored (also for the
 * fresh client of a simulated reboot). Caller holds d->mu or owns d alone. */
static esp_err_t client_new(mcp_posix_device_t *d)
{
    if (d->mosq) {
        mosquitto_destroy(d->mosq);
    }
    d->mosq = mosquitto_new(d->client_id, true, d);
    if (!d->mosq) {
        return ESP_ERR_NO_MEM;
    }
    struct mosquitto *m = d->mosq;
    mosquitto_threaded_set(m, true);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Commands are small request/response pairs: without this, Nagle and delayed ACKs
     * add ~40 ms to every round trip (lwIP on the ESP32 sends small segments at once). */
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_message_callback_set(m, on_message);
    if (d->username[0] && mosquitto_username_pw_set(m, d->username, d->password) != MOSQ_ERR_SUCCESS) {
        return ESP_ERR_INVALID_ARG;
    }
    if (mosquitto_will_set(m, d->lwt_topic, (int)d->lwt_len, d->lwt_payload, d->lwt_qos, d->lwt_retain) !=
        MOSQ_ERR_SUCCESS) {
        return ESP_ERR_INVALID_ARG;
    }
    if (d->tls) {
        const char *cafile = d->ca_file[0] ? d->ca_file : NULL;
        const char *capath = cafile ? NULL : "/etc/ssl/certs";
        int rc = mosquitto_tls_set(m, cafile, capath, d->cert_file[0] ? d->cert_file : NULL,
                                   d->key_file[0] ? d->key_file : NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            logf_dev(d, MCP_LOG_ERROR, "TLS setup failed: %s", mosquitto_strerror(rc));
            return ESP_ERR_INVALID_ARG;
        }
        if (d->insecure) {
            mosquitto_tls_insecure_set(m, true);
            mosquitto_tls_opts_set(m, 0 /* SSL_VERIFY_NONE */, NULL, NULL);
        }
        if (d->alpn[0]) {
            mosquitto_string_option(m, MOSQ_OPT_TLS_ALPN, d->alpn);
        }
    }
    return ESP_OK;
}

static bool copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        return false;
    }
    if (n) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
    return true;
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
    if (!copy_field(d->client_id, sizeof d->client_id, p->client_id) ||
        !copy_field(d->username, sizeof d->username, p->username) ||
        !copy_field(d->password, sizeof d->password, p->username ? p->password : NULL) ||
        !copy_field(d->lwt_topic, sizeof d->lwt_topic, p->lwt_topic) || p->lwt_len > sizeof d->lwt_payload ||
        !copy_field(d->alpn, sizeof d->alpn, p->tls ? p->tls->alpn_protocols[0] : NULL)) {
        return ESP_ERR_INVALID_ARG;
    }
    memcpy(d->lwt_payload, p->lwt_payload, p->lwt_len);
    d->lwt_len = p->lwt_len;
    d->lwt_qos = p->lwt_qos;
    d->lwt_retain = p->lwt_retain;
    esp_err_t err = client_new(d);
    if (err != ESP_OK) {
        return err;
    }
    d->keepalive_s = p->keepalive_s ? p->keepalive_s : 30;
    atomic_store(&d->net_stop, false);
    atomic_store(&d->disconnecting, false);
    atomic_store(&d->want_reconnect, false);
    err = net_add(d);
    if (err != ESP_OK) {
        return err;
    }
    d->net_running = true;
    return ESP_OK;
}

static esp_err_t p_disconnect(void *ctx)
{
    mcp_posix_device_t *d = ctx;
    atomic_store(&d->disconnecting, true);
    if (d->mosq) {
        mosquitto_disconnect(d->mosq); /* queued after "offline"; no LWT */
        net_wake(d->loop);
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
    if (rc != MOSQ_ERR_SUCCESS) {
        return ESP_FAIL;
    }
    net_wake(d->loop);
    return ESP_OK;
}

static esp_err_t p_subscribe(void *ctx, const char *filter, int qos)
{
    mcp_posix_device_t *d = ctx;
    if (!d->mosq) {
        return ESP_FAIL;
    }
    if (mosquitto_subscribe(d->mosq, NULL, filter, qos) != MOSQ_ERR_SUCCESS) {
        return ESP_FAIL;
    }
    net_wake(d->loop);
    return ESP_OK;
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
        net_remove(d);
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
        /* a host reconnects faster than a chip (tests, simulations): 250 ms .. 5 s */
        mcp_bridge_config_t cfg = *config;
        cfg.reconnect_min_ms = cfg.reconnect_min_ms ? cfg.reconnect_min_ms : NET_BACKOFF_MIN_MS;
        cfg.reconnect_max_ms = cfg.reconnect_max_ms ? cfg.reconnect_max_ms : NET_BACKOFF_MAX_MS;
        err = mcp_core_create(&cfg, &d->port, &d->core);
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

/* The core publishes "offline" and queues the DISCONNECT. */
static esp_err_t stop_core(mcp_posix_device_t *dev)
{
    pthread_mutex_lock(&dev->mu);
    esp_err_t err = ESP_OK;
    mcp_bridge_status_t st;
    mcp_core_get_status(dev->core, &st);
    if (st.state == MCP_BRIDGE_STATE_CONNECTING || st.state == MCP_BRIDGE_STATE_CONNECTED) {
        err = mcp_core_stop(dev->core);
    }
    pthread_mutex_unlock(&dev->mu);
    return err;
}

esp_err_t mcp_posix_device_stop(mcp_posix_device_t *dev)
{
    esp_err_t err = stop_core(dev);
    stop_net(dev);
    return err;
}

esp_err_t mcp_posix_reserve_fds(size_t devices)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return ESP_FAIL;
    }
    rlim_t need = (rlim_t)devices * FDS_PER_DEVICE + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max; /* as far as allowed */
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = was;
        }
    }
    return (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) ? ESP_OK : ESP_ERR_INVALID_SIZE;
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
    esp_err_t result = mcp_posix_reserve_fds(count);
    if (result != ESP_OK) {
        fprintf(stderr, "mcp_posix_run: %zu devices need about %zu open files; RLIMIT_NOFILE is lower\n", count,
                count * FDS_PER_DEVICE + 64);
        return result;
    }
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
    /* all devices publish "offline" and disconnect at once, then leave their loops */
    for (size_t i = 0; i < count; i++) {
        stop_core(devices[i]);
    }
    for (size_t i = 0; i < count; i++) {
        if (devices[i]->loop) {
            atomic_store(&devices[i]->net_stop, true);
            net_wake(devices[i]->loop);
        }
    }
    for (size_t i = 0; i < count; i++) {
        stop_net(devices[i]);
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
