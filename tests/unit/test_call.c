/* test_call.c - the worker's call logic (worker/call.c) driven through a
 * fake provider: a real segment, configuration and event loop, a
 * provider_ops whose start() records the target and reports what the
 * test scripted (success, an HTTP status, a transport failure, bytes
 * streamed first), and the frames read back from the master's end of a
 * socketpair. Covers the retry decision, backoff on a timer with
 * Retry-After as a floor, the budget of attempts, failover, no retry
 * once the answer began, the deadline, breaker accounting, the final
 * error when every breaker is open, a re-run job's inherited attempts,
 * a fresh job put back in the queue when every target is full, and a
 * job whose targets are out of rate budget (429 by deadline, or parked).
 * Delays are a few ms; nothing sleeps. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "frame.h"
#include "slots.h"
#include "unit.h"
#include "worker_int.h"

#define CT_TEMPLATE    "/tmp/rcc-test-call.XXXXXX"
#define CT_CONF_MAX    1024
#define CT_MAX_STEPS   8
#define CT_MAX_FRAMES  16
#define CT_READ_MAX    (64 * 1024)
#define CT_GUARD_MS    5000      /* a call that never ends fails the test */
#define CT_TIMEOUT_MS  60000     /* a job's deadline when not the point */
#define CT_MAX_ACTIVE  4
#define CT_SEED        0x9E3779B97F4A7C15ULL
#define CT_TRANSPORT   (-1)      /* a step's status: connection failed */
#define CT_RETRY_AFTER 40        /* ms, well over the backoff's max */
#define CT_LONG_DELAY  200       /* ms of backoff, over a short deadline */
#define CT_SHORT_LIFE  50        /* ms: a deadline the backoff passes */
#define CT_STRICT      1         /* failure_threshold: one opens */
#define CT_LENIENT     100

/* Retry policy and breaker threshold; two targets "a" and "b" of one
 * round-robin model on a fake provider, one call at a time each. */
static const char ct_conf_fmt[] =
    "retry = { max_retries = %d; base_delay_ms = %d; max_delay_ms = %d;"
    " jitter = \"none\"; };\n"
    "circuit_breaker = { failure_threshold = %d;"
    " recovery_timeout_ms = 60000; half_open_max_requests = 1; };\n"
    "providers = ( { name = \"fake\"; type = \"mock\"; } );\n"
    "virtual_models = ( { name = \"pair\"; strategy = \"round-robin\";"
    " targets = ( { provider = \"fake\"; model = \"a\";"
    " max_concurrent = 1; },"
    " { provider = \"fake\"; model = \"b\"; max_concurrent = 1; } ); } );\n";

/* What one attempt does: status 0 succeeds; CT_TRANSPORT fails to
 * connect; else the upstream answers that HTTP status. */
struct ct_step {
    int status;
    int retry_after_ms;        /* 0: none */
    bool streamed;             /* the answer's first bytes went out first */
};

struct ct_frame {
    uint8_t type;
    uint16_t status;
    char text[APIERR_BODY_MAX]; /* ERROR: the body */
};

/* The fake provider's script and record, and the frames read back. */
static struct {
    struct ct_step steps[CT_MAX_STEPS];
    int nsteps;
    int starts;
    int target[CT_MAX_STEPS];
    int64_t at_ms[CT_MAX_STEPS];
    int ended;
    struct ct_frame frames[CT_MAX_FRAMES];
    int nframes;
} ct;

struct ct_env {
    struct cfg *cfg;
    struct shm_view shm;
    struct slots_map map;
    struct worker w;
    const struct provider_ops *ops[1];
    int peer;                  /* the master's end */
};

static int ct_start(struct call *c)
{
    int i = ct.starts++;
    const struct ct_step *s = &ct.steps[i < ct.nsteps ? i : ct.nsteps - 1];

    if (i < CT_MAX_STEPS) {
        ct.target[i] = c->target;
        ct.at_ms[i] = util_now_ms();
    }
    if (s->status > 0)
        c->upstream_status = (uint16_t)s->status;
    if (s->retry_after_ms > 0)
        c->retry_after_ms = s->retry_after_ms;
    if (s->status == 0 || s->streamed) {
        call_send_head(c);
        call_send_chunk(c, "data: {}\n\n", 10);
    }
    if (s->status == 0) {
        call_succeeded(c);
        return 0;
    }
    if (s->status == CT_TRANSPORT)
        call_attempt_failed(c, 502, "upstream_unreachable",
                            "connection refused", true, true);
    else if (call_status_client_fault(s->status))
        call_attempt_failed(c, s->status, "upstream_rejected", "bad request",
                            false, false);
    else
        call_attempt_failed(c, 502, "upstream_error", "upstream failed",
                            call_status_retryable(s->status), true);
    return -1;
}

static const struct provider_ops ct_ops = {
    .type = "fake", .init = NULL, .free = NULL, .start = ct_start,
};

static void ct_ended(struct worker *w)
{
    ct.ended++;
    event_base_loopbreak(w->base);
}

static void ct_chan_cb(struct chan *ch, void *arg)
{
    (void)ch;
    (void)arg;
}

static void ct_script(const struct ct_step *steps, int n)
{
    memset(&ct, 0, sizeof(ct));
    memcpy(ct.steps, steps, (size_t)n * sizeof(*steps));
    ct.nsteps = n;
}

static struct cfg *ct_load(int max_retries, int base_ms, int max_ms,
                           int threshold)
{
    char text[CT_CONF_MAX], path[] = CT_TEMPLATE, err[CFG_ERR_MAX];
    struct cfg *cfg;
    int fd = mkstemp(path);
    int len = snprintf(text, sizeof(text), ct_conf_fmt, max_retries, base_ms,
                       max_ms, threshold);

    if (fd < 0)
        return NULL;
    if (write(fd, text, (size_t)len) != len) {
        close(fd);
        unlink(path);
        return NULL;
    }
    close(fd);
    cfg = cfg_load(path, err, sizeof(err), NULL);
    unlink(path);
    if (cfg == NULL)
        fprintf(stderr, "\n    %s\n", err);
    return cfg;
}

/* A worker context around the call module, as worker_setup makes it,
 * with the fake provider in the table. 0 or -1. */
static int ct_setup(struct ct_env *e, int max_retries, int base_ms,
                    int max_ms, int threshold)
{
    struct worker *w = &e->w;
    uint64_t fresh[SLOTS_FRESH_WORDS];
    char err[CFG_ERR_MAX];
    int sv[2];

    memset(e, 0, sizeof(*e));
    e->peer = -1;
    e->cfg = ct_load(max_retries, base_ms, max_ms, threshold);
    if (e->cfg == NULL || shm_create(&e->shm, e->cfg) < 0)
        return -1;
    if (slots_apply(&e->shm, NULL, NULL, e->cfg, 0, &e->map, fresh, err,
                    sizeof(err)) < 0)
        return -1;
    e->ops[0] = &ct_ops;
    w->cfg = e->cfg;
    w->slots = &e->map;
    w->shm = e->shm;
    w->slot = 0;
    w->self = &e->shm.hdr->workers[0];
    w->log.level = LOG_ERROR;
    w->log.fd = STDERR_FILENO;
    w->log.echo_fd = -1;
    w->max_active = CT_MAX_ACTIVE;
    w->rng = CT_SEED;
    w->provider_ops = e->ops;
    w->call_ended = ct_ended;
    w->resume_reading = call_resume_reading;
    w->calls = calloc(e->shm.hdr->job_count, sizeof(*w->calls));
    w->base = event_base_new();
    if (w->calls == NULL || w->base == NULL ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    e->peer = sv[1];
    if (chan_init(&w->master, w->base, sv[0], WORKER_READ_MAX, ct_chan_cb,
                  ct_chan_cb, w) < 0)
        return -1;
    w->master_ok = true;
    return outq_init(w);
}

static void ct_teardown(struct ct_env *e)
{
    struct worker *w = &e->w;

    outq_free(w);
    if (e->peer >= 0)
        close(e->peer);
    if (w->base != NULL)
        event_base_free(w->base);
    free(w->calls);
    if (e->shm.hdr != NULL)
        shm_destroy(&e->shm);
    cfg_free(&e->cfg);
}

static void ct_guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Reads every frame the master's end has, into ct.frames. */
static void ct_read_frames(struct ct_env *e)
{
    static uint8_t buf[CT_READ_MAX];
    size_t len = 0, off = 0;
    ssize_t n;

    /* The flush event of the last turn writes what is queued. */
    event_base_loop(e->w.base, EVLOOP_NONBLOCK);
    fcntl(e->peer, F_SETFL, fcntl(e->peer, F_GETFL) | O_NONBLOCK);
    while (len < sizeof(buf) &&
           (n = read(e->peer, buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)n;
    while (off < len && ct.nframes < CT_MAX_FRAMES) {
        struct frame f;
        struct frame_meta m;
        struct ct_frame *cf = &ct.frames[ct.nframes++];
        int k = frame_decode(buf + off, len - off, &f);

        CU_ASSERT_FATAL(k > 0);
        cf->type = f.type;
        cf->status = f.status;
        if (f.type == FRAME_ERROR &&
            frame_meta_decode(f.payload, f.len, &m) == 0) {
            size_t t = m.rest_len < sizeof(cf->text) - 1
                       ? m.rest_len : sizeof(cf->text) - 1;

            memcpy(cf->text, m.rest, t);
            cf->text[t] = '\0';
        }
        off += (size_t)k;
    }
}

/* Queues a job for the model (deadline timeout_ms from now; attempts
 * made before, to target index tried, when inherited > 0), pops it as
 * the loop does, and runs it to its end. The job index, or -1. */
static int ct_run(struct ct_env *e, bool stream, int64_t timeout_ms,
                  int inherited, int tried)
{
    struct worker *w = &e->w;
    struct event *guard;
    struct timeval tv = util_ms_to_tv(CT_GUARD_MS);
    struct shm_job *sj;
    bool timed_out = false;
    uint32_t j, popped = UINT32_MAX;
    int rc;

    shm_lock(&e->shm);
    rc = shm_job_alloc(&e->shm, 2, &j);
    if (rc == 0) {
        sj = &e->shm.jobs[j];
        sj->vmodel = e->map.vmodel_slot[0];
        sj->target = SHM_NO_TARGET;
        sj->flags = stream ? SHM_JOB_STREAM : 0;
        sj->deadline_ms = util_now_ms() + timeout_ms;
        util_strlcpy(sj->request_id, "ct", sizeof(sj->request_id));
        trace_reset(&sj->trace);
        for (int i = 0; i < inherited; i++)
            trace_attempt_begin(&sj->trace, e->map.target_slot[tried],
                                util_now_us());
        rc = shm_job_enqueue(&e->shm, j);
    }
    if (rc == 0)
        rc = shm_job_pop(&e->shm, w->slot, &popped);
    shm_unlock(&e->shm);
    if (rc < 0 || popped != j)
        return -1;
    guard = evtimer_new(w->base, ct_guard_cb, &timed_out);
    if (guard == NULL || evtimer_add(guard, &tv) < 0)
        return -1;
    call_begin(w, j);
    while (ct.ended == 0 && !timed_out)
        event_base_loop(w->base, EVLOOP_ONCE);
    event_free(guard);
    CU_ASSERT(!timed_out);
    ct_read_frames(e);
    return (int)j;
}

static const struct ct_frame *ct_last(void)
{
    static const struct ct_frame none;

    return ct.nframes > 0 ? &ct.frames[ct.nframes - 1] : &none;
}

static uint64_t ct_count(struct ct_env *e, int target, bool failures)
{
    struct shm_target *st = &e->shm.targets[e->map.target_slot[target]];

    return failures ? atomic_load(&st->failures)
                    : atomic_load(&st->requests);
}

/* The job ended DONE and left the running count. */
static void ct_check_done(struct ct_env *e, int j)
{
    CU_ASSERT_EQUAL(e->shm.jobs[j].state, SHM_JOB_DONE);
    CU_ASSERT_EQUAL(e->shm.hdr->running, 0);
    CU_ASSERT_EQUAL(e->w.active, 0);
    CU_ASSERT_PTR_NULL(e->w.calls[j]);
}

static void test_status_decision(void)
{
    static const int retryable[] = { 408, 409, 429, 500, 502, 503, 504 };
    static const int final[] = { 400, 401, 403, 404, 413, 422, 418 };
    static const int client[] = { 400, 404, 413, 422 };

    for (size_t i = 0; i < sizeof(retryable) / sizeof(*retryable); i++) {
        CU_ASSERT(call_status_retryable(retryable[i]));
        CU_ASSERT(!call_status_client_fault(retryable[i]));
    }
    for (size_t i = 0; i < sizeof(final) / sizeof(*final); i++)
        CU_ASSERT(!call_status_retryable(final[i]));
    for (size_t i = 0; i < sizeof(client) / sizeof(*client); i++)
        CU_ASSERT(call_status_client_fault(client[i]));
    CU_ASSERT(!call_status_client_fault(401));
    CU_ASSERT(!call_status_client_fault(429));
}

/* A 503 is retried on a timer (not at once), on the other target, and
 * the second attempt's answer goes to the client. */
static void test_retry_then_success(void)
{
    static const struct ct_step steps[] = { { 503, 0, false },
                                            { 0, 0, false } };
    struct ct_env e;
    int j;

    ct_script(steps, 2);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 2);
    CU_ASSERT_NOT_EQUAL(ct.target[0], ct.target[1]);      /* failover */
    CU_ASSERT_EQUAL(ct.nframes, 3);
    CU_ASSERT_EQUAL(ct.frames[0].type, FRAME_HEAD);
    CU_ASSERT_EQUAL(ct.frames[1].type, FRAME_CHUNK);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_END);
    CU_ASSERT_EQUAL(ct_last()->status, 200);
    CU_ASSERT_EQUAL(atomic_load(&e.shm.hdr->counters.retried), 1);
    /* The breakers saw one failure and one success. */
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[0], false), 1);
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[0], true), 1);
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[1], false), 1);
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[1], true), 0);
    ct_check_done(&e, j);
    ct_teardown(&e);
}

/* The backoff waits on the call's timer: the retry is not made inside
 * the failed attempt. */
static void test_retry_waits_on_timer(void)
{
    static const struct ct_step steps[] = { { CT_TRANSPORT, 0, false },
                                            { 0, 0, false } };
    struct ct_env e;
    uint32_t j;

    ct_script(steps, 2);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    shm_lock(&e.shm);
    CU_ASSERT_FATAL(shm_job_alloc(&e.shm, 2, &j) == 0);
    e.shm.jobs[j].vmodel = e.map.vmodel_slot[0];
    e.shm.jobs[j].target = SHM_NO_TARGET;
    e.shm.jobs[j].deadline_ms = util_now_ms() + CT_TIMEOUT_MS;
    trace_reset(&e.shm.jobs[j].trace);
    CU_ASSERT_FATAL(shm_job_enqueue(&e.shm, j) == 0);
    CU_ASSERT_FATAL(shm_job_pop(&e.shm, 0, &j) == 0);
    shm_unlock(&e.shm);
    call_begin(&e.w, j);
    CU_ASSERT_EQUAL(ct.starts, 1);
    CU_ASSERT_FATAL(e.w.calls[j] != NULL);
    CU_ASSERT(e.w.calls[j]->timer != NULL &&
              evtimer_pending(e.w.calls[j]->timer, NULL));
    while (ct.ended == 0)
        event_base_loop(e.w.base, EVLOOP_ONCE);
    CU_ASSERT_EQUAL(ct.starts, 2);
    ct_read_frames(&e);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_END);
    ct_check_done(&e, (int)j);
    ct_teardown(&e);
}

/* A 429's Retry-After is a floor under the backoff. */
static void test_retry_after_floor(void)
{
    static const struct ct_step steps[] = { { 429, CT_RETRY_AFTER, false },
                                            { 0, 0, false } };
    struct ct_env e;
    int j;

    ct_script(steps, 2);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL_FATAL(ct.starts, 2);
    CU_ASSERT(ct.at_ms[1] - ct.at_ms[0] >= CT_RETRY_AFTER);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_END);
    ct_teardown(&e);
}

/* max_retries: one attempt plus that many retries, then the last
 * failure is the answer; each failure counted against its target. */
static void test_retry_budget(void)
{
    static const struct ct_step steps[] = { { 500, 0, false } };
    struct ct_env e;
    int j;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 3);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    CU_ASSERT_EQUAL(ct_last()->status, 502);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct_last()->text, "upstream_error"));
    CU_ASSERT_EQUAL(ct_count(&e, 0, true) + ct_count(&e, 1, true), 3);
    CU_ASSERT_EQUAL(atomic_load(&e.shm.hdr->counters.retried), 2);
    ct_check_done(&e, j);
    ct_teardown(&e);
}

/* Statuses that are not worth another attempt end the call at once: a
 * client fault passes as it is and counts as a success for the target;
 * a 418 is the target's fault but final. */
static void test_no_retry_statuses(void)
{
    static const struct ct_step client[] = { { 400, 0, false } };
    static const struct ct_step teapot[] = { { 418, 0, false } };
    struct ct_env e;
    int j;

    ct_script(client, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 1);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    CU_ASSERT_EQUAL(ct_last()->status, 400);
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[0], false), 1);
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[0], true), 0);
    ct_check_done(&e, j);
    ct_teardown(&e);

    ct_script(teapot, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 1);
    CU_ASSERT_EQUAL(ct_last()->status, 502);
    CU_ASSERT_EQUAL(ct_count(&e, ct.target[0], true), 1);
    ct_teardown(&e);
}

/* Once the client has bytes of a stream, a failure ends it: no retry
 * could be spliced in. */
static void test_no_retry_after_first_byte(void)
{
    static const struct ct_step steps[] = { { 502, 0, true } };
    struct ct_env e;
    int j;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, true, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 1);
    CU_ASSERT_EQUAL(ct.nframes, 3);
    CU_ASSERT_EQUAL(ct.frames[0].type, FRAME_HEAD);
    CU_ASSERT_EQUAL(ct.frames[1].type, FRAME_CHUNK);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    ct_check_done(&e, j);
    ct_teardown(&e);
}

/* A backoff that would pass the job's deadline is not waited: the
 * failure is the answer; a job past its deadline is not attempted. */
static void test_deadline(void)
{
    static const struct ct_step steps[] = { { 500, 0, false } };
    struct ct_env e;
    int j;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, CT_LONG_DELAY, CT_LONG_DELAY,
                             CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_SHORT_LIFE, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 1);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    CU_ASSERT_EQUAL(ct_last()->status, 502);
    ct_check_done(&e, j);
    ct_teardown(&e);

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, -1, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 0);
    CU_ASSERT_EQUAL(ct_last()->status, 504);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct_last()->text, "timeout"));
    ct_teardown(&e);
}

/* Failures open each target's breaker in turn; with every breaker open
 * the job answers its own last failure (apierr_final), and a later job
 * that cannot be attempted at all answers 503 circuit_open. */
static void test_all_breakers_open(void)
{
    static const struct ct_step steps[] = { { 500, 0, false } };
    struct ct_env e;
    int j;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 3, 1, 2, CT_STRICT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 2);                 /* one per target */
    CU_ASSERT_NOT_EQUAL(ct.target[0], ct.target[1]);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    CU_ASSERT_EQUAL(ct_last()->status, 502);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct_last()->text, "upstream_error"));
    for (int t = 0; t < 2; t++)
        CU_ASSERT_EQUAL(atomic_load(&e.shm.targets[e.map.target_slot[t]]
                                         .state), CB_OPEN);
    ct_check_done(&e, j);

    ct_script(steps, 1);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 0, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 0);
    CU_ASSERT_EQUAL(ct_last()->status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct_last()->text, "circuit_open"));
    ct_teardown(&e);
}

/* A job run again after its worker died keeps the attempts made for it:
 * they count against the budget and their target is tried last. */
static void test_inherited_attempts(void)
{
    static const struct ct_step steps[] = { { 500, 0, false } };
    struct ct_env e;
    int j;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    j = ct_run(&e, false, CT_TIMEOUT_MS, 2, 0);
    CU_ASSERT_FATAL(j >= 0);
    CU_ASSERT_EQUAL(ct.starts, 1);       /* 2 inherited + 1 = budget */
    CU_ASSERT_EQUAL(ct.target[0], 1);    /* not the one tried before */
    CU_ASSERT_EQUAL(e.shm.jobs[j].trace.attempts, 3);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    ct_teardown(&e);
}

/* A fresh job that finds every target full goes back to its place in
 * the queue (shm_job_requeue): uncounted, no frame, and the worker
 * takes no more jobs until a slot frees (w->blocked). */
static void test_requeue_when_full(void)
{
    static const struct ct_step steps[] = { { 0, 0, false } };
    struct ct_env e;
    uint32_t j, again;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    for (int t = 0; t < 2; t++)
        atomic_store(&e.shm.targets[e.map.target_slot[t]].active, 1);
    shm_lock(&e.shm);
    CU_ASSERT_FATAL(shm_job_alloc(&e.shm, 2, &j) == 0);
    e.shm.jobs[j].vmodel = e.map.vmodel_slot[0];
    e.shm.jobs[j].target = SHM_NO_TARGET;
    e.shm.jobs[j].deadline_ms = util_now_ms() + CT_TIMEOUT_MS;
    trace_reset(&e.shm.jobs[j].trace);
    CU_ASSERT_FATAL(shm_job_enqueue(&e.shm, j) == 0);
    CU_ASSERT_FATAL(shm_job_pop(&e.shm, 0, &j) == 0);
    shm_unlock(&e.shm);
    CU_ASSERT_EQUAL(e.shm.hdr->running, 1);
    call_begin(&e.w, j);
    CU_ASSERT_EQUAL(ct.starts, 0);
    CU_ASSERT_EQUAL(ct.ended, 0);
    CU_ASSERT_PTR_NULL(e.w.calls[j]);
    CU_ASSERT(e.w.blocked);
    CU_ASSERT_EQUAL(e.w.active, 0);
    CU_ASSERT_EQUAL(e.shm.jobs[j].state, SHM_JOB_QUEUED);
    CU_ASSERT_EQUAL(e.shm.hdr->running, 0);
    ct_read_frames(&e);
    CU_ASSERT_EQUAL(ct.nframes, 0);
    /* A slot frees: the same job runs next. */
    atomic_store(&e.shm.targets[e.map.target_slot[0]].active, 0);
    shm_lock(&e.shm);
    CU_ASSERT_FATAL(shm_job_pop(&e.shm, 0, &again) == 0);
    shm_unlock(&e.shm);
    CU_ASSERT_EQUAL(again, j);
    call_begin(&e.w, j);
    CU_ASSERT_EQUAL(ct.starts, 1);
    CU_ASSERT_EQUAL(ct.target[0], 0);
    CU_ASSERT_EQUAL(ct.ended, 1);
    ct_read_frames(&e);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_END);
    ct_check_done(&e, (int)j);
    ct_teardown(&e);
}

/* w->park: records the refill time and puts the job back at once. */
static int64_t ct_parked_at;

static void ct_park(struct call *c, int64_t at_ms)
{
    ct_parked_at = at_ms;
    call_unpark(c);
}

/* Both targets' rpm spent (a bucket of one a minute, taken): a job whose
 * deadline comes before the refill answers 429 rate_limited at once
 * with the job's Retry-After (60 s), no attempt made; one whose deadline
 * comes after is parked until the refill (w->park), back in the queue,
 * no frame. */
static void test_budget_spent(void)
{
    static const struct ct_step steps[] = { { 0, 0, false } };
    struct ct_env e;
    int64_t now;
    uint32_t j;
    int k;

    ct_script(steps, 1);
    CU_ASSERT_FATAL(ct_setup(&e, 2, 1, 2, CT_LENIENT) == 0);
    e.w.park = ct_park;
    now = util_now_ms();
    for (int t = 0; t < 2; t++) {
        struct bucket_pair *b = &e.shm.targets[e.map.target_slot[t]].budget;

        bucket_pair_init(b, 1, 0, now);
        bucket_pair_start(b, now);
    }
    k = ct_run(&e, false, CT_TIMEOUT_MS / 60, 0, 0);
    CU_ASSERT_FATAL(k >= 0);
    CU_ASSERT_EQUAL(ct.starts, 0);
    CU_ASSERT_EQUAL(ct_last()->type, FRAME_ERROR);
    CU_ASSERT_EQUAL(ct_last()->status, 429);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct_last()->text, "rate_limited"));
    CU_ASSERT_EQUAL(e.shm.jobs[k].retry_after_s, 60);
    ct_check_done(&e, k);

    ct_script(steps, 1);
    ct_parked_at = 0;
    shm_lock(&e.shm);
    CU_ASSERT_FATAL(shm_job_alloc(&e.shm, 2, &j) == 0);
    e.shm.jobs[j].vmodel = e.map.vmodel_slot[0];
    e.shm.jobs[j].target = SHM_NO_TARGET;
    e.shm.jobs[j].deadline_ms = util_now_ms() + 2 * CT_TIMEOUT_MS;
    trace_reset(&e.shm.jobs[j].trace);
    CU_ASSERT_FATAL(shm_job_enqueue(&e.shm, j) == 0);
    CU_ASSERT_FATAL(shm_job_pop(&e.shm, 0, &j) == 0);
    shm_unlock(&e.shm);
    call_begin(&e.w, j);
    CU_ASSERT_EQUAL(ct.starts, 0);
    CU_ASSERT_EQUAL(ct_parked_at, now + CT_TIMEOUT_MS);
    CU_ASSERT_EQUAL(e.shm.jobs[j].state, SHM_JOB_QUEUED);
    CU_ASSERT_EQUAL(e.shm.hdr->running, 0);
    CU_ASSERT_EQUAL(e.w.active, 0);
    ct_read_frames(&e);
    CU_ASSERT_EQUAL(ct.nframes, 0);
    ct_teardown(&e);
}

static const CU_TestInfo call_tests[] = {
    { "which statuses are retried", test_status_decision },
    { "retry with failover, then success", test_retry_then_success },
    { "a retry waits on the call's timer", test_retry_waits_on_timer },
    { "Retry-After floors the backoff", test_retry_after_floor },
    { "max_retries bounds the attempts", test_retry_budget },
    { "final statuses are not retried", test_no_retry_statuses },
    { "no retry after the first byte", test_no_retry_after_first_byte },
    { "the deadline bounds retries", test_deadline },
    { "every breaker open: apierr_final", test_all_breakers_open },
    { "a re-run job inherits attempts", test_inherited_attempts },
    { "every target full: back in the queue", test_requeue_when_full },
    { "rate budget spent: 429 or parked", test_budget_spent },
    CU_TEST_INFO_NULL
};

int register_call_tests(void)
{
    return unit_add_suite("call", call_tests);
}
