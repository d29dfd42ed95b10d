/* fuzz_apierror.c - libFuzzer target for the OpenAI-shaped error bodies.
 * Input: two bytes of HTTP status (little-endian, signed), one byte
 * choosing the code among those the daemon passes, one byte of a small
 * output capacity, then the message (up to its first NUL, as a C string
 * reaches apierr_format). Checks:
 *   - into APIERR_BODY_MAX bytes, as every caller formats it, the body
 *     always parses with json-c as {"error":{"message":..., "type":...,
 *     "code":...}} with the type apierr_type() gives and the code given;
 *   - the message read back is a prefix of the one given, and valid
 *     UTF-8 when the given one was (a cut falls between characters);
 *   - into a small buffer, apierr_format() and apierr_escape() stay in
 *     bounds, NUL-terminate, and return the length they wrote; the body
 *     is empty or still of that shape with the message cut. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "apierror.h"
#include "fuzz.h"

#define FUZZ_AE_HEADER  4          /* status (2), code (1), capacity (1) */
#define FUZZ_AE_DEPTH   8
#define FUZZ_AE_CAP_STEP 4         /* capacity byte * 4: up to the full size */

/* The codes the front end and the workers pass (NULL: "code":null). */
static const char *const fuzz_ae_codes[] = {
    NULL, "queue_full", "shutting_down", "request_too_large",
    "invalid_request", "model_not_found", "no_worker", "unavailable",
    "method_not_allowed", "invalid_api_key", "not_found", "upstream_error",
    "bad_upstream_response", "timeout", "internal_error",
    "incomplete_stream", "missing_credentials", "provider_unavailable",
    "upstream_auth_failed", "upstream_rejected", "upstream_unreachable",
    "worker_died"
};

#define FUZZ_AE_CODE_COUNT (sizeof(fuzz_ae_codes) / sizeof(*fuzz_ae_codes))

/* A body: valid JSON of the right shape. Returns the length of the
 * message read back. */
static size_t fuzz_ae_check_body(const char *body, size_t n, int status,
                               const char *code, const char *message)
{
    json_object *root, *error, *msg, *type, *jcode;
    bool ok;
    size_t mlen = strlen(message), got_len;

    FUZZ_CHECK(n == strlen(body), "returned %zu for a body of %zu", n,
               strlen(body));
    root = fuzz_json_parse(body, n, FUZZ_AE_DEPTH, 0, &ok);
    FUZZ_CHECK(ok && json_object_is_type(root, json_type_object),
               "not a JSON object: %s", body);
    FUZZ_CHECK(json_object_object_length(root) == 1 &&
               json_object_object_get_ex(root, "error", &error) &&
               json_object_is_type(error, json_type_object),
               "no error object: %s", body);
    FUZZ_CHECK(json_object_object_get_ex(error, "message", &msg) &&
               json_object_is_type(msg, json_type_string),
               "no error.message: %s", body);
    FUZZ_CHECK(json_object_object_get_ex(error, "type", &type) &&
               json_object_is_type(type, json_type_string) &&
               strcmp(json_object_get_string(type),
                      apierr_type(status)) == 0,
               "error.type is not apierr_type(%d): %s", status, body);
    FUZZ_CHECK(json_object_object_get_ex(error, "code", &jcode), "no code");
    if (code == NULL)
        FUZZ_CHECK(jcode == NULL, "code should be null: %s", body);
    else
        FUZZ_CHECK(json_object_is_type(jcode, json_type_string) &&
                   strcmp(json_object_get_string(jcode), code) == 0,
                   "code should be \"%s\": %s", code, body);
    got_len = (size_t)json_object_get_string_len(msg);
    FUZZ_CHECK(got_len <= mlen &&
               memcmp(json_object_get_string(msg), message, got_len) == 0,
               "message read back is not a prefix of the one given: %s",
               body);
    if (fuzz_utf8_valid(message, mlen))
        FUZZ_CHECK(fuzz_utf8_valid(json_object_get_string(msg), got_len),
                   "a valid UTF-8 message was cut inside a character: %s",
                   body);
    json_object_put(root);
    return got_len;
}

/* Exactly cap bytes, so AddressSanitizer sees any write past them. A
 * short buffer cuts the message, never the JSON: the body is either
 * empty (no room for the envelope) or of the same shape; with room for
 * the full body, when that one holds the whole message, it is the full
 * body. */
static void fuzz_ae_small(size_t cap, int status, const char *code,
                          const char *message, const char *full,
                          size_t full_len, bool full_whole)
{
    char *out = malloc(cap);
    size_t n;

    FUZZ_CHECK(out != NULL, "out of memory");
    n = apierr_format(out, cap, status, code, message);
    FUZZ_CHECK(n < cap && out[n] == '\0' && strlen(out) == n,
               "apierr_format into %zu bytes returned %zu", cap, n);
    if (cap > full_len && full_whole)
        FUZZ_CHECK(strcmp(out, full) == 0, "into %zu bytes: %s, into %d: "
                   "%s", cap, out, APIERR_BODY_MAX, full);
    if (n > 0)
        fuzz_ae_check_body(out, n, status, code, message);
    n = apierr_escape(out, cap, message, strlen(message));
    FUZZ_CHECK(n < cap && out[n] == '\0' && strlen(out) == n,
               "apierr_escape into %zu bytes returned %zu", cap, n);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char body[APIERR_BODY_MAX];
    char *message;
    const char *code;
    int status;
    size_t cap, n;
    bool whole;

    if (size < FUZZ_AE_HEADER)
        return 0;
    status = (int16_t)(data[0] | data[1] << 8);
    code = fuzz_ae_codes[data[2] % FUZZ_AE_CODE_COUNT];
    cap = 1 + data[3] * FUZZ_AE_CAP_STEP;
    message = malloc(size - FUZZ_AE_HEADER + 1);
    FUZZ_CHECK(message != NULL, "out of memory");
    memcpy(message, data + FUZZ_AE_HEADER, size - FUZZ_AE_HEADER);
    message[size - FUZZ_AE_HEADER] = '\0';

    n = apierr_format(body, sizeof(body), status, code, message);
    FUZZ_CHECK(n > 0 && n < sizeof(body), "returned %zu", n);
    whole = fuzz_ae_check_body(body, n, status, code, message) ==
            strlen(message);
    fuzz_ae_small(cap, status, code, message, body, n, whole);
    free(message);
    return 0;
}
