/* mreq.h - the master's request: a chat request from its enqueue to its
 * release, as an explicit state with named transitions. The front end
 * starts one (mreq_start); the relay of a worker's frames drives it
 * (mreq_head, mreq_chunk, mreq_end, mreq_error); the client's connection
 * (mreq_client_lost, mreq_client_drained), its deadline, a shutdown
 * (mreq_fail, mreq_cancel) and a lost worker (mreq_worker_lost) do the
 * rest. "Is the client still waiting?" is mreq_waiting(). Every mreq
 * lives in master->reqs, indexed by its job; the slot is reused, never
 * freed while the master runs (mreq_free_all at the end). */
#ifndef RCC_MREQ_H
#define RCC_MREQ_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "apierror.h"
#include "config.h"
#include "frame.h"
#include "http.h"

struct master;
struct mcap;

enum mreq_state {
    MREQ_FREE = 0,     /* the slot holds no request */
    MREQ_WAITING,      /* queued or running; the client has nothing yet */
    MREQ_STREAMING,    /* the client has a stream's head and its chunks */
    MREQ_ANSWERED,     /* the client has its whole answer (or an error);
                          the job may still run until its worker ends it */
    MREQ_GONE          /* the client left first; the same */
};

/* A client request in flight, indexed by its job. */
struct mreq {
    struct master *m;
    enum mreq_state state;
    struct http_req *http;         /* while WAITING or STREAMING only */
    struct event *timer;           /* deadline; kept for reuse */
    struct evbuffer *body;         /* plain answer being gathered */
    uint32_t job;
    uint32_t gen;
    bool stream;                   /* the client asked for a stream */
    bool chunk_sent;               /* STREAMING: the first chunk is out */
    bool paused;                   /* its upstream transfer is paused */
    bool usage;                    /* the answer's END said its tokens */
    uint16_t attempts;
    int status;
    uint32_t prompt_tokens;        /* from the END frame, when usage */
    uint32_t completion_tokens;
    /* its stages, for its log line (monotonic µs; 0: did not happen) */
    int64_t received_us;
    int64_t queued_us;
    int64_t first_byte_us;
    int64_t gone_us;
    const char *error;             /* code the master failed it with (a
                                      string literal), or error_code */
    char error_code[APIERR_CODE_MAX + 1]; /* a worker's error event's,
                                      for a stream that had begun */
    char target[CFG_TARGET_NAME_MAX];
    char model[CFG_TARGET_NAME_MAX];
    const char *door;              /* the API it came in through (a
                                      string literal): "openai" */
    struct mcap *cap;              /* its capture (mcap.c), or NULL */
};

/* Is the client still waiting for (the rest of) its answer? */
static inline bool mreq_waiting(const struct mreq *mr)
{
    return mr->state == MREQ_WAITING || mr->state == MREQ_STREAMING;
}

/* Starts the request of job j (queued already) for http: arms its
 * deadline and wakes a worker. model is copied. */
void mreq_start(struct master *m, struct http_req *http, uint32_t j,
                bool stream, const char *model, long long timeout_ms,
                int64_t received_us, int64_t queued_us);

/* A worker's frames (relay.c); meta is the frame's decoded meta. */
void mreq_head(struct mreq *mr, int status, const struct frame_meta *meta);
/* Moves len bytes of a chunk from in to the client (or drops them). */
void mreq_chunk(struct mreq *mr, struct evbuffer *in, size_t len);
/* The answer is complete: sends a gathered answer, ends a stream,
 * releases the request. */
void mreq_end(struct mreq *mr, int status, const struct frame_meta *meta);
/* A whole plain answer (ANSWER frame): drops the frame's first skip
 * bytes (header and meta; meta points into them), moves the len bytes
 * of body after them from in to the client in one write with the head
 * (or drops them), releases the request. */
void mreq_whole(struct mreq *mr, int status, const struct frame_meta *meta,
                struct evbuffer *in, size_t skip, size_t len);
/* The worker failed it: passes its OpenAI error body on (or ends a begun
 * stream with it as an error event), releases the request. */
void mreq_error(struct mreq *mr, int status, const struct frame_meta *meta);

/* Answers the client with an error now (JSON or, mid-stream, an SSE
 * error event); a client answered already or gone keeps its status. */
void mreq_fail(struct mreq *mr, int status, const char *code,
               const char *message);
/* The client is gone or was answered early: tells whoever holds the job
 * (a queued job leaves the queue and the request is released). */
void mreq_cancel(struct mreq *mr);
/* Its worker is gone: runs it again when the client has seen nothing,
 * else fails the client's answer (502 worker_died); releases it then. */
void mreq_worker_lost(struct mreq *mr);
/* Releases the job slot and the mreq; logs the request's line. */
void mreq_release(struct mreq *mr);

/* The HTTP server's callbacks for a request that is an mreq's. */
void mreq_client_lost(struct http_req *http, void *arg);
void mreq_client_drained(struct http_req *http, void *arg);

/* An error answer to a chat request: http_send_error with Retry-After
 * on 429 and 503. */
void mreq_send_error(struct http_req *http, int status, const char *code,
                     const char *message);

/* At exit: frees every mreq's timer and buffer; none is active after. */
void mreq_free_all(struct master *m);

#endif
