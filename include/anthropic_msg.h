/* anthropic_msg.h - the Anthropic door's answer side for a plain (not
 * streamed) request served by an OpenAI-format target: a chat completion
 * becomes an Anthropic message. Also the stop-reason mapping the stream
 * translator shares; an Anthropic target's message renamed to the model
 * the client asked for. Pure. */
#ifndef RCC_ANTHROPIC_MSG_H
#define RCC_ANTHROPIC_MSG_H

#include <stddef.h>

/* A tool call whose arguments are not a JSON object reaches the client
 * as input {ANTHROPIC_MSG_RAW_ARGS_KEY: "<the arguments as sent>"} (empty
 * arguments as {}), so the tool refuses it visibly instead of running
 * with made-up input. */
#define ANTHROPIC_MSG_RAW_ARGS_KEY "_raw_arguments"
/* The prefix of message ids (Anthropic's are "msg_..."). */
#define ANTHROPIC_MSG_ID_PREFIX    "msg_"
/* The prefix of a tool_use id made up when the target gave none. */
#define ANTHROPIC_MSG_TOOL_ID_PREFIX "toolu_"

/* Anthropic's stop_reason for an OpenAI finish_reason: stop → end_turn
 * (stop_sequence when matched is a string, see below), length →
 * max_tokens, tool_calls / function_call → tool_use, content_filter and
 * anything else (or NULL) → end_turn. */
const char *anthropic_msg_stop_reason(const char *finish_reason,
                                      const char *matched);

/* The chat completion body[0..len) as an Anthropic message with
 * "id": "msg_" + id (the upstream's id when id is NULL) and "model":
 * model (as the client asked). Reads choices[0]: message.content (a
 * string, or text parts) → one text block; message.tool_calls → tool_use
 * blocks (input parsed from arguments, see ANTHROPIC_MSG_RAW_ARGS_KEY);
 * finish_reason → stop_reason, and tool calls present make it tool_use
 * whatever finish_reason says. OpenAI does not say which stop sequence
 * ended an answer; targets that do (vLLM, SGLang: choices[0].stop_reason
 * as a string) give stop_reason "stop_sequence" with it, others
 * end_turn. usage.prompt_tokens / completion_tokens → input_tokens /
 * output_tokens (0 when absent). Returns 0 with *out malloc'd and
 * NUL-terminated (the caller frees it), or -1 when body is not a chat
 * completion with a choices[0].message (*out NULL). Out of memory aborts
 * (util_oom). */
int anthropic_msg_from_openai(const char *body, size_t len, const char *model,
                              const char *id, char **out, size_t *out_len);

/* An Anthropic target's message (body[0..len), {"type":"message",...})
 * or a stream's message_start data ({"type":"message_start","message":
 * {...}}) with its "model" made model (the name the client asked for;
 * the upstream's never reaches the door's client), everything else as
 * it was. 0 with *out malloc'd and NUL-terminated (the caller frees
 * it), or -1 when body is not a JSON object (*out NULL). */
int anthropic_msg_set_model(const char *body, size_t len, const char *model,
                            char **out, size_t *out_len);

#endif
