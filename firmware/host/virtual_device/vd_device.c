#include "vd_device.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mcp_core.h"
#include "mcp_port.h"

typedef struct vd_sensor_rt {
    struct vd_device *dev;
    const vd_sensor_def_t *def;
    vd_signal_state_t signal;
    vd_rng_t fail_rng;
    uint64_t reads;
    uint64_t next_due; /* --batch: when the application reads it next */
    mcp_value_t value; /* --batch: last reading (the batch points at its string) */
} vd_sensor_rt_t;

typedef struct vd_actuator_rt {
    struct vd_device *dev;
    const vd_actuator_def_t *def;
    vd_rng_t fail_rng;
    uint64_t actions;
    uint64_t triggers;
} vd_actuator_rt_t;

struct vd_device {
    mcp_posix_device_t *posix;
    const vd_profile_t *profile;
    const vd_options_t *opts;
    char id[MCP_DEVICE_ID_BUF_SIZE];
    char name[96];
    char mac[18];
    char state_dir[4096];
    uint64_t start_ms;
    bool ready_printed;
    vd_sensor_rt_t sensors[VD_MAX_ITEMS];
    vd_actuator_rt_t actuators[VD_MAX_ITEMS];
};

void vd_log(int configured, int level, const char *device_id, const char *fmt, ...)
{
    static const char *const names[] = {"-", "E", "W", "I", "D", "V"};
    if (level > configured || level <= MCP_LOG_NONE) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    int n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %s vdev %s: ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, names[level > MCP_LOG_VERBOSE ? MCP_LOG_VERBOSE : level],
                     device_id != NULL ? device_id : "-");
    if (n < 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    if ((size_t)n < sizeof(line)) {
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    }
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; s != NULL && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool should_fail(vd_rng_t *rng, uint64_t count, uint32_t every_n, double probability)
{
    if (every_n > 0 && count % every_n == 0) {
        return true;
    }
    return probability > 0.0 && vd_rng_uniform(rng) < probability;
}

/* ------------------------------------------------------------- callbacks */

static esp_err_t sensor_compute(vd_sensor_rt_t *s, const char *sensor_id, mcp_value_t *value, int *quality)
{
    const vd_sensor_def_t *d = s->def;
    struct vd_device *dev = s->dev;
    s->reads++;
    if (should_fail(&s->fail_rng, s->reads, d->fail_every_n, d->fail_probability)) {
        vd_log(dev->opts->log_level, MCP_LOG_DEBUG, dev->id, "sensor %s: injected read failure (read %" PRIu64 ")",
               sensor_id, s->reads);
        return ESP_ERR_MCP_SENSOR_READ;
    }
    uint64_t now = mcp_posix_monotonic_ms();
    uint64_t t = now >= dev->start_ms ? now - dev->start_ms : 0;
    value->type = d->value_type;
    switch (d->value_type) {
    case MCP_VALUE_NUMBER: {
        double v = vd_signal_number(&d->signal, &s->signal, t);
        if (d->has_range) {
            v = v < d->min ? d->min : (v > d->max ? d->max : v);
        }
        value->number = v;
        break;
    }
    case MCP_VALUE_BOOLEAN:
        value->boolean = vd_signal_bool(&d->signal, &s->signal, t);
        break;
    case MCP_VALUE_ENUM:
    case MCP_VALUE_STRING: {
        size_t i = d->signal.kind == VD_SIGNAL_CYCLE ? vd_signal_index(&d->signal, &s->signal, d->option_count)
                                                     : (size_t)d->signal.value;
        if (i >= d->option_count) {
            i = 0;
        }
        snprintf(value->string, sizeof(value->string), "%s", d->options[i]);
        break;
    }
    case MCP_VALUE_TRIGGER:
    default:
        return ESP_ERR_MCP_SENSOR_READ;
    }
    if (d->quality >= 0) {
        *quality = d->quality;
    }
    return ESP_OK;
}

static esp_err_t sensor_read(const char *sensor_id, mcp_value_t *value, int *quality, void *user_data)
{
    return sensor_compute(user_data, sensor_id, value, quality);
}

static const char *action_name(mcp_action_t a)
{
    switch (a) {
    case MCP_ACTION_READ:
        return "read";
    case MCP_ACTION_WRITE:
        return "write";
    case MCP_ACTION_TOGGLE:
        return "toggle";
    case MCP_ACTION_TRIGGER:
        return "trigger";
    default:
        return "?";
    }
}

static esp_err_t actuator_control(const char *actuator_id, mcp_action_t action, mcp_value_t *value,
                                  void *user_data)
{
    vd_actuator_rt_t *a = user_data;
    const vd_actuator_def_t *d = a->def;
    struct vd_device *dev = a->dev;
    if (action == MCP_ACTION_READ) {
        return ESP_OK; /* the stored value is the real state */
    }
    a->actions++;
    if (should_fail(&a->fail_rng, a->actions, d->fail_every_n, d->fail_probability)) {
        vd_log(dev->opts->log_level, MCP_LOG_INFO, dev->id, "actuator %s: injected failure of %s (%s)",
               actuator_id, action_name(action), mcp_core_error_code_name(d->fail_code));
        return d->fail_code;
    }
    if (d->delay_ms > 0) {
        /* The actuator takes time to move (a valve, a motor): the command is answered after it. */
        struct timespec ts = {(time_t)(d->delay_ms / 1000u), (long)(d->delay_ms % 1000u) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    switch (value->type) {
    case MCP_VALUE_NUMBER:
        vd_log(dev->opts->log_level, MCP_LOG_INFO, dev->id, "actuator %s: %s -> %g", actuator_id,
               action_name(action), value->number);
        break;
    case MCP_VALUE_BOOLEAN:
        vd_log(dev->opts->log_level, MCP_LOG_INFO, dev->id, "actuator %s: %s -> %s", actuator_id,
               action_name(action), value->boolean ? "true" : "false");
        break;
    case MCP_VALUE_STRING:
    case MCP_VALUE_ENUM:
        vd_log(dev->opts->log_level, MCP_LOG_INFO, dev->id, "actuator %s: %s -> \"%s\"", actuator_id,
               action_name(action), value->string);
        break;
    case MCP_VALUE_TRIGGER:
    default:
        a->triggers++;
        vd_log(dev->opts->log_level, MCP_LOG_INFO, dev->id, "actuator %s: triggered (%" PRIu64 " times)",
               actuator_id, a->triggers);
        break;
    }
    return ESP_OK;
}

static void on_event(void *handler_args, mcp_event_base_t base, int32_t event_id, void *event_data)
{
    struct vd_device *dev = handler_args;
    (void)base;
    int lvl = dev->opts->log_level;
    switch (event_id) {
    case MCP_EVENT_CONNECTED:
        if (!dev->ready_printed) {
            dev->ready_printed = true;
            printf("READY %s\n", dev->id);
            fflush(stdout);
        }
        vd_log(lvl, MCP_LOG_INFO, dev->id, "connected");
        break;
    case MCP_EVENT_DISCONNECTED:
        vd_log(lvl, MCP_LOG_INFO, dev->id, "disconnected");
        break;
    case MCP_EVENT_COMMAND_RECEIVED: {
        const mcp_event_command_t *c = event_data;
        vd_log(lvl, MCP_LOG_DEBUG, dev->id, "command %s (id %s)", c != NULL ? c->cmd : "?",
               c != NULL && c->request_id != NULL ? c->request_id : "-");
        break;
    }
    case MCP_EVENT_ERROR: {
        const mcp_event_error_t *e = event_data;
        if (e != NULL) {
            vd_log(lvl, MCP_LOG_DEBUG, dev->id, "error published: %s: %s", e->error_type,
                   e->message != NULL ? e->message : "");
        }
        break;
    }
    case MCP_EVENT_DISCOVERY_MODE_CHANGED: {
        const mcp_discovery_mode_t *m = event_data;
        vd_log(lvl, MCP_LOG_INFO, dev->id, "discovery mode %s",
               m != NULL && *m == MCP_DISCOVERY_INTEGRATION ? "integration" : "mqtt");
        break;
    }
    case MCP_EVENT_IDENTIFY:
        vd_log(lvl, MCP_LOG_INFO, dev->id, "identify: blinking (simulated)");
        break;
    case MCP_EVENT_RESTART_REQUESTED:
        vd_log(lvl, MCP_LOG_INFO, dev->id, "restart requested");
        break;
    case MCP_EVENT_OTA_REQUESTED: {
        const mcp_event_ota_t *o = event_data;
        vd_log(lvl, MCP_LOG_INFO, dev->id, "OTA requested: version %s",
               o != NULL && o->version != NULL ? o->version : "?");
        break;
    }
    default:
        vd_log(lvl, MCP_LOG_VERBOSE, dev->id, "event %d", (int)event_id);
        break;
    }
}

/* -------------------------------------------------------------- lifecycle */

static esp_err_t make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        return ESP_OK;
    }
    return ESP_FAIL;
}

esp_err_t vd_device_create(const vd_profile_t *p, const vd_options_t *o, unsigned index, vd_device_t **out,
                           char *err, size_t err_len)
{
    *out = NULL;
    struct vd_device *dev = calloc(1, sizeof(*dev));
    if (dev == NULL) {
        snprintf(err, err_len, "out of memory");
        return ESP_ERR_NO_MEM;
    }
    dev->profile = p;
    dev->opts = o;
    const char *pname = p->name != NULL ? p->name : "Virtual device";
    if (o->device_id != NULL && o->count > 1) {
        /* vd_cli_parse checked that "<id>-<count>" is a valid id, so this fits. */
        char id[MCP_DEVICE_ID_BUF_SIZE + 16];
        int n = snprintf(id, sizeof(id), "%s-%u", o->device_id, index + 1);
        if (n < 0 || (size_t)n >= sizeof(dev->id)) {
            snprintf(err, err_len, "device id %s-%u is too long", o->device_id, index + 1);
            free(dev);
            return ESP_ERR_INVALID_ARG;
        }
        memcpy(dev->id, id, (size_t)n + 1);
        snprintf(dev->name, sizeof(dev->name), "%.80s %u", pname, index + 1);
    } else {
        snprintf(dev->id, sizeof(dev->id), "%s", o->device_id != NULL ? o->device_id : "");
        snprintf(dev->name, sizeof(dev->name), "%.90s", pname);
    }
    uint64_t h = fnv1a(dev->id[0] != '\0' ? dev->id : "virtual");
    /* Locally administered unicast MAC derived from the id: stable across runs. */
    snprintf(dev->mac, sizeof(dev->mac), "02:%02x:%02x:%02x:%02x:%02x", (unsigned)(h >> 8) & 0xffu,
             (unsigned)(h >> 16) & 0xffu, (unsigned)(h >> 24) & 0xffu, (unsigned)(h >> 32) & 0xffu,
             (unsigned)(h >> 40) & 0xffu);

    mcp_posix_options_t po = {0};
    if (o->state_dir != NULL) {
        if (make_dir(o->state_dir) != ESP_OK) {
            snprintf(err, err_len, "cannot create state directory %s: %s", o->state_dir, strerror(errno));
            free(dev);
            return ESP_ERR_INVALID_ARG;
        }
        int n = snprintf(dev->state_dir, sizeof(dev->state_dir), "%s/%s", o->state_dir,
                         dev->id[0] != '\0' ? dev->id : "default");
        if (n < 0 || (size_t)n >= sizeof(dev->state_dir)) {
            snprintf(err, err_len, "state directory path too long");
            free(dev);
            return ESP_ERR_INVALID_ARG;
        }
        po.state_dir = dev->state_dir;
    }
    po.ca_file = o->cafile;
    po.cert_file = o->cert;
    po.key_file = o->key;
    po.insecure = o->insecure;
    po.log_level = o->log_level == MCP_LOG_NONE ? MCP_LOG_ERROR : o->log_level;
    po.mac = dev->mac;

    mcp_bridge_config_t cfg = {0};
    cfg.mqtt_broker_uri = o->broker;
    cfg.mqtt_username = o->username;
    cfg.mqtt_password = o->password;
    cfg.device_id = dev->id[0] != '\0' ? dev->id : NULL;
    cfg.base_topic = o->base_topic;
    cfg.device_name = dev->name;
    cfg.manufacturer = p->manufacturer;
    cfg.model = p->model;
    cfg.fw_version = p->fw;
    cfg.hw_version = p->hw;
    cfg.sensor_publish_interval_ms = p->publish_interval_ms;
    cfg.metrics_interval_ms = p->metrics_interval_ms;
    cfg.command_timeout_ms = p->command_timeout_ms;
    cfg.max_sensors = (uint16_t)(p->sensor_count > MCP_BRIDGE_DEFAULT_MAX_SENSORS ? p->sensor_count
                                                                                  : MCP_BRIDGE_DEFAULT_MAX_SENSORS);
    cfg.max_actuators = (uint16_t)(p->actuator_count > MCP_BRIDGE_DEFAULT_MAX_ACTUATORS
                                       ? p->actuator_count
                                       : MCP_BRIDGE_DEFAULT_MAX_ACTUATORS);
    cfg.tls_config.enable_tls = strncmp(o->broker, "mqtts://", 8) == 0;
    cfg.tls_config.skip_cert_verification = o->insecure;
    cfg.discovery_holdoff_ms = o->discovery_holdoff_ms;

    esp_err_t e = mcp_posix_device_create(&cfg, &po, &dev->posix);
    if (e != ESP_OK) {
        snprintf(err, err_len, "device %s: creating it failed: %s", dev->id[0] ? dev->id : "(default id)",
                 mcp_bridge_err_to_name(e));
        free(dev);
        return e;
    }
    mcp_core_t *core = mcp_posix_device_core(dev->posix);
    if (dev->id[0] == '\0') {
        snprintf(dev->id, sizeof(dev->id), "%s", mcp_core_device_id(core));
    }
    uint64_t seed = o->seed ^ fnv1a(dev->id);
    dev->start_ms = mcp_posix_monotonic_ms();

    mcp_posix_device_lock(dev->posix);
    e = mcp_core_set_event_handler(core, on_event, dev);
    if (e == ESP_OK && o->discovery_mode >= 0) {
        /* --discovery-mode: as if an earlier set_discovery had stored it (kept in the state dir) */
        e = mcp_core_set_discovery_mode(core, (mcp_discovery_mode_t)o->discovery_mode);
        if (e != ESP_OK) {
            snprintf(err, err_len, "--discovery-mode: storing it failed: %s", mcp_bridge_err_to_name(e));
        }
    }
    for (size_t i = 0; e == ESP_OK && i < p->sensor_count; i++) {
        const vd_sensor_def_t *d = &p->sensors[i];
        vd_sensor_rt_t *s = &dev->sensors[i];
        s->dev = dev;
        s->def = d;
        vd_signal_init(&s->signal, &d->signal, seed + 2 * i + 1);
        vd_rng_seed(&s->fail_rng, seed + 2 * i + 2);
        /* --batch: the application reads the sensors (vd_device_app_step), the core does not. */
        e = mcp_core_register_sensor(core, d->id, d->type, d->unit, &d->meta, o->batch ? NULL : sensor_read, s);
        if (e != ESP_OK) {
            snprintf(err, err_len, "sensor \"%s\": registration refused: %s", d->id, mcp_bridge_err_to_name(e));
        }
    }
    for (size_t i = 0; e == ESP_OK && i < p->actuator_count; i++) {
        const vd_actuator_def_t *d = &p->actuators[i];
        vd_actuator_rt_t *a = &dev->actuators[i];
        a->dev = dev;
        a->def = d;
        vd_rng_seed(&a->fail_rng, seed + 1000003u + i);
        e = mcp_core_register_actuator(core, d->id, d->type, &d->meta, actuator_control, a);
        if (e != ESP_OK) {
            snprintf(err, err_len, "actuator \"%s\": registration refused: %s", d->id, mcp_bridge_err_to_name(e));
        } else if (d->has_initial) {
            e = mcp_core_set_actuator_value(core, d->id, &d->initial);
            if (e != ESP_OK) {
                snprintf(err, err_len, "actuator \"%s\": initial value refused: %s", d->id,
                         mcp_bridge_err_to_name(e));
            }
        }
    }
    mcp_posix_device_unlock(dev->posix);
    if (e != ESP_OK) {
        mcp_posix_device_destroy(dev->posix);
        free(dev);
        return e;
    }
    *out = dev;
    return ESP_OK;
}

uint32_t vd_device_app_step(vd_device_t *dev, uint64_t now_ms)
{
    const vd_profile_t *p = dev->profile;
    if (!dev->opts->batch || p->sensor_count == 0) {
        return 1000;
    }
    mcp_sensor_reading_t readings[VD_MAX_ITEMS];
    int qualities[VD_MAX_ITEMS];
    size_t due[VD_MAX_ITEMS];
    size_t n = 0;
    uint64_t next = now_ms + 1000;
    mcp_posix_device_lock(dev->posix);
    mcp_core_t *core = mcp_posix_device_core(dev->posix);
    bool connected = mcp_posix_device_connected(dev->posix);
    for (size_t i = 0; i < p->sensor_count; i++) {
        vd_sensor_rt_t *s = &dev->sensors[i];
        uint32_t iv = s->def->interval_ms ? s->def->interval_ms
                                          : (p->publish_interval_ms ? p->publish_interval_ms
                                                                    : MCP_BRIDGE_DEFAULT_PUBLISH_INTERVAL_MS);
        if (!connected) {
            s->next_due = 0; /* read right after (re)connecting */
            continue;
        }
        if (s->next_due == 0) {
            s->next_due = now_ms; /* first pass: everything is due together */
        }
        if (now_ms >= s->next_due) {
            s->next_due = now_ms - s->next_due < iv ? s->next_due + iv : now_ms + iv;
            int q = -1;
            memset(&s->value, 0, sizeof(s->value));
            if (sensor_compute(s, s->def->id, &s->value, &q) != ESP_OK) {
                char msg[96];
                snprintf(msg, sizeof(msg), "sensor %s: read failed", s->def->id);
                mcp_core_publish_error(core, "sensor_read", ESP_ERR_MCP_SENSOR_READ, msg, MCP_SEVERITY_WARNING);
            } else {
                qualities[n] = q;
                due[n++] = i;
            }
        }
        if (s->next_due < next) {
            next = s->next_due;
        }
    }
    if (n > 0 && mcp_core_get_discovery_mode(core) == MCP_DISCOVERY_INTEGRATION) {
        memset(readings, 0, sizeof(readings));
        for (size_t k = 0; k < n; k++) {
            const vd_sensor_rt_t *s = &dev->sensors[due[k]];
            readings[k].sensor_id = s->def->id;
            readings[k].type = s->def->type;
            readings[k].unit = s->def->unit;
            readings[k].value_type = s->value.type;
            readings[k].value = s->value.number;
            readings[k].bool_value = s->value.boolean;
            readings[k].string_value = s->value.string;
            readings[k].quality = (float)qualities[k];
        }
        esp_err_t e = mcp_core_publish_sensor_batch(core, readings, n);
        if (e != ESP_OK && e != ESP_ERR_MCP_NOT_CONNECTED) {
            vd_log(dev->opts->log_level, MCP_LOG_WARN, dev->id, "batch of %zu refused: %s", n,
                   mcp_bridge_err_to_name(e));
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            vd_sensor_rt_t *s = &dev->sensors[due[k]];
            mcp_core_publish_sensor_value(core, s->def->id, &s->value, qualities[k]);
        }
    }
    mcp_posix_device_unlock(dev->posix);
    return next > now_ms ? (uint32_t)(next - now_ms) : 0;
}

mcp_posix_device_t *vd_device_posix(vd_device_t *dev)
{
    return dev->posix;
}

void vd_device_destroy(vd_device_t *dev)
{
    if (dev == NULL) {
        return;
    }
    mcp_posix_device_destroy(dev->posix);
    free(dev);
}
