/* oauth.c - the OAuth pieces without network I/O: PKCE (RFC 7636), the
 * API base rule for resource_url, the token file (strict parse, format,
 * atomic save, load with the identity of the version read), iFlow's
 * settings file, the form bodies and the parsers of the authorization
 * servers' answers. Secrets are wiped when this module frees them, and
 * never written into an error message. */
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
#include "privs.h"
#include "util.h"

#define OAUTH_JSON_DEPTH      16       /* token texts are flat objects */
#define OAUTH_DIR_MODE        0700
#define OAUTH_FILE_MODE       0600
#define OAUTH_TMP_SUFFIX      ".tmp.XXXXXX"
#define OAUTH_SHA256_LEN      32
#define OAUTH_VERIFIER_MIN    43       /* RFC 7636 4.1 */
#define OAUTH_VERIFIER_MAX    128
#define OAUTH_B64_BITS        6        /* bits per base64 character */
#define OAUTH_B64_MASK        0x3F
#define OAUTH_B64_GROUP_IN    3        /* bytes per group of 4 characters */
#define OAUTH_SECONDS_MAX     (10LL * 365 * 24 * 3600)  /* expires_in cap */
#define OAUTH_MS_PER_S        1000LL
#define OAUTH_NS_PER_S        1000000000LL
#define OAUTH_CODE_SHOWN_MAX  64       /* a server's error code in err */
#define OAUTH_DESC_SHOWN_MAX  160      /* its error_description / message */
#define OAUTH_HTTP_OK_MIN     200
#define OAUTH_HTTP_OK_MAX     299
#define OAUTH_HTTP_OK         200
#define OAUTH_HTTP_BAD_REQUEST  400
#define OAUTH_HTTP_UNAUTHORIZED 401
#define OAUTH_BEARER          "Bearer"
#define OAUTH_FORM_PAIRS_MAX  4        /* the longest form built here */
#define OAUTH_PRINT_MIN       0x20     /* printable ASCII: ' ' .. '~' */
#define OAUTH_PRINT_MAX       0x7E
#define OAUTH_FORMAT_FLAGS    (JSON_C_TO_STRING_PRETTY | \
                               JSON_C_TO_STRING_SPACED | \
                               JSON_C_TO_STRING_NOSLASHESCAPE)

static const char oauth_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The string members of a token file and of token answers, by the Qwen
 * and iFlow CLIs' names. */
struct oauth_member {
    const char *key;
    size_t offset;
};

static const struct oauth_member oauth_token_members[] = {
    { "access_token", offsetof(struct oauth_tokens, access_token) },
    { "refresh_token", offsetof(struct oauth_tokens, refresh_token) },
    { "token_type", offsetof(struct oauth_tokens, token_type) },
    { "resource_url", offsetof(struct oauth_tokens, resource_url) },
    { "scope", offsetof(struct oauth_tokens, scope) },
    { "apiKey", offsetof(struct oauth_tokens, api_key) },
};

#define OAUTH_TOKEN_MEMBER_COUNT \
    (sizeof(oauth_token_members) / sizeof(oauth_token_members[0]))

static char **oauth_member_ptr(struct oauth_tokens *t, size_t i)
{
    return (char **)((char *)t + oauth_token_members[i].offset);
}

static char *const *oauth_member_cptr(const struct oauth_tokens *t, size_t i)
{
    return (char *const *)((const char *)t + oauth_token_members[i].offset);
}

static void oauth_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void oauth_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool oauth_http_ok(long status)
{
    return status >= OAUTH_HTTP_OK_MIN && status <= OAUTH_HTTP_OK_MAX;
}

static bool oauth_printable(unsigned char c)
{
    return c >= OAUTH_PRINT_MIN && c <= OAUTH_PRINT_MAX;
}

static bool oauth_all_printable(const char *s)
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
static void oauth_sanitize(const char *s, size_t max, char *out,
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

void oauth_secret_free(char **s)
{
    if (s == NULL || *s == NULL)
        return;
    explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

void oauth_tokens_free(struct oauth_tokens *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++)
        oauth_secret_free(oauth_member_ptr(t, i));
    t->expiry_ms = 0;
}

int oauth_tokens_copy(struct oauth_tokens *dst, const struct oauth_tokens *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++) {
        const char *s = *oauth_member_cptr(src, i);

        if (s == NULL)
            continue;
        *oauth_member_ptr(dst, i) = strdup(s);
        if (*oauth_member_ptr(dst, i) == NULL) {
            oauth_tokens_free(dst);
            return -1;
        }
    }
    dst->expiry_ms = src->expiry_ms;
    return 0;
}

void oauth_device_free(struct oauth_device *d)
{
    if (d == NULL)
        return;
    oauth_secret_free(&d->device_code);
    free(d->user_code);
    free(d->verification_uri);
    free(d->verification_uri_complete);
    memset(d, 0, sizeof(*d));
}

/* ---- PKCE ---------------------------------------------------------- */

size_t oauth_base64url(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    uint32_t v;

    for (; i + OAUTH_B64_GROUP_IN <= n; i += OAUTH_B64_GROUP_IN) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = oauth_b64url_alphabet[v >> (3 * OAUTH_B64_BITS)];
        out[o++] = oauth_b64url_alphabet[v >> (2 * OAUTH_B64_BITS) &
                                         OAUTH_B64_MASK];
        out[o++] = oauth_b64url_alphabet[v >> OAUTH_B64_BITS &
                                         OAUTH_B64_MASK];
        out[o++] = oauth_b64url_alphabet[v & OAUTH_B64_MASK];
    }
    if (n - i > 0) {
        /* One or two bytes left: two or three characters, no padding. */
        v = (uint32_t)in[i] << 16;
        if (n - i == 2)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = oauth_b64url_alphabet[v >> (3 * OAUTH_B64_BITS)];
        out[o++] = oauth_b64url_alphabet[v >> (2 * OAUTH_B64_BITS) &
                                         OAUTH_B64_MASK];
        if (n - i == 2)
            out[o++] = oauth_b64url_alphabet[v >> OAUTH_B64_BITS &
                                             OAUTH_B64_MASK];
    }
    out[o] = '\0';
    return o;
}

int oauth_pkce_verifier(char out[OAUTH_VERIFIER_LEN + 1])
{
    uint8_t raw[OAUTH_VERIFIER_BYTES];

    if (util_random_bytes(raw, sizeof(raw)) < 0) {
        out[0] = '\0';
        return -1;
    }
    oauth_base64url(raw, sizeof(raw), out);
    explicit_bzero(raw, sizeof(raw));
    return 0;
}

/* RFC 7636 4.1: 43 to 128 characters of ALPHA / DIGIT / "-._~". */
static bool oauth_verifier_valid(const char *v)
{
    size_t n = 0;

    for (; v[n] != '\0'; n++) {
        unsigned char c = (unsigned char)v[n];

        if (n >= OAUTH_VERIFIER_MAX)
            return false;
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != '~')
            return false;
    }
    return n >= OAUTH_VERIFIER_MIN;
}

int oauth_pkce_challenge(const char *verifier,
                         char out[OAUTH_CHALLENGE_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    out[0] = '\0';
    if (verifier == NULL || !oauth_verifier_valid(verifier))
        return -1;
    if (EVP_Digest(verifier, strlen(verifier), digest, &dlen, EVP_sha256(),
                   NULL) != 1 || dlen != OAUTH_SHA256_LEN)
        return -1;
    oauth_base64url(digest, dlen, out);
    return 0;
}

/* ---- resource_url -------------------------------------------------- */

/* A loopback host, with or without a port: "localhost", "[::1]" or
 * "127." followed by digits and dots. Where a plain http:// API base may
 * point (the tokens never cross a network in clear). */
static bool oauth_loopback_host(const char *host, size_t len)
{
    const char *colon;
    size_t n;

    if (len >= 5 && memcmp(host, "[::1]", 5) == 0)
        return len == 5 || host[5] == ':';
    colon = memchr(host, ':', len);
    n = colon != NULL ? (size_t)(colon - host) : len;
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    if (n < 5 || memcmp(host, "127.", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++)
        if (!isdigit((unsigned char)host[i]) && host[i] != '.')
            return false;
    return true;
}

int oauth_api_base(const char *resource_url, char *out, size_t outlen)
{
    const char *s, *end, *p, *rest, *path;
    bool has_scheme, has_v1;
    int n;

    if (out == NULL || outlen == 0)
        return -1;
    out[0] = '\0';
    if (resource_url == NULL)
        return -1;
    s = resource_url;
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    for (p = s; p < end; p++)
        if (!oauth_printable((unsigned char)*p) || *p == ' ')
            return -1;              /* no blanks or controls inside a URL */
    for (p = s; p < end && isalpha((unsigned char)*p); p++)
        ;
    has_scheme = p > s && end - p >= 3 && memcmp(p, "://", 3) == 0;
    rest = has_scheme ? p + 3 : s;
    while (end > rest && end[-1] == '/')
        end--;
    if (end == rest)
        return -1;                  /* no host */
    path = memchr(rest, '/', (size_t)(end - rest));
    /* Our bearer token goes there: https, or http to this machine only. */
    if (has_scheme && !(p - s == 5 && strncasecmp(s, "https", 5) == 0) &&
        !(p - s == 4 && strncasecmp(s, "http", 4) == 0 &&
          oauth_loopback_host(rest, (size_t)((path ? path : end) - rest))))
        return -1;
    has_v1 = path != NULL && end - path >= 3 && memcmp(end - 3, "/v1", 3) == 0;
    n = snprintf(out, outlen, "%s%.*s%s", has_scheme ? "" : "https://",
                 (int)(end - s), s, has_v1 ? "" : "/v1");
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return 0;
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
static void oauth_json_wipe_put(json_object *o)
{
    oauth_json_wipe(o);
    json_object_put(o);
}

/* Parses text[0..len) as one JSON object: the strict RFC 8259 grammar
 * first (jsonscan: exact positions for the message), then json-c in
 * strict mode, which must consume it all but whitespace. what names the
 * text in err. The caller frees the object with oauth_json_wipe_put. */
static json_object *oauth_json_object(const char *text, size_t len,
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
static json_object *oauth_json_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* *out = a malloc'd copy of the string member key (the caller frees it),
 * NULL when it is absent or null. -1 with err when it is another type or
 * holds a NUL. */
static int oauth_json_str(json_object *o, const char *key, char **out,
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
static int oauth_json_count(json_object *o, const char *key, bool digits_ok,
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

/* Reads the string members of a token text into t (already empty). */
static int oauth_tokens_members(json_object *root, struct oauth_tokens *t,
                                char *err, size_t errlen)
{
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++)
        if (oauth_json_str(root, oauth_token_members[i].key,
                           oauth_member_ptr(t, i), err, errlen) < 0)
            return -1;
    if (t->access_token == NULL) {
        oauth_fail(err, errlen, "no access_token");
        return -1;
    }
    if (t->access_token[0] == '\0') {
        oauth_fail(err, errlen, "'access_token' is empty");
        return -1;
    }
    return 0;
}

int oauth_tokens_parse(const char *text, size_t len, struct oauth_tokens *t,
                       char *err, size_t errlen)
{
    json_object *root;
    long long ms = 0;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    root = oauth_json_object(text, len, "token file", err, errlen);
    if (root == NULL)
        return -1;
    if (oauth_tokens_members(root, t, err, errlen) < 0)
        goto out;
    if (oauth_json_count(root, "expiry_date", false, INT64_MAX, false,
                         &ms) < 0) {
        oauth_fail(err, errlen, "'expiry_date' must be a number of "
                   "milliseconds since the epoch, not negative");
        goto out;
    }
    t->expiry_ms = ms;
    rc = 0;
out:
    if (rc < 0)
        oauth_tokens_free(t);
    oauth_json_wipe_put(root);
    return rc;
}

/* Adds member key = s to o unless s is NULL; -1 on ENOMEM. */
static int oauth_json_add_str(json_object *o, const char *key, const char *s)
{
    json_object *v;

    if (s == NULL)
        return 0;
    v = json_object_new_string(s);
    if (v == NULL)
        return -1;
    if (json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

char *oauth_tokens_format(const struct oauth_tokens *t)
{
    json_object *root = json_object_new_object();
    const char *json;
    char *text = NULL;
    size_t len;

    if (root == NULL)
        return NULL;
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++)
        if (oauth_json_add_str(root, oauth_token_members[i].key,
                               *oauth_member_cptr(t, i)) < 0)
            goto out;
    if (t->expiry_ms != 0) {
        json_object *v = json_object_new_int64(t->expiry_ms);

        if (v == NULL || json_object_object_add(root, "expiry_date", v) < 0) {
            json_object_put(v);
            goto out;
        }
    }
    json = json_object_to_json_string_ext(root, OAUTH_FORMAT_FLAGS);
    if (json == NULL)
        goto out;
    len = strlen(json);
    text = malloc(len + 2);
    if (text != NULL) {
        memcpy(text, json, len);
        text[len] = '\n';
        text[len + 1] = '\0';
    }
    /* json-c's serialization buffer belongs to root: wipe it too. */
    explicit_bzero((char *)json, len);
out:
    oauth_json_wipe_put(root);
    return text;
}

/* ---- files --------------------------------------------------------- */

static void oauth_file_id_from(const struct stat *st, struct oauth_file_id *id)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * OAUTH_NS_PER_S +
                   st->st_mtim.tv_nsec;
    id->size = (int64_t)st->st_size;
}

int oauth_file_stat(const char *path, struct oauth_file_id *id)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -1;
    oauth_file_id_from(&st, id);
    return 0;
}

bool oauth_file_same(const struct oauth_file_id *a,
                     const struct oauth_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino &&
           a->mtime_ns == b->mtime_ns && a->size == b->size;
}

/* Reads the regular file at path, at most OAUTH_FILE_MAX bytes, into a
 * malloc'd NUL-terminated buffer (*len bytes) that the caller frees with
 * oauth_secret_free; *id (when not NULL) is the version read. NULL with
 * "PATH: reason" in err. */
static char *oauth_read_file(const char *path, size_t *len,
                             struct oauth_file_id *id, char *err,
                             size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd;

    /* O_NONBLOCK: a FIFO put there must not stop the event loop. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        oauth_fail(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size > OAUTH_FILE_MAX) {
        oauth_fail(err, errlen, "%s: larger than %d bytes", path,
                   OAUTH_FILE_MAX);
        goto fail;
    }
    /* One byte more than allowed, to see a file that grew since fstat. */
    buf = malloc(OAUTH_FILE_MAX + 2);
    if (buf == NULL) {
        oauth_fail(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, OAUTH_FILE_MAX + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > OAUTH_FILE_MAX) {
            oauth_fail(err, errlen, "%s: larger than %d bytes", path,
                       OAUTH_FILE_MAX);
            goto fail;
        }
    }
    buf[n] = '\0';
    close(fd);
    if (id != NULL)
        oauth_file_id_from(&st, id);
    *len = n;
    return buf;
fail:
    if (buf != NULL) {
        explicit_bzero(buf, n);
        free(buf);
    }
    close(fd);
    return NULL;
}

int oauth_tokens_load(const char *path, struct oauth_tokens *t,
                      struct oauth_file_id *id, char *err, size_t errlen)
{
    char reason[OAUTH_ERR_MAX];
    char *text;
    size_t len = 0;
    int rc;

    memset(t, 0, sizeof(*t));
    text = oauth_read_file(path, &len, id, err, errlen);
    if (text == NULL)
        return -1;
    rc = oauth_tokens_parse(text, len, t, reason, sizeof(reason));
    if (rc < 0)
        oauth_fail(err, errlen, "%s: %s", path, reason);
    explicit_bzero(text, len);
    free(text);
    return rc;
}

/* The directory part of path (malloc'd, the caller frees): "." for a bare
 * name, "/" for a file in the root. NULL on ENOMEM. */
static char *oauth_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Creates dir and every missing parent, each with mode 0700 (the
 * directories we make for a token file are nobody else's business). An
 * existing component is left as it is. */
static int oauth_mkdirs(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    char *copy;

    if (stat(dir, &st) == 0)
        return 0;                   /* not a directory: the open fails */
    copy = strdup(dir);
    if (copy == NULL) {
        oauth_fail(err, errlen, "out of memory");
        return -1;
    }
    for (char *p = copy + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(copy, OAUTH_DIR_MODE) < 0 && errno != EEXIST) {
            oauth_fail(err, errlen, "cannot create directory %s: %s", copy,
                       strerror(errno));
            free(copy);
            return -1;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    free(copy);
    return 0;
}

/* Writes all of buf[0..len) to fd; 0 or -1 (errno set). */
static int oauth_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The save itself, with the identity this process has: the checks of
 * oauth_tokens_save are done. follow: a symlink at path is written
 * through (resolved here); without it path is the file to replace, and
 * a link found there now is replaced, not followed (root's own path,
 * resolved by the caller: a link planted since in a sticky directory
 * cannot lead the rename elsewhere). */
static int oauth_save_file(const char *path, bool follow,
                           const struct oauth_tokens *t, char *err,
                           size_t errlen)
{
    char *text = NULL, *tmp = NULL, *dir = NULL, *real = NULL;
    int fd = -1, dir_fd = -1, rc = -1;
    bool tmp_exists = false, had_owner = false;
    size_t path_len;
    struct stat st;

    /* A token file that is a symlink (into a shared or synced place)
     * stays one: the file it points to is replaced. A dangling link is
     * replaced itself. */
    if (follow && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        real = realpath(path, NULL);
        if (real != NULL)
            path = real;
    }
    /* The owner of the file replaced keeps it (a daemon run as root must
     * not leave the user's own token file root's). */
    had_owner = (follow ? stat(path, &st) : lstat(path, &st)) == 0 &&
                S_ISREG(st.st_mode);
    path_len = strlen(path);
    text = oauth_tokens_format(t);
    dir = oauth_dirname(path);
    tmp = malloc(path_len + sizeof(OAUTH_TMP_SUFFIX));
    if (text == NULL || dir == NULL || tmp == NULL) {
        oauth_fail(err, errlen, "%s: out of memory", path);
        goto out;
    }
    memcpy(tmp, path, path_len);
    memcpy(tmp + path_len, OAUTH_TMP_SUFFIX, sizeof(OAUTH_TMP_SUFFIX));
    if (oauth_mkdirs(dir, err, errlen) < 0)
        goto out;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        oauth_fail(err, errlen, "cannot create a temporary file in %s: %s",
                   dir, strerror(errno));
        goto out;
    }
    tmp_exists = true;
    /* Only root can give a file away; for anyone else the file is theirs
     * already or cannot be. */
    if (had_owner && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0) &&
        fchown(fd, st.st_uid, st.st_gid) < 0)
        errno = 0;      /* it stays root's: better than losing the tokens */
    if (fchmod(fd, OAUTH_FILE_MODE) < 0 ||
        oauth_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        oauth_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        oauth_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        oauth_fail(err, errlen, "cannot rename %s to %s: %s", tmp, path,
                   strerror(errno));
        goto out;
    }
    tmp_exists = false;
    /* The rename lasts only once the directory entry is on disk. */
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) < 0) {
        oauth_fail(err, errlen, "cannot sync directory %s: %s", dir,
                   strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp);
    if (dir_fd >= 0)
        close(dir_fd);
    oauth_secret_free(&text);
    free(tmp);
    free(dir);
    free(real);
    return rc;
}

/* Walks the directories of path from the top (each one lstat'd, so a
 * link on the way counts as its owner's) and gives the owner of the last
 * one not root's, with its group: whoever owns a directory can replace
 * anything below it, so that user decides where path leads. 0 (root)
 * when every one is root's. Stops at the first that does not exist;
 * *open_gap tells whether that one would be made in a world-writable
 * directory. */
static void oauth_path_owner(const char *path, uid_t *uid, gid_t *gid,
                             bool *open_gap)
{
    char *dir = oauth_dirname(path);
    bool open = false;
    struct stat st;

    *uid = 0;
    *gid = 0;
    *open_gap = false;
    if (dir == NULL)
        return;
    if (dir[0] != '/' && lstat(".", &st) == 0 && st.st_uid != 0) {
        *uid = st.st_uid;
        *gid = st.st_gid;
    }
    for (char *p = dir + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (lstat(dir, &st) < 0) {
            /* To be made below a directory anyone may add to: anyone
             * can make it first, a link to anywhere. */
            *open_gap = open;
            *p = c;
            break;
        }
        if (st.st_uid != 0) {
            *uid = st.st_uid;
            *gid = st.st_gid;
        }
        open = S_ISDIR(st.st_mode) && (st.st_mode & S_IWOTH);
        *p = c;
        if (c == '\0')
            break;
    }
    free(dir);
}

int oauth_save_check(const struct oauth_save_facts *f, const char *path,
                     char *err, size_t errlen)
{
    if (f->dir_open_gap && f->dir_owner == 0) {
        oauth_fail(err, errlen, "refusing to create the directories of %s "
                   "as root inside a world-writable directory: anyone "
                   "could make them first, as links", path);
        return -1;
    }
    if (!f->link)
        return 0;
    if (f->link_owner != f->dir_owner) {
        oauth_fail(err, errlen, "refusing to write through the symlink %s "
                   "as root: the link belongs to uid %ld, its directory to "
                   "uid %ld, so it may point anywhere", path,
                   (long)f->link_owner, (long)f->dir_owner);
        return -1;
    }
    if (!f->target_exists)
        return 0;                   /* dangling: the link is replaced */
    if (f->target_link) {
        oauth_fail(err, errlen, "refusing to write through the symlink %s "
                   "as root: it points to another symlink", path);
        return -1;
    }
    if (f->target_owner != f->dir_owner ||
        f->target_dir_owner != f->dir_owner) {
        oauth_fail(err, errlen, "refusing to write through the symlink %s "
                   "as root: it points to a file of uid %ld in a directory "
                   "of uid %ld, not to one of uid %ld, who owns the link's "
                   "directory", path, (long)f->target_owner,
                   (long)f->target_dir_owner, (long)f->dir_owner);
        return -1;
    }
    return 0;
}

/* What oauth_save_check needs to know about path, for a save as root. */
static int oauth_save_facts(const char *path, struct oauth_save_facts *f,
                            gid_t *dir_group, char *err, size_t errlen)
{
    char target[PATH_MAX], *full = NULL, *dir = NULL;
    struct stat st;
    gid_t unused;
    bool unused_gap;
    ssize_t n;

    memset(f, 0, sizeof(*f));
    oauth_path_owner(path, &f->dir_owner, dir_group, &f->dir_open_gap);
    if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
        return 0;
    f->link = true;
    f->link_owner = st.st_uid;
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    target[n] = '\0';
    /* The link's text as it is, relative to the link's directory: the
     * directories it names are judged by their owners, before any link
     * of theirs is followed. */
    if (target[0] != '/') {
        dir = oauth_dirname(path);
        if (dir == NULL || asprintf(&full, "%s/%s", dir, target) < 0) {
            full = NULL;
            free(dir);
            oauth_fail(err, errlen, "%s: out of memory", path);
            return -1;
        }
        free(dir);
    }
    if (lstat(full ? full : target, &st) == 0) {
        f->target_exists = true;
        f->target_link = S_ISLNK(st.st_mode);
        f->target_owner = st.st_uid;
        oauth_path_owner(full ? full : target, &f->target_dir_owner,
                         &unused, &unused_gap);
    }
    free(full);
    return 0;
}

/* Saves path in a child process that has become uid (the owner of its
 * directory) for good: whatever that user pointed the path at, the write
 * can do no more than the user could. The child's error comes back
 * through a pipe into err. */
static int oauth_save_as(uid_t uid, gid_t gid, const char *path,
                         const struct oauth_tokens *t, char *err,
                         size_t errlen)
{
    char child_err[OAUTH_ERR_MAX] = "";
    struct privs_id id;
    size_t got = 0;
    int pipefd[2], status = 0;
    pid_t pid;

    if (privs_resolve_uid(uid, gid, &id, err, errlen) < 0)
        return -1;
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        oauth_fail(err, errlen, "%s: pipe: %s", path, strerror(errno));
        privs_id_free(&id);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        int rc;

        close(pipefd[0]);
        rc = privs_become(&id, child_err, sizeof(child_err));
        if (rc == 0)
            rc = oauth_save_file(path, true, t, child_err,
                                 sizeof(child_err));
        /* A reason lost on the way: the parent says "the writer
         * failed" instead. */
        if (rc < 0 && oauth_write_all(pipefd[1], child_err,
                                      strlen(child_err)) < 0)
            _exit(1);
        _exit(rc < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    privs_id_free(&id);
    if (pid < 0) {
        close(pipefd[0]);
        oauth_fail(err, errlen, "%s: fork: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        ssize_t r = read(pipefd[0], child_err + got,
                         sizeof(child_err) - 1 - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(child_err) - 1)
            break;
    }
    child_err[got] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    oauth_fail(err, errlen, "%s (written as uid %ld, the owner of its "
               "directory)", child_err[0] ? child_err : "the writer failed",
               (long)uid);
    return -1;
}

int oauth_tokens_save(const char *path, const struct oauth_tokens *t,
                      char *err, size_t errlen)
{
    struct oauth_save_facts f;
    gid_t dir_group = 0;

    if (path == NULL || path[0] == '\0' ||
        path[strlen(path) - 1] == '/') {
        oauth_fail(err, errlen, "'%s' is not a file path", path ? path : "");
        return -1;
    }
    if (t == NULL || t->access_token == NULL) {
        oauth_fail(err, errlen, "%s: no access_token to save", path);
        return -1;
    }
    /* Not root: the kernel stops us where the user would be stopped. */
    if (geteuid() != 0)
        return oauth_save_file(path, true, t, err, errlen);
    if (oauth_save_facts(path, &f, &dir_group, err, errlen) < 0 ||
        oauth_save_check(&f, path, err, errlen) < 0)
        return -1;
    if (f.dir_owner != 0)
        return oauth_save_as(f.dir_owner, dir_group, path, t, err, errlen);
    /* Root's own path: resolved now, once, by the rule just checked. */
    if (f.link && f.target_exists) {
        char *real = realpath(path, NULL);
        int rc;

        if (real == NULL) {
            oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        rc = oauth_save_file(real, false, t, err, errlen);
        free(real);
        return rc;
    }
    return oauth_save_file(path, false, t, err, errlen);
}

int oauth_iflow_settings_load(const char *path, char **api_key,
                              char **base_url, char *err, size_t errlen)
{
    char reason[OAUTH_ERR_MAX];
    json_object *root = NULL;
    char *text;
    size_t len = 0;
    int rc = -1;

    *api_key = NULL;
    *base_url = NULL;
    text = oauth_read_file(path, &len, NULL, err, errlen);
    if (text == NULL)
        return -1;
    root = oauth_json_object(text, len, "settings file", reason,
                             sizeof(reason));
    if (root == NULL ||
        oauth_json_str(root, "apiKey", api_key, reason, sizeof(reason)) < 0 ||
        oauth_json_str(root, "baseUrl", base_url, reason,
                       sizeof(reason)) < 0) {
        oauth_fail(err, errlen, "%s: %s", path, reason);
        oauth_secret_free(api_key);
        free(*base_url);
        *base_url = NULL;
        goto out;
    }
    if (*api_key != NULL && (*api_key)[0] == '\0')
        oauth_secret_free(api_key);
    if (*base_url != NULL && (*base_url)[0] == '\0') {
        free(*base_url);
        *base_url = NULL;
    }
    rc = 0;
out:
    oauth_json_wipe_put(root);
    explicit_bzero(text, len);
    free(text);
    return rc;
}

/* ---- forms --------------------------------------------------------- */

static bool oauth_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *oauth_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    char *out, *o;

    for (const char *p = s; *p != '\0'; p++)
        n += oauth_unreserved((unsigned char)*p) ? 1 : 3;
    out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (oauth_unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0x0F];
        }
    }
    *o = '\0';
    return out;
}

/* "k1=v1&k2=v2..." from count key/value pairs (keys are plain names;
 * values are encoded; a NULL value leaves its pair out). */
static char *oauth_form(const char *const pairs[][2], size_t count)
{
    char *enc[OAUTH_FORM_PAIRS_MAX] = { NULL }, *out = NULL, *o;
    size_t len = 0;

    if (count > OAUTH_FORM_PAIRS_MAX)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        if (pairs[i][1] == NULL)
            continue;
        enc[i] = oauth_urlencode(pairs[i][1]);
        if (enc[i] == NULL)
            goto out;
        len += strlen(pairs[i][0]) + strlen(enc[i]) + 2;   /* '=' and '&' */
    }
    out = malloc(len + 1);
    if (out == NULL)
        goto out;
    o = out;
    for (size_t i = 0; i < count; i++) {
        if (enc[i] == NULL)
            continue;
        o += sprintf(o, "%s%s=%s", o == out ? "" : "&", pairs[i][0], enc[i]);
    }
    *o = '\0';
out:
    for (size_t i = 0; i < count; i++)
        oauth_secret_free(&enc[i]);
    return out;
}

#define OAUTH_PAIRS(p) (p), (sizeof(p) / sizeof((p)[0]))

char *oauth_form_device_code(const char *client_id, const char *scope,
                             const char *challenge)
{
    const char *const pairs[][2] = {
        { "client_id", client_id },
        { "scope", scope },
        { "code_challenge", challenge },
        { "code_challenge_method", "S256" },
    };

    return oauth_form(OAUTH_PAIRS(pairs));
}

char *oauth_form_device_poll(const char *client_id, const char *device_code,
                             const char *verifier)
{
    const char *const pairs[][2] = {
        { "grant_type", OAUTH_GRANT_DEVICE },
        { "client_id", client_id },
        { "device_code", device_code },
        { "code_verifier", verifier },
    };

    return oauth_form(OAUTH_PAIRS(pairs));
}

char *oauth_form_refresh(const char *client_id, const char *client_secret,
                         const char *refresh_token)
{
    const char *const pairs[][2] = {
        { "grant_type", "refresh_token" },
        { "refresh_token", refresh_token },
        { "client_id", client_id },
        { "client_secret", client_secret },
    };

    return oauth_form(OAUTH_PAIRS(pairs));
}

/* ---- answers ------------------------------------------------------- */

/* "HTTP <status>: <error>[: <error_description>]" from an error answer,
 * cut and made printable. */
static void oauth_error_text(long status, json_object *root, char *err,
                             size_t errlen)
{
    json_object *code = oauth_json_get(root, "error");
    json_object *desc = oauth_json_get(root, "error_description");
    char code_s[OAUTH_CODE_SHOWN_MAX + sizeof("...")];

    if (code == NULL || !json_object_is_type(code, json_type_string)) {
        oauth_fail(err, errlen, "HTTP %ld: no error code in the answer",
                   status);
        return;
    }
    oauth_sanitize(json_object_get_string(code), OAUTH_CODE_SHOWN_MAX,
                   code_s, sizeof(code_s));
    if (desc != NULL && json_object_is_type(desc, json_type_string) &&
        json_object_get_string_len(desc) > 0) {
        char desc_s[OAUTH_DESC_SHOWN_MAX + sizeof("...")];

        oauth_sanitize(json_object_get_string(desc), OAUTH_DESC_SHOWN_MAX,
                       desc_s, sizeof(desc_s));
        oauth_fail(err, errlen, "HTTP %ld: %s: %s", status, code_s, desc_s);
    } else {
        oauth_fail(err, errlen, "HTTP %ld: %s", status, code_s);
    }
}

/* A device-flow error answer, classified by its "error" member. */
static enum oauth_result oauth_classify(long status, json_object *root,
                                        char *err, size_t errlen)
{
    static const struct {
        const char *code;
        enum oauth_result result;
    } codes[] = {
        { "authorization_pending", OAUTH_PENDING },
        { "slow_down", OAUTH_SLOW_DOWN },
        { "expired_token", OAUTH_EXPIRED },
        { "access_denied", OAUTH_DENIED },
    };
    json_object *code = oauth_json_get(root, "error");

    oauth_error_text(status, root, err, errlen);
    if (code == NULL || !json_object_is_type(code, json_type_string))
        return OAUTH_FAILED;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(json_object_get_string(code), codes[i].code) == 0)
            return codes[i].result;
    return OAUTH_FAILED;
}

/* The tokens of a 2xx token answer into t (empty before): access_token
 * required, token_type "Bearer" when absent, expires_in (seconds) turned
 * into expiry_ms from now_ms. */
static int oauth_tokens_answer(long status, json_object *root, int64_t now_ms,
                               struct oauth_tokens *t, char *err,
                               size_t errlen)
{
    char reason[OAUTH_ERR_MAX];
    long long expires_in = 0;
    int has_expiry;

    if (oauth_tokens_members(root, t, reason, sizeof(reason)) < 0) {
        oauth_fail(err, errlen, "HTTP %ld: %s in the answer", status, reason);
        goto fail;
    }
    has_expiry = oauth_json_count(root, "expires_in", true, OAUTH_SECONDS_MAX,
                                  true, &expires_in);
    if (has_expiry < 0) {
        oauth_fail(err, errlen, "HTTP %ld: 'expires_in' is not a number of "
                   "seconds", status);
        goto fail;
    }
    if (has_expiry > 0)
        t->expiry_ms = now_ms + expires_in * OAUTH_MS_PER_S;
    if (t->token_type == NULL) {
        t->token_type = strdup(OAUTH_BEARER);
        if (t->token_type == NULL) {
            oauth_fail(err, errlen, "out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    oauth_tokens_free(t);
    return -1;
}

enum oauth_result oauth_parse_poll(long status, const char *body, size_t len,
                                   int64_t now_ms, struct oauth_tokens *t,
                                   char *err, size_t errlen)
{
    enum oauth_result result = OAUTH_FAILED;
    json_object *root;

    memset(t, 0, sizeof(*t));
    root = oauth_json_object(body, len, "answer", NULL, 0);
    if (root == NULL) {
        oauth_fail(err, errlen, "HTTP %ld: not JSON", status);
        return OAUTH_FAILED;
    }
    /* Some servers say "pending" with a 200: the error member decides
     * whenever there is no token. */
    if (!oauth_http_ok(status) || oauth_json_get(root, "access_token") == NULL) {
        if (oauth_http_ok(status) && oauth_json_get(root, "error") == NULL)
            oauth_fail(err, errlen, "HTTP %ld: no access_token in the "
                       "answer", status);
        else
            result = oauth_classify(status, root, err, errlen);
        goto out;
    }
    if (oauth_tokens_answer(status, root, now_ms, t, err, errlen) == 0)
        result = OAUTH_OK;
out:
    oauth_json_wipe_put(root);
    return result;
}

/* Fills the members of t the answer left out from old. */
static int oauth_keep_old(struct oauth_tokens *t, const struct oauth_tokens *old)
{
    char **keep[] = { &t->refresh_token, &t->resource_url, &t->scope,
                      &t->api_key };
    const char *from[] = { old->refresh_token, old->resource_url, old->scope,
                           old->api_key };

    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        if (*keep[i] != NULL || from[i] == NULL)
            continue;
        *keep[i] = strdup(from[i]);
        if (*keep[i] == NULL)
            return -1;
    }
    return 0;
}

enum oauth_result oauth_parse_refresh(long status, const char *body,
                                      size_t len, int64_t now_ms,
                                      const struct oauth_tokens *old,
                                      struct oauth_tokens *t,
                                      char *err, size_t errlen)
{
    enum oauth_result result = OAUTH_FAILED;
    json_object *root;

    memset(t, 0, sizeof(*t));
    root = oauth_json_object(body, len, "answer", NULL, 0);
    if (root == NULL) {
        /* Not the authorization server's own answer (a proxy's error
         * page, say): nothing says the credentials are dead. */
        oauth_fail(err, errlen, "HTTP %ld: not JSON", status);
        return result;
    }
    if (status == OAUTH_HTTP_BAD_REQUEST || status == OAUTH_HTTP_UNAUTHORIZED)
        result = OAUTH_REVOKED;
    if (!oauth_http_ok(status)) {
        oauth_error_text(status, root, err, errlen);
        goto out;
    }
    if (oauth_json_get(root, "access_token") == NULL) {
        if (oauth_json_get(root, "error") != NULL)
            oauth_error_text(status, root, err, errlen);
        else
            oauth_fail(err, errlen, "HTTP %ld: no access_token in the "
                       "answer", status);
        goto out;
    }
    if (oauth_tokens_answer(status, root, now_ms, t, err, errlen) < 0)
        goto out;
    if (old != NULL && oauth_keep_old(t, old) < 0) {
        oauth_fail(err, errlen, "out of memory");
        oauth_tokens_free(t);
        goto out;
    }
    result = OAUTH_OK;
out:
    oauth_json_wipe_put(root);
    return result;
}

/* A string member shown to the user: present, non-empty, printable. */
static int oauth_shown_str(json_object *root, const char *key, bool required,
                           char **out, char *err, size_t errlen)
{
    if (oauth_json_str(root, key, out, err, errlen) < 0)
        return -1;
    if (*out != NULL && (*out)[0] == '\0') {
        free(*out);
        *out = NULL;
    }
    if (*out == NULL && required) {
        oauth_fail(err, errlen, "no %s in the answer", key);
        return -1;
    }
    if (*out != NULL && !oauth_all_printable(*out)) {
        oauth_fail(err, errlen, "'%s' holds characters that are not "
                   "printable ASCII", key);
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int oauth_parse_device(long status, const char *body, size_t len,
                       struct oauth_device *d, char *err, size_t errlen)
{
    char reason[OAUTH_ERR_MAX];
    json_object *root;
    long long n = 0;
    int got, rc = -1;

    memset(d, 0, sizeof(*d));
    root = oauth_json_object(body, len, "answer", NULL, 0);
    if (root == NULL) {
        oauth_fail(err, errlen, "HTTP %ld: not JSON", status);
        return -1;
    }
    if (status != OAUTH_HTTP_OK) {
        oauth_error_text(status, root, err, errlen);
        goto out;
    }
    if (oauth_json_str(root, "device_code", &d->device_code, reason,
                       sizeof(reason)) < 0 ||
        oauth_shown_str(root, "user_code", true, &d->user_code, reason,
                        sizeof(reason)) < 0 ||
        oauth_shown_str(root, "verification_uri", true,
                        &d->verification_uri, reason, sizeof(reason)) < 0 ||
        oauth_shown_str(root, "verification_uri_complete", false,
                        &d->verification_uri_complete, reason,
                        sizeof(reason)) < 0) {
        oauth_fail(err, errlen, "HTTP %ld: %s", status, reason);
        goto out;
    }
    if (d->device_code == NULL || d->device_code[0] == '\0') {
        oauth_fail(err, errlen, "HTTP %ld: no device_code in the answer",
                   status);
        goto out;
    }
    d->expires_in_s = OAUTH_DEFAULT_EXPIRES_S;
    got = oauth_json_count(root, "expires_in", true, OAUTH_SECONDS_MAX, true,
                           &n);
    if (got < 0) {
        oauth_fail(err, errlen, "HTTP %ld: 'expires_in' is not a number of "
                   "seconds", status);
        goto out;
    }
    if (got > 0)
        d->expires_in_s = (int)n;
    d->interval_s = OAUTH_DEFAULT_INTERVAL_S;
    got = oauth_json_count(root, "interval", true, OAUTH_SECONDS_MAX, true,
                           &n);
    if (got < 0) {
        oauth_fail(err, errlen, "HTTP %ld: 'interval' is not a number of "
                   "seconds", status);
        goto out;
    }
    if (got > 0)
        d->interval_s = (int)n;
    rc = 0;
out:
    if (rc < 0)
        oauth_device_free(d);
    oauth_json_wipe_put(root);
    return rc;
}

int oauth_parse_iflow_userinfo(long status, const char *body, size_t len,
                               char **api_key, char *err, size_t errlen)
{
    char msg_s[OAUTH_DESC_SHOWN_MAX + sizeof("...")] = "";
    char reason[OAUTH_ERR_MAX];
    json_object *root, *success, *data, *msg;
    int rc = -1;

    *api_key = NULL;
    root = oauth_json_object(body, len, "answer", NULL, 0);
    if (root == NULL) {
        oauth_fail(err, errlen, "HTTP %ld: not JSON", status);
        return -1;
    }
    msg = oauth_json_get(root, "message");
    if (msg != NULL && json_object_is_type(msg, json_type_string) &&
        oauth_all_printable(json_object_get_string(msg)))
        oauth_sanitize(json_object_get_string(msg), OAUTH_DESC_SHOWN_MAX,
                       msg_s, sizeof(msg_s));
    success = oauth_json_get(root, "success");
    if (!oauth_http_ok(status) || success == NULL ||
        !json_object_is_type(success, json_type_boolean) ||
        !json_object_get_boolean(success)) {
        oauth_fail(err, errlen, "HTTP %ld: user info refused%s%s", status,
                   msg_s[0] != '\0' ? ": " : "", msg_s);
        goto out;
    }
    data = oauth_json_get(root, "data");
    if (data == NULL || !json_object_is_type(data, json_type_object)) {
        oauth_fail(err, errlen, "HTTP %ld: no data object in the user info",
                   status);
        goto out;
    }
    if (oauth_json_str(data, "apiKey", api_key, reason, sizeof(reason)) < 0) {
        oauth_fail(err, errlen, "HTTP %ld: %s", status, reason);
        goto out;
    }
    if (*api_key == NULL || (*api_key)[0] == '\0') {
        oauth_secret_free(api_key);
        oauth_fail(err, errlen, "HTTP %ld: no apiKey in the user info",
                   status);
        goto out;
    }
    rc = 0;
out:
    oauth_json_wipe_put(root);
    return rc;
}

/* ---- the refresh lock ---------------------------------------------- */

int oauth_lock_open(const char *token_file, char *err, size_t errlen)
{
    char path[OAUTH_PATH_MAX];
    struct stat st;
    int fd;

    if (snprintf(path, sizeof(path), "%s%s", token_file, OAUTH_LOCK_SUFFIX)
        >= (int)sizeof(path)) {
        oauth_fail(err, errlen, "%s: path too long", token_file);
        return -1;
    }
    /* Never through a symlink, and only a plain file of our own: anyone
     * who can write the directory must not make us truncate another. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
                    O_NONBLOCK, OAUTH_FILE_MODE);
    if (fd < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid() || st.st_nlink != 1) {
        oauth_fail(err, errlen, "%s: not a regular file of ours with one "
                   "link; refusing to use it", path);
        close(fd);
        return -1;
    }
    return fd;
}

int oauth_lock_wait(int fd, int timeout_ms)
{
    const struct timespec step = { 0, OAUTH_LOCK_STEP_MS * 1000000L };

    for (int waited = 0;; waited += OAUTH_LOCK_STEP_MS) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (waited >= timeout_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        nanosleep(&step, NULL);
    }
}
