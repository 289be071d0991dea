/*
 * Wi-Fi station with reconnect and exponential backoff (ESP-IDF 5.5 and 6.x).
 */
#include <inttypes.h>
#include <string.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "sdkconfig.h"

#include "mcp_idf.h"

static struct {
    bool managed;    /* Wi-Fi started by this module */
    bool stopping;
    volatile bool up;
    bool ever_up;
    bool created_netif;
    uint32_t backoff_ms;
    volatile uint32_t reconnections;
    esp_netif_t *netif;
    esp_timer_handle_t retry;
    esp_event_handler_instance_t h_wifi;
    esp_event_handler_instance_t h_ip;
    mcp_idf_net_cb_t cb;
    void *cb_arg;
} s_wifi;

static void retry_cb(void *arg)
{
    (void)arg;
    if (!s_wifi.stopping) {
        esp_err_t err = esp_wifi_connect();
        if (err != ESP_OK) {
            ESP_LOGW(MCP_IDF_TAG, "esp_wifi_connect: %s", esp_err_to_name(err));
        }
    }
}

static void schedule_retry(void)
{
    uint32_t delay = s_wifi.backoff_ms;
    /* up to +25 % jitter so that many devices do not retry in step */
    delay += esp_random() % (delay / 4 + 1);
    uint32_t next = s_wifi.backoff_ms * 2;
    s_wifi.backoff_ms = next > CONFIG_MCP_BRIDGE_WIFI_BACKOFF_MAX_MS ? CONFIG_MCP_BRIDGE_WIFI_BACKOFF_MAX_MS : next;
    ESP_LOGI(MCP_IDF_TAG, "Wi-Fi disconnected, reconnecting in %" PRIu32 " ms", delay);
    esp_timer_stop(s_wifi.retry); /* not running is fine */
    esp_err_t err = esp_timer_start_once(s_wifi.retry, (uint64_t)delay * 1000U);
    if (err != ESP_OK) {
        ESP_LOGE(MCP_IDF_TAG, "cannot schedule Wi-Fi reconnect: %s", esp_err_to_name(err));
    }
}

static void on_wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    if (id == WIFI_EVENT_STA_START) {
        retry_cb(NULL);
    } else if (id == WIFI_EVENT_STA_DISCONNECTED) {
        const wifi_event_sta_disconnected_t *ev = data;
        bool was_up = s_wifi.up;
        s_wifi.up = false;
        if (ev != NULL) {
            ESP_LOGD(MCP_IDF_TAG, "Wi-Fi disconnect reason %d", (int)ev->reason);
        }
        if (was_up && s_wifi.cb != NULL) {
            s_wifi.cb(false, s_wifi.cb_arg);
        }
        if (!s_wifi.stopping) {
            schedule_retry();
        }
    }
}

static void on_ip_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    (void)data;
    if (id == IP_EVENT_STA_GOT_IP) {
        s_wifi.backoff_ms = CONFIG_MCP_BRIDGE_WIFI_BACKOFF_MIN_MS;
        if (s_wifi.ever_up) {
            s_wifi.reconnections++;
        }
        s_wifi.ever_up = true;
        s_wifi.up = true;
        ESP_LOGI(MCP_IDF_TAG, "Wi-Fi connected");
        if (s_wifi.cb != NULL) {
            s_wifi.cb(true, s_wifi.cb_arg);
        }
    } else if (id == IP_EVENT_STA_LOST_IP) {
        bool was_up = s_wifi.up;
        s_wifi.up = false;
        if (was_up && s_wifi.cb != NULL) {
            s_wifi.cb(false, s_wifi.cb_arg);
        }
    }
}

static void cleanup(void)
{
    if (s_wifi.h_wifi != NULL) {
        esp_event_handler_instance_unregister(WIFI_EVENT, ESP_EVENT_ANY_ID, s_wifi.h_wifi);
        s_wifi.h_wifi = NULL;
    }
    if (s_wifi.h_ip != NULL) {
        esp_event_handler_instance_unregister(IP_EVENT, ESP_EVENT_ANY_ID, s_wifi.h_ip);
        s_wifi.h_ip = NULL;
    }
    if (s_wifi.retry != NULL) {
        esp_timer_stop(s_wifi.retry);
        esp_timer_delete(s_wifi.retry);
        s_wifi.retry = NULL;
    }
}

esp_err_t mcp_idf_wifi_start(const char *ssid, const char *password, mcp_idf_net_cb_t cb, void *arg)
{
    if (s_wifi.managed) {
        return ESP_ERR_INVALID_STATE;
    }
    s_wifi.cb = cb;
    s_wifi.cb_arg = arg;
    if (ssid == NULL || ssid[0] == '\0') {
        /* the application brings up the network itself (Ethernet, own Wi-Fi code) */
        s_wifi.up = true;
        return ESP_OK;
    }
    wifi_config_t wc;
    memset(&wc, 0, sizeof(wc));
    size_t ssid_len = strnlen(ssid, sizeof(wc.sta.ssid) + 1);
    size_t pass_len = password == NULL ? 0 : strnlen(password, sizeof(wc.sta.password) + 1);
    if (ssid_len > sizeof(wc.sta.ssid) || pass_len > sizeof(wc.sta.password)) {
        return ESP_ERR_INVALID_ARG;
    }
    memcpy(wc.sta.ssid, ssid, ssid_len);
    if (pass_len > 0) {
        memcpy(wc.sta.password, password, pass_len);
    }
    /* refuse open or WEP networks when a password is given */
    wc.sta.threshold.authmode = pass_len > 0 ? WIFI_AUTH_WPA2_PSK : WIFI_AUTH_OPEN;

    esp_err_t err = esp_netif_init();
    if (err != ESP_OK) {
        return err;
    }
    err = esp_event_loop_create_default();
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) { /* INVALID_STATE: exists already */
        return err;
    }
    s_wifi.netif = esp_netif_get_handle_from_ifkey("WIFI_STA_DEF");
    s_wifi.created_netif = false;
    if (s_wifi.netif == NULL) {
        s_wifi.netif = esp_netif_create_default_wifi_sta();
        if (s_wifi.netif == NULL) {
            return ESP_ERR_NO_MEM;
        }
        s_wifi.created_netif = true;
    }
    wifi_init_config_t icfg = WIFI_INIT_CONFIG_DEFAULT();
    err = esp_wifi_init(&icfg);
    if (err != ESP_OK) {
        goto fail;
    }
    const esp_timer_create_args_t targs = {
        .callback = retry_cb,
        .arg = NULL,
        .dispatch_method = ESP_TIMER_TASK,
        .name = "mcp_wifi_retry",
        .skip_unhandled_events = true,
    };
    err = esp_timer_create(&targs, &s_wifi.retry);
    if (err != ESP_OK) {
        goto fail;
    }
    s_wifi.stopping = false;
    s_wifi.up = false;
    s_wifi.ever_up = false;
    s_wifi.reconnections = 0;
    s_wifi.backoff_ms = CONFIG_MCP_BRIDGE_WIFI_BACKOFF_MIN_MS;
    err = esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi_event, NULL, &s_wifi.h_wifi);
    if (err == ESP_OK) {
        err = esp_event_handler_instance_register(IP_EVENT, ESP_EVENT_ANY_ID, on_ip_event, NULL, &s_wifi.h_ip);
    }
    if (err == ESP_OK) {
        err = esp_wifi_set_mode(WIFI_MODE_STA);
    }
    if (err == ESP_OK) {
        err = esp_wifi_set_config(WIFI_IF_STA, &wc);
    }
    if (err == ESP_OK) {
        err = esp_wifi_start();
    }
    if (err != ESP_OK) {
        goto fail;
    }
    s_wifi.managed = true;
    ESP_LOGI(MCP_IDF_TAG, "Wi-Fi station started (SSID \"%s\")", ssid);
    return ESP_OK;

fail:
    ESP_LOGE(MCP_IDF_TAG, "Wi-Fi start failed: %s", esp_err_to_name(err));
    s_wifi.stopping = true;
    cleanup();
    esp_wifi_deinit();
    if (s_wifi.created_netif) {
        esp_netif_destroy_default_wifi(s_wifi.netif);
    }
    s_wifi.netif = NULL;
    return err;
}

esp_err_t mcp_idf_wifi_stop(void)
{
    s_wifi.cb = NULL;
    s_wifi.up = false;
    if (!s_wifi.managed) {
        return ESP_OK;
    }
    s_wifi.stopping = true;
    cleanup();
    esp_err_t err = esp_wifi_stop();
    esp_err_t err2 = esp_wifi_deinit();
    if (s_wifi.created_netif) {
        esp_netif_destroy_default_wifi(s_wifi.netif);
    }
    s_wifi.netif = NULL;
    s_wifi.managed = false;
    return err != ESP_OK ? err : err2;
}

bool mcp_idf_wifi_is_up(void)
{
    return s_wifi.up;
}

int mcp_idf_wifi_rssi(void)
{
    int rssi = 0;
    if (!s_wifi.up || esp_wifi_sta_get_rssi(&rssi) != ESP_OK) {
        return 0;
    }
    return rssi;
}

uint32_t mcp_idf_wifi_reconnections(void)
{
    return s_wifi.reconnections;
}
