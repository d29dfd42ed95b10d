/* relay.c - reads the frames a worker sends and relays them to the
 * client they belong to: a plain answer is gathered and sent whole with
 * its length; a stream is passed on chunk by chunk as it arrives. */
#include "master.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "apierror.h"
#include "frame.h"

#define RELAY_STATUS_CANCELLED 499

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

static void relay_add_headers(struct mreq *mr)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(mr->req);
    char attempts[16];

    snprintf(attempts, sizeof(attempts), "%u", mr->attempts);
    evhttp_add_header(h, "X-Request-Id",
                      mr->m->shm.jobs[mr->job].request_id);
    if (mr->target[0] != '\0')
        evhttp_add_header(h, "X-Pipeline-Target", mr->target);
    evhttp_add_header(h, "X-Pipeline-Attempts", attempts);
}

static void relay_head(struct mreq *mr, const struct frame *f,
                       const struct frame_meta *meta)
{
    struct evkeyvalq *h;

    relay_meta(mr, meta);
    mr->status = f->status;
    if (mr->req == NULL || mr->answered)
        return;
    if (!mr->stream) {
        if (mr->body == NULL)
            mr->body = evbuffer_new();
        return;
    }
    h = evhttp_request_get_output_headers(mr->req);
    relay_add_headers(mr);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(mr->req, f->status, "OK");
    mr->head_sent = true;
}

/* Moves len bytes of the chunk from in to the client. */
static void relay_chunk(struct mreq *mr, struct evbuffer *in, size_t len)
{
    if (mr->req == NULL || mr->answered) {
        evbuffer_drain(in, len);
        return;
    }
    if (mr->stream && mr->head_sent) {
        struct evbuffer *out = evbuffer_new();

        if (out == NULL) {
            evbuffer_drain(in, len);
            return;
        }
        evbuffer_remove_buffer(in, out, len);
        evhttp_send_reply_chunk(mr->req, out);
        evbuffer_free(out);
    } else if (mr->body != NULL) {
        evbuffer_remove_buffer(in, mr->body, len);
    } else {
        evbuffer_drain(in, len);
    }
}

static void relay_end(struct mreq *mr, const struct frame *f)
{
    if (f->status == RELAY_STATUS_CANCELLED) {
        if (mr->status == 0)
            mr->status = RELAY_STATUS_CANCELLED;
    } else if (mr->req != NULL && !mr->answered) {
        mr->answered = true;
        if (mr->stream) {
            evhttp_connection_set_closecb(mr->conn, NULL, NULL);
            evhttp_send_reply_end(mr->req);
        } else {
            struct evkeyvalq *h = evhttp_request_get_output_headers(mr->req);

            relay_add_headers(mr);
            evhttp_add_header(h, "Content-Type", "application/json");
            evhttp_connection_set_closecb(mr->conn, NULL, NULL);
            evhttp_send_reply(mr->req, mr->status ? mr->status : 200, "OK",
                              mr->body);
        }
        mr->req = NULL;
        mr->conn = NULL;
    }
    frontend_release(mr);
}

static void relay_error(struct mreq *mr, const struct frame *f,
                        const struct frame_meta *meta)
{
    relay_meta(mr, meta);
    if (mr->req != NULL && !mr->answered) {
        char msg[APIERR_BODY_MAX];
        size_t n = meta->rest_len < sizeof(msg) - 1 ? meta->rest_len
                                                    : sizeof(msg) - 1;

        mr->answered = true;
        if (!mr->head_sent)
            relay_add_headers(mr);
        /* The worker sent a finished OpenAI error body: pass it on. */
        memcpy(msg, meta->rest, n);
        msg[n] = '\0';
        evhttp_connection_set_closecb(mr->conn, NULL, NULL);
        if (mr->head_sent) {
            struct evbuffer *out = evbuffer_new();

            if (out != NULL) {
                evbuffer_add_printf(out, "event: error\ndata: %s\n\n", msg);
                evhttp_send_reply_chunk(mr->req, out);
                evbuffer_free(out);
            }
            evhttp_send_reply_end(mr->req);
        } else {
            struct evbuffer *out = evbuffer_new();
            struct evkeyvalq *h = evhttp_request_get_output_headers(mr->req);

            evhttp_add_header(h, "Content-Type", "application/json");
            if (f->status == 429 || f->status == 503)
                evhttp_add_header(h, "Retry-After", "1");
            if (out != NULL)
                evbuffer_add(out, msg, n);
            evhttp_send_reply(mr->req, f->status, frontend_reason(f->status),
                              out);
            if (out != NULL)
                evbuffer_free(out);
        }
        mr->req = NULL;
        mr->conn = NULL;
    }
    mr->status = f->status;
    frontend_release(mr);
}

void relay_read_cb(struct bufferevent *bev, void *arg)
{
    struct master *m = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

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
            int slot = supervisor_slot_of(m, bev);

            /* Nothing after a bad frame can be trusted: replace the
             * worker; the supervisor re-queues or fails its jobs. */
            log_msg(&m->log, LOG_ERROR, NULL, "malformed frame from worker "
                    "slot %d; killing it", slot);
            evbuffer_drain(in, avail);
            bufferevent_disable(bev, EV_READ);
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
