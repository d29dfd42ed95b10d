/* outq.h - the worker's output queue to the master (outq.c): frames in
 * order, a stream's first bytes ahead of the backlog, upstream reading
 * paused while the backlog is over WORKER_OUT_HIGH_WATER. The adapters'
 * part keeps its call_ names (call_send_head, call_send_chunk, ...). */
#ifndef RCC_WORKER_OUTQ_H
#define RCC_WORKER_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct call;
struct worker;

/* After chan_init of w->master: the flush event, the stage and the
 * backlog. 0, or -1 when out of memory (outq_free undoes it). */
int outq_init(struct worker *w);
/* Writes what is left for the master, blocking, closes the channel and
 * frees the queue. NULL-safe on a half-made queue. */
void outq_free(struct worker *w);

/* Queues a frame about c with its meta (attempts, target, timings,
 * usage) and rest (an error body) as payload; a stream's HEAD skips the
 * backlog. */
void outq_send_meta(struct call *c, uint8_t type, uint8_t flags,
                    uint16_t status, const char *rest, size_t rest_len);

/* Queues c's whole plain answer as one ANSWER frame (status, meta and
 * body; it ends the job); -1 when it does not fit one frame (the caller
 * sends HEAD, CHUNK and END instead). */
int outq_send_answer(struct call *c, uint16_t status, const void *body,
                     size_t len);

/* Queues a captured attempt's JSON (wcap.c) as CAPTURE frames, in
 * pieces of at most FRAME_MAX_PAYLOAD, FRAME_F_MORE on all but the last. */
void outq_send_capture(struct call *c, const char *json, size_t len);

/* Queues a frame that belongs to no call (FRAME_OAUTH): type, status
 * and job, no payload. */
void outq_send_control(struct worker *w, uint8_t type, uint16_t status,
                       uint32_t job);

/* What adapters report with. */
/* True when the frames waiting for the master are over the high mark
 * and the call has sent answer bytes before; the call is then marked to
 * be resumed (w->resume_reading) when they drain. */
bool call_output_full(struct call *c);
/* Sends the HEAD frame once (status 200). */
void call_send_head(struct call *c);
/* Sends answer bytes (after call_send_head). Bytes sent together go to
 * the master in one frame: they are gathered until the loop turn ends or
 * another frame is sent. */
void call_send_chunk(struct call *c, const void *data, size_t len);
/* Sends one SSE event, "data: " data "\n\n", whole in one frame. */
void call_send_event(struct call *c, const char *data, size_t len);
/* When a stream's first bytes are waiting, writes the window they are in
 * at once, and nothing else (no resumed transfers, no failure handling),
 * so it may run inside a curl callback: the flush already due this turn
 * does the rest. Called from curl's write callback and after each curl
 * action (a stream that ends before its first event is written). */
void worker_flush_first(struct worker *w);

#endif
