/*
 * OTA update with esp_https_ota plus a SHA-256 check of the downloaded image
 * before it is activated. ESP-IDF 5.5 (Mbed TLS 3.6) and 6.x (Mbed TLS 4 /
 * TF-PSA-Crypto): the hash uses the PSA Crypto API, present in both.
 */
#include <stdlib.h>
#include <string.h>

#include "esp_http_client.h"
#include "esp_https_ota.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "psa/crypto.h"
#include "sdkconfig.h"

#if CONFIG_MCP_BRIDGE_TLS_USE_CRT_BUNDLE
#include "esp_crt_bundle.h"
#endif

#include "mcp_idf.h"

#define SHA256_LEN 32
#define READ_CHUNK 1024

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool parse_sha256(const char *hex, uint8_t out[SHA256_LEN])
{
    if (hex == NULL || strnlen(hex, 2 * SHA256_LEN + 1) != 2 * SHA256_LEN) {
        return false;
    }
    for (size_t i = 0; i < SHA256_LEN; i++) {
        int hi = hex_nibble(hex[2 * i]);
        int lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return true;
}

/* SHA-256 of the first `len` bytes of `part` (what esp_https_ota wrote). */
static esp_err_t partition_sha256(const esp_partition_t *part, size_t len, uint8_t out[SHA256_LEN])
{
    if (psa_crypto_init() != PSA_SUCCESS) {
        return ESP_FAIL;
    }
    uint8_t *buf = malloc(READ_CHUNK);
    if (buf == NULL) {
        return ESP_ERR_NO_MEM;
    }
    psa_hash_operation_t op = PSA_HASH_OPERATION_INIT;
    esp_err_t err = psa_hash_setup(&op, PSA_ALG_SHA_256) == PSA_SUCCESS ? ESP_OK : ESP_FAIL;
    for (size_t off = 0; err == ESP_OK && off < len; off += READ_CHUNK) {
        size_t n = len - off < READ_CHUNK ? len - off : READ_CHUNK;
        err = esp_partition_read(part, off, buf, n);
        if (err == ESP_OK && psa_hash_update(&op, buf, n) != PSA_SUCCESS) {
            err = ESP_FAIL;
        }
    }
    size_t out_len = 0;
    if (err == ESP_OK && (psa_hash_finish(&op, out, SHA256_LEN, &out_len) != PSA_SUCCESS || out_len != SHA256_LEN)) {
        err = ESP_FAIL;
    }
    if (err != ESP_OK) {
        psa_hash_abort(&op);
    }
    free(buf);
    return err;
}

esp_err_t mcp_idf_ota_run(const mcp_idf_ota_cfg_t *cfg)
{
    uint8_t want[SHA256_LEN];
    if (cfg == NULL || cfg->url == NULL || cfg->url[0] == '\0' || !parse_sha256(cfg->sha256_hex, want)) {
        return ESP_ERR_INVALID_ARG;
    }
    esp_http_client_config_t http;
    memset(&http, 0, sizeof(http));
    http.url = cfg->url;
    http.cert_pem = cfg->ca_pem;
#if CONFIG_MCP_BRIDGE_TLS_USE_CRT_BUNDLE
    if (cfg->ca_pem == NULL && cfg->use_crt_bundle) {
        http.crt_bundle_attach = esp_crt_bundle_attach;
    }
#endif
    http.skip_cert_common_name_check = cfg->skip_cert_common_name_check;
    http.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    http.keep_alive_enable = true;

    esp_https_ota_config_t ota;
    memset(&ota, 0, sizeof(ota));
    ota.http_config = &http;

    esp_https_ota_handle_t h = NULL;
    esp_err_t err = esp_https_ota_begin(&ota, &h);
    if (err != ESP_OK) {
        ESP_LOGE(MCP_IDF_TAG, "OTA begin failed: %s", esp_err_to_name(err));
        return err;
    }
    int total = esp_https_ota_get_image_size(h);
    while ((err = esp_https_ota_perform(h)) == ESP_ERR_HTTPS_OTA_IN_PROGRESS) {
        if (cfg->progress != NULL) {
            int done = esp_https_ota_get_image_len_read(h);
            cfg->progress(cfg->progress_arg, done > 0 ? (size_t)done : 0, total > 0 ? (size_t)total : 0);
        }
    }
    if (err == ESP_OK && !esp_https_ota_is_complete_data_received(h)) {
        err = ESP_ERR_INVALID_SIZE;
    }
    if (err == ESP_OK) {
        int len = esp_https_ota_get_image_len_read(h);
        const esp_partition_t *part = esp_ota_get_next_update_partition(NULL);
        uint8_t got[SHA256_LEN];
        if (len <= 0 || part == NULL) {
            err = ESP_ERR_INVALID_SIZE;
        } else {
            err = partition_sha256(part, (size_t)len, got);
        }
        if (err == ESP_OK) {
            uint8_t diff = 0;
            for (size_t i = 0; i < SHA256_LEN; i++) {
                diff |= (uint8_t)(got[i] ^ want[i]);
            }
            if (diff != 0) {
                ESP_LOGE(MCP_IDF_TAG, "OTA image SHA-256 mismatch: not activated");
                err = ESP_ERR_INVALID_CRC;
            }
        }
    }
    if (err != ESP_OK) {
        ESP_LOGE(MCP_IDF_TAG, "OTA failed: %s", esp_err_to_name(err));
        esp_https_ota_abort(h);
        return err;
    }
    err = esp_https_ota_finish(h); /* validates the image and sets the boot partition */
    if (err != ESP_OK) {
        ESP_LOGE(MCP_IDF_TAG, "OTA finish failed: %s", esp_err_to_name(err));
    }
    return err;
}
