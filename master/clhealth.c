/* clhealth.c - active health shared in cluster mode (clhealth.h).
 *
 * Who probes. Workers claim a provider's round from the lease in the
 * segment (health.h: next_probe_ms). With Redis up, the master asks
 * first: when a round comes within CLHEALTH_AHEAD_MS it defers the
 * local deadline (health_defer) and asks Redis for the provider's lease
 * key (PREFIXhealthlease:NAME, held for one interval and a margin). The
 * instance that holds it, or finds it free, probes: its deadline goes
 * back and a worker claims the round as it would alone; the holder
 * renews its own lease each round, so one instance keeps probing while
 * it lives. Every other instance moves its deadline to the end of the
 * holder's lease and asks again then: an instance that dies costs one
 * interval. No answer within CLHEALTH_HOLD_MS (or Redis lost): the
 * deferral ends and the workers probe alone, as without a cluster.
 *
 * What it found. A probe counted here (the segment's probe counters
 * moved) is published on the health channel with the provider's state
 * and consecutive counts as health_record left them, and stored in
 * PREFIXhealth:NAME for a few intervals, so that an instance that joins
 * or reconnects learns it. Other instances take it as it is
 * (health_apply_remote): the rules stay those of the prober's
 * health_record. Called by cluster.c, which owns the connections. */
#include "clhealth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster_int.h"
#include "cwhealth.h"
#include "provhealth.h"

_Static_assert(CFG_NAME_MAX <= CW_NAME_MAX,
               "a provider name must fit a health result");

/* A round is asked for this long before it is due (several polls). */
#define CLHEALTH_AHEAD_MS        200
/* A round deferred while asking is probed locally after this long
 * without an answer (Redis is declared lost sooner: cluster.c's reply
 * watchdog). Also the lease's margin over one interval, so that the
 * holder renews it before it ends. */
#define CLHEALTH_HOLD_MS         2000
/* At start, the first rounds wait this long for Redis (a connection
 * takes longer only when Redis is away: cluster.c's connect timeout),
 * instead of every instance probing at once. */
#define CLHEALTH_START_MS        1000
/* A stored result outlives this many intervals. */
#define CLHEALTH_RESULT_INTERVALS 3
#define CLHEALTH_NUM_MAX         24     /* a number as text */
/* The lease script's answer when the caller holds the lease. */
#define CLHEALTH_WON             (-1)

/* Takes or renews the provider's lease. KEYS: lease key. ARGV: this
 * instance, lease ms. Returns -1 when the caller holds it, else the ms
 * left to its holder. */
static const char clhealth_lease_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or v == ARGV[1] then "
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "  return -1 "
    "end "
    "return redis.call('PTTL', KEYS[1])";

/* Stores a result and publishes it. KEYS: result key, channel. ARGV:
 * message, ms to keep it. */
static const char clhealth_publish_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return redis.call('PUBLISH', KEYS[2], ARGV[1])";

/* What a lease request or a stored result's read was about. malloc'd,
 * freed by its callback. */
struct clhealth_ask {
    int slot;                 /* health slot */
    int64_t held_ms;          /* the deferral it answers */
    uint64_t applied;         /* results applied when the read was sent */
};

static struct clhealth_ask *clhealth_ask_new(int slot, int64_t held,
                                             uint64_t applied)
{
    struct clhealth_ask *a = malloc(sizeof(*a));

    if (a == NULL)
        util_oom("a cluster health request");
    a->slot = slot;
    a->held_ms = held;
    a->applied = applied;
    return a;
}

/* The health slot of provider p, or -1 when it does not probe. */
static int clhealth_slot_of(const struct master *m, int p)
{
    int h = m->slots.health_slot[p];

    if (m->cfg->providers[p].health.interval_ms <= 0 || h < 0 ||
        h >= SHM_HEALTH_SLOTS)
        return -1;
    return h;
}

/* The record of health slot h, which provider p now has. A reload that
 * gave the slot to p from another provider starts it afresh: p's probe
 * counters start at 0 (none seen, so none published for p), nothing is
 * asked or applied for p yet. */
static struct clhealth_slot *clhealth_mine(struct cluster *c, int p, int h)
{
    struct clhealth_slot *cs = &c->health[h];
    const char *name = c->m->cfg->providers[p].name;

    if (strncmp(cs->provider, name, sizeof(cs->provider)) != 0) {
        if (cs->provider[0] != '\0')
            memset(cs, 0, sizeof(*cs));
        util_strlcpy(cs->provider, name, sizeof(cs->provider));
    }
    return cs;
}

static int clhealth_provider(const struct master *m, const char *name)
{
    for (int p = 0; p < m->cfg->provider_count; p++)
        if (strcmp(m->cfg->providers[p].name, name) == 0)
            return p;
    return -1;
}

static uint64_t clhealth_probes(const struct health_state *st)
{
    return atomic_load(&st->probes_ok) + atomic_load(&st->probes_failed);
}

static void clhealth_apply(struct cluster *c, const struct cwh_result *r)
{
    struct master *m = c->m;
    int p = clhealth_provider(m, r->provider);
    int h = p < 0 ? -1 : clhealth_slot_of(m, p);
    struct health_state *st;
    enum health_change change;

    if (h < 0)
        return;
    st = provhealth_at(&m->shm, h);
    shm_lock(&m->shm);
    change = health_apply_remote(st, r->state, r->consecutive_failures,
                                 r->consecutive_successes, util_now_ms());
    shm_unlock(&m->shm);
    clhealth_mine(c, p, h)->applied++;
    if (change != HEALTH_CHANGE_NONE)
        log_msg(&m->log, change == HEALTH_CHANGE_UNHEALTHY ? LOG_WARN
                                                           : LOG_INFO,
                NULL, "health of provider %s: %s (probed by instance %s)",
                r->provider, health_change_name(change), r->origin);
}

static void clhealth_reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = cluster_reply(c, r);

    (void)ac;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        cluster_refused(c, "a health command", reply->str);
}

/* Tells every instance what this one's probes of provider p found. */
static void clhealth_publish(struct cluster *c, int p, int h)
{
    struct master *m = c->m;
    const struct health_state *st = provhealth_at(&m->shm, h);
    struct cwh_result r = { 0 };
    char key[CW_KEY_MAX], text[CWH_MSG_MAX], ttl[CLHEALTH_NUM_MAX];

    shm_lock(&m->shm);
    r.state = st->state;
    r.consecutive_failures = st->consecutive_failures;
    r.consecutive_successes = st->consecutive_successes;
    shm_unlock(&m->shm);
    util_strlcpy(r.origin, c->instance, sizeof(r.origin));
    util_strlcpy(r.provider, m->cfg->providers[p].name, sizeof(r.provider));
    if (cwh_encode(text, sizeof(text), &r) < 0 ||
        cw_key(key, sizeof(key), c->prefix, "health", r.provider) < 0)
        return;
    snprintf(ttl, sizeof(ttl), "%lld",
             (long long)m->cfg->providers[p].health.interval_ms *
                 CLHEALTH_RESULT_INTERVALS);
    if (redisAsyncCommand(c->cmd, clhealth_reply_cb, c,
                          "EVAL %s 2 %s %s %s %s", clhealth_publish_lua, key,
                          c->channels[CLUSTER_PART_HEALTH], text,
                          ttl) == REDIS_OK)
        cluster_sent(c);
}

/* The lease's answer: probe here (the deadline goes back), or wait for
 * the holder's lease to end. No answer (the connection went): the
 * deadline goes back and the workers probe alone. */
static void clhealth_lease_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    struct clhealth_ask *a = priv;
    redisReply *reply = r;
    struct clhealth_slot *cs;
    struct health_state *st;
    int64_t now = util_now_ms();

    if (c == NULL || c->closing)
        goto out;
    cs = &c->health[a->slot];
    st = provhealth_at(&c->m->shm, a->slot);
    if (reply != NULL)
        cluster_answered(c);
    if (cs->held_ms != a->held_ms)
        goto out;               /* not the deferral now in force */
    cs->held_ms = 0;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer != CLHEALTH_WON && reply->integer > 0) {
        int64_t wait = now + reply->integer + CLHEALTH_AHEAD_MS;

        if (health_defer(st, a->held_ms, wait))
            cs->waiting_ms = wait;
    } else {
        health_defer(st, a->held_ms, cs->due_ms);
    }
out:
    free(a);
}

/* Asks for the lease of provider p (health slot h) whose round is due
 * at due, holding the round back meanwhile. */
static void clhealth_ask(struct cluster *c, int p, int h, int64_t due,
                         int64_t now)
{
    struct master *m = c->m;
    struct health_state *st = provhealth_at(&m->shm, h);
    struct clhealth_slot *cs = clhealth_mine(c, p, h);
    int64_t held = (due > now ? due : now) + CLHEALTH_HOLD_MS;
    char key[CW_KEY_MAX], ms[CLHEALTH_NUM_MAX];
    struct clhealth_ask *a;

    if (cw_key(key, sizeof(key), c->prefix, "healthlease",
               m->cfg->providers[p].name) < 0 ||
        !health_defer(st, due, held))
        return;                 /* a worker claimed it: probed here */
    cs->due_ms = due;
    cs->held_ms = held;
    cs->waiting_ms = 0;
    snprintf(ms, sizeof(ms), "%lld",
             (long long)m->cfg->providers[p].health.interval_ms +
                 CLHEALTH_HOLD_MS);
    a = clhealth_ask_new(h, held, 0);
    if (redisAsyncCommand(c->cmd, clhealth_lease_cb, a, "EVAL %s 1 %s %s %s",
                          clhealth_lease_lua, key, c->instance,
                          ms) != REDIS_OK) {
        free(a);
        cs->held_ms = 0;
        health_defer(st, held, due);
        return;
    }
    cluster_sent(c);
}

void clhealth_poll(struct cluster *c, int64_t now)
{
    struct master *m = c->m;

    for (int p = 0; p < m->cfg->provider_count && c->cmd != NULL; p++) {
        int h = clhealth_slot_of(m, p);
        struct health_state *st;
        struct clhealth_slot *cs;
        uint64_t probes;
        int64_t ahead, due;

        if (h < 0)
            continue;
        st = provhealth_at(&m->shm, h);
        cs = clhealth_mine(c, p, h);
        probes = clhealth_probes(st);
        if (probes != cs->seen_probes) {
            cs->seen_probes = probes;
            clhealth_publish(c, p, h);
        }
        if (cs->held_ms != 0)
            continue;           /* asked already */
        ahead = m->cfg->providers[p].health.interval_ms / 2;
        if (ahead > CLHEALTH_AHEAD_MS)
            ahead = CLHEALTH_AHEAD_MS;
        due = health_due_ms(st);
        if (due - now <= ahead)
            clhealth_ask(c, p, h, due, now);
    }
}

/* A stored result read at connection: applied unless a newer one came
 * on the channel meanwhile. */
static void clhealth_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    struct clhealth_ask *a = priv;
    redisReply *reply = r;
    struct cwh_result res;

    if (reply != NULL && c != NULL && !c->closing) {
        cluster_answered(c);
        if (reply->type == REDIS_REPLY_STRING &&
            c->health[a->slot].applied == a->applied &&
            cwh_decode(reply->str, reply->len, &res) == 0 &&
            strcmp(res.origin, c->instance) != 0)
            clhealth_apply(c, &res);
    }
    free(a);
}

void clhealth_up(struct cluster *c)
{
    struct master *m = c->m;

    for (int p = 0; p < m->cfg->provider_count; p++) {
        int h = clhealth_slot_of(m, p);
        struct clhealth_ask *a;
        char key[CW_KEY_MAX];

        /* Probed here while alone: clhealth_poll tells the others. */
        if (h < 0 || clhealth_probes(provhealth_at(&m->shm, h)) !=
                         clhealth_mine(c, p, h)->seen_probes ||
            cw_key(key, sizeof(key), c->prefix, "health",
                   m->cfg->providers[p].name) < 0)
            continue;
        a = clhealth_ask_new(h, 0, c->health[h].applied);
        if (redisAsyncCommand(c->cmd, clhealth_read_cb, a, "GET %s",
                              key) != REDIS_OK) {
            free(a);
            continue;
        }
        cluster_sent(c);
    }
}

void clhealth_start(struct cluster *c)
{
    struct master *m = c->m;
    int64_t start = util_now_ms() + CLHEALTH_START_MS;

    for (int p = 0; p < m->cfg->provider_count; p++) {
        int h = clhealth_slot_of(m, p);
        struct health_state *st;
        int64_t due;

        if (h < 0)
            continue;
        st = provhealth_at(&m->shm, h);
        due = health_due_ms(st);
        if (due < start)
            health_defer(st, due, start);
    }
}

void clhealth_down(struct cluster *c)
{
    struct master *m = c->m;
    int64_t now = util_now_ms();

    for (int h = 0; h < SHM_HEALTH_SLOTS; h++) {
        struct clhealth_slot *cs = &c->health[h];

        if (cs->waiting_ms != 0 && cs->waiting_ms > now)
            health_defer(provhealth_at(&m->shm, h), cs->waiting_ms, now);
        cs->waiting_ms = 0;
    }
}

void clhealth_message(struct cluster *c, const char *payload, size_t len)
{
    struct cwh_result r;

    if (cwh_decode(payload, len, &r) < 0) {
        log_msg(&c->m->log, LOG_DEBUG, NULL, "cluster: a malformed health "
                "message ignored");
        return;
    }
    if (strcmp(r.origin, c->instance) == 0)
        return;                 /* our own, back from Redis */
    clhealth_apply(c, &r);
}
