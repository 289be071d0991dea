/*
 * libFuzzer target: everything that parses incoming messages. The input is
 * split into a topic selector, a fragmentation pattern and the payload, and
 * delivered to a connected reference-like device on a recording port that
 * drops what it records (nothing may crash, leak or overflow).
 */
#include <stdint.h>
#include <string.h>

#include "mcp_core.h"

static uint64_t s_now = 1000;

static esp_err_t f_connect(void *ctx, const mcp_port_mqtt_params_t *p)
{
    (void)ctx;
    (void)p;
    return ESP_OK;
}
static esp_err_t f_disconnect(void *ctx)
{
    (void)ctx;
    return ESP_OK;
}
static esp_err_t f_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    (void)ctx;
    (void)qos;
    (void)retain;
    /* touch every byte so ASan sees out-of-bounds lengths */
    volatile uint8_t sum = 0;
    for (size_t i = 0; topic[i]; i++) {
        sum ^= (uint8_t)topic[i];
    }
    for (size_t i = 0; i < len; i++) {
        sum ^= ((const uint8_t *)payload)[i];
    }
    (void)sum;
    return ESP_OK;
}
static esp_err_t f_subscribe(void *ctx, const char *t, int q)
{
    (void)ctx;
    (void)t;
    (void)q;
    return ESP_OK;
}
static uint64_t f_now(void *ctx)
{
    (void)ctx;
    return s_now;
}
static void f_restart(void *ctx)
{
    (void)ctx;
}
static esp_err_t f_ota(void *ctx, const char *u, const char *s, const char *v)
{
    (void)ctx;
    (void)u;
    (void)s;
    (void)v;
    return ESP_OK;
}

static mcp_core_t *make_device(void)
{
    static const mcp_port_t port = {
        .mqtt_connect = f_connect,
        .mqtt_disconnect = f_disconnect,
        .mqtt_publish = f_publish,
        .mqtt_subscribe = f_subscribe,
        .now_ms = f_now,
        .restart = f_restart,
        .ota_start = f_ota,
    };
    static const char *const modes[] = {"auto", "manual", "off", NULL};
    static const char *led_actions[] = {"read", "write", "toggle", NULL};
    mcp_bridge_config_t cfg = {.mqtt_broker_uri = "mqtt://127.0.0.1", .device_id = "esp32-a1b2c3"};
    mcp_core_t *c = NULL;
    if (mcp_core_create(&cfg, &port, &c) != ESP_OK) {
        return NULL;
    }
    mcp_sensor_metadata_t t = {.min_range = -40, .max_range = 85};
    mcp_core_register_sensor(c, "temperature", "temperature", "°C", &t, NULL, NULL);
    mcp_actuator_metadata_t led = {.value_type = "boolean", .supported_actions = led_actions};
    mcp_core_register_actuator(c, "led", "led", &led, NULL, NULL);
    mcp_actuator_metadata_t valve = {.value_type = "number", .min_value = 0, .max_value = 100, .step = 5};
    mcp_core_register_actuator(c, "valve", "valve", &valve, NULL, NULL);
    mcp_actuator_metadata_t fan = {.value_type = "enum", .enum_options = modes};
    mcp_core_register_actuator(c, "fan_mode", "fan", &fan, NULL, NULL);
    mcp_actuator_metadata_t text = {.value_type = "string"};
    mcp_core_register_actuator(c, "display_text", "display", &text, NULL, NULL);
    mcp_actuator_metadata_t buzzer = {.value_type = "trigger"};
    mcp_core_register_actuator(c, "buzzer", "button", &buzzer, NULL, NULL);
    mcp_core_start(c);
    mcp_core_on_connected(c);
    return c;
}

static const char *const TOPICS[] = {
    "mcp_bridge/esp32-a1b2c3/cmd",
    "mcp_bridge/esp32-a1b2c3/actuators/led/set",
    "mcp_bridge/esp32-a1b2c3/actuators/valve/set",
    "mcp_bridge/esp32-a1b2c3/actuators/fan_mode/set",
    "mcp_bridge/esp32-a1b2c3/actuators/display_text/set",
    "mcp_bridge/esp32-a1b2c3/actuators/buzzer/set",
    "mcp_bridge/esp32-a1b2c3/actuators/+/set",
    "homeassistant/status",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mcp_core_t *core;
    if (!core) {
        core = make_device();
    }
    if (size < 2 || !core) {
        return 0;
    }
    const char *topic = TOPICS[data[0] % (sizeof TOPICS / sizeof TOPICS[0])];
    size_t chunk = (size_t)(data[1] % 8) * 97 + 1; /* 1..680 bytes per fragment */
    bool corrupt = (data[1] & 0x80) != 0;        /* drop one fragment */
    const uint8_t *payload = data + 2;
    size_t len = size - 2;
    size_t off = 0;
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        if (!(corrupt && off == chunk)) {
            mcp_core_on_message(core, topic, strlen(topic), payload + off, n, len, off);
        }
        off += n;
    } while (off < len);
    s_now += 50;
    mcp_core_tick(core, s_now);
    return 0;
}
