/* anthropic_req.h - the Anthropic door's request side: an Anthropic
 * Messages body (POST /v1/messages) checked and translated into an OpenAI
 * chat-completions body for an OpenAI-format target, and the input-token
 * estimate of POST /v1/messages/count_tokens. Pure: json-c trees in, bytes
 * out; no I/O, no clock. */
#ifndef RCC_ANTHROPIC_REQ_H
#define RCC_ANTHROPIC_REQ_H

#include <stdbool.h>
#include <stddef.h>

#define ANTHROPIC_REQ_ERR_MAX     256  /* bytes of a refusal's message */
#define ANTHROPIC_REQ_MODEL_MAX   256  /* bytes of a model name kept */
/* A tool_result with is_error: true reaches an OpenAI target as a tool
 * message whose text starts with this (OpenAI has no error flag). */
#define ANTHROPIC_REQ_TOOL_ERROR_PREFIX "Error: "
/* Text blocks of a system prompt or of one tool_result are joined with
 * this into the single string OpenAI-compatible targets all accept. */
#define ANTHROPIC_REQ_JOIN "\n"

/* count_tokens: ceil(bytes / ANTHROPIC_REQ_BYTES_PER_TOKEN) of every
 * text, tool input, tool result and tool definition (name, description
 * and input_schema as compact JSON), plus a fixed cost per image and per
 * message. */
#define ANTHROPIC_REQ_BYTES_PER_TOKEN  4
#define ANTHROPIC_REQ_IMAGE_TOKENS     1600 /* Anthropic's cap per image */
#define ANTHROPIC_REQ_MESSAGE_TOKENS   3    /* role and framing */

/* What the door needs to know about a request it translated. */
struct anthropic_req_info {
    bool stream;                            /* "stream": true */
    char model[ANTHROPIC_REQ_MODEL_MAX];    /* as the client wrote it (cut) */
    long long max_tokens;
};

/* Checks the Messages body[0..len) and translates it into an OpenAI
 * chat-completions body (see docs/ARCHITECTURE.md, "Anthropic
 * translation", for every rule). The model member is kept as sent (the
 * caller replaces it with the target's). On success returns 0, *out is a
 * malloc'd NUL-terminated body (the caller frees it with free()), *out_len
 * its length, and *info (when not NULL) is filled. On a refusal returns -1
 * with a message for a 400 invalid_request_error in err[err_cap] (always
 * NUL-terminated) and *out NULL. Out of memory aborts (util_oom). */
int anthropic_req_to_openai(const char *body, size_t len, char **out,
                            size_t *out_len, struct anthropic_req_info *info,
                            char *err, size_t err_cap);

/* The count_tokens estimate of a Messages body (max_tokens not needed),
 * deterministic, into *tokens. 0, or -1 with err filled as above when the
 * body would be refused by anthropic_req_to_openai (max_tokens aside). */
int anthropic_req_count_tokens(const char *body, size_t len, long long *tokens,
                               char *err, size_t err_cap);

#endif
