/* call.h - a job's life in the worker over its attempts (call.c): target
 * choice and failover, the retry decision, backoff, deadline, idle timer
 * and breaker accounting. struct call itself is in worker_int.h. */
#ifndef RCC_WORKER_CALL_H
#define RCC_WORKER_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct call;
struct cfg_provider;
struct worker;

/* ---- the loop's part ---- */

/* Runs job j, which the loop has just popped (shm_job_pop): makes its
 * call (freed when it ends) and starts its first attempt. Out of memory
 * puts the job back in the queue and sets w->blocked. */
void call_begin(struct worker *w, uint32_t j);
/* The master cancelled the job: END with APIERR_CLIENT_GONE, call freed. */
void call_cancel(struct call *c);
/* The master's backpressure: stop or restart reading c's upstream answer
 * (curl leaves the bytes in the socket, so TCP slows the upstream). */
void call_pause(struct call *c, bool pause);
/* Restarts reading c's upstream answer unless the master or the output
 * queue still holds it up (w->resume_reading points here). */
void call_resume_reading(struct call *c);
/* A job the loop parked (w->park) goes back to its place in the queue;
 * the call is freed (or, when the queue is full, the job fails). */
void call_unpark(struct call *c);
/* At the worker's end: stops c's transfer and frees it, no frame. */
void call_abandon(struct call *c);

/* ---- the retry decision, for adapters ---- */

/* An upstream answered HTTP status: true when another attempt (on this
 * target later, or another) may pass: 408, 409, 429 and 5xx. */
bool call_status_retryable(int status);
/* True when status says the client's request is at fault (400, 404,
 * 413, 422): answered as it is, no retry, the target counts as well. */
bool call_status_client_fault(int status);
/* A finished transfer of c's attempt: 0 with the upstream's HTTP status
 * in *status when an answer came (the adapter classifies it), or -1
 * when the transfer itself failed (protocol error, answer too large,
 * the deadline, no connection), which this has reported with
 * call_attempt_failed. One rule for every adapter. */
int call_transfer_result(struct call *c, CURLcode result, long *status);

/* ---- what adapters read and report with ---- */

const char *call_model(const struct call *c);
const struct cfg_provider *call_provider(const struct call *c);
const uint8_t *call_body(const struct call *c, size_t *len);
/* Upstream bytes arrived (or the attempt started): restarts the idle
 * clock of the attempt. */
void call_touch(struct call *c);
/* The attempt succeeded and the answer is complete. */
void call_succeeded(struct call *c);
/* The attempt succeeded with this whole plain answer (200): sent as one
 * ANSWER frame, or HEAD, CHUNK and END when it is over a frame's size
 * or the answer has begun already (then as call_send_head +
 * call_send_chunk + call_succeeded). */
void call_answered(struct call *c, const void *body, size_t len);
/* The attempt got HTTP status but is worth making again on the same
 * target at once (new credentials): a new attempt, counted and traced. */
void call_attempt_again(struct call *c, int status);
/* The attempt failed. status/code/message describe it for the client
 * if no retry follows; retryable says whether another attempt may (see
 * call_status_retryable); target_fault whether it counts against the
 * target's breaker. Another attempt follows after a backoff unless the
 * answer has begun, the budget (retry.max_retries) is spent, the job
 * is cancelled or the backoff would pass its deadline. */
void call_attempt_failed(struct call *c, int status, const char *code,
                         const char *message, bool retryable,
                         bool target_fault);

#endif
