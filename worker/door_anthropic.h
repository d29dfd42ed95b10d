/* door_anthropic.h - the worker's side of the Anthropic door for an
 * OpenAI-format target (worker/door_anthropic.c): the job's Messages
 * body made a chat body, and the answer made Anthropic's again, a plain
 * one whole, a stream as a filter event by event (anthropic_stream.c,
 * state bounded; nothing of the answer kept). Used by the adapters of
 * OpenAI-format kinds for jobs flagged SHM_JOB_ANTHROPIC. */
#ifndef RCC_WORKER_DOOR_ANTHROPIC_H
#define RCC_WORKER_DOOR_ANTHROPIC_H

#include <stdbool.h>
#include <stddef.h>

struct call;

/* Is the call's job the Anthropic door's? */
bool wdoor_anthropic(const struct call *c);

/* The job's Messages body as a chat body: *out malloc'd (the caller
 * frees it), and the call's translation state set up (c->door_state,
 * freed with the attempt). 0, or -1 with err filled (a 400). */
int wdoor_anthropic_request(struct call *c, char **out, size_t *out_len,
                            char *err, size_t err_cap);

/* One SSE event's data of the target's stream (a chunk or [DONE]): its
 * Anthropic events go to the client. 1 when the message is complete
 * (message_stop sent), 0 to go on, -1 when the stream failed (nothing of
 * the failure is sent: the caller fails the attempt, and the master ends
 * the client's stream with an error event). */
int wdoor_anthropic_event(struct call *c, const char *data, size_t len);

/* The target's stream ended without [DONE]: 1 when the message was
 * completed (it had its finish_reason), -1 when it was cut. */
int wdoor_anthropic_end(struct call *c);

/* A whole chat completion: the Anthropic message sent as c's answer
 * (call_answered: the call is finished and freed). 0, or -1 when it is
 * not a chat completion (nothing sent, c untouched). */
int wdoor_anthropic_plain(struct call *c, const char *body, size_t len);

#endif
