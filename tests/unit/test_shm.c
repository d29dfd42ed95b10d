/* test_shm.c - the shared segment: layout, the job life cycle (RESERVED,
 * QUEUED, RUNNING, FREE), the free list and generations, a full queue
 * and a full arena, shm_repair() rebuilding everything from a job table
 * whose derived state was wrecked on purpose, and the robust mutex: a
 * child that dies holding the lock must not wedge the parent; a worker
 * slot made ready for a replacement. */
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "shm.h"
#include "unit.h"

#define SHMT_LAZY_LIVE    3
#define SHMT_LAZY_ROUNDS  1000
#define SHMT_QUEUE        8
#define SHMT_RUNNING      4
#define SHMT_TARGETS      3
#define SHMT_ARENA        (64 * ARENA_BLOCK)
#define SHMT_ALIGN        64
#define SHMT_GARBAGE      0x5A
#define SHMT_SENTINEL     77u
#define SHMT_BODY         "{\"model\":\"m\",\"messages\":[]}"
#define SHMT_MAX_JOBS     1024     /* more than any segment made here */
#define SHMT_OFFSETS      7        /* off_jobs .. off_data */
#define SHMT_SCENE_LIVE   7        /* jobs not FREE in the scene */
#define SHMT_SCENE_QUEUED 3
#define SHMT_OLD_JOBS     41u
#define SHMT_WALL_MS      1700000000123LL

static int shmt_create(struct shm_view *shm, int queue, int running,
                       long long arena_bytes)
{
    static struct cfg_target targets[SHMT_TARGETS];
    struct cfg cfg;

    memset(&cfg, 0, sizeof(cfg));
    for (int t = 0; t < SHMT_TARGETS; t++)
        targets[t].weight = 1;
    cfg.targets = targets;
    cfg.queue_capacity = queue;
    cfg.max_concurrent_requests = running;
    cfg.body_arena_bytes = arena_bytes;
    cfg.target_count = SHMT_TARGETS;
    cfg.vmodel_count = 1;
    memset(shm, 0, sizeof(*shm));
    return shm_create(shm, &cfg);
}

/* Allocates a job with a body of len bytes and the given priority. */
static int shmt_job(struct shm_view *shm, uint32_t len, int32_t priority,
                    uint32_t *job)
{
    if (shm_job_alloc(shm, len, job) < 0)
        return -1;
    shm->jobs[*job].priority = priority;
    return 0;
}

/* Pops the first queued job and marks it RUNNING the way the scheduler
 * does, holding a slot of target. */
static int shmt_run(struct shm_view *shm, int32_t target, uint32_t *job)
{
    struct shm_job *jb;

    if (pq_pop(&shm->pq, job) < 0)
        return -1;
    jb = &shm->jobs[*job];
    jb->state = SHM_JOB_RUNNING;
    jb->owner = 0;
    shm->hdr->running++;
    if (target != SHM_NO_TARGET) {
        jb->slot_target = target;
        atomic_fetch_add(&shm->targets[target].active, 1);
    }
    return 0;
}

/* Jobs shm_job_alloc can still take: the steps along the free list plus
 * the jobs never used (from job_high on), or -1 if the list visits a job
 * that is not FREE, visits one twice or runs off the used part. */
static int shmt_free_list_length(const struct shm_view *shm)
{
    uint8_t seen[SHMT_MAX_JOBS];
    uint32_t j = shm->hdr->free_head;
    int n = 0;

    if (shm->hdr->job_count > sizeof(seen))
        return -1;
    memset(seen, 0, sizeof(seen));
    while (j != PQ_NONE) {
        if (j >= shm->hdr->job_high || seen[j] ||
            shm->jobs[j].state != SHM_JOB_FREE)
            return -1;
        seen[j] = 1;
        n++;
        j = shm->jobs[j].next_free;
    }
    for (j = shm->hdr->job_high; j < shm->hdr->job_count; j++)
        if (shm->jobs[j].state != SHM_JOB_FREE)
            return -1;
    return n + (int)(shm->hdr->job_count - shm->hdr->job_high);
}

static int shmt_count_state(const struct shm_view *shm, uint32_t state)
{
    int n = 0;

    for (uint32_t j = 0; j < shm->hdr->job_count; j++)
        if (shm->jobs[j].state == state)
            n++;
    return n;
}

static void test_layout(void)
{
    struct shm_view shm;
    const struct shm_hdr *hdr;
    size_t off[SHMT_OFFSETS];

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA + 1), 0);
    hdr = shm.hdr;
    CU_ASSERT_EQUAL(hdr->magic, SHM_MAGIC);
    CU_ASSERT_EQUAL(hdr->layout_version, SHM_LAYOUT_VERSION);
    CU_ASSERT_EQUAL(hdr->job_count,
                    SHMT_QUEUE + SHMT_RUNNING + SHM_JOB_SLACK);
    CU_ASSERT_EQUAL(hdr->target_slots, SHM_TARGET_SLOTS);
    CU_ASSERT_EQUAL(hdr->vmodel_slots, SHM_VMODEL_SLOTS);
    CU_ASSERT_EQUAL(hdr->config_gen, 0);
    CU_ASSERT_EQUAL(hdr->max_running, SHMT_RUNNING);
    CU_ASSERT_EQUAL(hdr->running, 0);
    CU_ASSERT_EQUAL(hdr->repairs, 0);
    CU_ASSERT_EQUAL(hdr->next_seq, 1);
    CU_ASSERT_EQUAL(hdr->pq.capacity, SHMT_QUEUE);
    CU_ASSERT_EQUAL(hdr->pq.size, 0);
    /* A partial block at the end still counts as a block. */
    CU_ASSERT_EQUAL(hdr->arena.blocks, SHMT_ARENA / ARENA_BLOCK + 1);
    CU_ASSERT_EQUAL(hdr->arena.used, 0);
    CU_ASSERT_EQUAL(shm.pq.job_count, hdr->job_count);

    off[0] = hdr->off_jobs;
    off[1] = hdr->off_heap;
    off[2] = hdr->off_pos;
    off[3] = hdr->off_targets;
    off[4] = hdr->off_vmodels;
    off[5] = hdr->off_bitmap;
    off[6] = hdr->off_data;
    CU_ASSERT(off[0] >= sizeof(struct shm_hdr));
    for (size_t i = 0; i < SHMT_OFFSETS; i++) {
        CU_ASSERT_EQUAL(off[i] % SHMT_ALIGN, 0);
        if (i > 0)
            CU_ASSERT(off[i] > off[i - 1]);
    }
    CU_ASSERT(hdr->off_heap - hdr->off_jobs >=
              hdr->job_count * sizeof(struct shm_job));
    CU_ASSERT(hdr->off_pos - hdr->off_heap >=
              SHMT_QUEUE * sizeof(struct pq_entry));
    CU_ASSERT(hdr->off_targets - hdr->off_pos >=
              hdr->job_count * sizeof(uint32_t));
    CU_ASSERT(hdr->off_data - hdr->off_bitmap >=
              arena_bitmap_bytes(hdr->arena.blocks));
    CU_ASSERT(hdr->size >= hdr->off_data + hdr->arena.blocks * ARENA_BLOCK);

    /* No job is written before it is first taken. */
    for (uint32_t j = 0; j < hdr->job_count; j++)
        CU_ASSERT_EQUAL(shm.jobs[j].state, SHM_JOB_FREE);
    CU_ASSERT_EQUAL(hdr->job_high, 0);
    CU_ASSERT_EQUAL(hdr->free_head, PQ_NONE);
    CU_ASSERT_EQUAL(shmt_free_list_length(&shm), (int)hdr->job_count);
    CU_ASSERT_TRUE(pq_valid(&shm.pq));
    for (uint32_t t = 0; t < SHM_TARGET_SLOTS; t++) {
        CU_ASSERT_EQUAL(atomic_load(&shm.targets[t].active), 0);
        CU_ASSERT_EQUAL(shm.targets[t].slot_state, SHM_SLOT_FREE);
    }
    /* The whole data area is mapped and writable. */
    shm.arena.data[hdr->arena.blocks * ARENA_BLOCK - 1] = 1;

    shm_destroy(&shm);
    CU_ASSERT_PTR_NULL(shm.hdr);
    shm_destroy(&shm);
    CU_ASSERT_PTR_NULL(shm.hdr);
}

static void test_job_life_cycle(void)
{
    struct shm_view shm;
    struct shm_job *jb;
    uint32_t j, got;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL(shm.hdr->dirty, 1);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, sizeof(SHMT_BODY), &j), 0);
    jb = &shm.jobs[j];
    CU_ASSERT_EQUAL(jb->state, SHM_JOB_RESERVED);
    CU_ASSERT_EQUAL(jb->gen, 1);
    CU_ASSERT_EQUAL(jb->body_len, sizeof(SHMT_BODY));
    CU_ASSERT(jb->body_off + jb->body_len <=
              shm.hdr->arena.blocks * ARENA_BLOCK);
    CU_ASSERT_EQUAL(jb->next_free, PQ_NONE);
    CU_ASSERT_EQUAL(shm.hdr->arena.used, 1);
    CU_ASSERT_NOT_EQUAL(shm.hdr->free_head, j);
    CU_ASSERT_FALSE(pq_contains(&shm.pq, j));
    memcpy(shm_job_body(&shm, jb), SHMT_BODY, sizeof(SHMT_BODY));
    CU_ASSERT_STRING_EQUAL((const char *)shm_job_body(&shm, jb), SHMT_BODY);

    jb->priority = 3;
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, j), 0);
    CU_ASSERT_EQUAL(jb->state, SHM_JOB_QUEUED);
    CU_ASSERT_EQUAL(jb->seq, 1);
    CU_ASSERT_EQUAL(shm.hdr->next_seq, 2);
    CU_ASSERT_TRUE(pq_contains(&shm.pq, j));
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, j), -1);   /* already queued */
    CU_ASSERT_EQUAL(pq_size(&shm.pq), 1);
    CU_ASSERT_EQUAL(pq_peek(&shm.pq, &got), 0);
    CU_ASSERT_EQUAL(got, j);

    shm_job_free(&shm, j);
    CU_ASSERT_EQUAL(jb->state, SHM_JOB_FREE);
    CU_ASSERT_FALSE(pq_contains(&shm.pq, j));
    CU_ASSERT_EQUAL(pq_size(&shm.pq), 0);
    CU_ASSERT_EQUAL(shm.hdr->arena.used, 0);
    CU_ASSERT_EQUAL(shm.hdr->free_head, j);
    CU_ASSERT_EQUAL(shmt_free_list_length(&shm), (int)shm.hdr->job_count);
    CU_ASSERT_TRUE(pq_valid(&shm.pq));
    shm_unlock(&shm);
    CU_ASSERT_EQUAL(shm.hdr->dirty, 0);
    CU_ASSERT_EQUAL(shm.hdr->repairs, 0);
    shm_destroy(&shm);
}

static void test_queue_order(void)
{
    static const int32_t prio[] = { 0, 5, 0, -1, 5 };
    static const int order[] = { 1, 4, 0, 2, 3 };
    const int n = (int)(sizeof(prio) / sizeof(prio[0]));
    struct shm_view shm;
    uint32_t job[sizeof(prio) / sizeof(prio[0])], got;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 10, prio[i], &job[i]), 0);
        CU_ASSERT_EQUAL(shm_job_enqueue(&shm, job[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL_FATAL(pq_pop(&shm.pq, &got), 0);
        CU_ASSERT_EQUAL(got, job[order[i]]);
    }
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* A freed slot is reused first and its generation moves on, so a stale
 * (job, gen) pair from a worker can be told apart. */
static void test_free_list_reuse(void)
{
    struct shm_view shm;
    uint32_t a, b, c;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &a), 0);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &b), 0);
    CU_ASSERT_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(shm.jobs[a].gen, 1);
    shm_job_free(&shm, a);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 2000, &c), 0);
    CU_ASSERT_EQUAL(c, a);
    CU_ASSERT_EQUAL(shm.jobs[c].gen, 2);
    CU_ASSERT_EQUAL(shm.jobs[c].body_len, 2000);
    CU_ASSERT_EQUAL(shm.jobs[c].seq, 0);
    CU_ASSERT_EQUAL(atomic_load(&shm.jobs[c].cancel), 0);
    CU_ASSERT_EQUAL(shm.hdr->arena.used, 3);
    shm_job_free(&shm, b);
    shm_job_free(&shm, c);
    CU_ASSERT_EQUAL(shm.hdr->arena.used, 0);
    CU_ASSERT_EQUAL(shmt_free_list_length(&shm), (int)shm.hdr->job_count);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* A job taken back from a worker keeps its sequence number, so it goes
 * back ahead of later arrivals of the same priority. */
static void test_requeue_keeps_place(void)
{
    struct shm_view shm;
    uint32_t a, b, got;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 1, 0, &a), 0);
    CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 1, 0, &b), 0);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, a), 0);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, b), 0);
    CU_ASSERT_EQUAL_FATAL(shmt_run(&shm, 1, &got), 0);
    CU_ASSERT_EQUAL(got, a);
    CU_ASSERT_EQUAL(shm.jobs[a].state, SHM_JOB_RUNNING);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, a), 0);
    CU_ASSERT_EQUAL(shm.jobs[a].seq, 1);
    CU_ASSERT_EQUAL(shm.jobs[a].state, SHM_JOB_QUEUED);
    CU_ASSERT_EQUAL(shm.jobs[a].owner, SHM_NO_WORKER);
    CU_ASSERT_EQUAL(pq_peek(&shm.pq, &got), 0);
    CU_ASSERT_EQUAL(got, a);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

static void test_queue_full(void)
{
    const int queue = 4;
    struct shm_view shm;
    uint32_t job[5];

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, queue, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    for (int i = 0; i <= queue; i++)
        CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &job[i]), 0);
    for (int i = 0; i < queue; i++)
        CU_ASSERT_EQUAL(shm_job_enqueue(&shm, job[i]), 0);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, job[queue]), -1);
    CU_ASSERT_EQUAL(shm.jobs[job[queue]].state, SHM_JOB_RESERVED);
    CU_ASSERT_EQUAL(pq_size(&shm.pq), (uint32_t)queue);
    CU_ASSERT_TRUE(pq_valid(&shm.pq));
    /* Freeing a queued job from the middle makes room. */
    shm_job_free(&shm, job[1]);
    CU_ASSERT_TRUE(pq_valid(&shm.pq));
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, job[queue]), 0);
    CU_ASSERT_EQUAL(shm.jobs[job[queue]].state, SHM_JOB_QUEUED);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* No arena room: the slot is not consumed. */
static void test_arena_full(void)
{
    const long long arena = 8 * ARENA_BLOCK;
    struct shm_view shm;
    uint32_t big, j, head;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      arena), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, (uint32_t)arena, &big), 0);
    head = shm.hdr->job_high;       /* the next job never used */
    CU_ASSERT_EQUAL(shm_job_alloc(&shm, 1, &j), -1);
    CU_ASSERT_EQUAL(shm.hdr->job_high, head);
    CU_ASSERT_EQUAL(shm.hdr->free_head, PQ_NONE);
    CU_ASSERT_EQUAL(shm.jobs[head].state, SHM_JOB_FREE);
    CU_ASSERT_EQUAL(shm.jobs[head].gen, 0);
    shm_job_free(&shm, big);
    CU_ASSERT_EQUAL(shm_job_alloc(&shm, 1, &j), 0);
    CU_ASSERT_EQUAL(shm_job_alloc(&shm, (uint32_t)arena, &big), -1);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* A few jobs in flight at a time keep to the first few slots: the job
 * table's pages are touched as the load needs them, not at start. */
static void test_jobs_touched_lazily(void)
{
    struct shm_view shm;
    uint32_t live[SHMT_LAZY_LIVE];

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    for (int i = 0; i < SHMT_LAZY_LIVE; i++)
        CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &live[i]), 0);
    for (int round = 0; round < SHMT_LAZY_ROUNDS; round++) {
        int i = round % SHMT_LAZY_LIVE;

        shm_job_free(&shm, live[i]);
        CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &live[i]), 0);
    }
    CU_ASSERT_EQUAL(shm.hdr->job_high, SHMT_LAZY_LIVE);
    for (uint32_t j = SHMT_LAZY_LIVE; j < shm.hdr->job_count; j++)
        CU_ASSERT_EQUAL(shm.jobs[j].gen, 0);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* Every slot taken: -1 until one is freed. */
static void test_no_free_slot(void)
{
    struct shm_view shm;
    uint32_t j, count = 0, last = PQ_NONE;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, 2, 2, 2 * SHMT_ARENA), 0);
    shm_lock(&shm);
    while (count <= shm.hdr->job_count && shm_job_alloc(&shm, 1, &j) == 0) {
        last = j;
        count++;
    }
    CU_ASSERT_EQUAL(count, shm.hdr->job_count);
    CU_ASSERT_EQUAL(shm.hdr->free_head, PQ_NONE);
    CU_ASSERT_EQUAL(shm_job_alloc(&shm, 1, &j), -1);
    CU_ASSERT_EQUAL_FATAL(last, shm.hdr->job_count - 1);
    shm_job_free(&shm, last);
    CU_ASSERT_EQUAL(shm_job_alloc(&shm, 1, &j), 0);
    CU_ASSERT_EQUAL(j, last);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

static void test_free_running_job(void)
{
    struct shm_view shm;
    uint32_t j, got;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 5000, &j), 0);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, j), 0);
    CU_ASSERT_EQUAL_FATAL(shmt_run(&shm, 2, &got), 0);
    CU_ASSERT_EQUAL(got, j);
    CU_ASSERT_EQUAL(shm.hdr->running, 1);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[2].active), 1);
    shm.jobs[j].state = SHM_JOB_DONE;
    shm.hdr->running--;
    shm_job_free(&shm, j);
    CU_ASSERT_EQUAL(shm.hdr->running, 0);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[2].active), 0);
    CU_ASSERT_EQUAL(shm.jobs[j].slot_target, SHM_NO_TARGET);
    CU_ASSERT_EQUAL(shm.jobs[j].owner, SHM_NO_WORKER);

    /* Freed while still RUNNING (a worker died): running drops too. */
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &j), 0);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, j), 0);
    CU_ASSERT_EQUAL_FATAL(shmt_run(&shm, 0, &got), 0);
    shm_job_free(&shm, j);
    CU_ASSERT_EQUAL(shm.hdr->running, 0);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[0].active), 0);
    CU_ASSERT_EQUAL(shm.hdr->arena.used, 0);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* The scenario the repair tests share: jobs in every state. */
struct shmt_scene {
    uint32_t q_low, q_high, q_low2;     /* QUEUED, priorities 1, 5, 1 */
    uint32_t run0, run2;                /* RUNNING on targets 0 and 2 */
    uint32_t reserved, done, freed;
};

/* Builds the scene; the number of QUEUED jobs, or -1. */
static int shmt_build_scene(struct shm_view *shm, struct shmt_scene *s)
{
    uint32_t got;

    if (shmt_job(shm, 3000, 0, &s->run0) < 0 ||
        shmt_job(shm, 1, 0, &s->run2) < 0 ||
        shm_job_enqueue(shm, s->run0) < 0 ||
        shmt_run(shm, 0, &got) < 0 || got != s->run0 ||
        shm_job_enqueue(shm, s->run2) < 0 ||
        shmt_run(shm, 2, &got) < 0 || got != s->run2 ||
        shmt_job(shm, 100, 1, &s->q_low) < 0 ||
        shmt_job(shm, 5000, 5, &s->q_high) < 0 ||
        shmt_job(shm, 2048, 1, &s->q_low2) < 0 ||
        shmt_job(shm, 4000, 0, &s->reserved) < 0 ||
        shmt_job(shm, 10, 0, &s->done) < 0 ||
        shmt_job(shm, 10, 0, &s->freed) < 0 ||
        shm_job_enqueue(shm, s->q_low) < 0 ||
        shm_job_enqueue(shm, s->q_high) < 0 ||
        shm_job_enqueue(shm, s->q_low2) < 0)
        return -1;
    shm->jobs[s->done].state = SHM_JOB_DONE;
    shm->jobs[s->done].slot_target = 0;
    atomic_fetch_add(&shm->targets[0].active, 1);
    shm_job_free(shm, s->freed);
    return SHMT_SCENE_QUEUED;
}

/* Wrecks what repair must rebuild; the job table stays as it was. */
static void shmt_wreck(struct shm_view *shm)
{
    struct shm_hdr *hdr = shm->hdr;

    hdr->pq.size = 0;
    memset(shm->pq.pos, SHMT_GARBAGE, hdr->job_count * sizeof(uint32_t));
    hdr->free_head = hdr->job_count + 5;
    memset(shm->arena.bitmap, 0, arena_bitmap_bytes(hdr->arena.blocks));
    hdr->arena.used = SHMT_SENTINEL;
    hdr->running = SHMT_SENTINEL;
    for (uint32_t t = 0; t < hdr->target_slots; t++)
        atomic_store(&shm->targets[t].active, (int32_t)SHMT_SENTINEL);
}

/* Everything derived from the job table agrees with it. */
static void shmt_check_scene(struct shm_view *shm, const struct shmt_scene *s)
{
    const uint32_t order[] = { s->q_high, s->q_low, s->q_low2 };
    uint64_t blocks = 0;
    uint32_t got, j;
    int live = 0;

    CU_ASSERT_TRUE(pq_valid(&shm->pq));
    CU_ASSERT_EQUAL(pq_size(&shm->pq), SHMT_SCENE_QUEUED);
    CU_ASSERT_EQUAL(shmt_count_state(shm, SHM_JOB_RUNNING), 2);
    CU_ASSERT_EQUAL(shmt_count_state(shm, SHM_JOB_QUEUED),
                    SHMT_SCENE_QUEUED);
    CU_ASSERT_EQUAL(shm->hdr->running, 2);
    CU_ASSERT_EQUAL(atomic_load(&shm->targets[0].active), 2);
    CU_ASSERT_EQUAL(atomic_load(&shm->targets[1].active), 0);
    CU_ASSERT_EQUAL(atomic_load(&shm->targets[2].active), 1);
    for (j = 0; j < shm->hdr->job_count; j++) {
        const struct shm_job *jb = &shm->jobs[j];

        if (jb->state == SHM_JOB_FREE)
            continue;
        live++;
        blocks += (jb->body_len + ARENA_BLOCK - 1) / ARENA_BLOCK;
    }
    CU_ASSERT_EQUAL(live, SHMT_SCENE_LIVE);
    CU_ASSERT_EQUAL(shm->hdr->arena.used, blocks);
    CU_ASSERT_EQUAL(shmt_free_list_length(shm),
                    (int)shm->hdr->job_count - live);
    CU_ASSERT_EQUAL(shm->jobs[s->freed].state, SHM_JOB_FREE);
    CU_ASSERT_EQUAL(shm->jobs[s->reserved].state, SHM_JOB_RESERVED);
    CU_ASSERT_FALSE(pq_contains(&shm->pq, s->reserved));
    CU_ASSERT_FALSE(pq_contains(&shm->pq, s->run0));

    /* A new body lands clear of every live one. */
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(shm, 3 * ARENA_BLOCK, &j), 0);
    for (uint32_t k = 0; k < shm->hdr->job_count; k++) {
        const struct shm_job *jb = &shm->jobs[k];

        if (k == j || jb->state == SHM_JOB_FREE)
            continue;
        CU_ASSERT(shm->jobs[j].body_off + shm->jobs[j].body_len <=
                  jb->body_off ||
                  jb->body_off + jb->body_len <= shm->jobs[j].body_off);
    }
    shm_job_free(shm, j);

    for (int i = 0; i < SHMT_SCENE_QUEUED; i++) {
        CU_ASSERT_EQUAL_FATAL(pq_pop(&shm->pq, &got), 0);
        CU_ASSERT_EQUAL(got, order[i]);
    }
}

static void test_repair(void)
{
    struct shm_view shm;
    struct shmt_scene s;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shmt_build_scene(&shm, &s),
                          SHMT_SCENE_QUEUED);
    shmt_wreck(&shm);
    CU_ASSERT_FALSE(pq_valid(&shm.pq));
    shm_repair(&shm);
    shmt_check_scene(&shm, &s);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* A job marked QUEUED but never pushed (its holder died in between) is
 * queued by the repair; so is one whose heap entry was lost. */
static void test_repair_lost_push(void)
{
    struct shm_view shm;
    uint32_t a, b, got;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 1, 2, &a), 0);
    CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 1, 9, &b), 0);
    CU_ASSERT_EQUAL(shm_job_enqueue(&shm, a), 0);
    shm.jobs[b].state = SHM_JOB_QUEUED;
    shm.jobs[b].seq = shm.hdr->next_seq++;
    shm_repair(&shm);
    CU_ASSERT_TRUE(pq_valid(&shm.pq));
    CU_ASSERT_EQUAL(pq_size(&shm.pq), 2);
    CU_ASSERT_EQUAL(pq_pop(&shm.pq, &got), 0);
    CU_ASSERT_EQUAL(got, b);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* Forks a child that runs what (which takes the lock) and exits holding
 * the lock. 0 when the child exited with status 0. */
static int shmt_die_holding_lock(struct shm_view *shm,
                                 void (*what)(struct shm_view *))
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        what(shm);
        _exit(0);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Dies mid-update: queue and counts half-written. */
static void shmt_child_dirty(struct shm_view *shm)
{
    shm_lock(shm);
    shmt_wreck(shm);
}

/* Dies holding the lock without having started an update. */
static void shmt_child_clean(struct shm_view *shm)
{
    if (pthread_mutex_lock(&shm->hdr->lock) != 0)
        _exit(1);
}

static void test_owner_died_dirty(void)
{
    struct shm_view shm;
    struct shmt_scene s;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shmt_build_scene(&shm, &s),
                          SHMT_SCENE_QUEUED);
    shm_unlock(&shm);

    CU_ASSERT_EQUAL_FATAL(shmt_die_holding_lock(&shm, shmt_child_dirty), 0);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_SENTINEL);   /* the damage */
    shm_lock(&shm);                 /* must return: EOWNERDEAD */
    CU_ASSERT_EQUAL(shm.hdr->repairs, 1);
    CU_ASSERT_EQUAL(shm.hdr->dirty, 1);
    shmt_check_scene(&shm, &s);
    shm_unlock(&shm);

    /* The mutex is consistent again: an ordinary lock, no repair. */
    shm_lock(&shm);
    CU_ASSERT_EQUAL(shm.hdr->repairs, 1);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

static void test_owner_died_clean(void)
{
    struct shm_view shm;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    /* A value repair would reset: it must survive a clean death. */
    shm.hdr->running = SHMT_SENTINEL;
    CU_ASSERT_EQUAL_FATAL(shmt_die_holding_lock(&shm, shmt_child_clean), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL(shm.hdr->repairs, 1);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_SENTINEL);
    shm_unlock(&shm);
    shm_lock(&shm);
    CU_ASSERT_EQUAL(shm.hdr->repairs, 1);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* A replacement worker starts from zero, not from its slot's last
 * numbers. */
static void test_worker_reset(void)
{
    struct shm_worker sw;

    memset(&sw, SHMT_GARBAGE, sizeof(sw));
    atomic_store(&sw.jobs_done, SHMT_OLD_JOBS);
    shm_worker_reset(&sw, SHMT_WALL_MS);
    CU_ASSERT_EQUAL(atomic_load(&sw.pid), 0);
    CU_ASSERT_EQUAL(atomic_load(&sw.wake_pending), 0);
    CU_ASSERT_EQUAL(atomic_load(&sw.active), 0);
    CU_ASSERT_EQUAL(atomic_load(&sw.jobs_done), 0);
    CU_ASSERT_EQUAL(atomic_load(&sw.started_ms), SHMT_WALL_MS);
}

/* Every state change of a job goes through shm.c, and the running count
 * follows it: pop counts, done and requeue uncount, the cap holds. */
static void test_job_state_owner(void)
{
    struct shm_view shm;
    uint32_t jobs[SHMT_RUNNING + 1], j, first;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, SHMT_QUEUE, SHMT_RUNNING,
                                      SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL(shm_job_pop(&shm, 0, &j), -1);       /* empty */
    for (int i = 0; i <= SHMT_RUNNING; i++) {
        CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 8, 0, &jobs[i]), 0);
        CU_ASSERT_EQUAL_FATAL(shm_job_enqueue(&shm, jobs[i]), 0);
    }
    for (int i = 0; i < SHMT_RUNNING; i++) {
        CU_ASSERT_EQUAL_FATAL(shm_job_pop(&shm, 2, &j), 0);
        CU_ASSERT_EQUAL(j, jobs[i]);                      /* in order */
        CU_ASSERT_EQUAL(shm.jobs[j].state, SHM_JOB_RUNNING);
        CU_ASSERT_EQUAL(shm.jobs[j].owner, 2);
    }
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING);
    /* At max_running the queue keeps its head. */
    CU_ASSERT_EQUAL(shm_job_pop(&shm, 2, &j), -1);
    CU_ASSERT_EQUAL(pq_size(&shm.pq), 1);

    /* Done: uncounted once; done again changes nothing. */
    shm_job_done(&shm, jobs[0]);
    CU_ASSERT_EQUAL(shm.jobs[jobs[0]].state, SHM_JOB_DONE);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING - 1);
    shm_job_done(&shm, jobs[0]);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING - 1);

    /* Requeue of a running job holding a target slot: slot given back,
     * uncounted, back at its place (ahead of the later job). */
    shm.jobs[jobs[1]].slot_target = 1;
    atomic_fetch_add(&shm.targets[1].active, 1);
    CU_ASSERT_EQUAL(shm_job_requeue(&shm, jobs[1]), 0);
    CU_ASSERT_EQUAL(shm.jobs[jobs[1]].state, SHM_JOB_QUEUED);
    CU_ASSERT_EQUAL(shm.jobs[jobs[1]].owner, SHM_NO_WORKER);
    CU_ASSERT_EQUAL(shm.jobs[jobs[1]].slot_target, SHM_NO_TARGET);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[1].active), 0);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING - 2);
    CU_ASSERT_EQUAL(shm_job_pop(&shm, 3, &first), 0);
    CU_ASSERT_EQUAL(first, jobs[1]);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING - 1);

    /* Requeue of a DONE job (its worker died before its frames left):
     * queued again, the count untouched. */
    CU_ASSERT_EQUAL(shm_job_requeue(&shm, jobs[0]), 0);
    CU_ASSERT_EQUAL(shm.jobs[jobs[0]].state, SHM_JOB_QUEUED);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING - 1);

    /* Free of a running job uncounts it too. */
    shm_job_free(&shm, jobs[2]);
    CU_ASSERT_EQUAL(shm.jobs[jobs[2]].state, SHM_JOB_FREE);
    CU_ASSERT_EQUAL(shm.hdr->running, SHMT_RUNNING - 2);

    /* The count is what shm_repair rebuilds from the states. */
    j = shm.hdr->running;
    shm_repair(&shm);
    CU_ASSERT_EQUAL(shm.hdr->running, j);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

/* A requeue that finds the queue full leaves the job DONE, uncounted,
 * for the master to end and free. */
static void test_requeue_full(void)
{
    struct shm_view shm;
    uint32_t j, run, other;

    CU_ASSERT_EQUAL_FATAL(shmt_create(&shm, 1, SHMT_RUNNING, SHMT_ARENA), 0);
    shm_lock(&shm);
    CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 8, 0, &j), 0);
    CU_ASSERT_EQUAL_FATAL(shm_job_enqueue(&shm, j), 0);
    CU_ASSERT_EQUAL_FATAL(shm_job_pop(&shm, 0, &run), 0);
    CU_ASSERT_EQUAL_FATAL(shmt_job(&shm, 8, 0, &other), 0);
    CU_ASSERT_EQUAL_FATAL(shm_job_enqueue(&shm, other), 0);  /* now full */
    CU_ASSERT_EQUAL(shm.hdr->running, 1);
    CU_ASSERT_EQUAL(shm_job_requeue(&shm, run), -1);
    CU_ASSERT_EQUAL(shm.jobs[run].state, SHM_JOB_DONE);
    CU_ASSERT_EQUAL(shm.hdr->running, 0);
    shm_job_done(&shm, run);                 /* the worker's end: no-op */
    CU_ASSERT_EQUAL(shm.hdr->running, 0);
    shm_unlock(&shm);
    shm_destroy(&shm);
}

static const CU_TestInfo shm_tests[] = {
    { "layout of a new segment", test_layout },
    { "job alloc, enqueue, free", test_job_life_cycle },
    { "queue order through the segment", test_queue_order },
    { "free list reuse bumps gen", test_free_list_reuse },
    { "re-queued job keeps its place", test_requeue_keeps_place },
    { "queue full", test_queue_full },
    { "arena full keeps the slot", test_arena_full },
    { "job table touched as used", test_jobs_touched_lazily },
    { "no free slot", test_no_free_slot },
    { "free of a running job", test_free_running_job },
    { "repair rebuilds derived state", test_repair },
    { "repair queues a lost push", test_repair_lost_push },
    { "owner died mid-update: lock repairs", test_owner_died_dirty },
    { "owner died clean: lock recovers", test_owner_died_clean },
    { "a worker slot starts from zero", test_worker_reset },
    { "job states and running count owned", test_job_state_owner },
    { "requeue into a full queue", test_requeue_full },
    CU_TEST_INFO_NULL
};

int register_shm_tests(void)
{
    return unit_add_suite("shm", shm_tests);
}
