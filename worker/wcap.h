/* wcap.h - the worker's part of request capture (wcap.c): for a job
 * the master marked SHM_JOB_CAPTURE, each attempt's target, times, the
 * body sent upstream, the upstream's status, headers and answer, sent
 * to the master as CAPTURE frames when the attempt ends (before the
 * job's END or ERROR). A job without the mark costs one flag test per
 * hook. Secrets (the provider's key, OAuth tokens, secret header
 * values) are masked before anything leaves the worker. */
#ifndef RCC_WORKER_WCAP_H
#define RCC_WORKER_WCAP_H

#include <stddef.h>

struct call;

/* An attempt of c starts (c->target is set). */
void wcap_attempt_begin(struct call *c);
/* One header line of the upstream's answer, as curl gives it. */
void wcap_header(struct call *c, const char *line, size_t len);
/* Answer bytes as received (a stream's; a plain answer is read from
 * c->resp when the attempt ends). */
void wcap_answer(struct call *c, const char *data, size_t len);
/* The attempt ended with outcome ("ok" or an error code): its CAPTURE
 * frames are queued. Call before the attempt's buffers are cleared. */
void wcap_attempt_end(struct call *c, const char *outcome);
/* Frees c's capture state (NULL-safe); with the call. */
void wcap_free(struct call *c);

#endif
