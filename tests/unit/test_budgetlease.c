/* test_budgetlease.c - cluster-wide budgets without Redis: the
 * allowance, slices and shares of budgetlease.h, the lease plan, the
 * leased mode of bucket.h (begin, credit, charge, wait, end), and a
 * simulation of N instances leasing from one cluster bucket under
 * random demand, checked against the rule: in any window, the cluster
 * lets through no more than one bucket of the limit would, plus what
 * the instances held leased when the window began (at most N slices). */
#include <stdint.h>

#include <CUnit/CUnit.h>

#include "bucket.h"
#include "budgetlease.h"
#include "unit.h"

#define BL_T0            1000000
#define BL_MINUTE_MS     60000
#define BL_POLL_MS       50          /* cluster.c's CLUSTER_POLL_MS */
#define BL_STEP_MS       5
#define BL_SIM_MS        (3 * BL_MINUTE_MS)
#define BL_WINDOW_MS     10000
#define BL_INSTANCES_MAX 4
#define BL_SEED          0x2545F4914F6CDD1DULL

static void test_slack(void)
{
    CU_ASSERT_EQUAL(budgetlease_slack(0), 0);
    CU_ASSERT_EQUAL(budgetlease_slack(-5), 0);
    CU_ASSERT_EQUAL(budgetlease_slack(1), 2);
    CU_ASSERT_EQUAL(budgetlease_slack(10), 2);
    CU_ASSERT_EQUAL(budgetlease_slack(40), 2);
    CU_ASSERT_EQUAL(budgetlease_slack(41), 3);      /* 2.05, rounded up */
    CU_ASSERT_EQUAL(budgetlease_slack(100), 5);
    CU_ASSERT_EQUAL(budgetlease_slack(1000), 50);
    CU_ASSERT_EQUAL(budgetlease_slack(BUCKET_CAPACITY_MAX),
                    BUCKET_CAPACITY_MAX / 20);
}

static void test_slice(void)
{
    CU_ASSERT_EQUAL(budgetlease_slice(0, 2), 0);
    CU_ASSERT_EQUAL(budgetlease_slice(10, 1), 2);
    CU_ASSERT_EQUAL(budgetlease_slice(10, 2), 1);
    CU_ASSERT_EQUAL(budgetlease_slice(10, 3), 1);   /* at least one */
    CU_ASSERT_EQUAL(budgetlease_slice(10, 0), 2);   /* 0 counts as 1 */
    CU_ASSERT_EQUAL(budgetlease_slice(1, 1), 1);    /* at most the limit */
    CU_ASSERT_EQUAL(budgetlease_slice(1000, 2), 25);
    CU_ASSERT_EQUAL(budgetlease_slice(1000, 3), 16);
    /* Together the slices stay within the allowance when they can. */
    for (int64_t c = 1; c < 5000; c += 7)
        for (int n = 1; n <= 8; n++) {
            int64_t s = budgetlease_slice(c, n);

            CU_ASSERT_TRUE(s >= 1 && s <= c);
            CU_ASSERT_TRUE(s * n <= budgetlease_slack(c) || s == 1);
        }
}

static void test_share(void)
{
    CU_ASSERT_EQUAL(budgetlease_share(0, 2), 0);
    CU_ASSERT_EQUAL(budgetlease_share(10, 2), 5);
    CU_ASSERT_EQUAL(budgetlease_share(10, 3), 3);   /* rounded down */
    CU_ASSERT_EQUAL(budgetlease_share(10, 0), 10);
    CU_ASSERT_EQUAL(budgetlease_share(1, 4), 1);    /* at least one */
}

static void test_plan(void)
{
    struct budgetlease_ask ask;

    /* Slice 1 (rpm 10, two instances): asks when empty only. */
    CU_ASSERT_FALSE(budgetlease_plan(10, 2, 1, &ask));
    CU_ASSERT_TRUE(budgetlease_plan(10, 2, 0, &ask));
    CU_ASSERT_EQUAL(ask.debt, 0);
    CU_ASSERT_EQUAL(ask.want, 1);
    /* Slice 25: asks at half, for what makes it whole. */
    CU_ASSERT_FALSE(budgetlease_plan(1000, 2, 13, &ask));
    CU_ASSERT_TRUE(budgetlease_plan(1000, 2, 12, &ask));
    CU_ASSERT_EQUAL(ask.want, 13);
    /* In debt: the debt and a whole slice. */
    CU_ASSERT_TRUE(budgetlease_plan(1000, 2, -100, &ask));
    CU_ASSERT_EQUAL(ask.debt, 100);
    CU_ASSERT_EQUAL(ask.want, 25);
    /* Unlimited: never. */
    CU_ASSERT_FALSE(budgetlease_plan(0, 2, -100, &ask));
    CU_ASSERT_EQUAL(ask.debt, 0);
    CU_ASSERT_EQUAL(ask.want, 0);
}

static void test_owed(void)
{
    const int64_t u = BUCKET_SCALE;

    /* Never alone: all it lacks was spent, rounded up. */
    CU_ASSERT_EQUAL(budgetlease_owed(10, 0, 0, 3 * u), 3);
    CU_ASSERT_EQUAL(budgetlease_owed(10, 0, 0, 3 * u - 1), 3);
    CU_ASSERT_EQUAL(budgetlease_owed(10, 0, 0, 0), 0);
    /* Went alone lacking 9 of a share of 10 (it held 1); a blip of
     * 600 ms refilled 0.1 of it: 8.9 still not spent by it. */
    CU_ASSERT_EQUAL(budgetlease_owed(10, 9 * u, 600, 9 * u - 6000), 0);
    /* It spent 4 meanwhile. */
    CU_ASSERT_EQUAL(budgetlease_owed(10, 9 * u, 600, 13 * u - 6000), 4);
    /* A long outage: the old lack long refilled; what it lacks now was
     * spent lately. */
    CU_ASSERT_EQUAL(budgetlease_owed(10, 9 * u, 10 * BL_MINUTE_MS, 2 * u),
                    2);
    /* Fuller than then (it refilled more than it spent): nothing. */
    CU_ASSERT_EQUAL(budgetlease_owed(10, 9 * u, 600, 5 * u), 0);
    /* A debt (tpm) kept while alone is owed in full. */
    CU_ASSERT_EQUAL(budgetlease_owed(300, 0, 0, 400 * u), 400);
    /* Huge times do not overflow. */
    CU_ASSERT_EQUAL(budgetlease_owed(BUCKET_CAPACITY_MAX, u, INT64_MAX, u),
                    1);
}

static void test_leased_bucket(void)
{
    struct bucket b;

    bucket_init(&b, 10, BL_T0);
    CU_ASSERT_FALSE(bucket_leased(&b));
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(bucket_take(&b, BL_T0));
    /* 3 spent alone: what it lacks; the bucket starts empty. */
    CU_ASSERT_EQUAL(bucket_lease_begin(&b, 10, BL_T0), 3 * BUCKET_SCALE);
    CU_ASSERT_TRUE(bucket_leased(&b));
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0), 0);
    CU_ASSERT_EQUAL(bucket_lease_begin(&b, 10, BL_T0), 0);   /* once */
    /* Never refills by itself; waits at least a poll for a lease. */
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0 + BL_MINUTE_MS), 0);
    CU_ASSERT_FALSE(bucket_has_one(&b, BL_T0 + BL_MINUTE_MS));
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BL_T0), BUCKET_LEASE_RETRY_MS);
    /* A lease of 2, the next expected in 6 s. */
    bucket_credit(&b, 2, BL_T0 + 6000);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0 + 10), 2);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BL_T0 + 10), 0);
    CU_ASSERT_TRUE(bucket_take(&b, BL_T0 + 10));
    CU_ASSERT_TRUE(bucket_take(&b, BL_T0 + 20));
    CU_ASSERT_FALSE(bucket_take(&b, BL_T0 + 30));
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BL_T0 + 1000), 5000);
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BL_T0 + 5990),
                    BUCKET_LEASE_RETRY_MS);
    /* Tokens charged beyond what it holds: a debt, kept. */
    bucket_credit(&b, 1, BL_T0);
    bucket_charge(&b, 40, BL_T0 + 100);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0 + BL_MINUTE_MS), -39);
    /* A credit never fills past full. */
    bucket_credit(&b, 1000, BL_T0);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0), 10);
    /* A reload with the same limit keeps it leased and as it is. */
    CU_ASSERT_FALSE(bucket_configure(&b, 10, BL_T0));
    CU_ASSERT_TRUE(bucket_leased(&b));
    CU_ASSERT_TRUE(bucket_configure(&b, 4, BL_T0));
    CU_ASSERT_TRUE(bucket_leased(&b));
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0), 4);
    /* Redis lost: on its own with its share, keeping what it holds. */
    CU_ASSERT_EQUAL(bucket_lease_end(&b, 2, 0, BL_T0), 0);
    CU_ASSERT_FALSE(bucket_leased(&b));
    CU_ASSERT_EQUAL(b.capacity, 2);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0), 2);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0 + 2 * BL_MINUTE_MS), 2);
    CU_ASSERT_TRUE(bucket_take(&b, BL_T0));
    CU_ASSERT_TRUE(bucket_take(&b, BL_T0));
    CU_ASSERT_FALSE(bucket_take(&b, BL_T0));
    CU_ASSERT_EQUAL(bucket_wait_ms(&b, BL_T0), BL_MINUTE_MS / 2);
    /* Back: what it lacks of its (split) full, refilled 1 ms. */
    CU_ASSERT_EQUAL(bucket_lease_begin(&b, 10, BL_T0 + 1),
                    2 * BUCKET_SCALE - 2);
    CU_ASSERT_EQUAL(b.capacity, 10);
    /* Lost holding 1 of a share of 5, with 4 more from what the cluster
     * had left; then 12 more: at most the share. */
    bucket_credit(&b, 1, BL_T0);
    CU_ASSERT_EQUAL(bucket_lease_end(&b, 5, 3, BL_T0), BUCKET_SCALE);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0), 4);
    bucket_lease_begin(&b, 10, BL_T0);
    CU_ASSERT_EQUAL(bucket_lease_end(&b, 5, 12, BL_T0), 0);
    CU_ASSERT_EQUAL(bucket_tokens(&b, BL_T0), 5);
    /* An unlimited bucket takes no part. */
    bucket_init(&b, BUCKET_UNLIMITED, BL_T0);
    CU_ASSERT_EQUAL(bucket_lease_begin(&b, 10, BL_T0), 0);
    CU_ASSERT_FALSE(bucket_leased(&b));
    bucket_credit(&b, 5, BL_T0);
    CU_ASSERT_EQUAL(bucket_lease_end(&b, 5, 5, BL_T0), 0);
    CU_ASSERT_TRUE(bucket_unlimited(&b));
    /* Repair keeps a leased bucket leased, refuses an unknown mode. */
    bucket_init(&b, 10, BL_T0);
    bucket_lease_begin(&b, 10, BL_T0);
    CU_ASSERT_FALSE(bucket_repair(&b));
    CU_ASSERT_TRUE(bucket_leased(&b));
}

static uint64_t bl_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* N instances lease from one cluster bucket (a refilling bucket.h bucket
 * stands for Redis's), each poll as clbudget does; requests arrive at
 * random instances at random rates (bursts and lulls). In every window
 * of BL_WINDOW_MS the cluster lets through at most what one bucket
 * could (its level at the start, and the refill) plus what the
 * instances held then; and that holding never exceeds N slices. */
static void bl_simulate(int64_t cap, int n, uint64_t seed)
{
    struct bucket redis, local[BL_INSTANCES_MAX];
    int64_t supply_at_start = cap, held_at_start = 0;
    int64_t window_admitted = 0, window_start = BL_T0;
    int64_t total = 0;
    int rate = 1;

    bucket_init(&redis, cap, BL_T0);
    for (int i = 0; i < n; i++) {
        bucket_init(&local[i], cap, BL_T0);
        bucket_lease_begin(&local[i], cap, BL_T0);
    }
    for (int64_t t = BL_T0; t < BL_T0 + BL_SIM_MS; t += BL_STEP_MS) {
        int64_t step = (t - BL_T0) / BL_STEP_MS;

        if (step % 400 == 0)
            rate = (int)(bl_rand(&seed) % 6);     /* 0: a lull */
        for (int k = 0; k < rate; k++) {
            int i = (int)(bl_rand(&seed) % (uint64_t)n);

            if (bucket_take(&local[i], t)) {
                window_admitted++;
                total++;
            }
        }
        if ((t - BL_T0) % BL_POLL_MS == 0)
            for (int i = 0; i < n; i++) {
                struct budgetlease_ask ask;
                int64_t have, got;

                if (!budgetlease_plan(cap, n, bucket_tokens(&local[i], t),
                                      &ask))
                    continue;
                bucket_charge(&redis, ask.debt, t);
                have = bucket_tokens(&redis, t);
                got = have < ask.want ? (have > 0 ? have : 0) : ask.want;
                bucket_charge(&redis, got, t);
                bucket_credit(&local[i], ask.debt + got,
                              t + bucket_wait_ms(&redis, t));
            }
        if (t + BL_STEP_MS - window_start >= BL_WINDOW_MS) {
            int64_t bound = supply_at_start + held_at_start +
                            cap * BL_WINDOW_MS / BL_MINUTE_MS + 1;

            CU_ASSERT_TRUE(window_admitted <= bound);
            CU_ASSERT_TRUE(held_at_start <=
                           n * budgetlease_slice(cap, n));
            window_start = t + BL_STEP_MS;
            window_admitted = 0;
            supply_at_start = bucket_tokens(&redis, window_start);
            held_at_start = 0;
            for (int i = 0; i < n; i++)
                held_at_start += bucket_tokens(&local[i], window_start) > 0
                                     ? bucket_tokens(&local[i],
                                                     window_start) : 0;
        }
    }
    /* Over the whole run: never more than one bucket's supply. */
    CU_ASSERT_TRUE(total <= cap + cap * BL_SIM_MS / BL_MINUTE_MS + 1);
    /* And the budget was used: within a slice per instance of it, less
     * what the lulls left unspent. */
    CU_ASSERT_TRUE(total > 0);
}

static void test_simulation(void)
{
    static const int64_t caps[] = { 1, 10, 60, 600, 6000 };

    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
        for (int n = 1; n <= BL_INSTANCES_MAX; n++)
            bl_simulate(caps[c], n, BL_SEED + (uint64_t)(c * 10 + n));
}

static CU_TestInfo budgetlease_tests[] = {
    { "allowance: max(5%, 2)", test_slack },
    { "slices within the allowance", test_slice },
    { "shares while Redis is away", test_share },
    { "the lease plan", test_plan },
    { "what an instance owes when Redis is back", test_owed },
    { "a leased bucket", test_leased_bucket },
    { "N instances never beat one bucket", test_simulation },
    CU_TEST_INFO_NULL
};

int register_budgetlease_tests(void)
{
    return unit_add_suite("budgetlease", budgetlease_tests);
}
