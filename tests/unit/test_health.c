/* test_health.c - active health (health.h): what a probe's result
 * means, the unknown/healthy/unhealthy transitions reported once each,
 * the probe lease (one claim per round, also among racing threads),
 * stale outcomes, reloads, repair, and a long random run against a
 * restatement of the rules. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "health.h"
#include "unit.h"

#define HT_T0            5000000
#define HT_INTERVAL      10000
#define HT_TIMEOUT       2000
#define HT_THREADS       8
#define HT_ROUNDS        2000
#define HT_RANDOM_SEED   0x2545F4914F6CDD1DULL
#define HT_RANDOM_STEPS  20000

static const struct health_params ht_params = {
    .interval_ms = HT_INTERVAL, .timeout_ms = HT_TIMEOUT,
    .unhealthy_after = 2, .healthy_after = 3
};

/* Claims the next round at t and records outcome for it. */
static enum health_change ht_probe(struct health_state *h,
                                   const struct health_params *p,
                                   int64_t *t, enum health_outcome outcome)
{
    int64_t round = 0;

    *t = health_due_ms(h) > *t ? health_due_ms(h) : *t;
    CU_ASSERT_TRUE(health_claim(h, p, 0, *t, &round));
    return health_record(h, p, round, outcome, *t);
}

static void test_init(void)
{
    struct health_state h;

    health_init(&h, HT_T0);
    CU_ASSERT_EQUAL(h.state, HEALTH_UNKNOWN);
    CU_ASSERT_TRUE(health_usable(&h));
    CU_ASSERT_EQUAL(health_due_ms(&h), HT_T0);
    CU_ASSERT_EQUAL(atomic_load(&h.owner), HEALTH_NO_OWNER);
    CU_ASSERT_FALSE(health_repair(&h));
}

static void test_classify(void)
{
    static const long fails[] = { 0, 99, 100, 101, 199, 401, 403, 500, 502,
                                  503, 504, 599, 600, 999, -1 };
    static const long oks[] = { 200, 201, 204, 299, 301, 304, 400, 402,
                                404, 405, 408, 429, 499 };

    for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++)
        CU_ASSERT_EQUAL(health_classify(true, fails[i]), HEALTH_FAIL);
    for (size_t i = 0; i < sizeof(oks) / sizeof(oks[0]); i++)
        CU_ASSERT_EQUAL(health_classify(true, oks[i]), HEALTH_OK);
    /* A transport error fails whatever status was seen. */
    CU_ASSERT_EQUAL(health_classify(false, 200), HEALTH_FAIL);
    CU_ASSERT_EQUAL(health_classify(false, 0), HEALTH_FAIL);
}

static void test_transitions(void)
{
    struct health_state h;
    int64_t t = HT_T0;

    health_init(&h, t);
    /* unknown -> unhealthy after two failures in a row, once. */
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.state, HEALTH_UNKNOWN);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_UNHEALTHY);
    CU_ASSERT_FALSE(health_usable(&h));
    CU_ASSERT_EQUAL(h.changed_ms, t);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_NONE);
    /* Back after three good ones in a row; a failure starts over. */
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.state, HEALTH_UNHEALTHY);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_HEALTHY);
    CU_ASSERT_TRUE(health_usable(&h));
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_NONE);
    /* healthy: one failure is not enough, two are. */
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_TRUE(health_usable(&h));
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_UNHEALTHY);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_ok), 7);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_failed), 7);
}

/* From unknown, one good probe is enough (as Envoy does for new hosts). */
static void test_first_success(void)
{
    struct health_state h;
    struct health_params p = ht_params;
    int64_t t = HT_T0;

    p.healthy_after = 5;
    health_init(&h, t);
    CU_ASSERT_EQUAL(ht_probe(&h, &p, &t, HEALTH_FAIL), HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &p, &t, HEALTH_OK), HEALTH_CHANGE_HEALTHY);
    /* Thresholds of 0 count as 1. */
    p.unhealthy_after = 0;
    p.healthy_after = 0;
    CU_ASSERT_EQUAL(ht_probe(&h, &p, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_UNHEALTHY);
    CU_ASSERT_EQUAL(ht_probe(&h, &p, &t, HEALTH_OK), HEALTH_CHANGE_HEALTHY);
}

static void test_lease(void)
{
    struct health_state h;
    struct health_params off = ht_params;
    int64_t r1 = 0, r2 = 0, r3 = 0;

    health_init(&h, HT_T0);
    off.interval_ms = 0;
    CU_ASSERT_FALSE(health_claim(&h, &off, 1, HT_T0, &r1));
    CU_ASSERT_FALSE(health_claim(&h, NULL, 1, HT_T0, &r1));
    CU_ASSERT_FALSE(health_claim(&h, &ht_params, 1, HT_T0 - 1, &r1));
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 1, HT_T0, &r1));
    CU_ASSERT_EQUAL(r1, HT_T0 + HT_INTERVAL);
    CU_ASSERT_EQUAL(atomic_load(&h.owner), 1);
    CU_ASSERT_EQUAL(health_due_ms(&h), HT_T0 + HT_INTERVAL);
    /* Everybody else, in the same round: no. */
    for (int32_t w = 2; w < 10; w++)
        CU_ASSERT_FALSE(health_claim(&h, &ht_params, w, HT_T0 + w, &r2));
    CU_ASSERT_FALSE(health_claim(&h, &ht_params, 2,
                                 HT_T0 + HT_INTERVAL - 1, &r2));
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 2, HT_T0 + HT_INTERVAL,
                                &r2));
    CU_ASSERT_EQUAL(atomic_load(&h.owner), 2);
    CU_ASSERT(r2 > r1);
    /* After a long pause: one probe, not one per missed interval. */
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 3,
                                HT_T0 + 100 * HT_INTERVAL, &r3));
    CU_ASSERT_FALSE(health_claim(&h, &ht_params, 4,
                                 HT_T0 + 100 * HT_INTERVAL, &r1));
    CU_ASSERT_EQUAL(r3, HT_T0 + 101 * HT_INTERVAL);
    /* The end of time saturates. */
    health_init(&h, INT64_MAX - 1);
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 1, INT64_MAX - 1, &r1));
    CU_ASSERT_EQUAL(r1, INT64_MAX);
}

/* A slow probe overtaken by a later round does not count. */
static void test_stale_outcome(void)
{
    struct health_state h;
    int64_t r1 = 0, r2 = 0;

    health_init(&h, HT_T0);
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 1, HT_T0, &r1));
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 2, r1, &r2));
    CU_ASSERT_EQUAL(health_record(&h, &ht_params, r2, HEALTH_OK, r2),
                    HEALTH_CHANGE_HEALTHY);
    CU_ASSERT_EQUAL(health_record(&h, &ht_params, r1, HEALTH_FAIL, r2),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(health_record(&h, &ht_params, r2, HEALTH_FAIL, r2),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.consecutive_failures, 0);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_ok), 1);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_failed), 0);
}

struct ht_race {
    struct health_state h;
    _Atomic int winners[HT_ROUNDS];
    _Atomic int total;
};

static void *ht_racer(void *arg)
{
    struct ht_race *r = arg;

    for (int k = 0; k < HT_ROUNDS; k++) {
        int64_t round;

        if (health_claim(&r->h, &ht_params, k, HT_T0 + (int64_t)k *
                         HT_INTERVAL, &round)) {
            atomic_fetch_add(&r->winners[k], 1);
            atomic_fetch_add(&r->total, 1);
        }
    }
    return NULL;
}

/* Threads stand in for worker processes: the same compare-and-set on the
 * same word. At most one claim per round, and some claims happen. */
static void test_lease_race(void)
{
    static struct ht_race race;
    pthread_t threads[HT_THREADS];
    int started = 0;

    memset(&race, 0, sizeof(race));
    health_init(&race.h, HT_T0);
    for (int i = 0; i < HT_THREADS; i++)
        if (pthread_create(&threads[i], NULL, ht_racer, &race) == 0)
            started++;
    CU_ASSERT_EQUAL(started, HT_THREADS);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    for (int k = 0; k < HT_ROUNDS; k++)
        CU_ASSERT(atomic_load(&race.winners[k]) <= 1);
    CU_ASSERT(atomic_load(&race.total) >= 1);
    CU_ASSERT(atomic_load(&race.total) <= HT_ROUNDS);
}

static void test_configure(void)
{
    struct health_state h;
    struct health_params p = ht_params;
    int64_t t = HT_T0, round = 0;

    memset(&h, 0x77, sizeof(h));
    CU_ASSERT_EQUAL(health_configure(&h, &p, t), HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.version, HEALTH_VERSION);
    CU_ASSERT_EQUAL(h.state, HEALTH_UNKNOWN);
    CU_ASSERT_TRUE(health_claim(&h, &p, 0, t, &round));
    CU_ASSERT_EQUAL(health_due_ms(&h), t + HT_INTERVAL);
    /* The same interval: nothing moves. A longer one: the due time
     * stays. A shorter one: brought in. */
    CU_ASSERT_EQUAL(health_configure(&h, &p, t + 1), HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(health_due_ms(&h), t + HT_INTERVAL);
    p.interval_ms = 4 * HT_INTERVAL;
    health_configure(&h, &p, t + 1);
    CU_ASSERT_EQUAL(health_due_ms(&h), t + HT_INTERVAL);
    p.interval_ms = HT_INTERVAL / 10;
    health_configure(&h, &p, t + 1);
    CU_ASSERT_EQUAL(health_due_ms(&h), t + 1 + HT_INTERVAL / 10);
    /* The state survives a reload. */
    p = ht_params;
    ht_probe(&h, &p, &t, HEALTH_FAIL);
    ht_probe(&h, &p, &t, HEALTH_FAIL);
    CU_ASSERT_EQUAL(h.state, HEALTH_UNHEALTHY);
    CU_ASSERT_EQUAL(health_configure(&h, &p, t), HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.state, HEALTH_UNHEALTHY);
    /* Probing switched off: unknown (usable), said once. */
    p.interval_ms = 0;
    CU_ASSERT_EQUAL(health_configure(&h, &p, t), HEALTH_CHANGE_UNKNOWN);
    CU_ASSERT_TRUE(health_usable(&h));
    CU_ASSERT_EQUAL(health_configure(&h, &p, t), HEALTH_CHANGE_NONE);
    CU_ASSERT_FALSE(health_claim(&h, &p, 0, t + 10 * HT_INTERVAL, &round));
    /* Back on: due at once (the old deadline has passed). */
    p = ht_params;
    CU_ASSERT_EQUAL(health_configure(&h, &p, t + 10 * HT_INTERVAL),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_TRUE(health_claim(&h, &p, 0, t + 10 * HT_INTERVAL, &round));
}

static void test_repair(void)
{
    struct health_state h;
    int64_t t = HT_T0, round = 0;

    health_init(&h, t);
    ht_probe(&h, &ht_params, &t, HEALTH_OK);
    ht_probe(&h, &ht_params, &t, HEALTH_FAIL);
    CU_ASSERT_FALSE(health_repair(&h));
    /* A damaged state word: unknown, counters and round guard kept. */
    h.state = 9;
    CU_ASSERT_TRUE(health_repair(&h));
    CU_ASSERT_EQUAL(h.state, HEALTH_UNKNOWN);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_ok), 1);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_failed), 1);
    CU_ASSERT_EQUAL(health_record(&h, &ht_params, h.recorded_round,
                                  HEALTH_FAIL, t), HEALTH_CHANGE_NONE);
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 0, t, &round));
    /* Both counts at once cannot be: cleared. */
    h.consecutive_failures = 1;
    h.consecutive_successes = 1;
    CU_ASSERT_TRUE(health_repair(&h));
    CU_ASSERT_EQUAL(h.consecutive_failures, 0);
    CU_ASSERT_EQUAL(h.consecutive_successes, 0);
    h.reserved = 3;
    CU_ASSERT_TRUE(health_repair(&h));
    CU_ASSERT_FALSE(health_repair(&h));
    /* Garbage: a fresh state, due at once. */
    memset(&h, 0xEE, sizeof(h));
    CU_ASSERT_TRUE(health_repair(&h));
    CU_ASSERT_EQUAL(h.version, HEALTH_VERSION);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_ok), 0);
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 0, t, &round));
    CU_ASSERT_EQUAL(health_record(&h, &ht_params, round, HEALTH_OK, t),
                    HEALTH_CHANGE_HEALTHY);
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(health_kind_name(HEALTH_UNKNOWN), "unknown");
    CU_ASSERT_STRING_EQUAL(health_kind_name(HEALTH_HEALTHY), "healthy");
    CU_ASSERT_STRING_EQUAL(health_kind_name(HEALTH_UNHEALTHY), "unhealthy");
    CU_ASSERT_STRING_EQUAL(health_kind_name(42), "unknown");
    CU_ASSERT_STRING_EQUAL(health_change_name(HEALTH_CHANGE_NONE), "none");
    CU_ASSERT_STRING_EQUAL(health_change_name(HEALTH_CHANGE_UNHEALTHY),
                           "unhealthy");
    CU_ASSERT_STRING_EQUAL(health_outcome_name(HEALTH_OK), "ok");
    CU_ASSERT_STRING_EQUAL(health_outcome_name(HEALTH_FAIL), "fail");
}

/* Random outcomes and thresholds against the rules restated: the state
 * after each outcome, a change reported exactly when the state changed,
 * and the counters. */
static void test_random_against_rules(void)
{
    uint64_t rng = HT_RANDOM_SEED;
    struct health_state h;
    struct health_params p = ht_params;
    uint32_t state = HEALTH_UNKNOWN, fails = 0, oks = 0;
    uint64_t total_ok = 0, total_failed = 0;
    int64_t t = HT_T0;

    health_init(&h, t);
    for (int step = 0; step < HT_RANDOM_STEPS; step++) {
        enum health_outcome o = unit_rand_below(&rng, 3) == 0 ? HEALTH_FAIL
                                                               : HEALTH_OK;
        uint32_t before = state, u, g;
        enum health_change got, want = HEALTH_CHANGE_NONE;

        if (unit_rand_below(&rng, 50) == 0) {
            p.unhealthy_after = (uint32_t)unit_rand_below(&rng, 5);
            p.healthy_after = (uint32_t)unit_rand_below(&rng, 5);
        }
        u = p.unhealthy_after < 1 ? 1 : p.unhealthy_after;
        g = p.healthy_after < 1 ? 1 : p.healthy_after;
        if (o == HEALTH_OK) {
            total_ok++;
            fails = 0;
            oks++;
            if (state == HEALTH_UNKNOWN ||
                (state == HEALTH_UNHEALTHY && oks >= g))
                state = HEALTH_HEALTHY;
        } else {
            total_failed++;
            oks = 0;
            fails++;
            if (fails >= u)
                state = HEALTH_UNHEALTHY;
        }
        if (state != before)
            want = state == HEALTH_HEALTHY ? HEALTH_CHANGE_HEALTHY
                                           : HEALTH_CHANGE_UNHEALTHY;
        t += (int64_t)unit_rand_below(&rng, 3 * HT_INTERVAL);
        got = ht_probe(&h, &p, &t, o);
        CU_ASSERT_EQUAL(got, want);
        CU_ASSERT_EQUAL(h.state, state);
        CU_ASSERT_EQUAL(h.consecutive_failures, fails);
        CU_ASSERT_EQUAL(h.consecutive_successes, oks);
        CU_ASSERT_EQUAL(health_usable(&h), state != HEALTH_UNHEALTHY);
    }
    CU_ASSERT_EQUAL(atomic_load(&h.probes_ok), total_ok);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_failed), total_failed);
}

/* Cluster mode: the master defers a round by compare-and-set (a worker
 * that claimed first wins), and another instance's result is taken as
 * it is, counters untouched. */
static void test_cluster(void)
{
    struct health_state h, other;
    int64_t t = HT_T0, due, round = 0;

    health_init(&h, t);
    due = health_due_ms(&h);
    CU_ASSERT_TRUE(health_defer(&h, due, due + 2000));
    CU_ASSERT_FALSE(health_claim(&h, &ht_params, 0, t, &round));
    CU_ASSERT_FALSE(health_defer(&h, due, due + 3000));  /* not expected */
    CU_ASSERT_EQUAL(health_due_ms(&h), due + 2000);
    CU_ASSERT_TRUE(health_defer(&h, due + 2000, due));   /* won: back */
    CU_ASSERT_TRUE(health_claim(&h, &ht_params, 0, t, &round));
    /* A claim moved it: the master's deferral fails. */
    CU_ASSERT_FALSE(health_defer(&h, due, due + 2000));

    /* Results from the prober, fed through its own rules. */
    health_init(&other, t);
    CU_ASSERT_EQUAL(ht_probe(&other, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(health_apply_remote(&h, other.state,
                                        other.consecutive_failures,
                                        other.consecutive_successes, t),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.consecutive_failures, 1);
    CU_ASSERT_EQUAL(ht_probe(&other, &ht_params, &t, HEALTH_FAIL),
                    HEALTH_CHANGE_UNHEALTHY);
    CU_ASSERT_EQUAL(health_apply_remote(&h, other.state,
                                        other.consecutive_failures,
                                        other.consecutive_successes, t),
                    HEALTH_CHANGE_UNHEALTHY);
    CU_ASSERT_FALSE(health_usable(&h));
    CU_ASSERT_EQUAL(h.changed_ms, t);
    CU_ASSERT_EQUAL(atomic_load(&h.probes_failed), 0);
    /* The same again: no change reported twice. */
    CU_ASSERT_EQUAL(health_apply_remote(&h, HEALTH_UNHEALTHY, 2, 0, t + 1),
                    HEALTH_CHANGE_NONE);
    /* Taking over as prober: counting goes on from the counts applied
     * (healthy_after = 3). */
    CU_ASSERT_EQUAL(health_apply_remote(&h, HEALTH_UNHEALTHY, 0, 2, t),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(ht_probe(&h, &ht_params, &t, HEALTH_OK),
                    HEALTH_CHANGE_HEALTHY);
    /* Garbage changes nothing. */
    CU_ASSERT_EQUAL(health_apply_remote(&h, 7, 0, 0, t),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(health_apply_remote(&h, HEALTH_UNHEALTHY, 1, 1, t),
                    HEALTH_CHANGE_NONE);
    CU_ASSERT_EQUAL(h.state, HEALTH_HEALTHY);
    CU_ASSERT_EQUAL(health_apply_remote(&h, HEALTH_UNKNOWN, 0, 0, t),
                    HEALTH_CHANGE_UNKNOWN);
}

static const CU_TestInfo health_tests[] = {
    { "starts unknown and usable", test_init },
    { "which probe results fail", test_classify },
    { "transitions, each reported once", test_transitions },
    { "first good probe from unknown", test_first_success },
    { "one claim per round", test_lease },
    { "stale outcomes ignored", test_stale_outcome },
    { "racing claimers: at most one per round", test_lease_race },
    { "reload", test_configure },
    { "repair", test_repair },
    { "names", test_names },
    { "random outcomes against the rules", test_random_against_rules },
    { "cluster: deferred rounds, remote results", test_cluster },
    CU_TEST_INFO_NULL
};

int register_health_tests(void)
{
    return unit_add_suite("health", health_tests);
}
