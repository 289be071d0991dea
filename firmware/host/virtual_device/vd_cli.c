#include "vd_cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_core.h"
#include "mcp_port.h"

enum {
    OPT_BROKER = 256,
    OPT_USERNAME,
    OPT_PASSWORD,
    OPT_CAFILE,
    OPT_CERT,
    OPT_KEY,
    OPT_INSECURE,
    OPT_DEVICE_ID,
    OPT_PROFILE,
    OPT_COUNT,
    OPT_BASE_TOPIC,
    OPT_STATE_DIR,
    OPT_LOG_LEVEL,
    OPT_SEED,
    OPT_INTERVAL_SCALE,
    OPT_BATCH,
    OPT_DISCOVERY_MODE,
    OPT_DISCOVERY_HOLDOFF,
    OPT_HELP,
    OPT_VERSION,
};

void vd_cli_usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s --broker mqtt[s]://HOST:PORT --profile FILE [options]\n"
            "\n"
            "Runs one or more simulated ESP32 devices (the esp_mcp_bridge core) against an MQTT broker.\n"
            "Prints 'READY <device_id>' on stdout per device once it is connected.\n"
            "\n"
            "  --broker URL          mqtt://host:port or mqtts://host:port (required)\n"
            "  --username U          broker user name\n"
            "  --password P          broker password (better: environment MQTT_PASSWORD)\n"
            "  --cafile F            CA certificate (PEM) that signed the broker certificate\n"
            "  --cert F --key F      client certificate and key (mutual TLS)\n"
            "  --insecure            do not verify the broker certificate (tests only)\n"
            "  --device-id ID        device id [a-z0-9][a-z0-9_-]{0,31}; with --count N the ids are ID-1..ID-N\n"
            "  --profile FILE        device profile (JSON), e.g. profiles/greenhouse.json (required)\n"
            "  --count N             number of devices in this process (1..%u, default 1)\n"
            "  --base-topic T        base topic (default %s)\n"
            "  --state-dir DIR       persisted settings (\"NVS\"), one sub-directory per device id\n"
            "  --log-level L         none, error, warn, info (default), debug, verbose (stderr)\n"
            "  --seed N              seed of the simulated signals and injected errors (default 1)\n"
            "  --interval-scale X    multiply every interval and signal period by X (default 1; 0.01 = 100x faster)\n"
            "  --batch               the application reads the sensors itself and, in discovery mode\n"
            "                        'integration', publishes the readings due together as one batch\n"
            "  --discovery-mode M    start as if M (mqtt or integration) were the stored discovery mode:\n"
            "                        no discovery hold-off; written to --state-dir when given\n"
            "  --discovery-holdoff-ms MS  how long a device with no stored mode keeps its discovery back\n"
            "                        for a set_discovery (default %u; 0: publish at once)\n"
            "  --help, --version\n"
            "\n"
            "SIGTERM/SIGINT: publish 'offline' and disconnect cleanly. Exit status: 0 clean, 1 runtime error,\n"
            "2 bad arguments or profile.\n",
            prog, VD_MAX_COUNT, MCP_BRIDGE_DEFAULT_BASE_TOPIC, (unsigned)MCP_BRIDGE_DEFAULT_DISCOVERY_HOLDOFF_MS);
}

int vd_log_level_from_name(const char *name)
{
    static const char *const names[] = {"none", "error", "warn", "info", "debug", "verbose"};
    for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static esp_err_t bad(char *err, size_t err_len, const char *msg, const char *arg)
{
    snprintf(err, err_len, "%s%s%s", msg, arg != NULL ? ": " : "", arg != NULL ? arg : "");
    return ESP_ERR_INVALID_ARG;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static bool valid_broker(const char *url)
{
    const char *rest;
    if (strncmp(url, "mqtt://", 7) == 0) {
        rest = url + 7;
    } else if (strncmp(url, "mqtts://", 8) == 0) {
        rest = url + 8;
    } else {
        return false;
    }
    const char *colon = strrchr(rest, ':');
    if (colon == NULL || colon == rest) {
        return false;
    }
    uint64_t port = 0;
    return parse_u64(colon + 1, &port) && port >= 1 && port <= 65535;
}

esp_err_t vd_cli_parse(int argc, char **argv, vd_options_t *o, char *err, size_t err_len)
{
    static const struct option longopts[] = {
        {"broker", required_argument, NULL, OPT_BROKER},
        {"username", required_argument, NULL, OPT_USERNAME},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"cafile", required_argument, NULL, OPT_CAFILE},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"device-id", required_argument, NULL, OPT_DEVICE_ID},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"count", required_argument, NULL, OPT_COUNT},
        {"base-topic", required_argument, NULL, OPT_BASE_TOPIC},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"seed", required_argument, NULL, OPT_SEED},
        {"interval-scale", required_argument, NULL, OPT_INTERVAL_SCALE},
        {"batch", no_argument, NULL, OPT_BATCH},
        {"discovery-mode", required_argument, NULL, OPT_DISCOVERY_MODE},
        {"discovery-holdoff-ms", required_argument, NULL, OPT_DISCOVERY_HOLDOFF},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->count = 1;
    o->log_level = MCP_LOG_INFO;
    o->seed = 1;
    o->interval_scale = 1.0;
    o->discovery_mode = -1;
    err[0] = '\0';
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t n = 0;
        char *end = NULL;
        switch (c) {
        case OPT_BROKER:
            o->broker = optarg;
            break;
        case OPT_USERNAME:
            o->username = optarg;
            break;
        case OPT_PASSWORD:
            free(o->password);
            o->password = strdup(optarg);
            if (o->password == NULL) {
                return ESP_ERR_NO_MEM;
            }
            memset(optarg, '*', strlen(optarg)); /* keep it out of /proc/PID/cmdline */
            break;
        case OPT_CAFILE:
            o->cafile = optarg;
            break;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_KEY:
            o->key = optarg;
            break;
        case OPT_INSECURE:
            o->insecure = true;
            break;
        case OPT_DEVICE_ID:
            o->device_id = optarg;
            break;
        case OPT_PROFILE:
            o->profile = optarg;
            break;
        case OPT_COUNT:
            if (!parse_u64(optarg, &n) || n < 1 || n > VD_MAX_COUNT) {
                return bad(err, err_len, "--count must be 1..4000", optarg);
            }
            o->count = (unsigned)n;
            break;
        case OPT_BASE_TOPIC:
            o->base_topic = optarg;
            break;
        case OPT_STATE_DIR:
            o->state_dir = optarg;
            break;
        case OPT_LOG_LEVEL:
            o->log_level = vd_log_level_from_name(optarg);
            if (o->log_level < 0) {
                return bad(err, err_len, "--log-level must be none, error, warn, info, debug or verbose", optarg);
            }
            break;
        case OPT_SEED:
            if (!parse_u64(optarg, &o->seed)) {
                return bad(err, err_len, "--seed must be a non-negative integer", optarg);
            }
            break;
        case OPT_INTERVAL_SCALE:
            errno = 0;
            o->interval_scale = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !isfinite(o->interval_scale) ||
                o->interval_scale <= 0.0 || o->interval_scale > 1000.0) {
                return bad(err, err_len, "--interval-scale must be a number > 0 and <= 1000", optarg);
            }
            break;
        case OPT_BATCH:
            o->batch = true;
            break;
        case OPT_DISCOVERY_MODE:
            if (strcmp(optarg, "mqtt") == 0) {
                o->discovery_mode = MCP_DISCOVERY_MQTT;
            } else if (strcmp(optarg, "integration") == 0) {
                o->discovery_mode = MCP_DISCOVERY_INTEGRATION;
            } else {
                return bad(err, err_len, "--discovery-mode must be mqtt or integration", optarg);
            }
            break;
        case OPT_DISCOVERY_HOLDOFF:
            if (!parse_u64(optarg, &n) || n > MCP_BRIDGE_MAX_DISCOVERY_HOLDOFF_MS) {
                return bad(err, err_len, "--discovery-holdoff-ms must be 0..600000", optarg);
            }
            o->discovery_holdoff_ms = n == 0 ? MCP_BRIDGE_DISCOVERY_HOLDOFF_NONE : (uint32_t)n;
            break;
        case OPT_HELP:
            vd_cli_usage(stdout, argv[0]);
            return ESP_ERR_NOT_FINISHED;
        case OPT_VERSION:
            printf("esp_mcp_virtual_device %s\n", MCP_CORE_VERSION);
            return ESP_ERR_NOT_FINISHED;
        default:
            return bad(err, err_len, "unknown option or missing argument",
                       optind >= 1 && optind <= argc ? argv[optind - 1] : NULL);
        }
    }
    if (optind < argc) {
        return bad(err, err_len, "unexpected argument", argv[optind]);
    }
    if (o->broker == NULL) {
        return bad(err, err_len, "--broker is required", NULL);
    }
    if (!valid_broker(o->broker)) {
        return bad(err, err_len, "--broker must be mqtt://HOST:PORT or mqtts://HOST:PORT", o->broker);
    }
    if (o->profile == NULL) {
        return bad(err, err_len, "--profile is required", NULL);
    }
    if ((o->cert == NULL) != (o->key == NULL)) {
        return bad(err, err_len, "--cert and --key go together", NULL);
    }
    if (o->password == NULL) {
        const char *env = getenv("MQTT_PASSWORD");
        if (env != NULL && *env != '\0') {
            o->password = strdup(env);
            if (o->password == NULL) {
                return ESP_ERR_NO_MEM;
            }
        }
    }
    if (o->password != NULL && o->username == NULL) {
        return bad(err, err_len, "a password needs --username", NULL);
    }
    if (o->device_id != NULL) {
        char probe[MCP_DEVICE_ID_BUF_SIZE + 8];
        if (o->count > 1) {
            snprintf(probe, sizeof(probe), "%s-%u", o->device_id, o->count);
        } else {
            snprintf(probe, sizeof(probe), "%s", o->device_id);
        }
        if (strlen(o->device_id) > MCP_DEVICE_ID_MAX_LEN || !mcp_core_valid_device_id(probe)) {
            return bad(err, err_len,
                       "--device-id must match [a-z0-9][a-z0-9_-]{0,31} (including the -N suffix with --count)",
                       o->device_id);
        }
    } else if (o->count > 1) {
        return bad(err, err_len, "--count needs --device-id", NULL);
    }
    if (o->base_topic != NULL && !mcp_core_valid_topic_prefix(o->base_topic)) {
        return bad(err, err_len, "--base-topic must be 1..64 characters without '+', '#' or leading/trailing '/'",
                   o->base_topic);
    }
    return ESP_OK;
}

void vd_cli_free(vd_options_t *opts)
{
    if (opts->password != NULL) {
        memset(opts->password, 0, strlen(opts->password));
        free(opts->password);
        opts->password = NULL;
    }
}
