/* health.c - the health states, probe classification and probe lease of
 * health.h. The lease is a single 64-bit compare-and-set, so the claim
 * needs no lock; counting outcomes changes several fields together and
 * runs under the segment lock. */
#include "health.h"

#include <stddef.h>

/* The layout is part of the segment's (SHM_LAYOUT_VERSION). */
_Static_assert(sizeof(struct health_state) == 64, "struct health_state");
/* An atomic that is not lock-free is guarded by a lock private to each
 * process, which other processes would not see: the lease needs real
 * lock-free 64-bit compare-and-set. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "process-shared atomics must be lock-free");

/* A time before any monotonic clock reading: "due at once" and "no round
 * counted yet". */
#define HEALTH_LONG_AGO  INT64_MIN

static uint32_t health_threshold(uint32_t configured)
{
    return configured < 1 ? 1 : configured;
}

static uint32_t health_bump(uint32_t count)
{
    return count < HEALTH_COUNT_MAX ? count + 1 : count;
}

static bool health_enabled(const struct health_params *p)
{
    return p != NULL && p->interval_ms > 0;
}

/* now_ms + interval_ms, saturating. */
static int64_t health_after(int64_t now_ms, int64_t interval_ms)
{
    return now_ms > INT64_MAX - interval_ms ? INT64_MAX
                                            : now_ms + interval_ms;
}

void health_init(struct health_state *h, int64_t now_ms)
{
    h->version = HEALTH_VERSION;
    h->state = HEALTH_UNKNOWN;
    h->consecutive_failures = 0;
    h->consecutive_successes = 0;
    atomic_store(&h->next_probe_ms, now_ms);
    atomic_store(&h->owner, HEALTH_NO_OWNER);
    h->reserved = 0;
    h->recorded_round = HEALTH_LONG_AGO;
    h->changed_ms = now_ms;
    atomic_store(&h->probes_ok, 0);
    atomic_store(&h->probes_failed, 0);
}

enum health_change health_configure(struct health_state *h,
                                    const struct health_params *p,
                                    int64_t now_ms)
{
    int64_t next, soonest;

    if (h->version != HEALTH_VERSION) {
        health_init(h, now_ms);
        return HEALTH_CHANGE_NONE;
    }
    if (!health_enabled(p)) {
        bool was_known = h->state != HEALTH_UNKNOWN;

        h->state = HEALTH_UNKNOWN;
        h->consecutive_failures = 0;
        h->consecutive_successes = 0;
        if (!was_known)
            return HEALTH_CHANGE_NONE;
        h->changed_ms = now_ms;
        return HEALTH_CHANGE_UNKNOWN;
    }
    /* A claim may race this store; at worst one round comes early. */
    next = atomic_load(&h->next_probe_ms);
    soonest = health_after(now_ms, p->interval_ms);
    if (next > soonest)
        atomic_store(&h->next_probe_ms, soonest);
    return HEALTH_CHANGE_NONE;
}

enum health_outcome health_classify(bool transport_ok, long status)
{
    if (!transport_ok)
        return HEALTH_FAIL;
    if (status < HEALTH_STATUS_2XX || status > HEALTH_STATUS_MAX)
        return HEALTH_FAIL;
    if (status >= HEALTH_STATUS_5XX)
        return HEALTH_FAIL;
    if (status == HEALTH_STATUS_UNAUTHORIZED ||
        status == HEALTH_STATUS_FORBIDDEN)
        return HEALTH_FAIL;
    return HEALTH_OK;
}

bool health_claim(struct health_state *h, const struct health_params *p,
                  int32_t owner, int64_t now_ms, int64_t *round)
{
    int64_t due = atomic_load(&h->next_probe_ms);
    int64_t next;

    if (!health_enabled(p) || now_ms < due)
        return false;
    next = health_after(now_ms, p->interval_ms);
    /* Only one caller moves it from due; the others fail the exchange
     * (and then see a deadline in the future). */
    if (!atomic_compare_exchange_strong(&h->next_probe_ms, &due, next))
        return false;
    atomic_store(&h->owner, owner);
    *round = next;
    return true;
}

bool health_defer(struct health_state *h, int64_t expected, int64_t until_ms)
{
    return atomic_compare_exchange_strong(&h->next_probe_ms, &expected,
                                          until_ms);
}

enum health_change health_apply_remote(struct health_state *h,
                                       uint32_t state, uint32_t failures,
                                       uint32_t successes, int64_t now_ms)
{
    uint32_t was = h->state;

    if (state > HEALTH_UNHEALTHY || (failures != 0 && successes != 0))
        return HEALTH_CHANGE_NONE;
    h->consecutive_failures = failures;
    h->consecutive_successes = successes;
    if (was == state)
        return HEALTH_CHANGE_NONE;
    h->state = state;
    h->changed_ms = now_ms;
    switch (state) {
    case HEALTH_HEALTHY:
        return HEALTH_CHANGE_HEALTHY;
    case HEALTH_UNHEALTHY:
        return HEALTH_CHANGE_UNHEALTHY;
    default:
        return HEALTH_CHANGE_UNKNOWN;
    }
}

int64_t health_due_ms(const struct health_state *h)
{
    return atomic_load(&h->next_probe_ms);
}

enum health_change health_record(struct health_state *h,
                                 const struct health_params *p,
                                 int64_t round, enum health_outcome outcome,
                                 int64_t now_ms)
{
    uint32_t unhealthy_after = health_threshold(p->unhealthy_after);
    uint32_t healthy_after = health_threshold(p->healthy_after);

    if (round <= h->recorded_round)
        return HEALTH_CHANGE_NONE;
    h->recorded_round = round;
    if (outcome == HEALTH_OK) {
        atomic_fetch_add(&h->probes_ok, 1);
        h->consecutive_failures = 0;
        h->consecutive_successes = health_bump(h->consecutive_successes);
        if (h->state == HEALTH_HEALTHY)
            return HEALTH_CHANGE_NONE;
        /* unknown: the first good probe; unhealthy: healthy_after. */
        if (h->state == HEALTH_UNHEALTHY &&
            h->consecutive_successes < healthy_after)
            return HEALTH_CHANGE_NONE;
        h->state = HEALTH_HEALTHY;
        h->changed_ms = now_ms;
        return HEALTH_CHANGE_HEALTHY;
    }
    atomic_fetch_add(&h->probes_failed, 1);
    h->consecutive_successes = 0;
    h->consecutive_failures = health_bump(h->consecutive_failures);
    if (h->state == HEALTH_UNHEALTHY ||
        h->consecutive_failures < unhealthy_after)
        return HEALTH_CHANGE_NONE;
    h->state = HEALTH_UNHEALTHY;
    h->changed_ms = now_ms;
    return HEALTH_CHANGE_UNHEALTHY;
}

bool health_usable(const struct health_state *h)
{
    return h->state != HEALTH_UNHEALTHY;
}

bool health_repair(struct health_state *h)
{
    bool changed = false;

    if (h->version != HEALTH_VERSION || h->state > HEALTH_UNHEALTHY) {
        bool set_up = h->version == HEALTH_VERSION;
        uint64_t ok = atomic_load(&h->probes_ok);
        uint64_t failed = atomic_load(&h->probes_failed);
        int64_t round = h->recorded_round;

        health_init(h, HEALTH_LONG_AGO);
        /* Only the state word was damaged: the counters stay monotonic
         * for /metrics, and the round guard keeps rejecting outcomes
         * already counted. */
        if (set_up) {
            atomic_store(&h->probes_ok, ok);
            atomic_store(&h->probes_failed, failed);
            h->recorded_round = round;
        }
        return true;
    }
    if (h->reserved != 0) {
        h->reserved = 0;
        changed = true;
    }
    /* Both counts non-zero cannot happen: each outcome clears the other. */
    if (h->consecutive_failures != 0 && h->consecutive_successes != 0) {
        h->consecutive_failures = 0;
        h->consecutive_successes = 0;
        changed = true;
    }
    return changed;
}

const char *health_kind_name(uint32_t state)
{
    switch (state) {
    case HEALTH_UNKNOWN:
        return "unknown";
    case HEALTH_HEALTHY:
        return "healthy";
    case HEALTH_UNHEALTHY:
        return "unhealthy";
    default:
        return "unknown";
    }
}

const char *health_change_name(enum health_change change)
{
    switch (change) {
    case HEALTH_CHANGE_NONE:
        return "none";
    case HEALTH_CHANGE_HEALTHY:
        return "healthy";
    case HEALTH_CHANGE_UNHEALTHY:
        return "unhealthy";
    case HEALTH_CHANGE_UNKNOWN:
        return "unknown";
    }
    return "none";
}

const char *health_outcome_name(enum health_outcome outcome)
{
    return outcome == HEALTH_OK ? "ok" : "fail";
}
