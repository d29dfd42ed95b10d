/* clbreaker.c - circuit breakers shared by target name in cluster mode
 * (clbreaker.h): finds openings the workers made in the shared segment
 * and publishes them (a key whose expiry is the open-until time, and a
 * message on the channel), applies other instances' openings and resets
 * to the segment under its lock, and on every (re)connection reads what
 * is stored and publishes what is open here. Called by cluster.c, which
 * owns the connections. */
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

/* Opens a breaker for everyone: the key keeps the longer of its expiry
 * and ours, the message goes out. KEYS: breaker key, channel. ARGV:
 * origin, remaining ms, message. */
static const char clbreaker_open_lua[] =
    "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then "
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "end "
    "return redis.call('PUBLISH', KEYS[2], ARGV[3])";

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
    int64_t now = util_now_ms();
    struct shm_target *st;
    bool changed;

    if (t < 0 || remaining_ms <= 0)
        return;
    st = master_target(m, t);
    shm_lock(&m->shm);
    changed = !(st->cb.state == CB_OPEN &&
                st->cb.open_until_ms + CLBREAKER_SAME_OPEN_MS >=
                    now + remaining_ms) &&
              cb_open_remote(&st->cb, &m->cfg->breaker, now,
                             now + remaining_ms);
    if (changed) {
        atomic_store(&st->state, SHM_BREAKER_OPEN);
        atomic_fetch_add(&st->transitions, 1);
        c->seen_opened[m->slots.target_slot[t]] = st->cb.opened_ms;
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
    shm_unlock(&m->shm);
    log_msg(&m->log, LOG_INFO, NULL, "breaker of %s reset by instance %s",
            name, origin);
}

static void clbreaker_reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = cluster_reply(c, r);

    (void)ac;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        log_msg(&c->m->log, LOG_WARN, NULL, "cluster: Redis refused a "
                "command: %s", reply->str);
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

void clbreaker_poll(struct cluster *c, int64_t now)
{
    (void)now;
    clbreaker_scan(c, false);
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

/* Just connected: learn what is open elsewhere, tell what is open here. */
void clbreaker_sync(struct cluster *c)
{
    struct master *m = c->m;

    for (int t = 0; t < m->cfg->target_count; t++) {
        char key[CW_KEY_MAX];
        char *name;

        if (cw_key(key, sizeof(key), c->prefix, "breaker",
                   m->cfg->targets[t].name) < 0)
            continue;
        name = strdup(m->cfg->targets[t].name);
        if (name == NULL)
            util_oom("a cluster breaker name");
        if (redisAsyncCommand(c->cmd, clbreaker_read_cb, name, "EVAL %s 1 %s",
                              clbreaker_read_lua, key) != REDIS_OK) {
            free(name);
            continue;
        }
        cluster_sent(c);
    }
    clbreaker_scan(c, true);
}

void clbreaker_reset(struct master *m, const char *name)
{
    struct cluster *c = m->cluster;
    struct cw_msg msg = { .kind = CW_RESET };
    char key[CW_KEY_MAX], text[CW_MSG_MAX];
    int t;

    if (c == NULL)
        return;
    t = clbreaker_target(m, name);
    if (t >= 0)
        c->seen_opened[m->slots.target_slot[t]] = 0;
    util_strlcpy(msg.origin, c->instance, sizeof(msg.origin));
    util_strlcpy(msg.name, name, sizeof(msg.name));
    if (c->state != CLUSTER_UP || cw_encode(text, sizeof(text), &msg) < 0 ||
        cw_key(key, sizeof(key), c->prefix, "breaker", name) < 0) {
        log_msg(&m->log, LOG_WARN, NULL, "cluster: Redis is not reachable: "
                "breaker of %s reset on this instance only", name);
        return;
    }
    if (redisAsyncCommand(c->cmd, clbreaker_reply_cb, c, "DEL %s",
                          key) == REDIS_OK)
        cluster_sent(c);
    if (redisAsyncCommand(c->cmd, clbreaker_reply_cb, c, "PUBLISH %s %s",
                          c->channels[CLUSTER_PART_BREAKERS], text) == REDIS_OK)
        cluster_sent(c);
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
    else
        clbreaker_apply_reset(c, msg.name, msg.origin);
}
