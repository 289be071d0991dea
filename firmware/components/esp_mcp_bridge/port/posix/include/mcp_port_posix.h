/*
 * mcp_port_posix.h — POSIX port (libmosquitto, pthreads, clock_gettime, files)
 * and a small runner to host one or many devices in one process.
 *
 * Each mcp_posix_device_t owns one core context, one mosquitto client and one
 * recursive mutex that serialises every call into its core. The clients of
 * all devices of the process are served by two shared network threads with
 * poll() (no select(), so no FD_SETSIZE limit: thousands of devices per
 * process, each using three file descriptors). mcp_posix_run() ticks all
 * devices from the calling thread until a stop flag is set, then stops them
 * cleanly ("offline" published, clean disconnect, no LWT).
 *
 * Typical use (virtual device):
 *
 *   mcp_posix_options_t o = { .state_dir = dir, .ca_file = ca };
 *   mcp_posix_device_t *dev;
 *   mcp_posix_device_create(&cfg, &o, &dev);
 *   mcp_posix_device_lock(dev);
 *   mcp_core_register_sensor(mcp_posix_device_core(dev), ...);
 *   mcp_posix_device_unlock(dev);
 *   mcp_posix_run(&dev, 1, &stop_flag);     // returns after SIGTERM set stop_flag
 *   mcp_posix_device_destroy(dev);
 *
 * The singleton API (mcp_bridge_init() and friends) also works on a host: it
 * uses this port with its own scheduler thread; its key/value store is the
 * directory named by the environment variable MCP_BRIDGE_STATE_DIR (unset:
 * nothing persists).
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_mcp_bridge.h"
#include "mcp_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcp_posix_device mcp_posix_device_t;

typedef struct {
    /** Directory of the key/value store (created 0700 if missing; one file per key).
     *  NULL: nothing persists. Give each device its own directory. */
    const char *state_dir;
    /** TLS files (mosquitto_tls_set). Used when set; the config's PEM strings are
     *  used otherwise (written 0600 into state_dir). */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    /** Do not verify the broker certificate/hostname (tests only). Also set by
     *  config.tls_config.skip_cert_verification. */
    bool insecure;
    /** Messages below this level are dropped (MCP_LOG_INFO when 0). Logs go to stderr. */
    int log_level;
    /** Fake MAC for device_id_from_mac / capabilities (NULL: derived from the host name + index). */
    const char *mac;
    /** Reported free heap / RSSI (simulated). 0: defaults. */
    uint32_t fake_free_heap;
    int8_t fake_rssi;
} mcp_posix_options_t;

/** Create the device: port + core (not connected yet). */
esp_err_t mcp_posix_device_create(const mcp_bridge_config_t *config, const mcp_posix_options_t *options,
                                  mcp_posix_device_t **out);
/** The device's core. Call mcp_core_* only between lock and unlock. */
mcp_core_t *mcp_posix_device_core(mcp_posix_device_t *dev);
void mcp_posix_device_lock(mcp_posix_device_t *dev);
void mcp_posix_device_unlock(mcp_posix_device_t *dev);
/** The port table of the device (e.g. to read its clocks). */
const mcp_port_t *mcp_posix_device_port(mcp_posix_device_t *dev);

/** Start: connect (asynchronous; the device joins a shared network thread). */
esp_err_t mcp_posix_device_start(mcp_posix_device_t *dev);
/** One scheduler step for this device (locks internally). Returns ms until the next work. */
uint32_t mcp_posix_device_tick(mcp_posix_device_t *dev);
/** True once the broker accepted the connection (and until it is lost). */
bool mcp_posix_device_connected(mcp_posix_device_t *dev);
/** Stop: publish "offline", wait until it and the DISCONNECT are sent (bounded, 1 s), leave the network thread. */
esp_err_t mcp_posix_device_stop(mcp_posix_device_t *dev);
/** Free (stops first if needed). */
void mcp_posix_device_destroy(mcp_posix_device_t *dev);

/**
 * Start all devices, tick them until *stop becomes non-zero (set it from a
 * signal handler), then stop them all. Returns ESP_OK after a clean stop.
 */
esp_err_t mcp_posix_run(mcp_posix_device_t *const *devices, size_t count, volatile sig_atomic_t *stop);

/**
 * Make room for `devices` devices in this process: raises the soft
 * RLIMIT_NOFILE up to the hard limit when needed (mcp_posix_run() does it
 * too). ESP_ERR_INVALID_SIZE when the hard limit is too low.
 */
esp_err_t mcp_posix_reserve_fds(size_t devices);

/** The clocks the port uses (CLOCK_MONOTONIC, CLOCK_REALTIME) in milliseconds. */
uint64_t mcp_posix_monotonic_ms(void);
uint64_t mcp_posix_epoch_ms(void);

#ifdef __cplusplus
}
#endif
