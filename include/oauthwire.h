/* oauthwire.h - the pure parts of OAuth tokens shared in cluster mode
 * (master/cloauth.c): a token set's fingerprint (what instances compare
 * instead of the tokens), the record of a provider's current tokens as
 * stored in Redis, and the notice published when they change. Strict
 * decoders for what comes back from Redis. No I/O, no Redis:
 * unit-tested and fuzzed on their own. */
#ifndef RCC_OAUTHWIRE_H
#define RCC_OAUTHWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clusterwire.h"
#include "oauth.h"

/* A fingerprint: the first OW_FP_LEN hex digits of the SHA-256 of the
 * access token, the refresh token and the API key (iFlow), each ended by
 * a NUL (the last one not), absent ones empty. Any new token makes a new
 * one; the expiry alone does not. One way: it names a version of a token
 * set without revealing it. */
#define OW_FP_LEN         32
/* "No previous tokens" in a record. */
#define OW_FP_NONE        "-"
/* The longest stored record: the header and a token file's text. */
#define OW_RECORD_MAX     (OAUTH_FILE_MAX + 256)
/* An encoded notice: origin, fingerprint, provider and separators. */
#define OW_MSG_MAX        (CW_INSTANCE_MAX + OW_FP_LEN + CW_NAME_MAX + 8)

/* One provider's current tokens as the cluster knows them. */
struct ow_record {
    char origin[CW_INSTANCE_MAX + 1];  /* the instance that stored them */
    char fp[OW_FP_LEN + 1];            /* of tok */
    char prev[OW_FP_LEN + 1];          /* of the tokens they replaced
                                          (consumed), or OW_FP_NONE */
    int64_t stamp_ms;                  /* wall clock when stored */
    struct oauth_tokens tok;           /* owned; oauth_tokens_free */
};

/* What an instance publishes when a provider's tokens changed there:
 * the others fetch the record when theirs are older. No secret. */
struct ow_msg {
    char origin[CW_INSTANCE_MAX + 1];
    char fp[OW_FP_LEN + 1];            /* of the new tokens */
    char provider[CW_NAME_MAX];
};

/* t's fingerprint into out (OW_FP_LEN hex digits and a NUL). 0, or -1
 * when t has no access token or the digest fails. */
int ow_fingerprint(const struct oauth_tokens *t, char out[OW_FP_LEN + 1]);
/* Whether s is a fingerprint (OW_FP_LEN lowercase hex digits). */
bool ow_fp_ok(const char *s);

/* "ORIGIN|FP|PREV|STAMP\n" and the token file's text; malloc'd (it
 * holds secrets: the caller wipes it with oauth_secret_free). NULL when
 * r is invalid (its fp not that of its tokens, among others) or out of
 * memory. */
char *ow_record_encode(const struct ow_record *r);
/* Reads a record of len bytes (no NUL needed): a valid origin, fp and
 * prev, a stamp of 1..15 digits without a leading zero, and tokens that
 * oauth_tokens_parse takes whose fingerprint is fp. 0 (r->tok then owned
 * by the caller), or -1 with r->tok empty. */
int ow_record_decode(const char *buf, size_t len, struct ow_record *r);

/* "ORIGIN|FP|PROVIDER" into out. 0, or -1 when msg is invalid or does
 * not fit. */
int ow_msg_encode(char *out, size_t outlen, const struct ow_msg *msg);
/* Reads a notice of len bytes: a valid origin and fp, a provider name of
 * 1..CW_NAME_MAX-1 bytes without NUL. 0, or -1. */
int ow_msg_decode(const char *buf, size_t len, struct ow_msg *msg);

#endif
