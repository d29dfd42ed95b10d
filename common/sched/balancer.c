/* balancer.c - the target pickers of balancer.h. Every strategy works on
 * the same pool: the eligible candidates (usable, below max_concurrent)
 * not yet tried, or all eligible ones once each has been tried. The
 * smooth weighted round-robin step follows nginx's
 * ngx_http_upstream_get_peer(), and least-connections follows its
 * least_conn module, tie-break included. */
#include "balancer.h"

#include <assert.h>
#include <stddef.h>

#include "backoff.h"

/* The largest weight taken as is; config.c refuses more (CFG_MAX_WEIGHT),
 * so this only keeps the sums below far from overflow. */
#define LB_WEIGHT_MAX     1000000
/* In smooth weighted round-robin a current weight stays within a few
 * times the sum of the weights. A value beyond this bound is damage (a
 * holder of the lock died mid-update): it is reset, not left to overflow. */
#define LB_CURRENT_LIMIT  (INT32_MAX / 2)
/* Replaces a zero random state, on which xorshift would stay at zero. */
#define LB_RNG_SEED       0x9E3779B97F4A7C15ULL

static int32_t lb_weight(const struct lb_candidate *c)
{
    if (c->weight < 1)
        return 1;
    return c->weight > LB_WEIGHT_MAX ? LB_WEIGHT_MAX : c->weight;
}

static int64_t lb_active(const struct lb_candidate *c)
{
    return c->active > 0 ? c->active : 0;
}

static bool lb_eligible(const struct lb_candidate *c)
{
    return c->usable && (c->max_concurrent <= 0 ||
                         c->active < c->max_concurrent);
}

static bool lb_in_pool(const struct lb_candidate *c, bool untried_only)
{
    return lb_eligible(c) && !(untried_only && c->tried);
}

/* Counts the eligible candidates and says whether the pool is limited to
 * untried ones (some eligible candidate is untried). */
static int lb_pool(const struct lb_candidate *cand, int n,
                   bool *untried_only)
{
    int eligible = 0, untried = 0;

    for (int i = 0; i < n; i++) {
        if (!lb_eligible(&cand[i]))
            continue;
        eligible++;
        if (!cand[i].tried)
            untried++;
    }
    *untried_only = untried > 0;
    return eligible;
}

/* active(a) / weight(a) against active(b) / weight(b), without division:
 * negative, zero or positive. Both products fit in 64 bits. */
static int lb_compare_load(const struct lb_candidate *a,
                           const struct lb_candidate *b)
{
    int64_t left = lb_active(a) * lb_weight(b);
    int64_t right = lb_active(b) * lb_weight(a);

    return (left > right) - (left < right);
}

/* Brings a target's state back into range: an effective weight above the
 * configured one (the weight was lowered by a reload) or below zero, or a
 * current weight out of bounds. */
static void lb_sanitize(struct lb_target *s, int32_t weight)
{
    if (s->effective_weight < 0 || s->effective_weight > weight)
        s->effective_weight = weight;
    if (s->current_weight > LB_CURRENT_LIMIT ||
        s->current_weight < -LB_CURRENT_LIMIT)
        s->current_weight = 0;
}

/* One step of smooth weighted round-robin over the pool, or, when
 * tie_with >= 0, over the members of the pool whose load equals
 * cand[tie_with]'s. Ties on current weight go to the lower index, as in
 * nginx. Returns the chosen index or -1 for an empty set. */
static int lb_smooth(struct lb_target *state,
                     const struct lb_candidate *cand, int n,
                     bool untried_only, int tie_with)
{
    int64_t total = 0, rest;
    int best = -1;

    for (int i = 0; i < n; i++) {
        struct lb_target *s = &state[i];
        int32_t weight = lb_weight(&cand[i]);

        if (!lb_in_pool(&cand[i], untried_only))
            continue;
        if (tie_with >= 0 && lb_compare_load(&cand[i], &cand[tie_with]) != 0)
            continue;
        lb_sanitize(s, weight);
        s->current_weight += s->effective_weight;
        total += s->effective_weight;
        if (s->effective_weight < weight)
            s->effective_weight++;
        if (best < 0 || s->current_weight > state[best].current_weight)
            best = i;
    }
    if (best < 0)
        return -1;
    rest = (int64_t)state[best].current_weight - total;
    state[best].current_weight = rest < -LB_CURRENT_LIMIT ? 0 : (int32_t)rest;
    return best;
}

static int lb_round_robin(const struct lb_candidate *cand, int n,
                          bool untried_only, uint32_t *rr_cursor)
{
    uint32_t start = *rr_cursor % (uint32_t)n;

    for (uint32_t k = 0; k < (uint32_t)n; k++) {
        uint32_t i = (start + k) % (uint32_t)n;

        if (lb_in_pool(&cand[i], untried_only)) {
            *rr_cursor = (i + 1) % (uint32_t)n;
            return (int)i;
        }
    }
    return -1;
}

/* The least loaded member of the pool; when several share that load,
 * smooth weighted round-robin among them decides (nginx's least_conn). */
static int lb_least_connections(struct lb_target *state,
                                const struct lb_candidate *cand, int n,
                                bool untried_only)
{
    int best = -1;
    bool tied = false;

    for (int i = 0; i < n; i++) {
        int order;

        if (!lb_in_pool(&cand[i], untried_only))
            continue;
        order = best < 0 ? -1 : lb_compare_load(&cand[i], &cand[best]);
        if (order < 0) {
            best = i;
            tied = false;
        } else if (order == 0) {
            tied = true;
        }
    }
    if (best < 0 || !tied)
        return best;
    return lb_smooth(state, cand, n, untried_only, best);
}

static int lb_random(const struct lb_candidate *cand, int n,
                     bool untried_only, uint64_t *rng)
{
    uint64_t total = 0, draw;

    for (int i = 0; i < n; i++)
        if (lb_in_pool(&cand[i], untried_only))
            total += (uint64_t)lb_weight(&cand[i]);
    if (total == 0)
        return -1;
    if (*rng == 0)
        *rng = LB_RNG_SEED;
    /* The modulo bias is below total / 2^64: negligible. */
    draw = backoff_rand(rng) % total;
    for (int i = 0; i < n; i++) {
        uint64_t weight;

        if (!lb_in_pool(&cand[i], untried_only))
            continue;
        weight = (uint64_t)lb_weight(&cand[i]);
        if (draw < weight)
            return i;
        draw -= weight;
    }
    return -1;    /* not reached: the draw is below the total */
}

void lb_init(struct lb_target *state, int32_t weight)
{
    if (weight < 1)
        weight = 1;
    state->current_weight = 0;
    state->effective_weight = weight > LB_WEIGHT_MAX ? LB_WEIGHT_MAX
                                                     : weight;
}

int lb_pick(enum cfg_strategy strategy, struct lb_target *state,
            const struct lb_candidate *cand, int n, uint32_t *rr_cursor,
            uint64_t *rng)
{
    bool untried_only;

    if (n <= 0 || cand == NULL || lb_pool(cand, n, &untried_only) == 0)
        return -1;
    switch (strategy) {
    case CFG_LB_ROUND_ROBIN:
        assert(rr_cursor != NULL);
        return lb_round_robin(cand, n, untried_only, rr_cursor);
    case CFG_LB_WEIGHTED:
        assert(state != NULL);
        return lb_smooth(state, cand, n, untried_only, -1);
    case CFG_LB_LEAST_CONNECTIONS:
        assert(state != NULL);
        return lb_least_connections(state, cand, n, untried_only);
    case CFG_LB_RANDOM:
        assert(rng != NULL);
        return lb_random(cand, n, untried_only, rng);
    }
    assert(!"lb_pick: unknown strategy");
    return -1;
}

void lb_record_failure(struct lb_target *state, int32_t weight,
                       int32_t max_fails)
{
    if (weight < 1)
        weight = 1;
    if (weight > LB_WEIGHT_MAX)
        weight = LB_WEIGHT_MAX;
    if (max_fails < 1)
        max_fails = 1;
    lb_sanitize(state, weight);
    state->effective_weight -= weight / max_fails;
    if (state->effective_weight < 0)
        state->effective_weight = 0;
}
