/*
 * The public singleton API (esp_mcp_bridge.h): one core context plus the
 * platform's default port. Every call takes the port's (recursive) lock.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_mcp_bridge.h"
#include "mcp_core.h"

static struct {
    mcp_core_t *core;
    mcp_port_t port;
    bool own_port;
} s_bridge;

static void lock(void)
{
    if (s_bridge.port.lock) {
        s_bridge.port.lock(s_bridge.port.ctx);
    }
}

static void unlock(void)
{
    if (s_bridge.port.unlock) {
        s_bridge.port.unlock(s_bridge.port.ctx);
    }
}

#define WITH_CORE(expr)                      \
    do {                                     \
        if (!s_bridge.core) {                \
            return ESP_ERR_INVALID_STATE;    \
        }                                    \
        lock();                              \
        esp_err_t err_ = (expr);             \
        unlock();                            \
        return err_;                         \
    } while (0)

esp_err_t mcp_bridge_init_with_port(const mcp_bridge_config_t *config, const mcp_port_t *port)
{
    if (s_bridge.core) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!config || !port) {
        return ESP_ERR_INVALID_ARG;
    }
    s_bridge.port = *port;
    esp_err_t err = mcp_core_create(config, port, &s_bridge.core);
    if (err != ESP_OK) {
        memset(&s_bridge, 0, sizeof s_bridge);
    }
    return err;
}

esp_err_t mcp_bridge_init(const mcp_bridge_config_t *config)
{
    if (s_bridge.core) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!config) {
        return ESP_ERR_INVALID_ARG;
    }
    mcp_port_t port;
    memset(&port, 0, sizeof port);
    esp_err_t err = mcp_port_default_create(config, &port);
    if (err != ESP_OK) {
        return err;
    }
    err = mcp_bridge_init_with_port(config, &port);
    if (err != ESP_OK) {
        mcp_port_default_destroy(&port);
        return err;
    }
    s_bridge.own_port = true;
    return ESP_OK;
}

mcp_core_t *mcp_bridge_core(void)
{
    return s_bridge.core;
}

esp_err_t mcp_bridge_register_event_handler(mcp_bridge_event_handler_t handler, void *handler_args)
{
    WITH_CORE(mcp_core_set_event_handler(s_bridge.core, handler, handler_args));
}

esp_err_t mcp_bridge_register_sensor(const char *sensor_id, const char *type, const char *unit,
                                     const mcp_sensor_metadata_t *metadata, mcp_sensor_read_cb_t read_cb,
                                     void *user_data)
{
    WITH_CORE(mcp_core_register_sensor(s_bridge.core, sensor_id, type, unit, metadata, read_cb, user_data));
}

esp_err_t mcp_bridge_register_actuator(const char *actuator_id, const char *type,
                                       const mcp_actuator_metadata_t *metadata, mcp_actuator_control_cb_t control_cb,
                                       void *user_data)
{
    WITH_CORE(mcp_core_register_actuator(s_bridge.core, actuator_id, type, metadata, control_cb, user_data));
}

esp_err_t mcp_bridge_start(void)
{
    WITH_CORE(mcp_core_start(s_bridge.core));
}

esp_err_t mcp_bridge_stop(void)
{
    WITH_CORE(mcp_core_stop(s_bridge.core));
}

esp_err_t mcp_bridge_deinit(void)
{
    if (!s_bridge.core) {
        return ESP_ERR_INVALID_STATE;
    }
    lock();
    mcp_bridge_status_t st;
    mcp_core_get_status(s_bridge.core, &st);
    if (st.state == MCP_BRIDGE_STATE_CONNECTING || st.state == MCP_BRIDGE_STATE_CONNECTED) {
        mcp_core_stop(s_bridge.core);
    }
    unlock();
    /* detach (inside destroy) stops the port's tasks before the core is freed */
    mcp_core_destroy(s_bridge.core);
    if (s_bridge.own_port) {
        mcp_port_default_destroy(&s_bridge.port);
    }
    memset(&s_bridge, 0, sizeof s_bridge);
    return ESP_OK;
}

/* The float's shortest decimal as a double: 21.7f is published as 21.7,
 * not as 21.700000762939453. */
static double float_as_decimal(float f)
{
    if (!isfinite(f)) {
        return (double)f;
    }
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) {
            return d;
        }
    }
    return (double)f;
}

esp_err_t mcp_bridge_publish_sensor_data(const char *sensor_id, float value)
{
    mcp_value_t v = mcp_value_number(float_as_decimal(value));
    WITH_CORE(mcp_core_publish_sensor_value(s_bridge.core, sensor_id, &v, -1));
}

esp_err_t mcp_bridge_publish_sensor_value(const char *sensor_id, const mcp_value_t *value, int quality)
{
    WITH_CORE(mcp_core_publish_sensor_value(s_bridge.core, sensor_id, value, quality));
}

esp_err_t mcp_bridge_publish_sensor_batch(const mcp_sensor_reading_t *readings, size_t count)
{
    WITH_CORE(mcp_core_publish_sensor_batch(s_bridge.core, readings, count));
}

esp_err_t mcp_bridge_publish_actuator_state(const char *actuator_id, const mcp_value_t *value)
{
    WITH_CORE(mcp_core_publish_actuator_state(s_bridge.core, actuator_id, value));
}

esp_err_t mcp_bridge_set_sensor_streaming(const char *sensor_id, bool enable, uint32_t interval_ms)
{
    WITH_CORE(mcp_core_set_sensor_streaming(s_bridge.core, sensor_id, enable, interval_ms));
}

esp_err_t mcp_bridge_update_config(const mcp_bridge_config_t *config)
{
    WITH_CORE(mcp_core_update_config(s_bridge.core, config));
}

esp_err_t mcp_bridge_publish_error(const char *error_type, const char *message, uint8_t severity)
{
    WITH_CORE(mcp_core_publish_error(s_bridge.core, error_type, ESP_FAIL, message, severity));
}

esp_err_t mcp_bridge_get_metrics(mcp_bridge_metrics_t *metrics)
{
    WITH_CORE(mcp_core_get_metrics(s_bridge.core, metrics));
}

esp_err_t mcp_bridge_flush(uint32_t timeout_ms)
{
    WITH_CORE(mcp_core_flush(s_bridge.core, timeout_ms));
}

esp_err_t mcp_bridge_reset_metrics(void)
{
    WITH_CORE(mcp_core_reset_metrics(s_bridge.core));
}

esp_err_t mcp_bridge_get_status(mcp_bridge_status_t *status)
{
    if (!status) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!s_bridge.core) {
        memset(status, 0, sizeof *status);
        status->state = MCP_BRIDGE_STATE_UNINITIALIZED;
        return ESP_OK;
    }
    WITH_CORE(mcp_core_get_status(s_bridge.core, status));
}

static esp_err_t copy_id(char *buf, size_t len)
{
    const char *id = mcp_core_device_id(s_bridge.core);
    size_t n = strlen(id);
    if (!buf || len <= n) {
        return ESP_ERR_INVALID_SIZE;
    }
    memcpy(buf, id, n + 1);
    return ESP_OK;
}

esp_err_t mcp_bridge_get_device_id(char *buf, size_t buf_len)
{
    if (!buf) {
        return ESP_ERR_INVALID_ARG;
    }
    WITH_CORE(copy_id(buf, buf_len));
}

bool mcp_bridge_safe_mode(void)
{
    return mcp_core_safe_mode(s_bridge.core);
}

esp_err_t mcp_bridge_set_discovery_mode(mcp_discovery_mode_t mode)
{
    WITH_CORE(mcp_core_set_discovery_mode(s_bridge.core, mode));
}
