#include "vd_signal.h"

#include <math.h>
#include <string.h>

#define VD_PI 3.14159265358979323846

void vd_rng_seed(vd_rng_t *rng, uint64_t seed)
{
    /* splitmix64 scramble so that nearby seeds give unrelated streams; never 0. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    rng->s = z ? z : 0x2545F4914F6CDD1Dull;
}

uint64_t vd_rng_next(vd_rng_t *rng)
{
    uint64_t x = rng->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double vd_rng_uniform(vd_rng_t *rng)
{
    return (double)(vd_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

double vd_rng_gauss(vd_rng_t *rng)
{
    double u1 = vd_rng_uniform(rng);
    double u2 = vd_rng_uniform(rng);
    if (u1 < 1e-300) {
        u1 = 1e-300;
    }
    return sqrt(-2.0 * log(u1)) * cos(2.0 * VD_PI * u2);
}

void vd_signal_init(vd_signal_state_t *st, const vd_signal_params_t *p, uint64_t seed)
{
    memset(st, 0, sizeof(*st));
    vd_rng_seed(&st->rng, seed);
    st->walk = p->start;
    st->toggle = p->value != 0.0;
}

static double phase_of(const vd_signal_params_t *p, uint64_t t_ms)
{
    if (p->period_ms <= 0.0) {
        return 0.0;
    }
    double x = (double)t_ms / p->period_ms + p->phase;
    return x - floor(x);
}

static double round_to(double v, int decimals)
{
    if (decimals < 0 || decimals > 9) {
        return v;
    }
    double scale = pow(10.0, decimals);
    return round(v * scale) / scale;
}

double vd_signal_number(const vd_signal_params_t *p, vd_signal_state_t *st, uint64_t t_ms)
{
    double v;
    switch (p->kind) {
    case VD_SIGNAL_SINE:
        v = p->offset + p->amplitude * sin(2.0 * VD_PI * phase_of(p, t_ms));
        break;
    case VD_SIGNAL_RANDOM_WALK:
        if (st->started) {
            st->walk += (2.0 * vd_rng_uniform(&st->rng) - 1.0) * p->step;
        }
        if (p->min < p->max) {
            if (st->walk < p->min) {
                st->walk = p->min;
            } else if (st->walk > p->max) {
                st->walk = p->max;
            }
        }
        v = st->walk;
        break;
    case VD_SIGNAL_SQUARE: {
        double duty = p->duty > 0.0 ? p->duty : 0.5;
        v = phase_of(p, t_ms) < duty ? p->high : p->low;
        break;
    }
    case VD_SIGNAL_TOGGLE:
    case VD_SIGNAL_PROBABILITY:
        v = vd_signal_bool(p, st, t_ms) ? 1.0 : 0.0;
        break;
    case VD_SIGNAL_CYCLE:
    case VD_SIGNAL_CONSTANT:
    default:
        v = p->value;
        break;
    }
    st->started = true;
    if (p->noise > 0.0) {
        v += p->noise * vd_rng_gauss(&st->rng);
    }
    v = round_to(v, p->decimals);
    if (!isfinite(v)) {
        v = 0.0;
    }
    return v;
}

bool vd_signal_bool(const vd_signal_params_t *p, vd_signal_state_t *st, uint64_t t_ms)
{
    switch (p->kind) {
    case VD_SIGNAL_TOGGLE:
        if (st->started) {
            st->toggle = !st->toggle;
        }
        st->started = true;
        return st->toggle;
    case VD_SIGNAL_PROBABILITY:
        st->started = true;
        return vd_rng_uniform(&st->rng) < p->probability;
    case VD_SIGNAL_SQUARE: {
        double duty = p->duty > 0.0 ? p->duty : 0.5;
        return phase_of(p, t_ms) < duty;
    }
    default:
        return p->value != 0.0;
    }
}

size_t vd_signal_index(const vd_signal_params_t *p, vd_signal_state_t *st, size_t count)
{
    if (count == 0 || p->kind != VD_SIGNAL_CYCLE) {
        return 0;
    }
    size_t i = st->cycle_index % count;
    st->cycle_index = (i + 1) % count;
    return i;
}

static const char *const KIND_NAMES[] = {
    [VD_SIGNAL_CONSTANT] = "constant", [VD_SIGNAL_SINE] = "sine",
    [VD_SIGNAL_RANDOM_WALK] = "random_walk", [VD_SIGNAL_SQUARE] = "square",
    [VD_SIGNAL_TOGGLE] = "toggle", [VD_SIGNAL_PROBABILITY] = "probability",
    [VD_SIGNAL_CYCLE] = "cycle",
};

int vd_signal_kind_from_name(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    if (strcmp(name, "step") == 0) {
        return VD_SIGNAL_SQUARE;
    }
    for (size_t i = 0; i < sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0]); i++) {
        if (strcmp(name, KIND_NAMES[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *vd_signal_kind_name(vd_signal_kind_t kind)
{
    if ((size_t)kind < sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0])) {
        return KIND_NAMES[kind];
    }
    return "?";
}
