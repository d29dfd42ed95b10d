/* apierror.h - OpenAI-shaped error bodies:
 * {"error":{"message":"...","type":"...","code":"..."}}. Pure. */
#ifndef RCC_APIERROR_H
#define RCC_APIERROR_H

#include <stddef.h>

#define APIERR_BODY_MAX 1024

/* The OpenAI error type for an HTTP status. */
const char *apierr_type(int status);
/* Formats the error body into out[cap] (always NUL-terminated, message
 * cut if needed); returns its length. code may be NULL. */
size_t apierr_format(char *out, size_t cap, int status, const char *code,
                     const char *message);
/* JSON-escapes src into out[cap] without quotes; returns the length
 * written (cut at a character boundary when out is short). */
size_t apierr_escape(char *out, size_t cap, const char *src, size_t len);

#endif
