/* bucket.c - the token buckets and the budget choice of bucket.h. The
 * level is an integer count of 1/BUCKET_SCALE tokens and a capacity C
 * adds exactly C of them per millisecond, so refilling is one
 * multiplication, bounded so that it never overflows: the gap to full is
 * at most C * BUCKET_SCALE * (BUCKET_DEBT_MINUTES + 1) < 2^63, and the
 * product is formed only when it is below that gap. */
#include "bucket.h"

#include <stddef.h>

/* The layout is part of the segment's (SHM_LAYOUT_VERSION): no padding,
 * the same in every process. */
_Static_assert(sizeof(struct bucket) == 32, "struct bucket layout");
_Static_assert(sizeof(struct bucket_pair) == 2 * sizeof(struct bucket),
               "struct bucket_pair layout");

/* A full bucket of capacity, in units. */
static int64_t bucket_full(int64_t capacity)
{
    return capacity * BUCKET_SCALE;
}

/* The lowest level: BUCKET_DEBT_MINUTES of refill below zero. */
static int64_t bucket_floor(int64_t capacity)
{
    return -capacity * BUCKET_SCALE * BUCKET_DEBT_MINUTES;
}

static int64_t bucket_clamp_capacity(int64_t capacity)
{
    if (capacity <= 0)
        return BUCKET_UNLIMITED;
    return capacity > BUCKET_CAPACITY_MAX ? BUCKET_CAPACITY_MAX : capacity;
}

/* now_ms - since_ms for now_ms > since_ms, without signed overflow for
 * any pair (saturates at INT64_MAX). */
static int64_t bucket_elapsed(int64_t since_ms, int64_t now_ms)
{
    uint64_t d;

    if (now_ms <= since_ms)
        return 0;
    d = (uint64_t)now_ms - (uint64_t)since_ms;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

void bucket_init(struct bucket *b, int64_t capacity, int64_t now_ms)
{
    b->version = BUCKET_VERSION;
    b->mode = BUCKET_MODE_REFILL;
    b->capacity = bucket_clamp_capacity(capacity);
    b->level = bucket_full(b->capacity);
    b->updated_ms = now_ms;
}

bool bucket_unlimited(const struct bucket *b)
{
    return b->capacity <= BUCKET_UNLIMITED;
}

int64_t bucket_units(const struct bucket *b, int64_t now_ms)
{
    int64_t full, low, level, gap, elapsed;

    if (bucket_unlimited(b))
        return 0;
    full = bucket_full(b->capacity);
    low = bucket_floor(b->capacity);
    /* Out of range only if damaged; read as the nearest bound. */
    level = b->level < low ? low : b->level;
    if (level >= full)
        return full;
    if (b->mode == BUCKET_MODE_LEASED)
        return level;           /* filled by leases alone */
    elapsed = bucket_elapsed(b->updated_ms, now_ms);
    gap = full - level;
    /* capacity * elapsed > gap exactly when elapsed > gap / capacity. */
    if (elapsed > gap / b->capacity)
        return full;
    return level + b->capacity * elapsed;
}

int64_t bucket_tokens(const struct bucket *b, int64_t now_ms)
{
    int64_t units = bucket_units(b, now_ms);
    int64_t whole = units / BUCKET_SCALE;

    /* C division truncates toward zero; round toward minus infinity. */
    if (units % BUCKET_SCALE != 0 && units < 0)
        whole--;
    return whole;
}

bool bucket_has_one(const struct bucket *b, int64_t now_ms)
{
    return bucket_unlimited(b) || bucket_units(b, now_ms) >= BUCKET_SCALE;
}

int64_t bucket_wait_ms(const struct bucket *b, int64_t now_ms)
{
    int64_t units, need;

    if (bucket_unlimited(b))
        return 0;
    units = bucket_units(b, now_ms);
    if (units >= BUCKET_SCALE)
        return 0;
    if (b->mode == BUCKET_MODE_LEASED) {
        int64_t wait = bucket_elapsed(now_ms, b->updated_ms);

        return wait > BUCKET_LEASE_RETRY_MS ? wait : BUCKET_LEASE_RETRY_MS;
    }
    /* need <= BUCKET_SCALE + the debt floor: far below 2^63. */
    need = BUCKET_SCALE - units;
    return (need + b->capacity - 1) / b->capacity;
}

/* Brings level and updated_ms to now_ms (see bucket_charge on a clock
 * going back). */
static void bucket_refill(struct bucket *b, int64_t now_ms)
{
    if (b->mode == BUCKET_MODE_LEASED)
        return;                 /* updated_ms is the expected lease */
    if (now_ms >= b->updated_ms) {
        b->level = bucket_units(b, now_ms);
        b->updated_ms = now_ms;
    } else if (bucket_elapsed(now_ms, b->updated_ms) >
               BUCKET_CLOCK_RESET_MS) {
        b->updated_ms = now_ms;
    }
}

void bucket_charge(struct bucket *b, int64_t amount, int64_t now_ms)
{
    int64_t room;

    if (bucket_unlimited(b)) {
        b->updated_ms = now_ms;
        return;
    }
    bucket_refill(b, now_ms);
    if (amount <= 0)
        return;
    room = b->level - bucket_floor(b->capacity);
    if (room < 0 || amount > room / BUCKET_SCALE)
        b->level = bucket_floor(b->capacity);
    else
        b->level -= amount * BUCKET_SCALE;
}

bool bucket_take(struct bucket *b, int64_t now_ms)
{
    if (!bucket_has_one(b, now_ms))
        return false;
    bucket_charge(b, 1, now_ms);
    return true;
}

bool bucket_configure(struct bucket *b, int64_t capacity, int64_t now_ms)
{
    bool was_unlimited;
    int64_t level;

    capacity = bucket_clamp_capacity(capacity);
    if (b->version != BUCKET_VERSION) {
        bucket_init(b, capacity, now_ms);
        return true;
    }
    if (capacity == b->capacity)
        return false;
    was_unlimited = bucket_unlimited(b);
    if (was_unlimited || capacity == BUCKET_UNLIMITED) {
        bucket_init(b, capacity, now_ms);
        return true;
    }
    bucket_refill(b, now_ms);
    level = b->level;
    b->capacity = capacity;
    if (level > bucket_full(capacity))
        level = bucket_full(capacity);
    if (level < bucket_floor(capacity))
        level = bucket_floor(capacity);
    b->level = level;
    return true;
}

int64_t bucket_retry_after_s(int64_t wait_ms)
{
    if (wait_ms <= BUCKET_MS_PER_S)
        return 1;
    return wait_ms / BUCKET_MS_PER_S + (wait_ms % BUCKET_MS_PER_S != 0);
}

bool bucket_repair(struct bucket *b)
{
    bool changed = false;

    /* A damaged version word or capacity: the capacity brought into
     * range (bucket_init clamps), the bucket full again. A reload's
     * bucket_configure sets the configured capacity. */
    if (b->version != BUCKET_VERSION || b->capacity < BUCKET_UNLIMITED ||
        b->capacity > BUCKET_CAPACITY_MAX) {
        bucket_init(b, b->capacity, b->updated_ms);
        return true;
    }
    if (b->mode != BUCKET_MODE_REFILL && b->mode != BUCKET_MODE_LEASED) {
        b->mode = BUCKET_MODE_REFILL;
        changed = true;
    }
    if (bucket_unlimited(b)) {
        if (b->level != 0) {
            b->level = 0;
            changed = true;
        }
        return changed;
    }
    if (b->level > bucket_full(b->capacity)) {
        b->level = bucket_full(b->capacity);
        changed = true;
    } else if (b->level < bucket_floor(b->capacity)) {
        b->level = bucket_floor(b->capacity);
        changed = true;
    }
    return changed;
}

/* ---- leased buckets ---- */

bool bucket_leased(const struct bucket *b)
{
    return b->mode == BUCKET_MODE_LEASED;
}

int64_t bucket_lease_begin(struct bucket *b, int64_t capacity,
                           int64_t now_ms)
{
    int64_t lack;

    if (bucket_unlimited(b) || bucket_leased(b))
        return 0;
    lack = bucket_full(b->capacity) - bucket_units(b, now_ms);
    b->mode = BUCKET_MODE_LEASED;
    b->capacity = bucket_clamp_capacity(capacity);
    b->level = 0;
    b->updated_ms = now_ms;
    return lack;
}

int64_t bucket_lease_end(struct bucket *b, int64_t share, int64_t extra,
                         int64_t now_ms)
{
    int64_t level;

    if (bucket_unlimited(b))
        return 0;
    level = bucket_units(b, now_ms);
    b->mode = BUCKET_MODE_REFILL;
    b->capacity = bucket_clamp_capacity(share);
    if (b->capacity == BUCKET_UNLIMITED)
        b->capacity = 1;        /* a limit stays a limit */
    if (extra > 0)
        level = extra >= (bucket_full(b->capacity) - level) / BUCKET_SCALE
                    ? bucket_full(b->capacity) : level + extra * BUCKET_SCALE;
    if (level > bucket_full(b->capacity))
        level = bucket_full(b->capacity);
    if (level < bucket_floor(b->capacity))
        level = bucket_floor(b->capacity);
    b->level = level;
    b->updated_ms = now_ms;
    return bucket_full(b->capacity) - level;
}

void bucket_credit(struct bucket *b, int64_t amount, int64_t next_ms)
{
    int64_t room;

    if (!bucket_leased(b) || bucket_unlimited(b))
        return;
    b->updated_ms = next_ms;
    if (amount <= 0)
        return;
    room = bucket_full(b->capacity) - b->level;
    if (room <= 0)
        return;
    b->level = amount >= room / BUCKET_SCALE ? bucket_full(b->capacity)
                                             : b->level + amount *
                                                   BUCKET_SCALE;
}

/* ---- a pair ---- */

void bucket_pair_init(struct bucket_pair *p, int64_t rpm, int64_t tpm,
                      int64_t now_ms)
{
    bucket_init(&p->requests, rpm, now_ms);
    bucket_init(&p->tokens, tpm, now_ms);
}

bool bucket_pair_configure(struct bucket_pair *p, int64_t rpm, int64_t tpm,
                           int64_t now_ms)
{
    bool requests = bucket_configure(&p->requests, rpm, now_ms);
    bool tokens = bucket_configure(&p->tokens, tpm, now_ms);

    return requests || tokens;
}

bool bucket_pair_ready(const struct bucket_pair *p, int64_t now_ms)
{
    return bucket_has_one(&p->requests, now_ms) &&
           bucket_has_one(&p->tokens, now_ms);
}

int64_t bucket_pair_wait_ms(const struct bucket_pair *p, int64_t now_ms)
{
    int64_t requests = bucket_wait_ms(&p->requests, now_ms);
    int64_t tokens = bucket_wait_ms(&p->tokens, now_ms);

    return requests > tokens ? requests : tokens;
}

void bucket_pair_start(struct bucket_pair *p, int64_t now_ms)
{
    bucket_charge(&p->requests, 1, now_ms);
}

void bucket_pair_finish(struct bucket_pair *p, int64_t tokens,
                        int64_t now_ms)
{
    bucket_charge(&p->tokens, tokens, now_ms);
}

bool bucket_pair_repair(struct bucket_pair *p)
{
    bool requests = bucket_repair(&p->requests);
    bool tokens = bucket_repair(&p->tokens);

    return requests || tokens;
}

/* ---- the choice ---- */

enum bucket_outcome bucket_choose(const struct bucket_choice *choice, int n,
                                  int64_t now_ms, int64_t deadline_ms,
                                  bool *eligible, int64_t *at_ms)
{
    bool any_usable = false, any_eligible = false;
    int64_t first = INT64_MAX;

    for (int i = 0; i < n; i++) {
        const struct bucket_choice *c = &choice[i];
        bool ok = c->usable && c->within_budget;

        if (eligible != NULL)
            eligible[i] = ok;
        if (!c->usable)
            continue;
        any_usable = true;
        if (ok) {
            any_eligible = true;
        } else {
            int64_t at = c->ready_at_ms < now_ms ? now_ms : c->ready_at_ms;

            first = at < first ? at : first;
        }
    }
    *at_ms = first;
    if (!any_usable)
        return BUCKET_OUTCOME_UNAVAILABLE;
    if (any_eligible)
        return BUCKET_OUTCOME_PICK;
    return first < deadline_ms ? BUCKET_OUTCOME_WAIT : BUCKET_OUTCOME_LIMITED;
}

const char *bucket_outcome_name(enum bucket_outcome outcome)
{
    switch (outcome) {
    case BUCKET_OUTCOME_PICK:
        return "pick";
    case BUCKET_OUTCOME_WAIT:
        return "wait";
    case BUCKET_OUTCOME_LIMITED:
        return "limited";
    case BUCKET_OUTCOME_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}
