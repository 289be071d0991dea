/*
 * The bridge task (periodic tick under a recursive mutex), its watchdog
 * and heap figures for the ESP-IDF port. ESP-IDF 5.5 and 6.x.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "esp_log.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "mcp_idf.h"

struct mcp_idf_runner {
    mcp_idf_runner_cfg_t cfg;
    esp_timer_handle_t wdt;            /* NULL: no watchdog */
    volatile int64_t last_progress_ms; /* end of the last tick */
    SemaphoreHandle_t exited; /* given by the task when it leaves its loop */
    TaskHandle_t task;
    volatile bool stop;
};

/* ------------------------------------------------------------------ watchdog */

/*
 * The bridge's own watchdog. IDF's task watchdog is already running at boot
 * (CONFIG_ESP_TASK_WDT_INIT) with its own timeout (5 s by default) and
 * without panic (CONFIG_ESP_TASK_WDT_PANIC=n): a task that joined it would be
 * held to 5 s, which a TLS connect under the bridge's lock
 * can exceed, and a hang would only print a backtrace. So the bridge task
 * does not join it: an esp_timer checks every second that the task finished
 * a tick within the configured timeout and otherwise restarts the chip, as
 * the Kconfig help says.
 */
static void wdt_check(void *arg)
{
    mcp_idf_runner_t *r = arg;
    int64_t now = esp_timer_get_time() / 1000;
    if (now - r->last_progress_ms > (int64_t)r->cfg.wdt_timeout_ms) {
        ESP_LOGE(MCP_IDF_TAG, "bridge task stuck for %" PRId64 " ms (a callback blocks?): restarting",
                 now - r->last_progress_ms);
        esp_restart();
    }
}

static void wdt_start(mcp_idf_runner_t *r)
{
    r->last_progress_ms = esp_timer_get_time() / 1000;
    const esp_timer_create_args_t ta = {.callback = wdt_check, .arg = r, .name = "mcp_wdt"};
    esp_err_t err = esp_timer_create(&ta, &r->wdt);
    if (err == ESP_OK) {
        err = esp_timer_start_periodic(r->wdt, 1000 * 1000);
    }
    if (err != ESP_OK) {
        ESP_LOGW(MCP_IDF_TAG, "watchdog not started: %s", esp_err_to_name(err));
    }
}

static void wdt_stop(mcp_idf_runner_t *r)
{
    if (r->wdt != NULL) {
        esp_timer_stop(r->wdt);
        esp_timer_delete(r->wdt);
        r->wdt = NULL;
    }
}

/* ------------------------------------------------------------------ heap */

uint32_t mcp_idf_free_heap(void)
{
    return esp_get_free_heap_size();
}

uint32_t mcp_idf_min_free_heap(void)
{
    return esp_get_minimum_free_heap_size();
}

/* ------------------------------------------------------------------ task */


static void runner_task(void *arg)
{
    mcp_idf_runner_t *r = arg;
    const TickType_t period = pdMS_TO_TICKS(r->cfg.period_ms) > 0 ? pdMS_TO_TICKS(r->cfg.period_ms) : 1;
    TickType_t wait = period;
    while (!r->stop) {
        ulTaskNotifyTake(pdTRUE, wait); /* events wake it early */
        if (r->stop) {
            break;
        }
        wait = period;
        /* Bounded wait: whoever holds the lock may be stopping this task. The
         * watchdog sees progress only after a tick ran, so a callback that hangs
         * while holding the lock (in this task or another) trips it. */
        if (xSemaphoreTakeRecursive(r->cfg.lock, period) == pdTRUE) {
            if (!r->stop) {
                TickType_t next = pdMS_TO_TICKS(r->cfg.tick(r->cfg.arg));
                wait = next > period ? next : period;
            }
            xSemaphoreGiveRecursive(r->cfg.lock);
            r->last_progress_ms = esp_timer_get_time() / 1000;
        }
    }
    xSemaphoreGive(r->exited);
    vTaskDelete(NULL);
}

esp_err_t mcp_idf_runner_start(const mcp_idf_runner_cfg_t *cfg, mcp_idf_runner_t **out)
{
    if (cfg == NULL || out == NULL || cfg->tick == NULL || cfg->name == NULL || cfg->period_ms == 0 ||
        cfg->lock == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_idf_runner_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return ESP_ERR_NO_MEM;
    }
    r->cfg = *cfg;
    r->exited = xSemaphoreCreateBinary();
    if (r->exited == NULL) {
        free(r);
        return ESP_ERR_NO_MEM;
    }
    r->last_progress_ms = esp_timer_get_time() / 1000;
    if (xTaskCreate(runner_task, cfg->name, cfg->stack_size, r, (UBaseType_t)cfg->priority, &r->task) != pdPASS) {
        vSemaphoreDelete(r->exited);
        free(r);
        return ESP_ERR_NO_MEM;
    }
    if (cfg->watchdog && cfg->wdt_timeout_ms > 0) {
        wdt_start(r);
    }
    *out = r;
    return ESP_OK;
}

esp_err_t mcp_idf_runner_stop(mcp_idf_runner_t *r)
{
    if (r == NULL) {
        return ESP_OK;
    }
    if (xTaskGetCurrentTaskHandle() == r->task) {
        return ESP_ERR_INVALID_STATE;
    }
    wdt_stop(r); /* stopping may wait for a tick in progress */
    r->stop = true;
    xTaskNotifyGive(r->task);
    /* The task needs at most one lock wait (one period) to notice. */
    xSemaphoreTake(r->exited, portMAX_DELAY);
    vSemaphoreDelete(r->exited);
    free(r);
    return ESP_OK;
}

void mcp_idf_runner_wake(mcp_idf_runner_t *r)
{
    if (r != NULL) {
        xTaskNotifyGive(r->task);
    }
}
