/*
 * vd_device.h — one simulated device: a POSIX-port device (core + libmosquitto)
 * whose sensors and actuators come from a profile.
 */
#pragma once

#include "esp_mcp_bridge.h"
#include "mcp_port_posix.h"
#include "vd_cli.h"
#include "vd_profile.h"

typedef struct vd_device vd_device_t;

/**
 * Create device number `index` (0-based) of `opts->count`: id `opts->device_id`
 * (count 1) or `<device_id>-<index+1>`, state in `<state_dir>/<id>`, sensors and
 * actuators registered, initial actuator values set. Not connected yet.
 * `profile` and `opts` must outlive the device.
 */
esp_err_t vd_device_create(const vd_profile_t *profile, const vd_options_t *opts, unsigned index,
                           vd_device_t **out, char *err, size_t err_len);
mcp_posix_device_t *vd_device_posix(vd_device_t *dev);
void vd_device_destroy(vd_device_t *dev);

/**
 * The application loop of --batch devices: read the sensors that are due at
 * monotonic time now_ms; in discovery mode integration publish them as one
 * B/D/batch, otherwise one message per sensor (HA's MQTT entities cannot read
 * a batch). Failed reads publish a sensor_read error. Locks the device.
 * Returns the ms until the next sensor is due (at most 1000). No-op without --batch.
 */
uint32_t vd_device_app_step(vd_device_t *dev, uint64_t now_ms);

/** Log to stderr with a timestamp when `level` <= the configured level. */
void vd_log(int configured, int level, const char *device_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
