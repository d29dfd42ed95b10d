/* bucket.h - rate budgets: token buckets for a target's or a client's
 * rpm (requests per minute) and tpm (tokens per minute), and the choice
 * the balancer makes when budgets run out (pick, wait in the queue, or
 * answer 429 with Retry-After).
 *
 * A bucket of capacity C holds at most C and refills continuously at C
 * per minute (C/60 per second); it starts full. A charge may take it
 * below zero (tokens are charged when the answer ends, after the call was
 * let through); it then recovers at the same rate.
 *
 * Arithmetic is exact integer arithmetic: the level is kept in units of
 * 1/BUCKET_SCALE of a token, and BUCKET_SCALE is the number of
 * milliseconds in a minute, so one millisecond adds exactly C units. For
 * a clock in whole milliseconds the level is exactly the continuous
 * model's, with no rounding. Rounding happens only where a result leaves
 * the module: bucket_tokens() rounds down (toward minus infinity),
 * bucket_wait_ms() rounds up to the next whole millisecond and
 * bucket_retry_after_s() up to the next whole second.
 *
 * Pure: the caller passes the time (monotonic ms); no globals, no clock.
 * struct bucket lives in the shared segment: fixed size, no pointers,
 * safe to copy. Its fields are plain, not atomics: every change happens
 * with the segment lock held (as for the breaker's cb_state), and a
 * holder that dies mid-update leaves at worst a state bucket_repair()
 * brings back into range. */
#ifndef RCC_BUCKET_H
#define RCC_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Set in struct bucket.version by bucket_init; any other value is a
 * bucket never set up or damaged, which bucket_repair() refills. */
#define BUCKET_VERSION        1u
/* Units per token: the milliseconds of a minute, so that a bucket of
 * capacity C gains exactly C units per millisecond. */
#define BUCKET_SCALE          60000
#define BUCKET_MS_PER_S       1000
/* The largest capacity taken as is (ten billion per minute); larger ones
 * are clamped. Keeps every product below 2^63 (see BUCKET_DEBT_MINUTES). */
#define BUCKET_CAPACITY_MAX   10000000000LL
/* How far below zero a bucket may go: this many minutes of refill. A
 * single answer with more tokens than a day's budget leaves the target
 * out of budget for a day, not for ever; and
 * BUCKET_CAPACITY_MAX * BUCKET_SCALE * (BUCKET_DEBT_MINUTES + 1) stays
 * below 2^63. */
#define BUCKET_DEBT_MINUTES   1440
/* The clock is monotonic; if it still appears to go back by more than
 * this, the bucket takes the new time as its reference (see
 * bucket_charge). Smaller steps back are ignored: no refill until the
 * clock passes the last update again. */
#define BUCKET_CLOCK_RESET_MS 60000
/* A capacity of 0 (or less): no limit. */
#define BUCKET_UNLIMITED      0
/* A leased bucket out of tokens whose next lease is not expected later
 * than now says it may have one after this long at the earliest: the
 * master leases every CLUSTER_POLL_MS, so a job waits about that long
 * instead of being retried at once. */
#define BUCKET_LEASE_RETRY_MS 50

/* struct bucket.mode */
enum bucket_mode {
    /* The bucket refills by itself at capacity per minute (a single
     * instance, or a cluster instance without Redis). */
    BUCKET_MODE_REFILL = 0,
    /* Cluster mode: the bucket holds only what the master leased from
     * the cluster's bucket in Redis (bucket_credit); it never refills
     * by itself, and updated_ms is the time the master expects the
     * next lease to find a token (for bucket_wait_ms). */
    BUCKET_MODE_LEASED = 1
};

struct bucket {
    uint32_t version;          /* BUCKET_VERSION once set up */
    uint32_t mode;             /* enum bucket_mode */
    int64_t capacity;          /* per minute; BUCKET_UNLIMITED: no limit */
    int64_t level;             /* tokens * BUCKET_SCALE, between
                                  -capacity * BUCKET_SCALE *
                                  BUCKET_DEBT_MINUTES and
                                  capacity * BUCKET_SCALE */
    int64_t updated_ms;        /* REFILL: the time level was computed
                                  for; LEASED: when a token is expected */
};

/* The two budgets of a target or a client. */
struct bucket_pair {
    struct bucket requests;    /* rpm: one per call started */
    struct bucket tokens;      /* tpm: prompt + completion per answer */
};

/* A full bucket of capacity (clamped to BUCKET_CAPACITY_MAX; <= 0:
 * unlimited) as of now_ms. */
void bucket_init(struct bucket *b, int64_t capacity, int64_t now_ms);

/* A reload: the same capacity keeps the bucket as it is (a budget
 * survives the reload). A new capacity keeps the level, capped at the
 * new capacity and at the new debt floor; a bucket that was unlimited,
 * or never set up, starts full. Returns true when it changed anything. */
bool bucket_configure(struct bucket *b, int64_t capacity, int64_t now_ms);

/* Whether the bucket is unlimited. */
bool bucket_unlimited(const struct bucket *b);

/* The level at now_ms in units (tokens * BUCKET_SCALE), exact, changing
 * nothing. 0 for an unlimited bucket. A now_ms before updated_ms counts
 * as updated_ms (no refill, never a loss). */
int64_t bucket_units(const struct bucket *b, int64_t now_ms);

/* The level at now_ms in whole tokens, rounded down (-0.5 is -1): what
 * is left now, for stats. 0 for an unlimited bucket. */
int64_t bucket_tokens(const struct bucket *b, int64_t now_ms);

/* Whether at least one whole token is there at now_ms (always for an
 * unlimited bucket). */
bool bucket_has_one(const struct bucket *b, int64_t now_ms);

/* Milliseconds from now_ms until at least one whole token is there: 0
 * when there is one now; else the smallest whole number of ms after
 * which the continuous level is >= 1 (exact: rounded up). Leased: until
 * the expected lease (updated_ms), at least BUCKET_LEASE_RETRY_MS. */
int64_t bucket_wait_ms(const struct bucket *b, int64_t now_ms);

/* Takes amount tokens (amount <= 0: nothing) at now_ms, whatever the
 * level: it may go below zero, down to the debt floor where it stays.
 * Unlimited: nothing. The level is first brought up to now_ms; a clock
 * that went back by at most BUCKET_CLOCK_RESET_MS leaves updated_ms where
 * it was (the refill resumes once the clock passes it), by more it makes
 * now_ms the reference. */
void bucket_charge(struct bucket *b, int64_t amount, int64_t now_ms);

/* Takes one token if there is one at now_ms; true if it did (always for
 * an unlimited bucket). */
bool bucket_take(struct bucket *b, int64_t now_ms);

/* Retry-After for a wait of wait_ms: whole seconds, rounded up, at least
 * 1 (a 429 is only sent when there is something to wait for, and
 * "Retry-After: 0" invites an immediate retry). */
int64_t bucket_retry_after_s(int64_t wait_ms);

/* Checks the invariants and repairs what a lock holder that died
 * mid-update may have left (shm_repair): an unknown version or a
 * capacity out of range refills it, a level out of range is clamped.
 * Returns true when it changed anything. */
bool bucket_repair(struct bucket *b);

/* ---- cluster mode: leased buckets (master/clbudget.c) ----
 * A leased bucket is charged like any other (a request, an answer's
 * tokens, below zero if need be), but only bucket_credit fills it. The
 * level is then always whole tokens. */

/* Whether b is leased. */
bool bucket_leased(const struct bucket *b);

/* Makes b a leased bucket of capacity (the configured limit), empty,
 * expecting a lease at now_ms. Returns what b lacked to be full, in
 * units (tokens * BUCKET_SCALE; 0 when full, more than a full bucket
 * when in debt), from which budgetlease_owed() tells what this instance
 * spent on its own. A leased b stays as it is (returns 0); an unlimited
 * one is unchanged (0). */
int64_t bucket_lease_begin(struct bucket *b, int64_t capacity,
                           int64_t now_ms);

/* Ends leasing: b refills by itself again, as a bucket of capacity
 * share (this instance's part of the limit), with what it holds (a debt
 * is kept) and extra whole tokens (its part of what the cluster had
 * left), at most share. Returns what it lacks to be full, in units.
 * Unlimited: unchanged (0). */
int64_t bucket_lease_end(struct bucket *b, int64_t share, int64_t extra,
                         int64_t now_ms);

/* Adds amount whole tokens to a leased bucket (at most up to full) and
 * sets when the next token is expected (next_ms). Nothing for a bucket
 * that is not leased. */
void bucket_credit(struct bucket *b, int64_t amount, int64_t next_ms);

/* ---- a pair: rpm and tpm ---- */

void bucket_pair_init(struct bucket_pair *p, int64_t rpm, int64_t tpm,
                      int64_t now_ms);
/* bucket_configure on both; true when either changed. */
bool bucket_pair_configure(struct bucket_pair *p, int64_t rpm, int64_t tpm,
                           int64_t now_ms);
/* Both have at least one: a call may start. */
bool bucket_pair_ready(const struct bucket_pair *p, int64_t now_ms);
/* Until both have at least one (the longer of the two waits). */
int64_t bucket_pair_wait_ms(const struct bucket_pair *p, int64_t now_ms);
/* A call starts: one request. */
void bucket_pair_start(struct bucket_pair *p, int64_t now_ms);
/* An answer ended with tokens = prompt + completion. */
void bucket_pair_finish(struct bucket_pair *p, int64_t tokens,
                        int64_t now_ms);
bool bucket_pair_repair(struct bucket_pair *p);

/* ---- choosing among a virtual model's targets ---- */

/* Per target, built by the caller beside its lb_candidate. */
struct bucket_choice {
    bool usable;               /* breaker and health let a call through */
    bool within_budget;        /* bucket_pair_ready() */
    int64_t ready_at_ms;       /* now + bucket_pair_wait_ms(): when it
                                  will be (now when within budget) */
};

enum bucket_outcome {
    /* Some usable target has budget: lb_pick among eligible[] (the
     * caller sets lb_candidate.usable = eligible[i]). Whether one is
     * free (max_concurrent) is lb_pick's business; *at_ms still says
     * when an out-of-budget one refills, if any (else INT64_MAX), for a
     * job that must wait anyway. */
    BUCKET_OUTCOME_PICK = 0,
    /* Every usable target is out of budget and the first refills at
     * *at_ms, before the deadline: the job waits in the queue, in its
     * priority order, and the queue wakes at *at_ms (no polling). */
    BUCKET_OUTCOME_WAIT,
    /* Every usable target is out of budget until *at_ms, at or after the
     * deadline: 429 rate_limited at once, Retry-After
     * bucket_retry_after_s(*at_ms - now). */
    BUCKET_OUTCOME_LIMITED,
    /* No target is usable (breakers open, unhealthy), budgets aside: 503
     * at once, as without budgets. */
    BUCKET_OUTCOME_UNAVAILABLE
};

/* Decides for a request over choice[0..n) at now_ms with its deadline
 * (monotonic ms). eligible (may be NULL) gets usable && within_budget
 * for each. *at_ms (required) gets the earliest ready_at_ms among usable
 * targets out of budget (INT64_MAX when there is none). A ready_at_ms
 * before now counts as now. n <= 0 is BUCKET_OUTCOME_UNAVAILABLE. */
enum bucket_outcome bucket_choose(const struct bucket_choice *choice, int n,
                                  int64_t now_ms, int64_t deadline_ms,
                                  bool *eligible, int64_t *at_ms);

/* "pick", "wait", "limited", "unavailable". */
const char *bucket_outcome_name(enum bucket_outcome outcome);

#endif
