/*
 * vd_profile.h — device profiles of the virtual device (JSON, parsed with cJSON).
 *
 * A profile describes one kind of device: identity (name, model, ...), timing,
 * sensors with simulated signals and injectable read errors, and actuators of
 * every value type with their initial state and injectable failures. See
 * profiles/README.md for the format. Unknown keys are an error (a typo must
 * not silently change a test).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_mcp_bridge.h"
#include "vd_signal.h"

#define VD_MAX_OPTIONS 16
#define VD_MAX_ITEMS 64

typedef struct {
    const char *id;
    const char *type;
    const char *name;
    const char *unit; /**< NULL: none */
    const char *description;
    mcp_value_type_t value_type; /**< number, boolean, string, enum */
    const char *options[VD_MAX_OPTIONS + 1]; /**< enum options / string values, NULL-terminated */
    size_t option_count;
    bool has_range;
    double min;
    double max;
    double accuracy;
    bool calibration_required;
    uint32_t calibration_interval_s;
    uint32_t interval_ms; /**< 0: the profile's publish interval */
    int quality;          /**< 0..100, -1: omitted */
    vd_signal_params_t signal;
    double fail_probability; /**< a read fails with this probability */
    uint32_t fail_every_n;   /**< every Nth read fails (0: never) */
    mcp_sensor_metadata_t meta; /**< built from the fields above */
} vd_sensor_def_t;

typedef struct {
    const char *id;
    const char *type;
    const char *name;
    const char *unit;
    const char *description;
    mcp_value_type_t value_type; /**< any, including trigger */
    const char *options[VD_MAX_OPTIONS + 1];
    size_t option_count;
    const char *actions[5]; /**< NULL-terminated; actions[0] NULL: the core's defaults */
    bool has_range;
    double min;
    double max;
    double step;
    uint32_t response_time_ms;
    bool requires_confirmation;
    bool has_initial;
    mcp_value_t initial;
    uint32_t delay_ms;       /**< simulated time the actuator takes to act */
    double fail_probability; /**< an action fails with this probability */
    uint32_t fail_every_n;   /**< every Nth action fails (0: never) */
    esp_err_t fail_code;     /**< what a failing action returns (default ESP_ERR_MCP_BUSY) */
    mcp_actuator_metadata_t meta;
} vd_actuator_def_t;

typedef struct {
    void *json; /**< the parsed document: strings above point into it */
    const char *name;
    const char *manufacturer;
    const char *model;
    const char *fw;
    const char *hw;
    uint32_t publish_interval_ms;
    uint32_t metrics_interval_ms;
    uint32_t command_timeout_ms;
    vd_sensor_def_t sensors[VD_MAX_ITEMS];
    size_t sensor_count;
    vd_actuator_def_t actuators[VD_MAX_ITEMS];
    size_t actuator_count;
} vd_profile_t;

/**
 * Parse `text` into `out` (heap-allocated, free with vd_profile_free).
 * `interval_scale` (> 0) multiplies every interval and signal period (1.0:
 * as written; 0.01: a hundred times faster, for tests and benchmarks);
 * scaled intervals are kept >= MCP_MIN_INTERVAL_MS. On error returns
 * ESP_ERR_INVALID_ARG (or ESP_ERR_NO_MEM) and writes a message naming the
 * offending key into err.
 */
esp_err_t vd_profile_parse(const char *text, double interval_scale, vd_profile_t **out, char *err,
                           size_t err_len);
/** Read a file and parse it (ESP_ERR_NOT_FOUND when it cannot be read). */
esp_err_t vd_profile_load(const char *path, double interval_scale, vd_profile_t **out, char *err,
                          size_t err_len);
void vd_profile_free(vd_profile_t *profile);

/** Contract error code name ("busy", "timeout", ...) -> esp_err_t a callback returns; 0 if unknown. */
esp_err_t vd_error_code_from_name(const char *name);
