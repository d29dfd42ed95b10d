/* trace.h - a request's stages, for its one log line. The workers record
 * what they did with a job (when they took it, and each upstream attempt:
 * target, start, end, outcome) in a fixed-size struct trace inside the
 * job's slot of the shared segment: no pointers, no allocation, a few
 * stores per stage. The master adds what only it knows (receipt,
 * queueing, first byte to the client, a client leaving, the end) and
 * formats the line when it releases the request. Pure functions: the
 * clock is passed in. */
#ifndef RCC_TRACE_H
#define RCC_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Attempts recorded one by one; beyond it the last slot keeps the latest
 * attempt and the line says how many it skipped ("+N_more"). */
#define TRACE_MAX_ATTEMPTS 8
/* Room for a formatted line (the logger's own limit is 2048 bytes with
 * its prefix); a longer one ends in "...". */
#define TRACE_LINE_MAX     1900

enum trace_outcome {
    TRACE_PENDING = 0,     /* none recorded: its worker died during it */
    TRACE_HTTP,            /* the upstream answered; status says how */
    TRACE_UNREACHABLE,     /* connection failed */
    TRACE_TIMEOUT,         /* the request's deadline passed */
    TRACE_IDLE,            /* the upstream went quiet for too long */
    TRACE_BAD_RESPONSE,    /* an answer we could not use */
    TRACE_CANCELLED,       /* the client left or the master cancelled */
    TRACE_ERROR,           /* anything else (credentials, our own) */
    TRACE_OUTCOME_COUNT
};

struct trace_attempt {
    int64_t start_us;      /* monotonic clock, like every time here */
    int64_t end_us;        /* 0 until it has an outcome */
    int32_t target;        /* the target's slot in the segment (the
                              master maps it to its cfg index) */
    uint32_t number;       /* 1 for the first attempt of the request */
    uint16_t status;       /* TRACE_HTTP: the upstream's HTTP status */
    uint8_t outcome;       /* enum trace_outcome */
};

/* Lives in struct shm_job: written by the worker that owns the job,
 * read by the master once the job is answered or its worker is dead. */
struct trace {
    int64_t dispatched_us;     /* a worker first took the job */
    int64_t redispatched_us;   /* the last time one took it again */
    uint32_t dispatches;       /* times taken (re-queued after a dead
                                  worker or every target being full) */
    uint32_t attempts;         /* upstream attempts, over all workers */
    struct trace_attempt attempt[TRACE_MAX_ATTEMPTS];
};

/* What the master knows of a request when it is done with it. */
struct trace_req {
    const char *model;         /* as asked for; NULL when not known */
    const char *target;        /* that answered; NULL or "": the trace's
                                  last attempt's, if any */
    const char *error;         /* the code the master failed it with,
                                  or a begun stream's error event's */
    int status;                /* the client's status (499: it left; a
                                  stream cut by an error event: 200) */
    bool client_gone;
    const char *client;        /* the client's name; NULL: none */
    bool usage;                /* the answer said the tokens it used */
    uint32_t prompt_tokens;    /* when usage */
    uint32_t completion_tokens;
    int64_t received_us;
    int64_t queued_us;         /* 0: never queued */
    int64_t first_byte_us;     /* 0: the client got nothing */
    int64_t gone_us;           /* 0: the client stayed */
    int64_t end_us;
};

void trace_reset(struct trace *t);
/* A worker took the job. */
void trace_dispatched(struct trace *t, int64_t now_us);
/* An attempt to target starts. */
void trace_attempt_begin(struct trace *t, int target, int64_t now_us);
/* The attempt begun last ends; ignored when it has its outcome already
 * (or was never begun). status matters for TRACE_HTTP. */
void trace_attempt_end(struct trace *t, enum trace_outcome outcome,
                       int status, int64_t now_us);
/* The outcome of an attempt a worker failed with this OpenAI error code;
 * upstream_status is the HTTP status it got, 0 if none. */
enum trace_outcome trace_outcome_of(const char *code, int upstream_status);

/* Formats the request's line into out[cap] (cap > 3), NUL-terminated:
 *   model=M target=T status=S attempts=N ms=X first_byte_ms=Y
 *   [client=NAME] [prompt_tokens=P completion_tokens=C] [error=CODE]
 *   [client_gone=1]
 *   [stages=received:0,queued:...,done:X]
 * t may be NULL (a request answered before it was queued); cfg names
 * the targets. The stages, when asked for, are in time order, each with
 * its offset in ms from receipt. Returns the length written. */
size_t trace_format(char *out, size_t cap, const struct trace_req *r,
                    const struct trace *t, const struct cfg *cfg,
                    bool stages);

#endif
