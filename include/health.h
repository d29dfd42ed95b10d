/* health.h - active health of a provider: what a probe's outcome means,
 * the unknown/healthy/unhealthy state it moves through, and the decision
 * of who probes when, so that there is one probe per provider per
 * interval for the whole daemon however many workers (and, later,
 * instances) run.
 *
 * States. A provider starts unknown (usable: the balancer skips only
 * unhealthy targets). unhealthy_after failed probes in a row make it
 * unhealthy, from unknown or healthy. From unknown, the first good probe
 * makes it healthy (as Envoy marks a new host healthy on its first passing
 * check); from unhealthy it takes healthy_after good probes in a row. Each
 * change is returned once by the call that made it, for the caller to log
 * once.
 *
 * Scheduling. next_probe_ms is a lease deadline: a worker whose timer
 * fires calls health_claim(); the one that moves next_probe_ms from a
 * time already past to now + interval_ms, by compare-and-set, probes;
 * every other one sees the new deadline and re-arms its timer for it.
 * There is no owner to release: a prober that dies costs one interval.
 * The claim returns a round token (the new deadline, strictly increasing)
 * that the outcome carries back to health_record(), which ignores an
 * outcome older than one already counted, so a slow probe overtaken by a
 * later one cannot undo it.
 *
 * Locking. health_claim() uses a C11 atomic compare-and-set and may be
 * called with or without the segment lock (or be replaced, across
 * instances, by the same compare-and-set in Redis). health_record(),
 * health_configure() and health_repair() change plain fields and need the
 * segment lock (or a single writer). The probe counters are atomics, for
 * /metrics to read without the lock.
 *
 * Pure: the caller passes the time (monotonic ms). struct health_state
 * lives in the shared segment: fixed size, no pointers. */
#ifndef RCC_HEALTH_H
#define RCC_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Set in health_state.version by health_init; any other value is a state
 * never set up or damaged, which health_repair() resets to unknown. */
#define HEALTH_VERSION       1u
#define HEALTH_NO_OWNER      (-1)
/* Consecutive counts stop here instead of wrapping. */
#define HEALTH_COUNT_MAX     UINT32_MAX
/* HTTP status classes of a probe's answer. */
#define HEALTH_STATUS_MIN    100
#define HEALTH_STATUS_2XX    200
#define HEALTH_STATUS_3XX    300
#define HEALTH_STATUS_4XX    400
#define HEALTH_STATUS_5XX    500
#define HEALTH_STATUS_MAX    599
#define HEALTH_STATUS_UNAUTHORIZED 401
#define HEALTH_STATUS_FORBIDDEN    403

enum health_kind {
    HEALTH_UNKNOWN = 0,
    HEALTH_HEALTHY = 1,
    HEALTH_UNHEALTHY = 2
};

/* What a call changed: "changed to X", for the caller to log once. */
enum health_change {
    HEALTH_CHANGE_NONE = 0,
    HEALTH_CHANGE_HEALTHY,     /* now healthy */
    HEALTH_CHANGE_UNHEALTHY,   /* now unhealthy */
    HEALTH_CHANGE_UNKNOWN      /* probing was switched off (a reload) */
};

enum health_outcome {
    HEALTH_OK = 0,
    HEALTH_FAIL
};

/* A provider's health_check group, as numbers. interval_ms <= 0: no
 * probing (the state stays unknown). Thresholds below 1 count as 1. */
struct health_params {
    int64_t interval_ms;
    int64_t timeout_ms;
    uint32_t unhealthy_after;
    uint32_t healthy_after;
};

struct health_state {
    uint32_t version;          /* HEALTH_VERSION once set up */
    uint32_t state;            /* enum health_kind (under the lock) */
    uint32_t consecutive_failures;
    uint32_t consecutive_successes;
    _Atomic int64_t next_probe_ms;   /* the lease: when a probe is due */
    _Atomic int32_t owner;     /* who claimed last (worker slot or
                                  instance): for stats, not a lock */
    uint32_t reserved;         /* keeps the 64-bit fields aligned */
    int64_t recorded_round;    /* the last round whose outcome counted */
    int64_t changed_ms;        /* when state last changed */
    _Atomic uint64_t probes_ok;
    _Atomic uint64_t probes_failed;
};

/* Unknown, no counts, the first probe due at now_ms. */
void health_init(struct health_state *h, int64_t now_ms);

/* A reload, with the lock held. The same or new parameters keep the
 * state; a shorter interval brings a far next probe in to now +
 * interval_ms; probing switched off (interval_ms <= 0) makes it unknown
 * (HEALTH_CHANGE_UNKNOWN if it was not). A state never set up is
 * initialised. */
enum health_change health_configure(struct health_state *h,
                                    const struct health_params *p,
                                    int64_t now_ms);

/* What a probe's result means: a transport error (connection refused,
 * reset, TLS, timeout: transport_ok false) fails; so does an HTTP status
 * that is not a valid final one (below 200 or above 599), any 5xx, and
 * 401/403 (the credentials no longer work: every call would fail).
 * 2xx is ok; so are 3xx and the other 4xx (404 for a provider without
 * /models, 405, 429 rate limiting): the provider answered and accepted
 * our credentials, and rate limits are the breaker's and the budgets'
 * business, not health's. */
enum health_outcome health_classify(bool transport_ok, long status);

/* The lease. Whether the caller should probe now: true for exactly one
 * caller per round, the one that moved next_probe_ms from a time at or
 * before now_ms to now_ms + interval_ms; *round gets that new value, to
 * pass to health_record(). false when probing is off or the probe is not
 * due yet (another caller may have just claimed it). Lock-free. */
bool health_claim(struct health_state *h, const struct health_params *p,
                  int32_t owner, int64_t now_ms, int64_t *round);

/* Cluster mode: the master moves the lease's deadline from expected to
 * until_ms, by compare-and-set, so that no worker claims a round while
 * it asks Redis which instance probes (later), once this instance won
 * (back), or while another instance holds the round (until its lease
 * ends). False when the deadline is no longer expected: a worker
 * claimed the round meanwhile, or a reload moved it. Lock-free. */
bool health_defer(struct health_state *h, int64_t expected, int64_t until_ms);

/* Cluster mode, with the lock held: another instance probed the provider
 * and counted the outcome; its state and consecutive counts hold here
 * as they are (its health_record decided them: the rules stay in one
 * place). The probe counters stay this instance's own. An invalid state
 * value changes nothing. Returns the change, for the caller to log. */
enum health_change health_apply_remote(struct health_state *h,
                                       uint32_t state, uint32_t failures,
                                       uint32_t successes, int64_t now_ms);

/* When the next probe is due (monotonic ms), for the caller's timer. */
int64_t health_due_ms(const struct health_state *h);

/* Counts a probe's outcome for round (from health_claim), with the lock
 * held. An outcome for a round at or before the last one counted is
 * stale and ignored (returns HEALTH_CHANGE_NONE, counts nothing).
 * Returns the change it made, if any. */
enum health_change health_record(struct health_state *h,
                                 const struct health_params *p,
                                 int64_t round, enum health_outcome outcome,
                                 int64_t now_ms);

/* Whether the balancer may use the provider's targets: unless
 * unhealthy. */
bool health_usable(const struct health_state *h);

/* Checks the invariants and repairs what a lock holder that died
 * mid-update may have left: a damaged version or state resets it to
 * unknown with a probe due at once (its counters are kept). Returns true
 * when it changed anything. */
bool health_repair(struct health_state *h);

/* "unknown", "healthy", "unhealthy" (stats' "health"). */
const char *health_kind_name(uint32_t state);
/* "none", "healthy", "unhealthy", "unknown". */
const char *health_change_name(enum health_change change);
/* "ok", "fail" (pipeline_health_checks_total's result label). */
const char *health_outcome_name(enum health_outcome outcome);

#endif
