/* pqueue.c - the job priority queue: an array heap with a position index
 * so that removal from the middle is O(log n). */
#include "pqueue.h"

/* True when a must leave the queue before b. */
static bool pq_before(const struct pq_entry *a, const struct pq_entry *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->seq < b->seq;
}

static void pq_place(struct pq_view *pq, uint32_t i, struct pq_entry e)
{
    pq->heap[i] = e;
    pq->pos[e.job] = i;
}

static void pq_sift_up(struct pq_view *pq, uint32_t i)
{
    struct pq_entry e = pq->heap[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / 2;

        if (!pq_before(&e, &pq->heap[parent]))
            break;
        pq_place(pq, i, pq->heap[parent]);
        i = parent;
    }
    pq_place(pq, i, e);
}

static void pq_sift_down(struct pq_view *pq, uint32_t i)
{
    struct pq_entry e = pq->heap[i];
    uint32_t n = pq->hdr->size;

    for (;;) {
        uint32_t child = 2 * i + 1;

        if (child >= n)
            break;
        if (child + 1 < n && pq_before(&pq->heap[child + 1],
                                       &pq->heap[child]))
            child++;
        if (!pq_before(&pq->heap[child], &e))
            break;
        pq_place(pq, i, pq->heap[child]);
        i = child;
    }
    pq_place(pq, i, e);
}

void pq_init(struct pq_view *pq, uint32_t capacity)
{
    pq->hdr->capacity = capacity;
    pq->hdr->size = 0;
    for (uint32_t j = 0; j < pq->job_count; j++)
        pq->pos[j] = PQ_NONE;
}

int pq_push(struct pq_view *pq, uint32_t job, int32_t priority, uint64_t seq)
{
    struct pq_entry e = { priority, job, seq };
    uint32_t i = pq->hdr->size;

    if (i >= pq->hdr->capacity || job >= pq->job_count ||
        pq->pos[job] != PQ_NONE)
        return -1;
    pq->hdr->size++;
    pq_place(pq, i, e);
    pq_sift_up(pq, i);
    return 0;
}

int pq_peek(const struct pq_view *pq, uint32_t *job)
{
    if (pq->hdr->size == 0)
        return -1;
    *job = pq->heap[0].job;
    return 0;
}

int pq_remove(struct pq_view *pq, uint32_t job)
{
    uint32_t i, last;

    if (job >= pq->job_count || pq->pos[job] == PQ_NONE)
        return -1;
    i = pq->pos[job];
    last = --pq->hdr->size;
    pq->pos[job] = PQ_NONE;
    if (i == last)
        return 0;
    pq_place(pq, i, pq->heap[last]);
    /* The moved entry may belong above or below its new place. */
    if (i > 0 && pq_before(&pq->heap[i], &pq->heap[(i - 1) / 2]))
        pq_sift_up(pq, i);
    else
        pq_sift_down(pq, i);
    return 0;
}

int pq_pop(struct pq_view *pq, uint32_t *job)
{
    if (pq_peek(pq, job) < 0)
        return -1;
    return pq_remove(pq, *job);
}

bool pq_contains(const struct pq_view *pq, uint32_t job)
{
    return job < pq->job_count && pq->pos[job] != PQ_NONE;
}

uint32_t pq_size(const struct pq_view *pq)
{
    return pq->hdr->size;
}

bool pq_valid(const struct pq_view *pq)
{
    uint32_t n = pq->hdr->size, present = 0;

    if (n > pq->hdr->capacity)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (pq->heap[i].job >= pq->job_count ||
            pq->pos[pq->heap[i].job] != i)
            return false;
        if (i > 0 && pq_before(&pq->heap[i], &pq->heap[(i - 1) / 2]))
            return false;
    }
    for (uint32_t j = 0; j < pq->job_count; j++)
        if (pq->pos[j] != PQ_NONE)
            present++;
    return present == n;
}
