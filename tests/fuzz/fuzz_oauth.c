/* fuzz_oauth.c - libFuzzer target for the OAuth parsers, which read what
 * token files and authorization servers hand us. Input: byte 0 picks two
 * HTTP statuses (bits 0-3: the answers' status, bits 4-7: the refresh
 * answer's), the rest is the text. The text goes to oauth_tokens_parse,
 * oauth_parse_poll, oauth_parse_refresh, oauth_parse_device and
 * oauth_parse_iflow_userinfo, and (up to its first NUL) to
 * oauth_api_base and oauth_urlencode. Checks:
 *   - every err is NUL-terminated printable ASCII (a server's text is
 *     cleaned before it reaches a terminal or a log line);
 *   - a parsed token file is a strict JSON object to json-c as well, has
 *     a non-empty access_token, and survives format -> parse unchanged;
 *   - a failed parser leaves its output empty; OAUTH_OK comes only from a
 *     2xx and carries access_token and token_type; a refresh refused with
 *     400/401 is OAUTH_REVOKED, never OK, and an OK refresh keeps the old
 *     refresh token when the answer has none;
 *   - a device answer is accepted only from a 200, with the codes and
 *     printable URIs present and non-negative times;
 *   - an API base starts with https:// (or http:// to a loopback host),
 *     ends in "/v1" and holds no
 *     blanks; urlencode yields only unreserved bytes and %XX that decode
 *     back to the input. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "oauth.h"

#define FUZZ_OA_HEADER     1
#define FUZZ_OA_DEPTH      16
#define FUZZ_OA_NOW_MS     1700000000000LL
#define FUZZ_OA_NIBBLE     4
#define FUZZ_OA_NIBBLE_MASK 0x0F

static const long fuzz_oa_statuses[] = {
    200, 201, 204, 299, 400, 401, 403, 428,
    429, 500, 502, 503, 0, 100, 302, -1
};

static void fuzz_oa_check_err(const char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);

    FUZZ_CHECK(n < errlen, "err not NUL-terminated");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(err[i] >= 0x20 && err[i] <= 0x7E,
                   "err byte %zu is 0x%02x: %s", i, (unsigned char)err[i],
                   err);
}

static bool fuzz_oa_empty(const struct oauth_tokens *t)
{
    return t->access_token == NULL && t->refresh_token == NULL &&
           t->token_type == NULL && t->resource_url == NULL &&
           t->scope == NULL && t->api_key == NULL;
}

static bool fuzz_oa_same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void fuzz_oa_tokens_file(const char *text, size_t len)
{
    struct oauth_tokens t, back;
    char err[OAUTH_ERR_MAX] = "";
    json_object *ref;
    char *formatted;
    bool ok;

    if (oauth_tokens_parse(text, len, &t, err, sizeof(err)) < 0) {
        fuzz_oa_check_err(err, sizeof(err));
        FUZZ_CHECK(err[0] != '\0', "refused without a reason");
        FUZZ_CHECK(fuzz_oa_empty(&t), "refused but not empty");
        return;
    }
    ref = fuzz_json_parse(text, len, FUZZ_OA_DEPTH, JSON_TOKENER_STRICT, &ok);
    FUZZ_CHECK(ok && json_object_is_type(ref, json_type_object),
               "accepted what strict json-c does not take as an object");
    json_object_put(ref);
    FUZZ_CHECK(t.access_token != NULL && t.access_token[0] != '\0',
               "no access_token");
    FUZZ_CHECK(t.expiry_ms >= 0, "negative expiry");
    formatted = oauth_tokens_format(&t);
    FUZZ_CHECK(formatted != NULL, "format failed");
    FUZZ_CHECK(oauth_tokens_parse(formatted, strlen(formatted), &back, err,
                                  sizeof(err)) == 0,
               "formatted text does not parse: %s", err);
    FUZZ_CHECK(fuzz_oa_same_str(t.access_token, back.access_token) &&
               fuzz_oa_same_str(t.refresh_token, back.refresh_token) &&
               fuzz_oa_same_str(t.token_type, back.token_type) &&
               fuzz_oa_same_str(t.resource_url, back.resource_url) &&
               fuzz_oa_same_str(t.scope, back.scope) &&
               fuzz_oa_same_str(t.api_key, back.api_key) &&
               t.expiry_ms == back.expiry_ms, "round trip changed the tokens");
    oauth_secret_free(&formatted);
    oauth_tokens_free(&back);
    oauth_tokens_free(&t);
}

static bool fuzz_oa_2xx(long status)
{
    return status >= 200 && status <= 299;
}

static void fuzz_oa_poll(long status, const char *text, size_t len)
{
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX] = "";
    enum oauth_result r;

    r = oauth_parse_poll(status, text, len, FUZZ_OA_NOW_MS, &t, err,
                         sizeof(err));
    FUZZ_CHECK(r == OAUTH_OK || r == OAUTH_PENDING || r == OAUTH_SLOW_DOWN ||
               r == OAUTH_EXPIRED || r == OAUTH_DENIED || r == OAUTH_FAILED,
               "poll result %d", (int)r);
    if (r != OAUTH_OK) {
        fuzz_oa_check_err(err, sizeof(err));
        FUZZ_CHECK(fuzz_oa_empty(&t), "poll %d left tokens", (int)r);
        return;
    }
    FUZZ_CHECK(fuzz_oa_2xx(status), "OK from HTTP %ld", status);
    FUZZ_CHECK(t.access_token != NULL && t.access_token[0] != '\0' &&
               t.token_type != NULL, "OK without a token or its type");
    FUZZ_CHECK(t.expiry_ms == 0 || t.expiry_ms >= FUZZ_OA_NOW_MS,
               "expiry before now");
    oauth_tokens_free(&t);
}

static void fuzz_oa_refresh(long status, const char *text, size_t len)
{
    struct oauth_tokens old = { .access_token = "old-access",
                                .refresh_token = "old-refresh" };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX] = "";
    enum oauth_result r;

    r = oauth_parse_refresh(status, text, len, FUZZ_OA_NOW_MS, &old, &t, err,
                            sizeof(err));
    FUZZ_CHECK(r == OAUTH_OK || r == OAUTH_REVOKED || r == OAUTH_FAILED,
               "refresh result %d", (int)r);
    /* 400/401: revoked when the server said so in JSON; a body that is
     * not JSON (a proxy's page) is a plain failure. */
    if (status == 400 || status == 401)
        FUZZ_CHECK(r == OAUTH_REVOKED || r == OAUTH_FAILED, "HTTP %ld gave %d",
                   status, (int)r);
    else
        FUZZ_CHECK(r != OAUTH_REVOKED, "HTTP %ld gave revoked", status);
    if (r != OAUTH_OK) {
        fuzz_oa_check_err(err, sizeof(err));
        FUZZ_CHECK(fuzz_oa_empty(&t), "refresh %d left tokens", (int)r);
        return;
    }
    FUZZ_CHECK(fuzz_oa_2xx(status), "OK from HTTP %ld", status);
    FUZZ_CHECK(t.access_token != NULL && t.refresh_token != NULL &&
               t.token_type != NULL, "OK without access, refresh or type");
    oauth_tokens_free(&t);
}

static bool fuzz_oa_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < 0x20 || *s > 0x7E)
            return false;
    return true;
}

static void fuzz_oa_device(long status, const char *text, size_t len)
{
    struct oauth_device d;
    char err[OAUTH_ERR_MAX] = "";

    if (oauth_parse_device(status, text, len, &d, err, sizeof(err)) < 0) {
        fuzz_oa_check_err(err, sizeof(err));
        FUZZ_CHECK(d.device_code == NULL && d.user_code == NULL &&
                   d.verification_uri == NULL &&
                   d.verification_uri_complete == NULL,
                   "refused but not empty");
        return;
    }
    FUZZ_CHECK(status == 200, "device answer taken from HTTP %ld", status);
    FUZZ_CHECK(d.device_code != NULL && d.device_code[0] != '\0' &&
               d.user_code != NULL && d.user_code[0] != '\0' &&
               d.verification_uri != NULL && d.verification_uri[0] != '\0',
               "a required member is missing");
    FUZZ_CHECK(fuzz_oa_printable(d.user_code) &&
               fuzz_oa_printable(d.verification_uri) &&
               (d.verification_uri_complete == NULL ||
                fuzz_oa_printable(d.verification_uri_complete)),
               "what the user sees is not printable");
    FUZZ_CHECK(d.expires_in_s >= 0 && d.interval_s >= 0, "negative time");
    oauth_device_free(&d);
}

static void fuzz_oa_userinfo(long status, const char *text, size_t len)
{
    char err[OAUTH_ERR_MAX] = "", *key = NULL;

    if (oauth_parse_iflow_userinfo(status, text, len, &key, err,
                                   sizeof(err)) < 0) {
        fuzz_oa_check_err(err, sizeof(err));
        FUZZ_CHECK(key == NULL, "refused but a key is set");
        return;
    }
    FUZZ_CHECK(fuzz_oa_2xx(status), "user info taken from HTTP %ld", status);
    FUZZ_CHECK(key != NULL && key[0] != '\0', "no key");
    oauth_secret_free(&key);
}

static int fuzz_oa_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void fuzz_oa_strings(const char *s)
{
    char base[OAUTH_URL_MAX];
    char *enc;
    size_t j = 0, n;

    if (oauth_api_base(s, base, sizeof(base)) == 0) {
        const char *p = base;

        while (isalpha((unsigned char)*p))
            p++;
        FUZZ_CHECK(p > base && strncmp(p, "://", 3) == 0,
                   "no scheme: %s", base);
        FUZZ_CHECK(strncasecmp(base, "https://", 8) == 0 ||
                   (strncasecmp(base, "http://", 7) == 0 &&
                    (strncasecmp(base + 7, "127.", 4) == 0 ||
                     strncasecmp(base + 7, "localhost", 9) == 0 ||
                     strncmp(base + 7, "[::1]", 5) == 0)),
                   "token sent in clear off this machine: %s", base);
        n = strlen(base);
        FUZZ_CHECK(n >= 3 && strcmp(base + n - 3, "/v1") == 0,
                   "no /v1: %s", base);
        FUZZ_CHECK(strpbrk(base, " \t\r\n") == NULL, "blank in %s", base);
    }
    enc = oauth_urlencode(s);
    FUZZ_CHECK(enc != NULL, "out of memory");
    for (size_t i = 0; enc[i] != '\0'; i++, j++) {
        unsigned char c = (unsigned char)enc[i];
        int hi, lo;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            FUZZ_CHECK(s[j] == (char)c, "encoded byte %zu differs", j);
            continue;
        }
        FUZZ_CHECK(c == '%', "reserved byte 0x%02x left as is", c);
        hi = fuzz_oa_hex(enc[i + 1]);
        lo = hi < 0 ? -1 : fuzz_oa_hex(enc[i + 2]);
        FUZZ_CHECK(hi >= 0 && lo >= 0, "bad escape at %zu", i);
        FUZZ_CHECK((unsigned char)s[j] == (unsigned char)(hi << 4 | lo),
                   "escape at %zu does not decode to byte %zu", i, j);
        FUZZ_CHECK(!isalnum((unsigned char)s[j]) && s[j] != '-' &&
                   s[j] != '.' && s[j] != '_' && s[j] != '~',
                   "unreserved byte escaped");
        i += 2;
    }
    FUZZ_CHECK(s[j] == '\0', "encoding lost bytes");
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long status, refresh_status;
    const char *text;
    char *copy;
    size_t len;

    if (size < FUZZ_OA_HEADER)
        return 0;
    status = fuzz_oa_statuses[data[0] & FUZZ_OA_NIBBLE_MASK];
    refresh_status = fuzz_oa_statuses[data[0] >> FUZZ_OA_NIBBLE];
    text = (const char *)data + FUZZ_OA_HEADER;
    len = size - FUZZ_OA_HEADER;

    fuzz_oa_tokens_file(text, len);
    fuzz_oa_poll(status, text, len);
    fuzz_oa_refresh(refresh_status, text, len);
    fuzz_oa_device(status, text, len);
    fuzz_oa_userinfo(status, text, len);

    copy = malloc(len + 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    fuzz_oa_strings(copy);
    free(copy);
    return 0;
}
