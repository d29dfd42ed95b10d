/* breaker.h - the per-target circuit breaker: closed -> open after
 * failure_threshold consecutive failures (or, when failure_rate_threshold
 * > 0, a failure rate over the last window_size calls), open -> half-open
 * once the open period has passed, half-open -> closed on a successful
 * probe or open again, for twice as long, on a failed one.
 * Pure: the caller passes the time (monotonic ms) and holds the segment
 * lock. struct cb_state lives in the shared segment: fixed size, no
 * pointers, safe to copy. */
#ifndef RCC_BREAKER_H
#define RCC_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* The longest sliding window; config.c's CFG_MAX_WINDOW. */
#define CB_WINDOW_MAX    1000
#define CB_WINDOW_WORDS  ((CB_WINDOW_MAX + 63) / 64)
/* Each failed probe doubles the open period, up to recovery_timeout_ms
 * << CB_MAX_BACKOFF_SHIFT (16 times; 16 minutes for the default 60 s). */
#define CB_MAX_BACKOFF_SHIFT 4

/* The same values as enum shm_breaker_state (breaker.c checks), so
 * cb_state.state can be published as shm_target.state as is. */
enum cb_state_kind {
    CB_CLOSED = 0,
    CB_OPEN = 1,
    CB_HALF_OPEN = 2
};

/* What a call changed, for the caller to log and count. */
enum cb_transition {
    CB_TRANSITION_NONE = 0,
    CB_TRANSITION_OPENED,       /* closed -> open */
    CB_TRANSITION_HALF_OPENED,  /* open -> half-open */
    CB_TRANSITION_CLOSED,       /* half-open -> closed; or reset while off */
    CB_TRANSITION_REOPENED      /* half-open -> open: a probe failed */
};

/* Why it last opened. */
enum cb_cause {
    CB_CAUSE_NONE = 0,
    CB_CAUSE_CONSECUTIVE,       /* failure_threshold failures in a row */
    CB_CAUSE_RATE,              /* failure_rate_threshold over the window */
    CB_CAUSE_PROBE,             /* a half-open probe failed */
    CB_CAUSE_REMOTE             /* another instance opened it (cluster) */
};

struct cb_state {
    uint32_t state;             /* enum cb_state_kind */
    uint32_t open_cause;        /* enum cb_cause of the last opening */
    uint32_t consecutive_failures;   /* while closed */
    uint32_t trips;             /* failed probes since it last closed,
                                   capped at CB_MAX_BACKOFF_SHIFT */
    uint32_t probes;            /* half-open probes in flight */
    uint32_t window_size;       /* the window the ring holds; 0: empty */
    uint32_t window_count;      /* outcomes in the ring, <= window_size */
    uint32_t window_failures;   /* failures among them */
    uint32_t window_next;       /* ring slot the next outcome goes to */
    uint32_t reserved;          /* keeps the 64-bit fields aligned */
    int64_t opened_ms;          /* when it last opened */
    int64_t open_until_ms;      /* while open: when half-open is due */
    int64_t probe_ms;           /* when the last probe was let through */
    uint64_t window_bits[CB_WINDOW_WORDS];   /* 1: that call failed */
};

/* Closed, every counter cleared. */
void cb_init(struct cb_state *b);

/* Operator reset ("breaker reset NAME"): the same as cb_init. Probes still
 * in flight are forgotten; their outcomes count as ordinary calls. */
void cb_reset(struct cb_state *b);

/* May a call go now? Closed: yes. Open: no, until open_until_ms, when it
 * turns half-open (*transition = CB_TRANSITION_HALF_OPENED). Half-open:
 * yes while fewer than half_open_max_requests probes are in flight; that
 * call is a probe (*probe = true) and must end in cb_record(..., true, ...)
 * or cb_release_probe(). A probe slot not given back within ten minutes
 * (or the current open period, when longer) of the last probe is presumed
 * lost with a worker that died, and reused: a lost probe cannot wedge the
 * breaker half-open. Disabled: always yes, and a breaker
 * left open by an earlier configuration closes. probe is required;
 * transition may be NULL. */
bool cb_allow(struct cb_state *b, const struct cfg_breaker *cfg,
              int64_t now_ms, bool *probe, enum cb_transition *transition);

/* Whether cb_allow() would say yes now, changing nothing (for /health,
 * stats and pickers that only look). */
bool cb_usable(const struct cb_state *b, const struct cfg_breaker *cfg,
               int64_t now_ms);

/* Records the outcome of a call cb_allow() let through; probe is what it
 * set. Closed: a failure counts toward failure_threshold and the window,
 * a success clears the consecutive count. Half-open: a probe's success
 * closes it (counters cleared), its failure opens it again for
 * recovery_timeout_ms << trips (capped). Outcomes of calls that started
 * before it opened are ignored while it is open or half-open. Disabled:
 * nothing. Returns the transition that happened. */
enum cb_transition cb_record(struct cb_state *b,
                             const struct cfg_breaker *cfg, bool success,
                             bool probe, int64_t now_ms);

/* Cluster mode: another instance found the target down, and it stays
 * open here until until_ms (monotonic) unless it is open that long
 * already. Probes in flight are forgotten, as cb_reset does. Disabled,
 * or until_ms not after now_ms: nothing. Returns true when it changed
 * (the caller publishes the state and counts a transition). */
bool cb_open_remote(struct cb_state *b, const struct cfg_breaker *cfg,
                    int64_t now_ms, int64_t until_ms);

/* Cluster mode: another instance's half-open trial succeeded, so the
 * target is closed here too (counters cleared and probes in flight
 * forgotten, as a local close does). Disabled, or closed already:
 * nothing. Returns true when it changed (the caller publishes the state
 * and counts a transition). */
bool cb_close_remote(struct cb_state *b, const struct cfg_breaker *cfg);

/* Cluster mode: moves the half-open time of the opening that began at
 * opened_ms to until_ms (later, while the master asks Redis which
 * instance may try the target first, or until that instance's lease
 * ends; back again once this instance won). Only while the breaker is
 * still open from that same opening: a newer opening, a close or a
 * half-open already under way is left alone. Returns true when it
 * moved. */
bool cb_defer_open(struct cb_state *b, int64_t opened_ms, int64_t until_ms);

/* A probe that ended without an outcome (cancelled, client gone): gives
 * its slot back. */
void cb_release_probe(struct cb_state *b);

/* When a call may next get through (monotonic ms): now_ms when it would
 * be allowed now; while open, the end of the open period; while half-open
 * with every probe slot taken, the latest time a slot frees (a probe may
 * end sooner). For Retry-After. */
int64_t cb_next_try_ms(const struct cb_state *b,
                       const struct cfg_breaker *cfg, int64_t now_ms);

/* The current open period: recovery_timeout_ms << min(trips,
 * CB_MAX_BACKOFF_SHIFT). */
int64_t cb_open_period_ms(const struct cb_state *b,
                          const struct cfg_breaker *cfg);

/* Checks the invariants and repairs what a holder that died mid-update
 * may have left (shm_repair): an unknown state resets it, a damaged ring
 * is emptied, counts are recomputed. Returns true when it changed
 * anything. */
bool cb_repair(struct cb_state *b);

/* "closed", "open", "half_open"; "unknown" for any other value. */
const char *cb_state_name(uint32_t state);
/* "none", "opened", "half_opened", "closed", "reopened". */
const char *cb_transition_name(enum cb_transition transition);

#endif
