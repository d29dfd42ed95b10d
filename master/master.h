/* master.h - the master process's context and what its modules share:
 * the front end (frontend.c, endpoints.c), the request (mreq.c, reqlog.c),
 * the worker channels (relay.c), the supervisor (supervisor.c), the
 * control socket (control.c) and the process life cycle (master.c). */
#ifndef RCC_MASTER_H
#define RCC_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "apierror.h"
#include "chan.h"
#include "config.h"
#include "histogram.h"
#include "http.h"
#include "log.h"
#include "mreq.h"
#include "reqlog.h"
#include "shm.h"
#include "slots.h"

#define MASTER_STOP_GRACE_MS   5000   /* workers get this to exit, then KILL */
#define MASTER_CRASH_WINDOW_MS 1000   /* dying sooner counts as a crash */
#define MASTER_RESPAWN_BASE_MS 100
#define MASTER_RESPAWN_MAX_MS  10000
#define MASTER_RETRY_AFTER     "1"    /* Retry-After (s) on 429 / 503 */
#define MASTER_MAX_PRIORITY    1000000
/* A streamed answer buffered for a slow client beyond the high mark
 * pauses its upstream transfer until the buffer is back at the low mark. */
#define MASTER_STREAM_HIGH_WATER (256 * 1024)
#define MASTER_STREAM_LOW_WATER  (64 * 1024)
/* Bytes of a worker's frames taken in one read callback: a burst of
 * stream chunks from 200 calls is megabytes, which libevent's own reads
 * (4 KiB each) spread over hundreds of loop turns. */
#define MASTER_WORKER_READ_MAX   (64 * 1024)
/* Descriptors the master keeps besides its client connections: stdio,
 * the log, the event loop and its signal pipe, the listeners, control
 * connections, files open for a moment (a reload, a log rotation). */
#define MASTER_FD_RESERVE        32
/* Per configured worker: its channel and eventfd, twice over while a
 * reload overlaps the old workers and the new. */
#define MASTER_FD_PER_WORKER     4
/* The soft open file limit is raised toward the hard one, but no
 * further than this (the kernel's default fs.nr_open): a hard limit of
 * "unlimited" cannot be a soft one. */
#define MASTER_FD_LIMIT_MAX      1048576
/* clients.max_connections is never capped below this. */
#define MASTER_MIN_CONNECTIONS   1

struct mcap_state;
struct cluster;

struct mworker {
    pid_t pid;                     /* 0: slot unused */
    struct chan *chan;             /* our end of its socketpair; owned */
    int wake_fd;                   /* its eventfd */
    int64_t started_ms;
    uint32_t generation;           /* of the configuration it runs */
    bool retiring;                 /* told to drain and exit */
    bool broken;                   /* killed for a malformed frame: its
                                      channel is read no more */
};

/* How the master's modules reach each other without calling in circles:
 * main.c -> master.c (assembles everything, sets these) -> frontend.c
 * -> mreq.c -> supervisor.c / reqlog.c / http; relay.c -> mreq.c. A
 * module lower down calls one higher up only through these pointers. */
struct master_hooks {
    /* supervisor.c: a worker channel's read callback (relay_read_cb). */
    void (*worker_frames)(struct chan *ch, void *arg);
    /* supervisor.c: worker slot is gone (exited, died or killed), its
     * channel still open (relay_worker_lost). */
    void (*worker_lost)(struct master *m, int slot);
    /* mreq.c, supervisor.c: a control frame to worker slot
     * (relay_send). */
    void (*worker_send)(struct master *m, int slot, uint8_t type,
                        uint32_t job, uint32_t gen);
    /* supervisor.c: in a worker just forked (master_free_in_child). */
    void (*free_in_child)(struct master *m, int keep_a, int keep_b);
    /* mreq.c: the last request of a drain is done (master_begin_stop). */
    void (*begin_stop)(struct master *m);
    /* control.c: "reload" (master_reload). */
    int (*reload)(struct master *m, char *err, size_t errlen);
};

struct master {
    struct master_hooks hooks;
    struct cfg *cfg;
    struct slots_map slots;        /* where cfg's targets and virtual
                                      models live in the segment */
    const char *config_path;
    struct log log;
    struct shm_view shm;
    struct event_base *base;
    struct http_server http;
    bool http_up;
    struct event *signals[9];
    struct event *stop_timer;
    struct event *respawn_timer;
    struct mworker workers[CFG_MAX_WORKERS];
    int worker_target;             /* how many workers we keep */
    int crash_streak;              /* workers that died right at start */
    int64_t respawn_delay_ms;      /* the crash back-off now; 0: none */
    bool respawn_settling;         /* respawn_timer watches the workers
                                      it started outlive the window */
    int respawn_owed;              /* crashed workers not replaced yet */
    uint64_t worker_crashes;       /* died without being told to */
    uint64_t worker_restarts;      /* forked to replace one of those */
    uint32_t next_wake;
    int worker_slots_end;          /* every worker lives below this slot:
                                      the per-request loops stop there */
    struct mreq *reqs;             /* by job index */
    uint32_t active_reqs;
    struct histogram *latency;     /* per target slot: request latency */
    struct histogram latency_all;
    struct reqlog_tokens *tokens;  /* per target slot: tokens used */
    struct budgets *budgets;       /* client budgets and counts
                                      (budgets.c) */
    char *models_json;
    size_t models_len;
    uint8_t (*client_digests)[32]; /* SHA-256 of each client key */
    int client_digest_count;
    int control_fd;
    struct evconnlistener *control;
    struct control_conn *control_conns;
    struct event *control_retry;   /* accept again after running out of
                                      descriptors */
    bool control_starved;          /* ... and waiting for it */
    int64_t control_error_logged_ms;
    bool draining;
    bool stopping;                 /* workers told to exit */
    int exit_code;
    const char *pid_file;
    int64_t started_wall_ms;
    int64_t started_ms;
    struct mcap_state *capture;    /* request capture (mcap.c) */
    struct cluster *cluster;       /* cluster mode (cluster.c); NULL
                                      without a `cluster` group */
    long long fd_limit;            /* RLIMIT_NOFILE after raising it;
                                      0: none known (no cap) */
};

/* The segment state of target t (an index of m->cfg): its slot's. */
static inline struct shm_target *master_target(const struct master *m,
                                               int t)
{
    return &m->shm.targets[m->slots.target_slot[t]];
}

/* master.c */
int master_init(struct master *m, struct cfg *cfg, const char *config_path);
int master_run(struct master *m);
void master_free(struct master *m);
void master_begin_stop(struct master *m);
/* Re-reads the configuration file; applies it when valid and compatible
 * (targets and virtual models placed in their slots, new workers on it,
 * old ones finish their calls), else keeps the old one. 0, or -1 with
 * "FILE:LINE: ..." or the incompatibility in err. */
int master_reload(struct master *m, char *err, size_t errlen);
/* In a new worker: drops everything of the master's but the
 * configuration, the log and the segment. */
void master_free_in_child(struct master *m, int keep_a, int keep_b);

/* frontend.c */
int frontend_init(struct master *m);
/* After a reload: the models list, client keys and limits of m->cfg. */
int frontend_reconfigure(struct master *m);
void frontend_free(struct master *m);
void frontend_stop_accepting(struct master *m);

/* supervisor.c */
int supervisor_start(struct master *m);
void supervisor_wake(struct master *m);
void supervisor_reap(struct master *m);
int supervisor_scale(struct master *m, int target);
/* Replaces every worker: the running ones finish their calls and exit,
 * new ones (forked now, on the current configuration) take the queue.
 * 0, or -1 when no new worker could be started. */
int supervisor_renew(struct master *m);
void supervisor_shutdown_workers(struct master *m);
int supervisor_alive(const struct master *m);
/* The configuration generation of the oldest worker process still
 * there (retiring ones included); the current one when there is none. */
uint32_t supervisor_oldest_generation(const struct master *m);
/* Stopping: ends the event loop once no worker process is left. */
void supervisor_end_if_none(struct master *m);
/* Frees a worker's channel (closing its socket); NULL-safe, nulls it. */
void supervisor_chan_free(struct mworker *mw);

/* control.c */
int control_init(struct master *m);
void control_free(struct master *m);
/* Builds the "stats" JSON; malloc'd, the caller frees. */
char *control_stats_json(struct master *m);

#endif
