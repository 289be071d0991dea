/*
 * esp_mcp_bridge on ESP-IDF: configuration defaults from menuconfig.
 *
 *     mcp_bridge_config_t cfg = MCP_BRIDGE_CONFIG_DEFAULT();
 *     cfg.wifi_ssid = CONFIG_EXAMPLE_WIFI_SSID;
 *     cfg.wifi_password = CONFIG_EXAMPLE_WIFI_PASSWORD;
 *     cfg.mqtt_broker_uri = CONFIG_EXAMPLE_BROKER_URI;
 *     ESP_ERROR_CHECK(mcp_bridge_init(&cfg));
 *
 * fills every field that has an option in the "ESP MCP Bridge" menu
 * (component Kconfig). Fields left zero / NULL take the defaults documented in
 * esp_mcp_bridge.h. Targets ESP-IDF 5.5 and 6.x.
 */
#pragma once

#include <stdint.h>

#include "esp_mcp_bridge.h"
#include "sdkconfig.h"

#ifdef __cplusplus
extern "C" {
#endif

#if CONFIG_MCP_BRIDGE_METRICS_INTERVAL_MS == 0
#define MCP_BRIDGE_IDF_METRICS_INTERVAL_MS UINT32_MAX /* only on request */
#else
#define MCP_BRIDGE_IDF_METRICS_INTERVAL_MS ((uint32_t)CONFIG_MCP_BRIDGE_METRICS_INTERVAL_MS)
#endif

#ifdef CONFIG_MCP_BRIDGE_TLS_ENABLE
#define MCP_BRIDGE_IDF_TLS_ENABLE true
#else
#define MCP_BRIDGE_IDF_TLS_ENABLE false
#endif

#ifdef CONFIG_MCP_BRIDGE_WATCHDOG
#define MCP_BRIDGE_IDF_WATCHDOG true
#else
#define MCP_BRIDGE_IDF_WATCHDOG false
#endif

/** A mcp_bridge_config_t initialiser with the menuconfig settings. */
#define MCP_BRIDGE_CONFIG_DEFAULT()                                                          \
    {                                                                                        \
        .base_topic = CONFIG_MCP_BRIDGE_BASE_TOPIC,                                          \
        .discovery_prefix = CONFIG_MCP_BRIDGE_DISCOVERY_PREFIX,                              \
        .sensor_publish_interval_ms = (uint32_t)CONFIG_MCP_BRIDGE_PUBLISH_INTERVAL_MS,       \
        .metrics_interval_ms = MCP_BRIDGE_IDF_METRICS_INTERVAL_MS,                           \
        .command_timeout_ms = (uint32_t)CONFIG_MCP_BRIDGE_COMMAND_TIMEOUT_MS,                \
        .max_command_size = (uint32_t)CONFIG_MCP_BRIDGE_MAX_COMMAND_SIZE,                    \
        .max_sensors = (uint16_t)CONFIG_MCP_BRIDGE_MAX_SENSORS,                              \
        .max_actuators = (uint16_t)CONFIG_MCP_BRIDGE_MAX_ACTUATORS,                          \
        .enable_watchdog = MCP_BRIDGE_IDF_WATCHDOG,                                          \
        .low_heap_threshold = (uint32_t)CONFIG_MCP_BRIDGE_LOW_HEAP_THRESHOLD,                \
        .reboot_after_offline_ms = (uint32_t)CONFIG_MCP_BRIDGE_OFFLINE_REBOOT_S * 1000u,       \
        .qos_config =                                                                        \
            {                                                                                \
                .sensor_qos = CONFIG_MCP_BRIDGE_SENSOR_QOS,                                  \
                .actuator_qos = CONFIG_MCP_BRIDGE_ACTUATOR_QOS,                              \
                .status_qos = CONFIG_MCP_BRIDGE_STATUS_QOS,                                  \
                .error_qos = CONFIG_MCP_BRIDGE_ERROR_QOS,                                    \
            },                                                                               \
        .tls_config =                                                                        \
            {                                                                                \
                .enable_tls = MCP_BRIDGE_IDF_TLS_ENABLE,                                     \
            },                                                                               \
    }

#ifdef __cplusplus
}
#endif
