/* shm.h - the shared-memory segment: the job table, the priority queue,
 * the body arena, per-target and per-virtual-model scheduler state,
 * worker slots and counters. The master maps it before forking, so every
 * process sees it at the same address; inside it there are only offsets
 * and indices. One robust process-shared mutex guards the scheduler
 * state; counters are C11 atomics read without it. Targets and virtual
 * models live in slots that keep their place across reloads (slots.h
 * says which configuration entry is in which slot). */
#ifndef RCC_SHM_H
#define RCC_SHM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"
#include "balancer.h"
#include "breaker.h"
#include "bucket.h"
#include "clientbudget.h"
#include "config.h"
#include "health.h"
#include "pqueue.h"
#include "trace.h"
#include "util.h"

#define SHM_MAGIC          0x52434350u     /* "RCCP" */
#define SHM_LAYOUT_VERSION 5u
#define SHM_JOB_SLACK      64              /* slots for jobs being retired */
#define SHM_JOB_FWD_MAX    256             /* a job's forwarded header line */
#define SHM_NO_WORKER      (-1)
#define SHM_NO_TARGET      (-1)
/* Twice what one configuration may hold: a reload can replace every
 * target and virtual model at once while workers of the old
 * configuration still use theirs. */
#define SHM_TARGET_SLOTS   (2 * CFG_MAX_TARGETS)
#define SHM_VMODEL_SLOTS   (2 * CFG_MAX_VMODELS)
/* Client budgets, by name (budgets.c in the master places them): as
 * many as one configuration may name. */
#define SHM_CLIENT_SLOTS   CLIENTBUDGET_MAX_KEYS
#define SHM_NO_CLIENT      (-1)
/* Providers' health, by name (provhealth.c): room for a reload that
 * renames every provider. */
#define SHM_HEALTH_SLOTS   (2 * CFG_MAX_PROVIDERS)
#define SHM_NO_HEALTH      (-1)

enum shm_job_state {
    SHM_JOB_FREE = 0,
    SHM_JOB_RESERVED,          /* slot taken, body being copied in */
    SHM_JOB_QUEUED,            /* in the heap, waiting for a worker */
    SHM_JOB_RUNNING,           /* owned by a worker */
    SHM_JOB_DONE               /* answered; the master releases it */
};

enum shm_job_flags {
    SHM_JOB_STREAM = 1u << 0,
    SHM_JOB_DIRECT = 1u << 1,  /* model named one target: target is fixed */
    SHM_JOB_CAPTURE = 1u << 2, /* the worker sends its attempts (CAPTURE
                                  frames) for the request's capture file */
    SHM_JOB_ANTHROPIC = 1u << 3 /* the body is an Anthropic Messages body
                                   (the Anthropic door's); the answer is
                                   made in Anthropic's shape */
};

struct shm_job {
    uint32_t gen;              /* bumped on every reuse of the slot */
    uint32_t state;            /* enum shm_job_state */
    uint32_t flags;            /* enum shm_job_flags */
    uint32_t next_free;        /* free list link while FREE */
    int32_t priority;
    int32_t owner;             /* worker slot while RUNNING */
    int32_t vmodel;            /* virtual model slot */
    int32_t target;            /* fixed target slot (DIRECT) or
                                  SHM_NO_TARGET */
    int32_t slot_target;       /* target slot whose active count it holds */
    uint32_t probe;            /* that attempt is a half-open probe */
    int32_t client;            /* client budget slot or SHM_NO_CLIENT */
    int32_t retry_after_s;     /* set with a 429 rate_limited ERROR:
                                  the Retry-After the master sends */
    uint32_t body_len;
    uint64_t body_off;         /* into the arena */
    uint64_t seq;
    int64_t enqueued_ms;
    int64_t deadline_ms;       /* monotonic */
    _Atomic uint32_t cancel;   /* set by the master: stop working on it */
    char request_id[UTIL_REQUEST_ID_MAX];
    struct trace trace;        /* its stages, for its log line */
    /* A client header its door forwards to a target of the door's own
     * format ("anthropic-beta: ..."), NUL-terminated; "": none. */
    char fwd_header[SHM_JOB_FWD_MAX];
};

enum shm_breaker_state {
    SHM_BREAKER_CLOSED = 0,
    SHM_BREAKER_OPEN,
    SHM_BREAKER_HALF_OPEN
};

/* Whose a target or virtual model slot is (slots.c). */
enum shm_slot_state {
    SHM_SLOT_FREE = 0,         /* nobody's; its state is reset when taken */
    SHM_SLOT_LIVE,             /* in the configuration applied last */
    SHM_SLOT_RETIRED           /* left it; older workers or queued jobs may
                                  still use it, so it is not reused yet */
};

struct shm_target {
    _Atomic int32_t active;    /* calls in flight (changed under the lock) */
    _Atomic uint64_t requests;
    _Atomic uint64_t failures;
    _Atomic uint32_t state;    /* copy of cb.state for lock-free readers */
    _Atomic uint64_t transitions;    /* breaker state changes */
    struct cb_state cb;        /* the breaker (under the lock) */
    struct bucket_pair budget; /* rpm / tpm (under the lock) */
    /* The slot's owner: written by the master alone, under the lock. */
    uint32_t slot_state;       /* enum shm_slot_state */
    uint32_t retired_gen;      /* RETIRED: first generation without it */
    int32_t health_slot;       /* its provider's shm_health, or
                                  SHM_NO_HEALTH (provhealth_apply) */
    char vmodel[CFG_NAME_MAX]; /* its virtual model's name */
    char name[CFG_TARGET_NAME_MAX];  /* "provider/model" */
};

struct shm_vmodel {
    uint32_t rr_next;          /* round-robin cursor */
    uint32_t slot_state;       /* enum shm_slot_state */
    uint32_t retired_gen;      /* RETIRED: first generation without it */
    char name[CFG_NAME_MAX];
};

/* A client's budget, kept by its name across reloads (under the lock). */
struct shm_client {
    uint32_t used;             /* the name belongs to the configuration
                                  applied last */
    uint32_t reserved;
    struct bucket_pair budget;
    char name[CFG_NAME_MAX];
};

/* One provider's active health (health.h), kept by provider name across
 * reloads. The master alone takes and frees entries, under the lock. */
struct shm_health {
    uint32_t used;             /* 1: a provider of the live configuration */
    uint32_t reserved;
    char provider[CFG_NAME_MAX];
    struct health_state st;
};

struct shm_worker {
    _Atomic int32_t pid;       /* 0: slot unused */
    _Atomic uint32_t wake_pending;   /* its eventfd was written, not read */
    _Atomic int32_t active;    /* jobs it runs */
    _Atomic uint64_t jobs_done;
    _Atomic int64_t started_ms;   /* wall clock */
};

struct shm_counters {
    _Atomic uint64_t total;
    _Atomic uint64_t succeeded;
    _Atomic uint64_t failed;
    _Atomic uint64_t retried;
};

struct shm_hdr {
    uint32_t magic;
    uint32_t layout_version;
    pthread_mutex_t lock;
    uint32_t dirty;            /* 1 while a holder mutates; repair if died */
    uint32_t job_count;
    uint32_t target_slots;     /* SHM_TARGET_SLOTS */
    uint32_t vmodel_slots;     /* SHM_VMODEL_SLOTS */
    uint32_t config_gen;       /* generation of the configuration applied
                                  last (slots.c); workers of an older one
                                  take no new job */
    uint32_t free_head;        /* first FREE job or PQ_NONE */
    uint32_t job_high;         /* jobs [0, job_high) have been used; the
                                  rest are FREE and never written, so the
                                  table's pages are touched as the load
                                  needs them (shm_job_alloc) */
    uint32_t running;          /* RUNNING jobs */
    uint32_t max_running;      /* max_concurrent_requests */
    uint32_t repairs;          /* times the lock was recovered */
    uint64_t next_seq;
    struct pq pq;
    struct arena arena;
    size_t size;
    size_t off_jobs, off_heap, off_pos, off_bitmap, off_data;
    size_t off_targets, off_vmodels, off_lb, off_clients;
    struct shm_counters counters;
    struct shm_worker workers[CFG_MAX_WORKERS];
    struct shm_health health[SHM_HEALTH_SLOTS];
};

/* Per-process pointers into the segment (the same in every process). */
struct shm_view {
    struct shm_hdr *hdr;
    struct shm_job *jobs;
    struct shm_target *targets;
    struct shm_vmodel *vmodels;
    struct lb_target *lb;      /* balancer state, one per target slot */
    struct shm_client *clients;   /* SHM_CLIENT_SLOTS */
    struct pq_view pq;
    struct arena_view arena;
};

/* Maps and lays out a segment sized for cfg's queue, concurrency and
 * arena, with SHM_TARGET_SLOTS and SHM_VMODEL_SLOTS free slots (the
 * master then places cfg's targets with slots_apply). 0, or -1 with
 * errno. */
int shm_create(struct shm_view *shm, const struct cfg *cfg);
/* Destroys the lock and unmaps the segment (its creator, at the end);
 * NULL-safe on an unmapped view. */
void shm_destroy(struct shm_view *shm);
/* Unmaps this process's view only (a worker leaving). */
void shm_detach(struct shm_view *shm);

/* Takes the lock, repairing the state if its last holder died. */
void shm_lock(struct shm_view *shm);
void shm_unlock(struct shm_view *shm);

/* Rebuilds queue, free list, arena bitmap and counts from the job table.
 * Called with the lock held. */
void shm_repair(struct shm_view *shm);

/* With the lock held: takes a free job slot and arena room for body_len
 * bytes; the job is RESERVED until shm_job_enqueue, so the body can be
 * copied in without the lock. -1 when no slot or no room. */
int shm_job_alloc(struct shm_view *shm, uint32_t body_len, uint32_t *job);
/* With the lock held: queues a reserved or re-queued job. -1: full. */
int shm_job_enqueue(struct shm_view *shm, uint32_t job);
/* With the lock held: gives back the target slot (and half-open probe)
 * the job holds, if any, without an outcome. */
void shm_job_release_target(struct shm_view *shm, struct shm_job *job);
/* With the lock held: releases the job's body, slot and target slot
 * (a RUNNING job leaves the running count). */
void shm_job_free(struct shm_view *shm, uint32_t job);

/* Job states change only through these (and shm_job_alloc, _enqueue,
 * _free), which keep hdr->running equal to the number of RUNNING jobs,
 * as shm_repair counts them. All with the lock held. */
/* Takes the queue's first job for worker slot owner: RUNNING, counted.
 * -1 when the queue is empty or max_running jobs run already. */
int shm_job_pop(struct shm_view *shm, int owner, uint32_t *job);
/* A RUNNING job was answered: DONE (the master frees it), uncounted.
 * A job in another state stays as it is. */
void shm_job_done(struct shm_view *shm, uint32_t job);
/* A RUNNING (or DONE, not yet freed) job goes back to its place in the
 * queue: target slot released, uncounted, QUEUED with its sequence
 * number. -1 when the queue is full: the job is then DONE, for the
 * master to end and free. */
int shm_job_requeue(struct shm_view *shm, uint32_t job);

/* Readies a worker slot for the worker about to be forked into it: no
 * jobs done or active and no wake-up pending (a replacement does not
 * inherit its predecessor's numbers), started at started_wall_ms (wall
 * clock). The master calls it before the fork; pid is set after. */
void shm_worker_reset(struct shm_worker *sw, int64_t started_wall_ms);

static inline uint8_t *shm_job_body(const struct shm_view *shm,
                                    const struct shm_job *job)
{
    return shm->arena.data + job->body_off;
}

#endif
