/* fuzz_oauthwire.c - libFuzzer target for cluster mode's OAuth decoders
 * (oauthwire.c): the input is read both as a stored token record, as
 * GET returns it from Redis, and as a change notice from the channel. A
 * notice that decodes must encode back to the very same bytes; a record
 * that decodes must encode and decode again to the same values, its
 * fingerprint that of its tokens. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "oauthwire.h"

static bool fuzz_ow_same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void fuzz_ow_record(const char *data, size_t size)
{
    struct ow_record r, again;
    char fp[OW_FP_LEN + 1];
    char *text;

    if (ow_record_decode(data, size, &r) < 0) {
        FUZZ_CHECK(r.tok.access_token == NULL && r.tok.refresh_token == NULL,
                   "a refused record left tokens behind");
        return;
    }
    FUZZ_CHECK(ow_fingerprint(&r.tok, fp) == 0 && strcmp(fp, r.fp) == 0,
               "a record's fingerprint is not that of its tokens");
    text = ow_record_encode(&r);
    FUZZ_CHECK(text != NULL, "a decoded record does not encode");
    FUZZ_CHECK(ow_record_decode(text, strlen(text), &again) == 0,
               "an encoded record does not decode");
    FUZZ_CHECK(strcmp(again.origin, r.origin) == 0 &&
               strcmp(again.fp, r.fp) == 0 &&
               strcmp(again.prev, r.prev) == 0 &&
               again.stamp_ms == r.stamp_ms &&
               again.tok.expiry_ms == r.tok.expiry_ms &&
               fuzz_ow_same_str(again.tok.access_token, r.tok.access_token) &&
               fuzz_ow_same_str(again.tok.refresh_token,
                                r.tok.refresh_token) &&
               fuzz_ow_same_str(again.tok.api_key, r.tok.api_key),
               "a record changed in a round trip");
    oauth_secret_free(&text);
    oauth_tokens_free(&again.tok);
    oauth_tokens_free(&r.tok);
}

static void fuzz_ow_message(const char *data, size_t size)
{
    struct ow_msg msg;
    char text[OW_MSG_MAX];

    if (ow_msg_decode(data, size, &msg) < 0)
        return;
    FUZZ_CHECK(ow_msg_encode(text, sizeof(text), &msg) == 0,
               "a decoded notice does not encode");
    FUZZ_CHECK(strlen(text) == size && memcmp(text, data, size) == 0,
               "the round trip changed the bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ow_record((const char *)data, size);
    fuzz_ow_message((const char *)data, size);
    return 0;
}
