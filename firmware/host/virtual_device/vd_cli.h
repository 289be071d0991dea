/*
 * vd_cli.h — command line of the virtual device.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "esp_mcp_bridge.h"

#define VD_MAX_COUNT 4000u

typedef struct {
    const char *broker;     /**< mqtt://host:port or mqtts://host:port */
    const char *username;
    char *password;         /**< owned copy (from --password or MQTT_PASSWORD) */
    const char *cafile;
    const char *cert;
    const char *key;
    bool insecure;
    const char *device_id;  /**< NULL: derived from the (simulated) MAC; required with --count > 1 */
    const char *profile;
    unsigned count;
    const char *base_topic; /**< NULL: the core's default */
    const char *state_dir;  /**< NULL: nothing persists */
    int log_level;          /**< mcp_log_level_t */
    uint64_t seed;
    double interval_scale;
    bool batch;             /**< the application reads the sensors and, in mode integration, batches them */
    int discovery_mode;     /**< -1: as stored in --state-dir; else an mcp_discovery_mode_t taken as stored */
    uint32_t discovery_holdoff_ms; /**< config discovery_holdoff_ms (0: the core's default) */
} vd_options_t;

/**
 * Parse argv. ESP_OK: run. ESP_ERR_NOT_FINISHED: --help/--version printed,
 * exit 0. ESP_ERR_INVALID_ARG: message in err, exit 2. A --password given on
 * the command line is copied and blanked in argv (it still shows in ps for
 * the first instants: prefer MQTT_PASSWORD).
 */
esp_err_t vd_cli_parse(int argc, char **argv, vd_options_t *out, char *err, size_t err_len);
void vd_cli_free(vd_options_t *opts);
void vd_cli_usage(FILE *f, const char *prog);
/** "none|error|warn|info|debug|verbose" -> level; -1 when unknown. */
int vd_log_level_from_name(const char *name);
