/* clbudget.c - rate budgets shared by the instances of a cluster
 * (clbudget.h). Each limited budget (a target's or a client's rpm or
 * tpm) is one token bucket in Redis, "PREFIXbudget:KIND:UNIT:NAME" (a
 * hash: level and time, refilled by the script with Redis's own clock;
 * a missing key is a full bucket, and the key expires once it would be
 * full again). The workers and the frontend keep taking from the
 * segment's buckets exactly as without a cluster; here the master keeps
 * those buckets leased (bucket.h): every CLUSTER_POLL_MS, a bucket that
 * holds half a slice or less (budgetlease.h) asks Redis for a slice,
 * with its debt (tokens charged beyond what it held) charged in the same
 * atomic script, and the answer is credited to it. Nothing on a
 * request's path waits for Redis. Redis lost: each bucket refills by
 * itself again as this instance's share of the limit, from what it held
 * and its share of what Redis had left; back: what it spent alone is
 * charged to Redis with its first lease (the merge). Called by
 * cluster.c (the table of parts), master.c (reloads) and budgets.c
 * (stats). */
#include "clbudget.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "budgetlease.h"
#include "budgets.h"
#include "cluster_int.h"

#define CLBUDGET_NUM_MAX  24       /* a number as text */
/* A key: the prefix, "budget:target:rpm:" and a name. */
#define CLBUDGET_KEY_MAX  (CW_KEY_MAX + 32)
/* Entries: per target slot and per client slot, rpm and tpm. */
#define CLBUDGET_UNITS    2
#define CLBUDGET_TARGETS  (SHM_TARGET_SLOTS * CLBUDGET_UNITS)
#define CLBUDGET_ENTRIES  (CLBUDGET_TARGETS + SHM_CLIENT_SLOTS * CLBUDGET_UNITS)
/* A reply's priv: the entry and (the low bits of) the generation it
 * was sent in. */
#define CLBUDGET_GEN_SHIFT 16
#define CLBUDGET_INDEX_MASK ((1u << CLBUDGET_GEN_SHIFT) - 1)
_Static_assert(CLBUDGET_ENTRIES <= (int)CLBUDGET_INDEX_MASK,
               "a budget entry must fit a reply's priv");

/* Kept this long past the time its bucket is full again (then gone:
 * a missing key reads as a full bucket). */
#define CLBUDGET_KEEP_MS  1000
/* A budget whose lease Redis refused (an error: maxmemory reached, a
 * read-only replica, a failed save; or a malformed answer) goes on
 * alone, and asks Redis again (for nothing: a trial) this long after. */
#define CLBUDGET_REFUSED_RETRY_MS 1000

/* Takes a lease from one budget's bucket: brings it up to now with
 * Redis's clock (capacity a minute, at most capacity), charges the debt
 * (down to BUCKET_DEBT_MINUTES of refill below zero, as bucket.h),
 * grants what it has of want in whole tokens, and returns {granted, ms
 * until it has a whole token again (0: has one now), what is left in
 * whole tokens}. KEYS: the bucket.
 * ARGV: capacity, debt, want, ms a minute, debt minutes, keep ms. */
static const char clbudget_lease_lua[] =
    "local cap = tonumber(ARGV[1]) "
    "local minute = tonumber(ARGV[4]) "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local v = redis.call('HMGET', KEYS[1], 'level', 'at') "
    "local level = tonumber(v[1]) or cap "
    "local at = tonumber(v[2]) or now "
    "if now > at then level = level + cap * (now - at) / minute end "
    "level = math.min(cap, level) "
    "level = math.max(-cap * tonumber(ARGV[5]), level - tonumber(ARGV[2])) "
    "local got = math.max(0, math.min(tonumber(ARGV[3]), "
    "                                 math.floor(level))) "
    "level = level - got "
    "local wait = 0 "
    "if level < 1 then wait = math.ceil((1 - level) * minute / cap) end "
    "redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level), "
    "           'at', string.format('%d', now)) "
    "redis.call('PEXPIRE', KEYS[1], "
    "           string.format('%d', math.ceil((cap - level) * minute / cap) "
    "                                + tonumber(ARGV[6]))) "
    "return {got, wait, math.floor(level)}";

struct clbudget {
    uint32_t gen;                  /* bumped on each loss and reload:
                                      replies sent before are ignored */
    bool refused_logged;           /* a refusal logged since the last up */
    bool pending[CLBUDGET_ENTRIES];   /* a lease under way */
    int64_t debt[CLBUDGET_ENTRIES];   /* the debt it charges */
    /* What Redis's bucket had left at the last lease, and when (this
     * clock; 0: no lease answered since the last up), for stats and the
     * split. */
    int64_t seen_level[CLBUDGET_ENTRIES];
    int64_t seen_ms[CLBUDGET_ENTRIES];
    /* When the bucket went alone (this clock; 0: never, or merged
     * since) and what it lacked of full then (units), for the merge. */
    int64_t alone_ms[CLBUDGET_ENTRIES];
    int64_t lack_then[CLBUDGET_ENTRIES];
    /* Refused by Redis: alone until a trial lease is taken; the next
     * trial's time (this clock; 0: not refused). */
    int64_t refused_ms[CLBUDGET_ENTRIES];
};

/* One limited budget of the configuration applied. */
struct clbudget_ref {
    int index;                     /* into pending */
    const char *kind;              /* "target", "client" */
    const char *unit;              /* "rpm", "tpm" */
    const char *name;
    int64_t limit;                 /* a minute, > 0 */
    struct bucket *b;              /* in the segment */
};

typedef void (*clbudget_fn)(struct cluster *c, const struct clbudget_ref *r,
                            int64_t now);

static struct clbudget *clbudget_of(struct cluster *c)
{
    if (c->budgets == NULL && (c->budgets = calloc(1, sizeof(*c->budgets)))
        == NULL)
        util_oom("the cluster budgets");
    return c->budgets;
}

/* fn for the rpm and tpm of one budget, those with a limit; how many. */
static int clbudget_pair(struct cluster *c, int index, const char *kind,
                         const char *name, int64_t rpm, int64_t tpm,
                         struct bucket_pair *p, clbudget_fn fn, int64_t now)
{
    struct clbudget_ref r = { .kind = kind, .name = name };
    int n = 0;

    if (rpm > 0) {
        r.index = index;
        r.unit = "rpm";
        r.limit = rpm;
        r.b = &p->requests;
        fn(c, &r, now);
        n++;
    }
    if (tpm > 0) {
        r.index = index + 1;
        r.unit = "tpm";
        r.limit = tpm;
        r.b = &p->tokens;
        fn(c, &r, now);
        n++;
    }
    return n;
}

/* fn for every limited budget of the configuration applied; how many. */
static int clbudget_each(struct cluster *c, clbudget_fn fn, int64_t now)
{
    struct master *m = c->m;
    const struct cfg *cfg = m->cfg;
    const struct budgets *bs = m->budgets;
    int n = 0;

    for (int t = 0; t < cfg->target_count; t++) {
        int s = m->slots.target_slot[t];

        n += clbudget_pair(c, s * CLBUDGET_UNITS, "target",
                           cfg->targets[t].name, cfg->targets[t].rpm,
                           cfg->targets[t].tpm, &m->shm.targets[s].budget,
                           fn, now);
    }
    for (int k = 0; bs != NULL && k < bs->map.budget_count; k++) {
        int s = bs->slot_of_budget[k];
        const struct cfg_client *cc = &cfg->clients[bs->map.first_key[k]];

        if (s < 0 || s >= SHM_CLIENT_SLOTS || cc->name == NULL)
            continue;
        n += clbudget_pair(c, CLBUDGET_TARGETS + s * CLBUDGET_UNITS,
                           "client", cc->name, cc->rpm, cc->tpm,
                           &m->shm.clients[s].budget, fn, now);
    }
    return n;
}

/* The segment's bucket of entry index. */
static struct bucket *clbudget_bucket(struct cluster *c, int index)
{
    struct bucket_pair *p;

    if (index < CLBUDGET_TARGETS)
        p = &c->m->shm.targets[index / CLBUDGET_UNITS].budget;
    else
        p = &c->m->shm.clients[(index - CLBUDGET_TARGETS) / CLBUDGET_UNITS]
                 .budget;
    return index % CLBUDGET_UNITS == 0 ? &p->requests : &p->tokens;
}

static void clbudget_alone(struct cluster *c, const struct clbudget_ref *r,
                           int64_t now);

static uint32_t clbudget_gen_bits(uint32_t gen)
{
    return gen & (UINT32_MAX >> CLBUDGET_GEN_SHIFT);
}

/* Redis refused the lease of entry index (bucket b): a leased bucket
 * goes on alone as after a loss (its share of the limit, what it held
 * and its part of what the cluster had left), and clbudget_keep asks
 * for a trial lease after CLBUDGET_REFUSED_RETRY_MS. */
static void clbudget_refused(struct cluster *c, int index, struct bucket *b,
                             int64_t now)
{
    struct clbudget_ref r = { .index = index, .b = b };
    bool leased;

    /* The master alone changes a bucket's mode and capacity. */
    shm_lock(&c->m->shm);
    leased = bucket_leased(b) && !bucket_unlimited(b);
    r.limit = b->capacity;      /* a leased bucket's is the limit */
    shm_unlock(&c->m->shm);
    if (leased)
        clbudget_alone(c, &r, now);
    c->budgets->refused_ms[index] = now + CLBUDGET_REFUSED_RETRY_MS;
}

/* A lease's answer: the debt and what was granted credited to the
 * bucket, and when the next token is expected. */
static void clbudget_lease_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    redisReply *reply = cluster_reply(c, r);
    uintptr_t id = (uintptr_t)priv;
    int index = (int)(id & CLBUDGET_INDEX_MASK);
    struct clbudget *cb = c->budgets;
    const redisReply *got, *wait, *left;
    int64_t debt, now;
    struct bucket *b;

    if (cb == NULL || clbudget_gen_bits(cb->gen) !=
                          (uint32_t)(id >> CLBUDGET_GEN_SHIFT))
        return;                 /* sent before a loss or a reload */
    debt = cb->debt[index];
    cb->pending[index] = false;
    cb->debt[index] = 0;
    if (reply == NULL)
        return;
    now = util_now_ms();
    b = clbudget_bucket(c, index);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        (got = reply->element[0])->type != REDIS_REPLY_INTEGER ||
        (wait = reply->element[1])->type != REDIS_REPLY_INTEGER ||
        (left = reply->element[2])->type != REDIS_REPLY_INTEGER) {
        if (!cb->refused_logged)
            log_msg(&c->m->log, LOG_WARN, NULL, "cluster: Redis refused a "
                    "budget lease: %s (the budget goes on alone)",
                    reply->type == REDIS_REPLY_ERROR ? reply->str
                                                     : "bad reply");
        cb->refused_logged = true;
        clbudget_refused(c, index, b, now);
        return;
    }
    cb->refused_ms[index] = 0;  /* a trial taken: leased at the next poll */
    cb->seen_level[index] = left->integer;
    cb->seen_ms[index] = now;
    shm_lock(&c->m->shm);
    bucket_credit(b, debt + (got->integer > 0 ? got->integer : 0),
                  now + (wait->integer > 0 ? wait->integer : 0));
    shm_unlock(&c->m->shm);
}

/* Asks Redis for a lease for r's bucket: its debt and owed charged,
 * want granted if there is any. The bucket gets back its debt and what
 * is granted; owed (what it spent while alone) was never in it. */
static void clbudget_ask(struct cluster *c, const struct clbudget_ref *r,
                         const struct budgetlease_ask *ask, int64_t owed)
{
    struct clbudget *cb = c->budgets;
    char key[CLBUDGET_KEY_MAX], kind[CW_KEY_MAX];
    char cap[CLBUDGET_NUM_MAX], debt[CLBUDGET_NUM_MAX], want[CLBUDGET_NUM_MAX];
    uintptr_t id = ((uintptr_t)clbudget_gen_bits(cb->gen)
                    << CLBUDGET_GEN_SHIFT) | (uintptr_t)r->index;

    snprintf(kind, sizeof(kind), "budget:%s:%s", r->kind, r->unit);
    if (c->cmd == NULL || cw_key(key, sizeof(key), c->prefix, kind,
                                 r->name) < 0)
        return;
    snprintf(cap, sizeof(cap), "%lld", (long long)r->limit);
    snprintf(debt, sizeof(debt), "%lld", (long long)(ask->debt + owed));
    snprintf(want, sizeof(want), "%lld", (long long)ask->want);
    if (redisAsyncCommand(c->cmd, clbudget_lease_cb, (void *)id,
                          "EVAL %s 1 %s %s %s %s %d %d %d", clbudget_lease_lua,
                          key, cap, debt, want, BUCKET_SCALE,
                          BUCKET_DEBT_MINUTES, CLBUDGET_KEEP_MS) != REDIS_OK)
        return;
    cluster_sent(c);
    cb->pending[r->index] = true;
    cb->debt[r->index] = ask->debt;
}

/* What Redis's bucket of entry index had left at the last lease,
 * refilled to now as Redis would (at most limit, below zero in debt),
 * into *out; false when unknown (no lease answered since the last up). */
static bool clbudget_seen_left(const struct clbudget *cb, int index,
                               int64_t limit, int64_t now, int64_t *out)
{
    int64_t left, elapsed;

    if (cb == NULL || limit <= 0 || cb->seen_ms[index] == 0)
        return false;
    elapsed = now > cb->seen_ms[index] ? now - cb->seen_ms[index] : 0;
    left = cb->seen_level[index];
    if (left < limit)
        left = elapsed >= (limit - left) * BUCKET_SCALE / limit
                   ? limit : left + limit * elapsed / BUCKET_SCALE;
    *out = left > limit ? limit : left;
    return true;
}

/* Up, each poll, after a reload: r's bucket made leased if it is not,
 * what it spent on its own owed to the cluster (the merge), and a lease
 * asked for when it runs low. */
static void clbudget_keep(struct cluster *c, const struct clbudget_ref *r,
                          int64_t now)
{
    struct master *m = c->m;
    struct clbudget *cb = c->budgets;
    struct budgetlease_ask ask;
    int64_t owed = 0, level, lack_now, share;
    bool merge;

    if (cb->pending[r->index])
        return;
    if (cb->refused_ms[r->index] != 0) {
        /* Alone since Redis refused a lease: a trial asks for nothing
         * and leaves the bucket as it is; once one is taken, the next
         * poll leases again (the merge). */
        if (now >= cb->refused_ms[r->index]) {
            ask.debt = ask.want = 0;
            cb->refused_ms[r->index] = now + CLBUDGET_REFUSED_RETRY_MS;
            clbudget_ask(c, r, &ask, 0);
        }
        return;
    }
    shm_lock(&m->shm);
    merge = !bucket_leased(r->b) && !bucket_unlimited(r->b);
    share = r->b->capacity;
    lack_now = bucket_lease_begin(r->b, r->limit, now);
    level = bucket_tokens(r->b, now);
    shm_unlock(&m->shm);
    if (merge) {
        /* Never alone (a first connection, a bucket placed anew):
         * full at its start, all it lacks was spent. */
        int64_t since = cb->alone_ms[r->index];

        owed = budgetlease_owed(share, since != 0 ? cb->lack_then[r->index]
                                                  : 0,
                                since != 0 ? now - since : 0, lack_now);
        cb->alone_ms[r->index] = 0;
    }
    if (budgetlease_plan(r->limit, cluster_count(c), level, &ask))
        clbudget_ask(c, r, &ask, owed);
}

/* Down, or a reload while down: r's bucket on its own, with this
 * instance's share of the limit. Just lost: it keeps what it held and
 * takes its share of what the cluster had left at the last lease. */
static void clbudget_alone(struct cluster *c, const struct clbudget_ref *r,
                           int64_t now)
{
    struct master *m = c->m;
    struct clbudget *cb = c->budgets;
    int n = cluster_count(c);
    int64_t left = 0, lack;
    bool lost;

    if (!clbudget_seen_left(cb, r->index, r->limit, now, &left))
        left = 0;

    shm_lock(&m->shm);
    lost = bucket_leased(r->b);
    lack = bucket_lease_end(r->b, budgetlease_share(r->limit, n),
                            lost && left > 0 ? left / (n > 1 ? n : 1) : 0,
                            now);
    shm_unlock(&m->shm);
    if (lost) {
        cb->alone_ms[r->index] = now;
        cb->lack_then[r->index] = lack;
    }
}

/* Replies still on their way are ignored from now on. */
static void clbudget_forget(struct clbudget *cb)
{
    cb->gen++;
    memset(cb->pending, 0, sizeof(cb->pending));
    memset(cb->debt, 0, sizeof(cb->debt));
}

void clbudget_up(struct cluster *c)
{
    struct clbudget *cb = clbudget_of(c);

    /* Redis may have restarted empty: what it said before is no more. */
    memset(cb->seen_ms, 0, sizeof(cb->seen_ms));
    memset(cb->refused_ms, 0, sizeof(cb->refused_ms));
    cb->refused_logged = false;
    clbudget_each(c, clbudget_keep, util_now_ms());
}

void clbudget_poll(struct cluster *c, int64_t now)
{
    clbudget_of(c);
    clbudget_each(c, clbudget_keep, now);
}

void clbudget_down(struct cluster *c)
{
    int n;

    /* Before forgetting: each takes its part of what was left. */
    clbudget_of(c);
    n = clbudget_each(c, clbudget_alone, util_now_ms());
    clbudget_forget(c->budgets);
    if (n > 0)
        log_msg(&c->m->log, LOG_INFO, NULL, "cluster: rate budgets split %d "
                "ways while Redis is away (%d budgets)",
                cluster_count(c), n);
}

void clbudget_configured(struct master *m)
{
    struct cluster *c = m->cluster;

    if (c == NULL)
        return;
    clbudget_forget(clbudget_of(c));
    /* A reload sets each bucket's configured capacity: a budget alone
     * for a refusal leases again (or goes alone again, with its share). */
    memset(c->budgets->refused_ms, 0, sizeof(c->budgets->refused_ms));
    clbudget_each(c, c->state == CLUSTER_UP ? clbudget_keep : clbudget_alone,
                  util_now_ms());
}

int64_t clbudget_target_left(const struct master *m, int slot, bool tokens,
                             int64_t limit, int64_t held, int64_t now)
{
    const struct cluster *c = m->cluster;
    int64_t left;

    if (c == NULL || c->state != CLUSTER_UP || slot < 0 ||
        slot >= SHM_TARGET_SLOTS ||
        !clbudget_seen_left(c->budgets, slot * CLBUDGET_UNITS +
                                            (tokens ? 1 : 0),
                            limit, now, &left))
        return held;
    left += held;               /* a debt here is Redis's next charge */
    return left > limit ? limit : left;
}

void clbudget_free(struct cluster *c)
{
    free(c->budgets);
    c->budgets = NULL;
}
