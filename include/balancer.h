/* balancer.h - picking a target of a virtual model: round-robin, nginx's
 * smooth weighted round-robin, least-connections and weighted random.
 * Pure: no locking, no clock, no globals. The per-target state below lives
 * in the shared segment (fixed size, no pointers, safe to copy); the
 * caller holds the segment lock while calling lb_pick() and passes the
 * virtual model's round-robin cursor and its own random state. */
#ifndef RCC_BALANCER_H
#define RCC_BALANCER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Per target, in the shared segment. Only the weighted and
 * least-connections strategies use it. */
struct lb_target {
    int32_t current_weight;    /* smooth weighted round-robin balance */
    int32_t effective_weight;  /* weight, lowered by failures, recovers */
};

/* Per call, built by the caller for each of the virtual model's targets
 * (index i of the array is the model's i-th target). */
struct lb_candidate {
    int32_t weight;            /* configured weight, >= 1 */
    int32_t active;            /* calls in flight on it now */
    int32_t max_concurrent;    /* 0: unlimited */
    bool usable;               /* its breaker lets a call through */
    bool tried;                /* this request has tried it already */
};

/* Sets a target's state for weight: at the start and whenever its
 * configured weight changes (a reload). */
void lb_init(struct lb_target *state, int32_t weight);

/* Picks one of cand[0..n). Eligible: usable and below max_concurrent.
 * Among the eligible, those not yet tried are preferred; only when every
 * eligible one was tried does it pick among tried ones. Returns the index,
 * or -1 when none is eligible (or n <= 0); nothing changes then.
 *   CFG_LB_ROUND_ROBIN: the first eligible at or after *rr_cursor, which
 *     then moves past it. Needs rr_cursor.
 *   CFG_LB_WEIGHTED: nginx's smooth weighted round-robin over the eligible
 *     (state[i].current_weight += effective_weight, the largest wins and
 *     gives back the total). Needs state[0..n).
 *   CFG_LB_LEAST_CONNECTIONS: the smallest active / weight; ties go by
 *     weight through smooth weighted round-robin among the tied, as
 *     nginx's least_conn does (equal weights: they take turns). Needs
 *     state[0..n).
 *   CFG_LB_RANDOM: random in proportion to weight, drawing from *rng
 *     (backoff_rand; a zero state is replaced by a fixed seed). Needs rng.
 * Pointers a strategy does not need may be NULL. */
int lb_pick(enum cfg_strategy strategy, struct lb_target *state,
            const struct lb_candidate *cand, int n, uint32_t *rr_cursor,
            uint64_t *rng);

/* Optional, nginx's failure feedback: a failed call lowers the target's
 * effective weight by weight / max_fails (never below 0); each later
 * pick that considers it gives one point back. Lowers its share under the
 * weighted and least-connections strategies only. */
void lb_record_failure(struct lb_target *state, int32_t weight,
                       int32_t max_fails);

#endif
