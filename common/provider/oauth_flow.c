/* oauth_flow.c - PKCE, the form bodies and the parsers of the
 * authorization servers' answers (see oauth_flow.h). */
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

#define OAUTH_SHA256_LEN      32
#define OAUTH_VERIFIER_MIN    43       /* RFC 7636 4.1 */
#define OAUTH_VERIFIER_MAX    128
#define OAUTH_B64_BITS        6        /* bits per base64 character */
#define OAUTH_B64_MASK        0x3F
#define OAUTH_B64_GROUP_IN    3        /* bytes per group of 4 characters */
#define OAUTH_SECONDS_MAX     (10LL * 365 * 24 * 3600)  /* expires_in cap */
#define OAUTH_MS_PER_S        1000LL
#define OAUTH_CODE_SHOWN_MAX  64       /* a server's error code in err */
#define OAUTH_DESC_SHOWN_MAX  160      /* its error_description / message */
#define OAUTH_HTTP_OK         200
#define OAUTH_HTTP_BAD_REQUEST  400
#define OAUTH_HTTP_UNAUTHORIZED 401
#define OAUTH_BEARER          "Bearer"
#define OAUTH_FORM_PAIRS_MAX  4        /* the longest form built here */

static const char oauth_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
