/*
 * Clocks for the ESP-IDF port: esp_timer for monotonic time, SNTP
 * (esp_netif_sntp) for wall-clock time. ESP-IDF 5.5 and 6.x.
 */
#include <sys/time.h>
#include <time.h>

#include "esp_log.h"
#include "esp_netif_sntp.h"
#include "esp_timer.h"

#include "mcp_idf.h"

/* A clock before 2024-01-01 has not been set since boot. */
#define MCP_IDF_TIME_VALID_AFTER_S 1704067200LL

static bool s_sntp_started;

esp_err_t mcp_idf_time_start(const char *server)
{
    if (server == NULL || server[0] == '\0' || s_sntp_started) {
        return ESP_OK;
    }
    esp_sntp_config_t cfg = ESP_NETIF_SNTP_DEFAULT_CONFIG(server);
    cfg.start = true;
    esp_err_t err = esp_netif_sntp_init(&cfg);
    if (err == ESP_ERR_INVALID_STATE) {
        /* the application runs SNTP already: use its clock */
        return ESP_OK;
    }
    if (err == ESP_OK) {
        s_sntp_started = true;
    } else {
        ESP_LOGW(MCP_IDF_TAG, "SNTP not started: %s (timestamps are left out)", esp_err_to_name(err));
    }
    return err;
}

void mcp_idf_time_stop(void)
{
    if (s_sntp_started) {
        esp_netif_sntp_deinit();
        s_sntp_started = false;
    }
}

uint64_t mcp_idf_time_mono_ms(void)
{
    return (uint64_t)(esp_timer_get_time() / 1000);
}

uint64_t mcp_idf_time_wall_ms(void)
{
    struct timeval tv;
    if (gettimeofday(&tv, NULL) != 0 || (long long)tv.tv_sec < MCP_IDF_TIME_VALID_AFTER_S) {
        return 0;
    }
    return (uint64_t)tv.tv_sec * 1000U + (uint64_t)tv.tv_usec / 1000U;
}
