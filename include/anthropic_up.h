/* anthropic_up.h - the `type = "anthropic"` provider seen from the
 * OpenAI door: an OpenAI chat-completions request becomes an Anthropic
 * Messages request, and an Anthropic message answer becomes a chat
 * completion. Streams are anthropic_upsse.h; error answers
 * anthropic_err.h. Pure: the clock is passed in. */
#ifndef RCC_ANTHROPIC_UP_H
#define RCC_ANTHROPIC_UP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Messages requires max_tokens; OpenAI clients often send none. */
#define ANTHROPIC_UP_DEFAULT_MAX_TOKENS 4096
/* Anthropic takes temperature in [0, 1]; OpenAI's [0, 2] is clamped. */
#define ANTHROPIC_UP_TEMPERATURE_MAX    1.0
#define ANTHROPIC_UP_ERR_MAX            256
/* The version header every request to Anthropic carries. */
#define ANTHROPIC_UP_VERSION            "2023-06-01"

/* Translates the chat-completions body[0..len) into a Messages body
 * with "model": model (the target's; NULL keeps the client's). system
 * and developer messages, wherever they are, are gathered in order into
 * "system" (joined with ANTHROPIC_REQ_JOIN); user/assistant content
 * strings and parts (text, image_url as base64 for data: URLs, else as a
 * url source) become blocks; assistant tool_calls become tool_use blocks
 * (arguments parsed; not an object: see ANTHROPIC_MSG_RAW_ARGS_KEY);
 * consecutive tool messages become one user message of tool_result
 * blocks; max_tokens (or max_completion_tokens, else the default),
 * temperature (clamped), top_p, stop → stop_sequences, tools → tools
 * (parameters → input_schema), tool_choice (auto, none, required → any,
 * a function → tool), parallel_tool_calls: false →
 * disable_parallel_tool_use, user → metadata.user_id, stream kept; other
 * parameters dropped. 0 with *out malloc'd (the caller frees it) and
 * *stream set, or -1 with a message for a 400 in err (always
 * NUL-terminated). Out of memory aborts (util_oom). */
int anthropic_up_request(const char *body, size_t len, const char *model,
                         char **out, size_t *out_len, bool *stream,
                         char *err, size_t err_cap);

/* OpenAI's finish_reason for an Anthropic stop_reason: end_turn,
 * stop_sequence, pause_turn → stop; max_tokens → length; tool_use →
 * tool_calls; refusal → content_filter; NULL or unknown → stop. */
const char *anthropic_up_finish_reason(const char *stop_reason);

/* The Anthropic message body[0..len) as a chat completion: "id" the
 * message's, "object":"chat.completion", "created": created (seconds),
 * "model": model; text blocks joined into message.content (null when
 * none), tool_use blocks → tool_calls (input as an arguments string),
 * thinking blocks dropped; usage input_tokens (+ cache reads and
 * writes) → prompt_tokens, output_tokens → completion_tokens, and their
 * total. 0 with *out malloc'd (the caller frees it), or -1 when body is
 * not a message (*out NULL). */
int anthropic_up_answer(const char *body, size_t len, const char *model,
                        int64_t created, char **out, size_t *out_len);

#endif
