/* breaker.c - the circuit breaker of breaker.h: its transitions, the
 * doubling open period, the ring of outcome bits behind the sliding-window
 * rule, and the repair of a state a dead lock holder left behind. */
#include "breaker.h"

#include <string.h>

#include "shm.h"

_Static_assert(CB_CLOSED == (int)SHM_BREAKER_CLOSED &&
               CB_OPEN == (int)SHM_BREAKER_OPEN &&
               CB_HALF_OPEN == (int)SHM_BREAKER_HALF_OPEN,
               "cb_state_kind must match shm_breaker_state");

#define CB_WORD_BITS 64
/* A probe slot not given back for this long, or for the open period when
 * that is longer, is presumed lost with a worker that died: long enough
 * for any sane upstream call, short enough that a lost probe does not
 * keep a target out of service for good. */
#define CB_PROBE_LOST_MS (10 * 60 * 1000)

static uint32_t cb_window_size(const struct cfg_breaker *cfg)
{
    if (cfg->window_size < 1)
        return 1;
    return cfg->window_size > CB_WINDOW_MAX ? CB_WINDOW_MAX
                                            : (uint32_t)cfg->window_size;
}

static uint32_t cb_minimum_calls(const struct cfg_breaker *cfg,
                                 uint32_t window)
{
    uint32_t minimum = cfg->minimum_calls < 1 ? 1
                                              : (uint32_t)cfg->minimum_calls;

    return minimum > window ? window : minimum;
}

static uint32_t cb_threshold(const struct cfg_breaker *cfg)
{
    return cfg->failure_threshold < 1 ? 1 : (uint32_t)cfg->failure_threshold;
}

static uint32_t cb_half_open_max(const struct cfg_breaker *cfg)
{
    return cfg->half_open_max_requests < 1
               ? 1 : (uint32_t)cfg->half_open_max_requests;
}

static bool cb_bit(const struct cb_state *b, uint32_t slot)
{
    return (b->window_bits[slot / CB_WORD_BITS] >> (slot % CB_WORD_BITS)) &
           1u;
}

static void cb_set_bit(struct cb_state *b, uint32_t slot, bool failed)
{
    uint64_t mask = (uint64_t)1 << (slot % CB_WORD_BITS);

    if (failed)
        b->window_bits[slot / CB_WORD_BITS] |= mask;
    else
        b->window_bits[slot / CB_WORD_BITS] &= ~mask;
}

static void cb_window_clear(struct cb_state *b)
{
    b->window_size = 0;
    b->window_count = 0;
    b->window_failures = 0;
    b->window_next = 0;
    memset(b->window_bits, 0, sizeof(b->window_bits));
}

/* Adds one outcome to the ring, dropping the oldest once it is full. A
 * changed window_size (a reload) starts the ring afresh. */
static void cb_window_push(struct cb_state *b, const struct cfg_breaker *cfg,
                           bool failed)
{
    uint32_t size = cb_window_size(cfg);
    uint32_t slot;

    if (b->window_size != size) {
        cb_window_clear(b);
        b->window_size = size;
    }
    slot = b->window_next;
    if (b->window_count == size) {
        if (cb_bit(b, slot))
            b->window_failures--;
    } else {
        b->window_count++;
    }
    cb_set_bit(b, slot, failed);
    if (failed)
        b->window_failures++;
    b->window_next = (slot + 1) % size;
}

/* The sliding-window rule: on, enough calls seen, rate reached. Division
 * rather than failures >= rate * count so that a rate written as a decimal
 * (0.3) matches its exact fraction (3 of 10) despite rounding. */
static bool cb_rate_exceeded(const struct cb_state *b,
                             const struct cfg_breaker *cfg)
{
    if (cfg->failure_rate_threshold <= 0 || b->window_count == 0 ||
        b->window_count < cb_minimum_calls(cfg, cb_window_size(cfg)))
        return false;
    return (double)b->window_failures / (double)b->window_count >=
           cfg->failure_rate_threshold;
}

static int64_t cb_probe_lost_ms(const struct cb_state *b,
                                const struct cfg_breaker *cfg)
{
    int64_t period = cb_open_period_ms(b, cfg);

    return period > CB_PROBE_LOST_MS ? period : CB_PROBE_LOST_MS;
}

/* Opens it for the current period; the closed-state counters start over
 * when it closes again. */
static void cb_trip(struct cb_state *b, const struct cfg_breaker *cfg,
                    enum cb_cause cause, int64_t now_ms)
{
    b->state = CB_OPEN;
    b->open_cause = cause;
    b->consecutive_failures = 0;
    b->probes = 0;
    b->opened_ms = now_ms;
    b->open_until_ms = now_ms + cb_open_period_ms(b, cfg);
    cb_window_clear(b);
}

static void cb_close(struct cb_state *b)
{
    b->state = CB_CLOSED;
    b->consecutive_failures = 0;
    b->trips = 0;
    b->probes = 0;
    b->open_until_ms = 0;
    cb_window_clear(b);
}

static enum cb_transition cb_record_closed(struct cb_state *b,
                                           const struct cfg_breaker *cfg,
                                           bool success, int64_t now_ms)
{
    if (success)
        b->consecutive_failures = 0;
    else if (b->consecutive_failures < UINT32_MAX)
        b->consecutive_failures++;
    if (cfg->failure_rate_threshold > 0)
        cb_window_push(b, cfg, !success);
    if (b->consecutive_failures >= cb_threshold(cfg)) {
        cb_trip(b, cfg, CB_CAUSE_CONSECUTIVE, now_ms);
        return CB_TRANSITION_OPENED;
    }
    /* Checked after a success too: the call that reaches minimum_calls
     * may be one. */
    if (cb_rate_exceeded(b, cfg)) {
        cb_trip(b, cfg, CB_CAUSE_RATE, now_ms);
        return CB_TRANSITION_OPENED;
    }
    return CB_TRANSITION_NONE;
}

void cb_init(struct cb_state *b)
{
    memset(b, 0, sizeof(*b));
    b->state = CB_CLOSED;
    b->open_cause = CB_CAUSE_NONE;
}

void cb_reset(struct cb_state *b)
{
    cb_init(b);
}

bool cb_allow(struct cb_state *b, const struct cfg_breaker *cfg,
              int64_t now_ms, bool *probe, enum cb_transition *transition)
{
    enum cb_transition moved = CB_TRANSITION_NONE;
    bool allowed = true;

    *probe = false;
    if (!cfg->enabled || b->state > CB_HALF_OPEN) {
        /* Off, or a damaged state word: let calls through, closed. */
        if (b->state != CB_CLOSED) {
            cb_reset(b);
            moved = CB_TRANSITION_CLOSED;
        }
    } else if (b->state != CB_CLOSED) {
        if (b->state == CB_OPEN && now_ms >= b->open_until_ms) {
            b->state = CB_HALF_OPEN;
            b->probes = 0;
            moved = CB_TRANSITION_HALF_OPENED;
        }
        if (b->state == CB_OPEN) {
            allowed = false;
        } else if (b->probes >= cb_half_open_max(cfg) &&
                   now_ms - b->probe_ms < cb_probe_lost_ms(b, cfg)) {
            allowed = false;
        } else {
            if (b->probes >= cb_half_open_max(cfg))
                b->probes = 0;          /* presumed lost */
            b->probes++;
            b->probe_ms = now_ms;
            *probe = true;
        }
    }
    if (transition != NULL)
        *transition = moved;
    return allowed;
}

bool cb_usable(const struct cb_state *b, const struct cfg_breaker *cfg,
               int64_t now_ms)
{
    if (!cfg->enabled)
        return true;
    switch (b->state) {
    case CB_OPEN:
        return now_ms >= b->open_until_ms;
    case CB_HALF_OPEN:
        return b->probes < cb_half_open_max(cfg) ||
               now_ms - b->probe_ms >= cb_probe_lost_ms(b, cfg);
    default:
        return true;
    }
}

enum cb_transition cb_record(struct cb_state *b,
                             const struct cfg_breaker *cfg, bool success,
                             bool probe, int64_t now_ms)
{
    if (!cfg->enabled)
        return CB_TRANSITION_NONE;
    if (probe && b->probes > 0)
        b->probes--;
    switch (b->state) {
    case CB_CLOSED:
        return cb_record_closed(b, cfg, success, now_ms);
    case CB_HALF_OPEN:
        /* Only probes speak for the target now; other calls started
         * before it opened. */
        if (!probe)
            return CB_TRANSITION_NONE;
        if (success) {
            cb_close(b);
            return CB_TRANSITION_CLOSED;
        }
        if (b->trips < CB_MAX_BACKOFF_SHIFT)
            b->trips++;
        cb_trip(b, cfg, CB_CAUSE_PROBE, now_ms);
        return CB_TRANSITION_REOPENED;
    default:
        return CB_TRANSITION_NONE;     /* open: a call from before */
    }
}

bool cb_open_remote(struct cb_state *b, const struct cfg_breaker *cfg,
                    int64_t now_ms, int64_t until_ms)
{
    if (!cfg->enabled || until_ms <= now_ms ||
        (b->state == CB_OPEN && b->open_until_ms >= until_ms))
        return false;
    b->state = CB_OPEN;
    b->open_cause = CB_CAUSE_REMOTE;
    b->consecutive_failures = 0;
    b->probes = 0;
    b->opened_ms = now_ms;
    b->open_until_ms = until_ms;
    cb_window_clear(b);
    return true;
}

bool cb_close_remote(struct cb_state *b, const struct cfg_breaker *cfg)
{
    if (!cfg->enabled || b->state == CB_CLOSED)
        return false;
    cb_close(b);
    return true;
}

bool cb_defer_open(struct cb_state *b, int64_t opened_ms, int64_t until_ms)
{
    if (b->state != CB_OPEN || b->opened_ms != opened_ms ||
        b->open_until_ms == until_ms)
        return false;
    b->open_until_ms = until_ms;
    return true;
}

void cb_release_probe(struct cb_state *b)
{
    if (b->probes > 0)
        b->probes--;
}

int64_t cb_next_try_ms(const struct cb_state *b,
                       const struct cfg_breaker *cfg, int64_t now_ms)
{
    int64_t at = now_ms;

    if (!cfg->enabled)
        return now_ms;
    if (b->state == CB_OPEN)
        at = b->open_until_ms;
    else if (b->state == CB_HALF_OPEN && b->probes >= cb_half_open_max(cfg))
        at = b->probe_ms + cb_probe_lost_ms(b, cfg);
    return at > now_ms ? at : now_ms;
}

int64_t cb_open_period_ms(const struct cb_state *b,
                          const struct cfg_breaker *cfg)
{
    int64_t base = cfg->recovery_timeout_ms > 0 ? cfg->recovery_timeout_ms
                                                : 0;
    uint32_t shift = b->trips < CB_MAX_BACKOFF_SHIFT ? b->trips
                                                     : CB_MAX_BACKOFF_SHIFT;

    return base << shift;
}

bool cb_repair(struct cb_state *b)
{
    uint32_t valid, failures = 0;
    bool changed = false;

    if (b->state > CB_HALF_OPEN) {
        cb_init(b);
        return true;
    }
    if (b->trips > CB_MAX_BACKOFF_SHIFT) {
        b->trips = CB_MAX_BACKOFF_SHIFT;
        changed = true;
    }
    if (b->window_size > CB_WINDOW_MAX ||
        b->window_count > b->window_size ||
        (b->window_size > 0 && b->window_next >= b->window_size) ||
        (b->window_count < b->window_size &&
         b->window_next != b->window_count) ||
        (b->window_size == 0 && (b->window_next != 0 ||
                                 b->window_failures != 0))) {
        cb_window_clear(b);
        return true;
    }
    valid = b->window_count;
    for (uint32_t slot = 0; slot < valid; slot++)
        if (cb_bit(b, slot))
            failures++;
    if (failures != b->window_failures) {
        b->window_failures = failures;
        changed = true;
    }
    return changed;
}

const char *cb_state_name(uint32_t state)
{
    switch (state) {
    case CB_CLOSED:
        return "closed";
    case CB_OPEN:
        return "open";
    case CB_HALF_OPEN:
        return "half_open";
    default:
        return "unknown";
    }
}

const char *cb_transition_name(enum cb_transition transition)
{
    switch (transition) {
    case CB_TRANSITION_NONE:
        return "none";
    case CB_TRANSITION_OPENED:
        return "opened";
    case CB_TRANSITION_HALF_OPENED:
        return "half_opened";
    case CB_TRANSITION_CLOSED:
        return "closed";
    case CB_TRANSITION_REOPENED:
        return "reopened";
    }
    return "unknown";
}
