/* oauth_json.c - what the OAuth modules share to read a server's or a
 * file's text: strict JSON objects (json-c objects wiped when put),
 * string and count members checked for what they may hold, printable
 * error text. Internal to the oauth_* modules. */
#include "oauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "jsonscan.h"
#include "oauth_json.h"
#include "privs.h"
#include "util.h"

#define OAUTH_JSON_DEPTH      16       /* token texts are flat objects */
#define OAUTH_HTTP_OK_MIN     200
#define OAUTH_HTTP_OK_MAX     299
#define OAUTH_PRINT_MIN       0x20     /* printable ASCII: ' ' .. '~' */
#define OAUTH_PRINT_MAX       0x7E

void oauth_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void oauth_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool oauth_http_ok(long status)
{
    return status >= OAUTH_HTTP_OK_MIN && status <= OAUTH_HTTP_OK_MAX;
}

bool oauth_printable(unsigned char c)
{
    return c >= OAUTH_PRINT_MIN && c <= OAUTH_PRINT_MAX;
}

bool oauth_all_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if (!oauth_printable((unsigned char)*s))
            return false;
    return true;
}

/* Credentials go into HTTP headers and URLs: printable ASCII without
 * blanks (RFC 6750's b64token is a subset). Other text members (a URL, a
 * scope) may hold blanks but no control byte. */
static const char *const oauth_credential_keys[] = {
    "access_token", "refresh_token", "token_type", "apiKey"
};
static const char *const oauth_text_keys[] = {
    "resource_url", "scope", "baseUrl"
};

static bool oauth_key_in(const char *key, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

static bool oauth_value_ok(const char *key, const char *s)
{
    if (oauth_key_in(key, oauth_credential_keys,
                     sizeof(oauth_credential_keys) /
                     sizeof(*oauth_credential_keys))) {
        for (; *s != '\0'; s++)
            if (!oauth_printable((unsigned char)*s) || *s == ' ')
                return false;
        return true;
    }
    if (oauth_key_in(key, oauth_text_keys,
                     sizeof(oauth_text_keys) / sizeof(*oauth_text_keys)))
        return oauth_all_printable(s);
    return true;      /* checked where it is used, if it is */
}

/* Copies at most max bytes of a server's text into out[outlen] with every
 * byte outside printable ASCII as '?' and "..." when cut, so an answer
 * cannot put control sequences on a terminal or a log line. */
void oauth_sanitize(const char *s, size_t max, char *out,
                    size_t outlen)
{
    size_t n = 0, i;

    if (outlen == 0)
        return;
    for (i = 0; i < max && n + 1 < outlen && s[i] != '\0'; i++)
        out[n++] = oauth_printable((unsigned char)s[i]) ? s[i] : '?';
    out[n] = '\0';
    if (s[i] != '\0' && n + sizeof("...") <= outlen)
        memcpy(out + n, "...", sizeof("..."));
}

/* ---- JSON ---------------------------------------------------------- */

/* Wipes every string in o (recursively: the tree is at most
 * OAUTH_JSON_DEPTH deep), so tokens json-c copied do not linger in freed
 * memory. */
static void oauth_json_wipe(json_object *o)
{
    if (o == NULL)
        return;
    if (json_object_is_type(o, json_type_string)) {
        /* json-c's own copy; writable, it only hands it out as const. */
        explicit_bzero((char *)json_object_get_string(o),
                       (size_t)json_object_get_string_len(o));
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val) {
            (void)key;
            oauth_json_wipe(val);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            oauth_json_wipe(json_object_array_get_idx(o, i));
    }
}

/* oauth_json_wipe, then json_object_put; NULL-safe. */
void oauth_json_wipe_put(json_object *o)
{
    oauth_json_wipe(o);
    json_object_put(o);
}

/* Parses text[0..len) as one JSON object: the strict RFC 8259 grammar
 * first (jsonscan: exact positions for the message), then json-c in
 * strict mode, which must consume it all but whitespace. what names the
 * text in err. The caller frees the object with oauth_json_wipe_put. */
json_object *oauth_json_object(const char *text, size_t len,
                               const char *what, char *err,
                               size_t errlen)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    size_t bad_at = 0, i;
    bool trailing = false;

    if (text == NULL || len == 0) {
        oauth_fail(err, errlen, "%s is empty", what);
        return NULL;
    }
    if (len > OAUTH_FILE_MAX) {
        oauth_fail(err, errlen, "%s is larger than %d bytes", what,
                   OAUTH_FILE_MAX);
        return NULL;
    }
    if (js_validate_at(text, len, OAUTH_JSON_DEPTH, &bad_at, &trailing) < 0) {
        if (trailing)
            oauth_fail(err, errlen, "%s: trailing data after the JSON "
                       "object at byte %zu", what, bad_at);
        else if (bad_at >= len)
            oauth_fail(err, errlen, "%s: JSON ends too early", what);
        else
            oauth_fail(err, errlen, "%s is not valid JSON (byte %zu)", what,
                       bad_at);
        return NULL;
    }
    for (i = 0; i < len && isspace((unsigned char)text[i]); i++)
        ;
    if (text[i] != '{') {
        oauth_fail(err, errlen, "%s is not a JSON object", what);
        return NULL;
    }
    tok = json_tokener_new_ex(OAUTH_JSON_DEPTH);
    if (tok == NULL) {
        oauth_fail(err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        oauth_fail(err, errlen, "%s is not valid JSON: %s", what,
                   json_tokener_error_desc(json_tokener_get_error(tok)));
        goto fail;
    }
    for (i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (!isspace((unsigned char)text[i])) {
            oauth_fail(err, errlen, "%s: trailing data after the JSON "
                       "object at byte %zu", what, i);
            goto fail;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        oauth_fail(err, errlen, "%s is not a JSON object", what);
        goto fail;
    }
    json_tokener_free(tok);
    return root;
fail:
    oauth_json_wipe_put(root);
    json_tokener_free(tok);
    return NULL;
}

/* The member key of o, or NULL when absent or JSON null. */
json_object *oauth_json_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* *out = a malloc'd copy of the string member key (the caller frees it),
 * NULL when it is absent or null. -1 with err when it is another type or
 * holds a NUL. */
int oauth_json_str(json_object *o, const char *key, char **out,
                   char *err, size_t errlen)
{
    json_object *v = oauth_json_get(o, key);
    const char *s;

    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        oauth_fail(err, errlen, "'%s' must be a string", key);
        return -1;
    }
    s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v)) {
        oauth_fail(err, errlen, "'%s' holds a NUL character", key);
        return -1;
    }
    if (!oauth_value_ok(key, s)) {
        /* A CR or LF in a token would end up in a request header. */
        oauth_fail(err, errlen, "'%s' holds a character it may not hold",
                   key);
        return -1;
    }
    *out = strdup(s);
    if (*out == NULL) {
        oauth_fail(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* A non-negative count read from member key: a JSON number (a fraction
 * dropped) or, for seconds, a string of digits some servers send. 1 and
 * *out when present, 0 when absent or null, -1 when it is anything else,
 * negative or beyond max (when clamp is false; else it is cut to max). */
int oauth_json_count(json_object *o, const char *key, bool digits_ok,
                     long long max, bool clamp, long long *out)
{
    json_object *v = oauth_json_get(o, key);
    long long n;

    if (v == NULL)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);

        if (i < 0 || (i > max && !clamp))
            return -1;
        n = i > max ? max : i;
    } else if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);

        /* max + 1.0 rounds to 2^63 for INT64_MAX: below it the cast is
         * defined. */
        if (!isfinite(d) || d < 0 || (d >= (double)max + 1.0 && !clamp))
            return -1;
        n = d >= (double)max + 1.0 ? max : (long long)d;
    } else if (digits_ok && json_object_is_type(v, json_type_string)) {
        if (util_parse_int(json_object_get_string(v), 0, LLONG_MAX, &n) < 0 ||
            (n > max && !clamp))
            return -1;
        if (n > max)
            n = max;
    } else {
        return -1;
    }
    *out = n;
    return 1;
}
