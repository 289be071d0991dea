/*
 * esp_err_t for both worlds.
 *
 * Under ESP-IDF (ESP_PLATFORM defined by the IDF build) this simply includes
 * "esp_err.h". On a host build it provides the small subset of esp_err.h that
 * the esp_mcp_bridge API uses, with the same names and the same values, so the
 * public header and the portable core compile unchanged on both.
 */
#pragma once

#ifdef ESP_PLATFORM
#include "esp_err.h"
#else
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int esp_err_t;

#define ESP_OK 0
#define ESP_FAIL -1
#define ESP_ERR_NO_MEM 0x101
#define ESP_ERR_INVALID_ARG 0x102
#define ESP_ERR_INVALID_STATE 0x103
#define ESP_ERR_INVALID_SIZE 0x104
#define ESP_ERR_NOT_FOUND 0x105
#define ESP_ERR_NOT_SUPPORTED 0x106
#define ESP_ERR_TIMEOUT 0x107
#define ESP_ERR_INVALID_RESPONSE 0x108
#define ESP_ERR_INVALID_CRC 0x109
#define ESP_ERR_INVALID_VERSION 0x10A
#define ESP_ERR_INVALID_MAC 0x10B
#define ESP_ERR_NOT_FINISHED 0x10C
#define ESP_ERR_NOT_ALLOWED 0x10D

#ifdef __cplusplus
}
#endif
#endif /* ESP_PLATFORM */
