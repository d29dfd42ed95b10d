/* fuzz_anthropic_req.c - libFuzzer target for the Anthropic body
 * parsers: the input is one body, given to every translator that reads
 * a whole JSON body (the door's Messages request and count_tokens, the
 * door's reading of a chat completion, the provider's reading of a chat
 * request and of an Anthropic message). Beyond memory safety: accepted ⇒
 * the output is one strict JSON object of the promised shape, its length
 * is the one returned, and count_tokens agrees with the translation
 * (max_tokens aside); refused ⇒ no output and a message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anthropic_msg.h"
#include "anthropic_req.h"
#include "anthropic_up.h"
#include "fuzz.h"

#define FUZZ_AR_DEPTH   128          /* deeper than any translator makes */
#define FUZZ_AR_CREATED 1700000000

/* out[0..len) is one strict JSON object; returns it (the caller puts). */
static json_object *fuzz_ar_object(const char *what, const char *out,
                                   size_t len)
{
    bool ok;
    json_object *o;

    FUZZ_CHECK(out != NULL, "%s: no output", what);
    FUZZ_CHECK(strlen(out) == len, "%s: length %zu, NUL at %zu", what, len,
               strlen(out));
    o = fuzz_json_parse(out, len, FUZZ_AR_DEPTH, JSON_TOKENER_STRICT, &ok);
    FUZZ_CHECK(ok && json_object_is_type(o, json_type_object),
               "%s: output is not a JSON object: %s", what, out);
    return o;
}

static json_object *fuzz_ar_member(json_object *o, const char *key,
                                   json_type type)
{
    json_object *v = NULL;

    FUZZ_CHECK(json_object_object_get_ex(o, key, &v) &&
               json_object_is_type(v, type), "member %s missing or of "
               "another type", key);
    return v;
}

static void fuzz_ar_door(const char *body, size_t len)
{
    struct anthropic_req_info info;
    char *out = NULL, err[ANTHROPIC_REQ_ERR_MAX];
    size_t out_len = 0;
    long long tokens = -1;
    int rc, count_rc;
    json_object *o, *v;

    rc = anthropic_req_to_openai(body, len, &out, &out_len, &info, err,
                                 sizeof(err));
    count_rc = anthropic_req_count_tokens(body, len, &tokens, err,
                                          sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && out == NULL, "refused with output");
        FUZZ_CHECK(err[0] != '\0' || count_rc == 0, "refused silently");
        return;
    }
    FUZZ_CHECK(count_rc == 0 && tokens >= 0, "translated but count_tokens "
               "refused (%d, %lld)", count_rc, tokens);
    o = fuzz_ar_object("anthropic_req_to_openai", out, out_len);
    v = fuzz_ar_member(o, "model", json_type_string);
    FUZZ_CHECK(strlen(info.model) < sizeof(info.model) &&
               strncmp(json_object_get_string(v), info.model,
                       strlen(info.model)) == 0, "info.model differs");
    fuzz_ar_member(o, "messages", json_type_array);
    v = fuzz_ar_member(o, "max_tokens", json_type_int);
    FUZZ_CHECK(json_object_get_int64(v) >= 1 &&
               json_object_get_int64(v) == info.max_tokens,
               "max_tokens %lld", (long long)json_object_get_int64(v));
    FUZZ_CHECK(!info.stream ||
               json_object_object_get_ex(o, "stream_options", NULL),
               "a stream without stream_options");
    json_object_put(o);
    free(out);
}

static void fuzz_ar_others(const char *body, size_t len)
{
    char *out = NULL, err[ANTHROPIC_UP_ERR_MAX];
    size_t out_len = 0;
    bool stream;
    json_object *o, *v;

    if (anthropic_msg_from_openai(body, len, "m", NULL, &out, &out_len)
        == 0) {
        o = fuzz_ar_object("anthropic_msg_from_openai", out, out_len);
        v = fuzz_ar_member(o, "type", json_type_string);
        FUZZ_CHECK(strcmp(json_object_get_string(v), "message") == 0,
                   "type is not message");
        fuzz_ar_member(o, "content", json_type_array);
        fuzz_ar_member(o, "stop_reason", json_type_string);
        json_object_put(o);
        free(out);
    } else {
        FUZZ_CHECK(out == NULL, "refused with output");
    }
    if (anthropic_up_request(body, len, "t", &out, &out_len, &stream, err,
                             sizeof(err)) == 0) {
        o = fuzz_ar_object("anthropic_up_request", out, out_len);
        fuzz_ar_member(o, "messages", json_type_array);
        v = fuzz_ar_member(o, "max_tokens", json_type_int);
        FUZZ_CHECK(json_object_get_int64(v) >= 1, "max_tokens < 1");
        json_object_put(o);
        free(out);
    } else {
        FUZZ_CHECK(out == NULL && err[0] != '\0', "refused badly");
    }
    if (anthropic_up_answer(body, len, "m", FUZZ_AR_CREATED, &out,
                            &out_len) == 0) {
        o = fuzz_ar_object("anthropic_up_answer", out, out_len);
        v = fuzz_ar_member(o, "choices", json_type_array);
        FUZZ_CHECK(json_object_array_length(v) == 1, "one choice");
        json_object_put(o);
        free(out);
    } else {
        FUZZ_CHECK(out == NULL, "refused with output");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;

    fuzz_ar_door(body, size);
    fuzz_ar_others(body, size);
    return 0;
}
