/* compat.h - what differs between the OpenAI-compatible providers, kept in
 * one pure place: the request body each one is sent (the target's model
 * name; parameters a provider does not take dropped or renamed) and the
 * reading of their answers (a chat completion's shape, its usage, an
 * error's message). The adapter stays one; every rule is unit-tested and
 * fuzzed. */
#ifndef RCC_COMPAT_H
#define RCC_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct compat_usage {
    uint32_t prompt_tokens;
    uint32_t completion_tokens;
};

/* The client's body (a JSON object) as provider type expects it, with
 * "model" set to model; malloc'd into *out (the caller frees), its length
 * in *out_len. -1 when body is not a JSON object or memory ran out. */
int compat_request(enum cfg_provider_type type, const char *body, size_t len,
                   const char *model, char **out, size_t *out_len);

/* Usage for every streamed answer: whether the streaming request body
 * (a JSON object) asks for stream_options.include_usage. When it does
 * not, *out gets (malloc'd; the caller frees) the body with
 * "stream_options":{"include_usage":true} set (other stream_options
 * members kept) and 1 is returned: the caller then strips the extra
 * usage chunk (compat_usage_chunk) from what its client sees. 0: the
 * client asked already, nothing made. -1: not a JSON object, or out of
 * memory. */
int compat_ask_usage(const char *body, size_t len, char **out,
                     size_t *out_len);

/* Whether the stream event data[0..len) is the usage chunk that
 * include_usage adds: a "usage" object and "choices" an empty array. */
bool compat_usage_chunk(const char *data, size_t len);

/* Checks a plain answer: NULL when it is a JSON object with a "choices"
 * array (its usage, if any, goes to *u), else why not. */
const char *compat_check_answer(const char *body, size_t len,
                                struct compat_usage *u);

/* The token counts of the usage object at obj[0..len): OpenAI's
 * prompt_tokens / completion_tokens, or input_tokens / output_tokens as
 * DashScope's native API says them. Members absent count 0. */
void compat_usage(const char *obj, size_t len, struct compat_usage *u);

/* The message of an error answer into out: OpenAI's {"error":{"message"}}
 * or {"error":"..."}, DashScope's {"code","message"}, a bare {"message"};
 * else a printable snippet of the body. Every one of secrets[0..n) (NULL
 * entries skipped) is replaced by "***" before the text is cut to fit.
 * Always NUL-terminated. */
void compat_error_message(const char *body, size_t len,
                          const char *const *secrets, size_t nsecrets,
                          char *out, size_t cap);

/* Replaces every occurrence of secret in the NUL-terminated s with "***"
 * (in place; s never grows). Secrets shorter than 4 bytes are left: too
 * short to tell from ordinary text. */
void compat_redact(char *s, const char *secret);

#endif
