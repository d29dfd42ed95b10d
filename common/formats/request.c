/* request.c - checks a chat-completion body with json-c before it is
 * queued, so workers only ever see well-formed requests. */
#include "request.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonscan.h"

static int req_fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

static int req_check_messages(json_object *messages, char *err, size_t errlen)
{
    size_t n;

    if (!json_object_is_type(messages, json_type_array))
        return req_fail(err, errlen, "'messages' must be an array");
    n = json_object_array_length(messages);
    if (n == 0)
        return req_fail(err, errlen, "'messages' must not be empty");
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        json_object *role, *content;

        if (!json_object_is_type(m, json_type_object)) {
            snprintf(err, errlen, "messages[%zu] must be an object", i);
            return -1;
        }
        if (!json_object_object_get_ex(m, "role", &role) ||
            !json_object_is_type(role, json_type_string) ||
            json_object_get_string_len(role) == 0) {
            snprintf(err, errlen, "messages[%zu].role must be a non-empty "
                     "string", i);
            return -1;
        }
        if (json_object_object_get_ex(m, "content", &content) &&
            content != NULL &&
            !json_object_is_type(content, json_type_string) &&
            !json_object_is_type(content, json_type_array)) {
            snprintf(err, errlen, "messages[%zu].content must be a string, "
                     "an array or null", i);
            return -1;
        }
    }
    return 0;
}

int req_validate(const char *body, size_t len, struct req_info *out,
                 char *err, size_t errlen)
{
    json_tokener *tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    json_object *root = NULL, *model, *messages, *stream;
    size_t bad_at = 0;
    bool trailing = false;
    int rc = -1;

    if (tok == NULL)
        return req_fail(err, errlen, "out of memory");
    if (len == 0) {
        req_fail(err, errlen, "request body is empty");
        goto out;
    }
    /* Strict RFC 8259 first: json-c alone would let comments, NUL bytes
     * and trailing commas through, and the worker relies on the same
     * strict grammar when it rewrites the body. */
    if (js_validate_at(body, len, REQ_MAX_DEPTH, &bad_at, &trailing) < 0) {
        if (trailing)
            snprintf(err, errlen, "request body is not valid JSON: "
                     "trailing data after the value at byte %zu", bad_at);
        else if (bad_at >= len)
            snprintf(err, errlen, "request body is not valid JSON: "
                     "unexpected end of input");
        else
            snprintf(err, errlen, "request body is not valid JSON: "
                     "unexpected byte at %zu", bad_at);
        goto out;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        enum json_tokener_error e = json_tokener_get_error(tok);

        snprintf(err, errlen, "request body is not valid JSON: %s",
                 e == json_tokener_continue ? "unexpected end of input"
                                            : json_tokener_error_desc(e));
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        req_fail(err, errlen, "request body must be a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(root, "model", &model) ||
        model == NULL) {
        req_fail(err, errlen, "'model' is required");
        goto out;
    }
    if (!json_object_is_type(model, json_type_string) ||
        json_object_get_string_len(model) == 0) {
        req_fail(err, errlen, "'model' must be a non-empty string");
        goto out;
    }
    if ((size_t)json_object_get_string_len(model) >= sizeof(out->model)) {
        req_fail(err, errlen, "'model' is too long");
        goto out;
    }
    if (!json_object_object_get_ex(root, "messages", &messages) ||
        messages == NULL) {
        req_fail(err, errlen, "'messages' is required");
        goto out;
    }
    if (req_check_messages(messages, err, errlen) < 0)
        goto out;
    out->stream = false;
    if (json_object_object_get_ex(root, "stream", &stream) &&
        stream != NULL) {
        if (!json_object_is_type(stream, json_type_boolean)) {
            req_fail(err, errlen, "'stream' must be true or false");
            goto out;
        }
        out->stream = json_object_get_boolean(stream);
    }
    /* A NUL inside the name would make two spellings of one model. */
    if (strlen(json_object_get_string(model)) !=
        (size_t)json_object_get_string_len(model)) {
        req_fail(err, errlen, "'model' must not contain NUL");
        goto out;
    }
    memcpy(out->model, json_object_get_string(model),
           (size_t)json_object_get_string_len(model) + 1);
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}
