/* anthropic_stream.c - owns the OpenAI chunk → Anthropic event stream
 * filter of the Anthropic door: which events a chunk gives, the block
 * indexes, and how a stream ends (message_stop or an error event, never
 * a silent cut). */
#include "anthropic_stream.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "anthropic_msg.h"
#include "request.h"
#include "util.h"

#define AS_DONE          "[DONE]"
#define AS_HEX_ESCAPE    "\\u%04x"
#define AS_ESCAPE_MAX    8           /* bytes of the longest escape */
#define AS_CONTROL_END   0x20        /* bytes below need an escape */

static void as_add(struct evbuffer *out, const void *p, size_t len)
{
    UTIL_MUST(evbuffer_add(out, p, len), "anthropic stream output");
}

static void as_puts(struct evbuffer *out, const char *s)
{
    as_add(out, s, strlen(s));
}

void anthropic_stream_json_string(struct evbuffer *out, const char *s,
                                  size_t len)
{
    size_t run = 0;

    as_add(out, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[AS_ESCAPE_MAX];
        int n;

        if (c != '"' && c != '\\' && c >= AS_CONTROL_END)
            continue;
        as_add(out, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            n = snprintf(esc, sizeof(esc), "\\n");
        } else {
            n = snprintf(esc, sizeof(esc), AS_HEX_ESCAPE, c);
        }
        as_add(out, esc, (size_t)n);
    }
    as_add(out, s + run, len - run);
    as_add(out, "\"", 1);
}

static void as_put_int(struct evbuffer *out, long long v)
{
    UTIL_MUST(evbuffer_add_printf(out, "%lld", v) < 0 ? -1 : 0,
              "anthropic stream output");
}

static void as_event_head(struct evbuffer *out, const char *name)
{
    as_puts(out, "event: ");
    as_puts(out, name);
    as_puts(out, "\ndata: {\"type\":\"");
    as_puts(out, name);
    as_puts(out, "\"");
}

static void as_event_end(struct evbuffer *out)
{
    as_puts(out, "}\n\n");
}

static void as_error(struct anthropic_stream *s, const char *message,
                     struct evbuffer *out)
{
    as_puts(out, "event: error\ndata: {\"type\":\"error\",\"error\":"
            "{\"type\":\"api_error\",\"message\":");
    anthropic_stream_json_string(out, message, strlen(message));
    as_puts(out, "}}\n\n");
    s->status = ANTHROPIC_STREAM_FAILED;
}

void anthropic_stream_init(struct anthropic_stream *s, const char *id,
                           const char *model)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s%s", ANTHROPIC_MSG_ID_PREFIX,
             id ? id : "");
    util_strlcpy(s->model, model ? model : "", sizeof(s->model));
    s->text_block = -1;
    s->status = ANTHROPIC_STREAM_MORE;
}

static void as_start(struct anthropic_stream *s, struct evbuffer *out)
{
    if (s->started)
        return;
    s->started = true;
    as_event_head(out, "message_start");
    as_puts(out, ",\"message\":{\"id\":");
    anthropic_stream_json_string(out, s->id, strlen(s->id));
    as_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    anthropic_stream_json_string(out, s->model, strlen(s->model));
    as_puts(out, ",\"content\":[],\"stop_reason\":null,"
            "\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
    as_put_int(out, s->input_tokens);
    as_puts(out, ",\"output_tokens\":0}}");
    as_event_end(out);
}

static void as_block_stop(struct evbuffer *out, int index)
{
    as_event_head(out, "content_block_stop");
    as_puts(out, ",\"index\":");
    as_put_int(out, index);
    as_event_end(out);
}

static void as_delta_head(struct evbuffer *out, int index, const char *type)
{
    as_event_head(out, "content_block_delta");
    as_puts(out, ",\"index\":");
    as_put_int(out, index);
    as_puts(out, ",\"delta\":{\"type\":\"");
    as_puts(out, type);
    as_puts(out, "\",");
}

static void as_text(struct anthropic_stream *s, const char *text, size_t len,
                    struct evbuffer *out)
{
    if (len == 0)
        return;
    if (s->text_block < 0) {
        s->text_block = s->next_block++;
        as_event_head(out, "content_block_start");
        as_puts(out, ",\"index\":");
        as_put_int(out, s->text_block);
        as_puts(out, ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}");
        as_event_end(out);
    }
    as_delta_head(out, s->text_block, "text_delta");
    as_puts(out, "\"text\":");
    anthropic_stream_json_string(out, text, len);
    as_puts(out, "}");
    as_event_end(out);
}

static const char *as_get_str(json_object *obj, const char *key, size_t *len)
{
    json_object *v;

    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* The block of the call with OpenAI index idx, opened when new. -1 when
 * the answer has more calls than it may (the stream then fails). */
static int as_tool_block(struct anthropic_stream *s, int idx,
                         json_object *call, struct evbuffer *out)
{
    json_object *fn = NULL;
    const char *id, *name;
    char made[ANTHROPIC_STREAM_ID_MAX];

    for (int i = 0; i < s->ntools; i++)
        if (s->tools[i].openai_index == idx)
            return s->tools[i].block;
    if (s->ntools == ANTHROPIC_STREAM_TOOLS_MAX)
        return -1;
    if (s->text_block >= 0) {
        as_block_stop(out, s->text_block);
        s->text_block = -1;
    }
    json_object_object_get_ex(call, "function", &fn);
    id = as_get_str(call, "id", NULL);
    name = as_get_str(fn, "name", NULL);
    if (id == NULL) {
        snprintf(made, sizeof(made), "%s%d", ANTHROPIC_MSG_TOOL_ID_PREFIX,
                 s->next_block);
        id = made;
    }
    s->tools[s->ntools].openai_index = idx;
    s->tools[s->ntools].block = s->next_block++;
    as_event_head(out, "content_block_start");
    as_puts(out, ",\"index\":");
    as_put_int(out, s->tools[s->ntools].block);
    as_puts(out, ",\"content_block\":{\"type\":\"tool_use\",\"id\":");
    anthropic_stream_json_string(out, id, strlen(id));
    as_puts(out, ",\"name\":");
    anthropic_stream_json_string(out, name ? name : "",
                                 name ? strlen(name) : 0);
    as_puts(out, ",\"input\":{}}");
    as_event_end(out);
    return s->tools[s->ntools++].block;
}

static int as_tool_calls(struct anthropic_stream *s, json_object *calls,
                         struct evbuffer *out)
{
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *call = json_object_array_get_idx(calls, i);
        json_object *v, *fn = NULL;
        const char *args;
        size_t args_len = 0;
        int idx = (int)i, block;

        if (call == NULL || !json_object_is_type(call, json_type_object))
            continue;
        if (json_object_object_get_ex(call, "index", &v) &&
            json_object_is_type(v, json_type_int))
            idx = json_object_get_int(v);
        block = as_tool_block(s, idx, call, out);
        if (block < 0)
            return -1;
        json_object_object_get_ex(call, "function", &fn);
        args = as_get_str(fn, "arguments", &args_len);
        if (args == NULL || args_len == 0)
            continue;
        as_delta_head(out, block, "input_json_delta");
        as_puts(out, "\"partial_json\":");
        anthropic_stream_json_string(out, args, args_len);
        as_puts(out, "}");
        as_event_end(out);
    }
    return 0;
}

/* The answer is whole: blocks closed in index order, message_delta,
 * message_stop. */
static void as_finish(struct anthropic_stream *s, struct evbuffer *out)
{
    const char *reason, *matched;

    for (int b = 0; b < s->next_block; b++) {
        bool open = b == s->text_block;

        for (int i = 0; i < s->ntools && !open; i++)
            open = s->tools[i].block == b;
        if (open)
            as_block_stop(out, b);
    }
    matched = s->stop_sequence[0] ? s->stop_sequence : NULL;
    reason = s->ntools > 0 ? "tool_use" :
             anthropic_msg_stop_reason(s->finish_reason, matched);
    if (strcmp(reason, "stop_sequence") != 0)
        matched = NULL;
    as_event_head(out, "message_delta");
    as_puts(out, ",\"delta\":{\"stop_reason\":\"");
    as_puts(out, reason);
    as_puts(out, "\",\"stop_sequence\":");
    if (matched != NULL)
        anthropic_stream_json_string(out, matched, strlen(matched));
    else
        as_puts(out, "null");
    as_puts(out, "},\"usage\":{\"input_tokens\":");
    as_put_int(out, s->input_tokens);
    as_puts(out, ",\"output_tokens\":");
    as_put_int(out, s->output_tokens);
    as_puts(out, "}");
    as_event_end(out);
    as_event_head(out, "message_stop");
    as_event_end(out);
    s->status = ANTHROPIC_STREAM_DONE;
}

static void as_usage(struct anthropic_stream *s, json_object *root)
{
    json_object *usage, *v;

    if (!json_object_object_get_ex(root, "usage", &usage) ||
        !json_object_is_type(usage, json_type_object))
        return;
    if (json_object_object_get_ex(usage, "prompt_tokens", &v) &&
        json_object_is_type(v, json_type_int))
        s->input_tokens = json_object_get_int64(v);
    if (json_object_object_get_ex(usage, "completion_tokens", &v) &&
        json_object_is_type(v, json_type_int))
        s->output_tokens = json_object_get_int64(v);
}

/* The message of an error chunk ({"error":{"message"}} or
 * {"error":"..."}), or NULL when root is not one. */
static const char *as_error_message(json_object *root)
{
    json_object *err;
    const char *m;

    if (!json_object_object_get_ex(root, "error", &err) || err == NULL)
        return NULL;
    if (json_object_is_type(err, json_type_string))
        return json_object_get_string(err);
    m = as_get_str(err, "message", NULL);
    return m ? m : "the upstream reported an error";
}

static void as_choice(struct anthropic_stream *s, json_object *choice,
                      struct evbuffer *out)
{
    json_object *delta, *calls;
    const char *finish;
    size_t len = 0;

    if (json_object_object_get_ex(choice, "delta", &delta) &&
        json_object_is_type(delta, json_type_object)) {
        const char *text = as_get_str(delta, "content", &len);

        if (text != NULL)
            as_text(s, text, len, out);
        if (json_object_object_get_ex(delta, "tool_calls", &calls) &&
            json_object_is_type(calls, json_type_array) &&
            as_tool_calls(s, calls, out) < 0) {
            as_error(s, "the answer has more tool calls than the gateway "
                     "translates", out);
            return;
        }
    }
    finish = as_get_str(choice, "finish_reason", NULL);
    if (finish != NULL) {
        const char *matched;

        s->finished = true;
        util_strlcpy(s->finish_reason, finish, sizeof(s->finish_reason));
        matched = as_get_str(choice, "stop_reason", &len);
        if (matched != NULL && len < sizeof(s->stop_sequence))
            memcpy(s->stop_sequence, matched, len + 1);
    }
}

enum anthropic_stream_status anthropic_stream_feed(struct anthropic_stream *s,
                                                   const char *data,
                                                   size_t len,
                                                   struct evbuffer *out)
{
    json_tokener *tok;
    json_object *root = NULL, *choices, *choice;
    const char *message;

    if (s->status != ANTHROPIC_STREAM_MORE)
        return s->status;
    if (len == strlen(AS_DONE) && memcmp(data, AS_DONE, len) == 0) {
        if (!s->finished)
            as_error(s, "the upstream ended its stream before the answer "
                     "was complete", out);
        else
            as_finish(s, out);
        return s->status;
    }
    tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    if (tok == NULL)
        util_oom("json tokener");
    if (len > 0)
        root = json_tokener_parse_ex(tok, data, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(root, json_type_object)) {
        as_error(s, "the upstream sent a stream chunk that is not a JSON "
                 "object", out);
        goto out;
    }
    message = as_error_message(root);
    if (message != NULL) {
        as_error(s, message, out);
        goto out;
    }
    as_usage(s, root);
    as_start(s, out);
    if (json_object_object_get_ex(root, "choices", &choices) &&
        json_object_is_type(choices, json_type_array) &&
        json_object_array_length(choices) > 0) {
        /* n > 1 is not asked for by this door: choice 0 is the answer */
        choice = json_object_array_get_idx(choices, 0);
        if (choice != NULL && json_object_is_type(choice, json_type_object))
            as_choice(s, choice, out);
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    return s->status;
}

enum anthropic_stream_status anthropic_stream_end(struct anthropic_stream *s,
                                                  struct evbuffer *out)
{
    if (s->status != ANTHROPIC_STREAM_MORE)
        return s->status;
    if (s->finished)
        as_finish(s, out);
    else
        as_error(s, "the upstream stream was cut before the answer was "
                 "complete", out);
    return s->status;
}

enum anthropic_stream_status anthropic_stream_fail(struct anthropic_stream *s,
                                                   const char *message,
                                                   struct evbuffer *out)
{
    if (s->status == ANTHROPIC_STREAM_MORE)
        as_error(s, message ? message : "the upstream failed", out);
    return s->status;
}
