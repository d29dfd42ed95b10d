/* anthropic_stream.h - the Anthropic door's stream filter: OpenAI
 * chat-completion chunks (the data of each SSE event an OpenAI-format
 * target sends) in, Anthropic stream events out. The state is small and
 * bounded (the open blocks, the stop reason, the token counts): nothing
 * of the answer is buffered. Pure: no I/O, no clock.
 *
 * Events made: message_start (usage.input_tokens when the first chunk
 * says it, else 0); per block content_block_start, content_block_delta
 * (text_delta, or input_json_delta as tool arguments arrive) and
 * content_block_stop; then message_delta (stop_reason, stop_sequence,
 * usage with input_tokens and output_tokens) and message_stop. A text
 * block closes when a tool call starts; tool blocks stay open until the
 * answer ends (OpenAI may interleave the arguments of several calls by
 * their index) and then close in index order. A failure (an error chunk,
 * a chunk that is not JSON, [DONE] without a finish_reason, the caller's
 * anthropic_stream_fail) ends the stream with one
 * "event: error" ({"type":"error","error":{"type":"api_error",...}}) and
 * never with a message_stop. */
#ifndef RCC_ANTHROPIC_STREAM_H
#define RCC_ANTHROPIC_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "anthropic_req.h"

#define ANTHROPIC_STREAM_TOOLS_MAX  64   /* tool calls in one answer */
#define ANTHROPIC_STREAM_ID_MAX     96   /* bytes of a message id */
#define ANTHROPIC_STREAM_STOP_MAX   128  /* bytes of a matched stop kept */

struct evbuffer;

enum anthropic_stream_status {
    ANTHROPIC_STREAM_MORE = 0,    /* go on feeding */
    ANTHROPIC_STREAM_DONE,        /* message_stop written; ignore the rest */
    ANTHROPIC_STREAM_FAILED,      /* an error event written; the same */
};

struct anthropic_stream_tool {
    int openai_index;             /* tool_calls[].index */
    int block;                    /* its Anthropic content block index */
};

struct anthropic_stream {
    char id[ANTHROPIC_STREAM_ID_MAX];
    char model[ANTHROPIC_REQ_MODEL_MAX];
    enum anthropic_stream_status status;
    bool started;                 /* message_start written */
    bool finished;                /* a finish_reason seen */
    int next_block;               /* index the next block gets */
    int text_block;               /* the open text block, or -1 */
    struct anthropic_stream_tool tools[ANTHROPIC_STREAM_TOOLS_MAX];
    int ntools;                   /* all of them are open until the end */
    char finish_reason[ANTHROPIC_STREAM_ID_MAX];
    char stop_sequence[ANTHROPIC_STREAM_STOP_MAX]; /* "" when none */
    long long input_tokens, output_tokens;
};

/* Starts a stream whose message is "msg_" + id with "model": model (as
 * the client asked); both are copied (cut to fit). */
void anthropic_stream_init(struct anthropic_stream *s, const char *id,
                           const char *model);

/* Feeds the data of one SSE event of the target's stream (a JSON chunk,
 * or "[DONE]"), appending zero or more complete Anthropic events to out
 * (owned by the caller). Returns the status after it; once not MORE,
 * further calls write nothing. Out of memory aborts (util_oom). */
enum anthropic_stream_status anthropic_stream_feed(struct anthropic_stream *s,
                                                   const char *data,
                                                   size_t len,
                                                   struct evbuffer *out);

/* The target's stream ended (EOF) without [DONE]: a stream that had its
 * finish_reason is completed as if [DONE] came (some compatible servers
 * omit it); one without is cut, and ends in an error event. */
enum anthropic_stream_status anthropic_stream_end(struct anthropic_stream *s,
                                                  struct evbuffer *out);

/* A failure the caller saw (timeout, upstream error, reset): ends the
 * stream with an error event carrying message, unless it has ended. */
enum anthropic_stream_status anthropic_stream_fail(struct anthropic_stream *s,
                                                   const char *message,
                                                   struct evbuffer *out);

/* Appends s[0..len) to out as a JSON string, quotes included (", \ and
 * control bytes escaped; other bytes as they are). */
void anthropic_stream_json_string(struct evbuffer *out, const char *s,
                                  size_t len);

#endif
