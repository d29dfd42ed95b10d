/* apierror.h - OpenAI-shaped error bodies:
 * {"error":{"message":"...","type":"...","code":"..."}}. Pure. */
#ifndef RCC_APIERROR_H
#define RCC_APIERROR_H

#include <stddef.h>

#define APIERR_BODY_MAX 1024
#define APIERR_CODE_MAX 64         /* bytes of a code a body carries */
/* The status a request is logged and counted with when its client left
 * before the answer (nginx's "client closed request"); never sent. */
#define APIERR_CLIENT_GONE 499

/* An error kept to be answered later: a request's last failed attempt,
 * while it may still be retried. status 0: none kept. */
struct apierr_kept {
    int status;
    char code[APIERR_CODE_MAX + 1];
    char message[APIERR_BODY_MAX];
};

/* The OpenAI error type for an HTTP status. */
const char *apierr_type(int status);
/* Formats the error body into out[cap] (always NUL-terminated, message
 * cut if needed); returns its length. code may be NULL. */
size_t apierr_format(char *out, size_t cap, int status, const char *code,
                     const char *message);
/* JSON-escapes src into out[cap] without quotes; returns the length
 * written (cut at a character boundary when out is short). */
size_t apierr_escape(char *out, size_t cap, const char *src, size_t len);
/* Keeps status, code and message in k (copied, cut to fit). */
void apierr_keep(struct apierr_kept *k, int status, const char *code,
                 const char *message);
/* What a request answers when no target can be called for it any more
 * (every breaker open, or none free): the failure of its last attempt
 * (last) when one failed, since that is the real cause (502, or 504 for
 * a timeout, with the upstream's message) and the breakers it finds open
 * are its consequence; else, when it could not be attempted at all,
 * untried (503 circuit_open, or unavailable). */
const struct apierr_kept *apierr_final(const struct apierr_kept *last,
                                       const struct apierr_kept *untried);
/* The code of an error body made by apierr_format ({"error":{...,
 * "code":"CODE"}}) into out[cap]; 0, or -1 when it has none (out is
 * then ""). Only [A-Za-z0-9_.-] are kept, so it is one log word. */
int apierr_code(const char *body, size_t len, char *out, size_t cap);

/* The message of an OpenAI error body ({"error":{"message":"..."}})
 * unescaped into out[cap] (always NUL-terminated, cut to fit); 0, or -1
 * when it has none (out is then ""). Lets a door of another shape
 * re-dress a worker's error. */
int apierr_message(const char *body, size_t len, char *out, size_t cap);

#endif
