/* relay.c - the master's end of each worker's channel, both directions:
 * the frames a worker sends (HEAD, CHUNK, END, ERROR, ANSWER, CAPTURE)
 * are decoded, checked and handed to the request they belong to
 * (mreq.c, mcap.c), OAUTH to cluster mode's refresh lock (cloauth.c),
 * and the frames the master sends (CANCEL, PAUSE, RESUME, SHUTDOWN) are
 * written here (relay_send, the master's
 * worker_send hook). One policy for
 * malformed input from a worker: any bad frame, header or meta, marks
 * its channel broken and kills the worker; its jobs are then run again
 * or failed like those of any worker that died (relay_worker_lost, the
 * master's worker_lost hook, called by the supervisor). */
#include "relay.h"

#include <signal.h>

#include "cloauth.h"
#include "frame.h"
#include "master.h"
#include "mcap.h"
#include "mreq.h"

void relay_send(struct master *m, int slot, uint8_t type, uint32_t job,
                uint32_t gen)
{
    struct frame f = { 0, type, 0, 0, job, gen, NULL };
    uint8_t hdr[FRAME_HDR_SIZE];

    if (slot < 0 || slot >= CFG_MAX_WORKERS || m->workers[slot].chan == NULL)
        return;
    frame_encode_hdr(hdr, &f);
    /* Control frames are rare and a PAUSE should act soon: out at once. */
    UTIL_MUST(evbuffer_add(m->workers[slot].chan->out, hdr, sizeof(hdr)),
              "a frame to a worker");
    chan_flush(m->workers[slot].chan);
}

static int relay_slot_of(const struct master *m, const struct chan *ch)
{
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].chan == ch)
            return i;
    return -1;
}

/* The mreq a frame is for, or NULL when it is stale (the slot was
 * reused, or the client was already answered and released). */
static struct mreq *relay_lookup(struct master *m, const struct frame *f)
{
    struct mreq *mr;

    if (f->job >= m->shm.hdr->job_count)
        return NULL;
    mr = &m->reqs[f->job];
    if (mr->state == MREQ_FREE || mr->gen != f->gen)
        return NULL;
    return mr;
}

/* Nothing after a bad frame can be trusted: the channel is read no more
 * and the worker is replaced; the supervisor reaps it and reports it
 * lost, which re-queues or fails its jobs. */
static void relay_broken(struct master *m, struct chan *ch, const char *why)
{
    int slot = relay_slot_of(m, ch);

    log_msg(&m->log, LOG_ERROR, NULL, "malformed frame from worker slot %d "
            "(%s); killing it", slot, why);
    evbuffer_drain(ch->in, evbuffer_get_length(ch->in));
    chan_stop(ch);
    if (slot < 0)
        return;
    m->workers[slot].broken = true;
    if (m->workers[slot].pid > 0)
        kill(m->workers[slot].pid, SIGKILL);
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
        if (p == NULL)
            util_oom("a worker's frame");
        n = frame_decode(p, FRAME_HDR_SIZE, &f);
        if (n < 0 || (n == 0 && f.len > FRAME_MAX_PAYLOAD) ||
            (f.type >= FRAME_CANCEL && f.type != FRAME_OAUTH) ||
            (f.type == FRAME_OAUTH && f.len != 0)) {
            relay_broken(m, ch, "bad header");
            return;
        }
        if (avail < FRAME_HDR_SIZE + f.len)
            return;
        if (f.type == FRAME_OAUTH) {
            /* No job: the OAuth refresh lock (cloauth.c). */
            evbuffer_drain(in, FRAME_HDR_SIZE);
            cloauth_worker_frame(m, relay_slot_of(m, ch), f.status, f.job);
            continue;
        }
        mr = relay_lookup(m, &f);
        if (f.type == FRAME_CHUNK) {
            evbuffer_drain(in, FRAME_HDR_SIZE);
            if (mr != NULL)
                mreq_chunk(mr, in, f.len);
            else
                evbuffer_drain(in, f.len);
            continue;
        }
        if (f.type == FRAME_CAPTURE) {
            evbuffer_drain(in, FRAME_HDR_SIZE);
            if (mr != NULL)
                mcap_piece(mr, in, f.len, (f.flags & FRAME_F_MORE) != 0);
            else
                evbuffer_drain(in, f.len);
            continue;
        }
        if (f.type == FRAME_ANSWER) {
            /* Its meta, then the body: relayed from here, not copied. */
            size_t pre;

            p = evbuffer_pullup(in, (ev_ssize_t)(FRAME_HDR_SIZE +
                                                 FRAME_META_FIXED));
            n = p != NULL ? frame_meta_prefix(p + FRAME_HDR_SIZE,
                                              FRAME_META_FIXED, f.len) : -1;
            if (n <= 0 || (p = evbuffer_pullup(in, (ev_ssize_t)
                                               (FRAME_HDR_SIZE + n))) == NULL ||
                frame_meta_decode(p + FRAME_HDR_SIZE, (size_t)n, &meta) < 0) {
                relay_broken(m, ch, "bad meta");
                return;
            }
            pre = FRAME_HDR_SIZE + (size_t)n;
            if (mr != NULL) {
                mreq_whole(mr, f.status, &meta, in, pre, f.len - (size_t)n);
            } else {
                evbuffer_drain(in, FRAME_HDR_SIZE + f.len);
            }
            continue;
        }
        /* HEAD, END and ERROR carry meta, stale or not. */
        p = evbuffer_pullup(in, (ev_ssize_t)(FRAME_HDR_SIZE + f.len));
        if (p == NULL)
            util_oom("a worker's frame");
        if (frame_meta_decode(p + FRAME_HDR_SIZE, f.len, &meta) < 0) {
            relay_broken(m, ch, "bad meta");
            return;
        }
        if (mr != NULL) {
            if (f.type == FRAME_HEAD)
                mreq_head(mr, f.status, &meta);
            else if (f.type == FRAME_END)
                mreq_end(mr, f.status, &meta);
            else
                mreq_error(mr, f.status, &meta);
        }
        evbuffer_drain(in, FRAME_HDR_SIZE + f.len);
    }
}

void relay_worker_lost(struct master *m, int slot)
{
    struct mworker *mw = &m->workers[slot];

    /* Frames it sent before dying are still worth relaying, unless it
     * was killed for sending a bad one. */
    if (mw->chan != NULL)
        while (!mw->broken && chan_read_once(mw->chan) > 0)
            relay_read_cb(mw->chan, m);
    for (uint32_t j = 0; j < m->shm.hdr->job_high; j++) {
        const struct shm_job *sj = &m->shm.jobs[j];

        if (sj->owner != slot || (sj->state != SHM_JOB_RUNNING &&
                                  sj->state != SHM_JOB_DONE))
            continue;
        if (m->reqs[j].state == MREQ_FREE) {
            /* No client behind it (cannot happen; be safe). */
            shm_lock(&m->shm);
            shm_job_free(&m->shm, j);
            shm_unlock(&m->shm);
            continue;
        }
        mreq_worker_lost(&m->reqs[j]);
    }
    cloauth_worker_lost(m, slot);
}
