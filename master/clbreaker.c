/* clbreaker.c - circuit breakers shared by target name in cluster mode
 * (clbreaker.h): finds openings the workers made in the shared segment
 * and publishes them (a key whose expiry is the open-until time, and a
 * message on the channel), applies other instances' openings, resets
 * and closes to the segment under its lock, and on every (re)connection
 * reads what is stored and publishes what is open here.
 *
 * The half-open trial, one instance at a time. When an open breaker's
 * time comes within CLBREAKER_AHEAD_MS, the master defers it in the
 * segment (cb_defer_open) and asks Redis for the target's trial lease
 * (SET NX PX on PREFIXhalfopen:NAME, until one open period after the
 * half-open time). The winner
 * puts its time back, and its workers let the half-open trial through
 * as they would alone; every other instance keeps the breaker open
 * until the lease ends. The trial's outcome travels as any other: a
 * failure reopens the breaker for longer, which is published as an
 * opening; a success closes it, and the winner publishes a close
 * (CW_CLOSE) that closes it everywhere. A winner that gets no request
 * lets its lease lapse and another instance takes the next one. No
 * answer (Redis lost): the time goes back and each instance tries
 * alone. The request path never waits on Redis: the workers only read
 * the segment. Called by cluster.c, which owns the connections. */
#include "clbreaker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster_int.h"

_Static_assert(CFG_TARGET_NAME_MAX <= CW_NAME_MAX,
               "a target name must fit a breaker message");

#define CLBREAKER_NUM_MAX          24     /* a number as text */
/* An opening that ends no more than this after the one a breaker has
 * already is that same one, back through Redis (its expiry rounds): not
 * applied again. */
#define CLBREAKER_SAME_OPEN_MS       1000
/* The trial lease is asked for this long before half-open is due (ten
 * polls: a busy master still asks in time). */
#define CLBREAKER_AHEAD_MS           500
/* A breaker deferred while asking tries alone after this long without
 * an answer (Redis is declared lost sooner: cluster.c's watchdog). */
#define CLBREAKER_HOLD_MS            2000
/* The lease script's answer when the caller took the lease. */
#define CLBREAKER_WON                (-1)

/* Opens a breaker for everyone: the key keeps the longer of its expiry
 * and ours, the message goes out. KEYS: breaker key, channel. ARGV:
 * origin, remaining ms, message. */
static const char clbreaker_open_lua[] =
    "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then "
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "end "
    "return redis.call('PUBLISH', KEYS[2], ARGV[3])";

/* Takes the trial lease if it is free (or ours already: asked again
 * after a reconnection). KEYS: lease key. ARGV: this instance, lease
 * ms. -1 when taken, else the ms left to its holder. */
static const char clbreaker_trial_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) or "
    "   redis.call('GET', KEYS[1]) == ARGV[1] then "
    "  return -1 "
    "end "
    "return redis.call('PTTL', KEYS[1])";

/* A trial closed the breaker: its lease and opening go, the close goes
 * out. KEYS: lease key, breaker key, channel. ARGV: message. */
static const char clbreaker_close_lua[] =
    "redis.call('DEL', KEYS[1], KEYS[2]) "
    "return redis.call('PUBLISH', KEYS[3], ARGV[1])";

/* An open breaker's key: who opened it and the ms left. KEYS: the key. */
static const char clbreaker_read_lua[] =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

/* The target of this configuration named name, or -1. */
static int clbreaker_target(const struct master *m, const char *name)
{
    return cfg_find_target(m->cfg, name);
}

static void clbreaker_apply_open(struct cluster *c, const char *name,
                               int64_t remaining_ms, const char *origin)
{
    struct master *m = c->m;
    int t = clbreaker_target(m, name);
    int64_t now = util_now_ms(), same_ms;
    struct clbreaker_trial *tr;
    struct shm_target *st;
    bool changed;

    if (t < 0 || remaining_ms <= 0)
        return;
    st = master_target(m, t);
    tr = &c->trials[m->slots.target_slot[t]];
    shm_lock(&m->shm);
    /* A time deferred for a trial is not one of ours coming back. */
    same_ms = tr->opened_ms == st->cb.opened_ms && !tr->won
                  ? 0 : CLBREAKER_SAME_OPEN_MS;
    changed = !(st->cb.state == CB_OPEN &&
                st->cb.open_until_ms + same_ms >= now + remaining_ms) &&
              cb_open_remote(&st->cb, &m->cfg->breaker, now,
                             now + remaining_ms);
    if (changed) {
        atomic_store(&st->state, SHM_BREAKER_OPEN);
        atomic_fetch_add(&st->transitions, 1);
        c->seen_opened[m->slots.target_slot[t]] = st->cb.opened_ms;
        memset(tr, 0, sizeof(*tr));
    }
    shm_unlock(&m->shm);
    if (changed)
        log_msg(&m->log, LOG_INFO, NULL, "circuit breaker of %s opened by "
                "instance %s for %lld ms", name, origin,
                (long long)remaining_ms);
}

static void clbreaker_apply_reset(struct cluster *c, const char *name,
                                const char *origin)
{
    struct master *m = c->m;
    int t = clbreaker_target(m, name);
    struct shm_target *st;

    if (t < 0)
        return;
    st = master_target(m, t);
    shm_lock(&m->shm);
    cb_reset(&st->cb);
    atomic_store(&st->state, SHM_BREAKER_CLOSED);
    c->seen_opened[m->slots.target_slot[t]] = 0;
    memset(&c->trials[m->slots.target_slot[t]], 0, sizeof(c->trials[0]));
    shm_unlock(&m->shm);
    log_msg(&m->log, LOG_INFO, NULL, "breaker of %s reset by instance %s",
            name, origin);
}

/* Another instance's half-open trial succeeded: closed here too. */
static void clbreaker_apply_close(struct cluster *c, const char *name,
                                  const char *origin)
{
    struct master *m = c->m;
    int t = clbreaker_target(m, name);
    struct shm_target *st;
    bool changed;

    if (t < 0)
        return;
    st = master_target(m, t);
    shm_lock(&m->shm);
    changed = cb_close_remote(&st->cb, &m->cfg->breaker);
    if (changed) {
        atomic_store(&st->state, SHM_BREAKER_CLOSED);
        atomic_fetch_add(&st->transitions, 1);
    }
    c->seen_opened[m->slots.target_slot[t]] = 0;
    memset(&c->trials[m->slots.target_slot[t]], 0, sizeof(c->trials[0]));
    shm_unlock(&m->shm);
    if (changed)
        log_msg(&m->log, LOG_INFO, NULL, "circuit breaker of %s closed by "
                "instance %s (its half-open trial succeeded)", name, origin);
}

static void clbreaker_reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = cluster_reply(c, r);

    (void)ac;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        cluster_refused(c, "a breaker command", reply->str);
}

static void clbreaker_publish_open(struct cluster *c, const char *name,
                                 int64_t remaining_ms)
{
    struct cw_msg msg = { .kind = CW_OPEN, .remaining_ms = remaining_ms };
    char key[CW_KEY_MAX], text[CW_MSG_MAX], ms[CLBREAKER_NUM_MAX];

    util_strlcpy(msg.origin, c->instance, sizeof(msg.origin));
    util_strlcpy(msg.name, name, sizeof(msg.name));
    if (c->cmd == NULL || cw_encode(text, sizeof(text), &msg) < 0 ||
        cw_key(key, sizeof(key), c->prefix, "breaker", name) < 0)
        return;
    snprintf(ms, sizeof(ms), "%lld", (long long)remaining_ms);
    if (redisAsyncCommand(c->cmd, clbreaker_reply_cb, c,
                          "EVAL %s 2 %s %s %s %s %s", clbreaker_open_lua, key,
                          c->channels[CLUSTER_PART_BREAKERS], c->instance, ms, text) == REDIS_OK)
        cluster_sent(c);
}

/* Openings here that are not published yet (all of them, when fresh is
 * set: just connected). */
static void clbreaker_scan(struct cluster *c, bool fresh)
{
    struct master *m = c->m;
    int64_t now = util_now_ms();
    int found[CFG_MAX_TARGETS];
    int64_t remaining[CFG_MAX_TARGETS];
    int n = 0;

    shm_lock(&m->shm);
    for (int t = 0; t < m->cfg->target_count && n < CFG_MAX_TARGETS; t++) {
        int slot = m->slots.target_slot[t];
        const struct cb_state *cb = &m->shm.targets[slot].cb;

        if (cb->state != CB_OPEN || cb->open_until_ms <= now ||
            (!fresh && cb->opened_ms == c->seen_opened[slot]))
            continue;
        c->seen_opened[slot] = cb->opened_ms;
        found[n] = t;
        remaining[n++] = cb->open_until_ms - now;
    }
    shm_unlock(&m->shm);
    for (int i = 0; i < n; i++)
        clbreaker_publish_open(c, m->cfg->targets[found[i]].name,
                             remaining[i]);
}

/* What the trial lease request was about; malloc'd, freed by its
 * callback. */
struct clbreaker_ask {
    int slot;                 /* target slot */
    int64_t opened_ms;        /* the opening */
    int64_t held_ms;          /* the deferral it answers */
};

/* The trial lease's answer: try here (the time goes back), or keep it
 * open until the holder's lease ends. No answer (the connection went):
 * the time goes back and this instance tries alone. */
static void clbreaker_trial_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    struct clbreaker_ask *a = priv;
    redisReply *reply = r;
    struct clbreaker_trial *tr;
    struct cb_state *cb;
    bool lost;

    if (c == NULL || c->closing)
        goto out;
    if (reply != NULL)
        cluster_answered(c);
    tr = &c->trials[a->slot];
    if (tr->opened_ms != a->opened_ms || tr->held_ms != a->held_ms)
        goto out;               /* the breaker moved on meanwhile */
    /* Refused (an error: maxmemory, a read-only replica) or malformed:
     * this opening is tried alone, not asked again at every poll. */
    tr->alone = reply != NULL && reply->type != REDIS_REPLY_INTEGER;
    if (tr->alone && reply->type == REDIS_REPLY_ERROR)
        cluster_refused(c, "a half-open trial lease", reply->str);
    lost = reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
           reply->integer != CLBREAKER_WON && reply->integer > 0;
    cb = &c->m->shm.targets[a->slot].cb;
    shm_lock(&c->m->shm);
    tr->held_ms = 0;
    tr->won = reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
              reply->integer == CLBREAKER_WON;
    cb_defer_open(cb, a->opened_ms, lost ? util_now_ms() + reply->integer +
                                               CLBREAKER_AHEAD_MS
                                         : tr->until_ms);
    shm_unlock(&c->m->shm);
out:
    free(a);
}

/* Asks for the trial lease of target t, for period ms, whose breaker
 * is open from opened and was deferred to held. */
static void clbreaker_ask(struct cluster *c, int t, int64_t opened,
                          int64_t held, int64_t period)
{
    struct master *m = c->m;
    int slot = m->slots.target_slot[t];
    char key[CW_KEY_MAX], ms[CLBREAKER_NUM_MAX];
    struct clbreaker_ask *a = malloc(sizeof(*a));

    if (a == NULL)
        util_oom("a cluster trial request");
    a->slot = slot;
    a->opened_ms = opened;
    a->held_ms = held;
    snprintf(ms, sizeof(ms), "%lld", (long long)(period > 0 ? period : 1));
    if (cw_key(key, sizeof(key), c->prefix, "halfopen",
               m->cfg->targets[t].name) == 0 &&
        redisAsyncCommand(c->cmd, clbreaker_trial_cb, a, "EVAL %s 1 %s %s %s",
                          clbreaker_trial_lua, key, c->instance,
                          ms) == REDIS_OK) {
        cluster_sent(c);
        return;
    }
    free(a);
    shm_lock(&m->shm);
    c->trials[slot].held_ms = 0;
    cb_defer_open(&m->shm.targets[slot].cb, opened, c->trials[slot].until_ms);
    shm_unlock(&m->shm);
}

/* This instance's trial closed the breaker of target t: everywhere. */
static void clbreaker_publish_close(struct cluster *c, int t)
{
    const char *name = c->m->cfg->targets[t].name;
    struct cw_msg msg = { .kind = CW_CLOSE };
    char lease[CW_KEY_MAX], key[CW_KEY_MAX], text[CW_MSG_MAX];

    util_strlcpy(msg.origin, c->instance, sizeof(msg.origin));
    util_strlcpy(msg.name, name, sizeof(msg.name));
    if (cw_encode(text, sizeof(text), &msg) < 0 ||
        cw_key(lease, sizeof(lease), c->prefix, "halfopen", name) < 0 ||
        cw_key(key, sizeof(key), c->prefix, "breaker", name) < 0)
        return;
    if (redisAsyncCommand(c->cmd, clbreaker_reply_cb, c,
                          "EVAL %s 3 %s %s %s %s", clbreaker_close_lua, lease,
                          key, c->channels[CLUSTER_PART_BREAKERS],
                          text) == REDIS_OK)
        cluster_sent(c);
}

/* Half-open trials: a won trial that closed its breaker is told; an
 * opening whose time is near is deferred while the lease is asked. One
 * pass under the lock; the commands go out after it. */
static void clbreaker_trials(struct cluster *c, int64_t now)
{
    struct master *m = c->m;
    const struct cfg_breaker *cfg = &m->cfg->breaker;
    int closed[CFG_MAX_TARGETS], asked[CFG_MAX_TARGETS];
    int64_t period[CFG_MAX_TARGETS];
    int n_closed = 0, n_asked = 0;

    if (c->cmd == NULL)
        return;
    shm_lock(&m->shm);
    for (int t = 0; t < m->cfg->target_count && t < CFG_MAX_TARGETS; t++) {
        int slot = m->slots.target_slot[t];
        struct clbreaker_trial *tr = &c->trials[slot];
        struct cb_state *cb = &m->shm.targets[slot].cb;

        if (tr->won) {
            if (cb->state == CB_CLOSED)
                closed[n_closed++] = t;
            if (cb->state == CB_CLOSED || cb->opened_ms != tr->opened_ms)
                memset(tr, 0, sizeof(*tr));   /* reopened: an opening */
        } else if (cfg->enabled && cb->state == CB_OPEN &&
                   cb->open_until_ms - now <= CLBREAKER_AHEAD_MS &&
                   !((tr->held_ms != 0 || tr->alone) &&
                     tr->opened_ms == cb->opened_ms)) {
            tr->opened_ms = cb->opened_ms;
            tr->alone = false;
            tr->until_ms = cb->open_until_ms;
            tr->held_ms = (cb->open_until_ms > now ? cb->open_until_ms
                                                   : now) + CLBREAKER_HOLD_MS;
            cb_defer_open(cb, tr->opened_ms, tr->held_ms);
            /* The lease covers the wait and one open period for the
             * trial itself. */
            period[n_asked] = tr->until_ms - now + cb_open_period_ms(cb, cfg);
            asked[n_asked++] = t;
        }
    }
    shm_unlock(&m->shm);
    for (int i = 0; i < n_closed; i++)
        clbreaker_publish_close(c, closed[i]);
    for (int i = 0; i < n_asked; i++) {
        const struct clbreaker_trial *tr =
            &c->trials[m->slots.target_slot[asked[i]]];

        clbreaker_ask(c, asked[i], tr->opened_ms, tr->held_ms, period[i]);
    }
}

static void clbreaker_read(struct cluster *c, int t);

void clbreaker_poll(struct cluster *c, int64_t now)
{
    /* Targets a reload placed: what is open elsewhere, as at a
     * connection. */
    for (int t = 0; t < c->m->cfg->target_count; t++) {
        struct clbreaker_trial *tr = &c->trials[c->m->slots.target_slot[t]];

        if (tr->fresh) {
            tr->fresh = false;
            clbreaker_read(c, t);
        }
    }
    clbreaker_scan(c, false);
    clbreaker_trials(c, now);
}

/* The reply to clbreaker_read_lua for one breaker key: open it here for
 * what is left, naming the instance that opened it. priv is the
 * target's name (malloc'd, freed here). */
static void clbreaker_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    redisReply *reply = r;
    char *name = priv;

    if (reply != NULL && c != NULL && !c->closing) {
        cluster_answered(c);
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
            const redisReply *who = reply->element[0];
            const redisReply *left = reply->element[1];

            if (who->type == REDIS_REPLY_STRING && cw_instance_ok(who->str) &&
                left->type == REDIS_REPLY_INTEGER && left->integer > 0 &&
                left->integer <= CW_OPEN_MAX_MS)
                clbreaker_apply_open(c, name, left->integer, who->str);
        }
    }
    free(name);
}

/* Reads the opening stored for target t (clbreaker_read_cb applies it). */
static void clbreaker_read(struct cluster *c, int t)
{
    const char *target = c->m->cfg->targets[t].name;
    char key[CW_KEY_MAX];
    char *name;

    if (c->cmd == NULL ||
        cw_key(key, sizeof(key), c->prefix, "breaker", target) < 0)
        return;
    name = strdup(target);
    if (name == NULL)
        util_oom("a cluster breaker name");
    if (redisAsyncCommand(c->cmd, clbreaker_read_cb, name, "EVAL %s 1 %s",
                          clbreaker_read_lua, key) != REDIS_OK) {
        free(name);
        return;
    }
    cluster_sent(c);
}

/* The breaker of name reset for everyone: its key and its trial lease
 * go (the next opening's trial is free), the others are told. -1 when
 * it cannot be sent. */
static int clbreaker_send_reset(struct cluster *c, const char *name)
{
    struct cw_msg msg = { .kind = CW_RESET };
    char key[CW_KEY_MAX], lease[CW_KEY_MAX], text[CW_MSG_MAX];

    util_strlcpy(msg.origin, c->instance, sizeof(msg.origin));
    util_strlcpy(msg.name, name, sizeof(msg.name));
    if (c->state != CLUSTER_UP || c->cmd == NULL ||
        cw_encode(text, sizeof(text), &msg) < 0 ||
        cw_key(key, sizeof(key), c->prefix, "breaker", name) < 0 ||
        cw_key(lease, sizeof(lease), c->prefix, "halfopen", name) < 0)
        return -1;
    if (redisAsyncCommand(c->cmd, clbreaker_reply_cb, c, "DEL %s %s",
                          key, lease) == REDIS_OK)
        cluster_sent(c);
    if (redisAsyncCommand(c->cmd, clbreaker_reply_cb, c, "PUBLISH %s %s",
                          c->channels[CLUSTER_PART_BREAKERS], text) == REDIS_OK)
        cluster_sent(c);
    return 0;
}

/* Just connected: learn what is open elsewhere, tell what is open here.
 * A breaker reset here while Redis was away is reset for everyone
 * instead: reading its stored opening would undo the operator's reset. */
void clbreaker_sync(struct cluster *c)
{
    struct master *m = c->m;

    /* A new connection: an opening tried alone after a refusal asks
     * again; every target's opening is read. */
    for (int s = 0; s < SHM_TARGET_SLOTS; s++)
        c->trials[s].alone = c->trials[s].fresh = false;
    for (int t = 0; t < m->cfg->target_count; t++) {
        struct clbreaker_trial *tr = &c->trials[m->slots.target_slot[t]];

        if (tr->reset_owed) {
            tr->reset_owed = false;
            if (clbreaker_send_reset(c, m->cfg->targets[t].name) == 0) {
                log_msg(&m->log, LOG_INFO, NULL, "cluster: breaker of %s "
                        "reset for the cluster (reset here while Redis was "
                        "away)", m->cfg->targets[t].name);
                continue;
            }
        }
        clbreaker_read(c, t);
    }
    clbreaker_scan(c, true);
}

void clbreaker_slot_fresh(struct master *m, int slot)
{
    struct cluster *c = m->cluster;

    if (c == NULL || slot < 0 || slot >= SHM_TARGET_SLOTS)
        return;
    c->seen_opened[slot] = 0;
    memset(&c->trials[slot], 0, sizeof(c->trials[slot]));
    c->trials[slot].fresh = true;
}

void clbreaker_reset(struct master *m, const char *name)
{
    struct cluster *c = m->cluster;
    struct clbreaker_trial *tr = NULL;
    int t;

    if (c == NULL)
        return;
    t = clbreaker_target(m, name);
    if (t >= 0) {
        c->seen_opened[m->slots.target_slot[t]] = 0;
        tr = &c->trials[m->slots.target_slot[t]];
        memset(tr, 0, sizeof(*tr));
    }
    if (clbreaker_send_reset(c, name) == 0)
        return;
    if (tr != NULL) {
        tr->reset_owed = true;
        log_msg(&m->log, LOG_WARN, NULL, "cluster: Redis is not reachable: "
                "breaker of %s reset on this instance, and for the cluster "
                "when Redis is back", name);
    } else {
        log_msg(&m->log, LOG_WARN, NULL, "cluster: Redis is not reachable: "
                "breaker of %s reset on this instance only", name);
    }
}

void clbreaker_message(struct cluster *c, const char *payload, size_t len)
{
    struct cw_msg msg;

    if (cw_decode(payload, len, &msg) < 0) {
        log_msg(&c->m->log, LOG_DEBUG, NULL, "cluster: a malformed breaker "
                "message ignored");
        return;
    }
    if (strcmp(msg.origin, c->instance) == 0)
        return;                 /* our own, back from Redis */
    if (msg.kind == CW_OPEN)
        clbreaker_apply_open(c, msg.name, msg.remaining_ms, msg.origin);
    else if (msg.kind == CW_CLOSE)
        clbreaker_apply_close(c, msg.name, msg.origin);
    else
        clbreaker_apply_reset(c, msg.name, msg.origin);
}
