/* provider_mock.c - the built-in mock provider: answers without the
 * network, deterministically from the request (it quotes the last
 * message), after the provider's latency_ms, plain or as an SSE stream
 * in several chunks, with usage counts. A job of the Anthropic door gets
 * the same answer made Anthropic's (door_anthropic.c), as from any
 * OpenAI-format target. */
#include "worker_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "door_anthropic.h"

#define MOCK_ECHO_MAX     200      /* bytes of the last message quoted */
#define MOCK_ANSWER_MAX   512
#define MOCK_FNV_OFFSET   0xcbf29ce484222325ULL
#define MOCK_FNV_PRIME    0x100000001b3ULL

static uint32_t mock_count_words(const char *s)
{
    uint32_t n = 0;
    bool in_word = false;

    for (; *s != '\0'; s++) {
        bool space = isspace((unsigned char)*s) != 0;

        if (!space && !in_word)
            n++;
        in_word = !space;
    }
    return n;
}

static uint64_t mock_hash(const uint8_t *p, size_t len)
{
    uint64_t h = MOCK_FNV_OFFSET;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * MOCK_FNV_PRIME;
    return h;
}

/* The text of the last message: a string content, or the text parts of
 * an array content. Points into root; "" when there is none. */
static const char *mock_last_text(json_object *root)
{
    json_object *messages, *last, *content;
    size_t n;

    if (!json_object_object_get_ex(root, "messages", &messages) ||
        (n = json_object_array_length(messages)) == 0)
        return "";
    last = json_object_array_get_idx(messages, n - 1);
    if (!json_object_object_get_ex(last, "content", &content))
        return "";
    if (json_object_is_type(content, json_type_string))
        return json_object_get_string(content);
    if (json_object_is_type(content, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(content); i++) {
            json_object *part = json_object_array_get_idx(content, i), *t;

            if (json_object_object_get_ex(part, "text", &t) &&
                json_object_is_type(t, json_type_string))
                return json_object_get_string(t);
        }
    }
    return "";
}

/* Builds one chat.completion or chat.completion.chunk object; the caller
 * puts it with json_object_put(). */
static json_object *mock_object(const char *id, const char *object,
                                const char *model, int64_t created)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "object", json_object_new_string(object));
    json_object_object_add(o, "created", json_object_new_int64(created));
    json_object_object_add(o, "model", json_object_new_string(model));
    return o;
}

static json_object *mock_usage(const struct call *c)
{
    json_object *u = json_object_new_object();

    json_object_object_add(u, "prompt_tokens",
                           json_object_new_int((int)c->prompt_tokens));
    json_object_object_add(u, "completion_tokens",
                           json_object_new_int((int)c->completion_tokens));
    json_object_object_add(u, "total_tokens",
                           json_object_new_int((int)(c->prompt_tokens +
                                                     c->completion_tokens)));
    return u;
}

static void mock_send_event(struct call *c, json_object *o)
{
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    if (c->door_state != NULL)
        (void)wdoor_anthropic_event(c, s, len);   /* well-formed: ours */
    else
        call_send_event(c, s, len);
    json_object_put(o);
}

/* One streamed chunk whose delta holds key=value (or is empty). */
static json_object *mock_chunk(const char *id, const char *model,
                               int64_t created, const char *key,
                               const char *value, const char *finish)
{
    json_object *o = mock_object(id, "chat.completion.chunk", model, created);
    json_object *choices = json_object_new_array();
    json_object *choice = json_object_new_object();
    json_object *delta = json_object_new_object();

    if (key != NULL)
        json_object_object_add(delta, key, json_object_new_string(value));
    json_object_object_add(choice, "index", json_object_new_int(0));
    json_object_object_add(choice, "delta", delta);
    json_object_object_add(choice, "finish_reason",
                           finish ? json_object_new_string(finish) : NULL);
    json_object_array_add(choices, choice);
    json_object_object_add(o, "choices", choices);
    return o;
}

/* Whether the request asks for stream_options.include_usage. */
static bool mock_include_usage(json_object *root)
{
    json_object *opts, *v;

    return root != NULL &&
           json_object_object_get_ex(root, "stream_options", &opts) &&
           json_object_object_get_ex(opts, "include_usage", &v) &&
           json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

/* As OpenAI streams: the usage only when the client asked for it
 * (stream_options.include_usage), in a last chunk of its own with no
 * choices; the worker knows the tokens either way. */
static void mock_stream(struct call *c, const char *id, const char *model,
                        int64_t created, const char *answer,
                        bool include_usage)
{
    const char *p = answer;

    call_send_head(c);
    mock_send_event(c, mock_chunk(id, model, created, "role", "assistant",
                                  NULL));
    while (*p != '\0') {
        /* One word and the spaces after it per chunk. */
        const char *end = p;
        char word[MOCK_ANSWER_MAX];

        while (*end != '\0' && !isspace((unsigned char)*end))
            end++;
        while (*end != '\0' && isspace((unsigned char)*end))
            end++;
        snprintf(word, sizeof(word), "%.*s", (int)(end - p), p);
        mock_send_event(c, mock_chunk(id, model, created, "content", word,
                                      NULL));
        p = end;
    }
    mock_send_event(c, mock_chunk(id, model, created, NULL, NULL, "stop"));
    /* The Anthropic door's translation always wants the usage. */
    if (include_usage || c->door_state != NULL) {
        json_object *last = mock_object(id, "chat.completion.chunk", model,
                                        created);

        json_object_object_add(last, "choices", json_object_new_array());
        json_object_object_add(last, "usage", mock_usage(c));
        mock_send_event(c, last);
    }
    if (c->door_state != NULL)
        (void)wdoor_anthropic_event(c, "[DONE]", sizeof("[DONE]") - 1);
    else
        call_send_chunk(c, "data: [DONE]\n\n", 14);
}

/* Sends the whole answer (call_answered: c is finished and freed);
 * false when nothing was sent and c is still the caller's. */
static bool mock_plain(struct call *c, const char *id, const char *model,
                       int64_t created, const char *answer)
{
    json_object *o = mock_object(id, "chat.completion", model, created);
    json_object *choices = json_object_new_array();
    json_object *choice = json_object_new_object();
    json_object *message = json_object_new_object();
    const char *s;
    size_t len;
    bool sent = true;

    json_object_object_add(message, "role",
                           json_object_new_string("assistant"));
    json_object_object_add(message, "content", json_object_new_string(answer));
    json_object_object_add(choice, "index", json_object_new_int(0));
    json_object_object_add(choice, "message", message);
    json_object_object_add(choice, "finish_reason",
                           json_object_new_string("stop"));
    json_object_array_add(choices, choice);
    json_object_object_add(o, "choices", choices);
    json_object_object_add(o, "usage", mock_usage(c));
    s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (c->door_state != NULL)      /* a chat completion */
        sent = wdoor_anthropic_plain(c, s, len) == 0;
    else
        call_answered(c, s, len);
    json_object_put(o);
    return sent;
}

static void mock_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;
    size_t body_len;
    const uint8_t *body = call_body(c, &body_len);
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, (const char *)body,
                                                    (int)body_len) : NULL;
    char answer[MOCK_ANSWER_MAX], id[40];
    const char *text;
    const char *model = call_model(c);
    bool answered = false;

    (void)fd;
    (void)what;
    /* The master validated the body; parse it again only to quote it. */
    text = root ? mock_last_text(root) : "";
    snprintf(answer, sizeof(answer), "This is a mock answer from %s to: "
             "%.*s", model, MOCK_ECHO_MAX, text);
    snprintf(id, sizeof(id), "chatcmpl-mock-%016llx",
             (unsigned long long)mock_hash(body, body_len));
    c->prompt_tokens = mock_count_words(text);
    c->completion_tokens = mock_count_words(answer);
    c->upstream_status = 200;
    if (c->stream)
        mock_stream(c, id, model, (int64_t)time(NULL), answer,
                    mock_include_usage(root));
    else
        answered = mock_plain(c, id, model, (int64_t)time(NULL), answer);
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    if (!answered)
        call_succeeded(c);
}

static int mock_start(struct call *c)
{
    int ms = call_provider(c)->latency_ms;
    struct timeval tv = util_ms_to_tv(ms);

    if (wdoor_anthropic(c)) {
        char *chat = NULL, err[MOCK_ANSWER_MAX];
        size_t len;

        /* Only its state is needed: the mock reads the Messages body's
         * last text as it is (the same shape). */
        if (wdoor_anthropic_request(c, &chat, &len, err, sizeof(err)) < 0) {
            call_attempt_failed(c, 400, "invalid_request", err, false,
                                false);
            return -1;
        }
        free(chat);
    }
    if (c->adapter_timer == NULL)
        c->adapter_timer = evtimer_new(c->w->base, mock_deliver, c);
    if (c->adapter_timer == NULL || evtimer_add(c->adapter_timer, &tv) < 0) {
        call_attempt_failed(c, 503, "unavailable", "mock provider: out of "
                            "memory", true, false);
        return -1;
    }
    return 0;
}

const struct provider_ops provider_mock_ops = {
    .type = "mock",
    .start = mock_start,
};
