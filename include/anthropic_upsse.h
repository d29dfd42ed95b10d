/* anthropic_upsse.h - the `type = "anthropic"` provider's stream seen
 * from the OpenAI door: Anthropic stream events in (the event name and
 * data of each SSE event), OpenAI chat-completion chunks out, ending in
 * "data: [DONE]". Bounded state: the message id, the token counts and,
 * per content block index, whether it is a tool call and which. Pure.
 *
 * message_start → a first chunk with delta {role, content: ""};
 * text_delta → delta.content; a tool_use block's start → delta
 * tool_calls [{index, id, type, function {name, arguments: ""}}] and its
 * input_json_delta → function.arguments pieces; thinking blocks, ping
 * and unknown events are skipped; message_delta → a chunk with the
 * finish_reason and usage (prompt_tokens from message_start plus the
 * cache counts, completion_tokens from message_delta); message_stop →
 * "data: [DONE]". An error event is not written: the status says FAILED
 * and error_type / error_message say what, for the caller to report in
 * its own shape. */
#ifndef RCC_ANTHROPIC_UPSSE_H
#define RCC_ANTHROPIC_UPSSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANTHROPIC_UPSSE_BLOCKS_MAX  256   /* content blocks in one answer */
#define ANTHROPIC_UPSSE_ID_MAX      96
#define ANTHROPIC_UPSSE_MODEL_MAX   256
#define ANTHROPIC_UPSSE_TYPE_MAX    64
#define ANTHROPIC_UPSSE_MESSAGE_MAX 512
/* A block that is not a tool call (text, thinking, ...). */
#define ANTHROPIC_UPSSE_NOT_TOOL    (-1)

struct evbuffer;

enum anthropic_upsse_status {
    ANTHROPIC_UPSSE_MORE = 0,
    ANTHROPIC_UPSSE_DONE,         /* [DONE] written */
    ANTHROPIC_UPSSE_FAILED,       /* error_type/error_message set */
};

struct anthropic_upsse {
    char id[ANTHROPIC_UPSSE_ID_MAX];
    char model[ANTHROPIC_UPSSE_MODEL_MAX];
    int64_t created;
    enum anthropic_upsse_status status;
    bool started;                 /* message_start seen */
    bool finished;                /* the finish chunk written */
    int16_t tool_of_block[ANTHROPIC_UPSSE_BLOCKS_MAX]; /* OpenAI index */
    int ntools;
    long long input_tokens, output_tokens;
    char error_type[ANTHROPIC_UPSSE_TYPE_MAX];
    char error_message[ANTHROPIC_UPSSE_MESSAGE_MAX];
};

/* Starts a translation; chunks carry "model": model (copied) and
 * "created": created (seconds since the epoch, the caller's clock). */
void anthropic_upsse_init(struct anthropic_upsse *s, const char *model,
                          int64_t created);

/* Feeds one Anthropic SSE event (event: its name, "" when none; the type
 * member of data decides) and appends zero or more OpenAI chunks to out
 * (owned by the caller). Once not MORE, further calls write nothing. A
 * data that is not a JSON object, an event out of order (a delta before
 * message_start, a block index past the bound) fails the stream like an
 * error event (error_type "api_error"). Out of memory aborts. */
enum anthropic_upsse_status anthropic_upsse_feed(struct anthropic_upsse *s,
                                                 const char *event,
                                                 const char *data,
                                                 size_t len,
                                                 struct evbuffer *out);

/* The upstream's stream ended (EOF): FAILED with "api_error" when no
 * message_stop came (an answer cut short), else the status as it is. */
enum anthropic_upsse_status anthropic_upsse_end(struct anthropic_upsse *s);

#endif
