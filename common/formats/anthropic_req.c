/* anthropic_req.c - owns the Anthropic door's request rules: which
 * Messages bodies are accepted (and the message a refusal carries), how
 * one becomes an OpenAI chat-completions body, and the count_tokens
 * estimate. One walk does both checking and translating, so the two can
 * never disagree about what a body means. */
#include "anthropic_req.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "request.h"
#include "util.h"

#define AR_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define AR_PATH_MAX   96          /* "messages.12.content.3.source.data" */
#define AR_BUF_FIRST  64          /* first size of a joined text */

/* One walk over a body: the error buffer, the estimate being summed. */
struct ar_walk {
    char *err;
    size_t err_cap;
    long long text_bytes;       /* counted towards the estimate */
    long long images;
    long long messages;
};

static int ar_fail(struct ar_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int ar_fail(struct ar_walk *w, const char *fmt, ...)
{
    if (w->err_cap > 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(w->err, w->err_cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A member's path for messages ("messages.3.content.1"); a path cut
 * to fit is still a usable message. */
static void ar_path(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ar_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 && cap > 0)
        out[0] = '\0';
}

static json_object *ar_new(json_object *o, const char *what)
{
    if (o == NULL)
        util_oom(what);
    return o;
}

static void ar_add(json_object *obj, const char *key, json_object *val)
{
    if (json_object_object_add(obj, key, val) != 0)
        util_oom("anthropic request member");
}

static void ar_push(json_object *arr, json_object *val)
{
    if (json_object_array_add(arr, val) != 0)
        util_oom("anthropic request element");
}

static json_object *ar_str(const char *s, size_t len)
{
    return ar_new(json_object_new_string_len(s, (int)len), "string");
}

static bool ar_is(json_object *o, json_type t)
{
    return o != NULL && json_object_is_type(o, t);
}

/* The member key of obj when it is a string; NULL otherwise. */
static const char *ar_get_str(json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) ||
        !ar_is(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The compact JSON text of o (owned by o). */
static const char *ar_json(json_object *o, size_t *len)
{
    const char *s;

    s = json_object_to_json_string_length(o, AR_JSON_FLAGS, len);

    if (s == NULL)
        util_oom("anthropic request JSON text");
    return s;
}

/* A growable string for joined texts; the caller frees b->s. */
struct ar_buf {
    char *s;
    size_t len, cap;
};

static void ar_buf_add(struct ar_buf *b, const char *s, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : AR_BUF_FIRST;

        while (cap < b->len + len + 1)
            cap *= 2;
        b->s = realloc(b->s, cap);
        if (b->s == NULL)
            util_oom("anthropic request text");
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

/* The type of the content block b at path: b must be an object with a
 * string "type"; NULL after ar_fail when it is not. */
static const char *ar_block_type(struct ar_walk *w, json_object *b,
                                 const char *path)
{
    const char *type;

    if (!ar_is(b, json_type_object)) {
        ar_fail(w, "%s: must be a content block (an object)", path);
        return NULL;
    }
    type = ar_get_str(b, "type");
    if (type == NULL)
        ar_fail(w, "%s.type: Field required", path);
    return type;
}

/* A text block's text (checked) into *text; counts it. */
static int ar_text_block(struct ar_walk *w, json_object *block,
                         const char *path, const char **text, size_t *len)
{
    json_object *t;

    if (!json_object_object_get_ex(block, "text", &t) ||
        !ar_is(t, json_type_string))
        return ar_fail(w, "%s.text: Field required (a string)", path);
    *text = json_object_get_string(t);
    *len = (size_t)json_object_get_string_len(t);
    w->text_bytes += (long long)*len;
    return 0;
}

/* An image block → an OpenAI image_url part (a data: URL for base64). */
static int ar_image_block(struct ar_walk *w, json_object *block,
                          const char *path, json_object **part)
{
    json_object *src, *url_obj;
    const char *type, *url;
    char *data_url = NULL;

    if (!json_object_object_get_ex(block, "source", &src) ||
        !ar_is(src, json_type_object))
        return ar_fail(w, "%s.source: Field required (an object)", path);
    type = ar_get_str(src, "type");
    if (type != NULL && strcmp(type, "base64") == 0) {
        const char *media = ar_get_str(src, "media_type");
        const char *data = ar_get_str(src, "data");

        if (media == NULL || data == NULL)
            return ar_fail(w, "%s.source: base64 images need media_type "
                           "and data (strings)", path);
        if (asprintf(&data_url, "data:%s;base64,%s", media, data) < 0)
            util_oom("image data URL");
        url = data_url;
    } else if (type != NULL && strcmp(type, "url") == 0) {
        url = ar_get_str(src, "url");
        if (url == NULL)
            return ar_fail(w, "%s.source.url: Field required (a string)",
                           path);
    } else {
        return ar_fail(w, "%s.source.type: must be \"base64\" or \"url\"",
                       path);
    }
    w->images++;
    *part = ar_new(json_object_new_object(), "image part");
    url_obj = ar_new(json_object_new_object(), "image_url");
    ar_add(url_obj, "url", ar_str(url, strlen(url)));
    ar_add(*part, "type", ar_str("image_url", strlen("image_url")));
    ar_add(*part, "image_url", url_obj);
    free(data_url);
    return 0;
}

static json_object *ar_text_part(const char *text, size_t len)
{
    json_object *p = ar_new(json_object_new_object(), "text part");

    ar_add(p, "type", ar_str("text", strlen("text")));
    ar_add(p, "text", ar_str(text, len));
    return p;
}

/* Blocks an OpenAI target has no use for and that clients send back as
 * they received them (extended thinking): dropped, not refused. */
static bool ar_dropped_type(const char *type)
{
    return strcmp(type, "thinking") == 0 ||
           strcmp(type, "redacted_thinking") == 0;
}

/* A tool_result block → an OpenAI tool message in msgs; images it holds
 * go to *images (parts of the user message that follows). */
static int ar_tool_result(struct ar_walk *w, json_object *block,
                          const char *path, json_object *msgs,
                          json_object *images)
{
    const char *id = ar_get_str(block, "tool_use_id");
    json_object *content = NULL, *is_error = NULL, *msg;
    struct ar_buf text = { 0 };
    char sub[AR_PATH_MAX];

    if (id == NULL)
        return ar_fail(w, "%s.tool_use_id: Field required (a string)", path);
    if (json_object_object_get_ex(block, "is_error", &is_error) &&
        !ar_is(is_error, json_type_boolean) && is_error != NULL)
        return ar_fail(w, "%s.is_error: must be a boolean", path);
    if (json_object_get_boolean(is_error))
        ar_buf_add(&text, ANTHROPIC_REQ_TOOL_ERROR_PREFIX,
                   strlen(ANTHROPIC_REQ_TOOL_ERROR_PREFIX));
    if (!json_object_object_get_ex(block, "content", &content) ||
        content == NULL) {
        /* no content: an empty result */
    } else if (ar_is(content, json_type_string)) {
        w->text_bytes += json_object_get_string_len(content);
        ar_buf_add(&text, json_object_get_string(content),
                   (size_t)json_object_get_string_len(content));
    } else if (ar_is(content, json_type_array)) {
        size_t n = json_object_array_length(content), texts = 0;

        for (size_t i = 0; i < n; i++) {
            json_object *b = json_object_array_get_idx(content, i), *part;
            const char *type = ar_is(b, json_type_object) ?
                               ar_get_str(b, "type") : NULL;
            const char *t;
            size_t tlen;

            ar_path(sub, sizeof(sub), "%s.content.%zu", path, i);
            if (type == NULL) {
                free(text.s);
                return ar_fail(w, "%s.type: Field required", sub);
            }
            if (strcmp(type, "text") == 0) {
                if (ar_text_block(w, b, sub, &t, &tlen) < 0) {
                    free(text.s);
                    return -1;
                }
                if (texts++ > 0)
                    ar_buf_add(&text, ANTHROPIC_REQ_JOIN,
                               strlen(ANTHROPIC_REQ_JOIN));
                ar_buf_add(&text, t, tlen);
            } else if (strcmp(type, "image") == 0) {
                if (ar_image_block(w, b, sub, &part) < 0) {
                    free(text.s);
                    return -1;
                }
                ar_push(images, part);
            } else {
                free(text.s);
                return ar_fail(w, "%s.type: \"%s\" is not a block a tool "
                               "result can hold (text, image)", sub, type);
            }
        }
    } else {
        free(text.s);
        return ar_fail(w, "%s.content: must be a string or an array of "
                       "blocks", path);
    }
    msg = ar_new(json_object_new_object(), "tool message");
    ar_add(msg, "role", ar_str("tool", strlen("tool")));
    ar_add(msg, "tool_call_id", ar_str(id, strlen(id)));
    ar_add(msg, "content", ar_str(text.s ? text.s : "", text.len));
    ar_push(msgs, msg);
    free(text.s);
    return 0;
}

/* A tool_use block → one entry of an assistant message's tool_calls. */
static int ar_tool_use(struct ar_walk *w, json_object *block,
                       const char *path, json_object *calls)
{
    const char *id = ar_get_str(block, "id");
    const char *name = ar_get_str(block, "name");
    json_object *input, *call, *fn;
    const char *args;
    size_t args_len;

    if (id == NULL)
        return ar_fail(w, "%s.id: Field required (a string)", path);
    if (name == NULL)
        return ar_fail(w, "%s.name: Field required (a string)", path);
    if (!json_object_object_get_ex(block, "input", &input) ||
        !ar_is(input, json_type_object))
        return ar_fail(w, "%s.input: Field required (an object)", path);
    args = ar_json(input, &args_len);
    w->text_bytes += (long long)(args_len + strlen(name));
    call = ar_new(json_object_new_object(), "tool call");
    fn = ar_new(json_object_new_object(), "tool call function");
    ar_add(fn, "name", ar_str(name, strlen(name)));
    ar_add(fn, "arguments", ar_str(args, args_len));
    ar_add(call, "id", ar_str(id, strlen(id)));
    ar_add(call, "type", ar_str("function", strlen("function")));
    ar_add(call, "function", fn);
    ar_push(calls, call);
    return 0;
}

/* The content of a user message as OpenAI messages appended to msgs:
 * tool messages first (they answer the previous assistant turn), then a
 * user message with the rest. One text block stays a string; several
 * blocks, or any image, become content parts. */
static int ar_user_blocks(struct ar_walk *w, json_object *content,
                          const char *path, json_object *msgs)
{
    json_object *parts = ar_new(json_object_new_array(), "parts");
    json_object *images = ar_new(json_object_new_array(), "images");
    size_t n = json_object_array_length(content);
    char sub[AR_PATH_MAX];
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i), *part;
        const char *type, *t;
        size_t tlen;

        ar_path(sub, sizeof(sub), "%s.%zu", path, i);
        type = ar_block_type(w, b, sub);
        if (type == NULL)
            goto out;
        if (strcmp(type, "text") == 0) {
            if (ar_text_block(w, b, sub, &t, &tlen) < 0)
                goto out;
            ar_push(parts, ar_text_part(t, tlen));
        } else if (strcmp(type, "image") == 0) {
            if (ar_image_block(w, b, sub, &part) < 0)
                goto out;
            ar_push(parts, part);
        } else if (strcmp(type, "tool_result") == 0) {
            if (ar_tool_result(w, b, sub, msgs, images) < 0)
                goto out;
        } else if (!ar_dropped_type(type)) {
            ar_fail(w, "%s.type: \"%s\" is not a block a user message can "
                    "hold here (text, image, tool_result)", sub, type);
            goto out;
        }
    }
    for (size_t i = 0; i < json_object_array_length(images); i++)
        ar_push(parts, json_object_get(json_object_array_get_idx(images, i)));
    if (json_object_array_length(parts) > 0) {
        json_object *msg = ar_new(json_object_new_object(), "user message");
        json_object *first = json_object_array_get_idx(parts, 0);
        json_object *val = json_object_get(parts);

        if (json_object_array_length(parts) == 1 &&
            ar_get_str(first, "text") != NULL) {
            json_object_put(val);
            val = json_object_get(json_object_object_get(first, "text"));
        }
        ar_add(msg, "role", ar_str("user", strlen("user")));
        ar_add(msg, "content", val);
        ar_push(msgs, msg);
    }
    rc = 0;
out:
    json_object_put(parts);
    json_object_put(images);
    return rc;
}

/* The content of an assistant message: text blocks joined into content,
 * tool_use blocks into tool_calls (content null when there is no text). */
static int ar_assistant_blocks(struct ar_walk *w, json_object *content,
                               const char *path, json_object *msgs)
{
    json_object *calls = ar_new(json_object_new_array(), "tool calls");
    json_object *msg;
    struct ar_buf text = { 0 };
    size_t n = json_object_array_length(content);
    char sub[AR_PATH_MAX];
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type, *t;
        size_t tlen;

        ar_path(sub, sizeof(sub), "%s.%zu", path, i);
        type = ar_block_type(w, b, sub);
        if (type == NULL)
            goto out;
        if (strcmp(type, "text") == 0) {
            if (ar_text_block(w, b, sub, &t, &tlen) < 0)
                goto out;
            ar_buf_add(&text, t, tlen);
        } else if (strcmp(type, "tool_use") == 0) {
            if (ar_tool_use(w, b, sub, calls) < 0)
                goto out;
        } else if (!ar_dropped_type(type)) {
            ar_fail(w, "%s.type: \"%s\" is not a block an assistant "
                    "message can hold here (text, tool_use)", sub, type);
            goto out;
        }
    }
    msg = ar_new(json_object_new_object(), "assistant message");
    ar_add(msg, "role", ar_str("assistant", strlen("assistant")));
    ar_add(msg, "content", text.s ? ar_str(text.s, text.len) : NULL);
    if (json_object_array_length(calls) > 0)
        ar_add(msg, "tool_calls", json_object_get(calls));
    ar_push(msgs, msg);
    rc = 0;
out:
    free(text.s);
    json_object_put(calls);
    return rc;
}

static int ar_messages(struct ar_walk *w, json_object *arr, json_object *msgs)
{
    size_t n = json_object_array_length(arr);
    char path[AR_PATH_MAX];

    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(arr, i), *content;
        const char *role;
        bool user;

        w->messages++;
        if (!ar_is(m, json_type_object))
            return ar_fail(w, "messages.%zu: must be an object", i);
        role = ar_get_str(m, "role");
        if (role == NULL)
            return ar_fail(w, "messages.%zu.role: Field required", i);
        if (strcmp(role, "user") == 0)
            user = true;
        else if (strcmp(role, "assistant") == 0)
            user = false;
        else
            return ar_fail(w, "messages.%zu.role: must be \"user\" or "
                           "\"assistant\" (a system prompt goes in the "
                           "top-level system)", i);
        ar_path(path, sizeof(path), "messages.%zu.content", i);
        if (!json_object_object_get_ex(m, "content", &content))
            return ar_fail(w, "%s: Field required", path);
        if (ar_is(content, json_type_string)) {
            json_object *msg = ar_new(json_object_new_object(), "message");

            w->text_bytes += json_object_get_string_len(content);
            ar_add(msg, "role", ar_str(role, strlen(role)));
            ar_add(msg, "content", json_object_get(content));
            ar_push(msgs, msg);
        } else if (ar_is(content, json_type_array)) {
            if ((user ? ar_user_blocks : ar_assistant_blocks)(w, content,
                                                              path, msgs) < 0)
                return -1;
        } else {
            return ar_fail(w, "%s: must be a string or an array of content "
                           "blocks", path);
        }
    }
    return 0;
}

/* system (a string or text blocks) → the first OpenAI message. */
static int ar_system(struct ar_walk *w, json_object *sys, json_object *msgs)
{
    json_object *msg;
    struct ar_buf text = { 0 };
    char path[AR_PATH_MAX];

    if (ar_is(sys, json_type_string)) {
        w->text_bytes += json_object_get_string_len(sys);
        ar_buf_add(&text, json_object_get_string(sys),
                   (size_t)json_object_get_string_len(sys));
    } else if (ar_is(sys, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(sys); i++) {
            json_object *b = json_object_array_get_idx(sys, i);
            const char *type = ar_is(b, json_type_object) ?
                               ar_get_str(b, "type") : NULL, *t;
            size_t tlen;

            ar_path(path, sizeof(path), "system.%zu", i);
            if (type == NULL || strcmp(type, "text") != 0) {
                free(text.s);
                return ar_fail(w, "%s: system blocks must be text blocks",
                               path);
            }
            if (ar_text_block(w, b, path, &t, &tlen) < 0) {
                free(text.s);
                return -1;
            }
            if (i > 0)
                ar_buf_add(&text, ANTHROPIC_REQ_JOIN,
                           strlen(ANTHROPIC_REQ_JOIN));
            ar_buf_add(&text, t, tlen);
        }
    } else if (sys != NULL) {
        return ar_fail(w, "system: must be a string or an array of text "
                       "blocks");
    }
    if (text.s == NULL)
        return 0;           /* absent, null or [] */
    msg = ar_new(json_object_new_object(), "system message");
    ar_add(msg, "role", ar_str("system", strlen("system")));
    ar_add(msg, "content", ar_str(text.s, text.len));
    ar_push(msgs, msg);
    free(text.s);
    return 0;
}

/* tools → OpenAI functions; tool_choice → OpenAI's. */
static int ar_tools(struct ar_walk *w, json_object *root, json_object *out)
{
    json_object *tools, *choice;

    if (json_object_object_get_ex(root, "tools", &tools) && tools != NULL) {
        json_object *fns;

        if (!ar_is(tools, json_type_array))
            return ar_fail(w, "tools: must be an array");
        fns = ar_new(json_object_new_array(), "functions");
        for (size_t i = 0; i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i), *schema;
            json_object *fn, *wrap, *desc;
            const char *name, *type;
            size_t slen;

            if (!ar_is(t, json_type_object)) {
                json_object_put(fns);
                return ar_fail(w, "tools.%zu: must be an object", i);
            }
            type = ar_get_str(t, "type");
            name = ar_get_str(t, "name");
            if (type != NULL && strcmp(type, "custom") != 0) {
                json_object_put(fns);
                return ar_fail(w, "tools.%zu.type: \"%s\" (a server tool) "
                               "cannot run on this target", i, type);
            }
            if (name == NULL || !json_object_object_get_ex(t, "input_schema",
                                                           &schema) ||
                !ar_is(schema, json_type_object)) {
                json_object_put(fns);
                return ar_fail(w, "tools.%zu: name (a string) and "
                               "input_schema (an object) are required", i);
            }
            fn = ar_new(json_object_new_object(), "function");
            ar_add(fn, "name", ar_str(name, strlen(name)));
            if (json_object_object_get_ex(t, "description", &desc) &&
                ar_is(desc, json_type_string)) {
                w->text_bytes += json_object_get_string_len(desc);
                ar_add(fn, "description", json_object_get(desc));
            }
            ar_json(schema, &slen);
            w->text_bytes += (long long)(slen + strlen(name));
            ar_add(fn, "parameters", json_object_get(schema));
            wrap = ar_new(json_object_new_object(), "tool");
            ar_add(wrap, "type", ar_str("function", strlen("function")));
            ar_add(wrap, "function", fn);
            ar_push(fns, wrap);
        }
        if (json_object_array_length(fns) > 0)
            ar_add(out, "tools", fns);
        else
            json_object_put(fns);
    }
    if (json_object_object_get_ex(root, "tool_choice", &choice) &&
        choice != NULL) {
        const char *type = ar_is(choice, json_type_object) ?
                           ar_get_str(choice, "type") : NULL;
        json_object *val, *fn, *par;

        if (type == NULL)
            return ar_fail(w, "tool_choice: must be an object with a type");
        if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0) {
            val = ar_str(type, strlen(type));
        } else if (strcmp(type, "any") == 0) {
            val = ar_str("required", strlen("required"));
        } else if (strcmp(type, "tool") == 0) {
            const char *name = ar_get_str(choice, "name");

            if (name == NULL)
                return ar_fail(w, "tool_choice.name: Field required");
            val = ar_new(json_object_new_object(), "tool_choice");
            fn = ar_new(json_object_new_object(), "tool_choice function");
            ar_add(fn, "name", ar_str(name, strlen(name)));
            ar_add(val, "type", ar_str("function", strlen("function")));
            ar_add(val, "function", fn);
        } else {
            return ar_fail(w, "tool_choice.type: must be auto, any, tool or "
                           "none");
        }
        ar_add(out, "tool_choice", val);
        if (json_object_object_get_ex(choice, "disable_parallel_tool_use",
                                      &par) &&
            json_object_get_boolean(par) && strcmp(type, "none") != 0)
            ar_add(out, "parallel_tool_calls",
                   ar_new(json_object_new_boolean(0), "bool"));
    }
    return 0;
}

/* The numbers and small members: max_tokens, temperature, top_p,
 * stop_sequences, metadata.user_id, stream. */
static int ar_params(struct ar_walk *w, json_object *root, json_object *out,
                     bool need_max_tokens, struct anthropic_req_info *info)
{
    static const char *const numbers[] = { "temperature", "top_p" };
    json_object *v, *u;

    if (json_object_object_get_ex(root, "max_tokens", &v) && v != NULL) {
        if (!ar_is(v, json_type_int) || json_object_get_int64(v) < 1)
            return ar_fail(w, "max_tokens: must be an integer >= 1");
        ar_add(out, "max_tokens", json_object_get(v));
        info->max_tokens = json_object_get_int64(v);
    } else if (need_max_tokens) {
        return ar_fail(w, "max_tokens: Field required");
    }
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (!json_object_object_get_ex(root, numbers[i], &v) || v == NULL)
            continue;
        if (!ar_is(v, json_type_int) && !ar_is(v, json_type_double))
            return ar_fail(w, "%s: must be a number", numbers[i]);
        ar_add(out, numbers[i], json_object_get(v));
    }
    if (json_object_object_get_ex(root, "stop_sequences", &v) && v != NULL) {
        if (!ar_is(v, json_type_array))
            return ar_fail(w, "stop_sequences: must be an array of strings");
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!ar_is(json_object_array_get_idx(v, i), json_type_string))
                return ar_fail(w, "stop_sequences.%zu: must be a string", i);
        if (json_object_array_length(v) > 0)
            ar_add(out, "stop", json_object_get(v));
    }
    if (json_object_object_get_ex(root, "metadata", &v) && v != NULL) {
        if (!ar_is(v, json_type_object))
            return ar_fail(w, "metadata: must be an object");
        if (json_object_object_get_ex(v, "user_id", &u) && u != NULL) {
            if (!ar_is(u, json_type_string))
                return ar_fail(w, "metadata.user_id: must be a string");
            ar_add(out, "user", json_object_get(u));
        }
    }
    if (json_object_object_get_ex(root, "stream", &v) && v != NULL) {
        if (!ar_is(v, json_type_boolean))
            return ar_fail(w, "stream: must be a boolean");
        info->stream = json_object_get_boolean(v);
        ar_add(out, "stream", json_object_get(v));
        if (info->stream) {
            json_object *opts = ar_new(json_object_new_object(), "opts");

            ar_add(opts, "include_usage",
                   ar_new(json_object_new_boolean(1), "bool"));
            ar_add(out, "stream_options", opts);
        }
    }
    return 0;
}

/* Parses body as exactly one JSON object (strict, REQ_MAX_DEPTH). */
static json_object *ar_parse(struct ar_walk *w, const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    json_object *root;
    size_t end;

    if (tok == NULL)
        util_oom("json tokener");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = len > 0 ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        ar_fail(w, "the body is not valid JSON");
        goto fail;
    }
    for (end = json_tokener_get_parse_end(tok); end < len; end++)
        if (strchr(" \t\r\n", body[end]) == NULL || body[end] == '\0') {
            ar_fail(w, "the body holds more than one JSON value");
            goto fail;
        }
    if (!json_object_is_type(root, json_type_object)) {
        ar_fail(w, "the body must be a JSON object");
        goto fail;
    }
    json_tokener_free(tok);
    return root;
fail:
    json_object_put(root);
    json_tokener_free(tok);
    return NULL;
}

/* The whole walk; *out_obj is the OpenAI body (the caller puts it). */
static int ar_translate(struct ar_walk *w, const char *body, size_t len,
                        bool need_max_tokens, struct anthropic_req_info *info,
                        json_object **out_obj)
{
    json_object *root = ar_parse(w, body, len), *out, *msgs, *v;
    const char *model;

    *out_obj = NULL;
    if (root == NULL)
        return -1;
    out = ar_new(json_object_new_object(), "openai body");
    msgs = ar_new(json_object_new_array(), "openai messages");
    model = ar_get_str(root, "model");
    if (model == NULL || model[0] == '\0') {
        ar_fail(w, "model: Field required (a non-empty string)");
        goto fail;
    }
    util_strlcpy(info->model, model, sizeof(info->model));
    ar_add(out, "model", ar_str(model, strlen(model)));
    if (json_object_object_get_ex(root, "system", &v) &&
        ar_system(w, v, msgs) < 0)
        goto fail;
    if (!json_object_object_get_ex(root, "messages", &v) ||
        !ar_is(v, json_type_array)) {
        ar_fail(w, "messages: Field required (an array)");
        goto fail;
    }
    if (json_object_array_length(v) == 0) {
        ar_fail(w, "messages: at least one message is required");
        goto fail;
    }
    if (ar_messages(w, v, msgs) < 0)
        goto fail;
    ar_add(out, "messages", msgs);
    msgs = NULL;
    if (ar_params(w, root, out, need_max_tokens, info) < 0 ||
        ar_tools(w, root, out) < 0)
        goto fail;
    json_object_put(root);
    *out_obj = out;
    return 0;
fail:
    json_object_put(msgs);
    json_object_put(out);
    json_object_put(root);
    return -1;
}

int anthropic_req_to_openai(const char *body, size_t len, char **out,
                            size_t *out_len, struct anthropic_req_info *info,
                            char *err, size_t err_cap)
{
    struct ar_walk w = { .err = err, .err_cap = err_cap };
    struct anthropic_req_info local;
    json_object *obj;
    const char *s;
    size_t n;

    if (info == NULL)
        info = &local;
    memset(info, 0, sizeof(*info));
    if (err_cap > 0)
        err[0] = '\0';
    *out = NULL;
    *out_len = 0;
    if (ar_translate(&w, body, len, true, info, &obj) < 0)
        return -1;
    s = ar_json(obj, &n);
    *out = malloc(n + 1);
    if (*out == NULL)
        util_oom("openai body");
    memcpy(*out, s, n + 1);
    *out_len = n;
    json_object_put(obj);
    return 0;
}

int anthropic_req_count_tokens(const char *body, size_t len, long long *tokens,
                               char *err, size_t err_cap)
{
    struct ar_walk w = { .err = err, .err_cap = err_cap };
    struct anthropic_req_info info;
    json_object *obj;

    memset(&info, 0, sizeof(info));
    if (err_cap > 0)
        err[0] = '\0';
    *tokens = 0;
    if (ar_translate(&w, body, len, false, &info, &obj) < 0)
        return -1;
    json_object_put(obj);
    *tokens = (w.text_bytes + ANTHROPIC_REQ_BYTES_PER_TOKEN - 1) /
              ANTHROPIC_REQ_BYTES_PER_TOKEN +
              w.images * ANTHROPIC_REQ_IMAGE_TOKENS +
              w.messages * ANTHROPIC_REQ_MESSAGE_TOKENS;
    return 0;
}
