/* queue_bench.c - microbenchmarks of the shared scheduler state: push+pop
 * on the priority queue at depths 10, 1000 and 100000 (under the segment
 * lock, as the daemon does it), target selection with each strategy, and
 * the same push+pop with 4 processes contending for the lock, with the
 * time the lock is held. Prints a markdown table (`make bench` runs it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "balancer.h"
#include "shm.h"

#define QB_OPS          2000000L     /* push+pop cycles per measurement */
#define QB_SELECT_OPS   2000000L
#define QB_PROCS        4
#define QB_PROC_OPS     500000L      /* per contending process */
#define QB_TARGETS      8
#define QB_NS_PER_S     1000000000.0
#define QB_PRIORITIES   5

static double qb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * QB_NS_PER_S + (double)ts.tv_nsec;
}

static int qb_segment(struct shm_view *shm, struct cfg *cfg,
                      struct cfg_target *targets, int capacity)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int t = 0; t < QB_TARGETS; t++) {
        memset(&targets[t], 0, sizeof(targets[t]));
        targets[t].weight = 1 + t % 3;
    }
    cfg->targets = targets;
    cfg->target_count = QB_TARGETS;
    cfg->vmodel_count = 1;
    cfg->queue_capacity = capacity;
    cfg->max_concurrent_requests = 1;
    cfg->body_arena_bytes = ARENA_BLOCK * (long long)(capacity + 2);
    return shm_create(shm, cfg);
}

/* Fills the queue to depth, returns a spare job index outside it. */
static uint32_t qb_fill(struct shm_view *shm, int depth, uint64_t *rng)
{
    for (int i = 0; i <= depth; i++) {
        uint32_t j;

        shm_job_alloc(shm, 1, &j);
        shm->jobs[j].priority = (int32_t)(backoff_rand(rng) % QB_PRIORITIES);
        if (i < depth)
            shm_job_enqueue(shm, j);
        else
            return j;
    }
    return 0;
}

/* One push of spare and one pop, under the lock; the popped job is the
 * next spare. Adds the lock hold time to *held. */
static uint32_t qb_cycle(struct shm_view *shm, uint32_t spare, uint64_t *rng,
                         double *held)
{
    uint32_t out = spare;
    double t0;

    shm_lock(shm);
    t0 = held ? qb_now() : 0;
    pq_push(&shm->pq, spare, (int32_t)(backoff_rand(rng) % QB_PRIORITIES),
            shm->hdr->next_seq++);
    pq_pop(&shm->pq, &out);
    if (held)
        *held += qb_now() - t0;
    shm_unlock(shm);
    return out;
}

static void qb_depth(int depth)
{
    struct shm_view shm;
    struct cfg cfg;
    struct cfg_target targets[QB_TARGETS];
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    uint32_t spare;
    double t0, t1;

    if (qb_segment(&shm, &cfg, targets, depth + 1) < 0) {
        perror("shm_create");
        exit(1);
    }
    spare = qb_fill(&shm, depth, &rng);
    t0 = qb_now();
    for (long i = 0; i < QB_OPS; i++)
        spare = qb_cycle(&shm, spare, &rng, NULL);
    t1 = qb_now();
    printf("| push+pop, depth %d, 1 process | %.0f ns |\n", depth,
           (t1 - t0) / QB_OPS);
    shm_destroy(&shm);
}

static void qb_contended(int depth)
{
    struct shm_view shm;
    struct cfg cfg;
    struct cfg_target targets[QB_TARGETS];
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    uint32_t spares[QB_PROCS];
    double t0, t1, *held;

    if (qb_segment(&shm, &cfg, targets, depth + QB_PROCS) < 0) {
        perror("shm_create");
        exit(1);
    }
    for (int p = 0; p < QB_PROCS; p++)
        spares[p] = qb_fill(&shm, p == 0 ? depth : 0, &rng);
    held = (double *)(void *)&shm.arena.data[0];   /* per process, shared */
    memset(held, 0, sizeof(double) * QB_PROCS);
    t0 = qb_now();
    for (int p = 0; p < QB_PROCS; p++) {
        if (fork() == 0) {
            uint64_t r = rng + (uint64_t)p * 7919;
            uint32_t spare = spares[p];

            for (long i = 0; i < QB_PROC_OPS; i++)
                spare = qb_cycle(&shm, spare, &r, &held[p]);
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    t1 = qb_now();
    {
        double total = 0;

        for (int p = 0; p < QB_PROCS; p++)
            total += held[p];
        printf("| push+pop, depth %d, %d processes contending | %.0f ns "
               "(wall per op, all together); lock held %.0f ns per op |\n",
               depth, QB_PROCS, (t1 - t0) / (QB_PROC_OPS * QB_PROCS),
               total / (QB_PROC_OPS * QB_PROCS));
    }
    shm_destroy(&shm);
}

static void qb_select(enum cfg_strategy strategy, const char *name)
{
    struct lb_target state[QB_TARGETS];
    struct lb_candidate cand[QB_TARGETS];
    uint64_t rng = 0x853C49E6748FEA9BULL;
    uint32_t cursor = 0;
    double t0, t1;
    long sink = 0;

    for (int t = 0; t < QB_TARGETS; t++) {
        lb_init(&state[t], 1 + t % 3);
        cand[t] = (struct lb_candidate){ 1 + t % 3, t % 4, 0, true, false };
    }
    t0 = qb_now();
    for (long i = 0; i < QB_SELECT_OPS; i++)
        sink += lb_pick(strategy, state, cand, QB_TARGETS, &cursor, &rng);
    t1 = qb_now();
    printf("| target selection, %s, %d targets | %.0f ns |\n", name,
           QB_TARGETS, (t1 - t0) / QB_SELECT_OPS + (double)(sink & 0));
}

int main(void)
{
    printf("| operation | cost |\n|---|---:|\n");
    qb_depth(10);
    qb_depth(1000);
    qb_depth(100000);
    qb_contended(100000);
    qb_select(CFG_LB_ROUND_ROBIN, "round-robin");
    qb_select(CFG_LB_WEIGHTED, "weighted");
    qb_select(CFG_LB_LEAST_CONNECTIONS, "least-connections");
    qb_select(CFG_LB_RANDOM, "random");
    return 0;
}
