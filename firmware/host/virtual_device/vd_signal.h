/*
 * vd_signal.h — simulated sensor signals for the virtual device.
 *
 * Pure functions of (time, pseudo-random state): no I/O, no globals, so the
 * same --seed and the same read times give the same values.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** xorshift64* generator: small, fast, deterministic for a given seed. */
typedef struct {
    uint64_t s;
} vd_rng_t;

void vd_rng_seed(vd_rng_t *rng, uint64_t seed);
uint64_t vd_rng_next(vd_rng_t *rng);
/** Uniform in [0, 1). */
double vd_rng_uniform(vd_rng_t *rng);
/** Standard normal (Box-Muller). */
double vd_rng_gauss(vd_rng_t *rng);

typedef enum {
    VD_SIGNAL_CONSTANT = 0, /**< number/boolean/string/enum: always `value` / `text` */
    VD_SIGNAL_SINE,         /**< number: offset + amplitude * sin(2*pi*(t/period + phase)) */
    VD_SIGNAL_RANDOM_WALK,  /**< number: start, +-step per read, kept in [min, max] */
    VD_SIGNAL_SQUARE,       /**< number or boolean: high for duty*period, low otherwise ("step") */
    VD_SIGNAL_TOGGLE,       /**< boolean: flips on every read */
    VD_SIGNAL_PROBABILITY,  /**< boolean: true with `probability` on each read */
    VD_SIGNAL_CYCLE,        /**< enum/string: next option on every read */
} vd_signal_kind_t;

/** Parameters of a signal (read-only while the device runs). */
typedef struct {
    vd_signal_kind_t kind;
    double value;       /**< constant number; boolean constant: != 0 */
    double offset;      /**< sine */
    double amplitude;   /**< sine */
    double period_ms;   /**< sine, square */
    double phase;       /**< sine, square: fraction of a period, 0..1 */
    double start;       /**< random walk */
    double step;        /**< random walk: largest change per read */
    double min;         /**< random walk bounds */
    double max;
    double low;         /**< square */
    double high;
    double duty;        /**< square: fraction of the period spent high (default 0.5) */
    double probability; /**< boolean probability */
    double noise;       /**< number: standard deviation of added Gaussian noise */
    int decimals;       /**< number: round to this many decimals (-1: no rounding) */
} vd_signal_params_t;

/** Per-device mutable state of one signal. */
typedef struct {
    vd_rng_t rng;
    double walk;
    bool toggle;
    size_t cycle_index;
    bool started;
} vd_signal_state_t;

void vd_signal_init(vd_signal_state_t *st, const vd_signal_params_t *p, uint64_t seed);

/** Number at time t_ms (ms since the device started). Always finite. */
double vd_signal_number(const vd_signal_params_t *p, vd_signal_state_t *st, uint64_t t_ms);
/** Boolean at time t_ms. */
bool vd_signal_bool(const vd_signal_params_t *p, vd_signal_state_t *st, uint64_t t_ms);
/** Index into an option list of `count` (>= 1) entries (cycle; constant: 0). */
size_t vd_signal_index(const vd_signal_params_t *p, vd_signal_state_t *st, size_t count);

/** Name <-> kind ("sine", "random_walk", "square" or "step", ...). -1 when unknown. */
int vd_signal_kind_from_name(const char *name);
const char *vd_signal_kind_name(vd_signal_kind_t kind);
