/* oauth_json.h - the strict text reading the oauth_* modules share
 * (oauth_json.c) and the token members table (oauth.c). Internal to
 * those modules: nothing else includes it. */
#ifndef RCC_OAUTH_JSON_H
#define RCC_OAUTH_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "oauth.h"

/* printf into err[errlen] (NULL-safe). */
void oauth_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool oauth_http_ok(long status);
bool oauth_printable(unsigned char c);
bool oauth_all_printable(const char *s);
/* Copies at most max bytes of a server's text into out[outlen] with every
 * byte outside printable ASCII as '?' and "..." when cut. */
void oauth_sanitize(const char *s, size_t max, char *out, size_t outlen);
/* Wipes every string in o, then json_object_put; NULL-safe. */
void oauth_json_wipe_put(json_object *o);
/* Parses text[0..len) as one strict JSON object (what names it in err);
 * the caller frees it with oauth_json_wipe_put. NULL with err. */
json_object *oauth_json_object(const char *text, size_t len,
                               const char *what, char *err, size_t errlen);
/* o's member key, NULL when absent or JSON null. */
json_object *oauth_json_get(json_object *o, const char *key);
/* A string member into a malloc'd *out (NULL when absent or empty); -1
 * with err when it is not a string or holds what its key may not. */
int oauth_json_str(json_object *o, const char *key, char **out, char *err,
                   size_t errlen);
/* A whole non-negative count member (a number, or digits in a string when
 * digits_ok), at most max (clamped when clamp): 1 and *out, 0 absent, -1
 * malformed. */
int oauth_json_count(json_object *o, const char *key, bool digits_ok,
                     long long max, bool clamp, long long *out);
/* Reads the string members of a token text into t (already empty);
 * access_token required. */
int oauth_tokens_members(json_object *root, struct oauth_tokens *t,
                         char *err, size_t errlen);

#endif
