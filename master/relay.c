/* relay.c - reads the frames a worker sends and relays them to the
 * client they belong to: a plain answer is gathered and sent whole with
 * its length; a stream is passed on chunk by chunk as it arrives. */
#include "master.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "apierror.h"
#include "frame.h"

#define RELAY_MAX_HEADERS      5
#define RELAY_NUM_MAX          16

/* The mreq a frame is for, or NULL when it is stale (the slot was
 * reused, or the client was already answered and released). */
static struct mreq *relay_lookup(struct master *m, const struct frame *f)
{
    struct mreq *mr;

    if (f->job >= m->shm.hdr->job_count)
        return NULL;
    mr = &m->reqs[f->job];
    if (!mr->active || mr->gen != f->gen)
        return NULL;
    return mr;
}

static void relay_meta(struct mreq *mr, const struct frame_meta *meta)
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

/* X-Pipeline-Target, X-Pipeline-Attempts (and room for more, for
 * streams; http.c adds X-Request-Id); attempts must outlive the call it
 * is passed to. */
static size_t relay_headers(struct mreq *mr, struct http_hdr *h,
                            char *attempts, size_t size)
{
    size_t n = 0;

    snprintf(attempts, size, "%u", mr->attempts);
    if (mr->target[0] != '\0')
        h[n++] = (struct http_hdr){ "X-Pipeline-Target", mr->target };
    h[n++] = (struct http_hdr){ "X-Pipeline-Attempts", attempts };
    return n;
}

static void relay_head(struct mreq *mr, const struct frame *f,
                       const struct frame_meta *meta)
{
    struct http_hdr h[RELAY_MAX_HEADERS];
    char attempts[RELAY_NUM_MAX];
    size_t n;

    relay_meta(mr, meta);
    /* A client answered already (deadline) or gone keeps its status. */
    if (mr->req == NULL || mr->answered)
        return;
    mr->status = f->status;
    if (!mr->stream) {
        if (mr->body == NULL)
            mr->body = evbuffer_new();
        return;
    }
    n = relay_headers(mr, h, attempts, sizeof(attempts));
    h[n++] = (struct http_hdr){ "Cache-Control", "no-cache" };
    frontend_first_byte(mr);
    http_stream_start(mr->req, f->status, "text/event-stream", h, n);
    mr->head_sent = true;
}

/* Relays stream bytes; a client that reads slower than the upstream
 * writes gets its upstream transfer paused rather than the master
 * buffering without bound. */
static void relay_stream(struct mreq *mr, struct evbuffer *in, size_t len)
{
    struct http_req *req = mr->req;

    /* http_* calls never free the request under us (a broken connection
     * is closed from the loop later), so req stays valid here. */
    http_stream_move(req, in, len);
    if (!mr->chunk_sent) {
        /* The first chunk (with the head) is what the client waits for:
         * out now, not after the rest of this read of frames. */
        mr->chunk_sent = true;
        http_stream_flush(req);
    }
    if (!mr->paused &&
        http_pending_output(req) > MASTER_STREAM_HIGH_WATER) {
        mr->paused = true;
        log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
                "client is slow: %zu bytes waiting; pausing the upstream",
                http_pending_output(req));
        supervisor_send(mr->m, mr->m->shm.jobs[mr->job].owner, FRAME_PAUSE,
                        mr->job, mr->gen);
        http_watch_drain(req, MASTER_STREAM_LOW_WATER);
    }
}

/* Moves len bytes of the chunk from in to the client. */
static void relay_chunk(struct mreq *mr, struct evbuffer *in, size_t len)
{
    if (mr->req == NULL || mr->answered)
        evbuffer_drain(in, len);
    else if (mr->stream && mr->head_sent)
        relay_stream(mr, in, len);
    else if (mr->body != NULL)
        evbuffer_remove_buffer(in, mr->body, len);
    else
        evbuffer_drain(in, len);
}

/* Takes the request off the mreq: answered in full, the connection may
 * go on to its next request and the http_req is reused. */
static struct http_req *relay_take(struct mreq *mr)
{
    struct http_req *req = mr->req;

    mr->req = NULL;
    req->user = NULL;
    mr->answered = true;
    return req;
}

static void relay_end(struct mreq *mr, const struct frame *f)
{
    if (f->status == APIERR_CLIENT_GONE) {
        if (mr->status == 0)
            mr->status = APIERR_CLIENT_GONE;
    } else if (mr->req != NULL && !mr->answered) {
        if (mr->stream) {
            http_stream_end(relay_take(mr));
        } else {
            struct http_hdr h[RELAY_MAX_HEADERS];
            char attempts[RELAY_NUM_MAX];
            size_t n = relay_headers(mr, h, attempts, sizeof(attempts));

            frontend_first_byte(mr);
            http_send_buffer(relay_take(mr), mr->status ? mr->status : 200,
                             "application/json", h, n, mr->body);
        }
    }
    frontend_release(mr);
}

static void relay_error(struct mreq *mr, const struct frame *f,
                        const struct frame_meta *meta)
{
    bool ours = mr->req != NULL && !mr->answered;

    relay_meta(mr, meta);
    if (ours) {
        /* The worker sent a finished OpenAI error body: pass it on. */
        const char *body = (const char *)meta->rest;
        size_t len = meta->rest_len;

        if (mr->head_sent) {
            struct http_req *req = relay_take(mr);

            /* The client got 200 and keeps it in the log line; the
             * error beside it says how its stream ended. */
            if (apierr_code(body, len, mr->error_code,
                            sizeof(mr->error_code)) < 0)
                util_strlcpy(mr->error_code, apierr_type(f->status),
                             sizeof(mr->error_code));
            mr->error = mr->error_code;
            http_stream_chunk(req, "event: error\ndata: ", 19);
            http_stream_chunk(req, body, len);
            http_stream_chunk(req, "\n\n", 2);
            http_stream_end(req);
        } else {
            struct http_hdr h[RELAY_MAX_HEADERS];
            char attempts[RELAY_NUM_MAX];
            size_t n = relay_headers(mr, h, attempts, sizeof(attempts));

            if (f->status == 429 || f->status == 503)
                h[n++] = (struct http_hdr){ "Retry-After",
                                            MASTER_RETRY_AFTER };
            frontend_first_byte(mr);
            http_send(relay_take(mr), f->status, "application/json", h, n,
                      body, len);
        }
    }
    /* A client answered already (deadline) or gone keeps its status;
     * so does a stream's (its 200). */
    if ((ours && !mr->head_sent) || mr->status == 0)
        mr->status = f->status;
    frontend_release(mr);
}

void relay_read_cb(struct chan *ch, void *arg)
{
    struct master *m = arg;
    struct evbuffer *in = ch->in;

    for (;;) {
        size_t avail = evbuffer_get_length(in);
        struct frame_meta meta;
        struct frame f;
        struct mreq *mr;
        const uint8_t *p;
        int n;

        if (avail < FRAME_HDR_SIZE)
            return;
        p = evbuffer_pullup(in, FRAME_HDR_SIZE);
        n = frame_decode(p, FRAME_HDR_SIZE, &f);
        if (n < 0 || (n == 0 && f.len > FRAME_MAX_PAYLOAD) ||
            f.type >= FRAME_CANCEL) {
            int slot = supervisor_slot_of(m, ch);

            /* Nothing after a bad frame can be trusted: replace the
             * worker; the supervisor re-queues or fails its jobs. */
            log_msg(&m->log, LOG_ERROR, NULL, "malformed frame from worker "
                    "slot %d; killing it", slot);
            evbuffer_drain(in, avail);
            chan_stop(ch);
            if (slot >= 0 && m->workers[slot].pid > 0)
                kill(m->workers[slot].pid, SIGKILL);
            return;
        }
        if (avail < FRAME_HDR_SIZE + f.len)
            return;
        mr = relay_lookup(m, &f);
        if (f.type == FRAME_CHUNK) {
            evbuffer_drain(in, FRAME_HDR_SIZE);
            if (mr != NULL)
                relay_chunk(mr, in, f.len);
            else
                evbuffer_drain(in, f.len);
            continue;
        }
        p = evbuffer_pullup(in, (ev_ssize_t)(FRAME_HDR_SIZE + f.len));
        if (mr != NULL &&
            frame_meta_decode(p + FRAME_HDR_SIZE, f.len, &meta) == 0) {
            if (f.type == FRAME_HEAD)
                relay_head(mr, &f, &meta);
            else if (f.type == FRAME_END)
                relay_end(mr, &f);
            else if (f.type == FRAME_ERROR)
                relay_error(mr, &f, &meta);
        }
        evbuffer_drain(in, FRAME_HDR_SIZE + f.len);
    }
}
