/* test_balancer.c - the target pickers: round-robin evenness, smooth
 * weighted round-robin against an independent copy of nginx's algorithm
 * (the exact 5:1:1 interleave, other weight sets, eligibility changing
 * mid-run), least-connections under uneven load and its tie-break,
 * weighted random proportions with a fixed seed, and for every strategy:
 * ineligible candidates never picked, untried ones preferred, -1 when
 * nothing is eligible, a single candidate. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "balancer.h"
#include "unit.h"

#define LBT_MAX           16
#define LBT_SEED          0x2545F4914F6CDD1DULL
#define LBT_MODEL_PICKS   2000
#define LBT_RANDOM_PICKS  200000
#define LBT_RANDOM_TOL    0.01     /* share within 1 point of its weight's */
#define LBT_FUZZ_ROUNDS   5000
#define LBT_STRATEGIES    4

static const enum cfg_strategy lbt_strategies[LBT_STRATEGIES] = {
    CFG_LB_ROUND_ROBIN, CFG_LB_WEIGHTED, CFG_LB_LEAST_CONNECTIONS,
    CFG_LB_RANDOM
};

/* A virtual model under test: candidates, shared state, cursor, rng. */
struct lbt {
    int n;
    struct lb_candidate cand[LBT_MAX];
    struct lb_target state[LBT_MAX];
    uint32_t cursor;
    uint64_t rng;
};

static void lbt_init(struct lbt *t, const int32_t *weights, int n)
{
    memset(t, 0, sizeof(*t));
    t->n = n;
    t->rng = LBT_SEED;
    for (int i = 0; i < n; i++) {
        t->cand[i].weight = weights[i];
        t->cand[i].usable = true;
        lb_init(&t->state[i], weights[i]);
    }
}

static int lbt_pick(struct lbt *t, enum cfg_strategy strategy)
{
    return lb_pick(strategy, t->state, t->cand, t->n, &t->cursor, &t->rng);
}

/* nginx's smooth weighted round-robin, written out again from
 * ngx_http_upstream_get_peer() so the test does not trust the code under
 * test: skip[i] leaves a peer out of the round. */
struct lbt_model {
    int n;
    int64_t weight[LBT_MAX], current[LBT_MAX], effective[LBT_MAX];
};

static void lbt_model_init(struct lbt_model *m, const int32_t *weights, int n)
{
    m->n = n;
    for (int i = 0; i < n; i++) {
        m->weight[i] = m->effective[i] = weights[i];
        m->current[i] = 0;
    }
}

static int lbt_model_pick(struct lbt_model *m, const bool *skip)
{
    int64_t total = 0;
    int best = -1;

    for (int i = 0; i < m->n; i++) {
        if (skip != NULL && skip[i])
            continue;
        m->current[i] += m->effective[i];
        total += m->effective[i];
        if (m->effective[i] < m->weight[i])
            m->effective[i]++;
        if (best == -1 || m->current[i] > m->current[best])
            best = i;
    }
    if (best >= 0)
        m->current[best] -= total;
    return best;
}

static void test_round_robin_even(void)
{
    static const int32_t w[] = { 1, 1, 1, 1, 1 };
    const int n = 5, rounds = 200;
    int count[5] = { 0 };
    struct lbt t;

    lbt_init(&t, w, n);
    for (int k = 0; k < n * rounds; k++) {
        int i = lbt_pick(&t, CFG_LB_ROUND_ROBIN);

        CU_ASSERT_EQUAL_FATAL(i, k % n);    /* strict rotation */
        count[i]++;
    }
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(count[i], rounds);

    /* Weights do not matter to plain round-robin. */
    t.cand[0].weight = 100;
    t.cursor = 3;
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_ROUND_ROBIN), 3);
    CU_ASSERT_EQUAL(t.cursor, 4);
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_ROUND_ROBIN), 4);
    CU_ASSERT_EQUAL(t.cursor, 0);
    /* A cursor left beyond n (the model lost targets in a reload). */
    t.cursor = 12;
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_ROUND_ROBIN), 2);
    CU_ASSERT_EQUAL(t.cursor, 3);
}

/* Ineligible candidates drop out of the rotation; the rest stay even. */
static void test_round_robin_skips(void)
{
    static const int32_t w[] = { 1, 1, 1, 1, 1, 1 };
    int count[6] = { 0 };
    struct lbt t;

    lbt_init(&t, w, 6);
    t.cand[1].usable = false;
    t.cand[2].max_concurrent = 3;
    t.cand[2].active = 3;
    t.cand[4].max_concurrent = 2;
    t.cand[4].active = 1;            /* below its cap: eligible */
    for (int k = 0; k < 400; k++)
        count[lbt_pick(&t, CFG_LB_ROUND_ROBIN)]++;
    CU_ASSERT_EQUAL(count[1], 0);
    CU_ASSERT_EQUAL(count[2], 0);
    CU_ASSERT_EQUAL(count[0], 100);
    CU_ASSERT_EQUAL(count[3], 100);
    CU_ASSERT_EQUAL(count[4], 100);
    CU_ASSERT_EQUAL(count[5], 100);
}

/* The example every description of nginx's algorithm gives. */
static void test_weighted_5_1_1(void)
{
    static const int32_t w[] = { 5, 1, 1 };
    static const int expect[] = { 0, 0, 1, 0, 2, 0, 0 };    /* a a b a c a a */
    const int cycle = 7, cycles = 50;
    struct lbt t;

    lbt_init(&t, w, 3);
    for (int c = 0; c < cycles; c++) {
        int count[3] = { 0 };

        for (int k = 0; k < cycle; k++) {
            int i = lbt_pick(&t, CFG_LB_WEIGHTED);

            CU_ASSERT_EQUAL_FATAL(i, expect[k]);
            count[i]++;
        }
        CU_ASSERT_EQUAL(count[0], 5);
        CU_ASSERT_EQUAL(count[1], 1);
        CU_ASSERT_EQUAL(count[2], 1);
        /* Back where it started after each whole cycle. */
        for (int i = 0; i < 3; i++) {
            CU_ASSERT_EQUAL(t.state[i].current_weight, 0);
            CU_ASSERT_EQUAL(t.state[i].effective_weight, w[i]);
        }
    }
}

/* Pick for pick the same as the model, and the configured proportions
 * over every whole cycle (sum of weights picks). */
static void lbt_check_against_model(const int32_t *w, int n)
{
    struct lbt t;
    struct lbt_model m;
    int64_t sum = 0;
    int count[LBT_MAX] = { 0 };
    int mismatches = 0;

    lbt_init(&t, w, n);
    lbt_model_init(&m, w, n);
    for (int i = 0; i < n; i++)
        sum += w[i];
    for (int k = 1; k <= LBT_MODEL_PICKS; k++) {
        int got = lbt_pick(&t, CFG_LB_WEIGHTED);

        if (got != lbt_model_pick(&m, NULL))
            mismatches++;
        count[got]++;
        if (k % sum == 0)
            for (int i = 0; i < n; i++)
                CU_ASSERT_EQUAL(count[i], (k / sum) * w[i]);
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_weighted_matches_nginx(void)
{
    static const int32_t w2[] = { 3, 1 };
    static const int32_t w3[] = { 2, 3, 5 };
    static const int32_t w4[] = { 1, 2, 3, 4 };
    static const int32_t w5[] = { 10, 1, 1, 1, 1 };
    static const int32_t w6[] = { 7, 7, 1, 3, 3, 9 };
    static const int32_t w_eq[] = { 4, 4, 4 };
    static const int32_t w_big[] = { 1000000, 1, 999999 };
    static const int32_t expect_3_1[] = { 0, 0, 1, 0 };
    struct lbt t;
    uint64_t seed = LBT_SEED;

    lbt_check_against_model(w2, 2);
    lbt_check_against_model(w3, 3);
    lbt_check_against_model(w4, 4);
    lbt_check_against_model(w5, 5);
    lbt_check_against_model(w6, 6);
    lbt_check_against_model(w_eq, 3);
    lbt_check_against_model(w_big, 3);
    for (int r = 0; r < 20; r++) {
        int32_t w[LBT_MAX];
        int n = 1 + (int)unit_rand_below(&seed, LBT_MAX);

        for (int i = 0; i < n; i++)
            w[i] = 1 + (int32_t)unit_rand_below(&seed, 20);
        lbt_check_against_model(w, n);
    }
    /* 3:1 by hand: a a b a. */
    lbt_init(&t, w2, 2);
    for (int k = 0; k < 40; k++)
        CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_WEIGHTED), expect_3_1[k % 4]);
}

/* Candidates leave and rejoin (breaker, max_concurrent) mid-run: the
 * picks still follow nginx, which skips such peers the same way. */
static void test_weighted_eligibility_changes(void)
{
    static const int32_t w[] = { 5, 1, 1, 3 };
    struct lbt t;
    struct lbt_model m;
    uint64_t seed = LBT_SEED ^ 0xABCDEFULL;
    int mismatches = 0, never[4] = { 0 };

    lbt_init(&t, w, 4);
    lbt_model_init(&m, w, 4);
    for (int k = 0; k < LBT_MODEL_PICKS; k++) {
        bool skip[4];
        int got;

        for (int i = 0; i < 4; i++) {
            unsigned mode = (unsigned)unit_rand_below(&seed, 6);

            t.cand[i].usable = mode != 0;
            t.cand[i].max_concurrent = mode == 1 ? 2 : 0;
            t.cand[i].active = mode == 1 ? 2 : 0;
            skip[i] = mode <= 1;
        }
        got = lbt_pick(&t, CFG_LB_WEIGHTED);
        if (got != lbt_model_pick(&m, skip))
            mismatches++;
        if (got >= 0 && skip[got])
            never[got]++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(never[i], 0);

    /* b out for good: a and c share 5:1, exactly as nginx would. */
    lbt_init(&t, w, 3);
    lbt_model_init(&m, w, 3);
    t.cand[1].usable = false;
    {
        const bool skip[3] = { false, true, false };
        int count[3] = { 0 };

        for (int k = 0; k < 60; k++) {
            int got = lbt_pick(&t, CFG_LB_WEIGHTED);

            CU_ASSERT_EQUAL(got, lbt_model_pick(&m, skip));
            count[got]++;
        }
        CU_ASSERT_EQUAL(count[0], 50);
        CU_ASSERT_EQUAL(count[1], 0);
        CU_ASSERT_EQUAL(count[2], 10);
    }
}

/* nginx's failure feedback: a failure lowers the effective weight, each
 * pick restores one point; the model does the same. */
static void test_weighted_failure_feedback(void)
{
    static const int32_t w[] = { 6, 2, 4 };
    const int32_t max_fails = 2;
    struct lbt t;
    struct lbt_model m;
    int mismatches = 0;

    lbt_init(&t, w, 3);
    lbt_model_init(&m, w, 3);
    for (int k = 0; k < 300; k++) {
        int got = lbt_pick(&t, CFG_LB_WEIGHTED);

        if (got != lbt_model_pick(&m, NULL))
            mismatches++;
        if (k % 17 == 0) {
            lb_record_failure(&t.state[0], w[0], max_fails);
            m.effective[0] -= w[0] / max_fails;
            if (m.effective[0] < 0)
                m.effective[0] = 0;
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);

    /* Repeated failures floor at 0; picks bring it back to the weight. */
    lbt_init(&t, w, 3);
    for (int k = 0; k < 5; k++)
        lb_record_failure(&t.state[0], w[0], 1);
    CU_ASSERT_EQUAL(t.state[0].effective_weight, 0);
    for (int k = 0; k < 20; k++)
        (void)lbt_pick(&t, CFG_LB_WEIGHTED);
    CU_ASSERT_EQUAL(t.state[0].effective_weight, w[0]);
    /* max_fails below 1 counts as 1. */
    lb_record_failure(&t.state[2], w[2], 0);
    CU_ASSERT_EQUAL(t.state[2].effective_weight, 0);
}

/* Damaged or stale state is brought back into range, not trusted. */
static void test_weighted_sanitizes_state(void)
{
    static const int32_t w[] = { 5, 1, 1 };
    struct lbt t;
    int count[3] = { 0 };

    lbt_init(&t, w, 3);
    t.state[0].current_weight = INT32_MAX;
    t.state[1].current_weight = INT32_MIN;
    t.state[2].effective_weight = 1000;     /* weight lowered by a reload */
    t.state[1].effective_weight = -7;
    for (int k = 0; k < 7; k++) {
        int i = lbt_pick(&t, CFG_LB_WEIGHTED);

        CU_ASSERT_FATAL(i >= 0 && i < 3);
    }
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(t.state[i].effective_weight <= w[i]);
        CU_ASSERT(t.state[i].effective_weight >= 0);
    }
    /* Re-initialised, it is exact again. */
    for (int i = 0; i < 3; i++)
        lb_init(&t.state[i], w[i]);
    for (int k = 0; k < 70; k++)
        count[lbt_pick(&t, CFG_LB_WEIGHTED)]++;
    CU_ASSERT_EQUAL(count[0], 50);
    CU_ASSERT_EQUAL(count[1], 10);
    CU_ASSERT_EQUAL(count[2], 10);
    /* lb_init clamps a weight below 1. */
    lb_init(&t.state[0], 0);
    CU_ASSERT_EQUAL(t.state[0].effective_weight, 1);
    CU_ASSERT_EQUAL(t.state[0].current_weight, 0);
}

/* True when cand[i] has the least active / weight of the eligible
 * (checked in long double, not by cross-multiplication). */
static bool lbt_is_least(const struct lbt *t, int i)
{
    long double mine = (long double)t->cand[i].active / t->cand[i].weight;

    for (int j = 0; j < t->n; j++) {
        const struct lb_candidate *c = &t->cand[j];

        if (!c->usable || (c->max_concurrent > 0 &&
                           c->active >= c->max_concurrent))
            continue;
        if ((long double)c->active / c->weight < mine)
            return false;
    }
    return true;
}

static void test_least_connections_picks_min(void)
{
    static const int32_t w1[] = { 1, 1, 1, 1 };
    static const int32_t w2[] = { 4, 1, 2 };
    static const int32_t w3[] = { 3, 1, 5, 2, 7 };
    uint64_t seed = LBT_SEED;
    struct lbt t;

    lbt_init(&t, w1, 4);
    t.cand[0].active = 3;
    t.cand[1].active = 1;
    t.cand[2].active = 2;
    t.cand[3].active = 5;
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS), 1);

    /* Per weight: 4/4 = 1 beats 2/1 and 3/2. */
    lbt_init(&t, w2, 3);
    t.cand[0].active = 4;
    t.cand[1].active = 2;
    t.cand[2].active = 3;
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS), 0);
    /* 7/4 against 1/1: the light one wins now. */
    t.cand[0].active = 7;
    t.cand[1].active = 1;
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS), 1);

    /* Uneven load: calls start on the pick and end at random; each pick
     * must be a least loaded eligible target. */
    lbt_init(&t, w3, 5);
    t.cand[3].max_concurrent = 4;
    for (int k = 0; k < LBT_FUZZ_ROUNDS; k++) {
        int i = lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS);

        CU_ASSERT_FATAL(i >= 0);
        CU_ASSERT(lbt_is_least(&t, i));
        t.cand[i].active++;
        for (int j = 0; j < t.n; j++)
            if (t.cand[j].active > 0 && unit_rand_below(&seed, 3) == 0)
                t.cand[j].active--;
        CU_ASSERT(t.cand[3].active <= 4);
    }
    /* Huge counts and weights do not overflow the comparison. */
    t.cand[0].active = INT32_MAX - 1;
    t.cand[0].weight = 1000000;
    t.cand[1].active = INT32_MAX - 2;
    t.cand[1].weight = 999999;
    for (int j = 2; j < t.n; j++)
        t.cand[j].usable = false;
    CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS), 0);
}

static void test_least_connections_ties(void)
{
    static const int32_t w_eq[] = { 1, 1, 1, 1 };
    static const int32_t w_21[] = { 2, 1 };
    static const int expect_21[] = { 0, 1, 0 };    /* by weight: a b a */
    struct lbt t;
    int count[4] = { 0 };

    /* All idle, equal weights: they take turns. */
    lbt_init(&t, w_eq, 4);
    for (int k = 0; k < 40; k++) {
        int i = lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS);

        CU_ASSERT_EQUAL(i, k % 4);
        count[i]++;
    }
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(count[i], 10);

    /* Ties only among the least loaded: 1 and 2 alternate. */
    t.cand[0].active = 3;
    t.cand[3].active = 1;
    for (int k = 0, prev = -1; k < 20; k++) {
        int i = lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS);

        CU_ASSERT(i == 1 || i == 2);
        CU_ASSERT_NOT_EQUAL(i, prev);
        prev = i;
    }

    /* Tied loads with weights 2:1 (0/2 = 0/1): shared 2:1 in nginx's
     * smooth order. */
    lbt_init(&t, w_21, 2);
    for (int k = 0; k < 30; k++)
        CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS),
                        expect_21[k % 3]);
    /* 2/2 = 1/1 is a tie too. */
    t.cand[0].active = 2;
    t.cand[1].active = 1;
    count[0] = count[1] = 0;
    for (int k = 0; k < 30; k++)
        count[lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS)]++;
    CU_ASSERT_EQUAL(count[0], 20);
    CU_ASSERT_EQUAL(count[1], 10);

    /* No tie: the smooth state is left alone. */
    t.cand[0].active = 0;
    {
        struct lb_target before[2];

        memcpy(before, t.state, sizeof(before));
        CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_LEAST_CONNECTIONS), 0);
        CU_ASSERT_EQUAL(memcmp(before, t.state, sizeof(before)), 0);
    }
}

static void test_random_proportions(void)
{
    static const int32_t w[] = { 1, 2, 3, 4, 10 };
    const int n = 5;
    const double sum = 20.0;
    int count[5] = { 0 };
    struct lbt t, again;

    lbt_init(&t, w, n);
    for (int k = 0; k < LBT_RANDOM_PICKS; k++)
        count[lbt_pick(&t, CFG_LB_RANDOM)]++;
    for (int i = 0; i < n; i++) {
        double share = (double)count[i] / LBT_RANDOM_PICKS;
        double want = w[i] / sum;

        CU_ASSERT(share > want - LBT_RANDOM_TOL &&
                  share < want + LBT_RANDOM_TOL);
    }
    CU_ASSERT_NOT_EQUAL(t.rng, LBT_SEED);

    /* The same seed, the same picks. */
    lbt_init(&t, w, n);
    lbt_init(&again, w, n);
    for (int k = 0; k < 1000; k++)
        CU_ASSERT_EQUAL(lbt_pick(&t, CFG_LB_RANDOM),
                        lbt_pick(&again, CFG_LB_RANDOM));

    /* Ineligible ones take no share; the rest keep their proportion. */
    lbt_init(&t, w, n);
    t.cand[4].usable = false;
    t.cand[2].max_concurrent = 1;
    t.cand[2].active = 1;
    memset(count, 0, sizeof(count));
    for (int k = 0; k < LBT_RANDOM_PICKS; k++)
        count[lbt_pick(&t, CFG_LB_RANDOM)]++;
    CU_ASSERT_EQUAL(count[2], 0);
    CU_ASSERT_EQUAL(count[4], 0);
    for (int i = 0; i < 2; i++) {
        double share = (double)count[i] / LBT_RANDOM_PICKS;
        double want = w[i] / 7.0;     /* 1, 2 and 4 remain */

        CU_ASSERT(share > want - LBT_RANDOM_TOL &&
                  share < want + LBT_RANDOM_TOL);
    }

    /* A zero state would leave xorshift at zero forever: replaced. */
    lbt_init(&t, w, n);
    t.rng = 0;
    memset(count, 0, sizeof(count));
    for (int k = 0; k < 2000; k++)
        count[lbt_pick(&t, CFG_LB_RANDOM)]++;
    CU_ASSERT_NOT_EQUAL(t.rng, 0);
    for (int i = 0; i < n; i++)
        CU_ASSERT(count[i] > 0);
}

/* Random candidate sets for every strategy: never an ineligible pick,
 * -1 exactly when nothing is eligible, untried preferred. */
static void test_never_ineligible(void)
{
    uint64_t seed = LBT_SEED;
    int bad = 0, wrong_none = 0, tried_over_untried = 0;

    for (int r = 0; r < LBT_FUZZ_ROUNDS; r++) {
        struct lbt t;
        int32_t w[LBT_MAX];
        int n = 1 + (int)unit_rand_below(&seed, LBT_MAX);
        int eligible = 0, untried = 0;

        for (int i = 0; i < n; i++)
            w[i] = 1 + (int32_t)unit_rand_below(&seed, 9);
        lbt_init(&t, w, n);
        t.cursor = (uint32_t)unit_rand(&seed);
        for (int i = 0; i < n; i++) {
            struct lb_candidate *c = &t.cand[i];

            c->usable = unit_rand_below(&seed, 3) != 0;
            c->max_concurrent = (int32_t)unit_rand_below(&seed, 4);
            c->active = (int32_t)unit_rand_below(&seed, 5);
            c->tried = unit_rand_below(&seed, 2) != 0;
            if (c->usable && (c->max_concurrent == 0 ||
                              c->active < c->max_concurrent)) {
                eligible++;
                if (!c->tried)
                    untried++;
            }
        }
        for (int s = 0; s < LBT_STRATEGIES; s++) {
            int i = lbt_pick(&t, lbt_strategies[s]);

            if (i < 0) {
                if (eligible > 0)
                    wrong_none++;
                continue;
            }
            if (i >= n || !t.cand[i].usable ||
                (t.cand[i].max_concurrent > 0 &&
                 t.cand[i].active >= t.cand[i].max_concurrent))
                bad++;
            else if (untried > 0 && t.cand[i].tried)
                tried_over_untried++;
        }
        if (eligible == 0)
            for (int s = 0; s < LBT_STRATEGIES; s++)
                CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), -1);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(wrong_none, 0);
    CU_ASSERT_EQUAL(tried_over_untried, 0);
}

/* A retry goes to a target not yet tried; once all were tried, to a
 * tried one; an unusable untried one does not count. */
static void test_prefer_untried(void)
{
    static const int32_t w[] = { 5, 1, 1 };

    for (int s = 0; s < LBT_STRATEGIES; s++) {
        struct lbt t;
        bool seen[3] = { false, false, false };

        lbt_init(&t, w, 3);
        /* Three attempts of one request: each a different target. */
        for (int k = 0; k < 3; k++) {
            int i = lbt_pick(&t, lbt_strategies[s]);

            CU_ASSERT_FATAL(i >= 0);
            CU_ASSERT_FALSE(seen[i]);
            seen[i] = true;
            t.cand[i].tried = true;
        }
        /* All tried: still a pick, among them. */
        CU_ASSERT(lbt_pick(&t, lbt_strategies[s]) >= 0);

        /* Only 2 untried, but it is unusable: a tried one then. */
        t.cand[2].tried = false;
        t.cand[2].usable = false;
        for (int k = 0; k < 10; k++) {
            int i = lbt_pick(&t, lbt_strategies[s]);

            CU_ASSERT(i == 0 || i == 1);
        }
        /* Only 1 untried and usable: always 1, whatever its load. */
        t.cand[1].tried = false;
        t.cand[1].active = 50;
        for (int k = 0; k < 10; k++)
            CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), 1);
        /* Untried but full: the tried ones again. */
        t.cand[1].max_concurrent = 50;
        for (int k = 0; k < 10; k++)
            CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), 0);
    }
}

static void test_none_eligible(void)
{
    static const int32_t w[] = { 2, 3, 4 };

    for (int s = 0; s < LBT_STRATEGIES; s++) {
        struct lbt t, before;

        lbt_init(&t, w, 3);
        t.cursor = 1;
        t.cand[0].usable = false;
        t.cand[1].max_concurrent = 2;
        t.cand[1].active = 2;
        t.cand[2].usable = false;
        t.cand[2].tried = true;
        before = t;
        CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), -1);
        /* Nothing moved. */
        CU_ASSERT_EQUAL(t.cursor, before.cursor);
        CU_ASSERT_EQUAL(t.rng, before.rng);
        CU_ASSERT_EQUAL(memcmp(t.state, before.state, sizeof(t.state)), 0);
        /* No candidates at all. */
        CU_ASSERT_EQUAL(lb_pick(lbt_strategies[s], t.state, t.cand, 0,
                                &t.cursor, &t.rng), -1);
        CU_ASSERT_EQUAL(lb_pick(lbt_strategies[s], t.state, NULL, 3,
                                &t.cursor, &t.rng), -1);
    }
}

static void test_single_candidate(void)
{
    static const int32_t w[] = { 7 };

    for (int s = 0; s < LBT_STRATEGIES; s++) {
        struct lbt t;

        lbt_init(&t, w, 1);
        for (int k = 0; k < 20; k++)
            CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), 0);
        t.cand[0].tried = true;
        CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), 0);
        t.cand[0].max_concurrent = 1;
        t.cand[0].active = 1;
        CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), -1);
        t.cand[0].max_concurrent = 0;
        t.cand[0].usable = false;
        CU_ASSERT_EQUAL(lbt_pick(&t, lbt_strategies[s]), -1);
    }
}

/* A strategy that does not need a pointer accepts NULL for it. */
static void test_unneeded_pointers(void)
{
    static const int32_t w[] = { 1, 1 };
    struct lbt t;
    uint32_t cursor = 0;
    uint64_t rng = LBT_SEED;

    lbt_init(&t, w, 2);
    CU_ASSERT_EQUAL(lb_pick(CFG_LB_ROUND_ROBIN, NULL, t.cand, 2, &cursor,
                            NULL), 0);
    CU_ASSERT_EQUAL(lb_pick(CFG_LB_ROUND_ROBIN, NULL, t.cand, 2, &cursor,
                            NULL), 1);
    CU_ASSERT(lb_pick(CFG_LB_RANDOM, NULL, t.cand, 2, NULL, &rng) >= 0);
    CU_ASSERT(lb_pick(CFG_LB_WEIGHTED, t.state, t.cand, 2, NULL, NULL) >= 0);
    CU_ASSERT(lb_pick(CFG_LB_LEAST_CONNECTIONS, t.state, t.cand, 2, NULL,
                      NULL) >= 0);
}

static const CU_TestInfo balancer_tests[] = {
    { "round-robin: strict even rotation", test_round_robin_even },
    { "round-robin: skips unusable and full", test_round_robin_skips },
    { "weighted: 5:1:1 is a a b a c a a", test_weighted_5_1_1 },
    { "weighted: matches nginx on many weight sets",
      test_weighted_matches_nginx },
    { "weighted: eligibility changing mid-run",
      test_weighted_eligibility_changes },
    { "weighted: failure feedback like nginx",
      test_weighted_failure_feedback },
    { "weighted: damaged state sanitized", test_weighted_sanitizes_state },
    { "least-connections: min active/weight",
      test_least_connections_picks_min },
    { "least-connections: ties rotate by weight",
      test_least_connections_ties },
    { "random: weighted proportions, seeded", test_random_proportions },
    { "all: never an ineligible pick", test_never_ineligible },
    { "all: untried preferred", test_prefer_untried },
    { "all: -1 when none eligible, nothing moves", test_none_eligible },
    { "all: a single candidate", test_single_candidate },
    { "unneeded pointers may be NULL", test_unneeded_pointers },
    CU_TEST_INFO_NULL
};

int register_balancer_tests(void)
{
    return unit_add_suite("balancer", balancer_tests);
}
