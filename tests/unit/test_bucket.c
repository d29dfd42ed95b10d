/* test_bucket.c - the rate budgets of bucket.h with an injected clock:
 * the refill rate and its exactness, the cap at capacity, recovery from
 * a negative balance and the debt floor, time until available and
 * Retry-After rounding, capacities up to BUCKET_CAPACITY_MAX without
 * overflow, a clock going back, unlimited buckets, reloads, repair, the
 * rpm/tpm pair, the pick/wait/429/503 choice, and long random runs
 * checked against a floating-point model of the continuous bucket. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "bucket.h"
#include "unit.h"

#define BT_T0            1000000     /* an arbitrary monotonic start */
#define BT_MINUTE_MS     60000
#define BT_RANDOM_SEED   0x9E3779B97F4A7C15ULL
#define BT_RANDOM_STEPS  20000
#define BT_MAX_STEP_MS   (3 * BT_MINUTE_MS)
#define BT_TOKENS_1E9    1000000000LL

/* Whole tokens left in b at t. */
static int64_t bt_tokens(const struct bucket *b, int64_t t)
{
    return bucket_tokens(b, t);
}

static void test_starts_full(void)
{
    struct bucket b;

    bucket_init(&b, 60, BT_T0);
    CU_ASSERT_EQUAL(b.version, BUCKET_VERSION);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), 60);
    CU_ASSERT_EQUAL(bucket_units(&b, BT_T0), 60LL * BUCKET_SCALE);
    CU_ASSERT_TRUE(bucket_has_one(&b, BT_T0));
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0), 0);
    CU_ASSERT_FALSE(bucket_unlimited(&b));
}

/* 60 per minute: one per second, to the millisecond. */
static void test_refill_rate(void)
{
    struct bucket b;

    bucket_init(&b, 60, BT_T0);
    for (int i = 0; i < 60; i++)
        CU_ASSERT_TRUE(bucket_take(&b, BT_T0));
    CU_ASSERT_FALSE(bucket_take(&b, BT_T0));
    CU_ASSERT_EQUAL(bucket_units(&b, BT_T0), 0);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0), 1000);
    CU_ASSERT_FALSE(bucket_has_one(&b, BT_T0 + 999));
    CU_ASSERT_EQUAL(bucket_units(&b, BT_T0 + 999), 999 * 60);
    CU_ASSERT_TRUE(bucket_has_one(&b, BT_T0 + 1000));
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0 + 400), 600);
    /* Half a minute: half the bucket. */
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 30000), 30);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 30999), 30);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 31000), 31);
    /* 600 per minute: ten per second, one per 100 ms. */
    bucket_init(&b, 600, BT_T0);
    bucket_charge(&b, 600, BT_T0);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0), 100);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 1000), 10);
}

/* 7 per minute: one every 8571.43 ms; the wait is rounded up, exactly. */
static void test_wait_exact(void)
{
    struct bucket b;
    int64_t w;

    bucket_init(&b, 7, BT_T0);
    bucket_charge(&b, 7, BT_T0);
    w = bucket_wait_ms(&b, BT_T0);
    CU_ASSERT_EQUAL(w, 8572);
    CU_ASSERT_FALSE(bucket_has_one(&b, BT_T0 + w - 1));
    CU_ASSERT_TRUE(bucket_has_one(&b, BT_T0 + w));
    /* Every later millisecond agrees with the wait computed then. */
    for (int64_t t = BT_T0; t <= BT_T0 + w; t += 37) {
        int64_t left = bucket_wait_ms(&b, t);

        CU_ASSERT_EQUAL(left, w - (t - BT_T0));
    }
    /* Partial tokens carry over: after the charge at w, the second one
     * is 60000/7 ms later, from the exact point, not from w. */
    bucket_charge(&b, 1, BT_T0 + w);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0 + w), 17143 - w);
}

static void test_cap_at_capacity(void)
{
    struct bucket b;

    bucket_init(&b, 100, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + BT_MINUTE_MS), 100);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 100 * BT_MINUTE_MS), 100);
    bucket_charge(&b, 1, BT_T0 + 100 * BT_MINUTE_MS);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 100 * BT_MINUTE_MS), 99);
    CU_ASSERT_EQUAL(bt_tokens(&b, INT64_MAX), 100);
    bucket_charge(&b, 50, BT_T0 + 101 * BT_MINUTE_MS);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 101 * BT_MINUTE_MS), 50);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 101 * BT_MINUTE_MS + 15000), 75);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 102 * BT_MINUTE_MS), 100);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 103 * BT_MINUTE_MS), 100);
}

/* Tokens charged after the answer: below zero, then back at the rate. */
static void test_negative_recovery(void)
{
    struct bucket b;

    bucket_init(&b, 600, BT_T0);
    bucket_charge(&b, 1000, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), -400);
    CU_ASSERT_FALSE(bucket_has_one(&b, BT_T0));
    /* 401 tokens at 10 per second. */
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0), 40100);
    CU_ASSERT_FALSE(bucket_has_one(&b, BT_T0 + 40099));
    CU_ASSERT_TRUE(bucket_has_one(&b, BT_T0 + 40100));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 40000), 0);
    /* -0.1 of a token reads as -1 (rounded down). */
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 39990), -1);
    CU_ASSERT_EQUAL(bucket_units(&b, BT_T0 + 39990), -6000);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 100000), 600);
}

/* A single huge charge stops at BUCKET_DEBT_MINUTES of refill. */
static void test_debt_floor(void)
{
    struct bucket b;
    int64_t floor_tokens = -60LL * BUCKET_DEBT_MINUTES;

    bucket_init(&b, 60, BT_T0);
    bucket_charge(&b, INT64_MAX, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), floor_tokens);
    bucket_charge(&b, 1, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), floor_tokens);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0),
                    (1 - floor_tokens) * 1000);
    bucket_init(&b, BUCKET_CAPACITY_MAX, BT_T0);
    bucket_charge(&b, INT64_MAX, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0),
                    -BUCKET_CAPACITY_MAX * BUCKET_DEBT_MINUTES);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0),
                    (int64_t)BUCKET_DEBT_MINUTES * BT_MINUTE_MS + 1);
    CU_ASSERT_EQUAL(bt_tokens(&b, INT64_MAX), BUCKET_CAPACITY_MAX);
    /* Charges of zero or less take nothing. */
    bucket_init(&b, 10, BT_T0);
    bucket_charge(&b, 0, BT_T0);
    bucket_charge(&b, -5, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), 10);
}

static void test_retry_after(void)
{
    CU_ASSERT_EQUAL(bucket_retry_after_s(-5), 1);
    CU_ASSERT_EQUAL(bucket_retry_after_s(0), 1);
    CU_ASSERT_EQUAL(bucket_retry_after_s(1), 1);
    CU_ASSERT_EQUAL(bucket_retry_after_s(999), 1);
    CU_ASSERT_EQUAL(bucket_retry_after_s(1000), 1);
    CU_ASSERT_EQUAL(bucket_retry_after_s(1001), 2);
    CU_ASSERT_EQUAL(bucket_retry_after_s(2000), 2);
    CU_ASSERT_EQUAL(bucket_retry_after_s(2001), 3);
    CU_ASSERT_EQUAL(bucket_retry_after_s(59999), 60);
    CU_ASSERT_EQUAL(bucket_retry_after_s(INT64_MAX),
                    INT64_MAX / 1000 + 1);
}

static void test_large_capacity(void)
{
    struct bucket b;

    bucket_init(&b, BT_TOKENS_1E9, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), BT_TOKENS_1E9);
    bucket_charge(&b, 3 * BT_TOKENS_1E9 / 2, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), -BT_TOKENS_1E9 / 2);
    /* 1e9 / 60000 per ms = 16666.67: 500000001 tokens need 30000.0006 ms. */
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0), 30001);
    CU_ASSERT_FALSE(bucket_has_one(&b, BT_T0 + 30000));
    CU_ASSERT_TRUE(bucket_has_one(&b, BT_T0 + 30001));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + BT_MINUTE_MS), BT_TOKENS_1E9 / 2);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 3 * BT_MINUTE_MS / 2),
                    BT_TOKENS_1E9);
    /* Over the maximum: clamped, not wrapped. */
    bucket_init(&b, INT64_MAX, BT_T0);
    CU_ASSERT_EQUAL(b.capacity, BUCKET_CAPACITY_MAX);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), BUCKET_CAPACITY_MAX);
    bucket_charge(&b, BUCKET_CAPACITY_MAX, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), 0);
    CU_ASSERT_EQUAL(bt_tokens(&b, INT64_MAX), BUCKET_CAPACITY_MAX);
    /* Extreme clocks: elapsed saturates instead of overflowing. */
    b.updated_ms = INT64_MIN;
    CU_ASSERT_EQUAL(bt_tokens(&b, INT64_MAX), BUCKET_CAPACITY_MAX);
    bucket_charge(&b, 5, INT64_MAX);
    CU_ASSERT_EQUAL(bt_tokens(&b, INT64_MAX), BUCKET_CAPACITY_MAX - 5);
}

/* Monotonic in theory; in practice never lose or invent tokens. */
static void test_clock_backwards(void)
{
    struct bucket b;
    int64_t t = BT_T0 + 10000;

    bucket_init(&b, 60, BT_T0);
    bucket_charge(&b, 60, t);
    CU_ASSERT_EQUAL(bucket_units(&b, t - 500), 0);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, t - 500), 1000);
    /* A charge with the earlier time: taken, reference kept. */
    bucket_charge(&b, 1, t - 500);
    CU_ASSERT_EQUAL(b.updated_ms, t);
    CU_ASSERT_EQUAL(bt_tokens(&b, t - 500), -1);
    CU_ASSERT_EQUAL(bt_tokens(&b, t + 2000), 1);
    /* A step back of more than BUCKET_CLOCK_RESET_MS: the new time is
     * the reference, and the refill goes on from it. */
    bucket_init(&b, 60, BT_T0);
    bucket_charge(&b, 60, t);
    bucket_charge(&b, 0, t - BUCKET_CLOCK_RESET_MS - 1);
    CU_ASSERT_EQUAL(b.updated_ms, t - BUCKET_CLOCK_RESET_MS - 1);
    CU_ASSERT_EQUAL(bt_tokens(&b, t - BUCKET_CLOCK_RESET_MS + 2999), 3);
    /* Exactly BUCKET_CLOCK_RESET_MS back is still a small step. */
    bucket_init(&b, 60, BT_T0);
    bucket_charge(&b, 60, t);
    bucket_charge(&b, 0, t - BUCKET_CLOCK_RESET_MS);
    CU_ASSERT_EQUAL(b.updated_ms, t);
}

static void test_unlimited(void)
{
    struct bucket b;
    int64_t caps[] = { 0, -1, INT64_MIN };

    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        bucket_init(&b, caps[i], BT_T0);
        CU_ASSERT_TRUE(bucket_unlimited(&b));
        CU_ASSERT_EQUAL(b.capacity, BUCKET_UNLIMITED);
        for (int k = 0; k < 1000; k++)
            CU_ASSERT_TRUE(bucket_take(&b, BT_T0));
        bucket_charge(&b, INT64_MAX, BT_T0);
        CU_ASSERT_TRUE(bucket_has_one(&b, BT_T0));
        CU_ASSERT_EQUAL(bucket_wait_ms(&b, BT_T0), 0);
        CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), 0);
        CU_ASSERT_FALSE(bucket_repair(&b));
    }
}

static void test_configure(void)
{
    struct bucket b;

    /* Never set up: starts full. */
    memset(&b, 0xA5, sizeof(b));
    CU_ASSERT_TRUE(bucket_configure(&b, 60, BT_T0));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), 60);
    /* Same capacity: kept as it is, updated time included. */
    bucket_charge(&b, 50, BT_T0);
    CU_ASSERT_FALSE(bucket_configure(&b, 60, BT_T0 + 5000));
    CU_ASSERT_EQUAL(b.updated_ms, BT_T0);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 5000), 15);
    /* Raised: the level is kept and refills at the new rate. */
    CU_ASSERT_TRUE(bucket_configure(&b, 120, BT_T0 + 5000));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 5000), 15);
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 6000), 17);
    /* Lowered under the level: capped. */
    CU_ASSERT_TRUE(bucket_configure(&b, 10, BT_T0 + 6000));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 6000), 10);
    /* Lowered under the debt: the new floor. */
    bucket_init(&b, 1000, BT_T0);
    bucket_charge(&b, INT64_MAX, BT_T0);
    CU_ASSERT_TRUE(bucket_configure(&b, 1, BT_T0));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), -(int64_t)BUCKET_DEBT_MINUTES);
    /* To unlimited and back: full again. */
    CU_ASSERT_TRUE(bucket_configure(&b, 0, BT_T0));
    CU_ASSERT_TRUE(bucket_unlimited(&b));
    CU_ASSERT_FALSE(bucket_configure(&b, -3, BT_T0));
    CU_ASSERT_TRUE(bucket_configure(&b, 30, BT_T0 + 1));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0 + 1), 30);
}

static void test_repair(void)
{
    struct bucket b, copy;

    bucket_init(&b, 60, BT_T0);
    bucket_charge(&b, 10, BT_T0);
    copy = b;
    CU_ASSERT_FALSE(bucket_repair(&b));
    CU_ASSERT_EQUAL(memcmp(&b, &copy, sizeof(b)), 0);
    b.level = INT64_MAX;
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), 60);
    b.level = INT64_MIN;
    /* Read as the floor even before the repair. */
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), -60LL * BUCKET_DEBT_MINUTES);
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_EQUAL(bt_tokens(&b, BT_T0), -60LL * BUCKET_DEBT_MINUTES);
    b.mode = 7;
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_EQUAL(b.mode, BUCKET_MODE_REFILL);
    b.capacity = -8;
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_TRUE(bucket_unlimited(&b));
    b.level = 12345;
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_EQUAL(b.level, 0);
    b.capacity = BUCKET_CAPACITY_MAX + 1;
    b.level = 0;
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_EQUAL(b.capacity, BUCKET_CAPACITY_MAX);
    CU_ASSERT_EQUAL(bt_tokens(&b, b.updated_ms), BUCKET_CAPACITY_MAX);
    memset(&b, 0x5A, sizeof(b));
    CU_ASSERT_TRUE(bucket_repair(&b));
    CU_ASSERT_EQUAL(b.version, BUCKET_VERSION);
    CU_ASSERT_FALSE(bucket_repair(&b));
}

static void test_pair(void)
{
    struct bucket_pair p;

    bucket_pair_init(&p, 2, 1000, BT_T0);
    CU_ASSERT_TRUE(bucket_pair_ready(&p, BT_T0));
    bucket_pair_start(&p, BT_T0);
    bucket_pair_finish(&p, 300, BT_T0);
    bucket_pair_start(&p, BT_T0);
    /* Out of requests: 30 s for the next one. */
    CU_ASSERT_FALSE(bucket_pair_ready(&p, BT_T0));
    CU_ASSERT_EQUAL(bucket_pair_wait_ms(&p, BT_T0), 30000);
    bucket_pair_finish(&p, 2000, BT_T0 + 1);
    /* Now the tokens: 700 + 1/60 (one ms of refill) - 2000 leaves
     * -1299.98..., and 1300.98... tokens at 1/60 per ms take 78059 ms
     * (78058.98... rounded up). */
    CU_ASSERT_EQUAL(bucket_pair_wait_ms(&p, BT_T0 + 1), 78059);
    CU_ASSERT_FALSE(bucket_pair_ready(&p, BT_T0 + 1 + 78058));
    CU_ASSERT_TRUE(bucket_pair_ready(&p, BT_T0 + 1 + 78059));
    /* Unlimited tokens: only the requests count. */
    bucket_pair_init(&p, 1, 0, BT_T0);
    bucket_pair_finish(&p, INT64_MAX, BT_T0);
    CU_ASSERT_TRUE(bucket_pair_ready(&p, BT_T0));
    bucket_pair_start(&p, BT_T0);
    CU_ASSERT_EQUAL(bucket_pair_wait_ms(&p, BT_T0), BT_MINUTE_MS);
    CU_ASSERT_FALSE(bucket_pair_configure(&p, 1, 0, BT_T0));
    CU_ASSERT_TRUE(bucket_pair_configure(&p, 1, 5, BT_T0));
    CU_ASSERT_FALSE(bucket_pair_repair(&p));
    p.tokens.version = 0;
    CU_ASSERT_TRUE(bucket_pair_repair(&p));
}

static void test_choose(void)
{
    const int64_t now = BT_T0, deadline = BT_T0 + 5000;
    struct bucket_choice c[3];
    bool eligible[3];
    int64_t at;

    /* One usable with budget: pick; the refill time of the other. */
    c[0] = (struct bucket_choice){ true, false, now + 700 };
    c[1] = (struct bucket_choice){ true, true, now };
    c[2] = (struct bucket_choice){ false, true, now };
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, eligible, &at),
                    BUCKET_OUTCOME_PICK);
    CU_ASSERT_FALSE(eligible[0]);
    CU_ASSERT_TRUE(eligible[1]);
    CU_ASSERT_FALSE(eligible[2]);
    CU_ASSERT_EQUAL(at, now + 700);
    /* Every usable one out of budget, refills before the deadline. */
    c[1] = (struct bucket_choice){ true, false, now + 300 };
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, NULL, &at),
                    BUCKET_OUTCOME_WAIT);
    CU_ASSERT_EQUAL(at, now + 300);
    /* ... at the deadline or after: 429. */
    c[0].ready_at_ms = deadline;
    c[1].ready_at_ms = deadline + 1;
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, eligible, &at),
                    BUCKET_OUTCOME_LIMITED);
    CU_ASSERT_EQUAL(at, deadline);
    CU_ASSERT_EQUAL(bucket_retry_after_s(at - now), 5);
    /* The unusable target's budget does not count, even when sooner. */
    c[2] = (struct bucket_choice){ false, false, now + 1 };
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, eligible, &at),
                    BUCKET_OUTCOME_LIMITED);
    CU_ASSERT_EQUAL(at, deadline);
    /* A ready time in the past counts as now. */
    c[0].ready_at_ms = now - 50;
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, eligible, &at),
                    BUCKET_OUTCOME_WAIT);
    CU_ASSERT_EQUAL(at, now);
    /* Nothing usable: 503, budgets aside. */
    c[0].usable = c[1].usable = false;
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, eligible, &at),
                    BUCKET_OUTCOME_UNAVAILABLE);
    CU_ASSERT_EQUAL(at, INT64_MAX);
    CU_ASSERT_EQUAL(bucket_choose(c, 0, now, deadline, NULL, &at),
                    BUCKET_OUTCOME_UNAVAILABLE);
    /* All within budget: pick, nothing to wait for. */
    for (int i = 0; i < 3; i++)
        c[i] = (struct bucket_choice){ true, true, now };
    CU_ASSERT_EQUAL(bucket_choose(c, 3, now, deadline, eligible, &at),
                    BUCKET_OUTCOME_PICK);
    CU_ASSERT_EQUAL(at, INT64_MAX);
    CU_ASSERT_STRING_EQUAL(bucket_outcome_name(BUCKET_OUTCOME_WAIT), "wait");
    CU_ASSERT_STRING_EQUAL(bucket_outcome_name(BUCKET_OUTCOME_LIMITED),
                           "limited");
}

/* The continuous bucket in doubles: level in tokens. */
struct bt_model {
    double capacity;
    double level;
};

static void bt_model_advance(struct bt_model *m, int64_t dt_ms)
{
    m->level += m->capacity * (double)dt_ms / BT_MINUTE_MS;
    if (m->level > m->capacity)
        m->level = m->capacity;
}

static void bt_model_charge(struct bt_model *m, int64_t amount)
{
    double low = -m->capacity * BUCKET_DEBT_MINUTES;

    m->level -= (double)amount;
    if (m->level < low)
        m->level = low;
}

/* Random charges, takes and time steps against the model, for one
 * capacity: the level agrees to rounding error, the verdicts agree away
 * from the boundary, and every wait is exact (not there one ms before,
 * there at the wait). */
static void bt_random_run(int64_t capacity, uint64_t *rng)
{
    struct bucket b;
    struct bt_model m = { (double)capacity, (double)capacity };
    int64_t t = BT_T0;
    /* Doubles carry 53 bits: allow that relative error on the values. */
    double tolerance = 1e-9 * (double)capacity * BUCKET_DEBT_MINUTES + 1e-6;

    bucket_init(&b, capacity, t);
    for (int step = 0; step < BT_RANDOM_STEPS / 4; step++) {
        uint64_t op = unit_rand_below(rng, 10);
        int64_t dt = 0, w;
        double level;

        if (op < 4)
            dt = (int64_t)unit_rand_below(rng, BT_MAX_STEP_MS / 60);
        else if (op < 5)
            dt = (int64_t)unit_rand_below(rng, BT_MAX_STEP_MS);
        t += dt;
        bt_model_advance(&m, dt);
        if (op >= 5 && op < 7) {
            int64_t amount = (int64_t)unit_rand_below(
                rng, (uint64_t)capacity * 2 + 2);

            bucket_charge(&b, amount, t);
            bt_model_charge(&m, amount);
        } else if (op == 7) {
            bool model_has = m.level >= 1.0 - tolerance;
            bool took = bucket_take(&b, t);

            if (fabs(m.level - 1.0) > tolerance)
                CU_ASSERT_EQUAL(took, model_has);
            if (took)
                bt_model_charge(&m, 1);
        }
        level = (double)bucket_units(&b, t) / BUCKET_SCALE;
        CU_ASSERT(fabs(level - m.level) <= tolerance);
        if (fabs(m.level - 1.0) > tolerance)
            CU_ASSERT_EQUAL(bucket_has_one(&b, t), m.level >= 1.0);
        w = bucket_wait_ms(&b, t);
        if (w == 0) {
            CU_ASSERT_TRUE(bucket_has_one(&b, t));
        } else {
            double model_wait = (1.0 - m.level) * BT_MINUTE_MS / m.capacity;

            CU_ASSERT_FALSE(bucket_has_one(&b, t + w - 1));
            CU_ASSERT_TRUE(bucket_has_one(&b, t + w));
            CU_ASSERT(fabs((double)w - ceil(model_wait)) <= 1.0);
        }
        CU_ASSERT(bucket_units(&b, t) <= (int64_t)capacity * BUCKET_SCALE);
        CU_ASSERT_FALSE(bucket_repair(&b));
    }
}

static void test_random_against_model(void)
{
    static const int64_t capacities[] = {
        1, 7, 60, 600, 100000, BT_TOKENS_1E9
    };
    uint64_t rng = BT_RANDOM_SEED;

    for (size_t i = 0; i < sizeof(capacities) / sizeof(capacities[0]); i++)
        bt_random_run(capacities[i], &rng);
}

/* The choice against a direct restatement of its rules. */
static void test_choose_random(void)
{
    uint64_t rng = BT_RANDOM_SEED ^ 0xC0FFEEULL;
    const int64_t now = BT_T0;

    for (int round = 0; round < BT_RANDOM_STEPS / 10; round++) {
        struct bucket_choice c[8];
        bool eligible[8], any_usable = false, any_ok = false;
        int n = (int)unit_rand_below(&rng, 9);
        int64_t deadline = now + (int64_t)unit_rand_below(&rng, 10000);
        int64_t first = INT64_MAX, at;
        enum bucket_outcome want, got;

        for (int i = 0; i < n; i++) {
            c[i].usable = unit_rand_below(&rng, 4) != 0;
            c[i].within_budget = unit_rand_below(&rng, 3) == 0;
            c[i].ready_at_ms = c[i].within_budget ? now :
                now + (int64_t)unit_rand_below(&rng, 12000) - 100;
            any_usable |= c[i].usable;
            any_ok |= c[i].usable && c[i].within_budget;
            if (c[i].usable && !c[i].within_budget) {
                int64_t a = c[i].ready_at_ms < now ? now : c[i].ready_at_ms;

                first = a < first ? a : first;
            }
        }
        want = !any_usable ? BUCKET_OUTCOME_UNAVAILABLE :
               any_ok ? BUCKET_OUTCOME_PICK :
               first < deadline ? BUCKET_OUTCOME_WAIT :
               BUCKET_OUTCOME_LIMITED;
        got = bucket_choose(c, n, now, deadline, eligible, &at);
        CU_ASSERT_EQUAL(got, want);
        CU_ASSERT_EQUAL(at, first);
        for (int i = 0; i < n; i++)
            CU_ASSERT_EQUAL(eligible[i], c[i].usable && c[i].within_budget);
    }
}

static const CU_TestInfo bucket_tests[] = {
    { "starts full", test_starts_full },
    { "refill rate", test_refill_rate },
    { "wait is exact, rounded up to the ms", test_wait_exact },
    { "capped at capacity", test_cap_at_capacity },
    { "negative balance recovers", test_negative_recovery },
    { "debt floor", test_debt_floor },
    { "Retry-After rounding", test_retry_after },
    { "large capacities without overflow", test_large_capacity },
    { "clock going back", test_clock_backwards },
    { "zero or negative: unlimited", test_unlimited },
    { "reload keeps or adapts the budget", test_configure },
    { "repair", test_repair },
    { "rpm/tpm pair", test_pair },
    { "pick, wait, 429 or 503", test_choose },
    { "random runs against a float model", test_random_against_model },
    { "random choices against the rules", test_choose_random },
    CU_TEST_INFO_NULL
};

int register_bucket_tests(void)
{
    return unit_add_suite("bucket", bucket_tests);
}
