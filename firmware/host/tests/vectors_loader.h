/*
 * Shared test vectors (the JSON files in tests/vectors) for the C tests: file loading,
 * payload forms (payload / payload_hex / payload_fill), the comparison rules
 * with placeholders, and a reference device built from reference_device.json
 * on the fake port.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cJSON.h"
#include "fake_port.h"
#include "mcp_core.h"

/** Parse tests/vectors/<kind>.json (NULL on error). Free with cJSON_Delete. */
cJSON *vec_load(const char *kind);
/** The payload bytes of a case (malloc'd, NUL-terminated, *len set). */
char *vec_payload(const cJSON *vcase, size_t *len);
/** README comparison rules: numbers by value, objects exact (placeholders "$uint", "$string", ..., "?" optional). */
bool vec_match(const cJSON *expected, const cJSON *actual, char *why, size_t why_cap);

typedef struct {
    cJSON *doc; /* reference_device.json, kept alive: metadata points into it */
    fake_port_t fp;
    mcp_core_t *core;
    const char **arrays[64]; /* option / action lists */
    size_t n_arrays;
} ref_device_t;

/**
 * Build the reference device without starting it: discovery hold-off holdoff_ms (the
 * config field), stored_mode the discovery mode found in the key/value store (NULL: none).
 */
bool ref_device_prepare(ref_device_t *rd, uint32_t holdoff_ms, const char *stored_mode);
/** Build, start and connect the reference device (fresh state, no discovery hold-off). false on error. */
bool ref_device_open(ref_device_t *rd);
/**
 * The reference device's identity and configuration with other sensors and actuators:
 * entries is an array of {"kind": "sensor"|"actuator", "capability": {...}} (platforms.json
 * cases), registered in order. Started and connected; false on error.
 */
bool vec_device_open(ref_device_t *rd, const cJSON *entries);
void ref_device_close(ref_device_t *rd);
