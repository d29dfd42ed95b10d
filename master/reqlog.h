/* reqlog.h - the end of a chat request as the operator sees it: its one
 * log line (docs/OPERATIONS.md, "Logging") and its counts (the latency
 * histogram and token counters of the target that answered, succeeded
 * or failed). Used by the front end (requests refused before queueing)
 * and mreq.c (requests released). Allocates nothing. */
#ifndef RCC_REQLOG_H
#define RCC_REQLOG_H

#include "log.h"
#include "trace.h"

struct master;

/* Tokens an answer used, per target slot, for /metrics. */
struct reqlog_tokens {
    uint64_t prompt;
    uint64_t completion;
};

/* The request's line at level; t is NULL for a request answered before
 * it was queued. */
void reqlog_write(struct master *m, enum log_level level, const char *rid,
                  const struct trace_req *r, const struct trace *t);
/* A queued request is done: its line at info level, then its latency
 * and tokens on the target that answered, and the succeeded or failed
 * counter. */
void reqlog_finish(struct master *m, const char *rid,
                   const struct trace_req *r, const struct trace *t);

#endif
