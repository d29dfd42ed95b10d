/* test_breaker.c - the circuit breaker driven by an injected clock:
 * consecutive-failure counting, open -> half-open exactly at the recovery
 * time, the probe limit, a probe's success closing it and its failure
 * re-opening it for a doubled (capped) period, the sliding-window rule
 * (flaky patterns, minimum_calls, the ring wrapping, checked against a
 * model over long random runs), the disabled breaker, operator reset,
 * cb_next_try_ms, cancelled and lost probes, repair. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "breaker.h"
#include "unit.h"

#define CBT_THRESHOLD   3
#define CBT_RECOVERY    5000
#define CBT_T0          1000000       /* an arbitrary monotonic start */
#define CBT_NO_THRESHOLD 100000       /* consecutive rule out of the way */
#define CBT_LOST_MS     (10 * 60 * 1000)   /* breaker.c's CB_PROBE_LOST_MS */
#define CBT_SEED        0xD1B54A32D192ED03ULL
#define CBT_MODEL_STEPS 20000
#define CBT_HISTORY     (CBT_MODEL_STEPS + 1)

static struct cfg_breaker cbt_cfg(void)
{
    struct cfg_breaker cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.enabled = true;
    cfg.failure_threshold = CBT_THRESHOLD;
    cfg.recovery_timeout_ms = CBT_RECOVERY;
    cfg.half_open_max_requests = 1;
    cfg.failure_rate_threshold = 0;
    cfg.window_size = 20;
    cfg.minimum_calls = 10;
    return cfg;
}

/* cfg with the sliding-window rule alone deciding. */
static struct cfg_breaker cbt_rate_cfg(double rate, int window, int minimum)
{
    struct cfg_breaker cfg = cbt_cfg();

    cfg.failure_threshold = CBT_NO_THRESHOLD;
    cfg.failure_rate_threshold = rate;
    cfg.window_size = window;
    cfg.minimum_calls = minimum;
    return cfg;
}

/* One whole call: asks, and when allowed records the outcome. Returns the
 * transition cb_record reported, or NONE when it was refused (*allowed
 * says which, when not NULL). */
static enum cb_transition cbt_call(struct cb_state *b,
                                   const struct cfg_breaker *cfg,
                                   int64_t now, bool success, bool *allowed)
{
    bool probe = false;
    bool ok = cb_allow(b, cfg, now, &probe, NULL);

    if (allowed != NULL)
        *allowed = ok;
    if (!ok)
        return CB_TRANSITION_NONE;
    return cb_record(b, cfg, success, probe, now);
}

/* Opens a fresh breaker at now with threshold failures. */
static void cbt_open(struct cb_state *b, const struct cfg_breaker *cfg,
                     int64_t now)
{
    cb_init(b);
    for (int i = 1; i < cfg->failure_threshold; i++)
        CU_ASSERT_EQUAL(cbt_call(b, cfg, now, false, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(b, cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);
    CU_ASSERT_EQUAL(b->state, CB_OPEN);
}

static void test_threshold_counting(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;
    bool allowed, probe = true;

    cb_init(&b);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, &allowed),
                    CB_TRANSITION_NONE);
    CU_ASSERT_TRUE(allowed);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL), CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.consecutive_failures, 2);
    /* A success in between starts the count again. */
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, true, NULL), CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.consecutive_failures, 0);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL), CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL), CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    now += 10;
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    CU_ASSERT_EQUAL(b.open_cause, CB_CAUSE_CONSECUTIVE);
    CU_ASSERT_EQUAL(b.opened_ms, now);
    CU_ASSERT_EQUAL(b.open_until_ms, now + CBT_RECOVERY);
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_FALSE(probe);
    CU_ASSERT_FALSE(cb_usable(&b, &cfg, now));

    /* A threshold of 1 opens on the first failure. */
    cfg.failure_threshold = 1;
    cb_init(&b);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);
}

static void test_half_open_at_recovery(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    enum cb_transition moved = CB_TRANSITION_OPENED;
    const int64_t t = CBT_T0;
    bool probe = true;

    cbt_open(&b, &cfg, t);
    /* One millisecond early: still open, nothing moves. */
    CU_ASSERT_FALSE(cb_usable(&b, &cfg, t + CBT_RECOVERY - 1));
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, t + CBT_RECOVERY - 1, &probe,
                             &moved));
    CU_ASSERT_FALSE(probe);
    CU_ASSERT_EQUAL(moved, CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    /* Exactly at the recovery time: half-open, and this call a probe. */
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, t + CBT_RECOVERY));
    CU_ASSERT_EQUAL(b.state, CB_OPEN);          /* cb_usable only looks */
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, t + CBT_RECOVERY, &probe, &moved));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(moved, CB_TRANSITION_HALF_OPENED);
    CU_ASSERT_EQUAL(b.state, CB_HALF_OPEN);
    CU_ASSERT_EQUAL(b.probes, 1);
    /* Lazily: asked much later, it turns half-open just the same. */
    cbt_open(&b, &cfg, t);
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, t + 100 * CBT_RECOVERY, &probe,
                            NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(b.state, CB_HALF_OPEN);
}

static void test_probe_limit(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;
    bool probe;
    enum cb_transition moved;

    cfg.half_open_max_requests = 2;
    cbt_open(&b, &cfg, now);
    now += CBT_RECOVERY;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, &moved));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(moved, CB_TRANSITION_HALF_OPENED);
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now + 1, &probe, &moved));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(moved, CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.probes, 2);
    /* The third waits. */
    CU_ASSERT_FALSE(cb_usable(&b, &cfg, now + 2));
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, now + 2, &probe, &moved));
    CU_ASSERT_FALSE(probe);
    CU_ASSERT_EQUAL(b.probes, 2);
    /* A cancelled probe gives its slot back. */
    cb_release_probe(&b);
    CU_ASSERT_EQUAL(b.probes, 1);
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, now + 3));
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now + 3, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, now + 4, &probe, NULL));
    /* One succeeds: closed; the other, ending later, is an ordinary
     * call and cannot drive the count below zero. */
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, true, now + 5),
                    CB_TRANSITION_CLOSED);
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, true, now + 6),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(b.consecutive_failures, 1);
    cb_release_probe(&b);
    CU_ASSERT_EQUAL(b.probes, 0);
}

static void test_probe_success_closes(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;
    bool probe;

    cbt_open(&b, &cfg, now);
    now += CBT_RECOVERY;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, true, now),
                    CB_TRANSITION_REOPENED);
    CU_ASSERT_EQUAL(b.trips, 1);
    now = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, true, now),
                    CB_TRANSITION_CLOSED);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(b.trips, 0);
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(b.consecutive_failures, 0);
    CU_ASSERT_EQUAL(b.window_count, 0);
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, now));
    /* It takes the whole threshold again to open it. */
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL), CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL), CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);
    /* Back to the base period. */
    CU_ASSERT_EQUAL(b.open_until_ms - now, CBT_RECOVERY);
}

static void test_probe_failure_doubles(void)
{
    /* 5 s, then doubled per failed probe up to 16x. */
    static const int64_t period[] = {
        5000, 10000, 20000, 40000, 80000, 80000, 80000, 80000
    };
    const int steps = (int)(sizeof(period) / sizeof(period[0]));
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;
    bool probe;

    CU_ASSERT_EQUAL(period[steps - 1],
                    (int64_t)CBT_RECOVERY << CB_MAX_BACKOFF_SHIFT);
    cbt_open(&b, &cfg, now);
    CU_ASSERT_EQUAL(b.open_until_ms - now, period[0]);
    CU_ASSERT_EQUAL(cb_open_period_ms(&b, &cfg), period[0]);
    for (int k = 1; k < steps; k++) {
        /* Not a millisecond before the period ends. */
        CU_ASSERT_FALSE(cb_allow(&b, &cfg, b.open_until_ms - 1, &probe,
                                 NULL));
        now = b.open_until_ms;
        CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
        CU_ASSERT_TRUE(probe);
        CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, true, now),
                        CB_TRANSITION_REOPENED);
        CU_ASSERT_EQUAL(b.state, CB_OPEN);
        CU_ASSERT_EQUAL(b.open_cause, CB_CAUSE_PROBE);
        CU_ASSERT_EQUAL(b.opened_ms, now);
        CU_ASSERT_EQUAL(b.open_until_ms - now, period[k]);
        CU_ASSERT_EQUAL(cb_open_period_ms(&b, &cfg), period[k]);
        CU_ASSERT(b.trips <= CB_MAX_BACKOFF_SHIFT);
    }
    /* A successful probe resets the doubling. */
    now = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, probe, now),
                    CB_TRANSITION_CLOSED);
    CU_ASSERT_EQUAL(cb_open_period_ms(&b, &cfg), period[0]);
}

/* Fails two in three (F F S ...): never three in a row, so the
 * consecutive rule alone would never open, but 70% over the window does. */
static void test_window_flaky(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;

    cfg.failure_rate_threshold = 0.6;
    cfg.window_size = 10;
    cfg.minimum_calls = 10;
    cb_init(&b);
    for (int k = 1; k <= 10; k++) {
        bool success = k % 3 == 0;
        enum cb_transition moved = cbt_call(&b, &cfg, now++, success, NULL);

        if (k < 10) {
            CU_ASSERT_EQUAL(moved, CB_TRANSITION_NONE);
        } else {
            CU_ASSERT_EQUAL(moved, CB_TRANSITION_OPENED);
        }
    }
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    CU_ASSERT_EQUAL(b.open_cause, CB_CAUSE_RATE);

    /* The same pattern with the rule off never opens. */
    cfg.failure_rate_threshold = 0;
    cb_init(&b);
    for (int k = 1; k <= 300; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now++, k % 3 == 0, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(b.window_count, 0);      /* ring unused when off */
}

static void test_window_minimum_calls(void)
{
    struct cfg_breaker cfg = cbt_rate_cfg(0.5, 20, 10);
    struct cb_state b;
    int64_t now = CBT_T0;

    /* Nine failures out of nine: too few calls to judge. */
    cb_init(&b);
    for (int k = 0; k < 9; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.window_count, 9);
    CU_ASSERT_EQUAL(b.window_failures, 9);
    /* The tenth call reaches minimum_calls; 9 of 10 failed: open, even
     * though that call succeeded. */
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, true, NULL),
                    CB_TRANSITION_OPENED);
    CU_ASSERT_EQUAL(b.open_cause, CB_CAUSE_RATE);

    /* Just under the rate at minimum_calls: stays closed. */
    cb_init(&b);
    for (int k = 0; k < 10; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, k >= 4, NULL),
                        CB_TRANSITION_NONE);      /* 4 of 10 */
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_NONE);          /* 5 of 11 */
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);        /* 6 of 12 */

    /* minimum_calls above window_size (config.c refuses it) acts as
     * window_size. */
    cfg = cbt_rate_cfg(0.5, 4, 50);
    cb_init(&b);
    for (int k = 0; k < 3; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);
}

/* The ring drops the oldest outcome once full, across the wrap. */
static void test_window_wraps(void)
{
    struct cfg_breaker cfg = cbt_rate_cfg(0.5, 10, 10);
    struct cb_state b;
    int64_t now = CBT_T0;

    cb_init(&b);
    for (int k = 0; k < 10; k++)          /* F F F F S S S S S S */
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, k >= 4, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.window_failures, 4);
    CU_ASSERT_EQUAL(b.window_next, 0);    /* wrapped */
    for (int k = 0; k < 4; k++)           /* evicts the four failures */
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, true, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.window_failures, 0);
    CU_ASSERT_EQUAL(b.window_count, 10);
    for (int k = 0; k < 4; k++)           /* evict successes */
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.window_failures, 4);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, now, false, NULL),
                    CB_TRANSITION_OPENED);
}

/* Long random runs for window sizes around the 64-bit word edges and the
 * largest: at every call the breaker opens exactly when the last
 * window_size outcomes (kept here as a plain history) reach the rate. */
static void test_window_against_model(void)
{
    static const struct {
        int window, minimum, rate_pct, fail_pct;
    } runs[] = {
        { 1, 1, 50, 5 },    { 7, 3, 50, 30 },   { 63, 20, 40, 32 },
        { 64, 64, 25, 20 }, { 65, 10, 75, 66 }, { 200, 50, 20, 17 },
        { 1000, 1000, 10, 9 }, { 1000, 100, 30, 28 },
    };
    static bool history[CBT_HISTORY];
    uint64_t seed = CBT_SEED;

    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        struct cfg_breaker cfg = cbt_rate_cfg(runs[r].rate_pct / 100.0,
                                              runs[r].window,
                                              runs[r].minimum);
        struct cb_state b;
        int64_t now = CBT_T0;
        int len = 0, mismatches = 0, opened = 0;

        cb_init(&b);
        for (int step = 0; step < CBT_MODEL_STEPS; step++) {
            bool failed = (int)unit_rand_below(&seed, 100) < runs[r].fail_pct;
            int count, failures = 0;
            bool expect_open, probe;
            enum cb_transition moved;

            history[len++] = failed;
            count = len < runs[r].window ? len : runs[r].window;
            for (int i = len - count; i < len; i++)
                failures += history[i];
            expect_open = count >= runs[r].minimum &&
                          failures * 100 >= runs[r].rate_pct * count;
            moved = cbt_call(&b, &cfg, now, !failed, NULL);
            if ((moved == CB_TRANSITION_OPENED) != expect_open)
                mismatches++;
            if (moved == CB_TRANSITION_OPENED) {
                opened++;
                /* Recover through a probe: the window starts empty. */
                now = b.open_until_ms;
                CU_ASSERT_TRUE_FATAL(cb_allow(&b, &cfg, now, &probe, NULL));
                CU_ASSERT_EQUAL_FATAL(cb_record(&b, &cfg, true, probe, now),
                                      CB_TRANSITION_CLOSED);
                len = 0;
            } else if ((int)b.window_failures != failures ||
                       (int)b.window_count != count) {
                mismatches++;
            }
            CU_ASSERT_FALSE(cb_repair(&b));    /* always consistent */
            now++;
        }
        CU_ASSERT_EQUAL(mismatches, 0);
        CU_ASSERT(opened > 0);                 /* the rule was exercised */
    }
}

/* 3 of 10 at 0.3 opens: the rate is not lost to rounding. */
static void test_window_decimal_rate(void)
{
    struct cfg_breaker cfg = cbt_rate_cfg(0.3, 10, 10);
    struct cb_state b;

    cb_init(&b);
    for (int k = 0; k < 9; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, k >= 2, NULL),
                        CB_TRANSITION_NONE);   /* F F then 7 S */
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                    CB_TRANSITION_OPENED);
}

/* A reload that changes window_size starts the ring afresh. */
static void test_window_resized(void)
{
    struct cfg_breaker cfg = cbt_rate_cfg(0.5, 10, 10);
    struct cb_state b;

    cb_init(&b);
    for (int k = 0; k < 9; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                        CB_TRANSITION_NONE);
    cfg.window_size = 20;
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.window_size, 20);
    CU_ASSERT_EQUAL(b.window_count, 1);
    for (int k = 0; k < 8; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                    CB_TRANSITION_OPENED);
    /* A window beyond CB_WINDOW_MAX is held to it. */
    cfg.window_size = CB_WINDOW_MAX * 2;
    cfg.minimum_calls = CB_WINDOW_MAX * 2;
    cb_init(&b);
    for (int k = 0; k < CB_WINDOW_MAX - 1; k++)
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                        CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0, false, NULL),
                    CB_TRANSITION_OPENED);
}

static void test_disabled(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    bool allowed, probe;
    enum cb_transition moved;

    cfg.enabled = false;
    cfg.failure_threshold = 1;
    cfg.failure_rate_threshold = 0.1;
    cb_init(&b);
    for (int k = 0; k < 1000; k++) {
        CU_ASSERT_EQUAL(cbt_call(&b, &cfg, CBT_T0 + k, false, &allowed),
                        CB_TRANSITION_NONE);
        CU_ASSERT_TRUE(allowed);
    }
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, CBT_T0));
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, CBT_T0), CBT_T0);

    /* Left open by a configuration that had it on: calls go through and
     * it closes at the next one. */
    cfg.enabled = true;
    cbt_open(&b, &cfg, CBT_T0);
    cfg.enabled = false;
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, CBT_T0));
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, CBT_T0, &probe, &moved));
    CU_ASSERT_FALSE(probe);
    CU_ASSERT_EQUAL(moved, CB_TRANSITION_CLOSED);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, CBT_T0, &probe, &moved));
    CU_ASSERT_EQUAL(moved, CB_TRANSITION_NONE);
}

static void test_reset(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;
    bool probe;

    cbt_open(&b, &cfg, now);
    cb_reset(&b);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(b.consecutive_failures, 0);
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_FALSE(probe);

    /* Reset while half-open with a probe out, after a failed probe. */
    cfg.failure_rate_threshold = 0.5;
    cbt_open(&b, &cfg, now);
    now = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, probe, now),
                    CB_TRANSITION_REOPENED);
    now = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    cb_reset(&b);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(b.trips, 0);
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(b.window_count, 0);
    /* The forgotten probe ends: an ordinary success, no underflow. */
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, true, now),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    /* Opening again starts from the base period. */
    for (int k = 0; k < CBT_THRESHOLD; k++)
        (void)cbt_call(&b, &cfg, now, false, NULL);
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    CU_ASSERT_EQUAL(b.open_until_ms - now, CBT_RECOVERY);
}

static void test_next_try(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0;
    bool probe;

    cb_init(&b);
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now), now);
    cbt_open(&b, &cfg, now);
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now), now + CBT_RECOVERY);
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now + 1234),
                    now + CBT_RECOVERY);
    /* Due but not yet asked: now. */
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now + CBT_RECOVERY + 7),
                    now + CBT_RECOVERY + 7);
    now += CBT_RECOVERY;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    /* Half-open, its one slot taken: the latest the slot can free. */
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now + 10),
                    now + CBT_LOST_MS);
    cb_release_probe(&b);
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now + 10), now + 10);
    /* After a failed probe: the doubled period. */
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, probe, now),
                    CB_TRANSITION_REOPENED);
    CU_ASSERT_EQUAL(cb_next_try_ms(&b, &cfg, now), now + 2 * CBT_RECOVERY);
}

/* A probe never given back (its worker died) does not wedge the breaker
 * half-open: after the lost-probe time its slot is reused. */
static void test_lost_probe(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t now = CBT_T0, probe_at;
    bool probe;

    cbt_open(&b, &cfg, now);
    probe_at = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, probe_at, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, probe_at + CBT_LOST_MS - 1, &probe,
                             NULL));
    CU_ASSERT_FALSE(cb_usable(&b, &cfg, probe_at + CBT_LOST_MS - 1));
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, probe_at + CBT_LOST_MS));
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, probe_at + CBT_LOST_MS, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(b.probes, 1);
    CU_ASSERT_EQUAL(b.probe_ms, probe_at + CBT_LOST_MS);

    /* With an open period longer than that, the period is the bound. */
    cfg.recovery_timeout_ms = 2 * CBT_LOST_MS;
    cbt_open(&b, &cfg, now);
    probe_at = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, probe_at, &probe, NULL));
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, probe_at + 2 * CBT_LOST_MS - 1,
                             &probe, NULL));
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, probe_at + 2 * CBT_LOST_MS, &probe,
                            NULL));
}

/* Calls that began before it opened end while it is open or half-open:
 * they change nothing. */
static void test_stragglers_ignored(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b, before;
    int64_t now = CBT_T0;
    bool probe;

    cbt_open(&b, &cfg, now);
    before = b;
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, false, now + 1),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, false, now + 2),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(memcmp(&b, &before, sizeof(b)), 0);
    now = b.open_until_ms;
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, now, &probe, NULL));
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, false, now),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, false, false, now),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.state, CB_HALF_OPEN);
    CU_ASSERT_EQUAL(b.probes, 1);
}

/* The state is plain data: a copy taken mid-run behaves the same. */
static void test_plain_data(void)
{
    struct cfg_breaker cfg = cbt_rate_cfg(0.5, 100, 20);
    struct cb_state a, copy;
    uint64_t seed = CBT_SEED;

    CU_ASSERT(sizeof(a.window_bits) * 8 >= CB_WINDOW_MAX);
    CU_ASSERT_EQUAL(sizeof(struct cb_state) % sizeof(uint64_t), 0);
    cb_init(&a);
    for (int k = 0; k < 50; k++)
        (void)cbt_call(&a, &cfg, CBT_T0 + k, unit_rand_below(&seed, 3) != 0,
                       NULL);
    memcpy(&copy, &a, sizeof(a));
    for (int k = 0; k < 500; k++) {
        bool ok = unit_rand_below(&seed, 5) < 2;
        int64_t now = CBT_T0 + 50 + 100 * k;

        CU_ASSERT_EQUAL(cbt_call(&a, &cfg, now, ok, NULL),
                        cbt_call(&copy, &cfg, now, ok, NULL));
    }
    CU_ASSERT_EQUAL(memcmp(&a, &copy, sizeof(a)), 0);
}

static void test_repair(void)
{
    struct cfg_breaker cfg = cbt_rate_cfg(0.9, 16, 16);
    struct cb_state b;

    cb_init(&b);
    CU_ASSERT_FALSE(cb_repair(&b));
    for (int k = 0; k < 40; k++)
        (void)cbt_call(&b, &cfg, CBT_T0, k % 4 == 0, NULL);
    CU_ASSERT_FALSE(cb_repair(&b));

    /* A wrong failure count is recounted from the ring. */
    b.window_failures += 3;
    CU_ASSERT_TRUE(cb_repair(&b));
    CU_ASSERT_EQUAL(b.window_failures, 12);    /* 3 of every 4 failed */
    CU_ASSERT_FALSE(cb_repair(&b));

    /* A ring index out of range empties the ring. */
    b.window_next = 99;
    CU_ASSERT_TRUE(cb_repair(&b));
    CU_ASSERT_EQUAL(b.window_count, 0);
    CU_ASSERT_EQUAL(b.window_failures, 0);

    /* trips beyond the cap. */
    b.trips = 77;
    CU_ASSERT_TRUE(cb_repair(&b));
    CU_ASSERT_EQUAL(b.trips, CB_MAX_BACKOFF_SHIFT);

    /* An unknown state word: closed, cleared, and calls go through. */
    b.state = 9;
    CU_ASSERT_STRING_EQUAL(cb_state_name(b.state), "unknown");
    CU_ASSERT_TRUE(cb_usable(&b, &cfg, CBT_T0));
    CU_ASSERT_TRUE(cb_repair(&b));
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_FALSE(cb_repair(&b));
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(cb_state_name(CB_CLOSED), "closed");
    CU_ASSERT_STRING_EQUAL(cb_state_name(CB_OPEN), "open");
    CU_ASSERT_STRING_EQUAL(cb_state_name(CB_HALF_OPEN), "half_open");
    CU_ASSERT_STRING_EQUAL(cb_state_name(3), "unknown");
    CU_ASSERT_STRING_EQUAL(cb_transition_name(CB_TRANSITION_NONE), "none");
    CU_ASSERT_STRING_EQUAL(cb_transition_name(CB_TRANSITION_OPENED),
                           "opened");
    CU_ASSERT_STRING_EQUAL(cb_transition_name(CB_TRANSITION_HALF_OPENED),
                           "half_opened");
    CU_ASSERT_STRING_EQUAL(cb_transition_name(CB_TRANSITION_CLOSED),
                           "closed");
    CU_ASSERT_STRING_EQUAL(cb_transition_name(CB_TRANSITION_REOPENED),
                           "reopened");
}

/* Cluster mode's half-open lease: the master defers the half-open time
 * of one opening (never a newer one), and another instance's good trial
 * closes it here. */
static void test_cluster_trial(void)
{
    struct cfg_breaker cfg = cbt_cfg();
    struct cb_state b;
    int64_t opened, until;
    bool probe, allowed;

    cb_init(&b);
    CU_ASSERT_FALSE(cb_defer_open(&b, 0, CBT_T0));     /* closed */
    CU_ASSERT_FALSE(cb_close_remote(&b, &cfg));        /* closed already */
    for (int i = 0; i < CBT_THRESHOLD; i++)
        cbt_call(&b, &cfg, CBT_T0, false, NULL);
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    opened = b.opened_ms;
    until = b.open_until_ms;
    /* Held while asking: no half-open at the old time. */
    CU_ASSERT_TRUE(cb_defer_open(&b, opened, until + 2000));
    CU_ASSERT_FALSE(cb_defer_open(&b, opened, until + 2000));  /* same */
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, until, &probe, NULL));
    CU_ASSERT_FALSE(probe);
    CU_ASSERT_FALSE(cb_usable(&b, &cfg, until));
    /* Won: back to the old time. */
    CU_ASSERT_TRUE(cb_defer_open(&b, opened, until));
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, until, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(b.state, CB_HALF_OPEN);
    /* Half-open already: nothing moves it. */
    CU_ASSERT_FALSE(cb_defer_open(&b, opened, until + 5000));
    CU_ASSERT_EQUAL(b.state, CB_HALF_OPEN);
    /* Another instance's trial closed it: probes in flight forgotten. */
    CU_ASSERT_TRUE(cb_close_remote(&b, &cfg));
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(b.trips, 0);
    CU_ASSERT_EQUAL(b.open_until_ms, 0);
    cbt_call(&b, &cfg, until + 1, true, &allowed);
    CU_ASSERT_TRUE(allowed);
    /* An opening other than the one asked about is left alone. */
    for (int i = 0; i < CBT_THRESHOLD; i++)
        cbt_call(&b, &cfg, until + 10, false, NULL);
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    CU_ASSERT_FALSE(cb_defer_open(&b, opened, b.open_until_ms + 1));
    /* A loser keeps it open until the winner's lease ends. */
    CU_ASSERT_TRUE(cb_defer_open(&b, b.opened_ms, b.open_until_ms + 7000));
    CU_ASSERT_FALSE(cb_usable(&b, &cfg, b.open_until_ms - 1));
    /* Still open: a remote close closes it as well. */
    CU_ASSERT_TRUE(cb_close_remote(&b, &cfg));
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    /* Disabled: no remote close. */
    for (int i = 0; i < CBT_THRESHOLD; i++)
        cbt_call(&b, &cfg, until + 20, false, NULL);
    cfg.enabled = false;
    CU_ASSERT_FALSE(cb_close_remote(&b, &cfg));
}

static const CU_TestInfo breaker_tests[] = {
    { "consecutive failures open it; success resets",
      test_threshold_counting },
    { "open -> half-open exactly at recovery", test_half_open_at_recovery },
    { "half-open probe limit and release", test_probe_limit },
    { "successful probe closes, counters reset", test_probe_success_closes },
    { "failed probe doubles the period, capped",
      test_probe_failure_doubles },
    { "window: flaky pattern opens by rate", test_window_flaky },
    { "window: minimum_calls respected", test_window_minimum_calls },
    { "window: ring wraps", test_window_wraps },
    { "window: random runs against a model", test_window_against_model },
    { "window: decimal rate not lost to rounding",
      test_window_decimal_rate },
    { "window: resized by a reload", test_window_resized },
    { "disabled: always allows, closes a stale open", test_disabled },
    { "operator reset", test_reset },
    { "cb_next_try_ms", test_next_try },
    { "lost probe slot reused", test_lost_probe },
    { "outcomes from before opening ignored", test_stragglers_ignored },
    { "state is plain, copyable data", test_plain_data },
    { "cb_repair", test_repair },
    { "state and transition names", test_names },
    { "cluster: deferred half-open, remote close", test_cluster_trial },
    CU_TEST_INFO_NULL
};

int register_breaker_tests(void)
{
    return unit_add_suite("breaker", breaker_tests);
}
