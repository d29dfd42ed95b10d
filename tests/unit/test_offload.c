/* test_offload.c - blocking jobs run off the event loop (offload.h): in
 * order, on another thread, while the loop keeps running; done callbacks
 * on the loop; offload_free finishes what is queued. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "offload.h"
#include "unit.h"
#include "util.h"

#define TOL_JOBS        3
#define TOL_WAIT_MS     10000   /* generous: a loaded machine */
#define TOL_STEP_NS     1000000L

struct tol_state {
    pthread_t loop_thread;
    atomic_bool loop_ran;       /* the loop's timer fired meanwhile */
    int ran[TOL_JOBS];          /* job order, by the job thread */
    int nran;
    int done[TOL_JOBS];         /* done order, on the loop */
    int ndone;
    bool off_loop;              /* every job ran on another thread */
    bool done_on_loop;
    struct event_base *base;
};

struct tol_job {
    struct tol_state *st;
    int id;
    bool wait_loop;             /* block until the loop has run */
};

static int tol_run(void *arg)
{
    struct tol_job *j = arg;
    struct timespec step = { 0, TOL_STEP_NS };

    if (pthread_equal(pthread_self(), j->st->loop_thread))
        j->st->off_loop = false;
    for (int waited = 0; j->wait_loop && !atomic_load(&j->st->loop_ran);
         waited++) {
        if (waited * TOL_STEP_NS / 1000000L > TOL_WAIT_MS)
            return -1;          /* the loop was stalled */
        nanosleep(&step, NULL);
    }
    j->st->ran[j->st->nran++] = j->id;
    return j->id;
}

static void tol_done(void *arg, int rc)
{
    struct tol_job *j = arg;

    if (!pthread_equal(pthread_self(), j->st->loop_thread) || rc != j->id)
        j->st->done_on_loop = false;
    j->st->done[j->st->ndone++] = j->id;
    if (j->st->ndone == TOL_JOBS)
        event_base_loopbreak(j->st->base);
}

static void tol_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    atomic_store(&((struct tol_state *)arg)->loop_ran, true);
}

static void tol_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void test_order_off_loop(void)
{
    struct tol_state st = { .off_loop = true, .done_on_loop = true };
    struct tol_job jobs[TOL_JOBS];
    struct offload *o;
    struct event *tick, *deadline;
    struct timeval now = { 0, 0 }, limit = util_ms_to_tv(TOL_WAIT_MS);

    st.loop_thread = pthread_self();
    st.base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(st.base);
    o = offload_new(st.base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    for (int i = 0; i < TOL_JOBS; i++) {
        jobs[i] = (struct tol_job){ &st, i + 1, i == 0 };
        CU_ASSERT_EQUAL(offload_run(o, tol_run, tol_done, &jobs[i]), 0);
    }
    CU_ASSERT_EQUAL(offload_pending(o), TOL_JOBS);
    /* The first job waits for this timer: it fires only if the loop runs
     * while the job blocks. */
    tick = evtimer_new(st.base, tol_tick, &st);
    deadline = evtimer_new(st.base, tol_deadline, st.base);
    CU_ASSERT_FATAL(tick != NULL && deadline != NULL);
    evtimer_add(tick, &now);
    evtimer_add(deadline, &limit);
    event_base_dispatch(st.base);
    CU_ASSERT_EQUAL(st.ndone, TOL_JOBS);
    for (int i = 0; i < st.ndone; i++) {
        CU_ASSERT_EQUAL(st.ran[i], i + 1);
        CU_ASSERT_EQUAL(st.done[i], i + 1);
    }
    CU_ASSERT(st.off_loop);
    CU_ASSERT(st.done_on_loop);
    CU_ASSERT_EQUAL(offload_pending(o), 0);
    offload_free(o);
    event_free(tick);
    event_free(deadline);
    event_base_free(st.base);
}

/* offload_free with jobs queued: they run, and their done callbacks
 * too, before it returns. */
static void test_free_finishes(void)
{
    struct tol_state st = { .off_loop = true, .done_on_loop = true };
    struct tol_job jobs[TOL_JOBS];
    struct offload *o;

    st.loop_thread = pthread_self();
    st.base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(st.base);
    o = offload_new(st.base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    for (int i = 0; i < TOL_JOBS; i++) {
        jobs[i] = (struct tol_job){ &st, i + 1, false };
        CU_ASSERT_EQUAL(offload_run(o, tol_run, tol_done, &jobs[i]), 0);
    }
    offload_free(o);
    CU_ASSERT_EQUAL(st.nran, TOL_JOBS);
    CU_ASSERT_EQUAL(st.ndone, TOL_JOBS);
    CU_ASSERT(st.done_on_loop);
    offload_free(NULL);
    event_base_free(st.base);
}

/* No job, no thread: free is immediate. */
static void test_idle(void)
{
    struct event_base *base = event_base_new();
    struct offload *o;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    o = offload_new(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(offload_pending(o), 0);
    offload_free(o);
    event_base_free(base);
}

static const CU_TestInfo offload_tests[] = {
    { "jobs run in order off the loop, which keeps running",
      test_order_off_loop },
    { "free runs the queued jobs and their done callbacks",
      test_free_finishes },
    { "an idle offloader starts no thread", test_idle },
    CU_TEST_INFO_NULL
};

int register_offload_tests(void)
{
    return unit_add_suite("offload", offload_tests);
}
