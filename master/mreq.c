/* mreq.c - the master's request as an explicit state (mreq.h): every
 * change of a request's state is one of the named transitions here, and
 * whether the client is still waiting is mreq_waiting(). Sends its
 * answer through the HTTP server, its CANCEL/PAUSE/RESUME through the
 * master's worker_send hook (relay.c), its line and counts through
 * reqlog.c. Owns each mreq's deadline timer and gathered body. */
#include "mreq.h"

#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "master.h"
#include "budgets.h"
#include "mcap.h"
#include "reqlog.h"

#define MREQ_MAX_HEADERS 5
#define MREQ_NUM_MAX     16

void mreq_send_error(struct http_req *http, int status, const char *code,
                     const char *message)
{
    struct http_hdr retry = { "Retry-After", MASTER_RETRY_AFTER };
    bool busy = status == 429 || status == 503;

    http_send_error(http, status, code, message, busy ? &retry : NULL,
                    busy ? 1 : 0);
}

/* The client is about to get the first byte of its answer. */
static void mreq_first_byte(struct mreq *mr)
{
    if (mr->first_byte_us == 0)
        mr->first_byte_us = util_now_us();
}

/* Takes the request off the mreq as its answer is completed: the
 * connection may go on to its next request and reuse the http_req. */
static struct http_req *mreq_answer(struct mreq *mr)
{
    struct http_req *http = mr->http;

    mr->http = NULL;
    http->user = NULL;
    mr->state = MREQ_ANSWERED;
    return http;
}

static void mreq_send_to_worker(struct mreq *mr, uint8_t type)
{
    struct master *m = mr->m;

    m->hooks.worker_send(m, m->shm.jobs[mr->job].owner, type, mr->job,
                         mr->gen);
}

static void mreq_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mreq *mr = arg;

    (void)fd;
    (void)what;
    if (mr->state == MREQ_FREE)
        return;
    log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
            "deadline passed");
    mreq_fail(mr, 504, "timeout", "request timed out");
    mreq_cancel(mr);
}

void mreq_start(struct master *m, struct http_req *http, uint32_t j,
                bool stream, const char *model, long long timeout_ms,
                int64_t received_us, int64_t queued_us)
{
    struct mreq *mr = &m->reqs[j];
    struct timeval tv;

    mr->m = m;
    mr->state = MREQ_WAITING;
    mr->http = http;
    http->user = mr;
    mr->job = j;
    mr->gen = m->shm.jobs[j].gen;
    mr->stream = stream;
    mr->chunk_sent = mr->paused = mr->usage = false;
    mr->attempts = 0;
    mr->status = 0;
    mr->prompt_tokens = mr->completion_tokens = 0;
    mr->received_us = received_us;
    mr->queued_us = queued_us;
    mr->first_byte_us = mr->gone_us = 0;
    mr->error = NULL;
    mr->target[0] = '\0';
    util_strlcpy(mr->model, model, sizeof(mr->model));
    mr->door = m->shm.jobs[j].flags & SHM_JOB_ANTHROPIC ? CAP_DOOR_ANTHROPIC
                                                        : CAP_DOOR_DEFAULT;
    if (m->shm.jobs[j].flags & SHM_JOB_CAPTURE)
        mcap_begin(mr, http);
    m->active_reqs++;
    if (mr->timer == NULL)
        mr->timer = evtimer_new(m->base, mreq_deadline_cb, mr);
    if (mr->timer == NULL)
        util_oom("a request's deadline timer");
    tv = util_ms_to_tv(timeout_ms);
    UTIL_MUST(evtimer_add(mr->timer, &tv), "a request's deadline timer");
    supervisor_wake(m);
}

/* ---- the worker's frames ---- */

static void mreq_meta(struct mreq *mr, const struct frame_meta *meta)
{
    size_t n = meta->target_len;

    mr->attempts = meta->attempts;
    if (n == 0)
        return;
    if (n >= sizeof(mr->target))
        n = sizeof(mr->target) - 1;
    memcpy(mr->target, meta->target, n);
    mr->target[n] = '\0';
}

/* v in decimal into out[size] (cut to fit, always terminated); by hand,
 * not snprintf: it is on every answer. */
static void mreq_decimal(char *out, size_t size, uint32_t v)
{
    char digits[MREQ_NUM_MAX];
    size_t at = sizeof(digits), n;

    do {
        digits[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && at > 0);
    if (size == 0)
        return;
    n = sizeof(digits) - at < size - 1 ? sizeof(digits) - at : size - 1;
    memcpy(out, digits + at, n);
    out[n] = '\0';
}

/* X-Pipeline-Target, X-Pipeline-Attempts (and room for more; http_out.c
 * adds X-Request-Id); attempts must outlive the call it is passed to. */
static size_t mreq_headers(struct mreq *mr, struct http_hdr *h,
                           char *attempts, size_t size)
{
    size_t n = 0;

    mreq_decimal(attempts, size, mr->attempts);
    if (mr->target[0] != '\0')
        h[n++] = (struct http_hdr){ "X-Pipeline-Target", mr->target };
    h[n++] = (struct http_hdr){ "X-Pipeline-Attempts", attempts };
    return n;
}

void mreq_head(struct mreq *mr, int status, const struct frame_meta *meta)
{
    struct http_hdr h[MREQ_MAX_HEADERS];
    char attempts[MREQ_NUM_MAX];
    size_t n;

    mreq_meta(mr, meta);
    /* A client answered already (deadline) or gone keeps its status. */
    if (!mreq_waiting(mr))
        return;
    mr->status = status;
    if (!mr->stream) {
        if (mr->body == NULL && (mr->body = evbuffer_new()) == NULL)
            util_oom("an answer's buffer");
        return;
    }
    n = mreq_headers(mr, h, attempts, sizeof(attempts));
    h[n++] = (struct http_hdr){ "Cache-Control", "no-cache" };
    mreq_first_byte(mr);
    http_stream_start(mr->http, status, "text/event-stream", h, n);
    mr->state = MREQ_STREAMING;
}

/* Relays stream bytes; a client that reads slower than the upstream
 * writes gets its upstream transfer paused rather than the master
 * buffering without bound. */
static void mreq_stream(struct mreq *mr, struct evbuffer *in, size_t len)
{
    struct http_req *http = mr->http;

    /* http_* calls never free the request under us (a broken connection
     * is closed from the loop later), so http stays valid here. */
    http_stream_move(http, in, len);
    if (!mr->chunk_sent) {
        /* The first chunk (with the head) is what the client waits for:
         * out now, not after the rest of this read of frames. */
        mr->chunk_sent = true;
        http_stream_flush(http);
    }
    if (!mr->paused &&
        http_pending_output(http) > MASTER_STREAM_HIGH_WATER) {
        mr->paused = true;
        log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
                "client is slow: %zu bytes waiting; pausing the upstream",
                http_pending_output(http));
        mreq_send_to_worker(mr, FRAME_PAUSE);
        http_watch_drain(http, MASTER_STREAM_LOW_WATER);
    }
}

void mreq_chunk(struct mreq *mr, struct evbuffer *in, size_t len)
{
    if (mr->cap != NULL && mreq_waiting(mr))
        mcap_sent_buf(mr, in, len);
    if (mr->state == MREQ_STREAMING)
        mreq_stream(mr, in, len);
    else if (mr->state == MREQ_WAITING && mr->body != NULL)
        UTIL_MUST(evbuffer_remove_buffer(in, mr->body, len) == (int)len ?
                  0 : -1, "an answer's buffer");
    else
        evbuffer_drain(in, len);
}

void mreq_end(struct mreq *mr, int status, const struct frame_meta *meta)
{
    mr->usage = meta->prompt_tokens > 0 || meta->completion_tokens > 0;
    mr->prompt_tokens = meta->prompt_tokens;
    mr->completion_tokens = meta->completion_tokens;
    if (status == APIERR_CLIENT_GONE) {
        if (mr->status == 0)
            mr->status = APIERR_CLIENT_GONE;
    } else if (mreq_waiting(mr)) {
        if (mr->stream) {
            http_stream_end(mreq_answer(mr));
        } else {
            struct http_hdr h[MREQ_MAX_HEADERS];
            char attempts[MREQ_NUM_MAX];
            size_t n = mreq_headers(mr, h, attempts, sizeof(attempts));

            mreq_first_byte(mr);
            http_send_buffer(mreq_answer(mr), mr->status ? mr->status : 200,
                             "application/json", h, n, mr->body);
        }
    }
    mreq_release(mr);
}

void mreq_whole(struct mreq *mr, int status, const struct frame_meta *meta,
                struct evbuffer *in, size_t skip, size_t len)
{
    mreq_meta(mr, meta);
    mr->usage = meta->prompt_tokens > 0 || meta->completion_tokens > 0;
    mr->prompt_tokens = meta->prompt_tokens;
    mr->completion_tokens = meta->completion_tokens;
    evbuffer_drain(in, skip);           /* meta is not read after this */
    if (mr->state == MREQ_WAITING) {
        struct http_hdr h[MREQ_MAX_HEADERS];
        char attempts[MREQ_NUM_MAX];
        size_t n = mreq_headers(mr, h, attempts, sizeof(attempts));

        mr->status = status;
        if (mr->cap != NULL)
            mcap_sent_buf(mr, in, len);
        mreq_first_byte(mr);
        http_send_move(mreq_answer(mr), status, "application/json", h, n,
                       in, len);
    } else {
        /* A client answered already (deadline) or gone keeps its
         * status; a stream's client never gets a plain answer. */
        evbuffer_drain(in, len);
        if (mr->status == 0)
            mr->status = status;
    }
    mreq_release(mr);
}

/* The Retry-After a worker set on its job with a 429 rate_limited
 * (seconds until a budget refills), into buf; false when none. */
static bool mreq_retry_after(const struct mreq *mr, char *buf, size_t size)
{
    int32_t s = mr->m->shm.jobs[mr->job].retry_after_s;

    if (s <= 0)
        return false;
    snprintf(buf, size, "%d", (int)s);
    return true;
}

void mreq_error(struct mreq *mr, int status, const struct frame_meta *meta)
{
    bool waiting = mreq_waiting(mr);
    bool streaming = mr->state == MREQ_STREAMING;

    mreq_meta(mr, meta);
    const char *body = (const char *)meta->rest;
    size_t body_len = meta->rest_len;
    char shaped[APIERR_BODY_MAX];

    if (waiting && mr->http->error_format != NULL) {
        /* A door of another shape: the worker's OpenAI error body
         * re-dressed in it, same status, code and message. */
        char code[APIERR_CODE_MAX + 1], msg[APIERR_BODY_MAX];

        apierr_code(body, body_len, code, sizeof(code));
        if (apierr_message(body, body_len, msg, sizeof(msg)) < 0)
            util_strlcpy(msg, "upstream request failed", sizeof(msg));
        body_len = mr->http->error_format(shaped, sizeof(shaped), status,
                                          code, msg, streaming);
        body = shaped;
    }
    if (streaming) {
        /* The worker sent a finished OpenAI error body: pass it on. The
         * client got 200 and keeps it in the log line; the error beside
         * it says how its stream ended. */
        if (apierr_code((const char *)meta->rest, meta->rest_len,
                        mr->error_code, sizeof(mr->error_code)) < 0)
            util_strlcpy(mr->error_code, apierr_type(status),
                         sizeof(mr->error_code));
        mr->error = mr->error_code;
        mcap_sent(mr, body, body_len);
        http_stream_error(mreq_answer(mr), body, body_len);
    } else if (waiting) {
        struct http_hdr h[MREQ_MAX_HEADERS];
        char attempts[MREQ_NUM_MAX], retry[MREQ_NUM_MAX];
        size_t n = mreq_headers(mr, h, attempts, sizeof(attempts));

        if (status == 429 && mreq_retry_after(mr, retry, sizeof(retry)))
            h[n++] = (struct http_hdr){ "Retry-After", retry };
        else if (status == 429 || status == 503)
            h[n++] = (struct http_hdr){ "Retry-After", MASTER_RETRY_AFTER };
        mreq_first_byte(mr);
        mcap_sent(mr, meta->rest, meta->rest_len);
        http_send(mreq_answer(mr), status, "application/json", h, n,
                  body, body_len);
    }
    /* A client answered already (deadline) or gone keeps its status;
     * so does a stream's (its 200). */
    if ((waiting && !streaming) || mr->status == 0)
        mr->status = status;
    mreq_release(mr);
}

/* ---- the master's own transitions ---- */

void mreq_fail(struct mreq *mr, int status, const char *code,
               const char *message)
{
    bool streaming = mr->state == MREQ_STREAMING;

    if (!mreq_waiting(mr)) {
        if (mr->status == 0)
            mr->status = status;
        return;
    }
    mr->error = code;
    mreq_first_byte(mr);
    if (mr->cap != NULL) {
        char body[APIERR_BODY_MAX];

        mcap_sent(mr, body, apierr_format(body, sizeof(body), status, code,
                                          message));
    }
    if (streaming) {
        /* Mid-stream: the client already has a 200, and that is the
         * status it is logged with (error= beside it). An error event
         * and no [DONE] tells it the answer was cut off. */
        char body[APIERR_BODY_MAX];
        size_t n = mr->http->error_format != NULL ?
                   mr->http->error_format(body, sizeof(body), status, code,
                                          message, true) :
                   apierr_format(body, sizeof(body), status, code, message);

        http_stream_error(mreq_answer(mr), body, n);
        return;
    }
    mr->status = status;
    mreq_send_error(mreq_answer(mr), status, code, message);
}

void mreq_cancel(struct mreq *mr)
{
    struct master *m = mr->m;
    struct shm_job *sj = &m->shm.jobs[mr->job];
    int owner = -1;
    bool queued;

    shm_lock(&m->shm);
    queued = sj->state == SHM_JOB_QUEUED;
    if (queued) {
        /* Out of the heap under this same lock, so no worker can pop it
         * between this check and its release below. */
        pq_remove(&m->shm.pq, mr->job);
    } else {
        atomic_store(&sj->cancel, 1);
        if (sj->state == SHM_JOB_RUNNING)
            owner = sj->owner;
    }
    shm_unlock(&m->shm);
    if (queued) {
        /* No worker has seen it: it simply leaves the queue. */
        if (mr->status == 0)
            mr->status = APIERR_CLIENT_GONE;
        mreq_release(mr);
    } else if (owner >= 0) {
        m->hooks.worker_send(m, owner, FRAME_CANCEL, mr->job, mr->gen);
    }
    /* A DONE job's END frame is on its way and releases it. */
}

void mreq_client_lost(struct http_req *http, void *arg)
{
    struct mreq *mr = http->user;

    (void)arg;
    if (mr == NULL || !mreq_waiting(mr))
        return;
    log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
            "client went away");
    mr->http = NULL;
    mr->state = MREQ_GONE;
    mr->gone_us = util_now_us();
    /* Even with a status line from a stream's start: it did not get its
     * whole answer. */
    mr->status = APIERR_CLIENT_GONE;
    mreq_cancel(mr);
}

/* A paused stream's client caught up: let its upstream flow again. */
void mreq_client_drained(struct http_req *http, void *arg)
{
    struct mreq *mr = http->user;

    (void)arg;
    if (mr == NULL || mr->state == MREQ_FREE || !mr->paused)
        return;
    mr->paused = false;
    mreq_send_to_worker(mr, FRAME_RESUME);
}

/* The job of a lost worker goes back into the queue (under the segment's
 * lock): the job-state lines of a worker's death, in one place. True
 * when it is queued again. */
static bool mreq_job_requeue(struct master *m, uint32_t j)
{
    /* shm.c owns the job's state: back to its place in line, or DONE
     * when the queue is full. */
    return shm_job_requeue(&m->shm, j) == 0;
}

void mreq_worker_lost(struct mreq *mr)
{
    struct master *m = mr->m;
    uint32_t j = mr->job;
    struct shm_job *sj = &m->shm.jobs[j];
    bool requeued = false;

    shm_lock(&m->shm);
    /* DONE too: the worker may have finished the call and died before its
     * frames left it; the client has seen nothing, so it runs again. */
    if ((sj->state == SHM_JOB_RUNNING || sj->state == SHM_JOB_DONE) &&
        mr->state == MREQ_WAITING && !atomic_load(&sj->cancel))
        requeued = mreq_job_requeue(m, j);
    shm_unlock(&m->shm);
    if (requeued) {
        /* It starts over: drop what the dead worker sent of a plain
         * answer (a HEAD, chunks) before its END could follow. */
        if (mr->body != NULL)
            evbuffer_drain(mr->body, evbuffer_get_length(mr->body));
        mcap_sent_reset(mr);
        mr->status = 0;
        log_msg(&m->log, LOG_WARN, sj->request_id, "worker died; job "
                "queued again");
        return;
    }
    mreq_fail(mr, 502, "worker_died", "the worker running this request "
              "died");
    mreq_release(mr);
}

void mreq_release(struct mreq *mr)
{
    struct master *m = mr->m;
    struct shm_job *sj = &m->shm.jobs[mr->job];
    struct trace_req r = {
        .model = mr->model, .target = mr->target, .error = mr->error,
        .status = mr->status, .client_gone = mr->state == MREQ_GONE,
        .received_us = mr->received_us, .queued_us = mr->queued_us,
        .first_byte_us = mr->first_byte_us, .gone_us = mr->gone_us,
        .end_us = util_now_us(), .usage = mr->usage,
        .client = budgets_name(m, sj->client),
        .prompt_tokens = mr->prompt_tokens,
        .completion_tokens = mr->completion_tokens,
    };

    reqlog_finish(m, sj->request_id, &r, &sj->trace);
    mcap_finish(mr);
    if (mr->timer != NULL)
        evtimer_del(mr->timer);
    if (mr->body != NULL) {
        evbuffer_free(mr->body);
        mr->body = NULL;
    }
    if (mr->http != NULL)
        mr->http->user = NULL;
    mr->http = NULL;
    shm_lock(&m->shm);
    shm_job_free(&m->shm, mr->job);
    shm_unlock(&m->shm);
    mr->state = MREQ_FREE;
    m->active_reqs--;
    /* A slot freed: if work waits, make sure a worker that can take it
     * looks (a retiring worker that freed it will not). */
    if (pq_size(&m->shm.pq) > 0)
        supervisor_wake(m);
    if (m->draining && m->active_reqs == 0)
        m->hooks.begin_stop(m);
}

void mreq_free_all(struct master *m)
{
    if (m->reqs == NULL)
        return;
    for (uint32_t j = 0; j < m->shm.hdr->job_count; j++) {
        struct mreq *mr = &m->reqs[j];

        mr->state = MREQ_FREE;
        mr->http = NULL;
        if (mr->timer != NULL)
            event_free(mr->timer);
        mr->timer = NULL;
        if (mr->body != NULL)
            evbuffer_free(mr->body);
        mr->body = NULL;
        mcap_discard(mr);
    }
}
