/* worker.c - the worker process: its event loop, taking jobs from the
 * shared queue, picking targets, running attempts with retries and
 * failover, and reporting every job to the master as frames. */
#include "worker_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "apierror.h"
#include "backoff.h"
#include "frame.h"

#define WORKER_MSG_MAX 160
#define CALL_ALL_OPEN  (-2)
#define WORKER_META_MAX (FRAME_META_FIXED + CFG_TARGET_NAME_MAX + \
                         APIERR_BODY_MAX)

enum call_outcome { CALL_NO_OUTCOME, CALL_OK, CALL_FAILED };

static void worker_pull(struct worker *w);
static void call_attempt_start(struct call *c);

/* ---- frames to the master ---- */

/* Frames are written when the callbacks of this loop turn are done (the
 * flush event runs after those already active), in one writev, and not a
 * turn later when the socket reports writable again. */
static void worker_kick(struct worker *w)
{
    if (w->flush_pending)
        return;
    w->flush_pending = true;
    event_active(w->flush_ev, EV_TIMEOUT, 0);
}

/* Whole frames wait in two queues. The channel's output (the window)
 * holds what is being written: at most WORKER_OUT_WINDOW bytes beyond the
 * frame a short write left at its front. The rest wait in w->bulk and
 * move over, whole frames in order, as the window empties. A stream's
 * HEAD and first chunk skip w->bulk: they go straight to the window, so a
 * new stream's first chunk is behind one window of other streams' chunks
 * (and the socket buffer), never behind the whole backlog. Only a call's
 * first frames skip the queue, so every call's frames stay in order. */
static struct evbuffer *worker_queue(struct worker *w, bool first)
{
    return first ? w->master.out : w->bulk;
}

/* Moves whole frames from w->bulk to the window while it has room. */
static void worker_feed(struct worker *w)
{
    while (evbuffer_get_length(w->bulk) >= FRAME_HDR_SIZE &&
           chan_pending(&w->master) < WORKER_OUT_WINDOW) {
        uint8_t hdr[FRAME_HDR_SIZE];
        struct frame f;
        int rc;

        evbuffer_copyout(w->bulk, hdr, sizeof(hdr));
        /* Our own frames: the header decodes; its payload follows it. */
        rc = frame_decode(hdr, sizeof(hdr), &f);
        assert(rc >= 0);
        (void)rc;
        evbuffer_remove_buffer(w->bulk, w->master.out,
                               FRAME_HDR_SIZE + f.len);
    }
}

/* Bytes made for the master and not written yet. */
static size_t worker_backlog(const struct worker *w)
{
    return chan_pending(&w->master) + evbuffer_get_length(w->bulk) +
           evbuffer_get_length(w->stage);
}

/* Answer bytes of one call are gathered into one open CHUNK frame (the
 * stage) until another call's bytes, any other frame or the flush seal
 * it: the small SSE events of one upstream read cost one frame, one
 * header and one HTTP chunk to the client, not one each. Sealing moves
 * the bytes to their queue without copying them. */
static void worker_seal(struct worker *w)
{
    size_t len = evbuffer_get_length(w->stage);
    struct frame f = { (uint32_t)len, FRAME_CHUNK, 0, 0, w->stage_job,
                       w->stage_gen, NULL };
    struct evbuffer *q = worker_queue(w, w->stage_first);
    uint8_t hdr[FRAME_HDR_SIZE];

    w->stage_open = false;
    w->stage_first = false;
    if (len == 0)
        return;
    frame_encode_hdr(hdr, &f);
    evbuffer_add(q, hdr, sizeof(hdr));
    evbuffer_add_buffer(q, w->stage);
}

/* Makes the open CHUNK frame c's, with room for len more bytes (len is
 * at most FRAME_MAX_PAYLOAD); returns the stage to append them to. */
static struct evbuffer *call_stage(struct call *c, size_t len)
{
    struct worker *w = c->w;

    if (w->stage_open &&
        (w->stage_job != c->job || w->stage_gen != c->gen ||
         evbuffer_get_length(w->stage) + len > FRAME_MAX_PAYLOAD))
        worker_seal(w);
    if (!w->stage_open) {
        w->stage_open = true;
        w->stage_job = c->job;
        w->stage_gen = c->gen;
    }
    worker_kick(w);
    return w->stage;
}

static void worker_resume_local(struct worker *w);

/* Seals the open frame and writes what the socket takes now, feeding
 * the window from w->bulk as it empties. */
static void worker_flush(struct worker *w)
{
    if (w->flush_pending) {
        event_del(w->flush_ev);
        w->flush_pending = false;
    }
    w->urgent = false;
    worker_seal(w);
    do {
        worker_feed(w);
        if (chan_flush(&w->master) < 0)
            return;
    } while (chan_pending(&w->master) == 0 &&
             evbuffer_get_length(w->bulk) > 0);
    if (w->paused_local > 0 && worker_backlog(w) <= WORKER_OUT_LOW_WATER)
        worker_resume_local(w);
}

static void worker_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    w->flush_pending = false;
    worker_flush(w);
}

void worker_flush_first(struct worker *w)
{
    if (!w->urgent)
        return;
    /* The first bytes were sealed into the window when they came; the
     * stage may hold this call's later events of the same read, which
     * stay there to join what follows. */
    w->urgent = false;
    (void)chan_write_now(&w->master);
}

/* A stream's first bytes are what its client waits for: they skip the
 * queue (worker_queue) and leave when the upstream read that brought them
 * is done (worker_flush_first), not after every other upstream read of
 * the loop turn. True when these are the call's first bytes. */
static bool call_mark_first(struct call *c)
{
    if (!c->stream || c->bytes != 0)
        return false;
    c->w->urgent = true;
    return true;
}

/* Queues a whole frame; first: a stream's HEAD, which skips the queue. */
static void worker_send(struct worker *w, uint8_t type, uint8_t flags,
                        uint16_t status, uint32_t job, uint32_t gen,
                        const void *payload, size_t len, bool first)
{
    struct evbuffer *out = worker_queue(w, first);
    struct frame f = { (uint32_t)len, type, flags, status, job, gen, NULL };
    uint8_t hdr[FRAME_HDR_SIZE];

    worker_seal(w);        /* after the answer bytes queued before it */
    frame_encode_hdr(hdr, &f);
    evbuffer_add(out, hdr, sizeof(hdr));
    if (len > 0)
        evbuffer_add(out, payload, len);
    worker_kick(w);
}

static void call_send_meta(struct call *c, uint8_t type, uint8_t flags,
                           uint16_t status, const char *rest, size_t rest_len)
{
    uint8_t buf[WORKER_META_MAX];
    const char *target = c->target >= 0 ? c->w->cfg->targets[c->target].name
                                        : "";
    struct frame_meta m = {
        .attempts = (uint16_t)c->attempts,
        .upstream_status = c->upstream_status,
        .latency_ms = (uint32_t)(util_now_ms() - c->start_ms),
        .ttfb_ms = c->first_byte_ms ? (uint32_t)(c->first_byte_ms -
                                                 c->start_ms) : 0,
        .prompt_tokens = c->prompt_tokens,
        .completion_tokens = c->completion_tokens,
        .bytes = c->bytes,
        .target_len = (uint16_t)strlen(target),
        .target = target,
        .rest_len = rest_len,
        .rest = (const uint8_t *)rest,
    };
    int n = frame_meta_encode(buf, sizeof(buf), &m);

    if (n < 0) {
        m.rest_len = 0;
        n = frame_meta_encode(buf, sizeof(buf), &m);
    }
    worker_send(c->w, type, flags, status, c->job, c->gen, buf, (size_t)n,
                type == FRAME_HEAD && c->stream);
}

/* ---- accessors for adapters ---- */

const char *call_model(const struct call *c)
{
    return c->w->cfg->targets[c->target].model;
}

const struct cfg_provider *call_provider(const struct call *c)
{
    return &c->w->cfg->providers[c->w->cfg->targets[c->target].provider];
}

const uint8_t *call_body(const struct call *c, size_t *len)
{
    *len = c->sj->body_len;
    return shm_job_body(&c->w->shm, c->sj);
}

void call_send_head(struct call *c)
{
    if (c->head_sent)
        return;
    c->head_sent = true;
    c->first_byte_ms = util_now_ms();
    call_send_meta(c, FRAME_HEAD, c->stream ? FRAME_F_STREAM : 0, 200,
                   NULL, 0);
}

void call_send_chunk(struct call *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    bool first = call_mark_first(c);

    c->bytes += len;
    while (len > 0) {
        size_t n = len < FRAME_MAX_PAYLOAD ? len : FRAME_MAX_PAYLOAD;

        evbuffer_add(call_stage(c, n), p, n);
        p += n;
        len -= n;
        if (first) {
            /* Its own frame, ahead of the queue (worker_queue). */
            c->w->stage_first = true;
            worker_seal(c->w);
            first = false;
        }
    }
}

void call_send_event(struct call *c, const char *data, size_t len)
{
    static const char prefix[] = "data: ", suffix[] = "\n\n";
    size_t total = sizeof(prefix) - 1 + len + sizeof(suffix) - 1;
    const char *p = data, *end = data + len, *nl;
    struct evbuffer *stage;
    bool first;

    /* An event whose data came in several lines goes out the same way:
     * each line after the first gets its own "data: " (they were joined
     * with LF by the parser). */
    for (nl = memchr(p, '\n', len); nl != NULL;
         nl = memchr(nl + 1, '\n', (size_t)(end - nl - 1)))
        total += sizeof(prefix) - 1;
    if (total > FRAME_MAX_PAYLOAD) {
        /* Rare: an event over a frame's size goes in pieces. */
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            call_send_chunk(c, prefix, sizeof(prefix) - 1);
            call_send_chunk(c, p, (size_t)(nl + 1 - p));
            p = nl + 1;
        }
        call_send_chunk(c, prefix, sizeof(prefix) - 1);
        call_send_chunk(c, p, (size_t)(end - p));
        call_send_chunk(c, suffix, sizeof(suffix) - 1);
        return;
    }
    /* Whole in one frame, so the client gets the event in one HTTP
     * chunk (with the events gathered before it). */
    first = call_mark_first(c);
    c->bytes += total;
    stage = call_stage(c, total);
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        evbuffer_add(stage, prefix, sizeof(prefix) - 1);
        evbuffer_add(stage, p, (size_t)(nl + 1 - p));
        p = nl + 1;
    }
    evbuffer_add(stage, prefix, sizeof(prefix) - 1);
    evbuffer_add(stage, p, (size_t)(end - p));
    evbuffer_add(stage, suffix, sizeof(suffix) - 1);
    if (first) {
        /* Its own frame, ahead of the queue (worker_queue). */
        c->w->stage_first = true;
        worker_seal(c->w);
    }
}

/* ---- targets ---- */

static bool call_tried(const struct call *c, int t)
{
    return (c->tried[t / 64] >> (t % 64)) & 1u;
}

/* Releases the target slot this call holds. An outcome counts for the
 * target and its breaker; CALL_NO_OUTCOME (cancelled) just gives the slot
 * and any half-open probe back. */
static void call_release_target(struct call *c, enum call_outcome outcome)
{
    struct worker *w = c->w;
    int t = c->sj->slot_target;    /* a slot; c->target is its index */
    enum cb_transition tr = CB_TRANSITION_NONE;
    struct shm_target *st;

    if (t < 0)
        return;
    st = &w->shm.targets[t];
    if (outcome != CALL_NO_OUTCOME) {
        atomic_fetch_add(&st->requests, 1);
        if (outcome == CALL_FAILED)
            atomic_fetch_add(&st->failures, 1);
    }
    shm_lock(&w->shm);
    if (outcome != CALL_NO_OUTCOME) {
        tr = cb_record(&st->cb, &w->cfg->breaker, outcome == CALL_OK,
                       c->sj->probe != 0, util_now_ms());
        atomic_store(&st->state, st->cb.state);
        c->sj->probe = 0;
    }
    shm_job_release_target(&w->shm, c->sj);
    shm_unlock(&w->shm);
    w->blocked = false;        /* a slot is free: queued work may fit */
    if (tr != CB_TRANSITION_NONE) {
        atomic_fetch_add(&st->transitions, 1);
        log_msg(&w->log, tr == CB_TRANSITION_CLOSED ? LOG_INFO : LOG_WARN,
                c->sj->request_id, "circuit breaker of %s %s",
                c->target >= 0 ? w->cfg->targets[c->target].name : "-",
                cb_transition_name(tr));
    }
}

/* Picks a target with the virtual model's strategy among those whose
 * breaker lets a call through and that are under max_concurrent,
 * preferring ones this call has not tried; a job for one target
 * (provider/model) gets that one or none. Takes a slot on it (and a
 * half-open probe when that is what it is). Returns the target (an index
 * of w->cfg), -1 when every usable target is full, or CALL_ALL_OPEN when
 * every breaker is open (*next_try_ms: when the first will let a call
 * through). The state lives in the targets' slots; the balancer's, for
 * the strategies that keep one, is gathered into a local array for
 * lb_pick and written back. */
static int call_pick_target(struct call *c, int64_t *next_try_ms)
{
    struct worker *w = c->w;
    const struct cfg *cfg = w->cfg;
    const struct cfg_vmodel *vm = &cfg->vmodels[c->vmodel];
    bool direct = c->direct_target >= 0;
    int first = direct ? c->direct_target : vm->first_target;
    int n = direct ? 1 : vm->target_count;
    enum cfg_strategy strategy = direct ? CFG_LB_ROUND_ROBIN : vm->strategy;
    struct lb_candidate cand[CFG_MAX_TARGETS];
    struct lb_target lb[CFG_MAX_TARGETS];
    const int16_t *slot = &w->slots->target_slot[first];
    uint32_t *cursor = &w->shm.vmodels[w->slots->vmodel_slot[c->vmodel]]
                            .rr_next;
    enum cb_transition tr = CB_TRANSITION_NONE;
    int64_t now = util_now_ms(), next = INT64_MAX;
    uint32_t direct_cursor = 0;
    bool keeps_lb = strategy == CFG_LB_WEIGHTED ||
                    strategy == CFG_LB_LEAST_CONNECTIONS;
    bool any_usable = false, probe = false;
    int idx, chosen = -1;

    shm_lock(&w->shm);
    for (int i = 0; i < n; i++) {
        const struct cfg_target *ct = &cfg->targets[first + i];
        const struct shm_target *st = &w->shm.targets[slot[i]];

        cand[i].weight = ct->weight;
        cand[i].active = atomic_load(&st->active);
        cand[i].max_concurrent = ct->max_concurrent;
        cand[i].usable = cb_usable(&st->cb, &cfg->breaker, now);
        cand[i].tried = call_tried(c, first + i);
        if (keeps_lb)
            lb[i] = w->shm.lb[slot[i]];
        if (cand[i].usable) {
            any_usable = true;
        } else {
            int64_t at = cb_next_try_ms(&st->cb, &cfg->breaker, now);

            next = at < next ? at : next;
        }
    }
    idx = lb_pick(strategy, keeps_lb ? lb : NULL, cand, n,
                  direct ? &direct_cursor : cursor, &w->rng);
    for (int i = 0; keeps_lb && i < n; i++)
        w->shm.lb[slot[i]] = lb[i];
    if (idx >= 0) {
        struct shm_target *st = &w->shm.targets[slot[idx]];

        chosen = first + idx;
        cb_allow(&st->cb, &cfg->breaker, now, &probe, &tr);
        atomic_store(&st->state, st->cb.state);
        atomic_fetch_add(&st->active, 1);
        c->sj->slot_target = slot[idx];
        c->sj->probe = probe;
    }
    shm_unlock(&w->shm);
    if (tr != CB_TRANSITION_NONE) {
        atomic_fetch_add(&w->shm.targets[slot[idx]].transitions, 1);
        log_msg(&w->log, LOG_INFO, c->sj->request_id, "circuit breaker of "
                "%s %s", cfg->targets[chosen].name, cb_transition_name(tr));
    }
    if (chosen < 0 && !any_usable) {
        *next_try_ms = next;
        return CALL_ALL_OPEN;
    }
    return chosen;
}

/* ---- the end of a call ---- */

static void call_free(struct call *c)
{
    struct worker *w = c->w;

    /* A handle that was paused is not pooled: once out of the multi,
     * curl may not let it unpause, and the pause would carry over. */
    if (c->paused_local)
        w->paused_local--;
    if ((c->paused || c->paused_local) && c->easy != NULL) {
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }

    upstream_attempt_clear(c);
    upstream_easy_put(w, &c->easy);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->adapter_timer != NULL)
        event_free(c->adapter_timer);
    if (c->idle_timer != NULL)
        event_free(c->idle_timer);
    w->calls[c->job] = NULL;
    free(c);
}

/* Marks the job done in the segment, frees the call and looks for more
 * work. The frame that tells the master has been queued already. */
static void call_finish(struct call *c)
{
    struct worker *w = c->w;

    c->finished = true;
    upstream_abort(w, c);
    call_release_target(c, CALL_NO_OUTCOME);
    shm_lock(&w->shm);
    c->sj->state = SHM_JOB_DONE;
    if (w->shm.hdr->running > 0)
        w->shm.hdr->running--;
    shm_unlock(&w->shm);
    atomic_fetch_sub(&w->self->active, 1);
    atomic_fetch_add(&w->self->jobs_done, 1);
    w->active--;
    call_free(c);
    if (w->stopping && w->active == 0)
        event_base_loopbreak(w->base);
    else
        worker_pull(w);
}

static void call_fail(struct call *c, int status, const char *code,
                      const char *message)
{
    char body[APIERR_BODY_MAX];
    size_t n = apierr_format(body, sizeof(body), status, code, message);

    call_send_meta(c, FRAME_ERROR, c->stream ? FRAME_F_STREAM : 0,
                   (uint16_t)status, body, n);
    log_msg(&c->w->log, LOG_DEBUG, c->sj->request_id, "job failed: %d %s",
            status, message);
    call_finish(c);
}

static void call_fail_with(struct call *c, const struct apierr_kept *e)
{
    call_fail(c, e->status, e->code, e->message);
}

void call_succeeded(struct call *c)
{
    trace_attempt_end(&c->sj->trace, TRACE_HTTP, 200, util_now_us());
    call_release_target(c, CALL_OK);
    if (!c->head_sent)
        call_send_head(c);
    call_send_meta(c, FRAME_END, 0, 200, NULL, 0);
    call_finish(c);
}

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;

    (void)fd;
    (void)what;
    call_attempt_start(c);
}

/* Arms the call's timer to start another attempt after delay_ms. */
static int call_retry_later(struct call *c, int64_t delay_ms)
{
    struct timeval tv = util_ms_to_tv(delay_ms);

    if (c->timer == NULL)
        c->timer = evtimer_new(c->w->base, call_timer_cb, c);
    if (c->timer == NULL)
        return -1;
    return evtimer_add(c->timer, &tv);
}

void call_attempt_failed(struct call *c, int status, const char *code,
                         const char *message, bool retryable,
                         bool target_fault)
{
    struct worker *w = c->w;
    const struct cfg_retry *r = &w->cfg->retry;
    int64_t now = util_now_ms(), delay;

    trace_attempt_end(&c->sj->trace,
                      trace_outcome_of(code, c->upstream_status),
                      c->upstream_status, util_now_us());
    apierr_keep(&c->last_failure, status, code, message);
    upstream_attempt_clear(c);
    /* A refusal of the client's own request says the target is fine;
     * our own trouble says nothing about it. */
    call_release_target(c, target_fault ? CALL_FAILED :
                           status < 500 ? CALL_OK : CALL_NO_OUTCOME);
    log_msg(&w->log, LOG_DEBUG, c->sj->request_id,
            "attempt %d to %s failed: %s", c->attempts,
            c->target >= 0 ? w->cfg->targets[c->target].name : "-", message);
    if (!retryable || c->head_sent || c->attempts > r->max_retries ||
        atomic_load(&c->sj->cancel)) {
        call_fail(c, status, code, message);
        return;
    }
    delay = backoff_delay_ms(r, c->attempts - 1, c->last_delay_ms, &w->rng);
    if (c->retry_after_ms > delay)
        delay = c->retry_after_ms;
    c->last_delay_ms = delay;
    if (now + delay >= c->deadline_ms) {
        call_fail(c, status, code, message);
        return;
    }
    atomic_fetch_add(&w->shm.hdr->counters.retried, 1);
    if (call_retry_later(c, delay) < 0)
        call_fail(c, status, code, message);
}

/* ---- attempts ---- */

/* Every target of a fresh job is at max_concurrent: the job goes back to
 * its place in the queue, and this worker takes no more jobs until one of
 * its own calls frees a target slot or a new job is announced. Whichever
 * worker frees a slot pulls next, so the job starts the moment it can,
 * with no polling. */
static void call_requeue(struct call *c)
{
    struct worker *w = c->w;
    int rc;

    shm_lock(&w->shm);
    if (w->shm.hdr->running > 0)
        w->shm.hdr->running--;
    rc = shm_job_enqueue(&w->shm, c->job);
    shm_unlock(&w->shm);
    if (rc < 0) {
        /* Cannot happen (its queue place was free); fail it cleanly. */
        call_fail(c, 503, "unavailable", "every target is busy");
        return;
    }
    w->blocked = true;
    w->active--;
    atomic_fetch_sub(&w->self->active, 1);
    call_free(c);
}

/* One more upstream call on c->target: counted, traced, and handed to
 * the target's adapter. */
static void call_attempt_begin(struct call *c)
{
    c->attempts++;
    c->attempt_start_ms = util_now_ms();
    /* The slot: the master names it through its own configuration. */
    trace_attempt_begin(&c->sj->trace, c->w->slots->target_slot[c->target],
                        util_now_us());
    c->retry_after_ms = -1;
    c->upstream_status = 0;        /* none yet for this attempt */
    provider_for(call_provider(c))->start(c);   /* failures it reports */
}

static void call_attempt_start(struct call *c)
{
    int64_t next_try = 0;
    int t;

    if (atomic_load(&c->sj->cancel)) {
        call_send_meta(c, FRAME_END, 0, APIERR_CLIENT_GONE, NULL, 0);
        call_finish(c);
        return;
    }
    if (util_now_ms() >= c->deadline_ms) {
        call_fail(c, 504, "timeout", "request timed out before an "
                  "upstream answered");
        return;
    }
    t = call_pick_target(c, &next_try);
    if (t == CALL_ALL_OPEN) {
        struct apierr_kept open = { .status = 503, .code = "circuit_open" };

        /* Its own failures may have opened them: then those are the
         * cause to answer (apierr_final). */
        snprintf(open.message, sizeof(open.message), "every target's "
                 "circuit breaker is open; retry in %lld ms",
                 (long long)(next_try - util_now_ms()));
        call_fail_with(c, apierr_final(&c->last_failure, &open));
        return;
    }
    if (t < 0 && c->attempts == c->inherited) {
        call_requeue(c);
        return;
    }
    if (t < 0) {
        /* A retry finds every target full: it keeps its place and its
         * history here and looks again shortly. */
        static const struct apierr_kept none = {
            .status = 503, .code = "unavailable",
            .message = "no target available" };

        if (call_retry_later(c, WORKER_BUSY_WAIT_MS) < 0)
            call_fail_with(c, apierr_final(&c->last_failure, &none));
        return;
    }
    c->target = t;
    c->tried[t / 64] |= 1ULL << (t % 64);
    call_attempt_begin(c);
}

void call_attempt_again(struct call *c, int status)
{
    trace_attempt_end(&c->sj->trace, TRACE_HTTP, status, util_now_us());
    upstream_attempt_clear(c);
    call_attempt_begin(c);
}

/* The job's virtual model and, for a job naming one target, that target
 * in this worker's configuration (*vmodel, *direct: indices, or -1 for
 * direct when any of the model's targets will do). -1 when a reload
 * removed them since the job was queued. */
static int call_resolve(const struct worker *w, const struct shm_job *sj,
                        int *vmodel, int *direct)
{
    *direct = -1;
    if (sj->flags & SHM_JOB_DIRECT) {
        *direct = slots_target_index(w->slots, sj->target);
        if (*direct < 0)
            return -1;
        *vmodel = w->cfg->targets[*direct].vmodel;
        return 0;
    }
    *vmodel = slots_vmodel_index(w->slots, sj->vmodel);
    return *vmodel < 0 ? -1 : 0;
}

/* A job run again after its worker died keeps the calls made for it:
 * X-Pipeline-Attempts and the retry budget count them, and the targets
 * they went to are tried last. (A fresh job's trace holds none.) */
static void call_inherit(struct call *c, const struct trace *tr)
{
    c->attempts = c->inherited = (int)tr->attempts;
    for (uint32_t i = 0; i < tr->attempts && i < TRACE_MAX_ATTEMPTS; i++) {
        int t = slots_target_index(c->w->slots, tr->attempt[i].target);

        if (t >= 0 && t < c->w->cfg->target_count)
            c->tried[t / 64] |= 1ULL << (t % 64);
    }
}

static void call_begin(struct worker *w, uint32_t j)
{
    struct shm_job *sj = &w->shm.jobs[j];
    struct call *c = calloc(1, sizeof(*c));
    bool removed;

    if (c == NULL) {
        /* Put it back: another worker (or we, later) will run it; stop
         * pulling so we do not pop it again at once. */
        w->blocked = true;
        shm_lock(&w->shm);
        w->shm.hdr->running--;
        if (shm_job_enqueue(&w->shm, j) < 0)
            sj->state = SHM_JOB_DONE;
        shm_unlock(&w->shm);
        log_msg(&w->log, LOG_ERROR, sj->request_id, "out of memory");
        return;
    }
    c->w = w;
    c->job = j;
    c->gen = sj->gen;
    c->sj = sj;
    removed = call_resolve(w, sj, &c->vmodel, &c->direct_target) < 0;
    c->target = -1;
    c->stream = (sj->flags & SHM_JOB_STREAM) != 0;
    c->start_ms = util_now_ms();
    c->deadline_ms = sj->deadline_ms;
    call_inherit(c, &sj->trace);
    trace_dispatched(&sj->trace, util_now_us());
    w->calls[j] = c;
    w->active++;
    atomic_fetch_add(&w->self->active, 1);
    if (removed) {
        call_fail(c, 404, "model_not_found", "the model was removed by a "
                  "configuration reload");
        return;
    }
    call_attempt_start(c);
}

/* Takes jobs from the queue while this worker and the whole pipeline
 * are under their concurrency caps. */
static void worker_pull(struct worker *w)
{
    /* A call that ends at once calls back in here; the loop below picks
     * up the freed capacity instead of recursing. */
    if (w->pulling)
        return;
    w->pulling = true;
    while (!w->stopping && !w->blocked && w->active < w->max_active) {
        uint32_t j;

        shm_lock(&w->shm);
        /* After a reload only workers of the new configuration take
         * jobs: a job may name a target or model this one lacks. */
        if (w->shm.hdr->config_gen != w->slots->generation ||
            w->shm.hdr->running >= w->shm.hdr->max_running ||
            pq_pop(&w->shm.pq, &j) < 0) {
            shm_unlock(&w->shm);
            break;
        }
        w->shm.jobs[j].state = SHM_JOB_RUNNING;
        w->shm.jobs[j].owner = w->slot;
        w->shm.hdr->running++;
        shm_unlock(&w->shm);
        call_begin(w, j);
    }
    w->pulling = false;
}

/* ---- events ---- */

static void worker_cancel(struct worker *w, uint32_t job, uint32_t gen)
{
    struct call *c = job < w->shm.hdr->job_count ? w->calls[job] : NULL;

    if (c == NULL || c->gen != gen || c->finished)
        return;
    log_msg(&w->log, LOG_DEBUG, c->sj->request_id, "cancelled");
    trace_attempt_end(&c->sj->trace, TRACE_CANCELLED, 0, util_now_us());
    call_send_meta(c, FRAME_END, 0, APIERR_CLIENT_GONE, NULL, 0);
    call_finish(c);
}

/* Backpressure from the master: stop or restart reading this call's
 * upstream answer (curl leaves the bytes in the socket, so TCP slows the
 * upstream down in turn). */
static void worker_pause(struct worker *w, uint32_t job, uint32_t gen,
                         bool pause)
{
    struct call *c = job < w->shm.hdr->job_count ? w->calls[job] : NULL;

    if (c == NULL || c->gen != gen || c->finished || c->easy == NULL ||
        c->paused == pause)
        return;
    c->paused = pause;
    log_msg(&w->log, LOG_DEBUG, c->sj->request_id, "upstream %s",
            pause ? "paused: the client is slow" : "resumed");
    if (pause) {
        curl_easy_pause(c->easy, CURLPAUSE_RECV);
    } else if (!c->paused_local) {
        call_touch(c);
        curl_easy_pause(c->easy, CURLPAUSE_CONT);
    }
}

static void call_idle_arm(struct call *c, int64_t ms)
{
    struct timeval tv = util_ms_to_tv(ms);

    evtimer_add(c->idle_timer, &tv);
}

static void call_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;
    char msg[WORKER_MSG_MAX];
    int64_t quiet = util_now_ms() - c->touch_ms;

    (void)fd;
    (void)what;
    if (c->paused || c->paused_local || c->easy == NULL)
        return;         /* we stopped reading, not the upstream */
    if (quiet < c->w->cfg->idle_timeout_ms) {
        /* Bytes came since it was armed: wait for the rest. */
        call_idle_arm(c, c->w->cfg->idle_timeout_ms - quiet);
        return;
    }
    snprintf(msg, sizeof(msg), "upstream %.100s sent nothing for %d ms",
             c->w->cfg->targets[c->target].name, c->w->cfg->idle_timeout_ms);
    upstream_abort(c->w, c);
    call_attempt_failed(c, 502, "upstream_idle", msg, true, true);
}

/* Upstream bytes come a few hundred at a time: moving a timer for each
 * piece costs a heap update, so the time of the last one is kept and the
 * timer, armed once, re-arms itself for what is left when it fires. */
void call_touch(struct call *c)
{
    c->touch_ms = util_now_ms();
    if (c->idle_timer == NULL)
        c->idle_timer = evtimer_new(c->w->base, call_idle_cb, c);
    if (c->idle_timer != NULL && !evtimer_pending(c->idle_timer, NULL))
        call_idle_arm(c, c->w->cfg->idle_timeout_ms);
}

bool call_output_full(struct call *c)
{
    struct worker *w = c->w;

    /* The first bytes of an answer are never held back: they are what its
     * client is waiting for, and a call has one such piece (a curl write,
     * at most CURL_MAX_WRITE_SIZE), so the backlog stays bounded. */
    if (c->bytes == 0)
        return false;
    if (worker_backlog(w) <= WORKER_OUT_HIGH_WATER)
        return false;
    if (!c->paused_local) {
        c->paused_local = true;
        w->paused_local++;
    }
    return true;
}

/* The backlog to the master is down to the low mark: resume the streams
 * it held up (those the master paused stay paused). */
static void worker_resume_local(struct worker *w)
{
    for (uint32_t j = 0; j < w->shm.hdr->job_count && w->paused_local > 0;
         j++) {
        struct call *c = w->calls[j];

        if (c == NULL || !c->paused_local)
            continue;
        c->paused_local = false;
        w->paused_local--;
        if (!c->paused && c->easy != NULL) {
            call_touch(c);
            curl_easy_pause(c->easy, CURLPAUSE_CONT);
        }
    }
}

/* A write from the write event emptied the window: feed it from the
 * queue, or resume the streams the backlog held up, later in this turn
 * (worker_flush; not from inside the channel's write). */
static void worker_drain_cb(struct chan *ch, void *arg)
{
    struct worker *w = arg;

    (void)ch;
    if (evbuffer_get_length(w->bulk) > 0 ||
        (w->paused_local > 0 && worker_backlog(w) <= WORKER_OUT_LOW_WATER))
        worker_kick(w);
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
            worker_cancel(w, f.job, f.gen);
        } else if (f.type == FRAME_PAUSE || f.type == FRAME_RESUME) {
            worker_pause(w, f.job, f.gen, f.type == FRAME_PAUSE);
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
    w->calls = calloc(w->shm.hdr->job_count, sizeof(*w->calls));
    w->base = util_event_base_new();
    if (w->calls == NULL || w->base == NULL)
        return -1;
    if (chan_init(&w->master, w->base, a->sock_fd, WORKER_READ_MAX,
                  worker_read_cb, worker_close_cb, w) < 0) {
        close(a->sock_fd);
        return -1;
    }
    w->master_ok = true;
    chan_set_drain(&w->master, WORKER_OUT_WINDOW / 2, worker_drain_cb);
    w->flush_ev = event_new(w->base, -1, 0, worker_flush_cb, w);
    w->stage = evbuffer_new();
    w->bulk = evbuffer_new();
    if (w->flush_ev == NULL || w->stage == NULL || w->bulk == NULL)
        return -1;
    w->wake_ev = event_new(w->base, a->wake_fd, EV_READ | EV_PERSIST,
                           worker_wake_cb, w);
    w->term_ev = evsignal_new(w->base, SIGTERM, worker_term_cb, w);
    if (w->wake_ev == NULL || w->term_ev == NULL ||
        event_add(w->wake_ev, NULL) < 0 || event_add(w->term_ev, NULL) < 0)
        return -1;
    return upstream_init(w) < 0 ? -1 : provider_init(w);
}

static void worker_teardown(struct worker *w)
{
    if (w->calls != NULL) {
        for (uint32_t j = 0; j < w->shm.hdr->job_count; j++) {
            if (w->calls[j] != NULL) {
                upstream_abort(w, w->calls[j]);
                call_free(w->calls[j]);
            }
        }
    }
    provider_free(w);  /* their transfers leave the multi before it goes */
    upstream_free(w);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->term_ev)
        event_free(w->term_ev);
    if (w->flush_ev)
        event_free(w->flush_ev);
    if (w->master_ok) {
        /* Hand the last frames over before closing: the loop stopped
         * right after the last call queued its END. Blocking now. */
        struct evbuffer *out = w->master.out;
        int fd = w->master.fd;

        if (w->stage != NULL && w->bulk != NULL) {
            worker_seal(w);
            evbuffer_add_buffer(out, w->bulk);
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        while (!w->master.closed && evbuffer_get_length(out) > 0 &&
               evbuffer_write(out, fd) > 0)
            ;
        chan_free(&w->master);
    }
    if (w->stage != NULL)
        evbuffer_free(w->stage);
    if (w->bulk != NULL)
        evbuffer_free(w->bulk);
    if (w->base)
        event_base_free(w->base);
    free(w->calls);
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
