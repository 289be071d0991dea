/*
 * esp_mcp_bridge advanced example: a greenhouse controller.
 *
 *  - temperature and humidity are sampled by the application and published
 *    together as one batch (B/D/batch; in discovery mode "mqtt" the bridge
 *    also publishes them on their own topics for Home Assistant);
 *  - soil_moisture is read by the bridge on its interval, and streamed every
 *    second while the soil is drying out fast;
 *  - the irrigation `valve` (0-100 %) requires confirmation: the MCP add-on
 *    asks the user before it sends a write;
 *  - `mode` is an enum actuator, `pump` a boolean one;
 *  - a metrics loop logs the counters and publishes an error when the heap
 *    keeps shrinking; a failed humidity read is published as an error too;
 *  - the event handler reacts to identify, OTA and discovery mode changes.
 *
 * The sensors are simulated so that the example runs on a bare board.
 * ESP-IDF 5.5 or 6.x.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "driver/gpio.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "esp_mcp_bridge.h"
#include "esp_mcp_bridge_idf.h"

static const char *TAG = "greenhouse";

#if CONFIG_EXAMPLE_BROKER_CA_FILE
extern const char ca_pem_start[] asm("_binary_ca_pem_start");
#endif

#define BATCH_PERIOD_MS 10000
#define METRICS_PERIOD_MS 30000
#define STREAM_INTERVAL_MS 1000
#define STREAM_DURATION_MS 60000
#define SOIL_FAST_DROP_TENTHS 5 /* 0.5 % per batch period counts as "drying out fast" */

/* Simulated plant. The bridge runs all callbacks under its lock, so the state
 * they share needs no lock of its own; app_main only reads s_soil_tenths
 * (one 32-bit word) and s_pump_on. */
static double s_valve_percent;
static volatile bool s_pump_on;
static char s_mode[16] = "auto";
static double s_soil = 45.0;
static volatile int32_t s_soil_tenths = 450;

static double now_s(void)
{
    return (double)esp_timer_get_time() / 1e6;
}

static double noise(double amplitude)
{
    return amplitude * ((double)(esp_random() % 2001) / 1000.0 - 1.0);
}

/* --------------------------------------------------------------- sensors */

static esp_err_t soil_read_cb(const char *sensor_id, mcp_value_t *value, int *quality, void *user_data)
{
    (void)sensor_id;
    (void)user_data;
    /* dries 0.05 %/read, the valve waters it */
    s_soil += -0.05 + s_valve_percent * 0.01 + noise(0.02);
    if (s_soil < 0.0) {
        s_soil = 0.0;
    } else if (s_soil > 100.0) {
        s_soil = 100.0;
    }
    s_soil_tenths = (int32_t)lround(s_soil * 10.0);
    value->number = (double)s_soil_tenths / 10.0;
    *quality = 80;
    return ESP_OK;
}

/* --------------------------------------------------------------- actuators */

static esp_err_t valve_control_cb(const char *actuator_id, mcp_action_t action, mcp_value_t *value, void *user_data)
{
    (void)actuator_id;
    (void)user_data;
    if (action == MCP_ACTION_READ) {
        value->number = s_valve_percent;
        return ESP_OK;
    }
    if (strcmp(s_mode, "off") == 0) {
        return ESP_ERR_MCP_BUSY; /* answered as "busy": the system is switched off */
    }
    /* range and step were checked by the bridge against the metadata */
    s_valve_percent = value->number;
    ESP_LOGI(TAG, "valve at %.0f %%", value->number);
    return ESP_OK;
}

static esp_err_t pump_control_cb(const char *actuator_id, mcp_action_t action, mcp_value_t *value, void *user_data)
{
    (void)actuator_id;
    (void)user_data;
    if (action == MCP_ACTION_READ) {
        value->boolean = s_pump_on;
        return ESP_OK;
    }
    esp_err_t err = gpio_set_level((gpio_num_t)CONFIG_EXAMPLE_LED_GPIO, value->boolean ? 1 : 0);
    if (err != ESP_OK) {
        return err;
    }
    s_pump_on = value->boolean;
    return ESP_OK;
}

static esp_err_t mode_control_cb(const char *actuator_id, mcp_action_t action, mcp_value_t *value, void *user_data)
{
    (void)actuator_id;
    (void)user_data;
    if (action == MCP_ACTION_READ) {
        strlcpy(value->string, s_mode, sizeof(value->string));
        return ESP_OK;
    }
    /* the option was checked by the bridge against enum_options */
    strlcpy(s_mode, value->string, sizeof(s_mode));
    ESP_LOGI(TAG, "mode %s", s_mode);
    return ESP_OK;
}

/* --------------------------------------------------------------- events */

static void blink_task(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        gpio_set_level((gpio_num_t)CONFIG_EXAMPLE_LED_GPIO, i % 2 == 0);
        vTaskDelay(pdMS_TO_TICKS(200));
    }
    gpio_set_level((gpio_num_t)CONFIG_EXAMPLE_LED_GPIO, s_pump_on ? 1 : 0);
    vTaskDelete(NULL);
}

static void event_handler(void *args, mcp_event_base_t base, int32_t id, void *data)
{
    (void)args;
    (void)base;
    switch ((mcp_bridge_event_id_t)id) {
    case MCP_EVENT_CONNECTED:
        ESP_LOGI(TAG, "connected");
        break;
    case MCP_EVENT_DISCONNECTED:
        ESP_LOGW(TAG, "disconnected");
        break;
    case MCP_EVENT_ACTUATOR_SET: {
        const mcp_event_actuator_t *a = data;
        ESP_LOGI(TAG, "actuator %s set (request %s)", a->actuator_id, a->request_id ? a->request_id : "-");
        break;
    }
    case MCP_EVENT_IDENTIFY:
        /* callbacks must not block: blink from a task of its own */
        xTaskCreate(blink_task, "identify", 2048, NULL, 2, NULL);
        break;
    case MCP_EVENT_OTA_REQUESTED: {
        const mcp_event_ota_t *o = data;
        ESP_LOGW(TAG, "OTA to %s requested", o->version ? o->version : "?");
        break;
    }
    case MCP_EVENT_DISCOVERY_MODE_CHANGED: {
        const mcp_discovery_mode_t *mode = data;
        ESP_LOGI(TAG, "discovery mode: %s", *mode == MCP_DISCOVERY_MQTT ? "mqtt" : "integration");
        break;
    }
    case MCP_EVENT_STREAMING_CHANGED: {
        const mcp_event_sensor_t *s = data;
        ESP_LOGI(TAG, "streaming %s: %s", s->sensor_id, s->streaming ? "on" : "off");
        break;
    }
    case MCP_EVENT_ERROR: {
        const mcp_event_error_t *e = data;
        ESP_LOGW(TAG, "error %s (%s): %s", e->error_type, mcp_bridge_err_to_name(e->code), e->message);
        break;
    }
    default:
        break;
    }
}

/* --------------------------------------------------------------- setup */

static void register_everything(void)
{
    const mcp_sensor_metadata_t temperature = {
        .min_range = -20.0f,
        .max_range = 60.0f,
        .accuracy = 0.3f,
        .description = "Air temperature",
        .interval_ms = BATCH_PERIOD_MS,
    };
    const mcp_sensor_metadata_t humidity = {
        .min_range = 0.0f,
        .max_range = 100.0f,
        .accuracy = 2.0f,
        .description = "Relative air humidity",
        .interval_ms = BATCH_PERIOD_MS,
    };
    const mcp_sensor_metadata_t soil = {
        .min_range = 0.0f,
        .max_range = 100.0f,
        .accuracy = 1.0f,
        .description = "Soil moisture (capacitive probe)",
        .calibration_required = true,
        .calibration_interval_s = 30 * 86400,
        .interval_ms = 15000,
    };
    /* temperature and humidity: read_cb NULL, the application publishes them (batch) */
    ESP_ERROR_CHECK(mcp_bridge_register_sensor("temperature", "temperature", "°C", &temperature, NULL, NULL));
    ESP_ERROR_CHECK(mcp_bridge_register_sensor("humidity", "humidity", "%", &humidity, NULL, NULL));
    ESP_ERROR_CHECK(mcp_bridge_register_sensor("soil_moisture", "moisture", "%", &soil, soil_read_cb, NULL));

    static const char *rw[] = {"read", "write", NULL};
    static const char *rwt[] = {"read", "write", "toggle", NULL};
    static const char *const modes[] = {"auto", "manual", "off", NULL};
    const mcp_actuator_metadata_t valve = {
        .value_type = "number",
        .description = "Irrigation valve opening",
        .supported_actions = rw,
        .min_value = 0.0f,
        .max_value = 100.0f,
        .step = 5.0f,
        .unit = "%",
        .response_time_ms = 2000,
        .requires_confirmation = true, /* water damage if misused: ask first */
        .name = "Irrigation valve",
    };
    const mcp_actuator_metadata_t pump = {
        .value_type = "boolean",
        .description = "Circulation pump",
        .supported_actions = rwt,
        .response_time_ms = 200,
    };
    const mcp_actuator_metadata_t mode = {
        .value_type = "enum",
        .description = "Controller mode",
        .supported_actions = rw,
        .enum_options = modes,
        .response_time_ms = 50,
    };
    ESP_ERROR_CHECK(mcp_bridge_register_actuator("valve", "valve", &valve, valve_control_cb, NULL));
    ESP_ERROR_CHECK(mcp_bridge_register_actuator("pump", "switch", &pump, pump_control_cb, NULL));
    ESP_ERROR_CHECK(mcp_bridge_register_actuator("mode", "mode", &mode, mode_control_cb, NULL));
}

/* One batch of the application-sampled sensors; a failed humidity read is
 * published as an error and left out of the batch. */
static void publish_batch(void)
{
    double t = now_s();
    mcp_sensor_reading_t readings[2];
    size_t n = 0;
    readings[n++] = (mcp_sensor_reading_t){
        .sensor_id = "temperature",
        .type = "temperature",
        .value = round((24.0 + 4.0 * sin(t / 600.0) + noise(0.2)) * 10.0) / 10.0,
        .unit = "°C",
        .timestamp = 0, /* now */
        .quality = 95.0f,
        .value_type = MCP_VALUE_NUMBER,
    };
    if (esp_random() % 20 == 0) { /* simulated bus error */
        esp_err_t err = mcp_bridge_publish_error("sensor_read", "humidity sensor did not answer on I2C",
                                                 MCP_SEVERITY_WARNING);
        if (err != ESP_OK && err != ESP_ERR_MCP_NOT_CONNECTED) {
            ESP_LOGW(TAG, "publish_error: %s", mcp_bridge_err_to_name(err));
        }
    } else {
        readings[n++] = (mcp_sensor_reading_t){
            .sensor_id = "humidity",
            .type = "humidity",
            .value = round((60.0 + 10.0 * cos(t / 900.0) + noise(1.0)) * 10.0) / 10.0,
            .unit = "%",
            .timestamp = 0,
            .quality = 90.0f,
            .value_type = MCP_VALUE_NUMBER,
        };
    }
    esp_err_t err = mcp_bridge_publish_sensor_batch(readings, n);
    if (err != ESP_OK && err != ESP_ERR_MCP_NOT_CONNECTED) {
        ESP_LOGW(TAG, "batch: %s", mcp_bridge_err_to_name(err));
    }
}

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);

    const gpio_config_t led = {
        .pin_bit_mask = 1ULL << CONFIG_EXAMPLE_LED_GPIO,
        .mode = GPIO_MODE_OUTPUT,
    };
    ESP_ERROR_CHECK(gpio_config(&led));

    mcp_bridge_config_t config = MCP_BRIDGE_CONFIG_DEFAULT();
    config.wifi_ssid = CONFIG_EXAMPLE_WIFI_SSID;
    config.wifi_password = CONFIG_EXAMPLE_WIFI_PASSWORD;
    config.mqtt_broker_uri = CONFIG_EXAMPLE_BROKER_URI;
    if (CONFIG_EXAMPLE_MQTT_USERNAME[0] != '\0') {
        config.mqtt_username = CONFIG_EXAMPLE_MQTT_USERNAME;
        config.mqtt_password = CONFIG_EXAMPLE_MQTT_PASSWORD;
        config.enable_device_auth = true;
    }
#if CONFIG_EXAMPLE_BROKER_CA_FILE
    config.tls_config.ca_cert_pem = ca_pem_start;
#endif
    config.tls_config.alpn_protocols[0] = "mqtt";
    config.tls_config.alpn_protocols[1] = NULL;
    config.device_name = "Greenhouse";
    config.model = CONFIG_IDF_TARGET;
    config.hw_version = "rev1";
    config.metrics_interval_ms = 60000;

    ESP_ERROR_CHECK(mcp_bridge_init(&config));
    ESP_ERROR_CHECK(mcp_bridge_register_event_handler(event_handler, NULL));
    register_everything();
    ESP_ERROR_CHECK(mcp_bridge_start());
    if (mcp_bridge_safe_mode()) {
        /* quick restarts in a row: the bridge keeps Wi-Fi, MQTT and OTA up and calls no
         * callback; the application leaves its own work out too until the next restart */
        ESP_LOGW(TAG, "safe mode: waiting for an OTA update or a restart");
        while (true) {
            vTaskDelay(pdMS_TO_TICKS(1000));
        }
    }

    uint32_t last_min_heap = UINT32_MAX;
    int64_t next_batch = 0;
    int64_t next_metrics = 0;
    int64_t stream_until = 0;
    int32_t last_soil = s_soil_tenths;
    while (true) {
        int64_t now = esp_timer_get_time() / 1000;

        if (now >= next_batch) {
            next_batch = now + BATCH_PERIOD_MS;
            publish_batch();

            /* streaming while the soil dries out fast, then back to normal */
            int32_t soil = s_soil_tenths;
            if (stream_until == 0 && last_soil - soil > SOIL_FAST_DROP_TENTHS) {
                if (mcp_bridge_set_sensor_streaming("soil_moisture", true, STREAM_INTERVAL_MS) == ESP_OK) {
                    stream_until = now + STREAM_DURATION_MS;
                }
            } else if (stream_until != 0 && now >= stream_until) {
                mcp_bridge_set_sensor_streaming("soil_moisture", false, 0);
                stream_until = 0;
            }
            last_soil = soil;
        }

        if (now >= next_metrics) {
            next_metrics = now + METRICS_PERIOD_MS;
            mcp_bridge_metrics_t m;
            mcp_bridge_status_t st;
            if (mcp_bridge_get_metrics(&m) == ESP_OK && mcp_bridge_get_status(&st) == ESP_OK) {
                ESP_LOGI(TAG,
                         "%s, up %" PRIu32 " s, sent %" PRIu32 ", received %" PRIu32 ", reconnects wifi %" PRIu32
                         " mqtt %" PRIu32 ", heap %" PRIu32 " (min %" PRIu32 "), rssi %d",
                         st.connected ? "online" : "offline", m.uptime_seconds, m.messages_sent,
                         m.messages_received, m.wifi_reconnections, m.mqtt_reconnections, m.free_heap,
                         m.min_free_heap, (int)m.rssi);
                /* the bridge alerts below low_heap_threshold; this one warns early on a leak-like trend */
                if (last_min_heap != UINT32_MAX && m.min_free_heap + 4096 < last_min_heap) {
                    mcp_bridge_publish_error("memory", "minimum free heap dropped by more than 4 KiB",
                                             MCP_SEVERITY_INFO);
                }
                last_min_heap = m.min_free_heap;
            }
        }

        vTaskDelay(pdMS_TO_TICKS(500));
    }
}
