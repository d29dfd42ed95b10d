/* cluster.c - cluster mode (cluster.h): owns this instance's two Redis
 * connections (one for commands, one subscribed to the breaker channel),
 * both asynchronous on the master's event loop, and their state machine:
 *
 *   DOWN --retry timer--> CONNECTING --both ready--> UP
 *     ^                       |                       |
 *     +--- error, timeout ----+----- error, timeout --+
 *
 * A loss is logged once; attempts then follow cw_backoff_ms and are
 * logged at debug level only. A connect that takes longer than
 * CLUSTER_CONNECT_TIMEOUT_MS, or a command unanswered for
 * CLUSTER_REPLY_TIMEOUT_MS, counts as a loss: a slow Redis never holds
 * the loop, since nothing here waits.
 *
 * Breakers: workers change them in the shared segment; every
 * CLUSTER_POLL_MS the master looks for openings it has not seen and
 * publishes them (a key with the open-until time as its PX expiry, and a
 * message on the channel). Messages from other instances are applied to
 * the segment under its lock. On (re)connecting, the keys of every
 * target are read (so an instance that joins late learns what is open)
 * and what is open here is published. Redis down: each instance goes on
 * alone; an open breaker stays open. */
#include "cluster.h"

#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "clusterwire.h"
#include "master.h"

_Static_assert(CFG_TARGET_NAME_MAX <= CW_NAME_MAX,
               "a target name must fit a breaker message");

#define CLUSTER_POLL_MS            50     /* breaker scan and watchdog */
#define CLUSTER_HEARTBEAT_MS       1000   /* heartbeat and instance list */
#define CLUSTER_INSTANCE_TTL_MS    (3 * CLUSTER_HEARTBEAT_MS)
/* Names older than this leave the instance set (their keys are long
 * gone by then; the set only says which keys to look at). */
#define CLUSTER_FORGET_MS          (60 * 1000)
#define CLUSTER_CONNECT_TIMEOUT_MS 1000
#define CLUSTER_REPLY_TIMEOUT_MS   1000
#define CLUSTER_INSTANCES_MAX      64     /* kept from one listing */
#define CLUSTER_NUM_MAX            24     /* a number as text */
#define CLUSTER_ADDR_MAX           64     /* a numeric host address */
/* An opening that ends no more than this after the one a breaker has
 * already is that same one, back through Redis (its expiry rounds): not
 * applied again. */
#define CLUSTER_SAME_OPEN_MS       1000

enum cluster_state {
    CLUSTER_DOWN = 0,          /* no connection; the retry timer runs */
    CLUSTER_CONNECTING,        /* connections made, not both ready */
    CLUSTER_UP                 /* both ready: shared state flows */
};

struct cluster {
    struct master *m;
    enum cluster_state state;
    char addr[CLUSTER_ADDR_MAX];    /* numeric, resolved once at start */
    int port;                       /* 0: addr is... unused (Unix) */
    char *path;                     /* Unix socket, or NULL */
    char *password;                 /* from password_env; never logged */
    char instance[CW_INSTANCE_MAX + 1];
    char host[CW_INSTANCE_MAX + 1];
    char channel[CW_KEY_MAX];
    char set_key[CW_KEY_MAX];       /* PREFIXinstances (sorted set) */
    char self_key[CW_KEY_MAX];      /* PREFIXinstance:NAME */
    char instance_base[CW_KEY_MAX]; /* PREFIXinstance: */
    char *prefix;
    redisAsyncContext *cmd;         /* commands; owned */
    redisAsyncContext *sub;         /* subscribed to channel; owned */
    bool cmd_ready, sub_ready;
    bool lost_logged;               /* the loss was logged, not yet back */
    bool ever_up;
    bool closing;                   /* cluster_free: callbacks do nothing */
    unsigned attempt;               /* reconnects since the loss */
    int64_t connect_started_ms;
    int pending;                    /* commands sent, not answered */
    int64_t progress_ms;            /* last reply, or first send */
    int64_t next_heartbeat_ms;
    struct event *retry_timer;
    struct event *poll_timer;
    /* Per target slot: opened_ms of the last opening published or
     * applied, so each is published once. */
    int64_t seen_opened[SHM_TARGET_SLOTS];
    struct cw_instance instances[CLUSTER_INSTANCES_MAX];
    int instance_count;             /* from the last listing */
};

/* Sets the self key, keeps the instance set, returns every live record.
 * KEYS: self key, set. ARGV: record, ttl, now, name, forget-before,
 * instance key base. */
static const char cluster_heartbeat_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5]) "
    "local out = {} "
    "for _, n in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do "
    "  local v = redis.call('GET', ARGV[6] .. n) "
    "  if v then out[#out + 1] = v end "
    "end "
    "return out";

/* Opens a breaker for everyone: the key keeps the longer of its expiry
 * and ours, the message goes out. KEYS: breaker key, channel. ARGV:
 * origin, remaining ms, message. */
static const char cluster_open_lua[] =
    "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then "
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "end "
    "return redis.call('PUBLISH', KEYS[2], ARGV[3])";

/* An open breaker's key: who opened it and the ms left. KEYS: the key. */
static const char cluster_read_lua[] =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

static void cluster_connect(struct cluster *c);

static struct cluster *cluster_of(const struct master *m)
{
    return m->cluster;
}

/* Frees a context without its callbacks acting on it: the pointer is
 * dropped first, so its connect and disconnect callbacks find it is not
 * current, and hiredis hands every reply callback still pending a NULL
 * reply (at once, or right after the callback that dropped it): a real
 * reply only ever comes from a current context. */
static void cluster_drop(redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;

    *slot = NULL;
    if (ac != NULL)
        redisAsyncFree(ac);
}

/* Any failure: both connections go, the retry timer is armed. The first
 * loss (or the first failure to connect) is logged once. */
static void cluster_down(struct cluster *c, const char *why)
{
    struct timeval tv;
    int64_t wait;

    if (c->closing)
        return;
    cluster_drop(&c->cmd);
    cluster_drop(&c->sub);
    c->cmd_ready = c->sub_ready = false;
    c->pending = 0;
    if (!c->lost_logged) {
        c->lost_logged = true;
        if (c->ever_up)
            log_msg(&c->m->log, LOG_WARN, NULL, "cluster: lost Redis at "
                    "%s (%s): going on alone, reconnecting",
                    c->m->cfg->cluster.redis, why);
        else
            log_msg(&c->m->log, LOG_WARN, NULL, "cluster: cannot reach "
                    "Redis at %s (%s): going on alone, retrying",
                    c->m->cfg->cluster.redis, why);
    } else {
        log_msg(&c->m->log, LOG_DEBUG, NULL, "cluster: Redis at %s: %s",
                c->m->cfg->cluster.redis, why);
    }
    if (c->state == CLUSTER_DOWN && evtimer_pending(c->retry_timer, NULL))
        return;
    c->state = CLUSTER_DOWN;
    wait = cw_backoff_ms(c->attempt);
    if (c->attempt < UINT32_MAX)
        c->attempt++;
    tv = util_ms_to_tv(wait);
    evtimer_add(c->retry_timer, &tv);
}

static void cluster_sent(struct cluster *c)
{
    if (c->pending++ == 0)
        c->progress_ms = util_now_ms();
}

static void cluster_answered(struct cluster *c)
{
    if (c->pending > 0)
        c->pending--;
    c->progress_ms = util_now_ms();
}

/* ---- breakers ---- */

/* The target of this configuration named name, or -1. */
static int cluster_target(const struct master *m, const char *name)
{
    return cfg_find_target(m->cfg, name);
}

static void cluster_apply_open(struct cluster *c, const char *name,
                               int64_t remaining_ms, const char *origin)
{
    struct master *m = c->m;
    int t = cluster_target(m, name);
    int64_t now = util_now_ms();
    struct shm_target *st;
    bool changed;

    if (t < 0 || remaining_ms <= 0)
        return;
    st = master_target(m, t);
    shm_lock(&m->shm);
    changed = !(st->cb.state == CB_OPEN &&
                st->cb.open_until_ms + CLUSTER_SAME_OPEN_MS >=
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

static void cluster_apply_reset(struct cluster *c, const char *name,
                                const char *origin)
{
    struct master *m = c->m;
    int t = cluster_target(m, name);
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

static void cluster_reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = r;

    (void)ac;
    if (reply == NULL || c->closing)
        return;
    cluster_answered(c);
    if (reply->type == REDIS_REPLY_ERROR)
        log_msg(&c->m->log, LOG_WARN, NULL, "cluster: Redis refused a "
                "command: %s", reply->str);
}

static void cluster_publish_open(struct cluster *c, const char *name,
                                 int64_t remaining_ms)
{
    struct cw_msg msg = { .kind = CW_OPEN, .remaining_ms = remaining_ms };
    char key[CW_KEY_MAX], text[CW_MSG_MAX], ms[CLUSTER_NUM_MAX];

    util_strlcpy(msg.origin, c->instance, sizeof(msg.origin));
    util_strlcpy(msg.name, name, sizeof(msg.name));
    if (c->cmd == NULL || cw_encode(text, sizeof(text), &msg) < 0 ||
        cw_key(key, sizeof(key), c->prefix, "breaker", name) < 0)
        return;
    snprintf(ms, sizeof(ms), "%lld", (long long)remaining_ms);
    if (redisAsyncCommand(c->cmd, cluster_reply_cb, c,
                          "EVAL %s 2 %s %s %s %s %s", cluster_open_lua, key,
                          c->channel, c->instance, ms, text) == REDIS_OK)
        cluster_sent(c);
}

/* Openings here that are not published yet (all of them, when fresh is
 * set: just connected). */
static void cluster_scan_breakers(struct cluster *c, bool fresh)
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
        cluster_publish_open(c, m->cfg->targets[found[i]].name,
                             remaining[i]);
}

/* The reply to cluster_read_lua for one breaker key: open it here for
 * what is left, naming the instance that opened it. priv is the
 * target's name (malloc'd, freed here). */
static void cluster_read_cb(redisAsyncContext *ac, void *r, void *priv)
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
                cluster_apply_open(c, name, left->integer, who->str);
        }
    }
    free(name);
}

/* Just connected: learn what is open elsewhere, tell what is open here. */
static void cluster_sync_breakers(struct cluster *c)
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
        if (redisAsyncCommand(c->cmd, cluster_read_cb, name, "EVAL %s 1 %s",
                              cluster_read_lua, key) != REDIS_OK) {
            free(name);
            continue;
        }
        cluster_sent(c);
    }
    cluster_scan_breakers(c, true);
}

void cluster_breaker_reset(struct master *m, const char *name)
{
    struct cluster *c = cluster_of(m);
    struct cw_msg msg = { .kind = CW_RESET };
    char key[CW_KEY_MAX], text[CW_MSG_MAX];
    int t;

    if (c == NULL)
        return;
    t = cluster_target(m, name);
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
    if (redisAsyncCommand(c->cmd, cluster_reply_cb, c, "DEL %s",
                          key) == REDIS_OK)
        cluster_sent(c);
    if (redisAsyncCommand(c->cmd, cluster_reply_cb, c, "PUBLISH %s %s",
                          c->channel, text) == REDIS_OK)
        cluster_sent(c);
}

/* ---- instances ---- */

static int cluster_instance_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cw_instance *)a)->instance,
                  ((const struct cw_instance *)b)->instance);
}

static void cluster_self(const struct cluster *c, struct cw_instance *in)
{
    memset(in, 0, sizeof(*in));
    util_strlcpy(in->instance, c->instance, sizeof(in->instance));
    util_strlcpy(in->host, c->host, sizeof(in->host));
    util_strlcpy(in->listen, c->m->cfg->listen, sizeof(in->listen));
    in->pid = getpid();
    in->last_seen_ms = util_wall_ms();
    in->requests = (int64_t)atomic_load(&c->m->shm.hdr->counters.total);
}

static void cluster_heartbeat_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = r;
    int n = 0;

    (void)ac;
    if (reply == NULL || c->closing)
        return;
    cluster_answered(c);
    if (reply->type != REDIS_REPLY_ARRAY) {
        if (reply->type == REDIS_REPLY_ERROR)
            log_msg(&c->m->log, LOG_WARN, NULL, "cluster: heartbeat "
                    "refused: %s", reply->str);
        return;
    }
    for (size_t i = 0; i < reply->elements && n < CLUSTER_INSTANCES_MAX;
         i++) {
        const redisReply *e = reply->element[i];

        if (e->type == REDIS_REPLY_STRING &&
            cw_instance_decode(e->str, e->len, &c->instances[n]) == 0)
            n++;
    }
    qsort(c->instances, (size_t)n, sizeof(c->instances[0]),
          cluster_instance_cmp);
    c->instance_count = n;
}

static void cluster_heartbeat(struct cluster *c)
{
    struct cw_instance self;
    char ttl[CLUSTER_NUM_MAX], now[CLUSTER_NUM_MAX], forget[CLUSTER_NUM_MAX];
    char *record;

    cluster_self(c, &self);
    record = cw_instance_encode(&self);
    if (record == NULL)
        util_oom("a cluster heartbeat");
    snprintf(ttl, sizeof(ttl), "%d", CLUSTER_INSTANCE_TTL_MS);
    snprintf(now, sizeof(now), "%lld", (long long)self.last_seen_ms);
    snprintf(forget, sizeof(forget), "%lld",
             (long long)(self.last_seen_ms - CLUSTER_FORGET_MS));
    if (redisAsyncCommand(c->cmd, cluster_heartbeat_cb, c,
                          "EVAL %s 2 %s %s %s %s %s %s %s %s",
                          cluster_heartbeat_lua, c->self_key, c->set_key,
                          record, ttl, now, c->instance, forget,
                          c->instance_base) == REDIS_OK)
        cluster_sent(c);
    free(record);
}

/* ---- connections ---- */

static void cluster_ready(struct cluster *c)
{
    if (!c->cmd_ready || !c->sub_ready || c->state == CLUSTER_UP)
        return;
    c->state = CLUSTER_UP;
    c->attempt = 0;
    if (c->lost_logged || !c->ever_up)
        log_msg(&c->m->log, LOG_INFO, NULL, "cluster: %s Redis at %s as "
                "instance %s", c->ever_up ? "reconnected to" : "connected to",
                c->m->cfg->cluster.redis, c->instance);
    c->lost_logged = false;
    c->ever_up = true;
    cluster_sync_breakers(c);
    cluster_heartbeat(c);
    c->next_heartbeat_ms = util_now_ms() + CLUSTER_HEARTBEAT_MS;
}

/* AUTH's answer, on either connection. */
static void cluster_auth_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = r;

    (void)ac;
    if (reply == NULL || c->closing)
        return;
    cluster_answered(c);
    if (reply->type == REDIS_REPLY_ERROR)
        cluster_down(c, "AUTH refused");
}

static void cluster_ping_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = r;

    (void)ac;
    if (reply == NULL || c->closing)
        return;
    cluster_answered(c);
    if (reply->type == REDIS_REPLY_ERROR) {
        cluster_down(c, reply->str);
        return;
    }
    c->cmd_ready = true;
    cluster_ready(c);
}

/* Every reply of the subscribed connection: the confirmation, then the
 * messages. */
static void cluster_sub_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = r;
    struct cw_msg msg;
    const redisReply *kind, *payload;

    (void)ac;
    if (reply == NULL || c->closing)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        cluster_down(c, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    kind = reply->element[0];
    payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "subscribe") == 0) {
        cluster_answered(c);
        c->sub_ready = true;
        cluster_ready(c);
        return;
    }
    if (strcmp(kind->str, "message") != 0 ||
        payload->type != REDIS_REPLY_STRING)
        return;
    if (cw_decode(payload->str, payload->len, &msg) < 0) {
        log_msg(&c->m->log, LOG_DEBUG, NULL, "cluster: a malformed breaker "
                "message ignored");
        return;
    }
    if (strcmp(msg.origin, c->instance) == 0)
        return;                 /* our own, back from Redis */
    if (msg.kind == CW_OPEN)
        cluster_apply_open(c, msg.name, msg.remaining_ms, msg.origin);
    else
        cluster_apply_reset(c, msg.name, msg.origin);
}

static void cluster_connect_cb(const redisAsyncContext *ac, int status)
{
    struct cluster *c = ac->data;

    if (c == NULL || c->closing || status == REDIS_OK)
        return;
    /* hiredis frees a context whose connect failed. */
    if (ac == c->cmd)
        c->cmd = NULL;
    else if (ac == c->sub)
        c->sub = NULL;
    else
        return;
    cluster_down(c, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void cluster_disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct cluster *c = ac->data;

    (void)status;
    if (c == NULL || c->closing)
        return;
    /* hiredis frees it after this. */
    if (ac == c->cmd)
        c->cmd = NULL;
    else if (ac == c->sub)
        c->sub = NULL;
    else
        return;             /* one we dropped ourselves */
    cluster_down(c, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* One connection, attached to the loop, AUTH queued first. NULL when it
 * cannot even start (then logged by the caller through cluster_down). */
static redisAsyncContext *cluster_open(struct cluster *c)
{
    redisAsyncContext *ac = c->path != NULL
                                ? redisAsyncConnectUnix(c->path)
                                : redisAsyncConnect(c->addr, c->port);

    if (ac == NULL)
        return NULL;
    if (ac->err) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = c;
    if (redisLibeventAttach(ac, c->m->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, cluster_connect_cb);
    redisAsyncSetDisconnectCallback(ac, cluster_disconnect_cb);
    if (c->password != NULL &&
        redisAsyncCommand(ac, cluster_auth_cb, c, "AUTH %s",
                          c->password) == REDIS_OK)
        cluster_sent(c);
    return ac;
}

static void cluster_connect(struct cluster *c)
{
    c->state = CLUSTER_CONNECTING;
    c->connect_started_ms = util_now_ms();
    c->cmd_ready = c->sub_ready = false;
    c->cmd = cluster_open(c);
    c->sub = c->cmd != NULL ? cluster_open(c) : NULL;
    if (c->cmd == NULL || c->sub == NULL) {
        cluster_down(c, "cannot open a connection");
        return;
    }
    if (redisAsyncCommand(c->cmd, cluster_ping_cb, c, "PING") == REDIS_OK)
        cluster_sent(c);
    if (redisAsyncCommand(c->sub, cluster_sub_cb, c, "SUBSCRIBE %s",
                          c->channel) == REDIS_OK)
        cluster_sent(c);
}

static void cluster_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cluster_connect(arg);
}

/* Every CLUSTER_POLL_MS: the watchdog, openings to publish, the
 * heartbeat when due. */
static void cluster_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct cluster *c = arg;
    int64_t now = util_now_ms();

    (void)fd;
    (void)what;
    if (c->state == CLUSTER_CONNECTING &&
        now - c->connect_started_ms > CLUSTER_CONNECT_TIMEOUT_MS) {
        cluster_down(c, "connect timed out");
        return;
    }
    if (c->state != CLUSTER_UP)
        return;
    if (c->pending > 0 && now - c->progress_ms > CLUSTER_REPLY_TIMEOUT_MS) {
        cluster_down(c, "no answer in time");
        return;
    }
    cluster_scan_breakers(c, false);
    if (c->cmd != NULL && now >= c->next_heartbeat_ms) {
        cluster_heartbeat(c);
        c->next_heartbeat_ms = now + CLUSTER_HEARTBEAT_MS;
    }
}

/* The host as a numeric address, once, at start: hiredis would resolve a
 * name on every reconnect, blocking the loop. */
static int cluster_resolve(struct cluster *c, const char *host)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);

    if (rc != 0 || res == NULL) {
        log_msg(&c->m->log, LOG_ERROR, NULL, "cluster: cannot resolve %s: "
                "%s", host, gai_strerror(rc));
        return -1;
    }
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, c->addr,
                     sizeof(c->addr), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    return rc == 0 ? 0 : -1;
}

static int cluster_names(struct cluster *c, const struct cfg_cluster *cc)
{
    char host[HOST_NAME_MAX + 1] = "localhost";

    if (gethostname(host, sizeof(host)) < 0)
        util_strlcpy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    util_strlcpy(c->host, host, sizeof(c->host));
    if (cc->instance != NULL)
        util_strlcpy(c->instance, cc->instance, sizeof(c->instance));
    else
        snprintf(c->instance, sizeof(c->instance), "%.40s:%ld", c->host,
                 (long)getpid());
    /* A host name with other characters makes a name the channel would
     * refuse: keep only the allowed ones. */
    for (char *p = c->instance; *p; p++)
        if (!cw_instance_ok((char[]){ *p, '\0' }))
            *p = '_';
    c->prefix = strdup(cc->key_prefix);
    if (c->prefix == NULL)
        util_oom("the cluster key prefix");
    if (cw_channel(c->channel, sizeof(c->channel), c->prefix) < 0 ||
        cw_key(c->self_key, sizeof(c->self_key), c->prefix, "instance",
               c->instance) < 0 ||
        cw_key(c->instance_base, sizeof(c->instance_base), c->prefix,
               "instance", "") < 0)
        return -1;
    snprintf(c->set_key, sizeof(c->set_key), "%sinstances", c->prefix);
    return 0;
}

int cluster_init(struct master *m)
{
    const struct cfg_cluster *cc = &m->cfg->cluster;
    struct timeval poll = util_ms_to_tv(CLUSTER_POLL_MS);
    struct cluster *c;

    if (!cc->configured)
        return 0;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        util_oom("the cluster state");
    c->m = m;
    m->cluster = c;
    if (cc->password_env != NULL) {
        const char *pw = getenv(cc->password_env);

        if (pw == NULL || pw[0] == '\0') {
            log_msg(&m->log, LOG_ERROR, NULL, "cluster.password_env: %s is "
                    "not set", cc->password_env);
            return -1;
        }
        c->password = strdup(pw);
        if (c->password == NULL)
            util_oom("the Redis password");
    }
    if (cc->port == 0) {
        c->path = strdup(cc->host);
        if (c->path == NULL)
            util_oom("the Redis socket path");
    } else if (cluster_resolve(c, cc->host) < 0) {
        return -1;
    }
    c->port = cc->port;
    if (cluster_names(c, cc) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "cluster: key names too long");
        return -1;
    }
    c->retry_timer = evtimer_new(m->base, cluster_retry_cb, c);
    c->poll_timer = event_new(m->base, -1, EV_PERSIST, cluster_poll_cb, c);
    if (c->retry_timer == NULL || c->poll_timer == NULL ||
        evtimer_add(c->poll_timer, &poll) < 0)
        return -1;
    cluster_connect(c);
    return 0;
}

void cluster_free(struct master *m)
{
    struct cluster *c = cluster_of(m);

    if (c == NULL)
        return;
    c->closing = true;
    cluster_drop(&c->cmd);
    cluster_drop(&c->sub);
    if (c->retry_timer != NULL)
        event_free(c->retry_timer);
    if (c->poll_timer != NULL)
        event_free(c->poll_timer);
    if (c->password != NULL) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->path);
    free(c->prefix);
    free(c);
    m->cluster = NULL;
}

/* ---- what the operator sees ---- */

bool cluster_configured(const struct master *m)
{
    return cluster_of(m) != NULL;
}

bool cluster_connected(const struct master *m)
{
    const struct cluster *c = cluster_of(m);

    return c != NULL && c->state == CLUSTER_UP;
}

/* This instance and the others of the last listing. */
int cluster_instances(const struct master *m)
{
    const struct cluster *c = cluster_of(m);
    int n = 1;

    if (c == NULL)
        return 0;
    for (int i = 0; i < c->instance_count; i++)
        if (strcmp(c->instances[i].instance, c->instance) != 0)
            n++;
    return n;
}

json_object *cluster_stats(struct master *m)
{
    json_object *o;

    if (!cluster_configured(m))
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "connected",
                           json_object_new_boolean(cluster_connected(m)));
    json_object_object_add(o, "instances",
                           json_object_new_int(cluster_instances(m)));
    return o;
}

static json_object *cluster_instance_json(const struct cw_instance *in)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "instance",
                           json_object_new_string(in->instance));
    json_object_object_add(o, "pid", json_object_new_int64(in->pid));
    json_object_object_add(o, "host", json_object_new_string(in->host));
    json_object_object_add(o, "listen", json_object_new_string(in->listen));
    json_object_object_add(o, "last_seen_ms",
                           json_object_new_int64(in->last_seen_ms));
    json_object_object_add(o, "requests",
                           json_object_new_int64(in->requests));
    return o;
}

char *cluster_instances_json(struct master *m)
{
    struct cluster *c = cluster_of(m);
    json_object *root, *list;
    struct cw_instance self;
    bool self_done = false;
    char *s;

    if (c == NULL)
        return NULL;
    root = json_object_new_object();
    list = json_object_new_array();
    cluster_self(c, &self);
    /* Sorted by name; this instance as it is now. */
    for (int i = 0; i <= c->instance_count; i++) {
        const struct cw_instance *in = i < c->instance_count
                                           ? &c->instances[i] : NULL;

        if (in != NULL && strcmp(in->instance, c->instance) == 0)
            continue;
        if (!self_done && (in == NULL ||
                           strcmp(c->instance, in->instance) < 0)) {
            json_object_array_add(list, cluster_instance_json(&self));
            self_done = true;
        }
        if (in != NULL)
            json_object_array_add(list, cluster_instance_json(in));
    }
    json_object_object_add(root, "instances", list);
    s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return s;
}
