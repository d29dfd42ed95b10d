/* backoff.h - retry delays: min(max_delay, base * multiplier^attempt)
 * shaped by the configured jitter. Pure: the random source is passed in
 * as a state word the caller keeps. */
#ifndef RCC_BACKOFF_H
#define RCC_BACKOFF_H

#include <stdint.h>

#include "config.h"

/* Next value of a xorshift64* generator; *state must not be 0. */
uint64_t backoff_rand(uint64_t *state);

/* Delay in ms before retry number attempt (0 = the first retry).
 * prev_ms is the previous delay (decorrelated jitter uses it; 0 at
 * first). */
int64_t backoff_delay_ms(const struct cfg_retry *r, int attempt,
                         int64_t prev_ms, uint64_t *rng);

#endif
