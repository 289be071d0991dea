/*
 * esp_mcp_virtual_device — the esp_mcp_bridge core on the POSIX port, with
 * simulated sensors and actuators from a JSON profile. Behaves on the wire
 * like a flashed ESP32 (see docs/protocol.md); one process can run many
 * devices (--count).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp_port_posix.h"
#include "vd_cli.h"
#include "vd_device.h"
#include "vd_profile.h"

static volatile sig_atomic_t g_stop;

typedef struct {
    vd_device_t **devs;
    unsigned count;
    atomic_int stop;
} app_loop_t;

/* --batch: the "application task" that reads the sensors of every device. */
static void *app_main(void *arg)
{
    app_loop_t *a = arg;
    while (!atomic_load(&a->stop)) {
        uint64_t now = mcp_posix_monotonic_ms();
        uint32_t wait = 50;
        for (unsigned i = 0; i < a->count; i++) {
            uint32_t w = vd_device_app_step(a->devs[i], now);
            wait = w < wait ? w : wait;
        }
        struct timespec ts = {0, (long)(wait ? wait : 1) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char err[512];
    vd_options_t opts;
    esp_err_t e = vd_cli_parse(argc, argv, &opts, err, sizeof(err));
    if (e == ESP_ERR_NOT_FINISHED) {
        vd_cli_free(&opts);
        return 0;
    }
    if (e != ESP_OK) {
        fprintf(stderr, "esp_mcp_virtual_device: %s\n(try --help)\n", err[0] ? err : "bad arguments");
        vd_cli_free(&opts);
        return 2;
    }
    vd_profile_t *profile = NULL;
    e = vd_profile_load(opts.profile, opts.interval_scale, &profile, err, sizeof(err));
    if (e != ESP_OK) {
        fprintf(stderr, "esp_mcp_virtual_device: %s: %s\n", opts.profile, err[0] ? err : "cannot load");
        vd_cli_free(&opts);
        return 2;
    }
    install_signals();
    /* every device holds three descriptors: raise the soft limit as far as allowed */
    if (mcp_posix_reserve_fds(opts.count) != ESP_OK) {
        fprintf(stderr, "esp_mcp_virtual_device: --count %u needs about %u open files, more than RLIMIT_NOFILE allows\n",
                opts.count, opts.count * 3u + 64u);
        vd_profile_free(profile);
        vd_cli_free(&opts);
        return 1;
    }

    vd_device_t **devs = calloc(opts.count, sizeof(*devs));
    mcp_posix_device_t **posix = calloc(opts.count, sizeof(*posix));
    int rc = 0;
    unsigned created = 0;
    if (devs == NULL || posix == NULL) {
        fprintf(stderr, "esp_mcp_virtual_device: out of memory\n");
        rc = 1;
    }
    for (unsigned i = 0; rc == 0 && i < opts.count; i++) {
        e = vd_device_create(profile, &opts, i, &devs[i], err, sizeof(err));
        if (e != ESP_OK) {
            fprintf(stderr, "esp_mcp_virtual_device: %s\n", err);
            rc = e == ESP_ERR_INVALID_ARG ? 2 : 1;
            break;
        }
        posix[i] = vd_device_posix(devs[i]);
        created++;
    }
    if (rc == 0) {
        vd_log(opts.log_level, 3, NULL, "%u device(s) from %s on %s", opts.count, opts.profile, opts.broker);
        app_loop_t app = {devs, opts.count, 0};
        pthread_t app_thread;
        bool app_running = opts.batch && pthread_create(&app_thread, NULL, app_main, &app) == 0;
        if (opts.batch && !app_running) {
            fprintf(stderr, "esp_mcp_virtual_device: cannot start the batch loop\n");
            g_stop = 1;
            rc = 1;
        }
        e = mcp_posix_run(posix, opts.count, &g_stop);
        if (app_running) {
            atomic_store(&app.stop, 1);
            pthread_join(app_thread, NULL);
        }
        if (e != ESP_OK) {
            fprintf(stderr, "esp_mcp_virtual_device: run failed: %s\n", mcp_bridge_err_to_name(e));
            rc = 1;
        }
    }
    for (unsigned i = 0; i < created; i++) {
        vd_device_destroy(devs[i]);
    }
    free(posix);
    free(devs);
    vd_profile_free(profile);
    vd_cli_free(&opts);
    return rc;
}
