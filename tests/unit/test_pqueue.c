/* test_pqueue.c - the job heap: priority then arrival order, bounds,
 * removal from the middle, and a long random run checked step by step
 * against a brute-force model. pq_valid() is checked after every
 * operation. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "pqueue.h"
#include "unit.h"

#define PQT_JOBS          64
#define PQT_CAPACITY      48       /* below PQT_JOBS so "full" happens */
#define PQT_RANDOM_OPS    20000
#define PQT_RANDOM_SEED   0x9E3779B97F4A7C15ULL
#define PQT_PRIO_SPREAD   7        /* priorities in [-3, 3]: many ties */

struct pqt {
    struct pq hdr;
    struct pq_entry heap[PQT_JOBS];
    uint32_t pos[PQT_JOBS];
    struct pq_view view;
};

static void pqt_init(struct pqt *t, uint32_t capacity)
{
    memset(t, 0xA5, sizeof(*t));    /* garbage pq_init must clear */
    t->view.hdr = &t->hdr;
    t->view.heap = t->heap;
    t->view.pos = t->pos;
    t->view.job_count = PQT_JOBS;
    pq_init(&t->view, capacity);
}

static void test_empty(void)
{
    struct pqt t;
    uint32_t job = 7;

    pqt_init(&t, PQT_CAPACITY);
    CU_ASSERT_EQUAL(pq_size(&t.view), 0);
    CU_ASSERT_TRUE(pq_valid(&t.view));
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), -1);
    CU_ASSERT_EQUAL(pq_peek(&t.view, &job), -1);
    CU_ASSERT_EQUAL(job, 7);
    CU_ASSERT_EQUAL(pq_remove(&t.view, 3), -1);
    for (uint32_t j = 0; j < PQT_JOBS; j++)
        CU_ASSERT_FALSE(pq_contains(&t.view, j));
}

static void test_priority_then_fifo(void)
{
    static const int32_t prio[] = { 1, 5, 3, 5, 1, 9, -2, 3, 5 };
    static const uint32_t order[] = { 5, 1, 3, 8, 2, 7, 0, 4, 6 };
    const uint32_t n = sizeof(prio) / sizeof(prio[0]);
    struct pqt t;
    uint32_t job;

    pqt_init(&t, PQT_CAPACITY);
    for (uint32_t j = 0; j < n; j++) {
        CU_ASSERT_EQUAL(pq_push(&t.view, j, prio[j], 100 + j), 0);
        CU_ASSERT_TRUE(pq_valid(&t.view));
    }
    CU_ASSERT_EQUAL(pq_size(&t.view), n);
    CU_ASSERT_EQUAL(pq_peek(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 5);
    CU_ASSERT_EQUAL(pq_size(&t.view), n);
    for (uint32_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
        CU_ASSERT_EQUAL(job, order[i]);
        CU_ASSERT_FALSE(pq_contains(&t.view, job));
        CU_ASSERT_TRUE(pq_valid(&t.view));
    }
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), -1);
}

/* Within one priority the sequence number decides, not push order. */
static void test_seq_not_push_order(void)
{
    static const uint64_t seq[] = { 50, 10, 40, 20, 30 };
    static const uint32_t order[] = { 1, 3, 4, 2, 0 };
    const uint32_t n = sizeof(seq) / sizeof(seq[0]);
    struct pqt t;
    uint32_t job;

    pqt_init(&t, PQT_CAPACITY);
    for (uint32_t j = 0; j < n; j++)
        CU_ASSERT_EQUAL(pq_push(&t.view, j, 0, seq[j]), 0);
    for (uint32_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
        CU_ASSERT_EQUAL(job, order[i]);
    }
}

static void test_extreme_priorities(void)
{
    struct pqt t;
    uint32_t job;

    pqt_init(&t, PQT_CAPACITY);
    CU_ASSERT_EQUAL(pq_push(&t.view, 0, INT32_MIN, 1), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 1, INT32_MAX, UINT64_MAX), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 2, 0, 0), 0);
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 1);
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 2);
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 0);
}

static void test_capacity(void)
{
    const uint32_t capacity = 8;
    struct pqt t;
    uint32_t job;

    pqt_init(&t, capacity);
    for (uint32_t j = 0; j < capacity; j++)
        CU_ASSERT_EQUAL(pq_push(&t.view, j, (int32_t)j, j), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, capacity, 100, 0), -1);
    CU_ASSERT_FALSE(pq_contains(&t.view, capacity));
    CU_ASSERT_EQUAL(pq_size(&t.view), capacity);
    CU_ASSERT_TRUE(pq_valid(&t.view));
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, capacity - 1);
    CU_ASSERT_EQUAL(pq_push(&t.view, capacity, 100, 0), 0);
    CU_ASSERT_TRUE(pq_valid(&t.view));

    /* Capacity zero takes nothing. */
    pqt_init(&t, 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 0, 0, 0), -1);
    CU_ASSERT_TRUE(pq_valid(&t.view));
}

static void test_duplicate_and_range(void)
{
    struct pqt t;

    pqt_init(&t, PQT_CAPACITY);
    CU_ASSERT_EQUAL(pq_push(&t.view, 4, 1, 1), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 4, 2, 2), -1);
    CU_ASSERT_EQUAL(pq_size(&t.view), 1);
    CU_ASSERT_EQUAL(pq_push(&t.view, PQT_JOBS, 1, 1), -1);
    CU_ASSERT_EQUAL(pq_push(&t.view, PQ_NONE, 1, 1), -1);
    CU_ASSERT_EQUAL(pq_remove(&t.view, PQT_JOBS), -1);
    CU_ASSERT_EQUAL(pq_remove(&t.view, PQ_NONE), -1);
    CU_ASSERT_FALSE(pq_contains(&t.view, PQT_JOBS));
    CU_ASSERT_EQUAL(pq_remove(&t.view, 4), 0);
    CU_ASSERT_EQUAL(pq_remove(&t.view, 4), -1);
    CU_ASSERT_EQUAL(pq_push(&t.view, 4, 2, 2), 0);
    CU_ASSERT_TRUE(pq_valid(&t.view));
}

/* Removing from every position, including the root and the last slot,
 * keeps the heap valid and the rest in order. */
static void test_remove_middle(void)
{
    const uint32_t n = 31;

    for (uint32_t victim = 0; victim < n; victim++) {
        struct pqt t;
        uint32_t job, prev_job = PQ_NONE;

        pqt_init(&t, PQT_CAPACITY);
        for (uint32_t j = 0; j < n; j++)
            CU_ASSERT_EQUAL(pq_push(&t.view, j, (int32_t)((j * 7) % 5), j), 0);
        CU_ASSERT_EQUAL(pq_remove(&t.view, victim), 0);
        CU_ASSERT_TRUE(pq_valid(&t.view));
        CU_ASSERT_FALSE(pq_contains(&t.view, victim));
        CU_ASSERT_EQUAL(pq_size(&t.view), n - 1);
        while (pq_pop(&t.view, &job) == 0) {
            CU_ASSERT_NOT_EQUAL(job, victim);
            if (prev_job != PQ_NONE) {
                int32_t pp = (int32_t)((prev_job * 7) % 5);
                int32_t pj = (int32_t)((job * 7) % 5);

                CU_ASSERT(pp > pj || (pp == pj && prev_job < job));
            }
            prev_job = job;
            CU_ASSERT_TRUE(pq_valid(&t.view));
        }
    }
}

/* A removal whose replacement must move up: the last entry outranks the
 * removed entry's parent. */
static void test_remove_sifts_up(void)
{
    struct pqt t;
    uint32_t job;

    pqt_init(&t, PQT_CAPACITY);
    /* Heap by index: 0:p100, 1:p50, 2:p90, 3:p10, 4:p10, 5:p80, 6:p80. */
    CU_ASSERT_EQUAL(pq_push(&t.view, 0, 100, 0), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 1, 50, 1), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 2, 90, 2), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 3, 10, 3), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 4, 10, 4), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 5, 80, 5), 0);
    CU_ASSERT_EQUAL(pq_push(&t.view, 6, 80, 6), 0);
    CU_ASSERT_TRUE(pq_valid(&t.view));
    /* Job 3 sits under job 1 (p50); job 6 (p80) replaces it. */
    CU_ASSERT_EQUAL(pq_remove(&t.view, 3), 0);
    CU_ASSERT_TRUE(pq_valid(&t.view));
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 0);
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 2);
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 5);
    CU_ASSERT_EQUAL(pq_pop(&t.view, &job), 0);
    CU_ASSERT_EQUAL(job, 6);
    CU_ASSERT_TRUE(pq_valid(&t.view));
}

/* pq_valid() is what repair and the other tests rely on: it must notice
 * each kind of damage. */
static void test_valid_detects_damage(void)
{
    struct pqt t;

    pqt_init(&t, PQT_CAPACITY);
    for (uint32_t j = 0; j < 10; j++)
        CU_ASSERT_EQUAL(pq_push(&t.view, j, (int32_t)j, j), 0);
    CU_ASSERT_TRUE(pq_valid(&t.view));

    t.heap[3].priority = 1000;           /* out of heap order */
    CU_ASSERT_FALSE(pq_valid(&t.view));
    t.heap[3].priority = (int32_t)t.heap[3].job;
    CU_ASSERT_TRUE(pq_valid(&t.view));

    t.pos[t.heap[2].job] = 5;            /* position index wrong */
    CU_ASSERT_FALSE(pq_valid(&t.view));
    t.pos[t.heap[2].job] = 2;

    t.pos[40] = 0;                       /* a stray "present" job */
    CU_ASSERT_FALSE(pq_valid(&t.view));
    t.pos[40] = PQ_NONE;

    t.hdr.size = PQT_CAPACITY + 1;       /* size beyond capacity */
    CU_ASSERT_FALSE(pq_valid(&t.view));
    t.hdr.size = 10;
    CU_ASSERT_TRUE(pq_valid(&t.view));
}

/* The brute-force model: which jobs are queued with what key. */
struct pqt_model {
    int present[PQT_JOBS];
    int32_t prio[PQT_JOBS];
    uint64_t seq[PQT_JOBS];
    uint32_t size;
};

static uint32_t pqt_model_first(const struct pqt_model *m)
{
    uint32_t best = PQ_NONE;

    for (uint32_t j = 0; j < PQT_JOBS; j++) {
        if (!m->present[j])
            continue;
        if (best == PQ_NONE || m->prio[j] > m->prio[best] ||
            (m->prio[j] == m->prio[best] && m->seq[j] < m->seq[best]))
            best = j;
    }
    return best;
}

/* One random operation on both the heap and the model; 0 when they
 * agree. */
static int pqt_random_step(struct pqt *t, struct pqt_model *m,
                           uint64_t *rng, uint64_t *next_seq)
{
    uint32_t job = (uint32_t)unit_rand_below(rng, PQT_JOBS), got;
    uint64_t op = unit_rand_below(rng, 10);
    int rc, want;

    if (op < 5) {
        int32_t prio = (int32_t)unit_rand_below(rng, PQT_PRIO_SPREAD) - 3;

        want = (m->present[job] || m->size >= PQT_CAPACITY) ? -1 : 0;
        rc = pq_push(&t->view, job, prio, *next_seq);
        if (want == 0) {
            m->present[job] = 1;
            m->prio[job] = prio;
            m->seq[job] = (*next_seq)++;
            m->size++;
        }
    } else if (op < 8) {
        uint32_t first = pqt_model_first(m);

        want = first == PQ_NONE ? -1 : 0;
        rc = pq_pop(&t->view, &got);
        if (want == 0) {
            if (rc != 0 || got != first)
                return -1;
            m->present[first] = 0;
            m->size--;
        }
    } else {
        want = m->present[job] ? 0 : -1;
        rc = pq_remove(&t->view, job);
        if (want == 0) {
            m->present[job] = 0;
            m->size--;
        }
    }
    if (rc != want || !pq_valid(&t->view) || pq_size(&t->view) != m->size)
        return -1;
    return pq_contains(&t->view, job) == (m->present[job] != 0) ? 0 : -1;
}

static void test_random_against_model(void)
{
    struct pqt t;
    struct pqt_model m;
    uint64_t rng = PQT_RANDOM_SEED, next_seq = 1;
    int failed_at = -1;
    uint32_t job;

    pqt_init(&t, PQT_CAPACITY);
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < PQT_RANDOM_OPS && failed_at < 0; i++)
        if (pqt_random_step(&t, &m, &rng, &next_seq) < 0)
            failed_at = i;
    CU_ASSERT_EQUAL(failed_at, -1);
    /* Drain: the remaining order matches the model too. */
    while (failed_at < 0 && m.size > 0) {
        uint32_t first = pqt_model_first(&m);

        CU_ASSERT_EQUAL_FATAL(pq_pop(&t.view, &job), 0);
        CU_ASSERT_EQUAL_FATAL(job, first);
        m.present[first] = 0;
        m.size--;
    }
    CU_ASSERT_EQUAL(pq_size(&t.view), 0);
}

static const CU_TestInfo pqueue_tests[] = {
    { "empty queue", test_empty },
    { "priority then FIFO", test_priority_then_fifo },
    { "seq decides within a priority", test_seq_not_push_order },
    { "extreme priorities and seqs", test_extreme_priorities },
    { "push to capacity then -1", test_capacity },
    { "duplicate push and out-of-range jobs", test_duplicate_and_range },
    { "remove from every position", test_remove_middle },
    { "remove whose replacement sifts up", test_remove_sifts_up },
    { "pq_valid detects damage", test_valid_detects_damage },
    { "random ops against a model", test_random_against_model },
    CU_TEST_INFO_NULL
};

int register_pqueue_tests(void)
{
    return unit_add_suite("pqueue", pqueue_tests);
}
