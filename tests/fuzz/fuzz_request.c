/* fuzz_request.c - libFuzzer target for req_validate(): the raw input is
 * a client's request body. Checks what the front end relies on: an
 * accepted body names a non-empty model without NUL that fits
 * req_info.model; a refused one comes with a message; it is strict
 * RFC 8259 JSON, nothing but whitespace following the object; and the
 * worker's raw "model" and "stream" lookup (js_find_member) agrees with
 * what was validated. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "jsonscan.h"
#include "request.h"

#define FUZZ_REQ_ERR_MAX 256       /* the front end's error buffer */

/* A raw JSON string value [start, end) without escapes equals model. */
static void fuzz_req_check_model(const char *body, size_t start, size_t end,
                                 const char *model)
{
    size_t len = end - start;

    if (len < 2 || body[start] != '"' ||
        memchr(body + start, '\\', len) != NULL)
        return;
    FUZZ_CHECK(len - 2 == strlen(model) &&
               memcmp(body + start + 1, model, len - 2) == 0,
               "raw model member \"%.*s\" differs from validated \"%s\"",
               (int)len, body + start, model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct req_info info;
    char err[FUZZ_REQ_ERR_MAX];
    size_t start, end;

    memset(&info, 0xA5, sizeof(info));
    memset(err, 0, sizeof(err));
    if (req_validate(body, size, &info, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
                   "error message not NUL-terminated");
        return 0;
    }
    FUZZ_CHECK(memchr(info.model, '\0', sizeof(info.model)) != NULL,
               "model not NUL-terminated");
    FUZZ_CHECK(info.model[0] != '\0', "accepted an empty model");
    /* Bodies must be strict RFC 8259 JSON (the worker rewrites them
     * with the strict scanner); json-c stops at a NUL byte, and only
     * whitespace may follow the object: an accepted body holds no NUL. */
    FUZZ_CHECK(js_validate(body, size, REQ_MAX_DEPTH) == 0,
               "accepted a body that is not strict JSON");
    FUZZ_CHECK(memchr(body, '\0', size) == NULL,
               "accepted a body holding a NUL byte at offset %zu",
               (size_t)((const char *)memchr(body, '\0', size) - body));
    if (js_find_member(body, size, "model", &start, &end) == 1) {
        FUZZ_CHECK(start < end && end <= size, "bad span [%zu, %zu)",
                   start, end);
        fuzz_req_check_model(body, start, end, info.model);
    }
    if (js_find_member(body, size, "stream", &start, &end) == 1) {
        bool raw_true = end - start == 4 &&
                        memcmp(body + start, "true", 4) == 0;

        FUZZ_CHECK(raw_true == info.stream, "raw stream \"%.*s\" but "
                   "validated stream=%d", (int)(end - start), body + start,
                   info.stream);
    }
    return 0;
}
