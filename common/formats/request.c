/* request.c - checks a chat-completion body before it is queued, so
 * workers only ever see well-formed requests: in one pass of the strict
 * scanner (jsonscan.c) for the common body, with json-c only for a body
 * whose keys or model name hold escapes (the scanner matches raw bytes),
 * the two giving the same verdicts and messages. */
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

/* The json-c path: every body the scanner path leaves to it. */
static int req_validate_tree(const char *body, size_t len,
                             struct req_info *out, char *err, size_t errlen)
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

/* ---- the scanner path ---- */

/* What the scanner path decided: the body's verdict, or "ask json-c". */
enum { REQ_OK = 0, REQ_BAD = -1, REQ_TREE = 1 };

#define REQ_SPAN_IS(s, st, en, lit) \
    ((en) - (st) == sizeof(lit) - 1 && memcmp((s) + (st), (lit), \
                                              sizeof(lit) - 1) == 0)

struct req_scan {
    char *err;
    size_t errlen;
    size_t seen;             /* elements of messages seen */
};

/* One element of messages: an object with a non-empty string role and a
 * content that is a string, an array or null when present. */
static int req_scan_message(void *arg, size_t i, const char *v, size_t len)
{
    static const char *const keys[] = { "role", "content" };
    struct req_scan *rs = arg;
    size_t st[2], en[2];

    rs->seen++;
    if (v[0] != '{') {
        snprintf(rs->err, rs->errlen, "messages[%zu] must be an object", i);
        return REQ_BAD;
    }
    if (js_find_members(v, len, keys, 2, st, en) < 0)
        return REQ_TREE;      /* a key with an escape */
    /* Any escape stands for at least one byte: "" is the only empty one. */
    if (en[0] == 0 || v[st[0]] != '"' || en[0] - st[0] < 3) {
        snprintf(rs->err, rs->errlen, "messages[%zu].role must be a "
                 "non-empty string", i);
        return REQ_BAD;
    }
    if (en[1] != 0 && v[st[1]] != '"' && v[st[1]] != '[' &&
        !REQ_SPAN_IS(v, st[1], en[1], "null")) {
        snprintf(rs->err, rs->errlen, "messages[%zu].content must be a "
                 "string, an array or null", i);
        return REQ_BAD;
    }
    return REQ_OK;
}

/* The body as the json-c path would judge it, from the spans of one scan;
 * REQ_TREE when it cannot tell. */
static int req_validate_scan(const char *body, size_t len,
                             struct req_info *out, char *err, size_t errlen)
{
    enum { MODEL, MESSAGES, STREAM, KEYS };
    static const char *const keys[KEYS] = { "model", "messages", "stream" };
    size_t st[KEYS], en[KEYS], mlen;
    struct req_scan rs = { err, errlen, 0 };
    int rc;

    if (js_find_members(body, len, keys, KEYS, st, en) < 0)
        return REQ_TREE;     /* not an object, bad JSON, or escaped keys */
    if (en[MODEL] == 0 || REQ_SPAN_IS(body, st[MODEL], en[MODEL], "null"))
        return req_fail(err, errlen, "'model' is required");
    if (body[st[MODEL]] != '"' || en[MODEL] - st[MODEL] < 3)
        return req_fail(err, errlen, "'model' must be a non-empty string");
    mlen = en[MODEL] - st[MODEL] - 2;
    if (memchr(body + st[MODEL] + 1, '\\', mlen) != NULL)
        return REQ_TREE;     /* its bytes are not its value */
    if (mlen >= sizeof(out->model))
        return req_fail(err, errlen, "'model' is too long");
    if (en[MESSAGES] == 0 ||
        REQ_SPAN_IS(body, st[MESSAGES], en[MESSAGES], "null"))
        return req_fail(err, errlen, "'messages' is required");
    if (body[st[MESSAGES]] != '[')
        return req_fail(err, errlen, "'messages' must be an array");
    rc = js_array_each(body + st[MESSAGES], en[MESSAGES] - st[MESSAGES],
                       req_scan_message, &rs);
    if (rc != REQ_OK)
        return rc;
    if (rs.seen == 0)
        return req_fail(err, errlen, "'messages' must not be empty");
    out->stream = false;
    if (en[STREAM] != 0) {
        if (REQ_SPAN_IS(body, st[STREAM], en[STREAM], "true"))
            out->stream = true;
        else if (!REQ_SPAN_IS(body, st[STREAM], en[STREAM], "false") &&
                 !REQ_SPAN_IS(body, st[STREAM], en[STREAM], "null"))
            return req_fail(err, errlen, "'stream' must be true or false");
    }
    memcpy(out->model, body + st[MODEL] + 1, mlen);
    out->model[mlen] = '\0';
    return REQ_OK;
}

int req_validate(const char *body, size_t len, struct req_info *out,
                 char *err, size_t errlen)
{
    int rc = len > 0 ? req_validate_scan(body, len, out, err, errlen)
                     : REQ_TREE;

    return rc == REQ_TREE ? req_validate_tree(body, len, out, err, errlen)
                          : rc;
}
