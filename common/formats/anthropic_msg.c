/* anthropic_msg.c - owns the translation of a whole OpenAI chat
 * completion into the Anthropic message the door answers with, and the
 * finish_reason → stop_reason table; and the model an Anthropic
 * target's message names made the client's. */
#include "anthropic_msg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "request.h"
#include "util.h"

#define AM_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define AM_TOOL_ID_MAX 64

const char *anthropic_msg_stop_reason(const char *finish_reason,
                                      const char *matched)
{
    if (finish_reason == NULL)
        return "end_turn";
    if (strcmp(finish_reason, "stop") == 0)
        return matched != NULL ? "stop_sequence" : "end_turn";
    if (strcmp(finish_reason, "length") == 0)
        return "max_tokens";
    if (strcmp(finish_reason, "tool_calls") == 0 ||
        strcmp(finish_reason, "function_call") == 0)
        return "tool_use";
    return "end_turn";
}

static json_object *am_new(json_object *o)
{
    if (o == NULL)
        util_oom("anthropic message");
    return o;
}

static void am_add(json_object *obj, const char *key, json_object *val)
{
    if (json_object_object_add(obj, key, val) != 0)
        util_oom("anthropic message member");
}

static json_object *am_str(const char *s)
{
    return am_new(json_object_new_string(s));
}

static const char *am_get_str(json_object *obj, const char *key)
{
    json_object *v;

    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static long long am_get_int(json_object *obj, const char *key)
{
    json_object *v;

    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_int))
        return 0;
    return json_object_get_int64(v);
}

/* The input object a tool call's arguments stand for (a new reference). */
static json_object *am_tool_input(const char *args)
{
    json_tokener *tok;
    json_object *o = NULL, *wrap;
    size_t len = args ? strlen(args) : 0;

    if (len == 0)
        return am_new(json_object_new_object());
    tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    if (tok == NULL)
        util_oom("json tokener");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, args, (int)len);
    if (o != NULL && json_tokener_get_error(tok) == json_tokener_success) {
        size_t end;

        for (end = json_tokener_get_parse_end(tok); end < len; end++)
            if (strchr(" \t\r\n", args[end]) == NULL)
                break;
        if (end == len && json_object_is_type(o, json_type_object)) {
            json_tokener_free(tok);
            return o;
        }
    }
    json_object_put(o);
    json_tokener_free(tok);
    wrap = am_new(json_object_new_object());
    am_add(wrap, ANTHROPIC_MSG_RAW_ARGS_KEY, am_str(args));
    return wrap;
}

/* message.content (a string or an array of text parts) as one text
 * block appended to blocks, when it holds any text. */
static void am_text(json_object *content, json_object *blocks)
{
    json_object *block;

    if (content == NULL)
        return;
    if (json_object_is_type(content, json_type_string)) {
        if (json_object_get_string_len(content) == 0)
            return;
        block = am_new(json_object_new_object());
        am_add(block, "type", am_str("text"));
        am_add(block, "text", json_object_get(content));
        json_object_array_add(blocks, block);
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i);
        const char *text = am_get_str(part, "text");

        if (text == NULL || text[0] == '\0')
            continue;
        block = am_new(json_object_new_object());
        am_add(block, "type", am_str("text"));
        am_add(block, "text", am_str(text));
        if (json_object_array_add(blocks, block) != 0)
            util_oom("anthropic message block");
    }
}

/* message.tool_calls as tool_use blocks; how many were added. */
static size_t am_tool_calls(json_object *calls, json_object *blocks)
{
    size_t added = 0;

    if (calls == NULL || !json_object_is_type(calls, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *call = json_object_array_get_idx(calls, i), *fn, *block;
        const char *id = am_get_str(call, "id"), *name;
        char made[AM_TOOL_ID_MAX];

        if (call == NULL || !json_object_object_get_ex(call, "function", &fn))
            continue;
        name = am_get_str(fn, "name");
        if (id == NULL) {
            snprintf(made, sizeof(made), "%s%zu",
                     ANTHROPIC_MSG_TOOL_ID_PREFIX, i);
            id = made;
        }
        block = am_new(json_object_new_object());
        am_add(block, "type", am_str("tool_use"));
        am_add(block, "id", am_str(id));
        am_add(block, "name", am_str(name ? name : ""));
        am_add(block, "input", am_tool_input(am_get_str(fn, "arguments")));
        if (json_object_array_add(blocks, block) != 0)
            util_oom("anthropic message block");
        added++;
    }
    return added;
}

int anthropic_msg_from_openai(const char *body, size_t len, const char *model,
                              const char *id, char **out, size_t *out_len)
{
    json_tokener *tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    json_object *root = NULL, *choices, *choice, *message, *msg, *blocks;
    json_object *usage = NULL, *content = NULL, *calls = NULL, *u;
    const char *finish, *matched, *s;
    char *msg_id = NULL;
    size_t n, tools;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    if (tok == NULL)
        util_oom("json tokener");
    if (len > 0)
        root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) ||
        json_object_array_length(choices) == 0)
        goto out;
    choice = json_object_array_get_idx(choices, 0);
    if (choice == NULL || !json_object_is_type(choice, json_type_object) ||
        !json_object_object_get_ex(choice, "message", &message) ||
        !json_object_is_type(message, json_type_object))
        goto out;
    json_object_object_get_ex(message, "content", &content);
    json_object_object_get_ex(message, "tool_calls", &calls);
    json_object_object_get_ex(root, "usage", &usage);

    if (id == NULL)
        id = am_get_str(root, "id");
    if (asprintf(&msg_id, "%s%s", ANTHROPIC_MSG_ID_PREFIX, id ? id : "") < 0)
        util_oom("message id");
    blocks = am_new(json_object_new_array());
    am_text(content, blocks);
    tools = am_tool_calls(calls, blocks);
    finish = am_get_str(choice, "finish_reason");
    matched = am_get_str(choice, "stop_reason");
    msg = am_new(json_object_new_object());
    am_add(msg, "id", am_str(msg_id));
    am_add(msg, "type", am_str("message"));
    am_add(msg, "role", am_str("assistant"));
    am_add(msg, "model", am_str(model ? model : ""));
    am_add(msg, "content", blocks);
    if (tools > 0) {
        am_add(msg, "stop_reason", am_str("tool_use"));
        matched = NULL;
    } else {
        const char *reason = anthropic_msg_stop_reason(finish, matched);

        am_add(msg, "stop_reason", am_str(reason));
        if (strcmp(reason, "stop_sequence") != 0)
            matched = NULL;
    }
    am_add(msg, "stop_sequence", matched ? am_str(matched) : NULL);
    u = am_new(json_object_new_object());
    am_add(u, "input_tokens",
           am_new(json_object_new_int64(am_get_int(usage, "prompt_tokens"))));
    am_add(u, "output_tokens",
           am_new(json_object_new_int64(am_get_int(usage,
                                                   "completion_tokens"))));
    am_add(msg, "usage", u);
    s = json_object_to_json_string_length(msg, AM_JSON_FLAGS, &n);
    if (s == NULL)
        util_oom("anthropic message text");
    *out = malloc(n + 1);
    if (*out == NULL)
        util_oom("anthropic message text");
    memcpy(*out, s, n + 1);
    *out_len = n;
    json_object_put(msg);
    rc = 0;
out:
    free(msg_id);
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

int anthropic_msg_set_model(const char *body, size_t len, const char *model,
                            char **out, size_t *out_len)
{
    struct json_tokener *tok = json_tokener_new();
    json_object *root, *msg;
    const char *s;
    size_t n;

    *out = NULL;
    *out_len = 0;
    if (tok == NULL)
        util_oom("anthropic message parser");
    root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return -1;
    }
    /* message_start carries the message; a plain answer is one. */
    if (!json_object_object_get_ex(root, "message", &msg) ||
        !json_object_is_type(msg, json_type_object))
        msg = root;
    am_add(msg, "model", am_str(model));
    s = json_object_to_json_string_length(root, AM_JSON_FLAGS, &n);
    if (s == NULL)
        util_oom("anthropic message text");
    *out = malloc(n + 1);
    if (*out == NULL)
        util_oom("anthropic message text");
    memcpy(*out, s, n + 1);
    *out_len = n;
    json_object_put(root);
    return 0;
}
