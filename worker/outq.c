/* outq.c - the worker's output queue: every frame for the master, in
 * order. It owns the stage (the open CHUNK frame gathering one call's
 * answer bytes), the window (the channel's output, at most
 * WORKER_OUT_WINDOW beyond a short write) and the backlog (w->bulk, whole
 * frames behind the window), the flush at the end of a loop turn, the
 * first-chunk path (a stream's first bytes skip the backlog) and the
 * pause/resume of upstream reading when the backlog is over its high
 * mark. It frees what it allocates (outq_free); the calls' own state is
 * the call module's (call.c), reached through w->resume_reading. */
#include "worker_int.h"

#include <assert.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"

#define OUTQ_META_MAX (FRAME_META_FIXED + CFG_TARGET_NAME_MAX + \
                       APIERR_BODY_MAX)

/* ---- frames to the master ---- */

/* Frames are written when the callbacks of this loop turn are done (the
 * flush event runs after those already active), in one writev, and not a
 * turn later when the socket reports writable again. */
static void outq_kick(struct worker *w)
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
static struct evbuffer *outq_queue(struct worker *w, bool first)
{
    return first ? w->master.out : w->bulk;
}

/* Moves whole frames from w->bulk to the window while it has room. */
static void outq_feed(struct worker *w)
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
        if (evbuffer_remove_buffer(w->bulk, w->master.out,
                                   FRAME_HDR_SIZE + f.len) < 0)
            util_oom("a frame to the master");
    }
}

/* Bytes made for the master and not written yet. */
static size_t outq_backlog(const struct worker *w)
{
    return chan_pending(&w->master) + evbuffer_get_length(w->bulk) +
           evbuffer_get_length(w->stage);
}

/* Answer bytes of one call are gathered into one open CHUNK frame (the
 * stage) until another call's bytes, any other frame or the flush seal
 * it: the small SSE events of one upstream read cost one frame, one
 * header and one HTTP chunk to the client, not one each. Sealing moves
 * the bytes to their queue without copying them. */
static void outq_seal(struct worker *w)
{
    size_t len = evbuffer_get_length(w->stage);
    struct frame f = { (uint32_t)len, FRAME_CHUNK, 0, 0, w->stage_job,
                       w->stage_gen, NULL };
    struct evbuffer *q = outq_queue(w, w->stage_first);
    uint8_t hdr[FRAME_HDR_SIZE];

    w->stage_open = false;
    w->stage_first = false;
    if (len == 0)
        return;
    frame_encode_hdr(hdr, &f);
    UTIL_MUST(evbuffer_add(q, hdr, sizeof(hdr)), "a frame to the master");
    UTIL_MUST(evbuffer_add_buffer(q, w->stage), "a frame to the master");
}

/* Makes the open CHUNK frame c's, with room for len more bytes (len is
 * at most FRAME_MAX_PAYLOAD); returns the stage to append them to. */
static struct evbuffer *outq_stage(struct call *c, size_t len)
{
    struct worker *w = c->w;

    if (w->stage_open &&
        (w->stage_job != c->job || w->stage_gen != c->gen ||
         evbuffer_get_length(w->stage) + len > FRAME_MAX_PAYLOAD))
        outq_seal(w);
    if (!w->stage_open) {
        w->stage_open = true;
        w->stage_job = c->job;
        w->stage_gen = c->gen;
    }
    outq_kick(w);
    return w->stage;
}

static void outq_stage_add(struct evbuffer *stage, const void *data,
                           size_t len)
{
    UTIL_MUST(evbuffer_add(stage, data, len), "answer bytes");
}

static void outq_resume_local(struct worker *w);
/* Seals the open frame and writes what the socket takes now, feeding
 * the window from w->bulk as it empties. */
static void outq_flush(struct worker *w)
{
    if (w->flush_pending) {
        event_del(w->flush_ev);
        w->flush_pending = false;
    }
    w->urgent = false;
    outq_seal(w);
    do {
        outq_feed(w);
        if (chan_flush(&w->master) < 0)
            return;
    } while (chan_pending(&w->master) == 0 &&
             evbuffer_get_length(w->bulk) > 0);
    if (w->paused_local > 0 && outq_backlog(w) <= WORKER_OUT_LOW_WATER)
        outq_resume_local(w);
}

static void outq_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    w->flush_pending = false;
    outq_flush(w);
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
 * queue (outq_queue) and leave when the upstream read that brought them
 * is done (worker_flush_first), not after every other upstream read of
 * the loop turn. True when these are the call's first bytes. */
static bool outq_mark_first(struct call *c)
{
    if (!c->stream || c->bytes != 0)
        return false;
    c->w->urgent = true;
    return true;
}

/* Queues a whole frame; first: a stream's HEAD, which skips the queue. */
static void outq_send(struct worker *w, uint8_t type, uint8_t flags,
                        uint16_t status, uint32_t job, uint32_t gen,
                        const void *payload, size_t len, bool first)
{
    struct evbuffer *out = outq_queue(w, first);
    struct frame f = { (uint32_t)len, type, flags, status, job, gen, NULL };
    uint8_t hdr[FRAME_HDR_SIZE];

    outq_seal(w);        /* after the answer bytes queued before it */
    frame_encode_hdr(hdr, &f);
    UTIL_MUST(evbuffer_add(out, hdr, sizeof(hdr)), "a frame to the master");
    if (len > 0)
        UTIL_MUST(evbuffer_add(out, payload, len), "a frame to the master");
    outq_kick(w);
}

void outq_send_control(struct worker *w, uint8_t type, uint16_t status,
                       uint32_t job)
{
    outq_send(w, type, 0, status, job, 0, NULL, 0, false);
}

/* c's meta (attempts, tokens, target) with rest, not encoded yet. */
static struct frame_meta outq_meta(const struct call *c, const void *rest,
                                   size_t rest_len)
{
    const char *target = c->target >= 0 ? c->w->cfg->targets[c->target].name
                                        : "";

    return (struct frame_meta){
        .attempts = (uint16_t)c->attempts,
        .prompt_tokens = c->prompt_tokens,
        .completion_tokens = c->completion_tokens,
        .target_len = (uint16_t)strlen(target),
        .target = target,
        .rest_len = rest_len,
        .rest = (const uint8_t *)rest,
    };
}

void outq_send_meta(struct call *c, uint8_t type, uint8_t flags,
                           uint16_t status, const char *rest, size_t rest_len)
{
    uint8_t buf[OUTQ_META_MAX];
    struct frame_meta m = outq_meta(c, rest, rest_len);
    int n = frame_meta_encode(buf, sizeof(buf), &m);

    if (n < 0) {
        m.rest_len = 0;
        n = frame_meta_encode(buf, sizeof(buf), &m);
    }
    outq_send(c->w, type, flags, status, c->job, c->gen, buf, (size_t)n,
                type == FRAME_HEAD && c->stream);
}

int outq_send_answer(struct call *c, uint16_t status, const void *body,
                     size_t len)
{
    struct worker *w = c->w;
    uint8_t buf[FRAME_HDR_SIZE + FRAME_META_FIXED + CFG_TARGET_NAME_MAX];
    struct frame_meta m = outq_meta(c, NULL, 0);
    size_t meta = frame_meta_size(&m);
    struct frame f = { 0, FRAME_ANSWER, 0, status, c->job, c->gen, NULL };
    int n;

    if (len > FRAME_MAX_PAYLOAD - meta)
        return -1;
    n = frame_meta_encode(buf + FRAME_HDR_SIZE, sizeof(buf) - FRAME_HDR_SIZE,
                          &m);
    if (n < 0)
        return -1;
    f.len = (uint32_t)(meta + len);
    frame_encode_hdr(buf, &f);
    outq_seal(w);        /* after the answer bytes queued before it */
    /* Header and meta, then the body: one copy of the body, into the
     * queue the flush writes with one writev. */
    UTIL_MUST(evbuffer_add(w->bulk, buf, FRAME_HDR_SIZE + (size_t)n) |
              evbuffer_add(w->bulk, body, len), "a frame to the master");
    outq_kick(w);
    return 0;
}

void outq_send_capture(struct call *c, const char *json, size_t len)
{
    do {
        bool more = len > FRAME_MAX_PAYLOAD;
        size_t n = more ? FRAME_MAX_PAYLOAD : len;

        outq_send(c->w, FRAME_CAPTURE, more ? FRAME_F_MORE : 0, 0,
                  c->job, c->gen, json, n, false);
        json += n;
        len -= n;
    } while (len > 0);
}

void call_send_head(struct call *c)
{
    if (c->head_sent)
        return;
    c->head_sent = true;
    outq_send_meta(c, FRAME_HEAD, c->stream ? FRAME_F_STREAM : 0, 200,
                   NULL, 0);
}

void call_send_chunk(struct call *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    bool first = outq_mark_first(c);

    c->bytes += len;
    while (len > 0) {
        size_t n = len < FRAME_MAX_PAYLOAD ? len : FRAME_MAX_PAYLOAD;

        UTIL_MUST(evbuffer_add(outq_stage(c, n), p, n), "answer bytes");
        p += n;
        len -= n;
        if (first) {
            /* Its own frame, ahead of the queue (outq_queue). */
            c->w->stage_first = true;
            outq_seal(c->w);
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
    first = outq_mark_first(c);
    c->bytes += total;
    stage = outq_stage(c, total);
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        outq_stage_add(stage, prefix, sizeof(prefix) - 1);
        outq_stage_add(stage, p, (size_t)(nl + 1 - p));
        p = nl + 1;
    }
    outq_stage_add(stage, prefix, sizeof(prefix) - 1);
    outq_stage_add(stage, p, (size_t)(end - p));
    outq_stage_add(stage, suffix, sizeof(suffix) - 1);
    if (first) {
        /* Its own frame, ahead of the queue (outq_queue). */
        c->w->stage_first = true;
        outq_seal(c->w);
    }
}

bool call_output_full(struct call *c)
{
    struct worker *w = c->w;

    /* The first bytes of an answer are never held back: they are what its
     * client is waiting for, and a call has one such piece (a curl write,
     * at most CURL_MAX_WRITE_SIZE), so the backlog stays bounded. */
    if (c->bytes == 0)
        return false;
    if (outq_backlog(w) <= WORKER_OUT_HIGH_WATER)
        return false;
    if (!c->paused_local) {
        c->paused_local = true;
        w->paused_local++;
    }
    return true;
}

/* The backlog to the master is down to the low mark: resume the streams
 * it held up (those the master paused stay paused). */
static void outq_resume_local(struct worker *w)
{
    for (uint32_t j = 0; j < w->shm.hdr->job_count && w->paused_local > 0;
         j++) {
        struct call *c = w->calls[j];

        if (c == NULL || !c->paused_local)
            continue;
        c->paused_local = false;
        w->paused_local--;
        w->resume_reading(c);
    }
}

/* A write from the write event emptied the window: feed it from the
 * queue, or resume the streams the backlog held up, later in this turn
 * (outq_flush; not from inside the channel's write). */
static void outq_drain_cb(struct chan *ch, void *arg)
{
    struct worker *w = arg;

    (void)ch;
    if (evbuffer_get_length(w->bulk) > 0 ||
        (w->paused_local > 0 && outq_backlog(w) <= WORKER_OUT_LOW_WATER))
        outq_kick(w);
}

int outq_init(struct worker *w)
{
    chan_set_drain(&w->master, WORKER_OUT_WINDOW / 2, outq_drain_cb);
    w->flush_ev = event_new(w->base, -1, 0, outq_flush_cb, w);
    w->stage = evbuffer_new();
    w->bulk = evbuffer_new();
    if (w->flush_ev == NULL || w->stage == NULL || w->bulk == NULL)
        return -1;
    return 0;
}

void outq_free(struct worker *w)
{
    if (w->flush_ev)
        event_free(w->flush_ev);
    w->flush_ev = NULL;
    if (w->master_ok) {
        /* Hand the last frames over before closing: the loop stopped
         * right after the last call queued its END. Blocking now. */
        struct evbuffer *out = w->master.out;
        int fd = w->master.fd;

        if (w->stage != NULL && w->bulk != NULL) {
            outq_seal(w);
            if (evbuffer_add_buffer(out, w->bulk) < 0)
                log_msg(&w->log, LOG_ERROR, NULL, "out of memory: the "
                        "last frames to the master are lost");
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        while (!w->master.closed && evbuffer_get_length(out) > 0 &&
               evbuffer_write(out, fd) > 0)
            ;
        chan_free(&w->master);
        w->master_ok = false;
    }
    if (w->stage != NULL)
        evbuffer_free(w->stage);
    if (w->bulk != NULL)
        evbuffer_free(w->bulk);
    w->stage = w->bulk = NULL;
}
