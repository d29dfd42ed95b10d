/* cluster.c - cluster mode (cluster.h): owns this instance's two Redis
 * connections (one for commands, one subscribed to the parts' channels),
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
 * Also the heartbeat (every CLUSTER_HEARTBEAT_MS: this instance's key,
 * and the list of all) and what the operator sees (stats, /metrics,
 * `pipelinectl cluster`). The shared state itself is the parts' (the
 * table cluster_parts: clbreaker.c for the breakers): this module calls
 * each part every CLUSTER_POLL_MS, on each UP, for each message on its
 * channel and on each loss. Redis down: each instance goes on alone; an
 * open breaker stays open. */
#include "cluster.h"

#include <arpa/inet.h>
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

#include "clbreaker.h"
#include "clbudget.h"
#include "clhealth.h"
#include "cloauth.h"
#include "cluster_int.h"

#define CLUSTER_POLL_MS            50     /* breaker scan and watchdog */
#define CLUSTER_HEARTBEAT_MS       1000   /* heartbeat and instance list */
#define CLUSTER_INSTANCE_TTL_MS    (3 * CLUSTER_HEARTBEAT_MS)
/* Names older than this leave the instance set (their keys are long
 * gone by then; the set only says which keys to look at). */
#define CLUSTER_FORGET_MS          (60 * 1000)
#define CLUSTER_CONNECT_TIMEOUT_MS 1000
#define CLUSTER_REPLY_TIMEOUT_MS   1000
#define CLUSTER_NUM_MAX            24     /* a number as text */
#define CLUSTER_REASON_MAX         320    /* "cannot resolve NAME: why" */
/* Sets the self key, keeps the instance set (which expires, as every
 * key, once no instance has renewed it for CLUSTER_FORGET_MS), returns
 * the self key's value before the SET ("" if none: another daemon
 * configured with this instance name shows there) and then every live
 * record. KEYS: self key, set. ARGV: record, ttl, now, name,
 * forget-before, instance key base, forget ms. */
static const char cluster_heartbeat_lua[] =
    "local prev = redis.call('GET', KEYS[1]) "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5]) "
    "redis.call('PEXPIRE', KEYS[2], ARGV[7]) "
    "local out = {prev or ''} "
    "for _, n in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do "
    "  local v = redis.call('GET', ARGV[6] .. n) "
    "  if v then out[#out + 1] = v end "
    "end "
    "return out";

/* The parts of the shared state, indexed by enum cluster_part_id. */
static const struct cluster_part cluster_parts[CLUSTER_PARTS] = {
    [CLUSTER_PART_BREAKERS] = { "breakers", clbreaker_sync, clbreaker_poll,
                                clbreaker_message, NULL },
    [CLUSTER_PART_BUDGETS] = { "budgets", clbudget_up, clbudget_poll, NULL,
                               clbudget_down },
    [CLUSTER_PART_HEALTH] = { "health", clhealth_up, clhealth_poll,
                              clhealth_message, clhealth_down },
    [CLUSTER_PART_OAUTH] = { "oauth", cloauth_sync, cloauth_poll,
                             cloauth_message, NULL },
};

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

/* A host name lookup under way is dropped: its callback is told, at
 * once, that it was cancelled. */
static void cluster_cancel_lookup(struct cluster *c)
{
    struct evdns_getaddrinfo_request *req = c->dns_req;

    c->dns_req = NULL;
    if (req != NULL)
        evdns_getaddrinfo_cancel(req);
}

/* Any failure: both connections go, the retry timer is armed. The first
 * loss (or the first failure to connect) is logged once. */
static void cluster_down(struct cluster *c, const char *why)
{
    struct timeval tv;
    int64_t wait;

    if (c->closing)
        return;
    cluster_cancel_lookup(c);
    cluster_drop(&c->cmd);
    cluster_drop(&c->sub);
    if (c->state == CLUSTER_UP)
        for (int p = 0; p < CLUSTER_PARTS; p++)
            if (cluster_parts[p].down != NULL)
                cluster_parts[p].down(c);
    c->cmd_ready = c->sub_ready = false;
    c->subscribed = 0;
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

/* The self key held another daemon's record: two instances were given
 * the same name, and every key of theirs (breakers, leases, probes) is
 * now one. Not on the first heartbeat after a connection, which may
 * still find the record of this instance's previous run. Logged once. */
static void cluster_same_name(struct cluster *c, const redisReply *prev)
{
    struct cw_instance other;
    bool first = !c->beaten;

    c->beaten = true;
    if (first || c->same_name_logged ||
        prev->type != REDIS_REPLY_STRING || prev->len == 0 ||
        cw_instance_decode(prev->str, prev->len, &other) < 0)
        return;
    if (other.pid == (int64_t)getpid() && strcmp(other.host, c->host) == 0 &&
        strcmp(other.listen, c->m->cfg->listen) == 0)
        return;
    c->same_name_logged = true;
    log_msg(&c->m->log, LOG_ERROR, NULL, "cluster: instance name %s is "
            "also used by the daemon on %s (pid %lld, listening on %s): "
            "the two share one record, one set of leases and probes; give "
            "each its own cluster.instance", c->instance, other.host,
            (long long)other.pid, other.listen);
}

static void cluster_heartbeat_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = cluster_reply(c, r);
    int n = 0;

    (void)ac;
    if (reply == NULL)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        if (reply->type == REDIS_REPLY_ERROR)
            cluster_refused(c, "the heartbeat", reply->str);
        return;
    }
    cluster_same_name(c, reply->element[0]);
    for (size_t i = 1; i < reply->elements && n < CLUSTER_INSTANCES_MAX;
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
                          "EVAL %s 2 %s %s %s %s %s %s %s %s %d",
                          cluster_heartbeat_lua, c->self_key, c->set_key,
                          record, ttl, now, c->instance, forget,
                          c->instance_base, CLUSTER_FORGET_MS) == REDIS_OK)
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
    c->refused_logged = false;
    c->ever_up = true;
    c->beaten = false;
    for (int p = 0; p < CLUSTER_PARTS; p++)
        if (cluster_parts[p].up != NULL)
            cluster_parts[p].up(c);
    cluster_heartbeat(c);
    c->next_heartbeat_ms = util_now_ms() + CLUSTER_HEARTBEAT_MS;
}

/* AUTH's answer, on either connection. */
static void cluster_auth_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = cluster_reply(c, r);

    (void)ac;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        cluster_down(c, "AUTH refused");
}

static void cluster_ping_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = priv;
    redisReply *reply = cluster_reply(c, r);

    (void)ac;
    if (reply == NULL)
        return;
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
        if (++c->subscribed == CLUSTER_PARTS) {
            c->sub_ready = true;
            cluster_ready(c);
        }
        return;
    }
    if (strcmp(kind->str, "message") != 0 ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        payload->type != REDIS_REPLY_STRING)
        return;
    for (int p = 0; p < CLUSTER_PARTS; p++)
        if (strcmp(reply->element[1]->str, c->channels[p]) == 0) {
            if (cluster_parts[p].message != NULL)
                cluster_parts[p].message(c, payload->str, payload->len);
            return;
        }
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

/* Both connections, to c->addr (numeric) or c->path. */
static void cluster_open_both(struct cluster *c)
{
    c->cmd = cluster_open(c);
    c->sub = c->cmd != NULL ? cluster_open(c) : NULL;
    if (c->cmd == NULL || c->sub == NULL) {
        cluster_down(c, "cannot open a connection");
        return;
    }
    if (redisAsyncCommand(c->cmd, cluster_ping_cb, c, "PING") == REDIS_OK)
        cluster_sent(c);
    /* One command per channel: each is confirmed by its own reply. */
    for (int p = 0; p < CLUSTER_PARTS; p++)
        if (redisAsyncCommand(c->sub, cluster_sub_cb, c, "SUBSCRIBE %s",
                              c->channels[p]) == REDIS_OK)
            cluster_sent(c);
}

/* The host name's addresses (evdns): the first one, made numeric, is
 * where both connections go. A cancelled lookup (cluster_down, or
 * cluster_free) changes nothing. */
static void cluster_resolved_cb(int err, struct evutil_addrinfo *res,
                                void *arg)
{
    struct cluster *c = arg;
    const char *failed = NULL;
    int rc;

    c->lookups--;
    if (err == EVUTIL_EAI_CANCEL) {   /* dns_req was cleared then */
        if (res != NULL)
            evutil_freeaddrinfo(res);
        return;
    }
    c->dns_req = NULL;
    if (err != 0 || res == NULL)
        failed = evutil_gai_strerror(err != 0 ? err : EVUTIL_EAI_NONAME);
    else if ((rc = getnameinfo(res->ai_addr, res->ai_addrlen, c->addr,
                               sizeof(c->addr), NULL, 0,
                               NI_NUMERICHOST)) != 0)
        failed = gai_strerror(rc);
    if (res != NULL)
        evutil_freeaddrinfo(res);
    if (failed != NULL) {
        char why[CLUSTER_REASON_MAX];

        snprintf(why, sizeof(why), "cannot resolve %s: %s", c->hostname,
                 failed);
        cluster_down(c, why);
        return;
    }
    cluster_open_both(c);
}

/* A connection attempt: a host name is looked up first, on every attempt
 * (asynchronously: the loop never waits for DNS, and a Redis that moves
 * to another address is found at the next reconnection). */
static void cluster_connect(struct cluster *c)
{
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC,
                                     .ai_socktype = SOCK_STREAM };
    struct evdns_getaddrinfo_request *req;

    c->state = CLUSTER_CONNECTING;
    c->connect_started_ms = util_now_ms();
    c->cmd_ready = c->sub_ready = false;
    if (c->dns == NULL) {
        cluster_open_both(c);
        return;
    }
    /* The answer may come at once, before the call returns NULL: then
     * there is no request to keep. */
    c->lookups++;
    req = evdns_getaddrinfo(c->dns, c->hostname, NULL, &hints,
                            cluster_resolved_cb, c);
    if (req != NULL)
        c->dns_req = req;
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
    for (int p = 0; p < CLUSTER_PARTS && c->state == CLUSTER_UP; p++)
        if (cluster_parts[p].poll != NULL)
            cluster_parts[p].poll(c, now);
    if (c->state == CLUSTER_UP && c->cmd != NULL && now >= c->next_heartbeat_ms) {
        cluster_heartbeat(c);
        c->next_heartbeat_ms = now + CLUSTER_HEARTBEAT_MS;
    }
}

/* A numeric host is used as it is; a name is looked up by evdns at each
 * connection attempt (cluster_connect), never by hiredis, which would
 * block the loop on it. -1 when name resolution cannot be set up. */
static int cluster_resolve(struct cluster *c, const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (inet_pton(AF_INET, host, &a4) == 1 ||
        inet_pton(AF_INET6, host, &a6) == 1) {
        util_strlcpy(c->addr, host, sizeof(c->addr));
        return 0;
    }
    c->hostname = strdup(host);
    if (c->hostname == NULL)
        util_oom("the Redis host name");
    c->dns = evdns_base_new(c->m->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (c->dns == NULL) {
        log_msg(&c->m->log, LOG_ERROR, NULL, "cluster: cannot set up name "
                "resolution for %s", host);
        return -1;
    }
    return 0;
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
    for (int p = 0; p < CLUSTER_PARTS; p++)
        if (cw_channel(c->channels[p], sizeof(c->channels[p]), c->prefix,
                       cluster_parts[p].name) < 0)
            return -1;
    if (cw_key(c->self_key, sizeof(c->self_key), c->prefix, "instance",
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
    clhealth_start(c);
    cluster_connect(c);
    return 0;
}

/* libevent ends a lookup, even a cancelled one, only from its loop (a
 * deferred callback frees it), and cluster_free runs when the loop is
 * over for good: at exit, or in a freshly forked worker. With a lookup
 * still out, the resolver is left as it is, kept reachable here, once
 * per process: freeing it would have that callback touch freed memory
 * if it ever ran, and its request is lost either way. */
static struct evdns_base *volatile cluster_dns_left; /* never read */

static void cluster_dns_free(struct cluster *c)
{
    if (c->dns == NULL)
        return;
    if (c->lookups == 0)
        evdns_base_free(c->dns, 0);
    else
        cluster_dns_left = c->dns;
    c->dns = NULL;
    c->dns_req = NULL;
}

void cluster_free(struct master *m)
{
    struct cluster *c = cluster_of(m);

    if (c == NULL)
        return;
    c->closing = true;
    cluster_dns_free(c);
    free(c->hostname);
    cluster_drop(&c->cmd);
    cluster_drop(&c->sub);
    if (c->retry_timer != NULL)
        event_free(c->retry_timer);
    if (c->poll_timer != NULL)
        event_free(c->poll_timer);
    clbudget_free(c);
    if (c->password != NULL) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    cloauth_free(c);
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

    return c == NULL ? 0 : cluster_count(c);
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
