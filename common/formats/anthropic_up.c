/* anthropic_up.c - owns the OpenAI → Anthropic request rules and the
 * Anthropic → OpenAI answer rules of the `type = "anthropic"` provider
 * when the OpenAI door uses it. */
#include "anthropic_up.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "anthropic_msg.h"
#include "anthropic_req.h"
#include "request.h"
#include "util.h"

#define AU_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define AU_DATA_URL   "data:"
#define AU_BASE64_TAG ";base64,"
#define AU_PATH_MAX   64          /* "messages.12" */

static json_object *au_new(json_object *o)
{
    if (o == NULL)
        util_oom("anthropic upstream request");
    return o;
}

static void au_add(json_object *obj, const char *key, json_object *val)
{
    if (json_object_object_add(obj, key, val) != 0)
        util_oom("anthropic upstream member");
}

static void au_push(json_object *arr, json_object *val)
{
    if (json_object_array_add(arr, val) != 0)
        util_oom("anthropic upstream element");
}

static json_object *au_str(const char *s)
{
    return au_new(json_object_new_string(s));
}

static json_object *au_str_len(const char *s, size_t len)
{
    return au_new(json_object_new_string_len(s, (int)len));
}

static bool au_is(json_object *o, json_type t)
{
    return o != NULL && json_object_is_type(o, t);
}

static const char *au_get_str(json_object *obj, const char *key)
{
    json_object *v;

    if (!au_is(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) ||
        !au_is(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int au_fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int au_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (cap > 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Parses s as one strict JSON value; NULL when it is not. */
static json_object *au_parse(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    json_object *o = NULL;

    if (tok == NULL)
        util_oom("json tokener");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    if (len > 0)
        o = json_tokener_parse_ex(tok, s, (int)len);
    if (o != NULL && json_tokener_get_error(tok) == json_tokener_success) {
        size_t end;

        for (end = json_tokener_get_parse_end(tok); end < len; end++)
            if (strchr(" \t\r\n", s[end]) == NULL || s[end] == '\0')
                break;
        if (end == len) {
            json_tokener_free(tok);
            return o;
        }
    }
    json_object_put(o);
    json_tokener_free(tok);
    return NULL;
}

static json_object *au_text_block(const char *text, size_t len)
{
    json_object *b = au_new(json_object_new_object());

    au_add(b, "type", au_str("text"));
    au_add(b, "text", au_str_len(text, len));
    return b;
}

/* An image_url part → an image block (base64 source for data: URLs). */
static json_object *au_image_block(const char *url)
{
    json_object *b = au_new(json_object_new_object());
    json_object *src = au_new(json_object_new_object());
    const char *tag = strstr(url, AU_BASE64_TAG);

    if (strncmp(url, AU_DATA_URL, strlen(AU_DATA_URL)) == 0 && tag != NULL) {
        const char *media = url + strlen(AU_DATA_URL);

        au_add(src, "type", au_str("base64"));
        au_add(src, "media_type", au_str_len(media, (size_t)(tag - media)));
        au_add(src, "data", au_str(tag + strlen(AU_BASE64_TAG)));
    } else {
        au_add(src, "type", au_str("url"));
        au_add(src, "url", au_str(url));
    }
    au_add(b, "type", au_str("image"));
    au_add(b, "source", src);
    return b;
}

/* content (a string or parts) as blocks appended to blocks. */
static int au_content(json_object *content, json_object *blocks,
                      const char *path, char *err, size_t cap)
{
    if (content == NULL)
        return 0;
    if (au_is(content, json_type_string)) {
        if (json_object_get_string_len(content) > 0)
            au_push(blocks, au_text_block(json_object_get_string(content),
                    (size_t)json_object_get_string_len(content)));
        return 0;
    }
    if (!au_is(content, json_type_array))
        return au_fail(err, cap, "%s: must be a string or an array of "
                       "parts", path);
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *p = json_object_array_get_idx(content, i), *iu;
        const char *type = au_get_str(p, "type"), *text, *url;

        if (type != NULL && strcmp(type, "text") == 0 &&
            (text = au_get_str(p, "text")) != NULL) {
            au_push(blocks, au_text_block(text, strlen(text)));
        } else if (type != NULL && strcmp(type, "image_url") == 0 &&
                   json_object_object_get_ex(p, "image_url", &iu) &&
                   ((url = au_get_str(iu, "url")) != NULL ||
                    (au_is(iu, json_type_string) &&
                     (url = json_object_get_string(iu)) != NULL))) {
            au_push(blocks, au_image_block(url));
        } else {
            return au_fail(err, cap, "%s.%zu: only text and image_url "
                           "parts can be sent to this target", path, i);
        }
    }
    return 0;
}

/* The text of a system message's content, appended to *sys. */
static void au_system_text(json_object *content, json_object **sys)
{
    json_object *texts = au_new(json_object_new_array());

    au_content(content, texts, "", NULL, 0);
    for (size_t i = 0; i < json_object_array_length(texts); i++) {
        const char *t = au_get_str(json_object_array_get_idx(texts, i),
                                   "text");
        const char *prev = *sys ? json_object_get_string(*sys) : NULL;
        char *joined;

        if (t == NULL)
            continue;
        if (asprintf(&joined, "%s%s%s", prev ? prev : "",
                     prev ? ANTHROPIC_REQ_JOIN : "", t) < 0)
            util_oom("system prompt");
        json_object_put(*sys);
        *sys = au_str(joined);
        free(joined);
    }
    json_object_put(texts);
}

/* A tool call's input from its arguments text (a new reference). */
static json_object *au_tool_input(const char *args)
{
    json_object *o, *wrap;

    if (args == NULL || args[0] == '\0')
        return au_new(json_object_new_object());
    o = au_parse(args, strlen(args));
    if (au_is(o, json_type_object))
        return o;
    json_object_put(o);
    wrap = au_new(json_object_new_object());
    au_add(wrap, ANTHROPIC_MSG_RAW_ARGS_KEY, au_str(args));
    return wrap;
}

static int au_tool_calls(json_object *calls, json_object *blocks,
                         const char *path, char *err, size_t cap)
{
    if (calls == NULL)
        return 0;
    if (!au_is(calls, json_type_array))
        return au_fail(err, cap, "%s.tool_calls: must be an array", path);
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *c = json_object_array_get_idx(calls, i), *fn = NULL, *b;
        const char *id = au_get_str(c, "id"), *name;

        if (au_is(c, json_type_object))
            json_object_object_get_ex(c, "function", &fn);
        name = au_get_str(fn, "name");
        if (id == NULL || name == NULL)
            return au_fail(err, cap, "%s.tool_calls.%zu: id and "
                           "function.name are required", path, i);
        b = au_new(json_object_new_object());
        au_add(b, "type", au_str("tool_use"));
        au_add(b, "id", au_str(id));
        au_add(b, "name", au_str(name));
        au_add(b, "input", au_tool_input(au_get_str(fn, "arguments")));
        au_push(blocks, b);
    }
    return 0;
}

/* A tool message → a tool_result block. */
static int au_tool_result(json_object *m, json_object *blocks,
                          const char *path, char *err, size_t cap)
{
    const char *id = au_get_str(m, "tool_call_id");
    json_object *content = NULL, *b, *parts;

    if (id == NULL)
        return au_fail(err, cap, "%s.tool_call_id: required", path);
    json_object_object_get_ex(m, "content", &content);
    b = au_new(json_object_new_object());
    au_add(b, "type", au_str("tool_result"));
    au_add(b, "tool_use_id", au_str(id));
    if (au_is(content, json_type_string)) {
        au_add(b, "content", json_object_get(content));
    } else if (content != NULL) {
        parts = au_new(json_object_new_array());
        if (au_content(content, parts, path, err, cap) < 0) {
            json_object_put(parts);
            json_object_put(b);
            return -1;
        }
        au_add(b, "content", parts);
    }
    au_push(blocks, b);
    return 0;
}

static int au_messages(json_object *msgs, json_object *out,
                       json_object **sys, char *err, size_t cap)
{
    json_object *tool_turn = NULL;      /* the user turn of tool results */
    char path[AU_PATH_MAX];

    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *content = NULL;
        json_object *calls = NULL, *blocks, *turn;
        const char *role = au_get_str(m, "role");

        snprintf(path, sizeof(path), "messages.%zu", i);
        if (role == NULL)
            return au_fail(err, cap, "%s.role: required", path);
        json_object_object_get_ex(m, "content", &content);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            au_system_text(content, sys);
            continue;
        }
        if (strcmp(role, "tool") == 0) {
            if (tool_turn == NULL) {
                tool_turn = au_new(json_object_new_object());
                au_add(tool_turn, "role", au_str("user"));
                au_add(tool_turn, "content",
                       au_new(json_object_new_array()));
                au_push(out, tool_turn);
            }
            if (au_tool_result(m, json_object_object_get(tool_turn,
                               "content"), path, err, cap) < 0)
                return -1;
            continue;
        }
        tool_turn = NULL;
        if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
            return au_fail(err, cap, "%s.role: \"%s\" cannot be sent to "
                           "this target", path, role);
        blocks = au_new(json_object_new_array());
        if (strcmp(role, "assistant") == 0)
            json_object_object_get_ex(m, "tool_calls", &calls);
        if (au_content(content, blocks, path, err, cap) < 0 ||
            au_tool_calls(calls, blocks, path, err, cap) < 0) {
            json_object_put(blocks);
            return -1;
        }
        turn = au_new(json_object_new_object());
        au_add(turn, "role", au_str(role));
        au_add(turn, "content", blocks);
        au_push(out, turn);
    }
    return 0;
}

static int au_tools(json_object *root, json_object *out, char *err,
                    size_t cap)
{
    json_object *tools, *choice, *par, *tc = NULL;

    if (json_object_object_get_ex(root, "tools", &tools) && tools != NULL) {
        json_object *list;

        if (!au_is(tools, json_type_array))
            return au_fail(err, cap, "tools: must be an array");
        list = au_new(json_object_new_array());
        au_add(out, "tools", list);
        for (size_t i = 0; i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i), *fn = NULL;
            json_object *params = NULL, *d, *tool;
            const char *name;

            if (au_is(t, json_type_object))
                json_object_object_get_ex(t, "function", &fn);
            name = au_get_str(fn, "name");
            if (name == NULL)
                return au_fail(err, cap, "tools.%zu.function.name: "
                               "required", i);
            tool = au_new(json_object_new_object());
            au_add(tool, "name", au_str(name));
            if ((d = json_object_object_get(fn, "description")) != NULL &&
                au_is(d, json_type_string))
                au_add(tool, "description", json_object_get(d));
            json_object_object_get_ex(fn, "parameters", &params);
            if (au_is(params, json_type_object)) {
                au_add(tool, "input_schema", json_object_get(params));
            } else {
                json_object *schema = au_new(json_object_new_object());

                au_add(schema, "type", au_str("object"));
                au_add(tool, "input_schema", schema);
            }
            au_push(list, tool);
        }
    }
    if (json_object_object_get_ex(root, "tool_choice", &choice) &&
        choice != NULL) {
        const char *s = au_is(choice, json_type_string) ?
                        json_object_get_string(choice) : NULL;
        json_object *fn = NULL;

        tc = au_new(json_object_new_object());
        au_add(out, "tool_choice", tc);
        if (s != NULL && (strcmp(s, "auto") == 0 || strcmp(s, "none") == 0)) {
            au_add(tc, "type", au_str(s));
        } else if (s != NULL && strcmp(s, "required") == 0) {
            au_add(tc, "type", au_str("any"));
        } else if (au_is(choice, json_type_object) &&
                   json_object_object_get_ex(choice, "function", &fn) &&
                   au_get_str(fn, "name") != NULL) {
            au_add(tc, "type", au_str("tool"));
            au_add(tc, "name", au_str(au_get_str(fn, "name")));
        } else {
            return au_fail(err, cap, "tool_choice: must be auto, none, "
                           "required or a function");
        }
    }
    if (json_object_object_get_ex(root, "parallel_tool_calls", &par) &&
        au_is(par, json_type_boolean) && !json_object_get_boolean(par)) {
        if (tc == NULL) {
            tc = au_new(json_object_new_object());
            au_add(tc, "type", au_str("auto"));
            au_add(out, "tool_choice", tc);
        }
        if (strcmp(au_get_str(tc, "type"), "none") != 0)
            au_add(tc, "disable_parallel_tool_use",
                   au_new(json_object_new_boolean(1)));
    }
    return 0;
}

static int au_params(json_object *root, json_object *out, bool *stream,
                     char *err, size_t cap)
{
    json_object *v;
    long long max_tokens = ANTHROPIC_UP_DEFAULT_MAX_TOKENS;

    if ((json_object_object_get_ex(root, "max_tokens", &v) && v != NULL) ||
        (json_object_object_get_ex(root, "max_completion_tokens", &v) &&
         v != NULL)) {
        if (!au_is(v, json_type_int) || json_object_get_int64(v) < 1)
            return au_fail(err, cap, "max_tokens: must be an integer >= 1");
        max_tokens = json_object_get_int64(v);
    }
    au_add(out, "max_tokens", au_new(json_object_new_int64(max_tokens)));
    if (json_object_object_get_ex(root, "temperature", &v) && v != NULL) {
        double t = json_object_get_double(v);

        if (!au_is(v, json_type_int) && !au_is(v, json_type_double))
            return au_fail(err, cap, "temperature: must be a number");
        if (t > ANTHROPIC_UP_TEMPERATURE_MAX)
            t = ANTHROPIC_UP_TEMPERATURE_MAX;
        au_add(out, "temperature", au_new(json_object_new_double(t)));
    }
    if (json_object_object_get_ex(root, "top_p", &v) &&
        (au_is(v, json_type_int) || au_is(v, json_type_double)))
        au_add(out, "top_p", json_object_get(v));
    if (json_object_object_get_ex(root, "stop", &v) && v != NULL) {
        json_object *seq = au_new(json_object_new_array());

        au_add(out, "stop_sequences", seq);
        if (au_is(v, json_type_string)) {
            au_push(seq, json_object_get(v));
        } else if (au_is(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *s = json_object_array_get_idx(v, i);

                if (!au_is(s, json_type_string))
                    return au_fail(err, cap, "stop.%zu: must be a string",
                                   i);
                au_push(seq, json_object_get(s));
            }
        } else {
            return au_fail(err, cap, "stop: must be a string or an array");
        }
    }
    if (json_object_object_get_ex(root, "user", &v) &&
        au_is(v, json_type_string)) {
        json_object *meta = au_new(json_object_new_object());

        au_add(meta, "user_id", json_object_get(v));
        au_add(out, "metadata", meta);
    }
    *stream = false;
    if (json_object_object_get_ex(root, "stream", &v) && v != NULL) {
        if (!au_is(v, json_type_boolean))
            return au_fail(err, cap, "stream: must be a boolean");
        *stream = json_object_get_boolean(v);
        au_add(out, "stream", json_object_get(v));
    }
    return 0;
}

static int au_finish_text(json_object *obj, char **out, size_t *out_len)
{
    size_t n;
    const char *s = json_object_to_json_string_length(obj, AU_JSON_FLAGS,
                                                      &n);

    if (s == NULL)
        util_oom("anthropic upstream text");
    *out = malloc(n + 1);
    if (*out == NULL)
        util_oom("anthropic upstream text");
    memcpy(*out, s, n + 1);
    *out_len = n;
    return 0;
}

int anthropic_up_request(const char *body, size_t len, const char *model,
                         char **out, size_t *out_len, bool *stream,
                         char *err, size_t err_cap)
{
    json_object *root, *msgs, *o, *list, *sys = NULL;
    const char *client_model;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    *stream = false;
    if (err_cap > 0)
        err[0] = '\0';
    root = au_parse(body, len);
    if (!au_is(root, json_type_object)) {
        json_object_put(root);
        return au_fail(err, err_cap, "the body must be a JSON object");
    }
    o = au_new(json_object_new_object());
    client_model = au_get_str(root, "model");
    if (model == NULL && client_model == NULL) {
        au_fail(err, err_cap, "model: required");
        goto out;
    }
    au_add(o, "model", au_str(model ? model : client_model));
    if (!json_object_object_get_ex(root, "messages", &msgs) ||
        !au_is(msgs, json_type_array)) {
        au_fail(err, err_cap, "messages: required (an array)");
        goto out;
    }
    list = au_new(json_object_new_array());
    au_add(o, "messages", list);
    if (au_messages(msgs, list, &sys, err, err_cap) < 0)
        goto out;
    if (sys != NULL) {
        au_add(o, "system", sys);
        sys = NULL;
    }
    if (au_params(root, o, stream, err, err_cap) < 0 ||
        au_tools(root, o, err, err_cap) < 0)
        goto out;
    rc = au_finish_text(o, out, out_len);
out:
    json_object_put(sys);
    json_object_put(o);
    json_object_put(root);
    return rc;
}

const char *anthropic_up_finish_reason(const char *stop_reason)
{
    if (stop_reason == NULL)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop";
}

static long long au_get_int(json_object *obj, const char *key)
{
    json_object *v;

    if (!au_is(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !au_is(v, json_type_int))
        return 0;
    return json_object_get_int64(v);
}

int anthropic_up_answer(const char *body, size_t len, const char *model,
                        int64_t created, char **out, size_t *out_len)
{
    json_object *root = au_parse(body, len), *content, *usage = NULL;
    json_object *o, *choices, *choice, *msg, *calls;
    const char *type = au_get_str(root, "type"), *id;
    char *text = NULL;
    size_t text_len = 0;
    long long in, outn;

    *out = NULL;
    *out_len = 0;
    if (type == NULL || strcmp(type, "message") != 0 ||
        !json_object_object_get_ex(root, "content", &content) ||
        !au_is(content, json_type_array)) {
        json_object_put(root);
        return -1;
    }
    calls = au_new(json_object_new_array());
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *b = json_object_array_get_idx(content, i), *input, *c;
        json_object *fn;
        const char *bt = au_get_str(b, "type"), *t;

        if (bt == NULL)
            continue;
        if (strcmp(bt, "text") == 0 && (t = au_get_str(b, "text")) != NULL) {
            size_t n = strlen(t);
            char *grown = realloc(text, text_len + n + 1);

            if (grown == NULL)
                util_oom("answer text");
            text = grown;
            memcpy(text + text_len, t, n + 1);
            text_len += n;
        } else if (strcmp(bt, "tool_use") == 0) {
            size_t alen;
            const char *args = "{}";

            if (json_object_object_get_ex(b, "input", &input) &&
                input != NULL)
                args = json_object_to_json_string_length(input,
                                                         AU_JSON_FLAGS,
                                                         &alen);
            c = au_new(json_object_new_object());
            fn = au_new(json_object_new_object());
            au_add(fn, "name", au_str(au_get_str(b, "name") ?
                                      au_get_str(b, "name") : ""));
            au_add(fn, "arguments", au_str(args ? args : "{}"));
            au_add(c, "id", au_str(au_get_str(b, "id") ?
                                   au_get_str(b, "id") : ""));
            au_add(c, "type", au_str("function"));
            au_add(c, "function", fn);
            au_push(calls, c);
        }
    }
    msg = au_new(json_object_new_object());
    au_add(msg, "role", au_str("assistant"));
    au_add(msg, "content", text ? au_str_len(text, text_len) : NULL);
    free(text);
    if (json_object_array_length(calls) > 0)
        au_add(msg, "tool_calls", calls);
    else
        json_object_put(calls);
    choice = au_new(json_object_new_object());
    au_add(choice, "index", au_new(json_object_new_int(0)));
    au_add(choice, "message", msg);
    au_add(choice, "finish_reason", au_str(anthropic_up_finish_reason(
        au_get_str(root, "stop_reason"))));
    choices = au_new(json_object_new_array());
    au_push(choices, choice);
    id = au_get_str(root, "id");
    o = au_new(json_object_new_object());
    au_add(o, "id", au_str(id ? id : ""));
    au_add(o, "object", au_str("chat.completion"));
    au_add(o, "created", au_new(json_object_new_int64(created)));
    au_add(o, "model", au_str(model ? model : ""));
    au_add(o, "choices", choices);
    json_object_object_get_ex(root, "usage", &usage);
    in = au_get_int(usage, "input_tokens") +
         au_get_int(usage, "cache_read_input_tokens") +
         au_get_int(usage, "cache_creation_input_tokens");
    outn = au_get_int(usage, "output_tokens");
    usage = au_new(json_object_new_object());
    au_add(usage, "prompt_tokens", au_new(json_object_new_int64(in)));
    au_add(usage, "completion_tokens", au_new(json_object_new_int64(outn)));
    au_add(usage, "total_tokens", au_new(json_object_new_int64(in + outn)));
    au_add(o, "usage", usage);
    au_finish_text(o, out, out_len);
    json_object_put(o);
    json_object_put(root);
    return 0;
}
