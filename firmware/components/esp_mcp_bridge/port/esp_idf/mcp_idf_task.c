/*
 * The bridge task (periodic tick under a recursive mutex), the task watchdog
 * and heap figures for the ESP-IDF port. ESP-IDF 5.5 and 6.x.
 */
#include <stdlib.h>

#include "esp_log.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "mcp_idf.h"

/* ------------------------------------------------------------------ watchdog */

#if CONFIG_ESP_TASK_WDT_EN
esp_err_t mcp_idf_wdt_subscribe(uint32_t timeout_ms)
{
    /* ESP_ERR_INVALID_STATE: the task watchdog is not running (CONFIG_ESP_TASK_WDT_INIT=n) */
    esp_err_t err = esp_task_wdt_status(NULL);
    if (err == ESP_ERR_INVALID_STATE) {
        const esp_task_wdt_config_t cfg = {
            .timeout_ms = timeout_ms,
            .idle_core_mask = 0,
            .trigger_panic = true,
        };
        err = esp_task_wdt_init(&cfg);
        if (err != ESP_OK) {
            return err;
        }
    } else if (err == ESP_OK) {
        return ESP_OK; /* subscribed already */
    }
    return esp_task_wdt_add(NULL);
}

esp_err_t mcp_idf_wdt_feed(void)
{
    return esp_task_wdt_reset();
}

esp_err_t mcp_idf_wdt_unsubscribe(void)
{
    esp_err_t err = esp_task_wdt_delete(NULL);
    return (err == ESP_ERR_NOT_FOUND || err == ESP_ERR_INVALID_STATE) ? ESP_OK : err;
}

#else /* the task watchdog is not built (CONFIG_ESP_TASK_WDT_EN=n) */

esp_err_t mcp_idf_wdt_subscribe(uint32_t timeout_ms)
{
    (void)timeout_ms;
    return ESP_ERR_NOT_SUPPORTED;
}

esp_err_t mcp_idf_wdt_feed(void)
{
    return ESP_ERR_NOT_SUPPORTED;
}

esp_err_t mcp_idf_wdt_unsubscribe(void)
{
    return ESP_OK;
}
#endif

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

struct mcp_idf_runner {
    mcp_idf_runner_cfg_t cfg;
    SemaphoreHandle_t exited; /* given by the task when it leaves its loop */
    TaskHandle_t task;
    volatile bool stop;
};

static void runner_task(void *arg)
{
    mcp_idf_runner_t *r = arg;
    bool wdt = false;
    if (r->cfg.watchdog) {
        esp_err_t err = mcp_idf_wdt_subscribe(r->cfg.wdt_timeout_ms);
        wdt = err == ESP_OK;
        if (!wdt) {
            ESP_LOGW(MCP_IDF_TAG, "task watchdog not available: %s", esp_err_to_name(err));
        }
    }
    const TickType_t period = pdMS_TO_TICKS(r->cfg.period_ms) > 0 ? pdMS_TO_TICKS(r->cfg.period_ms) : 1;
    while (!r->stop) {
        ulTaskNotifyTake(pdTRUE, period);
        if (r->stop) {
            break;
        }
        /* Bounded wait: whoever holds the lock may be stopping this task. The
         * watchdog is fed only after a tick ran, so a callback that hangs while
         * holding the lock (in this task or in the MQTT task) trips it. */
        if (xSemaphoreTakeRecursive(r->cfg.lock, period) == pdTRUE) {
            if (!r->stop) {
                r->cfg.tick(r->cfg.arg);
            }
            xSemaphoreGiveRecursive(r->cfg.lock);
            if (wdt) {
                mcp_idf_wdt_feed();
            }
        }
    }
    if (wdt) {
        mcp_idf_wdt_unsubscribe();
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
    if (xTaskCreate(runner_task, cfg->name, cfg->stack_size, r, (UBaseType_t)cfg->priority, &r->task) != pdPASS) {
        vSemaphoreDelete(r->exited);
        free(r);
        return ESP_ERR_NO_MEM;
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
