/* cluster_int.h - what cluster mode's modules share inside the master:
 * struct cluster (owned by cluster.c, which makes and frees it) and the
 * count of commands awaiting an answer that the reply watchdog reads.
 * cluster.c owns the connections, the heartbeat and the table of parts;
 * each part (clbreaker.c: the breakers shared by name; clhealth.c: the
 * providers' health) is called by
 * cluster.c only, through that table. */
#ifndef RCC_CLUSTER_INT_H
#define RCC_CLUSTER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/async.h>

#include "clbreaker.h"
#include "clhealth.h"
#include "clusterwire.h"
#include "master.h"
#include "util.h"

#define CLUSTER_INSTANCES_MAX      64     /* kept from one listing */
#define CLUSTER_ADDR_MAX           64     /* a numeric host address */

/* The parts of the shared state, each with its own channel
 * ("PREFIXname") and its hooks in cluster.c's table. */
enum cluster_part_id {
    CLUSTER_PART_BREAKERS = 0,
    CLUSTER_PART_BUDGETS,      /* clbudget.c; its channel is unused */
    CLUSTER_PART_HEALTH,
    CLUSTER_PART_OAUTH,        /* cloauth.c: OAuth refresh lock, tokens */
    CLUSTER_PARTS
};

struct cluster;
struct clbudget;

/* A part's hooks, each optional (NULL). up: Redis is (again) reachable
 * and every channel subscribed: learn what is stored, tell what is known
 * here. poll: every CLUSTER_POLL_MS while up. message: a message on the
 * part's channel (len bytes, not terminated). down: Redis was lost; the
 * instance goes on alone. */
struct cluster_part {
    const char *name;
    void (*up)(struct cluster *c);
    void (*poll)(struct cluster *c, int64_t now);
    void (*message)(struct cluster *c, const char *payload, size_t len);
    void (*down)(struct cluster *c);
};

enum cluster_state {
    CLUSTER_DOWN = 0,          /* no connection; the retry timer runs */
    CLUSTER_CONNECTING,        /* connections made, not both ready */
    CLUSTER_UP                 /* both ready: shared state flows */
};

struct cluster {
    struct master *m;
    enum cluster_state state;
    char addr[CLUSTER_ADDR_MAX];    /* numeric: as configured, or the
                                     * host name's at the last lookup */
    int port;                       /* 0: addr is... unused (Unix) */
    char *path;                     /* Unix socket, or NULL */
    char *hostname;                 /* a name looked up at each connect */
    struct evdns_base *dns;         /* for hostname only; owned */
    struct evdns_getaddrinfo_request *dns_req;  /* a lookup under way */
    unsigned lookups;               /* evdns_getaddrinfo calls whose
                                     * callback has not run (a cancelled
                                     * one's runs later, from the loop) */
    char *password;                 /* from password_env; never logged */
    char instance[CW_INSTANCE_MAX + 1];
    char host[CW_INSTANCE_MAX + 1];
    char channels[CLUSTER_PARTS][CW_KEY_MAX];  /* "PREFIXpart" each */
    int subscribed;                 /* channels confirmed so far */
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
    bool refused_logged;            /* a refusal logged since the last up */
    bool same_name_logged;          /* another daemon has our name */
    bool beaten;                    /* a heartbeat answered since the last up */
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
    /* Per target slot: clbreaker.c's half-open lease. */
    struct clbreaker_trial trials[SHM_TARGET_SLOTS];
    /* Per health slot: clhealth.c's probe lease and results. */
    struct clhealth_slot health[SHM_HEALTH_SLOTS];
    struct cw_instance instances[CLUSTER_INSTANCES_MAX];
    int instance_count;             /* from the last listing */
    struct clbudget *budgets;       /* clbudget.c's; it frees it */
    struct cloauth *oauth;          /* cloauth.c's; made on first use */
};

/* A command sent: the watchdog's clock starts with the first one
 * pending. */
static inline void cluster_sent(struct cluster *c)
{
    if (c->pending++ == 0)
        c->progress_ms = util_now_ms();
}

/* A command's reply r as hiredis hands it to a callback: counted as an
 * answer and returned, or NULL when there is none to act on (the
 * connection went, or the cluster is closing). */
static inline void cluster_answered(struct cluster *c)
{
    if (c->pending > 0)
        c->pending--;
    c->progress_ms = util_now_ms();
}

/* A command's reply r as hiredis hands it to a callback: counted as an
 * answer and returned, or NULL when there is none to act on (the
 * connection went, or the cluster is closing). */
static inline redisReply *cluster_reply(struct cluster *c, void *r)
{
    if (r == NULL || c->closing)
        return NULL;
    cluster_answered(c);
    return r;
}

/* An error reply to a command (what it was for): logged at warn once
 * per connection, at debug after that, so that a Redis refusing every
 * write (maxmemory, a read-only replica) does not flood the log. */
static inline void cluster_refused(struct cluster *c, const char *what,
                                   const char *err)
{
    bool first = !c->refused_logged;

    c->refused_logged = true;
    log_msg(&c->m->log, first ? LOG_WARN : LOG_DEBUG, NULL, "cluster: Redis "
            "refused %s: %s%s", what, err,
            first ? " (logged once until the next connection)" : "");
}

/* Instances in the last listing, this one always counted: at least 1. */
static inline int cluster_count(const struct cluster *c)
{
    int n = 1;

    for (int i = 0; i < c->instance_count; i++)
        if (strcmp(c->instances[i].instance, c->instance) != 0)
            n++;
    return n;
}

#endif
