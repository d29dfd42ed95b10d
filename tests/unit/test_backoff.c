/* test_backoff.c - retry delays: the exponential curve and its cap, each
 * jitter's bounds over many samples (and that it really spreads), the
 * decorrelated chain, and the xorshift64* source. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "backoff.h"
#include "unit.h"

#define BT_BASE          100
#define BT_CAP           5000
#define BT_SAMPLES       4000
#define BT_ATTEMPTS      12
#define BT_RAND_RUN      20000
#define BT_SEED          0x853C49E6748FEA9BULL
#define BT_HUGE_ATTEMPT  100000

static struct cfg_retry bt_retry(enum cfg_jitter jitter)
{
    struct cfg_retry r;

    memset(&r, 0, sizeof(r));
    r.max_retries = 5;
    r.base_delay_ms = BT_BASE;
    r.max_delay_ms = BT_CAP;
    r.multiplier = 2.0;
    r.jitter = jitter;
    return r;
}

/* min(cap, base * 2^attempt) */
static int64_t bt_exp(int attempt)
{
    int64_t d = BT_BASE;

    for (int i = 0; i < attempt && d < BT_CAP; i++)
        d *= 2;
    return d < BT_CAP ? d : BT_CAP;
}

static void test_no_jitter(void)
{
    struct cfg_retry r = bt_retry(CFG_JITTER_NONE);
    uint64_t rng = BT_SEED;

    for (int a = 0; a < BT_ATTEMPTS; a++)
        CU_ASSERT_EQUAL(backoff_delay_ms(&r, a, 0, &rng), bt_exp(a));
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 0, 0, &rng), BT_BASE);
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 5, 0, &rng), 3200);
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 6, 0, &rng), BT_CAP);  /* 6400 */
    /* pow() overflows to infinity; still the cap. */
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, BT_HUGE_ATTEMPT, 0, &rng), BT_CAP);
    CU_ASSERT_EQUAL(rng, BT_SEED);      /* no randomness used */

    r.multiplier = 1.0;
    for (int a = 0; a < BT_ATTEMPTS; a++)
        CU_ASSERT_EQUAL(backoff_delay_ms(&r, a, 0, &rng), BT_BASE);
    r.multiplier = 1.5;
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 2, 0, &rng), 225);
    r.base_delay_ms = 0;
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 3, 0, &rng), 0);
}

/* Samples attempt's delay BT_SAMPLES times; min and max seen. */
static void bt_sample(const struct cfg_retry *r, int attempt, uint64_t *rng,
                      int64_t *lo, int64_t *hi)
{
    *lo = INT64_MAX;
    *hi = INT64_MIN;
    for (int i = 0; i < BT_SAMPLES; i++) {
        int64_t d = backoff_delay_ms(r, attempt, 0, rng);

        if (d < *lo)
            *lo = d;
        if (d > *hi)
            *hi = d;
    }
}

static void test_full_jitter(void)
{
    struct cfg_retry r = bt_retry(CFG_JITTER_FULL);
    uint64_t rng = BT_SEED;

    for (int a = 0; a < BT_ATTEMPTS; a++) {
        int64_t lo, hi, e = bt_exp(a);

        bt_sample(&r, a, &rng, &lo, &hi);
        CU_ASSERT(lo >= 0);
        CU_ASSERT(hi <= e);
        /* It spreads over the whole range, not a corner of it. */
        CU_ASSERT(lo <= e / 10);
        CU_ASSERT(hi >= e - e / 10);
    }
}

static void test_equal_jitter(void)
{
    struct cfg_retry r = bt_retry(CFG_JITTER_EQUAL);
    uint64_t rng = BT_SEED;

    for (int a = 0; a < BT_ATTEMPTS; a++) {
        int64_t lo, hi, e = bt_exp(a);

        bt_sample(&r, a, &rng, &lo, &hi);
        CU_ASSERT(lo >= e / 2);
        CU_ASSERT(hi <= e);
        CU_ASSERT(lo <= e / 2 + e / 10);
        CU_ASSERT(hi >= e - e / 10);
    }
    /* An odd delay: both halves still inside [e/2, e]. */
    r.base_delay_ms = 7;
    r.max_delay_ms = 7;
    for (int i = 0; i < BT_SAMPLES; i++) {
        int64_t d = backoff_delay_ms(&r, 0, 0, &rng);

        CU_ASSERT(d >= 3 && d <= 7);
    }
}

/* Each delay lies in [base, min(cap, 3 * max(prev, base))]. */
static void test_decorrelated_chain(void)
{
    struct cfg_retry r = bt_retry(CFG_JITTER_DECORRELATED);
    uint64_t rng = BT_SEED;
    int64_t prev = 0, hi_seen = 0;
    int out_of_bounds = 0;

    for (int i = 0; i < BT_SAMPLES; i++) {
        int64_t d = backoff_delay_ms(&r, i % BT_ATTEMPTS, prev, &rng);
        int64_t upper = 3 * (prev > BT_BASE ? prev : BT_BASE);

        if (upper > BT_CAP)
            upper = BT_CAP;
        if (d < BT_BASE || d > upper)
            out_of_bounds++;
        if (d > hi_seen)
            hi_seen = d;
        prev = d;
    }
    CU_ASSERT_EQUAL(out_of_bounds, 0);
    CU_ASSERT(hi_seen >= BT_CAP / 2);     /* it does climb */

    /* A huge previous delay is still capped. */
    for (int i = 0; i < BT_SAMPLES; i++) {
        int64_t d = backoff_delay_ms(&r, 0, INT32_MAX, &rng);

        CU_ASSERT(d >= BT_BASE && d <= BT_CAP);
    }
    /* base == cap: no room to move. */
    r.max_delay_ms = BT_BASE;
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 3, 0, &rng), BT_BASE);
    CU_ASSERT_EQUAL(backoff_delay_ms(&r, 3, 5 * BT_CAP, &rng), BT_BASE);
}

static int bt_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void test_rand(void)
{
    static const uint64_t seeds[] = { 1, UINT64_MAX, 1ULL << 63, BT_SEED };
    uint64_t *seen = malloc(BT_RAND_RUN * sizeof(*seen));

    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        uint64_t state = seeds[s], a = seeds[s], b = seeds[s];
        int zero_state = 0, repeats = 0;

        for (int i = 0; i < BT_RAND_RUN; i++) {
            seen[i] = backoff_rand(&state);
            if (state == 0)
                zero_state++;
        }
        qsort(seen, BT_RAND_RUN, sizeof(*seen), bt_cmp);
        for (int i = 1; i < BT_RAND_RUN; i++)
            if (seen[i] == seen[i - 1])
                repeats++;
        CU_ASSERT_EQUAL(zero_state, 0);
        CU_ASSERT_EQUAL(repeats, 0);
        /* Deterministic from the seed. */
        CU_ASSERT_EQUAL(backoff_rand(&a), backoff_rand(&b));
        CU_ASSERT_EQUAL(a, b);
        CU_ASSERT_NOT_EQUAL(a, seeds[s]);
    }
    free(seen);
}

static const CU_TestInfo backoff_tests[] = {
    { "no jitter: exponential, capped", test_no_jitter },
    { "full jitter bounds", test_full_jitter },
    { "equal jitter bounds", test_equal_jitter },
    { "decorrelated chain bounds", test_decorrelated_chain },
    { "backoff_rand: no repeats, never 0", test_rand },
    CU_TEST_INFO_NULL
};

int register_backoff_tests(void)
{
    return unit_add_suite("backoff", backoff_tests);
}
