/*
 * esp_mcp_bridge basic example: one temperature sensor and one LED.
 *
 * The sensor is the chip's internal temperature sensor where the SoC has one
 * (ESP32-C3, -S2, -S3, -C6, ...), otherwise a simulated value. The LED is a
 * GPIO (menuconfig: Example configuration). Everything else - Wi-Fi, MQTT
 * with TLS, Home Assistant discovery, commands, metrics - is the bridge's job.
 *
 * ESP-IDF 5.5 or 6.x.
 */
#include <inttypes.h>
#include <stdbool.h>

#include "driver/gpio.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "sdkconfig.h"
#include "soc/soc_caps.h"
#if SOC_TEMP_SENSOR_SUPPORTED
#include "driver/temperature_sensor.h"
#else
#include "esp_random.h"
#endif

#include "esp_mcp_bridge.h"
#include "esp_mcp_bridge_idf.h"

static const char *TAG = "basic";

#if CONFIG_EXAMPLE_BROKER_CA_FILE
extern const char ca_pem_start[] asm("_binary_ca_pem_start");
#endif

static bool s_led_on;

static esp_err_t temp_read_cb(const char *sensor_id, mcp_value_t *value, int *quality, void *user_data)
{
    (void)sensor_id;
#if SOC_TEMP_SENSOR_SUPPORTED
    float celsius = 0.0f;
    esp_err_t err = temperature_sensor_get_celsius((temperature_sensor_handle_t)user_data, &celsius);
    if (err != ESP_OK) {
        return err; /* the bridge publishes a "sensor_read" error instead of a reading */
    }
    value->number = celsius;
    *quality = 90;
#else
    (void)user_data;
    value->number = 21.0 + (double)(esp_random() % 300) / 100.0; /* no sensor on this chip */
    *quality = 50;
#endif
    return ESP_OK;
}

static esp_err_t led_control_cb(const char *actuator_id, mcp_action_t action, mcp_value_t *value, void *user_data)
{
    (void)actuator_id;
    (void)user_data;
    if (action == MCP_ACTION_READ) {
        value->boolean = s_led_on;
        return ESP_OK;
    }
    /* write and toggle: value holds the new state (already inverted for toggle) */
    esp_err_t err = gpio_set_level((gpio_num_t)CONFIG_EXAMPLE_LED_GPIO, value->boolean ? 1 : 0);
    if (err != ESP_OK) {
        return err;
    }
    s_led_on = value->boolean;
    ESP_LOGI(TAG, "LED %s", s_led_on ? "on" : "off");
    return ESP_OK;
}

static void event_handler(void *args, mcp_event_base_t base, int32_t id, void *data)
{
    (void)args;
    (void)base;
    switch ((mcp_bridge_event_id_t)id) {
    case MCP_EVENT_CONNECTED:
        ESP_LOGI(TAG, "connected to the broker");
        break;
    case MCP_EVENT_DISCONNECTED:
        ESP_LOGW(TAG, "disconnected from the broker");
        break;
    case MCP_EVENT_ERROR: {
        const mcp_event_error_t *e = data;
        ESP_LOGW(TAG, "error %s (%s): %s", e->error_type, mcp_bridge_err_to_name(e->code), e->message);
        break;
    }
    default:
        break;
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
    ESP_ERROR_CHECK(gpio_set_level((gpio_num_t)CONFIG_EXAMPLE_LED_GPIO, 0));

    void *temp_sensor = NULL;
#if SOC_TEMP_SENSOR_SUPPORTED
    temperature_sensor_handle_t tsens = NULL;
    const temperature_sensor_config_t tcfg = TEMPERATURE_SENSOR_CONFIG_DEFAULT(-10, 80);
    ESP_ERROR_CHECK(temperature_sensor_install(&tcfg, &tsens));
    ESP_ERROR_CHECK(temperature_sensor_enable(tsens));
    temp_sensor = tsens;
#endif

    /* menuconfig defaults (ESP MCP Bridge menu), then this device's settings */
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
    config.device_name = "Basic example";

    ESP_ERROR_CHECK(mcp_bridge_init(&config));
    ESP_ERROR_CHECK(mcp_bridge_register_event_handler(event_handler, NULL));

    const mcp_sensor_metadata_t temp_metadata = {
        .min_range = -40.0f,
        .max_range = 85.0f,
        .accuracy = 0.5f,
        .description = "Chip temperature sensor",
        .calibration_required = false,
    };
    ESP_ERROR_CHECK(mcp_bridge_register_sensor("temperature", "temperature", "°C", &temp_metadata, temp_read_cb,
                                               temp_sensor));

    static const char *led_actions[] = {"read", "write", "toggle", NULL};
    const mcp_actuator_metadata_t led_metadata = {
        .value_type = "boolean",
        .description = "Status LED",
        .supported_actions = led_actions,
        .response_time_ms = 100,
        .requires_confirmation = false,
    };
    ESP_ERROR_CHECK(mcp_bridge_register_actuator("led", "led", &led_metadata, led_control_cb, NULL));

    ESP_ERROR_CHECK(mcp_bridge_start());

    char device_id[MCP_DEVICE_ID_BUF_SIZE];
    ESP_ERROR_CHECK(mcp_bridge_get_device_id(device_id, sizeof(device_id)));
    ESP_LOGI(TAG, "device %s started", device_id);

    while (true) {
        mcp_bridge_metrics_t metrics;
        if (mcp_bridge_get_metrics(&metrics) == ESP_OK) {
            ESP_LOGI(TAG, "messages: %" PRIu32 " sent, %" PRIu32 " received; uptime %" PRIu32 " s; free heap %" PRIu32,
                     metrics.messages_sent, metrics.messages_received, metrics.uptime_seconds, metrics.free_heap);
        }
        vTaskDelay(pdMS_TO_TICKS(30000));
    }
}
