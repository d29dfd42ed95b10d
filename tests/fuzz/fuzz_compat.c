/* fuzz_compat.c - libFuzzer target for the provider compatibility layer:
 * the request rewriting and every reader of provider answers (a plain
 * chat completion, its usage, an error body). Input: one byte choosing
 * the provider type, then the body. Checks:
 *   - compat_request on a body json-c accepts as an object gives an
 *     object that json-c accepts, whose "model" is the target's, and that
 *     holds none of the parameters dropped for that provider;
 *   - on anything else it fails cleanly or still gives valid JSON;
 *   - compat_check_answer accepts only bodies that json-c parses as an
 *     object with a "choices" array;
 *   - compat_error_message always NUL-terminates printable text within
 *     its capacity;
 *   - compat_ask_usage on an object json-c accepts gives one with
 *     stream_options.include_usage true (or says the body had it), and
 *     compat_usage_chunk says yes only to an object with a "usage"
 *     object and an empty "choices" array. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ctype.h>

#include "compat.h"
#include "fuzz.h"
#include "jsonscan.h"

#define FUZZ_CP_DEPTH   JS_MAX_DEPTH
#define FUZZ_CP_MSG_CAP 64
#define FUZZ_CP_MODEL   "tgt\"model/\xc3\xa9"

static const enum cfg_provider_type fuzz_cp_types[] = {
    CFG_PROVIDER_OPENAI, CFG_PROVIDER_QWEN, CFG_PROVIDER_IFLOW
};

static const char *const fuzz_cp_dropped[] = {
    "store", "metadata", "service_tier", "prediction",
    "max_completion_tokens"
};

static void fuzz_cp_request(enum cfg_provider_type type, const char *body,
                            size_t len)
{
    char *out = NULL;
    size_t out_len = 0;
    bool ok_in, ok_out;
    json_object *in = fuzz_json_parse(body, len, FUZZ_CP_DEPTH, 0, &ok_in);
    json_object *root, *model;
    int rc = compat_request(type, body, len, FUZZ_CP_MODEL, &out, &out_len);

    if (rc < 0) {
        FUZZ_CHECK(out == NULL, "output left after a failure");
        FUZZ_CHECK(!(ok_in && json_object_is_type(in, json_type_object) &&
                     js_validate(body, len, FUZZ_CP_DEPTH) == 0),
                   "a valid object was refused");
        json_object_put(in);
        return;
    }
    FUZZ_CHECK(out != NULL && out[out_len] == '\0', "length %zu", out_len);
    root = fuzz_json_parse(out, out_len, FUZZ_CP_DEPTH + 1, 0, &ok_out);
    if (ok_in && json_object_is_type(in, json_type_object) &&
        js_validate(body, len, FUZZ_CP_DEPTH) == 0) {
        FUZZ_CHECK(ok_out && json_object_is_type(root, json_type_object),
                   "output is not an object: %s", out);
        FUZZ_CHECK(json_object_object_get_ex(root, "model", &model) &&
                   json_object_is_type(model, json_type_string) &&
                   strcmp(json_object_get_string(model), FUZZ_CP_MODEL) == 0,
                   "model is not the target's: %s", out);
        for (size_t i = 0; type != CFG_PROVIDER_OPENAI &&
             i < sizeof(fuzz_cp_dropped) / sizeof(*fuzz_cp_dropped); i++)
            FUZZ_CHECK(!json_object_object_get_ex(root, fuzz_cp_dropped[i],
                                                  NULL),
                       "%s kept: %s", fuzz_cp_dropped[i], out);
    }
    json_object_put(root);
    json_object_put(in);
    free(out);
}

static void fuzz_cp_answer(const char *body, size_t len)
{
    struct compat_usage u = { 0, 0 };
    const char *why = compat_check_answer(body, len, &u);
    bool ok;
    json_object *root, *choices;

    if (why != NULL)
        return;
    root = fuzz_json_parse(body, len, FUZZ_CP_DEPTH, 0, &ok);
    FUZZ_CHECK(ok && json_object_is_type(root, json_type_object) &&
               json_object_object_get_ex(root, "choices", &choices) &&
               json_object_is_type(choices, json_type_array),
               "accepted an answer without a choices array");
    json_object_put(root);
}

static void fuzz_cp_error(const char *body, size_t len)
{
    char out[FUZZ_CP_MSG_CAP + 1];
    size_t n;

    memset(out, 'x', sizeof(out));
    compat_error_message(body, len, NULL, 0, out, FUZZ_CP_MSG_CAP);
    n = strnlen(out, FUZZ_CP_MSG_CAP);
    FUZZ_CHECK(n < FUZZ_CP_MSG_CAP, "not NUL-terminated");
    FUZZ_CHECK(out[FUZZ_CP_MSG_CAP] == 'x', "wrote past the capacity");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(isprint((unsigned char)out[i]), "unprintable byte %zu", i);
}

/* stream_options.include_usage of root is true. */
static bool fuzz_cp_has_usage(json_object *root)
{
    json_object *opts, *v;

    return json_object_object_get_ex(root, "stream_options", &opts) &&
           json_object_object_get_ex(opts, "include_usage", &v) &&
           json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

static void fuzz_cp_usage(const char *body, size_t len)
{
    char *out = NULL;
    size_t out_len = 0;
    bool ok_in, ok_out;
    json_object *in = fuzz_json_parse(body, len, FUZZ_CP_DEPTH, 0, &ok_in);
    json_object *root, *v;
    int rc = compat_ask_usage(body, len, &out, &out_len);

    ok_in = ok_in && json_object_is_type(in, json_type_object);
    if (rc == 1) {
        FUZZ_CHECK(out != NULL && out[out_len] == '\0', "length %zu",
                   out_len);
        root = fuzz_json_parse(out, out_len, FUZZ_CP_DEPTH + 1, 0, &ok_out);
        FUZZ_CHECK(!ok_in || (ok_out && fuzz_cp_has_usage(root)),
                   "include_usage not set");
        json_object_put(root);
    } else {
        FUZZ_CHECK(out == NULL, "output left with %d", rc);
        FUZZ_CHECK(rc < 0 || !ok_in || fuzz_cp_has_usage(in),
                   "said the client asked when it did not");
    }
    free(out);
    if (ok_in && compat_usage_chunk(body, len))
        FUZZ_CHECK(json_object_object_get_ex(in, "usage", &v) &&
                   json_object_is_type(v, json_type_object) &&
                   json_object_object_get_ex(in, "choices", &v) &&
                   json_object_is_type(v, json_type_array) &&
                   json_object_array_length(v) == 0,
                   "a usage chunk that is not one");
    json_object_put(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body;
    enum cfg_provider_type type;

    if (size < 1)
        return 0;
    type = fuzz_cp_types[data[0] % (sizeof(fuzz_cp_types) /
                                    sizeof(*fuzz_cp_types))];
    body = malloc(size);
    FUZZ_CHECK(body != NULL, "out of memory");
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    fuzz_cp_request(type, body, size - 1);
    fuzz_cp_answer(body, size - 1);
    fuzz_cp_error(body, size - 1);
    fuzz_cp_usage(body, size - 1);
    free(body);
    return 0;
}
