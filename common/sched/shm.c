/* shm.c - lays out the shared segment, guards it with a robust
 * process-shared mutex and repairs it when a holder died mid-update. */
#include "shm.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define SHM_ALIGN 64

static size_t shm_align(size_t n)
{
    return (n + SHM_ALIGN - 1) & ~(size_t)(SHM_ALIGN - 1);
}

static void shm_bind(struct shm_view *shm, struct shm_hdr *hdr)
{
    uint8_t *base = (uint8_t *)hdr;

    shm->hdr = hdr;
    shm->jobs = (struct shm_job *)(base + hdr->off_jobs);
    shm->targets = (struct shm_target *)(base + hdr->off_targets);
    shm->vmodels = (struct shm_vmodel *)(base + hdr->off_vmodels);
    shm->lb = (struct lb_target *)(base + hdr->off_lb);
    shm->clients = (struct shm_client *)(base + hdr->off_clients);
    shm->pq.hdr = &hdr->pq;
    shm->pq.heap = (struct pq_entry *)(base + hdr->off_heap);
    shm->pq.pos = (uint32_t *)(base + hdr->off_pos);
    shm->pq.job_count = hdr->job_count;
    shm->arena.hdr = &hdr->arena;
    shm->arena.bitmap = (uint64_t *)(base + hdr->off_bitmap);
    shm->arena.data = base + hdr->off_data;
}

static void shm_rebuild_free_list(struct shm_view *shm)
{
    struct shm_hdr *hdr = shm->hdr;

    hdr->free_head = PQ_NONE;
    for (uint32_t j = hdr->job_high; j-- > 0;) {
        if (shm->jobs[j].state == SHM_JOB_FREE) {
            shm->jobs[j].next_free = hdr->free_head;
            hdr->free_head = j;
        }
    }
}

int shm_create(struct shm_view *shm, const struct cfg *cfg)
{
    struct shm_hdr layout;
    uint32_t jobs = (uint32_t)cfg->queue_capacity +
                    (uint32_t)cfg->max_concurrent_requests + SHM_JOB_SLACK;
    uint64_t blocks = ((uint64_t)cfg->body_arena_bytes + ARENA_BLOCK - 1) /
                      ARENA_BLOCK;
    size_t off = shm_align(sizeof(struct shm_hdr));
    pthread_mutexattr_t attr;
    struct shm_hdr *hdr;
    void *mem;

    memset(&layout, 0, sizeof(layout));
    layout.off_jobs = off;
    off = shm_align(off + (size_t)jobs * sizeof(struct shm_job));
    layout.off_heap = off;
    off = shm_align(off + (size_t)cfg->queue_capacity *
                    sizeof(struct pq_entry));
    layout.off_pos = off;
    off = shm_align(off + (size_t)jobs * sizeof(uint32_t));
    layout.off_targets = off;
    off = shm_align(off + (size_t)SHM_TARGET_SLOTS *
                    sizeof(struct shm_target));
    layout.off_vmodels = off;
    off = shm_align(off + (size_t)SHM_VMODEL_SLOTS *
                    sizeof(struct shm_vmodel));
    layout.off_lb = off;
    off = shm_align(off + (size_t)SHM_TARGET_SLOTS *
                    sizeof(struct lb_target));
    layout.off_clients = off;
    off = shm_align(off + (size_t)SHM_CLIENT_SLOTS *
                    sizeof(struct shm_client));
    layout.off_bitmap = off;
    off = shm_align(off + arena_bitmap_bytes(blocks));
    layout.off_data = off;
    off = shm_align(off + blocks * ARENA_BLOCK);
    layout.size = off;

    /* Anonymous shared memory is zero-filled and only backed when
     * touched, so the arena costs nothing until bodies arrive. */
    mem = mmap(NULL, layout.size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    hdr = mem;
    *hdr = layout;
    hdr->magic = SHM_MAGIC;
    hdr->layout_version = SHM_LAYOUT_VERSION;
    hdr->job_count = jobs;
    hdr->target_slots = SHM_TARGET_SLOTS;
    hdr->vmodel_slots = SHM_VMODEL_SLOTS;
    hdr->max_running = (uint32_t)cfg->max_concurrent_requests;
    hdr->next_seq = 1;

    if (pthread_mutexattr_init(&attr) != 0)
        goto out_unmap;
    if (pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(&hdr->lock, &attr) != 0) {
        pthread_mutexattr_destroy(&attr);
        goto out_unmap;
    }
    pthread_mutexattr_destroy(&attr);

    shm_bind(shm, hdr);
    /* Jobs stay zero (FREE, never written) until shm_job_alloc first takes
     * them, and target and virtual model slots until slots_apply does:
     * untouched pages cost nothing. */
    hdr->job_high = 0;
    shm_rebuild_free_list(shm);
    pq_init(&shm->pq, (uint32_t)cfg->queue_capacity);
    arena_init(&shm->arena, blocks);
    return 0;

out_unmap:
    munmap(mem, layout.size);
    errno = ENOMEM;
    return -1;
}

void shm_detach(struct shm_view *shm)
{
    if (shm->hdr == NULL)
        return;
    munmap(shm->hdr, shm->hdr->size);
    memset(shm, 0, sizeof(*shm));
}

void shm_destroy(struct shm_view *shm)
{
    if (shm->hdr == NULL)
        return;
    pthread_mutex_destroy(&shm->hdr->lock);
    shm_detach(shm);
}

void shm_lock(struct shm_view *shm)
{
    int rc = pthread_mutex_lock(&shm->hdr->lock);

    if (rc == EOWNERDEAD) {
        /* Its holder died: the data may be half-updated. */
        if (shm->hdr->dirty)
            shm_repair(shm);
        shm->hdr->repairs++;
        pthread_mutex_consistent(&shm->hdr->lock);
    }
    shm->hdr->dirty = 1;
}

void shm_unlock(struct shm_view *shm)
{
    shm->hdr->dirty = 0;
    pthread_mutex_unlock(&shm->hdr->lock);
}

void shm_repair(struct shm_view *shm)
{
    struct shm_hdr *hdr = shm->hdr;
    uint64_t blocks = hdr->arena.blocks;

    pq_init(&shm->pq, hdr->pq.capacity);
    arena_init(&shm->arena, blocks);
    hdr->running = 0;
    for (uint32_t t = 0; t < hdr->target_slots; t++) {
        atomic_store(&shm->targets[t].active, 0);
        cb_repair(&shm->targets[t].cb);
        atomic_store(&shm->targets[t].state, shm->targets[t].cb.state);
        bucket_pair_repair(&shm->targets[t].budget);
    }
    for (uint32_t c = 0; c < SHM_CLIENT_SLOTS; c++)
        if (shm->clients[c].used)
            bucket_pair_repair(&shm->clients[c].budget);
    for (uint32_t h = 0; h < SHM_HEALTH_SLOTS; h++)
        if (hdr->health[h].used)
            health_repair(&hdr->health[h].st);
    for (uint32_t j = 0; j < hdr->job_high; j++) {
        struct shm_job *job = &shm->jobs[j];

        if (job->state == SHM_JOB_FREE)
            continue;
        arena_mark(&shm->arena, job->body_off, job->body_len);
        if (job->state == SHM_JOB_QUEUED &&
            pq_push(&shm->pq, j, job->priority, job->seq) < 0)
            job->state = SHM_JOB_FREE;   /* cannot happen: same capacity */
        if (job->state == SHM_JOB_RUNNING)
            hdr->running++;
        if (job->slot_target >= 0 &&
            (uint32_t)job->slot_target < hdr->target_slots)
            atomic_fetch_add(&shm->targets[job->slot_target].active, 1);
    }
    shm_rebuild_free_list(shm);
}

int shm_job_alloc(struct shm_view *shm, uint32_t body_len, uint32_t *jobp)
{
    struct shm_hdr *hdr = shm->hdr;
    struct shm_job *job;
    uint32_t j = hdr->free_head;
    uint64_t off;

    if (j == PQ_NONE && hdr->job_high >= hdr->job_count)
        return -1;
    if (arena_alloc(&shm->arena, body_len, &off) < 0)
        return -1;
    if (j == PQ_NONE) {
        /* A job never used yet: the lowest, so the table is touched
         * from its start as the load grows. */
        j = hdr->job_high++;
        job = &shm->jobs[j];
    } else {
        job = &shm->jobs[j];
        hdr->free_head = job->next_free;
    }
    job->next_free = PQ_NONE;
    job->gen++;
    job->body_off = off;
    job->body_len = body_len;
    job->owner = SHM_NO_WORKER;
    job->target = SHM_NO_TARGET;
    job->slot_target = SHM_NO_TARGET;
    job->probe = 0;
    job->client = SHM_NO_CLIENT;
    job->retry_after_s = 0;
    job->seq = 0;
    job->state = SHM_JOB_RESERVED;
    atomic_store(&job->cancel, 0);
    *jobp = j;
    return 0;
}

int shm_job_enqueue(struct shm_view *shm, uint32_t j)
{
    struct shm_job *job = &shm->jobs[j];

    if (job->seq == 0)
        job->seq = shm->hdr->next_seq++;
    if (pq_push(&shm->pq, j, job->priority, job->seq) < 0)
        return -1;
    job->state = SHM_JOB_QUEUED;
    job->owner = SHM_NO_WORKER;
    return 0;
}

int shm_job_pop(struct shm_view *shm, int owner, uint32_t *jobp)
{
    struct shm_job *job;
    uint32_t j;

    if (shm->hdr->running >= shm->hdr->max_running ||
        pq_pop(&shm->pq, &j) < 0)
        return -1;
    job = &shm->jobs[j];
    job->state = SHM_JOB_RUNNING;
    job->owner = owner;
    shm->hdr->running++;
    *jobp = j;
    return 0;
}

/* A RUNNING job leaves that state: the one place the count goes down
 * (shm_repair recounts it from the states). */
static void shm_job_stop_running(struct shm_view *shm, struct shm_job *job,
                                 uint32_t state)
{
    if (job->state == SHM_JOB_RUNNING && shm->hdr->running > 0)
        shm->hdr->running--;
    job->state = state;
}

void shm_job_done(struct shm_view *shm, uint32_t j)
{
    struct shm_job *job = &shm->jobs[j];

    if (job->state == SHM_JOB_RUNNING)
        shm_job_stop_running(shm, job, SHM_JOB_DONE);
}

int shm_job_requeue(struct shm_view *shm, uint32_t j)
{
    struct shm_job *job = &shm->jobs[j];

    shm_job_release_target(shm, job);
    shm_job_stop_running(shm, job, SHM_JOB_DONE);
    /* It keeps its sequence number: back to its place in line. */
    return shm_job_enqueue(shm, j);
}

void shm_job_release_target(struct shm_view *shm, struct shm_job *job)
{
    if (job->slot_target < 0)
        return;
    atomic_fetch_sub(&shm->targets[job->slot_target].active, 1);
    if (job->probe)
        cb_release_probe(&shm->targets[job->slot_target].cb);
    job->probe = 0;
    job->slot_target = SHM_NO_TARGET;
}

void shm_job_free(struct shm_view *shm, uint32_t j)
{
    struct shm_job *job = &shm->jobs[j];

    pq_remove(&shm->pq, j);
    shm_job_stop_running(shm, job, SHM_JOB_FREE);
    shm_job_release_target(shm, job);
    arena_free(&shm->arena, job->body_off, job->body_len);
    job->seq = 0;
    job->owner = SHM_NO_WORKER;
    job->next_free = shm->hdr->free_head;
    shm->hdr->free_head = j;
}

void shm_worker_reset(struct shm_worker *sw, int64_t started_wall_ms)
{
    atomic_store(&sw->pid, 0);
    atomic_store(&sw->wake_pending, 0);
    atomic_store(&sw->active, 0);
    atomic_store(&sw->jobs_done, 0);
    atomic_store(&sw->started_ms, started_wall_ms);
}
