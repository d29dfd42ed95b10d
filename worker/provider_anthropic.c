/* provider_anthropic.c - the adapter of kind "anthropic" (Anthropic's
 * Messages API; the descriptor is common/provider/prov_anthropic.c):
 * builds the upstream request, reads the answer plain or as SSE, and
 * classifies every outcome. A job of the Anthropic door goes as the
 * client sent it (model replaced) and its answer comes back as it is,
 * event by event: no translation either way. A job of the OpenAI door is
 * translated to Messages (anthropic_up.c) and its answer back to a chat
 * completion or to OpenAI chunks ending in data: [DONE]
 * (anthropic_upsse.c, a filter with bounded state). Errors are read by
 * anthropic_err.c and retried and counted like any upstream's
 * (call_status_retryable: 429, 529 and other 5xx). The signed header
 * lists and chat URLs are the ones provider_openai.c builds for every
 * provider with an upstream (w->headers, w->urls). A job of the
 * Anthropic door also gets the client's anthropic-beta (the one header
 * its door forwards, sj->fwd_header) on a list of its own
 * (c->auth_headers), and its answer names the model the client asked for
 * (in the message, or in the stream's message_start event), never the
 * upstream's. Owns its calls' door_state (an anthropic_upsse for the
 * OpenAI door, an anthropic_relay for the Anthropic door) and nothing
 * per worker. */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "anthropic_err.h"
#include "anthropic_msg.h"
#include "anthropic_req.h"
#include "anthropic_up.h"
#include "anthropic_upsse.h"
#include "door_anthropic.h"
#include "jsonscan.h"

#define ANTHROPIC_MSG_MAX     300

/* The door_state of an Anthropic door's job: what its answer needs. */
struct anthropic_relay {
    char model[ANTHROPIC_REQ_MODEL_MAX];   /* as the client asked */
};

/* ---- the answer ---- */

/* Token counts of an Anthropic message or stream event: usage's
 * input_tokens (message, message_start) and output_tokens. */
static void anthropic_usage(struct call *c, const char *data, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root, *msg, *usage, *v;

    if (tok == NULL)
        util_oom("an Anthropic answer's parser");
    root = json_tokener_parse_ex(tok, data, (int)len);
    json_tokener_free(tok);
    if (root == NULL)
        return;
    usage = NULL;
    if (json_object_object_get_ex(root, "message", &msg))
        json_object_object_get_ex(msg, "usage", &usage);
    else
        json_object_object_get_ex(root, "usage", &usage);
    if (usage != NULL) {
        if (json_object_object_get_ex(usage, "input_tokens", &v) &&
            json_object_is_type(v, json_type_int))
            c->prompt_tokens = (uint32_t)json_object_get_int64(v);
        if (json_object_object_get_ex(usage, "output_tokens", &v) &&
            json_object_is_type(v, json_type_int))
            c->completion_tokens = (uint32_t)json_object_get_int64(v);
    }
    json_object_put(root);
}

/* An event of the Anthropic door's stream: relayed as it came. */
static int anthropic_relay_event(struct call *c, const char *event,
                                 const char *data, size_t len)
{
    struct evbuffer *out = c->w->door_out;
    const struct anthropic_relay *r = c->door_state;
    char *renamed = NULL;
    size_t n;

    if (strcmp(event, "error") == 0) {
        /* The master ends the client's stream with its own error event
         * (or, before the first byte, the call is tried again). */
        c->proto_error = "upstream sent an error event in the stream";
        return -1;
    }
    if (strcmp(event, "message_start") == 0 ||
        strcmp(event, "message_delta") == 0)
        anthropic_usage(c, data, len);
    else if (strcmp(event, "message_stop") == 0)
        c->sse_done = true;
    /* The one event that names the model: the client's name in it (the
     * event alone is rewritten, the rest relayed untouched). */
    if (r != NULL && strcmp(event, "message_start") == 0 &&
        anthropic_msg_set_model(data, len, r->model, &renamed, &len) == 0)
        data = renamed;
    UTIL_MUST(evbuffer_add_printf(out, "event: %s\ndata: ", event) < 0 ?
              -1 : 0, "an answer's event");
    UTIL_MUST(evbuffer_add(out, data, len), "an answer's event");
    UTIL_MUST(evbuffer_add(out, "\n\n", 2), "an answer's event");
    free(renamed);
    n = evbuffer_get_length(out);
    call_send_head(c);
    call_send_chunk(c, evbuffer_pullup(out, -1), n);
    evbuffer_drain(out, n);
    return 0;
}

/* An event for the OpenAI door: translated into chunks. */
static int anthropic_translate_event(struct call *c, const char *event,
                                     const char *data, size_t len)
{
    struct anthropic_upsse *s = c->door_state;
    struct evbuffer *out = c->w->door_out;
    enum anthropic_upsse_status st;
    size_t n;

    st = anthropic_upsse_feed(s, event, data, len, out);
    n = evbuffer_get_length(out);
    if (st == ANTHROPIC_UPSSE_FAILED) {
        evbuffer_drain(out, n);
        c->proto_error = strcmp(s->error_type, "overloaded_error") == 0 ?
                         "upstream is overloaded (an error event in the "
                         "stream)" : "upstream sent an error event in the "
                         "stream";
        return -1;
    }
    c->prompt_tokens = (uint32_t)s->input_tokens;
    c->completion_tokens = (uint32_t)s->output_tokens;
    if (st == ANTHROPIC_UPSSE_DONE)
        c->sse_done = true;
    if (n > 0) {
        call_send_head(c);
        call_send_chunk(c, evbuffer_pullup(out, -1), n);
        evbuffer_drain(out, n);
    }
    return 0;
}

static int anthropic_sse_event(void *arg, const char *event,
                               const char *data, size_t len)
{
    struct call *c = arg;
    size_t start = strspn(data, " \t\r\n");

    if (c->sse_done)
        return 0;     /* nothing may follow message_stop */
    if (js_validate(data, len, JS_MAX_DEPTH) < 0 || start >= len ||
        data[start] != '{') {
        c->proto_error = "upstream sent a stream event that is not a JSON "
                         "object";
        return -1;
    }
    if (wdoor_anthropic(c))
        return anthropic_relay_event(c, event, data, len);
    return anthropic_translate_event(c, event, data, len);
}

static size_t anthropic_write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    size_t len = size * n;

    if (c->http_status == 0)
        c->http_status = upstream_status(c);
    call_touch(c);
    if (c->stream && c->http_status == 200 && call_output_full(c))
        return CURL_WRITEFUNC_PAUSE;
    if (c->stream && c->http_status == 200) {
        if (sse_feed(&c->sse, buf, len) < 0) {
            if (c->proto_error == NULL)
                c->proto_error = "upstream stream event exceeds the size cap";
            return 0;
        }
        worker_flush_first(c->w);
        return len;
    }
    if (evbuffer_get_length(c->resp) + len > WORKER_MAX_UPSTREAM_BODY) {
        c->too_large = true;
        return 0;
    }
    UTIL_MUST(evbuffer_add(c->resp, buf, len), "upstream answer");
    return len;
}

/* ---- the request ---- */

static struct curl_slist *anthropic_slist_add(struct curl_slist *list,
                                              const char *line)
{
    struct curl_slist *l = curl_slist_append(list, line);

    if (l == NULL)
        util_oom("an upstream request's headers");
    return l;
}

/* The Anthropic door's body with the target's model; the client's is
 * kept in the call's door_state for the answer. */
static int anthropic_door_body(struct call *c, const char *body, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root, *v;
    struct anthropic_relay *r;
    const char *s;
    size_t n;

    if (tok == NULL)
        util_oom("a Messages body's parser");
    root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        util_oom("an Anthropic door's call state");
    if (json_object_object_get_ex(root, "model", &v) &&
        json_object_is_type(v, json_type_string))
        util_strlcpy(r->model, json_object_get_string(v), sizeof(r->model));
    free(c->door_state);
    c->door_state = r;
    json_object_object_add(root, "model",
                           json_object_new_string(call_model(c)));
    s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &n);
    c->req_body = malloc(n + 1);
    if (s == NULL || c->req_body == NULL)
        util_oom("a Messages body");
    memcpy(c->req_body, s, n + 1);
    c->req_len = n;
    json_object_put(root);
    return 0;
}

static int anthropic_build_body(struct call *c)
{
    size_t len;
    const char *body = (const char *)call_body(c, &len);
    char err[ANTHROPIC_UP_ERR_MAX];
    bool stream = false;
    struct anthropic_upsse *s;

    if (wdoor_anthropic(c))
        return anthropic_door_body(c, body, len);
    if (anthropic_up_request(body, len, call_model(c), &c->req_body,
                             &c->req_len, &stream, err, sizeof(err)) < 0)
        return -1;
    s = malloc(sizeof(*s));
    if (s == NULL)
        util_oom("an Anthropic stream's state");
    anthropic_upsse_init(s, call_model(c), (int64_t)time(NULL));
    free(c->door_state);
    c->door_state = s;
    return 0;
}

/* The attempt's header list: the provider's signed one, and for a job
 * of the Anthropic door that forwards a header (anthropic-beta, checked
 * by the door), a copy of it with that header added (c->auth_headers,
 * freed with the attempt). */
static struct curl_slist *anthropic_headers(struct call *c, int prov)
{
    struct curl_slist *base = c->w->headers[2 * prov + (c->stream ? 1 : 0)];
    struct curl_slist *list = NULL;

    if (!wdoor_anthropic(c) || c->sj->fwd_header[0] == '\0')
        return base;
    for (const struct curl_slist *h = base; h != NULL; h = h->next)
        list = anthropic_slist_add(list, h->data);
    list = anthropic_slist_add(list, c->sj->fwd_header);
    curl_slist_free_all(c->auth_headers);
    c->auth_headers = list;
    return list;
}

static void anthropic_transfer_done(struct call *c, CURLcode result);

static void anthropic_xfer_done(struct upstream_xfer *x, CURLcode result)
{
    anthropic_transfer_done((struct call *)((char *)x -
                                            offsetof(struct call, xfer)),
                            result);
}

static int anthropic_start(struct call *c)
{
    const struct cfg_provider *p = call_provider(c);
    struct worker *w = c->w;
    int prov = w->cfg->targets[c->target].provider;
    struct upstream_req req = {
        .provider = prov,
        .write_cb = anthropic_write_cb,
        .header_cb = provider_header_cb,
        .done = anthropic_xfer_done,
    };

    if (p->api_key == NULL) {
        char msg[ANTHROPIC_MSG_MAX];

        snprintf(msg, sizeof(msg), "provider %s has no API key (%s is not "
                 "set)", p->name, p->api_key_env ? p->api_key_env : "api_key");
        call_attempt_failed(c, 502, "missing_credentials", msg, true, true);
        return -1;
    }
    if (anthropic_build_body(c) < 0) {
        call_attempt_failed(c, 400, "invalid_request", "the request cannot "
                            "be made a Messages request", false, false);
        return -1;
    }
    c->resp = evbuffer_new();
    if (c->resp == NULL)
        goto fail;
    if (c->stream)
        sse_init(&c->sse, WORKER_MAX_SSE_EVENT, anthropic_sse_event, c);
    req.headers = anthropic_headers(c, prov);
    if (upstream_start(c, &req) < 0)
        goto fail;
    call_touch(c);
    return 0;
fail:
    call_attempt_failed(c, 502, "internal_error", "cannot start the "
                        "upstream request", true, false);
    return -1;
}

/* ---- the outcome ---- */

static void anthropic_http_failed(struct call *c, long status)
{
    size_t len = evbuffer_get_length(c->resp);
    const char *body = len ? (const char *)evbuffer_pullup(c->resp, -1) : "";
    const char *name = c->w->cfg->targets[c->target].name;
    struct anthropic_err_info info;
    char msg[2 * ANTHROPIC_MSG_MAX];

    anthropic_err_classify((int)status, body, len, NULL, &info);
    if (call_status_client_fault((int)status)) {
        /* The client's request is at fault: its message, its status. */
        call_attempt_failed(c, (int)status, "upstream_rejected",
                            info.message[0] ? info.message :
                            "upstream rejected the request", false, false);
        return;
    }
    if (status == 401 || status == 403) {
        snprintf(msg, sizeof(msg), "%s rejected the gateway's credentials "
                 "(HTTP %ld): %.200s", name, status, info.message);
        call_attempt_failed(c, 502, "upstream_auth_failed", msg, true, true);
        return;
    }
    snprintf(msg, sizeof(msg), "%s answered HTTP %ld: %.200s", name, status,
             info.message);
    call_attempt_failed(c, anthropic_err_openai_status(&info),
                        info.cls == ANTHROPIC_ERR_OVERLOADED ? "overloaded" :
                        info.cls == ANTHROPIC_ERR_RATE_LIMIT ? "rate_limited" :
                        "upstream_error", msg,
                        call_status_retryable((int)status), true);
}

static void anthropic_plain_done(struct call *c)
{
    size_t len = evbuffer_get_length(c->resp);
    const char *body = (const char *)evbuffer_pullup(c->resp, -1);
    char *out = NULL;
    size_t out_len = 0;

    if (!c->json_type || js_validate(body, len, JS_MAX_DEPTH) < 0) {
        call_attempt_failed(c, 502, "bad_upstream_response", "upstream "
                            "answered with a body that is not JSON", true,
                            true);
        return;
    }
    anthropic_usage(c, body, len);
    if (wdoor_anthropic(c)) {
        const struct anthropic_relay *r = c->door_state;

        /* The client's model name in it (the body is whole already). */
        if (r == NULL || anthropic_msg_set_model(body, len, r->model, &out,
                                                 &out_len) < 0) {
            call_attempt_failed(c, 502, "bad_upstream_response", "upstream "
                                "answer is not a message", true, true);
            return;
        }
        call_answered(c, out, out_len);
        free(out);
        return;
    }
    if (anthropic_up_answer(body, len, call_model(c), (int64_t)time(NULL),
                            &out, &out_len) < 0) {
        call_attempt_failed(c, 502, "bad_upstream_response", "upstream "
                            "answer is not a message", true, true);
        return;
    }
    call_answered(c, out, out_len);
    free(out);
}

static void anthropic_stream_done(struct call *c)
{
    struct anthropic_upsse *s = c->door_state;

    if (c->sse_done && !sse_pending(&c->sse)) {
        call_succeeded(c);
        return;
    }
    if (s != NULL && !wdoor_anthropic(c))
        anthropic_upsse_end(s);
    call_attempt_failed(c, 502, "incomplete_stream", "upstream stream ended "
                        "without message_stop", true, true);
}

static void anthropic_transfer_done(struct call *c, CURLcode result)
{
    long status;

    if (call_transfer_result(c, result, &status) < 0)
        return;
    if (status != 200) {
        anthropic_http_failed(c, status);
        return;
    }
    if (c->stream)
        anthropic_stream_done(c);
    else
        anthropic_plain_done(c);
}

const struct provider_ops provider_anthropic_ops = {
    .type = "anthropic",
    .init = NULL,
    .free = NULL,
    .start = anthropic_start,
};
