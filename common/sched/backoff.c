/* backoff.c - exponential backoff with none / full / equal /
 * decorrelated jitter (the AWS architecture blog's definitions). */
#include "backoff.h"

#include <math.h>

#define BACKOFF_DECORRELATED_FACTOR 3

uint64_t backoff_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [lo, hi]. */
static int64_t backoff_between(int64_t lo, int64_t hi, uint64_t *rng)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(backoff_rand(rng) % (uint64_t)(hi - lo + 1));
}

int64_t backoff_delay_ms(const struct cfg_retry *r, int attempt,
                         int64_t prev_ms, uint64_t *rng)
{
    double d = r->base_delay_ms * pow(r->multiplier, attempt);
    int64_t cap = r->max_delay_ms;
    int64_t exp_ms = d >= (double)cap ? cap : (int64_t)d;
    int64_t hi;

    switch (r->jitter) {
    case CFG_JITTER_NONE:
        return exp_ms;
    case CFG_JITTER_FULL:
        return backoff_between(0, exp_ms, rng);
    case CFG_JITTER_EQUAL:
        return exp_ms / 2 + backoff_between(0, exp_ms - exp_ms / 2, rng);
    case CFG_JITTER_DECORRELATED:
        if (prev_ms < r->base_delay_ms)
            prev_ms = r->base_delay_ms;
        hi = prev_ms * BACKOFF_DECORRELATED_FACTOR;
        if (hi > cap)
            hi = cap;
        return backoff_between(r->base_delay_ms < cap ? r->base_delay_ms
                                                      : cap, hi, rng);
    }
    return exp_ms;
}
