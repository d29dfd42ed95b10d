/* oauthwire.c - fingerprints, stored records and change notices of
 * OAuth tokens shared in cluster mode (oauthwire.h). */
#include "oauthwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define OW_SEP            '|'
#define OW_STAMP_DIGITS   15
#define OW_SHA256_LEN     32
#define OW_STAMP_MAX      999999999999999LL  /* OW_STAMP_DIGITS nines */

static const char ow_hex[] = "0123456789abcdef";

int ow_fingerprint(const struct oauth_tokens *t, char out[OW_FP_LEN + 1])
{
    const char *parts[] = { t->access_token, t->refresh_token, t->api_key };
    const size_t count = sizeof(parts) / sizeof(parts[0]);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx;
    int ok;

    out[0] = '\0';
    if (t->access_token == NULL || (ctx = EVP_MD_CTX_new()) == NULL)
        return -1;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < count; i++) {
        const char *s = parts[i] != NULL ? parts[i] : "";

        /* Each part ends with its NUL: ("ab", "") and ("a", "b") differ. */
        ok = EVP_DigestUpdate(ctx, s, strlen(s) + (i + 1 < count ? 1 : 0)) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 &&
         dlen == OW_SHA256_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    for (int i = 0; i < OW_FP_LEN / 2; i++) {
        out[2 * i] = ow_hex[digest[i] >> 4];
        out[2 * i + 1] = ow_hex[digest[i] & 0xf];
    }
    out[OW_FP_LEN] = '\0';
    return 0;
}

bool ow_fp_ok(const char *s)
{
    size_t i;

    for (i = 0; i < OW_FP_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[i] == '\0';
}

static bool ow_prev_ok(const char *s)
{
    return strcmp(s, OW_FP_NONE) == 0 || ow_fp_ok(s);
}

/* Copies the field [p, sep) of at most cap-1 bytes, without NUL. */
static int ow_field(const char *p, const char *sep, char *out, size_t cap)
{
    size_t n = (size_t)(sep - p);

    if (n >= cap || memchr(p, '\0', n) != NULL)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* The next field of [*p, end) up to sep into out; *p moves past sep. */
static int ow_next(const char **p, const char *end, char sep, char *out,
                   size_t cap)
{
    const char *s = memchr(*p, sep, (size_t)(end - *p));

    if (s == NULL || ow_field(*p, s, out, cap) < 0)
        return -1;
    *p = s + 1;
    return 0;
}

char *ow_record_encode(const struct ow_record *r)
{
    char fp[OW_FP_LEN + 1];
    char *json, *out;
    size_t n;

    if (!cw_instance_ok(r->origin) || !ow_fp_ok(r->fp) ||
        !ow_prev_ok(r->prev) || r->stamp_ms < 1 ||
        r->stamp_ms > OW_STAMP_MAX ||
        ow_fingerprint(&r->tok, fp) < 0 || strcmp(fp, r->fp) != 0)
        return NULL;
    json = oauth_tokens_format(&r->tok);
    if (json == NULL)
        return NULL;
    n = strlen(r->origin) + strlen(json) + 2 * OW_FP_LEN + 64;
    out = malloc(n);
    if (out != NULL &&
        snprintf(out, n, "%s%c%s%c%s%c%lld\n%s", r->origin, OW_SEP, r->fp,
                 OW_SEP, r->prev, OW_SEP, (long long)r->stamp_ms, json) < 0)
        oauth_secret_free(&out);
    oauth_secret_free(&json);
    return out;
}

int ow_record_decode(const char *buf, size_t len, struct ow_record *r)
{
    const char *p = buf, *end = buf + len;
    char stamp[OW_STAMP_DIGITS + 2], fp[OW_FP_LEN + 1], err[OAUTH_ERR_MAX];
    size_t digits;

    memset(r, 0, sizeof(*r));
    if (len > OW_RECORD_MAX ||
        ow_next(&p, end, OW_SEP, r->origin, sizeof(r->origin)) < 0 ||
        ow_next(&p, end, OW_SEP, r->fp, sizeof(r->fp)) < 0 ||
        ow_next(&p, end, OW_SEP, r->prev, sizeof(r->prev)) < 0 ||
        ow_next(&p, end, '\n', stamp, sizeof(stamp)) < 0)
        return -1;
    digits = strlen(stamp);
    if (!cw_instance_ok(r->origin) || !ow_fp_ok(r->fp) ||
        !ow_prev_ok(r->prev) || digits == 0 || digits > OW_STAMP_DIGITS ||
        stamp[0] == '0' || strspn(stamp, "0123456789") != digits)
        return -1;
    r->stamp_ms = strtoll(stamp, NULL, 10);
    if (oauth_tokens_parse(p, (size_t)(end - p), &r->tok, err,
                           sizeof(err)) < 0)
        return -1;
    if (ow_fingerprint(&r->tok, fp) < 0 || strcmp(fp, r->fp) != 0) {
        oauth_tokens_free(&r->tok);
        return -1;
    }
    return 0;
}

int ow_msg_encode(char *out, size_t outlen, const struct ow_msg *msg)
{
    size_t name_len = strnlen(msg->provider, CW_NAME_MAX);
    int n;

    if (!cw_instance_ok(msg->origin) || !ow_fp_ok(msg->fp) ||
        name_len == 0 || name_len >= CW_NAME_MAX)
        return -1;
    n = snprintf(out, outlen, "%s%c%s%c%s", msg->origin, OW_SEP, msg->fp,
                 OW_SEP, msg->provider);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int ow_msg_decode(const char *buf, size_t len, struct ow_msg *msg)
{
    const char *p = buf, *end = buf + len;
    size_t n;

    memset(msg, 0, sizeof(*msg));
    if (ow_next(&p, end, OW_SEP, msg->origin, sizeof(msg->origin)) < 0 ||
        ow_next(&p, end, OW_SEP, msg->fp, sizeof(msg->fp)) < 0)
        return -1;
    n = (size_t)(end - p);
    if (n == 0 || n >= CW_NAME_MAX || memchr(p, '\0', n) != NULL)
        return -1;
    memcpy(msg->provider, p, n);
    return cw_instance_ok(msg->origin) && ow_fp_ok(msg->fp) ? 0 : -1;
}
