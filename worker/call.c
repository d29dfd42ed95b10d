/* call.c - a job's life in the worker, over all its attempts: the call
 * (struct call, worker_int.h) is made when the loop pulls the job and
 * freed when its END or ERROR frame is queued. It owns the choice of a
 * target (balancer, breakers, max_concurrent) and failover to another,
 * the retry decision (which answers are worth another attempt:
 * call_status_retryable; whether this one gets it: budget of attempts,
 * backoff with Retry-After as a floor, the job's deadline), the idle
 * timer of an attempt, and the breaker accounting of each outcome.
 * Attempts start through the provider table the loop filled
 * (w->provider_ops); adapters report back with the call_ functions of
 * call.h and outq.h. When a call ends, w->call_ended tells the loop. */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierror.h"
#include "backoff.h"
#include "bucket.h"
#include "frame.h"
#include "provhealth.h"
#include "util.h"

#define CALL_MSG_MAX   160
/* A transport failure's message: the target's name and curl's words. */
#define CALL_UPSTREAM_MSG_MAX 600
#define CALL_ALL_OPEN  (-2)
#define CALL_BUDGET_WAIT    (-3)   /* out of rate budget until *at */
#define CALL_BUDGET_LIMITED (-4)   /* ... until at or past the deadline */

enum call_outcome { CALL_NO_OUTCOME, CALL_OK, CALL_FAILED };

static void call_attempt_start(struct call *c);

/* ---- the retry decision ---- */

bool call_status_retryable(int status)
{
    /* Timeout, conflict, rate limit, and the server's own trouble: the
     * same request may pass later or elsewhere. */
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

bool call_status_client_fault(int status)
{
    /* The client's request is at fault: another target would say the
     * same, and the target is fine. */
    return status == 400 || status == 404 || status == 413 || status == 422;
}

int call_transfer_result(struct call *c, CURLcode result, long *status)
{
    char msg[CALL_UPSTREAM_MSG_MAX];

    *status = upstream_status(c);
    c->upstream_status = (uint16_t)*status;
    if (result == CURLE_WRITE_ERROR && c->proto_error != NULL) {
        call_attempt_failed(c, 502, "bad_upstream_response", c->proto_error,
                            true, true);
        return -1;
    }
    if (c->too_large) {
        snprintf(msg, sizeof(msg), "upstream answer exceeds %u bytes",
                 WORKER_MAX_UPSTREAM_BODY);
        call_attempt_failed(c, 502, "bad_upstream_response", msg, true, true);
        return -1;
    }
    if (result == CURLE_OPERATION_TIMEDOUT &&
        util_now_ms() >= c->deadline_ms) {
        call_attempt_failed(c, 504, "timeout", "request timed out waiting "
                            "for the upstream", false, true);
        return -1;
    }
    if (result != CURLE_OK) {
        snprintf(msg, sizeof(msg), "upstream %s failed: %.200s",
                 c->w->cfg->targets[c->target].name,
                 c->curl_err[0] ? c->curl_err : curl_easy_strerror(result));
        call_attempt_failed(c, 502, "upstream_unreachable", msg, true, true);
        return -1;
    }
    return 0;
}

/* ---- what adapters read ---- */

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
 * every breaker is open or its provider unhealthy (*next_try_ms: when the
 * first will let a call through, or be probed again). The state lives
 * in the targets' slots; the balancer's, for
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
    struct bucket_choice choice[CFG_MAX_TARGETS];
    bool eligible[CFG_MAX_TARGETS];
    enum bucket_outcome outcome;
    int64_t budget_at;
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

    c->unhealthy_seen = false;
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
        if (cand[i].usable && !provhealth_target_usable(&w->shm, slot[i])) {
            /* An unhealthy provider is skipped like an open breaker,
             * until a probe brings it back. */
            int64_t at = health_due_ms(provhealth_of_target(&w->shm,
                                                            slot[i]));

            cand[i].usable = false;
            c->unhealthy_seen = true;
            next = at < next ? at : next;
        } else if (cand[i].usable) {
            any_usable = true;
        } else {
            int64_t at = cb_next_try_ms(&st->cb, &cfg->breaker, now);

            next = at < next ? at : next;
        }
        /* Usable here means: its breaker and its provider's health let
         * a call through; the budget is weighed next. */
        choice[i].usable = cand[i].usable;
        choice[i].within_budget = bucket_pair_ready(&st->budget, now);
        choice[i].ready_at_ms = now + bucket_pair_wait_ms(&st->budget, now);
    }
    /* A target out of rate budget is skipped like an open breaker. */
    outcome = bucket_choose(choice, n, now, c->deadline_ms, eligible,
                            &budget_at);
    for (int i = 0; i < n; i++)
        cand[i].usable = eligible[i];
    idx = outcome != BUCKET_OUTCOME_PICK ? -1 :
          lb_pick(strategy, keeps_lb ? lb : NULL, cand, n,
                  direct ? &direct_cursor : cursor, &w->rng);
    for (int i = 0; keeps_lb && i < n; i++)
        w->shm.lb[slot[i]] = lb[i];
    if (idx >= 0) {
        struct shm_target *st = &w->shm.targets[slot[idx]];

        chosen = first + idx;
        cb_allow(&st->cb, &cfg->breaker, now, &probe, &tr);
        atomic_store(&st->state, st->cb.state);
        atomic_fetch_add(&st->active, 1);
        bucket_pair_start(&st->budget, now);    /* one request */
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
    if (outcome == BUCKET_OUTCOME_WAIT || outcome == BUCKET_OUTCOME_LIMITED) {
        *next_try_ms = budget_at;
        return outcome == BUCKET_OUTCOME_WAIT ? CALL_BUDGET_WAIT
                                              : CALL_BUDGET_LIMITED;
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
    wcap_free(c);
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

/* Marks the job done in the segment, frees the call and tells the loop
 * (which looks for more work, or stops). The frame that tells the master has been queued already. */
static void call_finish(struct call *c)
{
    struct worker *w = c->w;

    c->finished = true;
    upstream_abort(w, c);
    call_release_target(c, CALL_NO_OUTCOME);
    shm_lock(&w->shm);
    shm_job_done(&w->shm, c->job);
    shm_unlock(&w->shm);
    atomic_fetch_sub(&w->self->active, 1);
    atomic_fetch_add(&w->self->jobs_done, 1);
    w->active--;
    call_free(c);
    w->call_ended(w);
}

static void call_fail(struct call *c, int status, const char *code,
                      const char *message)
{
    char body[APIERR_BODY_MAX];
    size_t n = apierr_format(body, sizeof(body), status, code, message);

    outq_send_meta(c, FRAME_ERROR, c->stream ? FRAME_F_STREAM : 0,
                   (uint16_t)status, body, n);
    log_msg(&c->w->log, LOG_DEBUG, c->sj->request_id, "job failed: %d %s",
            status, message);
    call_finish(c);
}

static void call_fail_with(struct call *c, const struct apierr_kept *e)
{
    call_fail(c, e->status, e->code, e->message);
}

/* The answer's tokens (prompt + completion) from the budgets of the
 * target that gave it and of the client: under the lock, exact across
 * workers. */
static void call_charge_tokens(struct call *c)
{
    struct worker *w = c->w;
    int64_t tokens = (int64_t)c->prompt_tokens + c->completion_tokens;
    int32_t t = c->sj->slot_target, client = c->sj->client;
    int64_t now = util_now_ms();

    if (tokens <= 0)
        return;
    shm_lock(&w->shm);
    if (t >= 0 && t < SHM_TARGET_SLOTS)
        bucket_pair_finish(&w->shm.targets[t].budget, tokens, now);
    if (client >= 0 && client < SHM_CLIENT_SLOTS)
        bucket_pair_finish(&w->shm.clients[client].budget, tokens, now);
    shm_unlock(&w->shm);
}

/* The attempt's success, counted before the answer's last frame (a
 * captured attempt's CAPTURE frames go before it). */
static void call_success_noted(struct call *c)
{
    trace_attempt_end(&c->sj->trace, TRACE_HTTP, 200, util_now_us());
    call_charge_tokens(c);
    wcap_attempt_end(c, "ok");
    call_release_target(c, CALL_OK);
}

void call_answered(struct call *c, const void *body, size_t len)
{
    if (c->stream || c->head_sent) {
        call_send_head(c);
        call_send_chunk(c, body, len);
        call_succeeded(c);
        return;
    }
    call_success_noted(c);
    if (outq_send_answer(c, 200, body, len) == 0) {
        c->head_sent = true;
        c->bytes += len;
    } else {
        /* Over one frame: HEAD, CHUNKs and END. */
        call_send_head(c);
        call_send_chunk(c, body, len);
        outq_send_meta(c, FRAME_END, 0, 200, NULL, 0);
    }
    call_finish(c);
}

void call_succeeded(struct call *c)
{
    call_success_noted(c);
    if (!c->head_sent)
        call_send_head(c);
    outq_send_meta(c, FRAME_END, 0, 200, NULL, 0);
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
    wcap_attempt_end(c, code);
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
void call_unpark(struct call *c)
{
    struct worker *w = c->w;
    int rc;

    shm_lock(&w->shm);
    rc = shm_job_requeue(&w->shm, c->job);
    shm_unlock(&w->shm);
    if (rc < 0) {
        /* Its queue place was free; only a queue filled meanwhile
         * refuses it: fail it cleanly (the job is DONE already:
         * shm_job_requeue). */
        call_fail(c, 503, "unavailable", "every target is busy");
        return;
    }
    w->active--;
    atomic_fetch_sub(&w->self->active, 1);
    call_free(c);
}

static void call_requeue(struct call *c)
{
    struct worker *w = c->w;

    call_unpark(c);
    w->blocked = true;
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
    wcap_attempt_begin(c);
    /* Through the table the loop filled: failures it reports. */
    c->w->provider_ops[c->w->cfg->targets[c->target].provider]->start(c);
}

static void call_attempt_start(struct call *c)
{
    int64_t next_try = 0;
    int t;

    if (atomic_load(&c->sj->cancel)) {
        outq_send_meta(c, FRAME_END, 0, APIERR_CLIENT_GONE, NULL, 0);
        call_finish(c);
        return;
    }
    if (util_now_ms() >= c->deadline_ms) {
        call_fail(c, 504, "timeout", "request timed out before an "
                  "upstream answered");
        return;
    }
    t = call_pick_target(c, &next_try);
    if (t == CALL_BUDGET_LIMITED) {
        struct apierr_kept limited = { .status = 429,
                                       .code = "rate_limited" };

        snprintf(limited.message, sizeof(limited.message), "every target "
                 "of the model is out of its rate budget until after the "
                 "request's deadline");
        c->sj->retry_after_s = (int32_t)bucket_retry_after_s(
            next_try - util_now_ms());
        call_fail_with(c, apierr_final(&c->last_failure, &limited));
        return;
    }
    if (t == CALL_BUDGET_WAIT) {
        /* A fresh job waits in the queue, in its place; a retry keeps
         * its history here. Either way, until the refill: no polling. */
        if (c->attempts == c->inherited)
            c->w->park(c, next_try);
        else if (call_retry_later(c, next_try - util_now_ms()) < 0)
            call_fail(c, 429, "rate_limited", "out of rate budget");
        return;
    }
    if (t == CALL_ALL_OPEN) {
        struct apierr_kept open = { .status = 503, .code = "circuit_open" };

        /* Its own failures may have opened them: then those are the
         * cause to answer (apierr_final). */
        snprintf(open.message, sizeof(open.message), "every target's "
                 "circuit breaker is open%s; retry in %lld ms",
                 c->unhealthy_seen ? " or its provider unhealthy" : "",
                 (long long)(next_try > util_now_ms() ?
                             next_try - util_now_ms() : 0));
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
    wcap_attempt_end(c, "credentials_renewed");
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

void call_begin(struct worker *w, uint32_t j)
{
    struct shm_job *sj = &w->shm.jobs[j];
    struct call *c = calloc(1, sizeof(*c));
    bool removed;

    if (c == NULL) {
        /* Put it back: another worker (or we, later) will run it; stop
         * pulling so we do not pop it again at once. */
        w->blocked = true;
        shm_lock(&w->shm);
        (void)shm_job_requeue(&w->shm, j);   /* or DONE: the master ends it */
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

/* ---- from the master ---- */

void call_cancel(struct call *c)
{
    if (c->finished)
        return;
    log_msg(&c->w->log, LOG_DEBUG, c->sj->request_id, "cancelled");
    trace_attempt_end(&c->sj->trace, TRACE_CANCELLED, 0, util_now_us());
    wcap_attempt_end(c, "cancelled");
    outq_send_meta(c, FRAME_END, 0, APIERR_CLIENT_GONE, NULL, 0);
    call_finish(c);
}

/* Backpressure from the master: stop or restart reading this call's
 * upstream answer (curl leaves the bytes in the socket, so TCP slows the
 * upstream down in turn). */
void call_pause(struct call *c, bool pause)
{
    if (c->finished || !upstream_used(c) || c->paused == pause)
        return;
    c->paused = pause;
    log_msg(&c->w->log, LOG_DEBUG, c->sj->request_id, "upstream %s",
            pause ? "paused: the client is slow" : "resumed");
    if (pause)
        upstream_pause(c, true);
    else
        call_resume_reading(c);
}

void call_resume_reading(struct call *c)
{
    if (c->paused || c->paused_local || !upstream_used(c))
        return;
    call_touch(c);
    upstream_pause(c, false);
}

static void call_idle_arm(struct call *c, int64_t ms)
{
    struct timeval tv = util_ms_to_tv(ms);

    UTIL_MUST(evtimer_add(c->idle_timer, &tv), "the idle timer");
}

static void call_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;
    char msg[CALL_MSG_MAX];
    int64_t quiet = util_now_ms() - c->touch_ms;

    (void)fd;
    (void)what;
    if (c->paused || c->paused_local || !upstream_used(c))
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
    if (c->idle_timer == NULL &&
        (c->idle_timer = evtimer_new(c->w->base, call_idle_cb, c)) == NULL)
        util_oom("the idle timer");
    if (!evtimer_pending(c->idle_timer, NULL))
        call_idle_arm(c, c->w->cfg->idle_timeout_ms);
}


void call_abandon(struct call *c)
{
    upstream_abort(c->w, c);
    call_free(c);
}
