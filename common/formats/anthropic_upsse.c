/* anthropic_upsse.c - owns the Anthropic event → OpenAI chunk stream
 * filter of the `type = "anthropic"` provider behind the OpenAI door. */
#include "anthropic_upsse.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "anthropic_stream.h"
#include "anthropic_up.h"
#include "request.h"
#include "util.h"

static void us_add(struct evbuffer *out, const char *s)
{
    UTIL_MUST(evbuffer_add(out, s, strlen(s)), "openai chunk output");
}

static void us_int(struct evbuffer *out, long long v)
{
    UTIL_MUST(evbuffer_add_printf(out, "%lld", v) < 0 ? -1 : 0,
              "openai chunk output");
}

static void us_fail(struct anthropic_upsse *s, const char *type,
                    const char *message)
{
    util_strlcpy(s->error_type, type, sizeof(s->error_type));
    util_strlcpy(s->error_message, message, sizeof(s->error_message));
    s->status = ANTHROPIC_UPSSE_FAILED;
}

void anthropic_upsse_init(struct anthropic_upsse *s, const char *model,
                          int64_t created)
{
    memset(s, 0, sizeof(*s));
    util_strlcpy(s->model, model ? model : "", sizeof(s->model));
    s->created = created;
    for (size_t i = 0; i < ANTHROPIC_UPSSE_BLOCKS_MAX; i++)
        s->tool_of_block[i] = ANTHROPIC_UPSSE_NOT_TOOL;
}

/* "data: {"id":..,"object":"chat.completion.chunk",..,"choices":[{
 * "index":0,"delta":" - the caller writes the delta and closes. */
static void us_chunk_head(struct anthropic_upsse *s, struct evbuffer *out)
{
    us_add(out, "data: {\"id\":");
    anthropic_stream_json_string(out, s->id, strlen(s->id));
    us_add(out, ",\"object\":\"chat.completion.chunk\",\"created\":");
    us_int(out, s->created);
    us_add(out, ",\"model\":");
    anthropic_stream_json_string(out, s->model, strlen(s->model));
    us_add(out, ",\"choices\":[{\"index\":0,\"delta\":");
}

static void us_chunk_end(struct evbuffer *out, const char *finish)
{
    us_add(out, ",\"finish_reason\":");
    if (finish != NULL) {
        us_add(out, "\"");
        us_add(out, finish);
        us_add(out, "\"");
    } else {
        us_add(out, "null");
    }
    us_add(out, "}]}\n\n");
}

static const char *us_str(json_object *o, const char *key, size_t *len)
{
    json_object *v;

    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static long long us_int_of(json_object *o, const char *key)
{
    json_object *v;

    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_int))
        return 0;
    return json_object_get_int64(v);
}

static void us_message_start(struct anthropic_upsse *s, json_object *root,
                             struct evbuffer *out)
{
    json_object *msg = NULL, *usage = NULL;
    const char *id;

    json_object_object_get_ex(root, "message", &msg);
    id = us_str(msg, "id", NULL);
    util_strlcpy(s->id, id ? id : "", sizeof(s->id));
    if (msg != NULL && json_object_is_type(msg, json_type_object))
        json_object_object_get_ex(msg, "usage", &usage);
    s->input_tokens = us_int_of(usage, "input_tokens") +
                      us_int_of(usage, "cache_read_input_tokens") +
                      us_int_of(usage, "cache_creation_input_tokens");
    s->output_tokens = us_int_of(usage, "output_tokens");
    s->started = true;
    us_chunk_head(s, out);
    us_add(out, "{\"role\":\"assistant\",\"content\":\"\"}");
    us_chunk_end(out, NULL);
}

/* The block index of root, or -1 when absent or past the bound. */
static int us_index(json_object *root)
{
    json_object *v;
    long long i;

    if (!json_object_object_get_ex(root, "index", &v) ||
        !json_object_is_type(v, json_type_int))
        return -1;
    i = json_object_get_int64(v);
    return i >= 0 && i < ANTHROPIC_UPSSE_BLOCKS_MAX ? (int)i : -1;
}

static void us_block_start(struct anthropic_upsse *s, int index,
                           json_object *root, struct evbuffer *out)
{
    json_object *block = NULL;
    const char *type, *id, *name;
    size_t len = 0;

    json_object_object_get_ex(root, "content_block", &block);
    type = us_str(block, "type", NULL);
    if (type == NULL)
        return;
    if (strcmp(type, "text") == 0) {
        const char *text = us_str(block, "text", &len);

        if (text == NULL || len == 0)
            return;
        us_chunk_head(s, out);
        us_add(out, "{\"content\":");
        anthropic_stream_json_string(out, text, len);
        us_add(out, "}");
        us_chunk_end(out, NULL);
        return;
    }
    if (strcmp(type, "tool_use") != 0 ||
        s->tool_of_block[index] != ANTHROPIC_UPSSE_NOT_TOOL)
        return;
    s->tool_of_block[index] = (int16_t)s->ntools++;
    id = us_str(block, "id", NULL);
    name = us_str(block, "name", NULL);
    us_chunk_head(s, out);
    us_add(out, "{\"tool_calls\":[{\"index\":");
    us_int(out, s->tool_of_block[index]);
    us_add(out, ",\"id\":");
    anthropic_stream_json_string(out, id ? id : "", id ? strlen(id) : 0);
    us_add(out, ",\"type\":\"function\",\"function\":{\"name\":");
    anthropic_stream_json_string(out, name ? name : "",
                                 name ? strlen(name) : 0);
    us_add(out, ",\"arguments\":\"\"}}]}");
    us_chunk_end(out, NULL);
}

static void us_block_delta(struct anthropic_upsse *s, int index,
                           json_object *root, struct evbuffer *out)
{
    json_object *delta = NULL;
    const char *type, *piece;
    size_t len = 0;

    json_object_object_get_ex(root, "delta", &delta);
    type = us_str(delta, "type", NULL);
    if (type == NULL)
        return;
    if (strcmp(type, "text_delta") == 0 &&
        (piece = us_str(delta, "text", &len)) != NULL && len > 0) {
        us_chunk_head(s, out);
        us_add(out, "{\"content\":");
        anthropic_stream_json_string(out, piece, len);
        us_add(out, "}");
        us_chunk_end(out, NULL);
    } else if (strcmp(type, "input_json_delta") == 0 &&
               s->tool_of_block[index] != ANTHROPIC_UPSSE_NOT_TOOL &&
               (piece = us_str(delta, "partial_json", &len)) != NULL &&
               len > 0) {
        us_chunk_head(s, out);
        us_add(out, "{\"tool_calls\":[{\"index\":");
        us_int(out, s->tool_of_block[index]);
        us_add(out, ",\"function\":{\"arguments\":");
        anthropic_stream_json_string(out, piece, len);
        us_add(out, "}}]}");
        us_chunk_end(out, NULL);
    }
}

static void us_finish(struct anthropic_upsse *s, const char *stop_reason,
                      struct evbuffer *out)
{
    if (s->finished)
        return;
    s->finished = true;
    us_chunk_head(s, out);
    us_add(out, "{}");
    us_add(out, ",\"finish_reason\":\"");
    us_add(out, anthropic_up_finish_reason(stop_reason));
    us_add(out, "\"}],\"usage\":{\"prompt_tokens\":");
    us_int(out, s->input_tokens);
    us_add(out, ",\"completion_tokens\":");
    us_int(out, s->output_tokens);
    us_add(out, ",\"total_tokens\":");
    us_int(out, s->input_tokens + s->output_tokens);
    us_add(out, "}}\n\n");
}

static void us_message_delta(struct anthropic_upsse *s, json_object *root,
                             struct evbuffer *out)
{
    json_object *delta = NULL, *usage = NULL, *v;

    json_object_object_get_ex(root, "usage", &usage);
    if (usage != NULL && json_object_is_type(usage, json_type_object)) {
        if (json_object_object_get_ex(usage, "output_tokens", &v) &&
            json_object_is_type(v, json_type_int))
            s->output_tokens = json_object_get_int64(v);
        if (json_object_object_get_ex(usage, "input_tokens", &v) &&
            json_object_is_type(v, json_type_int))
            s->input_tokens = json_object_get_int64(v) +
                              us_int_of(usage, "cache_read_input_tokens") +
                              us_int_of(usage,
                                        "cache_creation_input_tokens");
    }
    json_object_object_get_ex(root, "delta", &delta);
    if (us_str(delta, "stop_reason", NULL) != NULL)
        us_finish(s, us_str(delta, "stop_reason", NULL), out);
}

static void us_error(struct anthropic_upsse *s, json_object *root)
{
    json_object *err = NULL;
    const char *type, *message;

    json_object_object_get_ex(root, "error", &err);
    type = us_str(err, "type", NULL);
    message = us_str(err, "message", NULL);
    us_fail(s, type ? type : "api_error",
            message ? message : "the upstream reported an error");
}

enum anthropic_upsse_status anthropic_upsse_feed(struct anthropic_upsse *s,
                                                 const char *event,
                                                 const char *data,
                                                 size_t len,
                                                 struct evbuffer *out)
{
    json_tokener *tok;
    json_object *root = NULL;
    const char *type;
    int index;

    (void)event;                /* the type member says the same */
    if (s->status != ANTHROPIC_UPSSE_MORE)
        return s->status;
    tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    if (tok == NULL)
        util_oom("json tokener");
    if (len > 0)
        root = json_tokener_parse_ex(tok, data, (int)len);
    json_tokener_free(tok);
    type = us_str(root, "type", NULL);
    if (type == NULL) {
        us_fail(s, "api_error", "the upstream sent a stream event that is "
                "not a JSON object with a type");
        goto out;
    }
    if (strcmp(type, "error") == 0) {
        us_error(s, root);
        goto out;
    }
    if (strcmp(type, "message_start") == 0) {
        if (!s->started)
            us_message_start(s, root, out);
        goto out;
    }
    if (strcmp(type, "ping") == 0)
        goto out;
    if (!s->started) {
        us_fail(s, "api_error", "the upstream stream did not begin with "
                "message_start");
        goto out;
    }
    if (strcmp(type, "content_block_start") == 0 ||
        strcmp(type, "content_block_delta") == 0) {
        index = us_index(root);
        if (index < 0) {
            us_fail(s, "api_error", "the upstream sent a content block "
                    "without a valid index");
            goto out;
        }
        if (type[strlen("content_block_")] == 's')
            us_block_start(s, index, root, out);
        else
            us_block_delta(s, index, root, out);
    } else if (strcmp(type, "message_delta") == 0) {
        us_message_delta(s, root, out);
    } else if (strcmp(type, "message_stop") == 0) {
        us_finish(s, NULL, out);
        us_add(out, "data: [DONE]\n\n");
        s->status = ANTHROPIC_UPSSE_DONE;
    }
out:
    json_object_put(root);
    return s->status;
}

enum anthropic_upsse_status anthropic_upsse_end(struct anthropic_upsse *s)
{
    if (s->status == ANTHROPIC_UPSSE_MORE)
        us_fail(s, "api_error", "the upstream stream was cut before "
                "message_stop");
    return s->status;
}
