/* anthropic_err.h - errors in Anthropic's shape, both ways: the bodies
 * the Anthropic door answers with ({"type":"error","error":{"type":...,
 * "message":...}}) for an HTTP status of ours, and the reading of an
 * Anthropic upstream's error answer into what the retry and breaker
 * logic needs (the class of the failure, its message, retry-after).
 * Pure. */
#ifndef RCC_ANTHROPIC_ERR_H
#define RCC_ANTHROPIC_ERR_H

#include <stdbool.h>
#include <stddef.h>

#define ANTHROPIC_ERR_BODY_MAX    1024   /* bytes of a door error body */
#define ANTHROPIC_ERR_MESSAGE_MAX 512    /* bytes of a message kept */
/* Anthropic's own status for "overloaded" (not an IANA code). */
#define ANTHROPIC_ERR_STATUS_OVERLOADED 529

/* The Anthropic error type for one of our HTTP statuses: 400/413 and
 * other 4xx invalid_request_error, 401 authentication_error, 403
 * permission_error, 404 not_found_error, 429 rate_limit_error,
 * 503/529 overloaded_error, 502/504 and other 5xx api_error. */
const char *anthropic_err_type(int status);

/* Formats {"type":"error","error":{"type":T,"message":M}} into out[cap]
 * (always NUL-terminated, message cut at a UTF-8 boundary to fit);
 * returns its length. */
size_t anthropic_err_format(char *out, size_t cap, int status,
                            const char *message);

/* As anthropic_err_format, framed as one SSE event for a stream that has
 * already begun: "event: error\ndata: {...}\n\n" with type api_error. */
size_t anthropic_err_event(char *out, size_t cap, const char *message);

/* How an upstream failure is treated. */
enum anthropic_err_class {
    ANTHROPIC_ERR_CLIENT,      /* 4xx but 408/409/429: the request's fault,
                                  answered as is, not retried */
    ANTHROPIC_ERR_RATE_LIMIT,  /* 429: retried after retry_after_ms */
    ANTHROPIC_ERR_OVERLOADED,  /* 529 or an overloaded_error: retried */
    ANTHROPIC_ERR_SERVER,      /* 5xx, 408, 409: retried */
};

struct anthropic_err_info {
    enum anthropic_err_class cls;
    int status;                           /* as received */
    char type[ANTHROPIC_ERR_MESSAGE_MAX / 8];   /* error.type, or "" */
    char message[ANTHROPIC_ERR_MESSAGE_MAX];    /* error.message, or a
                                                   snippet of the body */
    long long retry_after_ms;             /* -1 when not given */
};

/* Reads an Anthropic upstream's error answer: status, body[0..len) and
 * the value of its retry-after header (NULL when absent; seconds, as
 * Anthropic sends it). Never fails: an unreadable body still gives a
 * class from the status and a printable snippet as message. */
void anthropic_err_classify(int status, const char *body, size_t len,
                            const char *retry_after,
                            struct anthropic_err_info *info);

/* The OpenAI-door status for a classified Anthropic failure: 4xx kept,
 * 429 kept, overloaded 503, others 502. */
int anthropic_err_openai_status(const struct anthropic_err_info *info);

#endif
