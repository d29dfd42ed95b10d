/* pqueue.h - a bounded binary max-heap of job indices: higher priority
 * first, lower sequence number (earlier arrival) first within a priority.
 * Lives in the shared segment; a job's heap position is kept per job so a
 * cancelled or expired job leaves in O(log n). Pure: no locking here, the
 * caller holds the segment lock. */
#ifndef RCC_PQUEUE_H
#define RCC_PQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#define PQ_NONE UINT32_MAX

struct pq_entry {
    int32_t priority;
    uint32_t job;
    uint64_t seq;
};

/* The part stored in the segment. */
struct pq {
    uint32_t capacity;
    uint32_t size;
};

/* A process-local view: where the heap and position arrays are. */
struct pq_view {
    struct pq *hdr;
    struct pq_entry *heap;     /* capacity entries */
    uint32_t *pos;             /* job_count entries: heap index or PQ_NONE */
    uint32_t job_count;
};

/* Empties the queue and marks every job absent. */
void pq_init(struct pq_view *pq, uint32_t capacity);
/* 0, or -1 when the queue is full or job is out of range or present. */
int pq_push(struct pq_view *pq, uint32_t job, int32_t priority, uint64_t seq);
/* Removes the first job into *job; -1 when empty. */
int pq_pop(struct pq_view *pq, uint32_t *job);
/* The first job without removing it; -1 when empty. */
int pq_peek(const struct pq_view *pq, uint32_t *job);
/* Removes job wherever it is; -1 when it is not queued. */
int pq_remove(struct pq_view *pq, uint32_t job);
bool pq_contains(const struct pq_view *pq, uint32_t job);
uint32_t pq_size(const struct pq_view *pq);
/* Checks the heap order and the position index (tests, repair). */
bool pq_valid(const struct pq_view *pq);

#endif
