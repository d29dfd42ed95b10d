/* worker.c - the worker process's loop: setup and teardown, the event
 * loop, waking on the eventfd and pulling jobs from the shared queue
 * (shm_job_pop) while under the caps, and reading the master's frames
 * (CANCEL, PAUSE/RESUME, SHUTDOWN). A job's life is call.c's, the frames
 * out are outq.c's; neither calls back in here except through the hooks
 * set in struct worker (call_ended, resume_reading, provider_ops). */
#include "worker_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "probe.h"

/* Takes jobs from the queue while this worker and the whole pipeline
 * are under their concurrency caps. */
static void worker_pull(struct worker *w)
{
    /* A call that ends at once calls back in here; the loop below picks
     * up the freed capacity instead of recursing. */
    if (w->pulling)
        return;
    w->pulling = true;
    w->parked_count = 0;
    while (!w->stopping && !w->blocked && w->active < w->max_active) {
        uint32_t j;

        shm_lock(&w->shm);
        /* After a reload only workers of the new configuration take
         * jobs: a job may name a target or model this one lacks. */
        if (w->shm.hdr->config_gen != w->slots->generation ||
            shm_job_pop(&w->shm, w->slot, &j) < 0) {
            shm_unlock(&w->shm);
            break;
        }
        shm_unlock(&w->shm);
        call_begin(w, j);
    }
    /* Jobs set aside for a rate budget go back to their places; the
     * budget timer pulls again when the first one refills. */
    for (int i = 0; i < w->parked_count; i++) {
        call_unpark(w->parked[i]);
        w->blocked = true;
    }
    w->parked_count = 0;
    w->pulling = false;
}

static void worker_budget_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    w->budget_at_ms = INT64_MAX;
    w->blocked = false;
    worker_pull(w);
}

/* w->park: a fresh job whose targets are all out of rate budget until
 * at_ms. Set aside for the rest of this pull (outside one, or with no
 * room left, it goes back to the queue at once); the timer is moved to
 * at_ms when that is sooner. */
static void worker_park(struct call *c, int64_t at_ms)
{
    struct worker *w = c->w;

    if (w->pulling && w->parked_count < WORKER_PARK_MAX) {
        w->parked[w->parked_count++] = c;
    } else {
        call_unpark(c);
        w->blocked = true;
    }
    if (at_ms < w->budget_at_ms) {
        struct timeval tv = util_ms_to_tv(at_ms - util_now_ms());

        w->budget_at_ms = at_ms;
        UTIL_MUST(evtimer_add(w->budget_timer, &tv), "the budget timer");
    }
}

/* A call ended (w->call_ended): stop when asked to and idle, else look
 * for more work. */
static void worker_call_ended(struct worker *w)
{
    if (w->stopping && w->active == 0)
        event_base_loopbreak(w->base);
    else
        worker_pull(w);
}

/* The running call of job/gen, or NULL when it ended meanwhile. */
static struct call *worker_call(struct worker *w, uint32_t job, uint32_t gen)
{
    struct call *c = job < w->shm.hdr->job_count ? w->calls[job] : NULL;

    return c != NULL && c->gen == gen ? c : NULL;
}

static void worker_read_cb(struct chan *ch, void *arg)
{
    struct worker *w = arg;
    struct evbuffer *in = ch->in;

    for (;;) {
        size_t avail = evbuffer_get_length(in);
        const uint8_t *p;
        struct frame f;
        int n;

        if (avail < FRAME_HDR_SIZE)
            return;
        p = evbuffer_pullup(in, avail < FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD
                                ? (ev_ssize_t)avail
                                : FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD);
        n = frame_decode(p, avail, &f);
        if (n == 0)
            return;
        if (n < 0) {
            log_msg(&w->log, LOG_ERROR, NULL, "bad frame from the master");
            event_base_loopbreak(w->base);
            return;
        }
        if (f.type == FRAME_CANCEL) {
            struct call *c = worker_call(w, f.job, f.gen);

            if (c != NULL)
                call_cancel(c);
        } else if (f.type == FRAME_PAUSE || f.type == FRAME_RESUME) {
            struct call *c = worker_call(w, f.job, f.gen);

            if (c != NULL)
                call_pause(c, f.type == FRAME_PAUSE);
        } else if (f.type == FRAME_OAUTH) {
            auth_cluster_frame(w, f.status, f.job, f.payload, f.len);
        } else if (f.type == FRAME_SHUTDOWN) {
            w->stopping = true;
            if (w->active == 0)
                event_base_loopbreak(w->base);
        }
        evbuffer_drain(in, (size_t)n);
    }
}

static void worker_close_cb(struct chan *ch, void *arg)
{
    struct worker *w = arg;

    (void)ch;
    /* The master is gone: nobody can receive our answers. */
    log_msg(&w->log, LOG_WARN, NULL, "lost the master; exiting");
    w->stopping = true;
    event_base_loopbreak(w->base);
}

static void worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_msg(&w->log, LOG_WARN, NULL, "eventfd read: %s",
                strerror(errno));
    /* Read, then clear, then pull: a job queued after the clear writes
     * the eventfd again; one queued before it is found by the pull. */
    atomic_store(&w->self->wake_pending, 0);
    w->blocked = false;        /* a new job may fit where the last did not */
    worker_pull(w);
}

static void worker_term_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    w->stopping = true;
    if (w->active == 0)
        event_base_loopbreak(w->base);
}

static int worker_setup(struct worker *w, const struct worker_args *a)
{
    uint64_t seed;

    w->cfg = a->cfg;
    w->slots = a->slots;
    w->shm = a->shm;
    w->slot = a->slot;
    w->self = &w->shm.hdr->workers[a->slot];
    w->log = a->log;
    w->wake_fd = a->wake_fd;
    w->max_active = a->cfg->max_concurrent_per_worker;
    if (util_random_bytes(&seed, sizeof(seed)) < 0 || seed == 0)
        seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL + 1;
    w->rng = seed;
    w->call_ended = worker_call_ended;
    w->resume_reading = call_resume_reading;
    w->park = worker_park;
    w->budget_at_ms = INT64_MAX;
    w->calls = calloc(w->shm.hdr->job_count, sizeof(*w->calls));
    /* + 1: never calloc(0), which may answer NULL. */
    w->provider_ops = calloc((size_t)w->cfg->provider_count + 1,
                             sizeof(*w->provider_ops));
    w->base = util_event_base_new();
    if (w->calls == NULL || w->provider_ops == NULL || w->base == NULL)
        return -1;
    for (int p = 0; p < w->cfg->provider_count; p++)
        w->provider_ops[p] = provider_for(&w->cfg->providers[p]);
    if (chan_init(&w->master, w->base, a->sock_fd, WORKER_READ_MAX,
                  worker_read_cb, worker_close_cb, w) < 0) {
        close(a->sock_fd);
        return -1;
    }
    w->master_ok = true;
    if (outq_init(w) < 0)
        return -1;
    w->wake_ev = event_new(w->base, a->wake_fd, EV_READ | EV_PERSIST,
                           worker_wake_cb, w);
    w->term_ev = evsignal_new(w->base, SIGTERM, worker_term_cb, w);
    w->budget_timer = evtimer_new(w->base, worker_budget_cb, w);
    if (w->wake_ev == NULL || w->term_ev == NULL || w->budget_timer == NULL ||
        event_add(w->wake_ev, NULL) < 0 || event_add(w->term_ev, NULL) < 0)
        return -1;
    if (upstream_init(w) < 0 || provider_init(w) < 0)
        return -1;
    return probe_init(w);
}

static void worker_teardown(struct worker *w)
{
    if (w->calls != NULL) {
        for (uint32_t j = 0; j < w->shm.hdr->job_count; j++) {
            if (w->calls[j] != NULL)
                call_abandon(w->calls[j]);
        }
    }
    probe_free(w);
    provider_free(w);  /* their transfers leave the multi before it goes */
    upstream_free(w);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->term_ev)
        event_free(w->term_ev);
    if (w->budget_timer)
        event_free(w->budget_timer);
    outq_free(w);
    if (w->base)
        event_base_free(w->base);
    free(w->calls);
    free(w->provider_ops);
    close(w->wake_fd);
}

int worker_main(const struct worker_args *args)
{
    struct worker w;
    int rc = 1;

    memset(&w, 0, sizeof(w));
    /* The master owns the terminal's signals; a worker stops when its
     * master says so, or on SIGTERM from a supervisor. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTTIN, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    if (worker_setup(&w, args) < 0) {
        log_msg(&w.log, LOG_ERROR, NULL, "worker %d: setup failed",
                args->slot);
        goto out;
    }
    atomic_store(&w.self->started_ms, util_wall_ms());
    worker_pull(&w);
    if (!w.stopping || w.active > 0)
        event_base_dispatch(w.base);
    rc = 0;
out:
    worker_teardown(&w);
    return rc;
}
