/*
 * NVS settings and device identity for the ESP-IDF port (ESP-IDF 5.5 and 6.x).
 */
#include <stdio.h>
#include <string.h>

#include "esp_log.h"
#include "esp_mac.h"
#include "nvs.h"
#include "nvs_flash.h"

#include "mcp_idf.h"

esp_err_t mcp_idf_nvs_init(void)
{
    /* Returns ESP_OK when the application has initialised NVS already. */
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_LOGE(MCP_IDF_TAG, "NVS partition needs erasing (%s); call nvs_flash_erase() and nvs_flash_init() "
                 "before mcp_bridge_init()", esp_err_to_name(err));
    }
    return err;
}

esp_err_t mcp_idf_nvs_get_blob(const char *key, void *buf, size_t *len)
{
    if (key == NULL || buf == NULL || len == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    nvs_handle_t h;
    esp_err_t err = nvs_open(MCP_IDF_NVS_NAMESPACE, NVS_READONLY, &h);
    if (err != ESP_OK) {
        return err; /* ESP_ERR_NVS_NOT_FOUND: namespace never written */
    }
    size_t size = *len;
    err = nvs_get_blob(h, key, buf, &size);
    nvs_close(h);
    if (err == ESP_OK) {
        *len = size;
    }
    return err;
}

esp_err_t mcp_idf_nvs_set_blob(const char *key, const void *data, size_t len)
{
    if (key == NULL || (data == NULL && len > 0)) {
        return ESP_ERR_INVALID_ARG;
    }
    nvs_handle_t h;
    esp_err_t err = nvs_open(MCP_IDF_NVS_NAMESPACE, NVS_READWRITE, &h);
    if (err != ESP_OK) {
        return err;
    }
    err = nvs_set_blob(h, key, data, len);
    if (err == ESP_OK) {
        err = nvs_commit(h);
    }
    nvs_close(h);
    return err;
}

esp_err_t mcp_idf_nvs_erase_key(const char *key)
{
    if (key == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    nvs_handle_t h;
    esp_err_t err = nvs_open(MCP_IDF_NVS_NAMESPACE, NVS_READWRITE, &h);
    if (err != ESP_OK) {
        return err == ESP_ERR_NVS_NOT_FOUND ? ESP_OK : err;
    }
    err = nvs_erase_key(h, key);
    if (err == ESP_OK) {
        err = nvs_commit(h);
    } else if (err == ESP_ERR_NVS_NOT_FOUND) {
        err = ESP_OK;
    }
    nvs_close(h);
    return err;
}

static bool id_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

esp_err_t mcp_idf_default_device_id(const char *prefix, char *buf, size_t len)
{
    /* device id rule: [a-z0-9][a-z0-9_-]{0,31}; "-xxxxxx" takes 7 characters */
    enum { MAX_ID = 32, SUFFIX = 7, MAX_PREFIX = MAX_ID - SUFFIX };
    if (prefix == NULL || buf == NULL || prefix[0] == '\0' || !id_char_ok(prefix[0]) || prefix[0] == '_' ||
        prefix[0] == '-') {
        return ESP_ERR_INVALID_ARG;
    }
    size_t plen = strnlen(prefix, MAX_PREFIX + 1);
    if (plen > MAX_PREFIX) {
        plen = MAX_PREFIX;
    }
    for (size_t i = 0; i < plen; i++) {
        if (!id_char_ok(prefix[i])) {
            return ESP_ERR_INVALID_ARG;
        }
    }
    if (len < plen + SUFFIX + 1) {
        return ESP_ERR_INVALID_SIZE;
    }
    uint8_t mac[6];
    esp_err_t err = esp_read_mac(mac, ESP_MAC_WIFI_STA);
    if (err != ESP_OK) {
        return err;
    }
    int n = snprintf(buf, len, "%.*s-%02x%02x%02x", (int)plen, prefix, mac[3], mac[4], mac[5]);
    return (n > 0 && (size_t)n < len) ? ESP_OK : ESP_ERR_INVALID_SIZE;
}

esp_err_t mcp_idf_mac_string(char *buf, size_t len)
{
    if (buf == NULL || len < 18) {
        return ESP_ERR_INVALID_SIZE;
    }
    uint8_t mac[6];
    esp_err_t err = esp_read_mac(mac, ESP_MAC_WIFI_STA);
    if (err != ESP_OK) {
        return err;
    }
    snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return ESP_OK;
}
