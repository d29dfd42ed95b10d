/*
 * tests/mock/mock_anthropic.c
 *
 * Owns the mock Anthropic upstream used by the rcc-pipeline tests: it
 * speaks the Messages API wire format (plain answers, SSE streams, tool
 * use, Anthropic-shaped errors including 529 overloaded_error) and
 * records every request it gets so tests can check what a gateway sent.
 * A standalone, single-threaded libevent (evhttp) server; it shares no
 * code or headers with the daemon.
 *
 *   mock_anthropic [-a ADDR] [-p PORT] [-P PORTFILE] [-k KEY] [-q]
 *
 *   -k KEY   the accepted x-api-key (default "sk-ant-mock")
 *
 * Endpoints
 *   POST /v1/messages     the Messages API (below)
 *   GET  /v1/models       {"data":[{"type":"model","id","display_name",
 *                         "created_at"}],"has_more":false,"first_id",
 *                         "last_id"}; 500 api_error after
 *                         POST /_control?models=fail (models=ok undoes it)
 *   GET  /_calls          {"count":N,"records":[{"method","uri",
 *                         "headers":{name:value},"body":"<raw>"}]}: the
 *                         last MA_RECORD_MAX requests to /v1/..., oldest
 *                         first, each exactly as received
 *   GET  /_last/body      the last /v1/... request's body, raw
 *   GET  /_last/headers   its headers, one "Name: value" line each
 *   POST /_reset          forget records, counts, failN/flaky counters
 *                         and models=fail
 *   POST /_control?models=fail|ok
 *   anything else         404 not_found_error
 *
 * POST /v1/messages checks, in this order: x-api-key equals KEY (else 401
 * authentication_error), anthropic-version present (else 400
 * invalid_request_error), the body is a JSON object with a string
 * "model", an integer "max_tokens" >= 1 and a non-empty array "messages"
 * (else 400 invalid_request_error).  Then the model name picks the mode:
 *
 *   text (and any name not below)  one text block "echo: <last user
 *                   text>", stop_reason end_turn.  The last user text is
 *                   the last user message's string content or its text
 *                   blocks joined by a space; when that message carries a
 *                   tool_result, the answer is "tool result: <its text>"
 *   tools           a tool_use block calling the request's first tool,
 *                   id "toolu_mock_<n>", input built from its
 *                   input_schema.properties (string -> the last user
 *                   text, integer/number -> 1, boolean -> true, array ->
 *                   [], object -> {}), stop_reason tool_use.  Without
 *                   tools, or when the last user message carries a
 *                   tool_result, it answers like text (two-turn tool use)
 *   text-tools      a text block "echo: ..." then the tool_use block
 *                   (indexes 0 and 1), stop_reason tool_use
 *   max             like text, truncated to max_tokens words, stop_reason
 *                   max_tokens
 *   stopseq         like text, stop_reason stop_sequence and stop_sequence
 *                   the first of the request's stop_sequences (end_turn
 *                   and null when there are none)
 *   overloaded      529 overloaded_error
 *   ratelimit       429 rate_limit_error with retry-after: 1
 *   err500          500 api_error
 *   notfound        404 not_found_error
 *   status-NNN      status NNN with the matching Anthropic error type
 *   failN-SSS       the first N calls naming this model answer status SSS
 *                   (as status-SSS), later ones answer like text; counted
 *                   per model string until POST /_reset
 *   flaky-N         failN-529
 *   garbage         200 application/json, a body that is not JSON
 *   cut             plain: a head announcing more body than is sent, then
 *                   the connection closes; stream: message_start, the
 *                   text block's start, ping and first MA_CUT_DELTAS
 *                   deltas, then the connection closes (no message_stop,
 *                   no chunked terminator)
 *   stream-error    stream: like cut, but then "event: error" with
 *                   overloaded_error and a clean end of the HTTP body;
 *                   plain: as overloaded
 *   slow-MS         like text, everything (plain or stream) after MS ms
 *   drip-MS         like text; a stream waits MS ms before each event
 *                   after message_start, a plain answer comes after MS ms
 *
 * With "stream": true the answer is an SSE stream (content-type
 * text/event-stream), each event "event: <type>\ndata: <json>\n\n":
 * message_start (usage.input_tokens, output_tokens 1), then per block
 * content_block_start, content_block_delta (text_delta one word at a
 * time; input_json_delta first "" then the input's JSON in pieces of
 * MA_JSON_PIECE bytes), content_block_stop; one ping after the first
 * content_block_start; then message_delta (stop_reason, stop_sequence,
 * usage.output_tokens) and message_stop.  Errors decided before the
 * answer (auth, validation, error modes) are plain HTTP errors, as the
 * real API sends them.
 *
 * Answers from /v1 (but garbage and cut plain) carry a request-id header
 * "req_mock_<n>" (a message's id is "msg_mock_<same n>"); errors are
 * {"type":"error","error":{"type","message"},"request_id"}, 429 and 529
 * with retry-after: 1 (a stream's error event has no request_id).  Token
 * counts are deterministic: input_tokens = whitespace-separated words in
 * system and every message's text (text blocks, string contents,
 * tool_result text), at least 1; output_tokens = words of the answer's
 * text plus MA_TOOL_TOKENS per tool_use block.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <json-c/json.h>

/* ------------------------------------------------------------------ */
/* Constants                                                           */
/* ------------------------------------------------------------------ */

#define MA_NAME                 "mock_anthropic"
#define MA_DEFAULT_ADDR         "127.0.0.1"
#define MA_DEFAULT_PORT         0
#define MA_DEFAULT_KEY          "sk-ant-mock"
#define MA_PORT_MAX             65535
#define MA_EXIT_USAGE           2
#define MA_TMP_SUFFIX           ".tmp"
#define MA_DECIMAL              10

#define MA_HTTP_TIMEOUT_SEC     600
#define MA_MAX_BODY_BYTES       (16L * 1024L * 1024L)
#define MA_MAX_DELAY_MS         600000L
#define MA_MS_PER_SEC           1000L
#define MA_US_PER_MS            1000L

/* Requests kept for GET /_calls (a ring: the oldest is dropped). */
#define MA_RECORD_MAX           64
/* failN-SSS counters, one per model string. */
#define MA_FAIL_SLOTS           32
#define MA_FAIL_MODEL_MAX       64
#define MA_FAIL_MAX_N           1000
#define MA_STATUS_DIGITS        3
#define MA_STATUS_MIN           400L
#define MA_STATUS_MAX           599L
#define MA_FLAKY_STATUS         529L

/* Stream shapes. */
#define MA_CUT_DELTAS           2       /* text deltas before a cut */
#define MA_JSON_PIECE           8       /* bytes per input_json_delta */
#define MA_TOOL_TOKENS          10      /* output tokens per tool_use */
#define MA_ID_BUF               48

#define MA_HTTP_UNAUTHORIZED    401
#define MA_HTTP_FORBIDDEN       403
#define MA_HTTP_TOO_LARGE       413
#define MA_HTTP_TOO_MANY        429
#define MA_HTTP_OVERLOADED      529
#define MA_RETRY_AFTER          "1"

#define MA_CT_JSON              "application/json"
#define MA_CT_SSE               "text/event-stream"
#define MA_CT_TEXT              "text/plain"

#define MA_ECHO_PREFIX          "echo: "
#define MA_TOOL_PREFIX          "tool result: "
#define MA_TOOL_STRING_DEFAULT  "mock"

#define MA_MODEL_ID             "claude-mock-1"
#define MA_MODEL_NAME           "Claude Mock 1"
#define MA_MODEL_CREATED        "2025-01-01T00:00:00Z"

static const char ma_garbage_body[] = "this is not json {{{";

/* A head that promises 1000 bytes, and the ~40 that follow it. */
static const char ma_cut_raw[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: " MA_CT_JSON "\r\n"
    "Content-Length: 1000\r\n"
    "\r\n"
    "{\"id\":\"msg_mock_cut\",\"type\":\"message\",\"ro";

#define MA_LIT_LEN(s)           (sizeof(s) - 1)

#define MA_ALL_METHODS                                                    \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT  \
     | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

enum ma_mode {
    MA_MODE_TEXT,
    MA_MODE_TOOLS,
    MA_MODE_TEXT_TOOLS,
    MA_MODE_MAX,
    MA_MODE_STOPSEQ,
    MA_MODE_STATUS,         /* arg: the status */
    MA_MODE_GARBAGE,
    MA_MODE_CUT,
    MA_MODE_STREAM_ERROR,
    MA_MODE_SLOW,           /* arg: ms */
    MA_MODE_DRIP            /* arg: ms */
};

struct ma_named_mode {
    const char *model;
    enum ma_mode mode;
    long arg;
};

static const struct ma_named_mode ma_named_modes[] = {
    { "text", MA_MODE_TEXT, 0 },
    { "tools", MA_MODE_TOOLS, 0 },
    { "text-tools", MA_MODE_TEXT_TOOLS, 0 },
    { "max", MA_MODE_MAX, 0 },
    { "stopseq", MA_MODE_STOPSEQ, 0 },
    { "overloaded", MA_MODE_STATUS, MA_HTTP_OVERLOADED },
    { "ratelimit", MA_MODE_STATUS, MA_HTTP_TOO_MANY },
    { "err500", MA_MODE_STATUS, HTTP_INTERNAL },
    { "notfound", MA_MODE_STATUS, HTTP_NOTFOUND },
    { "garbage", MA_MODE_GARBAGE, 0 },
    { "cut", MA_MODE_CUT, 0 },
    { "stream-error", MA_MODE_STREAM_ERROR, 0 }
};

/* One recorded request (all owned). */
struct ma_record {
    char *method;
    char *uri;
    struct json_object *headers;   /* {name: value} */
    char *raw_headers;             /* "Name: value\n" lines */
    char *body;
    size_t body_len;
};

/* A prepared answer: a plain body or a list of SSE events (all owned). */
struct ma_reply {
    int stream;
    char *body;
    size_t body_len;
    char **events;
    size_t nevents;
    size_t cap;
    int cut;                /* stream: drop the connection at the end */
    char request_id[MA_ID_BUF];
};

struct ma_ctx;

/* An answer sent later (slow-MS, drip-MS); see mock_upstream.c's jobs. */
struct ma_job {
    struct ma_ctx *ctx;
    struct ma_job *prev;
    struct ma_job *next;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    struct timeval delay;
    int drip;               /* one event per tick, else all at once */
    size_t cursor;          /* next event */
    struct ma_reply reply;
};

struct ma_ctx {
    const char *addr;
    const char *portfile;
    const char *key;
    int port;
    int quiet;
    int models_fail;
    struct event_base *base;
    struct evhttp *http;
    struct event *ev_sigterm;
    struct event *ev_sigint;
    struct json_tokener *tok;
    struct ma_job *jobs;
    unsigned long next_id;
    unsigned long count;            /* /v1 requests since reset */
    struct ma_record records[MA_RECORD_MAX];
    struct {
        char model[MA_FAIL_MODEL_MAX];
        long seen;
    } fails[MA_FAIL_SLOTS];
};

/* What one /v1/messages request asks for, read from its body. */
struct ma_request {
    struct json_object *root;       /* owned */
    const char *model;              /* borrowed from root */
    long max_tokens;
    int stream;
    char *user_text;                /* owned */
    int has_tool_result;
    struct json_object *tool;       /* borrowed: the first tool or NULL */
    const char *stop_sequence;      /* borrowed: the first or NULL */
    size_t input_tokens;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int
ma_parse_number(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, MA_DECIMAL);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static size_t
ma_count_words(const char *s)
{
    size_t n = 0;
    int in = 0;

    for (; s != NULL && *s != '\0'; s++) {
        if (isspace((unsigned char)*s))
            in = 0;
        else if (!in) {
            in = 1;
            n++;
        }
    }
    return n;
}

/* Append a string to a growing heap string (*dst owned); 0 or -1. */
static int
ma_append(char **dst, const char *sep, const char *s)
{
    size_t old = *dst != NULL ? strlen(*dst) : 0;
    size_t slen = strlen(sep);
    size_t add = strlen(s);
    char *p;

    if (old == 0)
        slen = 0;
    p = realloc(*dst, old + slen + add + 1);
    if (p == NULL)
        return -1;
    memcpy(p + old, sep, slen);
    memcpy(p + old + slen, s, add + 1);
    *dst = p;
    return 0;
}

static const char *
ma_get_string(struct json_object *obj, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(obj, key, &v)
        || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static const char *
ma_to_json(struct json_object *obj)
{
    return json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void
ma_log(const struct ma_ctx *ctx, const struct evhttp_request *req,
       const char *detail)
{
    if (ctx->quiet)
        return;
    fprintf(stderr, "%s: %s %s\n", MA_NAME, evhttp_request_get_uri(req),
            detail != NULL ? detail : "");
}

/* ------------------------------------------------------------------ */
/* Recording                                                           */
/* ------------------------------------------------------------------ */

static void
ma_record_clear(struct ma_record *r)
{
    free(r->method);
    free(r->uri);
    json_object_put(r->headers);
    free(r->raw_headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static const char *
ma_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:    return "GET";
    case EVHTTP_REQ_POST:   return "POST";
    case EVHTTP_REQ_HEAD:   return "HEAD";
    case EVHTTP_REQ_PUT:    return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PATCH:  return "PATCH";
    default:                return "OTHER";
    }
}

/* Keep a copy of the request (a failed copy is a partial record). */
static void
ma_record(struct ma_ctx *ctx, struct evhttp_request *req)
{
    struct ma_record *r = &ctx->records[ctx->count % MA_RECORD_MAX];
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evkeyval *h;
    size_t len = evbuffer_get_length(in);

    ma_record_clear(r);
    ctx->count++;
    r->method = strdup(ma_method_name(evhttp_request_get_command(req)));
    r->uri = strdup(evhttp_request_get_uri(req));
    r->headers = json_object_new_object();
    TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next) {
        char *line = NULL;

        if (r->headers != NULL)
            json_object_object_add(r->headers, h->key,
                                   json_object_new_string(h->value));
        if (asprintf(&line, "%s: %s\n", h->key, h->value) >= 0) {
            if (ma_append(&r->raw_headers, "", line) != 0)
                fprintf(stderr, "%s: out of memory\n", MA_NAME);
            free(line);
        }
    }
    r->body = malloc(len + 1);
    if (r->body != NULL) {
        evbuffer_copyout(in, r->body, len);
        r->body[len] = '\0';
        r->body_len = len;
    }
}

static const struct ma_record *
ma_last_record(const struct ma_ctx *ctx)
{
    if (ctx->count == 0)
        return NULL;
    return &ctx->records[(ctx->count - 1) % MA_RECORD_MAX];
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

static void
ma_next_request_id(struct ma_ctx *ctx, char *buf, size_t size)
{
    snprintf(buf, size, "req_mock_%lu", ++ctx->next_id);
}

static void
ma_send_text(struct evhttp_request *req, int code, const char *ctype,
             const char *body, size_t len)
{
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", ctype);
    if (evbuffer_add(evhttp_request_get_output_buffer(req), body, len)
        != 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_send_reply(req, code, code == MA_HTTP_OVERLOADED ? "Overloaded"
                      : code == MA_HTTP_TOO_MANY ? "Too Many Requests"
                      : NULL, NULL);
}

static void
ma_send_json(struct evhttp_request *req, int code, struct json_object *o)
{
    const char *s = ma_to_json(o);

    ma_send_text(req, code, MA_CT_JSON, s, strlen(s));
}

/* Anthropic's error type for an HTTP status. */
static const char *
ma_error_type(int code)
{
    switch (code) {
    case HTTP_BADREQUEST:       return "invalid_request_error";
    case MA_HTTP_UNAUTHORIZED:  return "authentication_error";
    case MA_HTTP_FORBIDDEN:     return "permission_error";
    case HTTP_NOTFOUND:         return "not_found_error";
    case MA_HTTP_TOO_LARGE:     return "request_too_large";
    case MA_HTTP_TOO_MANY:      return "rate_limit_error";
    case MA_HTTP_OVERLOADED:    return "overloaded_error";
    default:
        return code >= HTTP_INTERNAL ? "api_error" : "invalid_request_error";
    }
}

/* {"type":"error","error":{"type","message"},"request_id"}; owned. */
static struct json_object *
ma_error_object(const char *type, const char *message, const char *rid)
{
    struct json_object *o = json_object_new_object();
    struct json_object *e = json_object_new_object();

    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(o, "error", e);
    if (rid != NULL)
        json_object_object_add(o, "request_id",
                               json_object_new_string(rid));
    return o;
}

static void
ma_send_error(struct ma_ctx *ctx, struct evhttp_request *req, int code,
              const char *message)
{
    char rid[MA_ID_BUF];
    struct json_object *o;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    ma_next_request_id(ctx, rid, sizeof(rid));
    evhttp_add_header(h, "request-id", rid);
    if (code == MA_HTTP_TOO_MANY || code == MA_HTTP_OVERLOADED)
        evhttp_add_header(h, "retry-after", MA_RETRY_AFTER);
    o = ma_error_object(ma_error_type(code), message, rid);
    ma_send_json(req, code, o);
    json_object_put(o);
}

static void
ma_send_status(struct ma_ctx *ctx, struct evhttp_request *req, int code)
{
    char msg[MA_ID_BUF * 2];

    if (code == MA_HTTP_OVERLOADED)
        snprintf(msg, sizeof(msg), "Overloaded");
    else
        snprintf(msg, sizeof(msg), "Mock upstream forced HTTP status %d.",
                 code);
    ma_send_error(ctx, req, code, msg);
}

/* ------------------------------------------------------------------ */
/* Dropping a connection mid-answer (as mock_upstream.c does)          */
/* ------------------------------------------------------------------ */

static void
ma_raw_flushed_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    evhttp_connection_free(arg);
}

static void
ma_raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    evhttp_connection_free(arg);
}

/*
 * Take the connection from evhttp; once its queued output is written it
 * is freed (closing the socket), together with the unanswered request.
 */
static void
ma_close_after_flush(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, ma_raw_flushed_cb, ma_raw_event_cb, evcon);
    bufferevent_enable(bev, EV_WRITE);
}

static void
ma_send_cut_plain(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon == NULL)
        return;
    if (evbuffer_add(bufferevent_get_output(
                         evhttp_connection_get_bufferevent(evcon)),
                     ma_cut_raw, MA_LIT_LEN(ma_cut_raw)) != 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    ma_close_after_flush(evcon);
}

/* ------------------------------------------------------------------ */
/* Reading the request                                                 */
/* ------------------------------------------------------------------ */

/* Text of a content value (string or blocks); appended to *dst. */
static int
ma_content_text(struct json_object *content, char **dst, int *tool_result)
{
    size_t i, n;

    if (json_object_is_type(content, json_type_string))
        return ma_append(dst, " ", json_object_get_string(content));
    if (!json_object_is_type(content, json_type_array))
        return 0;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        struct json_object *b = json_object_array_get_idx(content, i);
        const char *type = ma_get_string(b, "type");
        const char *text;
        struct json_object *inner;

        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0
            && (text = ma_get_string(b, "text")) != NULL) {
            if (ma_append(dst, " ", text) != 0)
                return -1;
        } else if (strcmp(type, "tool_result") == 0) {
            if (tool_result != NULL)
                *tool_result = 1;
            if (json_object_object_get_ex(b, "content", &inner)
                && ma_content_text(inner, dst, NULL) != 0)
                return -1;
        }
    }
    return 0;
}

/* Fills r from its body; NULL or the message for a 400. */
static const char *
ma_read_request(struct ma_ctx *ctx, struct evhttp_request *req,
                struct ma_request *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data;
    struct json_object *v, *msgs, *last = NULL;
    char *all = NULL;
    size_t i, n, end;

    memset(r, 0, sizeof(*r));
    data = (const char *)evbuffer_pullup(in, -1);
    if (data == NULL || len == 0 || len > INT_MAX)
        return "The request body is not valid JSON.";
    json_tokener_reset(ctx->tok);
    r->root = json_tokener_parse_ex(ctx->tok, data, (int)len);
    end = r->root != NULL ? json_tokener_get_parse_end(ctx->tok) : 0;
    while (end < len && isspace((unsigned char)data[end]))
        end++;
    if (r->root == NULL || end != len
        || !json_object_is_type(r->root, json_type_object))
        return "The request body is not valid JSON.";
    r->model = ma_get_string(r->root, "model");
    if (r->model == NULL)
        return "model: Field required";
    if (!json_object_object_get_ex(r->root, "max_tokens", &v)
        || !json_object_is_type(v, json_type_int)
        || json_object_get_int64(v) < 1)
        return "max_tokens: Field required (an integer >= 1)";
    r->max_tokens = (long)json_object_get_int64(v);
    if (!json_object_object_get_ex(r->root, "messages", &msgs)
        || !json_object_is_type(msgs, json_type_array)
        || json_object_array_length(msgs) == 0)
        return "messages: Field required (a non-empty array)";
    r->stream = json_object_object_get_ex(r->root, "stream", &v)
                && json_object_get_boolean(v);

    if (json_object_object_get_ex(r->root, "system", &v)
        && ma_content_text(v, &all, NULL) != 0)
        goto oom;
    n = json_object_array_length(msgs);
    for (i = 0; i < n; i++) {
        struct json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = ma_get_string(m, "role");

        if (role == NULL || !json_object_object_get_ex(m, "content", &v))
            return "messages: each message needs a role and content";
        if (ma_content_text(v, &all, NULL) != 0)
            goto oom;
        if (strcmp(role, "user") == 0)
            last = v;
    }
    r->input_tokens = ma_count_words(all);
    if (r->input_tokens == 0)
        r->input_tokens = 1;
    free(all);
    all = NULL;
    if (last != NULL && ma_content_text(last, &r->user_text,
                                        &r->has_tool_result) != 0)
        goto oom;
    if (r->user_text == NULL && (r->user_text = strdup("")) == NULL)
        goto oom;

    if (json_object_object_get_ex(r->root, "tools", &v)
        && json_object_is_type(v, json_type_array)
        && json_object_array_length(v) > 0
        && ma_get_string(json_object_array_get_idx(v, 0), "name") != NULL)
        r->tool = json_object_array_get_idx(v, 0);
    if (json_object_object_get_ex(r->root, "stop_sequences", &v)
        && json_object_is_type(v, json_type_array)
        && json_object_array_length(v) > 0
        && json_object_is_type(json_object_array_get_idx(v, 0),
                               json_type_string))
        r->stop_sequence = json_object_get_string(
            json_object_array_get_idx(v, 0));
    return NULL;

oom:
    free(all);
    return "mock upstream out of memory";
}

static void
ma_request_free(struct ma_request *r)
{
    json_object_put(r->root);
    free(r->user_text);
}

/* Mode for a model name; *arg gets its number. */
static enum ma_mode
ma_parse_mode(struct ma_ctx *ctx, const char *model, long *arg)
{
    const char *p;
    char *end;
    long n, code;
    size_t i;

    *arg = 0;
    for (i = 0; i < sizeof(ma_named_modes) / sizeof(ma_named_modes[0]);
         i++) {
        if (strcmp(model, ma_named_modes[i].model) == 0) {
            *arg = ma_named_modes[i].arg;
            return ma_named_modes[i].mode;
        }
    }
    if (strncmp(model, "status-", strlen("status-")) == 0
        && strlen(model + strlen("status-")) == MA_STATUS_DIGITS
        && ma_parse_number(model + strlen("status-"), MA_STATUS_MIN,
                           MA_STATUS_MAX, arg) == 0)
        return MA_MODE_STATUS;
    if (strncmp(model, "slow-", strlen("slow-")) == 0
        && ma_parse_number(model + strlen("slow-"), 0, MA_MAX_DELAY_MS,
                           arg) == 0)
        return MA_MODE_SLOW;
    if (strncmp(model, "drip-", strlen("drip-")) == 0
        && ma_parse_number(model + strlen("drip-"), 0, MA_MAX_DELAY_MS,
                           arg) == 0)
        return MA_MODE_DRIP;

    /* failN-SSS and flaky-N: fail the first N calls, then answer text. */
    code = MA_FLAKY_STATUS;
    if (strncmp(model, "flaky-", strlen("flaky-")) == 0) {
        if (ma_parse_number(model + strlen("flaky-"), 0, MA_FAIL_MAX_N,
                            &n) != 0)
            return MA_MODE_TEXT;
    } else if (strncmp(model, "fail", strlen("fail")) == 0
               && isdigit((unsigned char)model[strlen("fail")])) {
        p = model + strlen("fail");
        errno = 0;
        n = strtol(p, &end, MA_DECIMAL);
        if (errno != 0 || *end != '-' || n > MA_FAIL_MAX_N
            || strlen(end + 1) != MA_STATUS_DIGITS
            || ma_parse_number(end + 1, MA_STATUS_MIN, MA_STATUS_MAX,
                               &code) != 0)
            return MA_MODE_TEXT;
    } else {
        return MA_MODE_TEXT;
    }
    for (i = 0; i < MA_FAIL_SLOTS; i++) {
        if (ctx->fails[i].model[0] == '\0') {
            snprintf(ctx->fails[i].model, sizeof(ctx->fails[i].model), "%s",
                     model);
            break;
        }
        if (strcmp(ctx->fails[i].model, model) == 0)
            break;
    }
    if (i < MA_FAIL_SLOTS && ++ctx->fails[i].seen <= n) {
        *arg = code;
        return MA_MODE_STATUS;
    }
    return MA_MODE_TEXT;
}

/* ------------------------------------------------------------------ */
/* Building answers                                                    */
/* ------------------------------------------------------------------ */

/* The tool input for the request's first tool; owned. */
static struct json_object *
ma_tool_input(const struct ma_request *r)
{
    struct json_object *input = json_object_new_object();
    struct json_object *schema, *props;

    if (!json_object_object_get_ex(r->tool, "input_schema", &schema)
        || !json_object_object_get_ex(schema, "properties", &props)
        || !json_object_is_type(props, json_type_object))
        return input;
    json_object_object_foreach(props, key, spec) {
        const char *type = ma_get_string(spec, "type");
        struct json_object *val;

        if (type == NULL || strcmp(type, "string") == 0)
            val = json_object_new_string(r->user_text[0] != '\0'
                                         ? r->user_text
                                         : MA_TOOL_STRING_DEFAULT);
        else if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
            val = json_object_new_int(1);
        else if (strcmp(type, "boolean") == 0)
            val = json_object_new_boolean(1);
        else if (strcmp(type, "array") == 0)
            val = json_object_new_array();
        else if (strcmp(type, "object") == 0)
            val = json_object_new_object();
        else
            val = json_object_new_string(MA_TOOL_STRING_DEFAULT);
        json_object_object_add(input, key, val);
    }
    return input;
}

/* Everything one answer says, plain or streamed. */
struct ma_answer {
    char id[MA_ID_BUF];
    char tool_id[MA_ID_BUF];
    const char *model;
    char *text;                     /* owned; NULL: no text block */
    struct json_object *tool_input; /* owned; NULL: no tool_use block */
    const char *tool_name;
    const char *stop_reason;
    const char *stop_sequence;
    size_t input_tokens;
    size_t output_tokens;
};

static void
ma_answer_free(struct ma_answer *a)
{
    free(a->text);
    json_object_put(a->tool_input);
}

/* Keep the first max words of s (s is modified). */
static void
ma_truncate_words(char *s, long max)
{
    long words = 0;
    int in = 0;

    for (; *s != '\0'; s++) {
        if (isspace((unsigned char)*s)) {
            if (in && words == max) {
                *s = '\0';
                return;
            }
            in = 0;
        } else if (!in) {
            in = 1;
            words++;
        }
    }
}

static int
ma_answer_build(struct ma_ctx *ctx, const struct ma_request *r,
                enum ma_mode mode, struct ma_answer *a)
{
    int want_tool = (mode == MA_MODE_TOOLS || mode == MA_MODE_TEXT_TOOLS)
                    && r->tool != NULL && !r->has_tool_result;

    memset(a, 0, sizeof(*a));
    /* The same n as the answer's request-id, taken just before. */
    snprintf(a->id, sizeof(a->id), "msg_mock_%lu", ctx->next_id);
    snprintf(a->tool_id, sizeof(a->tool_id), "toolu_mock_%lu", ctx->next_id);
    a->model = r->model;
    a->input_tokens = r->input_tokens;
    a->stop_reason = "end_turn";
    if (!want_tool || mode == MA_MODE_TEXT_TOOLS) {
        const char *prefix = r->has_tool_result ? MA_TOOL_PREFIX
                                                : MA_ECHO_PREFIX;

        if (asprintf(&a->text, "%s%s", prefix, r->user_text) < 0) {
            a->text = NULL;
            return -1;
        }
        if (mode == MA_MODE_MAX) {
            ma_truncate_words(a->text, r->max_tokens);
            a->stop_reason = "max_tokens";
        }
        a->output_tokens = ma_count_words(a->text);
    }
    if (mode == MA_MODE_STOPSEQ && r->stop_sequence != NULL) {
        a->stop_reason = "stop_sequence";
        a->stop_sequence = r->stop_sequence;
    }
    if (want_tool) {
        a->tool_input = ma_tool_input(r);
        a->tool_name = ma_get_string(r->tool, "name");
        a->stop_reason = "tool_use";
        a->output_tokens += MA_TOOL_TOKENS;
    }
    return 0;
}

static struct json_object *
ma_usage_object(size_t input_tokens, size_t output_tokens)
{
    struct json_object *u = json_object_new_object();

    json_object_object_add(u, "input_tokens",
                           json_object_new_int64((int64_t)input_tokens));
    json_object_object_add(u, "output_tokens",
                           json_object_new_int64((int64_t)output_tokens));
    return u;
}

static struct json_object *
ma_str_or_null(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

/* The message object; final: content and stop reason filled in. */
static struct json_object *
ma_message(const struct ma_answer *a, int final)
{
    struct json_object *m = json_object_new_object();
    struct json_object *content = json_object_new_array();

    json_object_object_add(m, "id", json_object_new_string(a->id));
    json_object_object_add(m, "type", json_object_new_string("message"));
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "model", json_object_new_string(a->model));
    if (final && a->text != NULL) {
        struct json_object *b = json_object_new_object();

        json_object_object_add(b, "type", json_object_new_string("text"));
        json_object_object_add(b, "text", json_object_new_string(a->text));
        json_object_array_add(content, b);
    }
    if (final && a->tool_input != NULL) {
        struct json_object *b = json_object_new_object();

        json_object_object_add(b, "type",
                               json_object_new_string("tool_use"));
        json_object_object_add(b, "id", json_object_new_string(a->tool_id));
        json_object_object_add(b, "name",
                               json_object_new_string(a->tool_name));
        json_object_object_add(b, "input",
                               json_object_get(a->tool_input));
        json_object_array_add(content, b);
    }
    json_object_object_add(m, "content", content);
    json_object_object_add(m, "stop_reason",
                           final ? json_object_new_string(a->stop_reason)
                                 : NULL);
    json_object_object_add(m, "stop_sequence",
                           final ? ma_str_or_null(a->stop_sequence) : NULL);
    json_object_object_add(m, "usage",
                           ma_usage_object(a->input_tokens,
                                    final ? a->output_tokens : 1));
    return m;
}

static void
ma_reply_free(struct ma_reply *rep)
{
    size_t i;

    free(rep->body);
    for (i = 0; i < rep->nevents; i++)
        free(rep->events[i]);
    free(rep->events);
    memset(rep, 0, sizeof(*rep));
}

/* Append "event: NAME\ndata: JSON\n\n"; takes obj. */
static int
ma_event(struct ma_reply *rep, const char *name, struct json_object *obj)
{
    char *ev = NULL;
    int rc;

    if (rep->nevents == rep->cap) {
        size_t cap = rep->cap != 0 ? rep->cap * 2 : 16;
        char **p = realloc(rep->events, cap * sizeof(*p));

        if (p == NULL) {
            json_object_put(obj);
            return -1;
        }
        rep->events = p;
        rep->cap = cap;
    }
    rc = asprintf(&ev, "event: %s\ndata: %s\n\n", name, ma_to_json(obj));
    json_object_put(obj);
    if (rc < 0)
        return -1;
    rep->events[rep->nevents++] = ev;
    return 0;
}

/* {"type": TYPE} plus "index": i when i >= 0; owned. */
static struct json_object *
ma_typed(const char *type, int index)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "type", json_object_new_string(type));
    if (index >= 0)
        json_object_object_add(o, "index", json_object_new_int(index));
    return o;
}

static int
ma_delta_event(struct ma_reply *rep, int index, const char *dtype,
               const char *key, const char *val, size_t len)
{
    struct json_object *o = ma_typed("content_block_delta", index);
    struct json_object *d = ma_typed(dtype, -1);

    json_object_object_add(d, key, json_object_new_string_len(val,
                                                              (int)len));
    json_object_object_add(o, "delta", d);
    return ma_event(rep, "content_block_delta", o);
}

/*
 * The text block's events, one word (with its trailing blanks) per
 * delta.  early: at most MA_CUT_DELTAS deltas and no content_block_stop
 * (the stream is cut or fails there).  0, or -1 on failure.
 */
static int
ma_text_events(struct ma_reply *rep, const char *text, int index,
               int early)
{
    size_t max_deltas = early ? MA_CUT_DELTAS : (size_t)-1;
    struct json_object *start = ma_typed("content_block_start", index);
    struct json_object *block = ma_typed("text", -1);
    const char *p = text;
    size_t sent = 0;

    json_object_object_add(block, "text", json_object_new_string(""));
    json_object_object_add(start, "content_block", block);
    if (ma_event(rep, "content_block_start", start) != 0)
        return -1;
    if (index == 0 && ma_event(rep, "ping", ma_typed("ping", -1)) != 0)
        return -1;
    while (*p != '\0') {
        const char *q = p;

        if (sent == max_deltas)
            break;
        while (*q != '\0' && !isspace((unsigned char)*q))
            q++;
        while (*q != '\0' && isspace((unsigned char)*q))
            q++;
        if (ma_delta_event(rep, index, "text_delta", "text", p,
                           (size_t)(q - p)) != 0)
            return -1;
        sent++;
        p = q;
    }
    if (early)
        return 0;
    return ma_event(rep, "content_block_stop",
                    ma_typed("content_block_stop", index)) != 0 ? -1 : 0;
}

static int
ma_tool_events(struct ma_reply *rep, const struct ma_answer *a, int index)
{
    struct json_object *start = ma_typed("content_block_start", index);
    struct json_object *block = ma_typed("tool_use", -1);
    const char *json = ma_to_json(a->tool_input);
    char *copy = strdup(json);
    size_t len, pos = 0;
    int rc = -1;

    json_object_object_add(block, "id", json_object_new_string(a->tool_id));
    json_object_object_add(block, "name",
                           json_object_new_string(a->tool_name));
    json_object_object_add(block, "input", json_object_new_object());
    json_object_object_add(start, "content_block", block);
    if (copy == NULL) {
        json_object_put(start);
        return -1;
    }
    if (ma_event(rep, "content_block_start", start) != 0
        || (index == 0 && ma_event(rep, "ping", ma_typed("ping", -1)) != 0)
        || ma_delta_event(rep, index, "input_json_delta", "partial_json",
                          "", 0) != 0)
        goto out;
    len = strlen(copy);
    while (pos < len) {
        size_t n = len - pos < MA_JSON_PIECE ? len - pos : MA_JSON_PIECE;

        /* Never split a UTF-8 sequence. */
        while (pos + n < len && ((unsigned char)copy[pos + n] & 0xC0) == 0x80)
            n++;
        if (ma_delta_event(rep, index, "input_json_delta", "partial_json",
                           copy + pos, n) != 0)
            goto out;
        pos += n;
    }
    rc = ma_event(rep, "content_block_stop",
                  ma_typed("content_block_stop", index));
out:
    free(copy);
    return rc;
}

/* The whole event list for a stream; mode decides how it ends. */
static int
ma_stream_build(const struct ma_answer *a, enum ma_mode mode,
                struct ma_reply *rep)
{
    struct json_object *start = ma_typed("message_start", -1);
    struct json_object *md, *d;
    int index = 0;
    int early = mode == MA_MODE_CUT || mode == MA_MODE_STREAM_ERROR;

    json_object_object_add(start, "message", ma_message(a, 0));
    if (ma_event(rep, "message_start", start) != 0)
        return -1;
    if (a->text != NULL) {
        if (ma_text_events(rep, a->text, index++, early) != 0)
            return -1;
    }
    if (mode == MA_MODE_CUT) {
        rep->cut = 1;
        return 0;
    }
    if (mode == MA_MODE_STREAM_ERROR)
        return ma_event(rep, "error",
                        ma_error_object("overloaded_error", "Overloaded",
                                        NULL));
    if (a->tool_input != NULL && ma_tool_events(rep, a, index) != 0)
        return -1;
    md = ma_typed("message_delta", -1);
    d = json_object_new_object();
    json_object_object_add(d, "stop_reason",
                           json_object_new_string(a->stop_reason));
    json_object_object_add(d, "stop_sequence",
                           ma_str_or_null(a->stop_sequence));
    json_object_object_add(md, "delta", d);
    d = json_object_new_object();
    json_object_object_add(d, "output_tokens",
                           json_object_new_int64((int64_t)a->output_tokens));
    json_object_object_add(md, "usage", d);
    if (ma_event(rep, "message_delta", md) != 0)
        return -1;
    return ma_event(rep, "message_stop", ma_typed("message_stop", -1));
}

/* ------------------------------------------------------------------ */
/* Sending prepared replies, now or later                              */
/* ------------------------------------------------------------------ */

static void
ma_reply_head(struct evhttp_request *req, const struct ma_reply *rep)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "request-id", rep->request_id);
    if (rep->stream) {
        evhttp_add_header(h, "Content-Type", MA_CT_SSE);
        evhttp_add_header(h, "Cache-Control", "no-cache");
        evhttp_send_reply_start(req, HTTP_OK, NULL);
    }
}

static void
ma_reply_event(struct evhttp_request *req, const char *ev)
{
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL)
        return;
    if (evbuffer_add(buf, ev, strlen(ev)) == 0)
        evhttp_send_reply_chunk(req, buf);
    evbuffer_free(buf);
}

/* After the last event: end the chunked body, or drop the connection. */
static void
ma_reply_end(struct evhttp_request *req, const struct ma_reply *rep)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (rep->cut && evcon != NULL)
        ma_close_after_flush(evcon);
    else
        evhttp_send_reply_end(req);
}

static void
ma_reply_all(struct evhttp_request *req, const struct ma_reply *rep)
{
    size_t i;

    ma_reply_head(req, rep);
    if (!rep->stream) {
        ma_send_text(req, HTTP_OK, MA_CT_JSON, rep->body, rep->body_len);
        return;
    }
    for (i = 0; i < rep->nevents; i++)
        ma_reply_event(req, rep->events[i]);
    ma_reply_end(req, rep);
}

static void
ma_job_free(struct ma_job *job)
{
    struct ma_ctx *ctx = job->ctx;

    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        ctx->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    if (job->timer != NULL)
        event_free(job->timer);
    ma_reply_free(&job->reply);
    free(job);
}

/* The client left (or shutdown) before the job finished. */
static void
ma_job_closecb(struct evhttp_connection *evcon, void *arg)
{
    struct ma_job *job = arg;

    (void)evcon;
    if (evhttp_request_get_connection(job->req) == NULL)
        evhttp_request_free(job->req);
    ma_job_free(job);
}

static void
ma_job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ma_job *job = arg;
    const struct ma_reply *rep = &job->reply;

    (void)fd;
    (void)what;
    if (!job->drip || !rep->stream) {
        evhttp_connection_set_closecb(job->evcon, NULL, NULL);
        ma_reply_all(job->req, rep);
        ma_job_free(job);
        return;
    }
    ma_reply_event(job->req, rep->events[job->cursor++]);
    if (job->cursor < rep->nevents
        && evtimer_add(job->timer, &job->delay) == 0)
        return;
    while (job->cursor < rep->nevents)
        ma_reply_event(job->req, rep->events[job->cursor++]);
    /* Detach first: a cut frees the connection. */
    evhttp_connection_set_closecb(job->evcon, NULL, NULL);
    ma_reply_end(job->req, rep);
    ma_job_free(job);
}

/* Keep reading while waiting, so a client leaving is noticed (EOF). */
static void
ma_watch_close(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    bufferevent_data_cb writecb = NULL;
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;

    bufferevent_getcb(bev, NULL, &writecb, &eventcb, &cbarg);
    bufferevent_setcb(bev, NULL, writecb, eventcb, cbarg);
    bufferevent_enable(bev, EV_READ);
}

/* Send rep after delay_ms (drip: one stream event per delay); takes rep. */
static void
ma_reply_later(struct ma_ctx *ctx, struct evhttp_request *req,
               struct ma_reply *rep, long delay_ms, int drip)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct ma_job *job = calloc(1, sizeof(*job));

    if (job == NULL || evcon == NULL)
        goto fail;
    job->timer = evtimer_new(ctx->base, ma_job_timer_cb, job);
    if (job->timer == NULL)
        goto fail;
    job->ctx = ctx;
    job->req = req;
    job->evcon = evcon;
    job->drip = drip;
    job->delay.tv_sec = delay_ms / MA_MS_PER_SEC;
    job->delay.tv_usec = (delay_ms % MA_MS_PER_SEC) * MA_US_PER_MS;
    job->reply = *rep;
    memset(rep, 0, sizeof(*rep));
    if (drip && job->reply.stream) {
        /* message_start goes out at once, the rest one per delay. */
        ma_reply_head(req, &job->reply);
        ma_reply_event(req, job->reply.events[job->cursor++]);
    }
    if (evtimer_add(job->timer, &job->delay) != 0) {
        if (job->cursor > 0)
            evhttp_send_reply_end(req);
        else
            evhttp_send_error(req, HTTP_INTERNAL, NULL);
        event_free(job->timer);
        ma_reply_free(&job->reply);
        free(job);
        return;
    }
    job->next = ctx->jobs;
    if (ctx->jobs != NULL)
        ctx->jobs->prev = job;
    ctx->jobs = job;
    evhttp_connection_set_closecb(evcon, ma_job_closecb, job);
    ma_watch_close(evcon);
    return;

fail:
    if (job != NULL && job->timer != NULL)
        event_free(job->timer);
    free(job);
    ma_reply_free(rep);
    ma_send_error(ctx, req, HTTP_INTERNAL, "mock could not schedule");
}

/* ------------------------------------------------------------------ */
/* Handlers                                                            */
/* ------------------------------------------------------------------ */

static void
ma_answer(struct ma_ctx *ctx, struct evhttp_request *req,
          const struct ma_request *r, enum ma_mode mode, long arg)
{
    struct ma_answer a;
    struct ma_reply rep;
    int rc;

    memset(&rep, 0, sizeof(rep));
    ma_next_request_id(ctx, rep.request_id, sizeof(rep.request_id));
    if (ma_answer_build(ctx, r, mode, &a) != 0) {
        ma_answer_free(&a);
        ma_reply_free(&rep);
        ma_send_error(ctx, req, HTTP_INTERNAL, "mock out of memory");
        return;
    }
    rep.stream = r->stream;
    if (r->stream) {
        rc = ma_stream_build(&a, mode, &rep);
    } else {
        struct json_object *msg = ma_message(&a, 1);

        rep.body = strdup(ma_to_json(msg));
        rep.body_len = rep.body != NULL ? strlen(rep.body) : 0;
        rc = rep.body != NULL ? 0 : -1;
        json_object_put(msg);
    }
    ma_answer_free(&a);
    if (rc != 0) {
        ma_reply_free(&rep);
        ma_send_error(ctx, req, HTTP_INTERNAL, "mock out of memory");
        return;
    }
    if (mode == MA_MODE_SLOW || mode == MA_MODE_DRIP) {
        ma_reply_later(ctx, req, &rep, arg, mode == MA_MODE_DRIP);
        return;
    }
    ma_reply_all(req, &rep);
    ma_reply_free(&rep);
}

static void
ma_messages_cb(struct evhttp_request *req, void *arg)
{
    struct ma_ctx *ctx = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *key = evhttp_find_header(in, "x-api-key");
    const char *err;
    struct ma_request r;
    enum ma_mode mode;
    long marg;

    ma_record(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        ma_send_error(ctx, req, HTTP_BADMETHOD, "Method not allowed.");
        return;
    }
    if (key == NULL || strcmp(key, ctx->key) != 0) {
        ma_log(ctx, req, "401");
        ma_send_error(ctx, req, MA_HTTP_UNAUTHORIZED, "invalid x-api-key");
        return;
    }
    if (evhttp_find_header(in, "anthropic-version") == NULL) {
        ma_send_error(ctx, req, HTTP_BADREQUEST,
                      "anthropic-version: header is required");
        return;
    }
    err = ma_read_request(ctx, req, &r);
    if (err != NULL) {
        ma_log(ctx, req, err);
        ma_send_error(ctx, req, HTTP_BADREQUEST, err);
        ma_request_free(&r);
        return;
    }
    ma_log(ctx, req, r.model);
    mode = ma_parse_mode(ctx, r.model, &marg);
    if (mode == MA_MODE_STREAM_ERROR && !r.stream) {
        mode = MA_MODE_STATUS;
        marg = MA_HTTP_OVERLOADED;
    }
    if (mode == MA_MODE_STATUS) {
        ma_send_status(ctx, req, (int)marg);
    } else if (mode == MA_MODE_GARBAGE) {
        ma_send_text(req, HTTP_OK, MA_CT_JSON, ma_garbage_body,
                     MA_LIT_LEN(ma_garbage_body));
    } else if (mode == MA_MODE_CUT && !r.stream) {
        ma_send_cut_plain(req);
    } else {
        ma_answer(ctx, req, &r, mode, marg);
    }
    ma_request_free(&r);
}

static void
ma_models_cb(struct evhttp_request *req, void *arg)
{
    struct ma_ctx *ctx = arg;
    struct json_object *o, *list, *m;
    char rid[MA_ID_BUF];

    ma_record(ctx, req);
    ma_log(ctx, req, NULL);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        ma_send_error(ctx, req, HTTP_BADMETHOD, "Method not allowed.");
        return;
    }
    if (ctx->models_fail) {
        ma_send_status(ctx, req, HTTP_INTERNAL);
        return;
    }
    o = json_object_new_object();
    list = json_object_new_array();
    m = ma_typed("model", -1);
    json_object_object_add(m, "id", json_object_new_string(MA_MODEL_ID));
    json_object_object_add(m, "display_name",
                           json_object_new_string(MA_MODEL_NAME));
    json_object_object_add(m, "created_at",
                           json_object_new_string(MA_MODEL_CREATED));
    json_object_array_add(list, m);
    json_object_object_add(o, "data", list);
    json_object_object_add(o, "has_more", json_object_new_boolean(0));
    json_object_object_add(o, "first_id", json_object_new_string(MA_MODEL_ID));
    json_object_object_add(o, "last_id", json_object_new_string(MA_MODEL_ID));
    ma_next_request_id(ctx, rid, sizeof(rid));
    evhttp_add_header(evhttp_request_get_output_headers(req), "request-id",
                      rid);
    ma_send_json(req, HTTP_OK, o);
    json_object_put(o);
}

static void
ma_calls_cb(struct evhttp_request *req, void *arg)
{
    struct ma_ctx *ctx = arg;
    struct json_object *o = json_object_new_object();
    struct json_object *list = json_object_new_array();
    unsigned long i = ctx->count > MA_RECORD_MAX
                      ? ctx->count - MA_RECORD_MAX : 0;

    for (; i < ctx->count; i++) {
        const struct ma_record *r = &ctx->records[i % MA_RECORD_MAX];
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "method", ma_str_or_null(r->method));
        json_object_object_add(e, "uri", ma_str_or_null(r->uri));
        json_object_object_add(e, "headers", json_object_get(r->headers));
        json_object_object_add(e, "body", r->body == NULL ? NULL
                               : json_object_new_string_len(
                                   r->body, (int)r->body_len));
        json_object_array_add(list, e);
    }
    json_object_object_add(o, "count",
                           json_object_new_int64((int64_t)ctx->count));
    json_object_object_add(o, "records", list);
    ma_send_json(req, HTTP_OK, o);
    json_object_put(o);
}

static void
ma_last_cb(struct evhttp_request *req, void *arg)
{
    const struct ma_ctx *ctx = arg;
    const struct ma_record *r = ma_last_record(ctx);
    const char *path = evhttp_request_get_uri(req);

    if (r == NULL) {
        ma_send_text(req, HTTP_NOTFOUND, MA_CT_TEXT, "", 0);
        return;
    }
    if (strcmp(path, "/_last/body") == 0)
        ma_send_text(req, HTTP_OK, MA_CT_TEXT, r->body != NULL ? r->body : "",
                     r->body != NULL ? r->body_len : 0);
    else {
        const char *s = r->raw_headers != NULL ? r->raw_headers : "";

        ma_send_text(req, HTTP_OK, MA_CT_TEXT, s, strlen(s));
    }
}

static void
ma_reset_cb(struct evhttp_request *req, void *arg)
{
    struct ma_ctx *ctx = arg;
    size_t i;

    for (i = 0; i < MA_RECORD_MAX; i++)
        ma_record_clear(&ctx->records[i]);
    ctx->count = 0;
    ctx->models_fail = 0;
    memset(ctx->fails, 0, sizeof(ctx->fails));
    ma_send_text(req, HTTP_OK, MA_CT_JSON, "{\"ok\":true}",
                 MA_LIT_LEN("{\"ok\":true}"));
}

static void
ma_control_cb(struct evhttp_request *req, void *arg)
{
    struct ma_ctx *ctx = arg;
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(
        evhttp_request_get_evhttp_uri(req));
    const char *v;
    int ok = 0;

    TAILQ_INIT(&q);
    if (query != NULL && evhttp_parse_query_str(query, &q) == 0
        && (v = evhttp_find_header(&q, "models")) != NULL) {
        if (strcmp(v, "fail") == 0 || strcmp(v, "ok") == 0) {
            ctx->models_fail = strcmp(v, "fail") == 0;
            ok = 1;
        }
    }
    evhttp_clear_headers(&q);
    if (ok)
        ma_send_text(req, HTTP_OK, MA_CT_JSON, "{\"ok\":true}",
                     MA_LIT_LEN("{\"ok\":true}"));
    else
        ma_send_error(ctx, req, HTTP_BADREQUEST, "control: models=fail|ok");
}

static void
ma_not_found_cb(struct evhttp_request *req, void *arg)
{
    struct ma_ctx *ctx = arg;

    if (strncmp(evhttp_request_get_uri(req), "/v1/", strlen("/v1/")) == 0)
        ma_record(ctx, req);
    ma_log(ctx, req, "404");
    ma_send_error(ctx, req, HTTP_NOTFOUND, "Not found");
}

/* ------------------------------------------------------------------ */
/* Startup and shutdown                                                */
/* ------------------------------------------------------------------ */

static void
ma_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct ma_ctx *ctx = arg;

    (void)sig;
    (void)what;
    event_base_loopbreak(ctx->base);
}

static void
ma_usage(FILE *fp)
{
    fprintf(fp, "usage: %s [-a ADDR] [-p PORT] [-P PORTFILE] [-k KEY] [-q]\n"
            "  -a ADDR      listen address (default %s)\n"
            "  -p PORT      listen port, 0 = ephemeral (default %d)\n"
            "  -P PORTFILE  write the bound port to PORTFILE\n"
            "  -k KEY       the accepted x-api-key (default %s)\n"
            "  -q           no per-request logging\n",
            MA_NAME, MA_DEFAULT_ADDR, MA_DEFAULT_PORT, MA_DEFAULT_KEY);
}

static int
ma_parse_args(struct ma_ctx *ctx, int argc, char **argv)
{
    int opt;
    long port;

    ctx->addr = MA_DEFAULT_ADDR;
    ctx->port = MA_DEFAULT_PORT;
    ctx->key = MA_DEFAULT_KEY;
    while ((opt = getopt(argc, argv, "a:p:P:k:qh")) != -1) {
        switch (opt) {
        case 'a':
            ctx->addr = optarg;
            break;
        case 'p':
            if (ma_parse_number(optarg, 0, MA_PORT_MAX, &port) != 0) {
                fprintf(stderr, "%s: bad port '%s'\n", MA_NAME, optarg);
                return -1;
            }
            ctx->port = (int)port;
            break;
        case 'P':
            ctx->portfile = optarg;
            break;
        case 'k':
            ctx->key = optarg;
            break;
        case 'q':
            ctx->quiet = 1;
            break;
        case 'h':
            ma_usage(stdout);
            exit(EXIT_SUCCESS);
        default:
            ma_usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        ma_usage(stderr);
        return -1;
    }
    return 0;
}

/* Write "PORT\n" to PORTFILE.tmp, then rename it over PORTFILE. */
static int
ma_write_portfile(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    FILE *fp;
    int n;

    n = snprintf(tmp, sizeof(tmp), "%s%s", path, MA_TMP_SUFFIX);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    fp = fopen(tmp, "w");
    if (fp == NULL)
        return -1;
    if (fprintf(fp, "%u\n", port) < 0) {
        fclose(fp);
        unlink(tmp);
        return -1;
    }
    if (fclose(fp) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static unsigned
ma_bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

static int
ma_setup(struct ma_ctx *ctx)
{
    struct sigaction sa;
    struct evhttp_bound_socket *sock;
    evutil_socket_t fd;
    unsigned port;
    int one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    ctx->base = event_base_new();
    if (ctx->base == NULL)
        return -1;
    ctx->tok = json_tokener_new();
    ctx->http = evhttp_new(ctx->base);
    ctx->ev_sigterm = evsignal_new(ctx->base, SIGTERM, ma_signal_cb, ctx);
    ctx->ev_sigint = evsignal_new(ctx->base, SIGINT, ma_signal_cb, ctx);
    if (ctx->tok == NULL || ctx->http == NULL || ctx->ev_sigterm == NULL
        || ctx->ev_sigint == NULL
        || evsignal_add(ctx->ev_sigterm, NULL) != 0
        || evsignal_add(ctx->ev_sigint, NULL) != 0)
        return -1;
    json_tokener_set_flags(ctx->tok, JSON_TOKENER_STRICT);
    evhttp_set_allowed_methods(ctx->http, MA_ALL_METHODS);
    evhttp_set_timeout(ctx->http, MA_HTTP_TIMEOUT_SEC);
    evhttp_set_max_body_size(ctx->http, MA_MAX_BODY_BYTES);
    if (evhttp_set_cb(ctx->http, "/v1/messages", ma_messages_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/v1/models", ma_models_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/_calls", ma_calls_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/_last/body", ma_last_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/_last/headers", ma_last_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/_reset", ma_reset_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/_control", ma_control_cb, ctx) != 0)
        return -1;
    evhttp_set_gencb(ctx->http, ma_not_found_cb, ctx);

    sock = evhttp_bind_socket_with_handle(ctx->http, ctx->addr,
                                          (ev_uint16_t)ctx->port);
    if (sock == NULL) {
        fprintf(stderr, "%s: cannot listen on %s:%d\n", MA_NAME, ctx->addr,
                ctx->port);
        return -1;
    }
    fd = evhttp_bound_socket_get_fd(sock);
    /* Accepted sockets inherit this (Linux): no Nagle stalls on SSE. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        fprintf(stderr, "%s: TCP_NODELAY: %s\n", MA_NAME, strerror(errno));
    port = ma_bound_port(fd);
    if (port == 0)
        return -1;
    if (ctx->portfile != NULL && ma_write_portfile(ctx->portfile, port) != 0) {
        fprintf(stderr, "%s: cannot write port file %s: %s\n", MA_NAME,
                ctx->portfile, strerror(errno));
        return -1;
    }
    printf("%s listening %s:%u\n", MA_NAME, ctx->addr, port);
    fflush(stdout);
    return 0;
}

static void
ma_teardown(struct ma_ctx *ctx)
{
    size_t i;

    /* Frees every connection; pending jobs are released via closecb. */
    if (ctx->http != NULL)
        evhttp_free(ctx->http);
    while (ctx->jobs != NULL)
        ma_job_free(ctx->jobs);
    for (i = 0; i < MA_RECORD_MAX; i++)
        ma_record_clear(&ctx->records[i]);
    if (ctx->ev_sigterm != NULL)
        event_free(ctx->ev_sigterm);
    if (ctx->ev_sigint != NULL)
        event_free(ctx->ev_sigint);
    if (ctx->tok != NULL)
        json_tokener_free(ctx->tok);
    if (ctx->base != NULL)
        event_base_free(ctx->base);
    libevent_global_shutdown();
}

int
main(int argc, char **argv)
{
    struct ma_ctx ctx;
    int rc = EXIT_FAILURE;

    memset(&ctx, 0, sizeof(ctx));
    if (ma_parse_args(&ctx, argc, argv) != 0)
        return MA_EXIT_USAGE;
    if (ma_setup(&ctx) == 0 && event_base_dispatch(ctx.base) >= 0)
        rc = EXIT_SUCCESS;
    ma_teardown(&ctx);
    return rc;
}
