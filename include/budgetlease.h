/* budgetlease.h - the arithmetic of cluster-wide rate budgets
 * (master/clbudget.c does the Redis side): how large a slice of a
 * budget an instance leases from the cluster's bucket, when it asks for
 * the next one, and its share of a limit when Redis is away.
 *
 * The rule. The cluster's bucket in Redis is the budget: capacity C a
 * minute, refilled at C a minute, charged with every request and every
 * answer's tokens of every instance. An instance's bucket in its shared
 * segment holds only what it leased (bucket.h's leased mode): at most
 * one slice, budgetlease_slice(C, N) tokens for N instances, which is
 * at most the allowance max(5% of C, 2) divided among them (at least 1
 * each). Tokens move from Redis to an instance before they are spent,
 * and spending beyond what it holds (tpm: an answer's tokens) is
 * charged to Redis as a debt with the next lease; so the cluster can
 * never let through more than one bucket of capacity C would, plus what
 * the instances hold leased while Redis refills: at most N slices, the
 * allowance (N when N exceeds it).
 *
 * Pure: no Redis, no clock, no globals; unit-tested. */
#ifndef RCC_BUDGETLEASE_H
#define RCC_BUDGETLEASE_H

#include <stdbool.h>
#include <stdint.h>

/* The allowance over a limit: this percentage of it, or this many,
 * whichever is larger. */
#define BUDGETLEASE_SLACK_PERCENT  5
#define BUDGETLEASE_SLACK_MIN      2

/* The allowance of a limit of capacity a minute: max(ceil(5% of
 * capacity), 2). 0 for capacity <= 0 (unlimited). */
int64_t budgetlease_slack(int64_t capacity);

/* The most one instance holds leased, with instances instances in the
 * cluster (fewer than 1 counts as 1): the allowance divided among them,
 * at least 1, at most capacity. 0 for capacity <= 0. */
int64_t budgetlease_slice(int64_t capacity, int instances);

/* One instance's part of a limit while Redis is away: capacity divided
 * evenly by the instances last seen (fewer than 1 counts as 1), rounded
 * down, at least 1. 0 for capacity <= 0. */
int64_t budgetlease_share(int64_t capacity, int instances);

/* What an instance owes the cluster's bucket when Redis is back, in
 * whole tokens (rounded up): what it spent on its own and its own
 * bucket has not refilled yet. Its bucket, of capacity share, lacks
 * lack_now units (tokens * BUCKET_SCALE) of full now, and lacked
 * lack_then when it went alone elapsed_ms ago (0: it was full, as
 * before a first connection); lack_then less its refill since (share
 * units a ms) was never spent. 0 or more. */
int64_t budgetlease_owed(int64_t share, int64_t lack_then,
                         int64_t elapsed_ms, int64_t lack_now);

/* What to ask the cluster's bucket for. */
struct budgetlease_ask {
    int64_t debt;              /* spent beyond what was held: charged */
    int64_t want;              /* tokens to lease, if there are any */
};

/* Whether a leased bucket holding level whole tokens (negative: in
 * debt) asks for a lease now, and for what: when it holds no more than
 * half a slice, the debt and what makes a full slice. A slice of 1 asks
 * when the bucket is empty. */
bool budgetlease_plan(int64_t capacity, int instances, int64_t level,
                      struct budgetlease_ask *ask);

#endif
