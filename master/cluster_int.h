/* cluster_int.h - what cluster mode's modules share inside the master:
 * struct cluster (owned by cluster.c, which makes and frees it) and the
 * count of commands awaiting an answer that the reply watchdog reads.
 * cluster.c owns the connections and the heartbeat; clbreaker.c the
 * breakers shared by name, called by cluster.c only. */
#ifndef RCC_CLUSTER_INT_H
#define RCC_CLUSTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "clusterwire.h"
#include "master.h"
#include "util.h"

#define CLUSTER_INSTANCES_MAX      64     /* kept from one listing */
#define CLUSTER_ADDR_MAX           64     /* a numeric host address */

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

#endif
