/*
 * tests/mock/mock_upstream.c
 *
 * Owns the mock OpenAI-compatible upstream used by the rcc-pipeline tests
 * and benchmarks.  It is a standalone, single-threaded libevent (evhttp)
 * server; it shares no code or headers with the daemon.
 *
 *   mock_upstream [-a ADDR] [-p PORT] [-P PORTFILE] [-q]
 *
 * POST /v1/chat/completions picks its behaviour from the request's "model"
 * string (see mock_parse_mode()): echo answers (plain or SSE stream), a
 * precomputed "fast" answer for benchmarks, forced HTTP error statuses,
 * malformed / mistyped / truncated bodies, cut or unterminated streams,
 * streams whose events span two data: lines,
 * delayed answers and word-by-word dripping streams.  GET /v1/models,
 * GET /stats and POST /stats/reset exist for the test harness; everything
 * else is an OpenAI-shaped 404.  GET /stats/models counts the GET
 * /v1/models calls (health probes): {"models":N,"authorized":M}, M of
 * them with an "Authorization: Bearer " header; POST
 * /stats/models?fail=1 makes /v1/models answer 503 until ?fail=0.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define MOCK_NAME               "mock_upstream"
#define MOCK_DEFAULT_ADDR       "127.0.0.1"
#define MOCK_DEFAULT_PORT       0
#define MOCK_PORT_MAX           65535
#define MOCK_EXIT_USAGE         2
#define MOCK_TMP_SUFFIX         ".tmp"
#define MOCK_DECIMAL            10

/* Idle / stalled connections are dropped after this long. */
#define MOCK_HTTP_TIMEOUT_SEC   3600
/* Request bodies larger than this are refused by evhttp. */
#define MOCK_MAX_BODY_BYTES     (64L * 1024L * 1024L)
/* Upper bound for the slow-MS and drip-MS delays. */
#define MOCK_MAX_DELAY_MS       600000L
#define MOCK_MS_PER_SEC         1000L
#define MOCK_US_PER_MS          1000L

/* status-NNN accepts exactly three digits in this range. */
#define MOCK_STATUS_DIGITS      3
#define MOCK_STATUS_MIN         200L
#define MOCK_STATUS_MAX         599L
#define MOCK_STATUS_CLASS_5XX   500
#define MOCK_STATUS_CLASS_4XX   400
#define MOCK_HTTP_UNAUTHORIZED  401
#define MOCK_HTTP_FORBIDDEN     403
#define MOCK_HTTP_UNPROCESSABLE 422
#define MOCK_HTTP_TOO_MANY      429

/* stream-cut: content chunks sent before the connection is dropped. */
#define MOCK_CUT_WORDS          2

/*
 * Fast-path pre-scan limits.  Both are below json-c's own limits, so
 * anything the scanner accepts json-c accepts too; anything deeper or
 * longer simply takes the full json-c path.
 */
#define MOCK_SCAN_MAX_DEPTH     16
#define MOCK_SCAN_MAX_NUMBER    32

/* Room for the error messages built with snprintf(). */
#define MOCK_MSG_BUF            320

/* Characters below this must be \u-escaped inside JSON strings. */
#define MOCK_JSON_CTRL_LIMIT    0x20
/* "\u00XX" plus NUL. */
#define MOCK_UNICODE_ESC_SIZE   7

#define MOCK_ALL_METHODS                                                  \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT  \
     | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE          \
     | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

#define MOCK_CT_JSON            "application/json"
#define MOCK_CT_SSE             "text/event-stream"
#define MOCK_CT_HTML            "text/html"

#define MOCK_PREFIX_STATUS      "status-"
#define MOCK_PREFIX_SLOW        "slow-"
#define MOCK_PREFIX_DRIP        "drip-"
#define MOCK_PREFIX_BIG         "big-"   /* big-KB: a stream of KB KiB */
/* failN-SSS: the first N calls naming this model answer status SSS
 * (with Retry-After: 1 for 429 and 503), later ones succeed. Counted per
 * model string until POST /stats/reset. */
#define MOCK_PREFIX_FAIL        "fail"
#define MOCK_BACKLOG            1024
#define MOCK_FAIL_SLOTS         32
#define MOCK_FAIL_MODEL_MAX     64
#define MOCK_FAIL_MAX_N         1000
#define MOCK_BIG_MAX_KB         (256 * 1024)
#define MOCK_BIG_WORD           "0123456789abcdef0123456789abcdef"
#define MOCK_ECHO_PREFIX        "echo: "
#define MOCK_AUTH_PREFIX        "auth: "
#define MOCK_AUTH_NONE          "none"

#define MOCK_ERR_INVALID        "invalid_request_error"
#define MOCK_ERR_SERVER         "server_error"
#define MOCK_BEARER             "Bearer "

/* Length of a string literal, without the terminating NUL. */
#define MOCK_LIT_LEN(s)         (sizeof(s) - 1)

/*
 * Benchmark answer for model "fast": sent by reference, never rebuilt.
 * Token counts are fixed and consistent with the content.
 */
static const char mock_fast_body[] =
    "{\"id\":\"chatcmpl-mock-fast\",\"object\":\"chat.completion\","
    "\"created\":1700000000,\"model\":\"fast\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":"
    "\"fast mock answer\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3,"
    "\"total_tokens\":4}}";

static const char mock_garbage_body[] = "this is not json {{{";
static const char mock_wrongtype_body[] = "<html>hello</html>";

static const char mock_models_body[] =
    "{\"object\":\"list\",\"data\":[{\"id\":\"mock\",\"object\":\"model\","
    "\"owned_by\":\"mock\"}]}";

static const char mock_reset_body[] = "{\"ok\":true}";

static const char mock_sse_done[] = "data: [DONE]\n\n";

/*
 * "truncated": a raw response that announces 1000 body bytes but carries
 * only the first ~40 bytes of a JSON object before the connection closes.
 */
static const char mock_truncated_raw[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: " MOCK_CT_JSON "\r\n"
    "Content-Length: 1000\r\n"
    "\r\n"
    "{\"id\":\"chatcmpl-mock-trunc\",\"object\":\"ch";

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

enum mock_mode {
    MOCK_MODE_DEFAULT,
    MOCK_MODE_FAST,
    MOCK_MODE_STATUS,
    MOCK_MODE_GARBAGE,
    MOCK_MODE_WRONGTYPE,
    MOCK_MODE_TRUNCATED,
    MOCK_MODE_SLOW,
    MOCK_MODE_STREAM_CUT,
    MOCK_MODE_STREAM_NODONE,
    MOCK_MODE_ECHO_AUTH,
    MOCK_MODE_DRIP,
    MOCK_MODE_BIG,
    MOCK_MODE_FAIL,
    MOCK_MODE_MULTILINE
};

/* Fixed-name models (the parameterised ones are handled separately). */
struct mock_named_mode {
    const char *model;
    enum mock_mode mode;
};

static const struct mock_named_mode mock_named_modes[] = {
    { "fast", MOCK_MODE_FAST },
    { "garbage", MOCK_MODE_GARBAGE },
    { "wrongtype", MOCK_MODE_WRONGTYPE },
    { "truncated", MOCK_MODE_TRUNCATED },
    { "stream-cut", MOCK_MODE_STREAM_CUT },
    { "stream-nodone", MOCK_MODE_STREAM_NODONE },
    { "echo-auth", MOCK_MODE_ECHO_AUTH },
    { "stream-multiline", MOCK_MODE_MULTILINE }
};

/* What goes into the "delta" of one SSE chunk. */
enum mock_delta {
    MOCK_DELTA_ROLE,
    MOCK_DELTA_CONTENT,
    MOCK_DELTA_FINISH
};

/* How a stream ends. */
enum mock_stream_end {
    MOCK_END_FULL,          /* finish_reason chunk, [DONE], last chunk */
    MOCK_END_NO_DONE        /* last chunk only */
};

/* Everything needed to render one echo answer (plain or streamed). */
struct mock_answer {
    const char *model;      /* borrowed (request JSON or job copy) */
    char *text;             /* owned, "echo: ..." / "auth: ..." */
    size_t text_len;
    unsigned long id;
    long long created;
    size_t prompt_tokens;
    size_t completion_tokens;
    int stream;
    int include_usage;      /* stream_options.include_usage: usage in a
                               chunk of its own at the end, else none */
    int multiline;          /* each event's JSON split over two data: lines */
};

enum mock_job_kind {
    MOCK_JOB_SLOW,          /* timer, then a normal answer */
    MOCK_JOB_DRIP           /* timer per streamed word */
};

struct mock_ctx;

/*
 * A request whose answer outlives its callback.  Linked into the context
 * and registered as the connection's close callback, so a client going
 * away (or shutdown) cancels the timer and frees it.
 */
struct mock_job {
    struct mock_ctx *ctx;
    struct mock_job *prev;
    struct mock_job *next;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    struct timeval delay;
    enum mock_job_kind kind;
    size_t cursor;          /* drip: offset of the next word */
    char *model;            /* owned copy; ans.model points here */
    struct mock_answer ans;
};

struct mock_ctx {
    const char *addr;
    const char *portfile;
    int port;
    int quiet;
    struct event_base *base;
    struct evhttp *http;
    struct event *ev_sigterm;
    struct event *ev_sigint;
    struct json_tokener *tok;
    struct evbuffer *chunk;     /* scratch for one SSE event */
    struct mock_job *jobs;
    unsigned long requests;
    unsigned long aborted;      /* clients that left before their answer */
    unsigned long models_calls;     /* GET /v1/models */
    unsigned long models_authorized;    /* of those, with a Bearer key */
    int models_fail;            /* /v1/models answers 503 */
    struct {
        char model[MOCK_FAIL_MODEL_MAX];
        long seen;
    } fails[MOCK_FAIL_SLOTS];
    unsigned long next_id;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int
mock_put(struct evbuffer *out, const char *s)
{
    return evbuffer_add(out, s, strlen(s));
}

/* Append s[0..len) JSON-escaped, without surrounding quotes. */
static int
mock_json_chars(struct evbuffer *out, const char *s, size_t len)
{
    char esc[MOCK_UNICODE_ESC_SIZE];
    size_t run = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep;

        if (c >= MOCK_JSON_CTRL_LIMIT && c != '"' && c != '\\')
            continue;
        if (i > run && evbuffer_add(out, s + run, i - run) != 0)
            return -1;
        run = i + 1;
        switch (c) {
        case '"':  rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        case '\b': rep = "\\b"; break;
        case '\f': rep = "\\f"; break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
            rep = esc;
            break;
        }
        if (mock_put(out, rep) != 0)
            return -1;
    }
    if (len > run && evbuffer_add(out, s + run, len - run) != 0)
        return -1;
    return 0;
}

/* Append s as a quoted JSON string. */
static int
mock_json_str(struct evbuffer *out, const char *s)
{
    if (evbuffer_add(out, "\"", 1) != 0
        || mock_json_chars(out, s, strlen(s)) != 0
        || evbuffer_add(out, "\"", 1) != 0)
        return -1;
    return 0;
}

static size_t
mock_count_words(const char *s, size_t len)
{
    size_t words = 0;
    int in_word = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (isspace((unsigned char)s[i])) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    return words;
}

/*
 * Find the word at or after *pos in text.  On success sets *word, *wlen,
 * *last (no word follows) and advances *pos past the word.
 */
static int
mock_next_word(const char *text, size_t len, size_t *pos,
               const char **word, size_t *wlen, int *last)
{
    size_t i = *pos;
    size_t start;

    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i >= len)
        return 0;
    start = i;
    while (i < len && !isspace((unsigned char)text[i]))
        i++;
    *word = text + start;
    *wlen = i - start;
    *pos = i;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    *last = (i >= len);
    return 1;
}

/* Parse a decimal number made only of digits, within [min, max]. */
static int
mock_parse_number(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;
    const char *p;

    if (*s == '\0')
        return -1;
    for (p = s; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
    }
    errno = 0;
    v = strtol(s, &end, MOCK_DECIMAL);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static const char *
mock_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:     return "GET";
    case EVHTTP_REQ_POST:    return "POST";
    case EVHTTP_REQ_HEAD:    return "HEAD";
    case EVHTTP_REQ_PUT:     return "PUT";
    case EVHTTP_REQ_DELETE:  return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE:   return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH:   return "PATCH";
    default:                 return "?";
    }
}

static void
mock_log(const struct mock_ctx *ctx, const struct evhttp_request *req,
         const char *detail)
{
    if (ctx->quiet)
        return;
    fprintf(stderr, "%s: %s %s%s%s\n", MOCK_NAME,
            mock_method_name(evhttp_request_get_command(req)),
            evhttp_request_get_uri(req),
            detail != NULL ? " " : "", detail != NULL ? detail : "");
}

/* ------------------------------------------------------------------ */
/* Plain replies                                                       */
/* ------------------------------------------------------------------ */

/* Reason phrases libevent 2.1 does not know (it says "Client Error"). */
static const char *
mock_reason(int code)
{
    switch (code) {
    case MOCK_HTTP_UNPROCESSABLE: return "Unprocessable Entity";
    case MOCK_HTTP_TOO_MANY:      return "Too Many Requests";
    default:                      return NULL;
    }
}

static void
mock_set_type(struct evhttp_request *req, const char *ctype)
{
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", ctype);
}

/* Reply with a static body; the data is referenced, not copied. */
static void
mock_reply_static(struct evhttp_request *req, int code, const char *ctype,
                  const char *body, size_t len)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    if (evbuffer_add_reference(out, body, len, NULL, NULL) != 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    mock_set_type(req, ctype);
    evhttp_send_reply(req, code, NULL, NULL);
}

/*
 * Send whatever the caller built in the request's output buffer as JSON,
 * or a bare 500 if building failed (built != 0).
 */
static void
mock_reply_built(struct evhttp_request *req, int code, int built)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    if (built != 0) {
        evbuffer_drain(out, evbuffer_get_length(out));
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    mock_set_type(req, MOCK_CT_JSON);
    evhttp_send_reply(req, code, mock_reason(code), NULL);
}

/* OpenAI-shaped error: {"error":{"message","type","param","code"}}. */
static void
mock_send_error(struct evhttp_request *req, int code, const char *type,
                const char *errcode, const char *message)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    int rc;

    rc = (mock_put(out, "{\"error\":{\"message\":") != 0
          || mock_json_str(out, message) != 0
          || mock_put(out, ",\"type\":") != 0
          || mock_json_str(out, type) != 0
          || mock_put(out, ",\"param\":null,\"code\":") != 0
          || mock_json_str(out, errcode) != 0
          || mock_put(out, "}}") != 0) ? -1 : 0;
    mock_reply_built(req, code, rc);
}

static void
mock_send_bad_method(struct evhttp_request *req)
{
    mock_send_error(req, HTTP_BADMETHOD, MOCK_ERR_INVALID,
                    "method_not_allowed",
                    "Method not allowed on this endpoint.");
}

/* status-NNN: the requested status with a matching OpenAI error body. */
static void
mock_send_status(struct evhttp_request *req, int code)
{
    char message[MOCK_MSG_BUF];
    const char *type = MOCK_ERR_INVALID;
    const char *errcode = "mock_status";

    if (code == MOCK_HTTP_UNAUTHORIZED) {
        type = "authentication_error";
        errcode = "invalid_api_key";
    } else if (code == MOCK_HTTP_FORBIDDEN) {
        type = "permission_error";
        errcode = "forbidden";
    } else if (code == HTTP_NOTFOUND) {
        errcode = "model_not_found";
    } else if (code == MOCK_HTTP_TOO_MANY) {
        type = "rate_limit_error";
        errcode = "rate_limit_exceeded";
    } else if (code == HTTP_SERVUNAVAIL) {
        type = MOCK_ERR_SERVER;
        errcode = "service_unavailable";
    } else if (code >= MOCK_STATUS_CLASS_5XX) {
        type = MOCK_ERR_SERVER;
        errcode = MOCK_ERR_SERVER;
    } else if (code == HTTP_BADREQUEST) {
        errcode = "bad_request";
    } else if (code < MOCK_STATUS_CLASS_4XX) {
        type = "mock_status";
    }
    if (code == MOCK_HTTP_TOO_MANY || code == HTTP_SERVUNAVAIL)
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Retry-After", "1");
    snprintf(message, sizeof(message),
             "Mock upstream forced HTTP status %d.", code);
    if (code == MOCK_HTTP_UNAUTHORIZED) {
        /* As OpenAI does: quote the key refused (a gateway must not pass
         * it on). */
        const char *auth = evhttp_find_header(
            evhttp_request_get_input_headers(req), "Authorization");

        if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
            snprintf(message, sizeof(message), "Incorrect API key "
                     "provided: %.200s.", auth + 7);
    }
    mock_send_error(req, code, type, errcode, message);
}

/* Non-stream chat.completion object for an echo answer. */
static void
mock_send_completion(struct evhttp_request *req,
                     const struct mock_answer *ans)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    int rc;

    rc = (evbuffer_add_printf(out, "{\"id\":\"chatcmpl-mock-%lu\","
                              "\"object\":\"chat.completion\","
                              "\"created\":%lld,\"model\":",
                              ans->id, ans->created) < 0
          || mock_json_str(out, ans->model) != 0
          || mock_put(out, ",\"choices\":[{\"index\":0,\"message\":"
                      "{\"role\":\"assistant\",\"content\":\"") != 0
          || mock_json_chars(out, ans->text, ans->text_len) != 0
          || mock_put(out, "\"},\"finish_reason\":\"stop\"}],") != 0
          || evbuffer_add_printf(out, "\"usage\":{\"prompt_tokens\":%zu,"
                                 "\"completion_tokens\":%zu,"
                                 "\"total_tokens\":%zu}}",
                                 ans->prompt_tokens,
                                 ans->completion_tokens,
                                 ans->prompt_tokens
                                 + ans->completion_tokens) < 0) ? -1 : 0;
    mock_reply_built(req, HTTP_OK, rc);
}

/* ------------------------------------------------------------------ */
/* Raw, deliberately broken replies                                    */
/* ------------------------------------------------------------------ */

/* Output flushed (or failed): drop the connection and its request. */
static void
mock_raw_flushed_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    evhttp_connection_free(arg);
}

static void
mock_raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    evhttp_connection_free(arg);
}

/*
 * Take the connection away from evhttp: once everything already queued
 * in its output is on the wire (or writing fails) the connection is
 * freed, closing the socket mid-response.  The unanswered request is
 * still queued on the connection, so evhttp_connection_free() frees it
 * too (as does evhttp_free() on shutdown); evhttp never sees the
 * connection again, so nothing is freed twice and nothing else is owned.
 */
static void
mock_close_after_flush(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, mock_raw_flushed_cb, mock_raw_event_cb,
                      evcon);
    bufferevent_enable(bev, EV_WRITE);
}

/*
 * "truncated": evhttp cannot lie about Content-Length, so write a raw
 * response head plus a partial body straight into the connection's
 * bufferevent, then drop the connection.
 */
static void
mock_send_truncated(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon == NULL)
        return;
    if (evbuffer_add(bufferevent_get_output(
                         evhttp_connection_get_bufferevent(evcon)),
                     mock_truncated_raw,
                     MOCK_LIT_LEN(mock_truncated_raw)) != 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    mock_close_after_flush(evcon);
}

/* ------------------------------------------------------------------ */
/* Server-sent event streams                                           */
/* ------------------------------------------------------------------ */

static void
mock_stream_begin(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", MOCK_CT_SSE);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(req, HTTP_OK, NULL);
}

/* Render one "data: <chat.completion.chunk>\n\n" event into out. */
static int
mock_build_event(struct evbuffer *out, const struct mock_answer *ans,
                 enum mock_delta delta, const char *word, size_t wlen,
                 int space)
{
    if (evbuffer_add_printf(out, "data: {\"id\":\"chatcmpl-mock-%lu\","
                            "\"object\":\"chat.completion.chunk\","
                            "\"created\":%lld,\"model\":",
                            ans->id, ans->created) < 0
        || mock_json_str(out, ans->model) != 0
        || mock_put(out, ",\"choices\":[{\"index\":0,\"delta\":") != 0
        || (ans->multiline && mock_put(out, "\ndata: ") != 0))
        return -1;
    switch (delta) {
    case MOCK_DELTA_ROLE:
        if (mock_put(out, "{\"role\":\"assistant\"},"
                     "\"finish_reason\":null}]}\n\n") != 0)
            return -1;
        break;
    case MOCK_DELTA_CONTENT:
        if (mock_put(out, "{\"content\":\"") != 0
            || mock_json_chars(out, word, wlen) != 0
            || (space && evbuffer_add(out, " ", 1) != 0)
            || mock_put(out, "\"},\"finish_reason\":null}]}\n\n") != 0)
            return -1;
        break;
    case MOCK_DELTA_FINISH:
    default:
        if (mock_put(out, "{},\"finish_reason\":\"stop\"}]}\n\n") != 0)
            return -1;
        /* As OpenAI: the usage only when asked for, in a chunk of its
         * own with no choices. */
        if (ans->include_usage
            && (evbuffer_add_printf(out, "data: {\"id\":\"chatcmpl-mock-"
                                    "%lu\",\"object\":\"chat.completion."
                                    "chunk\",\"created\":%lld,\"model\":",
                                    ans->id, ans->created) < 0
                || mock_json_str(out, ans->model) != 0
                || evbuffer_add_printf(out, ",\"choices\":[],\"usage\":{"
                                       "\"prompt_tokens\":%zu,"
                                       "\"completion_tokens\":%zu,"
                                       "\"total_tokens\":%zu}}\n\n",
                                       ans->prompt_tokens,
                                       ans->completion_tokens,
                                       ans->prompt_tokens
                                       + ans->completion_tokens) < 0))
            return -1;
        break;
    }
    return 0;
}

/* Send one event as its own HTTP chunk. */
static void
mock_send_event(struct mock_ctx *ctx, struct evhttp_request *req,
                const struct mock_answer *ans, enum mock_delta delta,
                const char *word, size_t wlen, int space)
{
    if (mock_build_event(ctx->chunk, ans, delta, word, wlen, space) == 0)
        evhttp_send_reply_chunk(req, ctx->chunk);
    /* Not consumed when the connection is gone or on error. */
    evbuffer_drain(ctx->chunk, evbuffer_get_length(ctx->chunk));
}

static void
mock_send_done(struct mock_ctx *ctx, struct evhttp_request *req)
{
    if (evbuffer_add_reference(ctx->chunk, mock_sse_done,
                               MOCK_LIT_LEN(mock_sse_done), NULL,
                               NULL) == 0)
        evhttp_send_reply_chunk(req, ctx->chunk);
    evbuffer_drain(ctx->chunk, evbuffer_get_length(ctx->chunk));
}

/* Finish chunk (with usage), [DONE], and the terminating empty chunk. */
static void
mock_stream_finish(struct mock_ctx *ctx, struct evhttp_request *req,
                   const struct mock_answer *ans, enum mock_stream_end end)
{
    if (end == MOCK_END_FULL) {
        mock_send_event(ctx, req, ans, MOCK_DELTA_FINISH, NULL, 0, 0);
        mock_send_done(ctx, req);
    }
    evhttp_send_reply_end(req);
}

/* A whole stream at once: role, one chunk per word, then the end. */
static void
mock_stream_all(struct mock_ctx *ctx, struct evhttp_request *req,
                const struct mock_answer *ans, enum mock_stream_end end)
{
    size_t pos = 0;
    const char *word;
    size_t wlen;
    int last;

    mock_stream_begin(req);
    mock_send_event(ctx, req, ans, MOCK_DELTA_ROLE, NULL, 0, 0);
    while (mock_next_word(ans->text, ans->text_len, &pos, &word, &wlen,
                          &last))
        mock_send_event(ctx, req, ans, MOCK_DELTA_CONTENT, word, wlen,
                        !last);
    mock_stream_finish(ctx, req, ans, end);
}

/* big-KB: as fast as the socket takes it, about KB KiB of content
 * events (each a fixed 32-byte word), then a normal finish. Buffered whole
 * by libevent: tests use it to see the gateway's backpressure. */
static void
mock_stream_big(struct mock_ctx *ctx, struct evhttp_request *req,
                const struct mock_answer *ans, long kb)
{
    long events = kb * 1024 / (long)MOCK_LIT_LEN(MOCK_BIG_WORD);

    mock_stream_begin(req);
    mock_send_event(ctx, req, ans, MOCK_DELTA_ROLE, NULL, 0, 0);
    for (long i = 0; i < events; i++)
        mock_send_event(ctx, req, ans, MOCK_DELTA_CONTENT, MOCK_BIG_WORD,
                        MOCK_LIT_LEN(MOCK_BIG_WORD), 0);
    mock_stream_finish(ctx, req, ans, MOCK_END_FULL);
}

static void
mock_answer_send(struct mock_ctx *ctx, struct evhttp_request *req,
                 const struct mock_answer *ans)
{
    if (ans->stream)
        mock_stream_all(ctx, req, ans, MOCK_END_FULL);
    else
        mock_send_completion(req, ans);
}

/* ------------------------------------------------------------------ */
/* Deferred answers (slow-MS, drip-MS)                                 */
/* ------------------------------------------------------------------ */

static void
mock_answer_release(struct mock_answer *ans)
{
    free(ans->text);
    ans->text = NULL;
}

/* Unlink and free a job.  Never touches its request or connection. */
static void
mock_job_free(struct mock_job *job)
{
    struct mock_ctx *ctx = job->ctx;

    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        ctx->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    if (job->timer != NULL)
        event_free(job->timer);
    mock_answer_release(&job->ans);
    free(job->model);
    free(job);
}

/* Normal completion: detach from the connection, then free. */
static void
mock_job_done(struct mock_job *job)
{
    evhttp_connection_set_closecb(job->evcon, NULL, NULL);
    mock_job_free(job);
}

/*
 * The connection is going away before the job finished: the client
 * disconnected (evhttp then detaches the unanswered request and hands it
 * to us) or the server is shutting down (the request is still queued and
 * evhttp frees it right after this callback).
 */
static void
mock_job_closecb(struct evhttp_connection *evcon, void *arg)
{
    struct mock_job *job = arg;

    (void)evcon;
    job->ctx->aborted++;
    if (!job->ctx->quiet)
        fprintf(stderr, "%s: connection closed, pending answer dropped\n",
                MOCK_NAME);
    if (evhttp_request_get_connection(job->req) == NULL)
        evhttp_request_free(job->req);
    mock_job_free(job);
}

static void
mock_job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mock_job *job = arg;
    struct mock_ctx *ctx = job->ctx;
    const char *word;
    size_t wlen;
    int last;

    (void)fd;
    (void)what;
    if (job->kind == MOCK_JOB_SLOW) {
        evhttp_connection_set_closecb(job->evcon, NULL, NULL);
        mock_answer_send(ctx, job->req, &job->ans);
        mock_job_free(job);
        return;
    }
    /* MOCK_JOB_DRIP: one word per tick, then finish with the last one. */
    if (!mock_next_word(job->ans.text, job->ans.text_len, &job->cursor,
                        &word, &wlen, &last)) {
        last = 1;
    } else {
        mock_send_event(ctx, job->req, &job->ans, MOCK_DELTA_CONTENT, word,
                        wlen, !last);
    }
    if (!last && evtimer_add(job->timer, &job->delay) == 0)
        return;
    mock_stream_finish(ctx, job->req, &job->ans, MOCK_END_FULL);
    mock_job_done(job);
}

/*
 * Keep watching for EOF while a request waits for its answer.  evhttp
 * stops reading once a request is complete, so without this a client
 * that gives up would only be noticed when we finally write.  The read
 * callback stays NULL (like evhttp's own write state) so pipelined bytes
 * just wait in the input buffer; EOF goes to evhttp's event callback,
 * which frees the connection and thus calls mock_job_closecb().
 */
static void
mock_watch_close(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    bufferevent_data_cb writecb = NULL;
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;

    bufferevent_getcb(bev, NULL, &writecb, &eventcb, &cbarg);
    bufferevent_setcb(bev, NULL, writecb, eventcb, cbarg);
    bufferevent_enable(bev, EV_READ);
}

/* Create a job that takes over ans->text; NULL on failure. */
static struct mock_job *
mock_job_new(struct mock_ctx *ctx, struct evhttp_request *req,
             enum mock_job_kind kind, struct mock_answer *ans, long delay_ms)
{
    struct mock_job *job;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon == NULL)
        return NULL;
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        goto fail;
    job->model = strdup(ans->model);
    if (job->model == NULL)
        goto fail;
    job->timer = evtimer_new(ctx->base, mock_job_timer_cb, job);
    if (job->timer == NULL)
        goto fail;
    job->ctx = ctx;
    job->req = req;
    job->evcon = evcon;
    job->kind = kind;
    job->delay.tv_sec = delay_ms / MOCK_MS_PER_SEC;
    job->delay.tv_usec = (delay_ms % MOCK_MS_PER_SEC) * MOCK_US_PER_MS;
    job->ans = *ans;
    job->ans.model = job->model;
    ans->text = NULL;

    job->next = ctx->jobs;
    if (ctx->jobs != NULL)
        ctx->jobs->prev = job;
    ctx->jobs = job;
    evhttp_connection_set_closecb(evcon, mock_job_closecb, job);
    return job;

fail:
    if (job != NULL) {
        free(job->model);
        free(job);
    }
    return NULL;
}

static void
mock_start_slow(struct mock_ctx *ctx, struct evhttp_request *req,
                struct mock_answer *ans, long delay_ms)
{
    struct mock_job *job = mock_job_new(ctx, req, MOCK_JOB_SLOW, ans,
                                        delay_ms);

    if (job == NULL)
        goto fail;
    if (evtimer_add(job->timer, &job->delay) != 0) {
        mock_job_done(job);
        goto fail;
    }
    mock_watch_close(job->evcon);
    return;

fail:
    mock_send_error(req, HTTP_INTERNAL, MOCK_ERR_SERVER, MOCK_ERR_SERVER,
                    "mock upstream could not schedule the answer");
}

static void
mock_start_drip(struct mock_ctx *ctx, struct evhttp_request *req,
                struct mock_answer *ans, long delay_ms)
{
    struct mock_job *job = mock_job_new(ctx, req, MOCK_JOB_DRIP, ans,
                                        delay_ms);

    if (job == NULL) {
        mock_send_error(req, HTTP_INTERNAL, MOCK_ERR_SERVER,
                        MOCK_ERR_SERVER,
                        "mock upstream could not schedule the answer");
        return;
    }
    mock_stream_begin(req);
    mock_send_event(ctx, req, &job->ans, MOCK_DELTA_ROLE, NULL, 0, 0);
    if (evtimer_add(job->timer, &job->delay) != 0) {
        mock_stream_finish(ctx, req, &job->ans, MOCK_END_FULL);
        mock_job_done(job);
    }
}

/*
 * stream-cut: role chunk and the first content chunks go out through
 * evhttp's chunked encoder, then the connection is dropped without the
 * finish chunk, [DONE] or the terminating empty chunk.
 */
static void
mock_send_cut(struct mock_ctx *ctx, struct evhttp_request *req,
              const struct mock_answer *ans)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    size_t pos = 0;
    const char *word;
    size_t wlen;
    int last;
    int sent;

    if (evcon == NULL)
        return;
    mock_stream_begin(req);
    mock_send_event(ctx, req, ans, MOCK_DELTA_ROLE, NULL, 0, 0);
    for (sent = 0; sent < MOCK_CUT_WORDS; sent++) {
        if (!mock_next_word(ans->text, ans->text_len, &pos, &word, &wlen,
                            &last))
            break;
        mock_send_event(ctx, req, ans, MOCK_DELTA_CONTENT, word, wlen, 1);
    }
    mock_close_after_flush(evcon);
}

/* ------------------------------------------------------------------ */
/* Allocation-free pre-scan for the "fast" benchmark path              */
/* ------------------------------------------------------------------ */

/*
 * A strict RFC 8259 validator over the raw body that only remembers the
 * top-level "model" and "stream" members (last one wins, as in json-c).
 * It is deliberately narrower than json-c: \u escapes, raw control
 * characters, deep nesting or long numbers make it give up, and the
 * request then goes through the normal json-c path.  So it can only
 * ever short-cut bodies json-c would parse to the very same answer.
 */

enum mock_scan_kind {
    MOCK_SCAN_OTHER,
    MOCK_SCAN_PLAIN_STRING,     /* string without any escape */
    MOCK_SCAN_TRUE
};

struct mock_scan {
    const char *p;
    const char *end;
    const char *str;            /* last plain string scanned */
    size_t str_len;
    int model_fast;             /* top-level "model" is exactly "fast" */
    int stream_true;            /* top-level "stream" is true */
};

static const char mock_scan_escapes[] = "\"\\/bfnrt";

static void
mock_scan_ws(struct mock_scan *s)
{
    while (s->p < s->end
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
        s->p++;
}

static int
mock_scan_is(const struct mock_scan *s, const char *lit, size_t len)
{
    return s->str_len == len && memcmp(s->str, lit, len) == 0;
}

/* s->p is at the opening quote. */
static int
mock_scan_string(struct mock_scan *s)
{
    const char *start = ++s->p;
    int plain = 1;

    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;

        if (c == '"') {
            s->str = start;
            s->str_len = (size_t)(s->p - start);
            s->p++;
            return plain ? MOCK_SCAN_PLAIN_STRING : MOCK_SCAN_OTHER;
        }
        if (c < MOCK_JSON_CTRL_LIMIT)
            return -1;
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end
                || memchr(mock_scan_escapes, *s->p,
                          MOCK_LIT_LEN(mock_scan_escapes)) == NULL)
                return -1;
            plain = 0;
        }
        s->p++;
    }
    return -1;
}

static size_t
mock_scan_digits(struct mock_scan *s)
{
    const char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return (size_t)(s->p - start);
}

static int
mock_scan_number(struct mock_scan *s)
{
    const char *start = s->p;

    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return -1;
    if (*s->p == '0')
        s->p++;
    else if (mock_scan_digits(s) == 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (mock_scan_digits(s) == 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (mock_scan_digits(s) == 0)
            return -1;
    }
    if (s->p - start > MOCK_SCAN_MAX_NUMBER)
        return -1;
    return MOCK_SCAN_OTHER;
}

static int
mock_scan_literal(struct mock_scan *s, const char *lit, int kind)
{
    size_t len = strlen(lit);

    if ((size_t)(s->end - s->p) < len || memcmp(s->p, lit, len) != 0)
        return -1;
    s->p += len;
    return kind;
}

static int mock_scan_value(struct mock_scan *s, int depth);

/* s->p is at '{' or '['; depth 0 is the top-level object. */
static int
mock_scan_container(struct mock_scan *s, int depth)
{
    int is_object = (*s->p == '{');
    char close = is_object ? '}' : ']';

    if (depth >= MOCK_SCAN_MAX_DEPTH)
        return -1;
    s->p++;
    mock_scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return MOCK_SCAN_OTHER;
    }
    for (;;) {
        int is_model = 0;
        int is_stream = 0;
        int kind;

        if (is_object) {
            if (s->p >= s->end || *s->p != '"')
                return -1;
            kind = mock_scan_string(s);
            if (kind < 0)
                return -1;
            if (depth == 0 && kind == MOCK_SCAN_PLAIN_STRING) {
                is_model = mock_scan_is(s, "model", MOCK_LIT_LEN("model"));
                is_stream = mock_scan_is(s, "stream",
                                         MOCK_LIT_LEN("stream"));
            }
            mock_scan_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            mock_scan_ws(s);
        }
        kind = mock_scan_value(s, depth + 1);
        if (kind < 0)
            return -1;
        if (is_model)
            s->model_fast = (kind == MOCK_SCAN_PLAIN_STRING
                             && mock_scan_is(s, "fast",
                                             MOCK_LIT_LEN("fast")));
        if (is_stream)
            s->stream_true = (kind == MOCK_SCAN_TRUE);
        mock_scan_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == close) {
            s->p++;
            return MOCK_SCAN_OTHER;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        mock_scan_ws(s);
    }
}

static int
mock_scan_value(struct mock_scan *s, int depth)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
    case '[':
        return mock_scan_container(s, depth);
    case '"':
        return mock_scan_string(s);
    case 't':
        return mock_scan_literal(s, "true", MOCK_SCAN_TRUE);
    case 'f':
        return mock_scan_literal(s, "false", MOCK_SCAN_OTHER);
    case 'n':
        return mock_scan_literal(s, "null", MOCK_SCAN_OTHER);
    default:
        return mock_scan_number(s);
    }
}

/* 1 if the body is a valid object with model "fast" and no stream. */
static int
mock_body_is_fast(const char *data, size_t len)
{
    struct mock_scan s;

    memset(&s, 0, sizeof(s));
    s.p = data;
    s.end = data + len;
    mock_scan_ws(&s);
    if (s.p >= s.end || *s.p != '{' || mock_scan_container(&s, 0) < 0)
        return 0;
    mock_scan_ws(&s);
    return s.p == s.end && s.model_fast && !s.stream_true;
}

/* ------------------------------------------------------------------ */
/* POST /v1/chat/completions                                           */
/* ------------------------------------------------------------------ */

/* Map a model name to a behaviour; *arg gets NNN / MS when relevant. */
static enum mock_mode
mock_parse_mode(const char *model, long *arg)
{
    size_t i;

    for (i = 0; i < sizeof(mock_named_modes) / sizeof(mock_named_modes[0]);
         i++) {
        if (strcmp(model, mock_named_modes[i].model) == 0)
            return mock_named_modes[i].mode;
    }
    if (strncmp(model, MOCK_PREFIX_STATUS,
                MOCK_LIT_LEN(MOCK_PREFIX_STATUS)) == 0) {
        const char *num = model + MOCK_LIT_LEN(MOCK_PREFIX_STATUS);

        if (strlen(num) == MOCK_STATUS_DIGITS
            && mock_parse_number(num, MOCK_STATUS_MIN, MOCK_STATUS_MAX,
                                 arg) == 0)
            return MOCK_MODE_STATUS;
    } else if (strncmp(model, MOCK_PREFIX_SLOW,
                       MOCK_LIT_LEN(MOCK_PREFIX_SLOW)) == 0) {
        if (mock_parse_number(model + MOCK_LIT_LEN(MOCK_PREFIX_SLOW), 0,
                              MOCK_MAX_DELAY_MS, arg) == 0)
            return MOCK_MODE_SLOW;
    } else if (strncmp(model, MOCK_PREFIX_DRIP,
                       MOCK_LIT_LEN(MOCK_PREFIX_DRIP)) == 0) {
        if (mock_parse_number(model + MOCK_LIT_LEN(MOCK_PREFIX_DRIP), 0,
                              MOCK_MAX_DELAY_MS, arg) == 0)
            return MOCK_MODE_DRIP;
    } else if (strncmp(model, MOCK_PREFIX_FAIL,
                       MOCK_LIT_LEN(MOCK_PREFIX_FAIL)) == 0) {
        const char *dash = strchr(model, '-');
        char num[16];
        long n, status;
        size_t nl;

        if (dash != NULL && strlen(dash + 1) == MOCK_STATUS_DIGITS &&
            (nl = (size_t)(dash - model) - MOCK_LIT_LEN(MOCK_PREFIX_FAIL)) >
                0 && nl < sizeof(num)) {
            memcpy(num, model + MOCK_LIT_LEN(MOCK_PREFIX_FAIL), nl);
            num[nl] = '\0';
            if (mock_parse_number(num, 1, MOCK_FAIL_MAX_N, &n) == 0 &&
                mock_parse_number(dash + 1, MOCK_STATUS_MIN, MOCK_STATUS_MAX,
                                  &status) == 0) {
                *arg = n * 1000 + status;
                return MOCK_MODE_FAIL;
            }
        }
    } else if (strncmp(model, MOCK_PREFIX_BIG,
                       MOCK_LIT_LEN(MOCK_PREFIX_BIG)) == 0) {
        if (mock_parse_number(model + MOCK_LIT_LEN(MOCK_PREFIX_BIG), 1,
                              MOCK_BIG_MAX_KB, arg) == 0)
            return MOCK_MODE_BIG;
    }
    return MOCK_MODE_DEFAULT;
}

/* Calls seen so far for this fail-mode model, this one included. */
static long
mock_fail_count(struct mock_ctx *ctx, const char *model)
{
    for (size_t i = 0; i < MOCK_FAIL_SLOTS; i++) {
        if (ctx->fails[i].model[0] == '\0') {
            snprintf(ctx->fails[i].model, sizeof(ctx->fails[i].model), "%s",
                     model);
            ctx->fails[i].seen = 1;
            return 1;
        }
        if (strcmp(ctx->fails[i].model, model) == 0)
            return ++ctx->fails[i].seen;
    }
    return MOCK_FAIL_MAX_N + 1;   /* table full: stop failing */
}

/* Parse the request body; NULL unless it is exactly one JSON object. */
static struct json_object *
mock_parse_body(struct mock_ctx *ctx, const char *data, size_t len)
{
    struct json_object *root;
    size_t end;

    if (data == NULL || len == 0 || len > INT_MAX)
        return NULL;
    json_tokener_reset(ctx->tok);
    root = json_tokener_parse_ex(ctx->tok, data, (int)len);
    if (root == NULL)
        return NULL;
    end = json_tokener_get_parse_end(ctx->tok);
    while (end < len && isspace((unsigned char)data[end]))
        end++;
    if (end != len || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return NULL;
    }
    return root;
}

static int
mock_is_stream(struct json_object *root)
{
    struct json_object *v;

    return json_object_object_get_ex(root, "stream", &v)
           && json_object_is_type(v, json_type_boolean)
           && json_object_get_boolean(v);
}

/* stream_options.include_usage: true. */
static int
mock_wants_usage(struct json_object *root)
{
    struct json_object *opts, *v;

    return json_object_object_get_ex(root, "stream_options", &opts)
           && json_object_object_get_ex(opts, "include_usage", &v)
           && json_object_is_type(v, json_type_boolean)
           && json_object_get_boolean(v);
}

/* Whitespace-separated words over every message's text content. */
static size_t
mock_prompt_words(struct json_object *messages)
{
    size_t words = 0;
    size_t i;
    size_t n = json_object_array_length(messages);

    for (i = 0; i < n; i++) {
        struct json_object *msg = json_object_array_get_idx(messages, i);
        struct json_object *content;
        size_t j;
        size_t parts;

        if (!json_object_object_get_ex(msg, "content", &content))
            continue;
        if (json_object_is_type(content, json_type_string)) {
            words += mock_count_words(json_object_get_string(content),
                                      (size_t)json_object_get_string_len(
                                          content));
            continue;
        }
        if (!json_object_is_type(content, json_type_array))
            continue;
        parts = json_object_array_length(content);
        for (j = 0; j < parts; j++) {
            struct json_object *part =
                json_object_array_get_idx(content, j);
            struct json_object *text;

            if (json_object_object_get_ex(part, "text", &text)
                && json_object_is_type(text, json_type_string))
                words += mock_count_words(
                    json_object_get_string(text),
                    (size_t)json_object_get_string_len(text));
        }
    }
    return words;
}

/* Build the echo (or echo-auth) answer for this request. */
static int
mock_answer_init(struct mock_ctx *ctx, struct mock_answer *ans,
                 struct evhttp_request *req, struct json_object *root,
                 const char *model, enum mock_mode mode)
{
    struct json_object *messages;
    const char *prefix = MOCK_ECHO_PREFIX;
    const char *body = "";
    size_t body_len = 0;
    size_t prefix_len;

    ans->model = model;
    ans->id = ++ctx->next_id;
    ans->created = (long long)time(NULL);
    ans->stream = mock_is_stream(root);
    ans->include_usage = mock_wants_usage(root);
    if (json_object_object_get_ex(root, "messages", &messages)
        && json_object_is_type(messages, json_type_array)) {
        size_t n = json_object_array_length(messages);
        struct json_object *content;

        ans->prompt_tokens = mock_prompt_words(messages);
        if (n > 0
            && json_object_object_get_ex(
                   json_object_array_get_idx(messages, n - 1), "content",
                   &content)
            && json_object_is_type(content, json_type_string)) {
            body = json_object_get_string(content);
            body_len = (size_t)json_object_get_string_len(content);
        }
    }
    if (mode == MOCK_MODE_ECHO_AUTH) {
        const char *auth = evhttp_find_header(
            evhttp_request_get_input_headers(req), "Authorization");

        prefix = MOCK_AUTH_PREFIX;
        body = auth != NULL ? auth : MOCK_AUTH_NONE;
        body_len = strlen(body);
    }
    prefix_len = strlen(prefix);
    ans->text = malloc(prefix_len + body_len + 1);
    if (ans->text == NULL)
        return -1;
    memcpy(ans->text, prefix, prefix_len);
    memcpy(ans->text + prefix_len, body, body_len);
    ans->text_len = prefix_len + body_len;
    ans->text[ans->text_len] = '\0';
    ans->completion_tokens = mock_count_words(ans->text, ans->text_len);
    return 0;
}

static void
mock_chat_cb(struct evhttp_request *req, void *arg)
{
    struct mock_ctx *ctx = arg;
    struct json_object *root = NULL;
    struct json_object *model_obj;
    struct mock_answer ans;
    struct evbuffer *in;
    size_t len;
    const char *data;
    const char *model;
    enum mock_mode mode;
    long mode_arg = 0;

    memset(&ans, 0, sizeof(ans));
    ctx->requests++;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mock_log(ctx, req, NULL);
        mock_send_bad_method(req);
        return;
    }
    in = evhttp_request_get_input_buffer(req);
    len = evbuffer_get_length(in);
    data = (const char *)evbuffer_pullup(in, -1);
    /* Benchmark path: no json-c objects, static body by reference. */
    if (data != NULL && mock_body_is_fast(data, len)) {
        mock_log(ctx, req, "fast");
        mock_reply_static(req, HTTP_OK, MOCK_CT_JSON, mock_fast_body,
                          MOCK_LIT_LEN(mock_fast_body));
        return;
    }
    root = mock_parse_body(ctx, data, len);
    if (root == NULL) {
        mock_log(ctx, req, "(invalid JSON)");
        mock_send_error(req, HTTP_BADREQUEST, MOCK_ERR_INVALID,
                        "bad_request",
                        "Request body must be a single JSON object.");
        return;
    }
    if (!json_object_object_get_ex(root, "model", &model_obj)
        || !json_object_is_type(model_obj, json_type_string)) {
        mock_log(ctx, req, "(no model)");
        mock_send_error(req, HTTP_BADREQUEST, MOCK_ERR_INVALID,
                        "bad_request",
                        "Missing required string parameter: 'model'.");
        goto out;
    }
    model = json_object_get_string(model_obj);
    mode = mock_parse_mode(model, &mode_arg);
    mock_log(ctx, req, model);

    /* Answers that do not need the echo text. */
    switch (mode) {
    case MOCK_MODE_FAST:
        if (!mock_is_stream(root)) {
            mock_reply_static(req, HTTP_OK, MOCK_CT_JSON, mock_fast_body,
                              MOCK_LIT_LEN(mock_fast_body));
            goto out;
        }
        break;
    case MOCK_MODE_STATUS:
        mock_send_status(req, (int)mode_arg);
        goto out;
    case MOCK_MODE_FAIL:
        if (mock_fail_count(ctx, model) <= mode_arg / 1000) {
            mock_send_status(req, (int)(mode_arg % 1000));
            goto out;
        }
        mode = MOCK_MODE_DEFAULT;
        break;
    case MOCK_MODE_GARBAGE:
        mock_reply_static(req, HTTP_OK, MOCK_CT_JSON, mock_garbage_body,
                          MOCK_LIT_LEN(mock_garbage_body));
        goto out;
    case MOCK_MODE_WRONGTYPE:
        mock_reply_static(req, HTTP_OK, MOCK_CT_HTML, mock_wrongtype_body,
                          MOCK_LIT_LEN(mock_wrongtype_body));
        goto out;
    case MOCK_MODE_TRUNCATED:
        mock_send_truncated(req);
        goto out;
    case MOCK_MODE_STREAM_CUT:
        if (!mock_is_stream(root)) {
            mock_send_truncated(req);
            goto out;
        }
        break;
    default:
        break;
    }

    if (mock_answer_init(ctx, &ans, req, root, model, mode) != 0) {
        mock_send_error(req, HTTP_INTERNAL, MOCK_ERR_SERVER,
                        MOCK_ERR_SERVER, "mock upstream out of memory");
        goto out;
    }
    ans.multiline = mode == MOCK_MODE_MULTILINE;
    switch (mode) {
    case MOCK_MODE_SLOW:
        mock_start_slow(ctx, req, &ans, mode_arg);
        break;
    case MOCK_MODE_DRIP:
        mock_start_drip(ctx, req, &ans, mode_arg);
        break;
    case MOCK_MODE_BIG:
        if (ans.stream)
            mock_stream_big(ctx, req, &ans, mode_arg);
        else
            mock_send_completion(req, &ans);
        break;
    case MOCK_MODE_STREAM_CUT:
        mock_send_cut(ctx, req, &ans);
        break;
    case MOCK_MODE_STREAM_NODONE:
        if (ans.stream)
            mock_stream_all(ctx, req, &ans, MOCK_END_NO_DONE);
        else
            mock_send_completion(req, &ans);
        break;
    default:
        mock_answer_send(ctx, req, &ans);
        break;
    }

out:
    mock_answer_release(&ans);
    json_object_put(root);
}

/* ------------------------------------------------------------------ */
/* Bookkeeping endpoints                                               */
/* ------------------------------------------------------------------ */

static void
mock_models_cb(struct evhttp_request *req, void *arg)
{
    struct mock_ctx *ctx = arg;
    const char *auth;

    mock_log(ctx, req, NULL);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        mock_send_bad_method(req);
        return;
    }
    ctx->models_calls++;
    auth = evhttp_find_header(evhttp_request_get_input_headers(req),
                              "Authorization");
    if (auth != NULL && strncmp(auth, MOCK_BEARER, strlen(MOCK_BEARER)) == 0
        && auth[strlen(MOCK_BEARER)] != '\0')
        ctx->models_authorized++;
    if (ctx->models_fail) {
        mock_send_error(req, HTTP_SERVUNAVAIL, MOCK_ERR_SERVER, "unavailable",
                        "models switched to fail");
        return;
    }
    mock_reply_static(req, HTTP_OK, MOCK_CT_JSON, mock_models_body,
                      MOCK_LIT_LEN(mock_models_body));
}

/* GET: the /v1/models counts; POST ?fail=1|0: switch its failure. */
static void
mock_models_stats_cb(struct evhttp_request *req, void *arg)
{
    struct mock_ctx *ctx = arg;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    int rc;

    mock_log(ctx, req, NULL);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        if (q != NULL && strcmp(q, "fail=1") == 0)
            ctx->models_fail = 1;
        else if (q != NULL && strcmp(q, "fail=0") == 0)
            ctx->models_fail = 0;
        else if (q != NULL && strcmp(q, "reset=1") == 0)
            ctx->models_calls = ctx->models_authorized = 0;
    }
    rc = evbuffer_add_printf(evhttp_request_get_output_buffer(req),
                             "{\"models\":%lu,\"authorized\":%lu,"
                             "\"fail\":%d}", ctx->models_calls,
                             ctx->models_authorized, ctx->models_fail) < 0
         ? -1 : 0;
    mock_reply_built(req, HTTP_OK, rc);
}

static void
mock_stats_cb(struct evhttp_request *req, void *arg)
{
    const struct mock_ctx *ctx = arg;
    int rc;

    mock_log(ctx, req, NULL);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        mock_send_bad_method(req);
        return;
    }
    if (strcmp(evhttp_request_get_uri(req), "/stats/aborted") == 0)
        rc = evbuffer_add_printf(evhttp_request_get_output_buffer(req),
                                 "{\"aborted\":%lu}", ctx->aborted) < 0
             ? -1 : 0;
    else
        rc = evbuffer_add_printf(evhttp_request_get_output_buffer(req),
                                 "{\"requests\":%lu}", ctx->requests) < 0
             ? -1 : 0;
    mock_reply_built(req, HTTP_OK, rc);
}

static void
mock_stats_reset_cb(struct evhttp_request *req, void *arg)
{
    struct mock_ctx *ctx = arg;

    mock_log(ctx, req, NULL);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mock_send_bad_method(req);
        return;
    }
    ctx->requests = 0;
    ctx->aborted = 0;
    memset(ctx->fails, 0, sizeof(ctx->fails));
    mock_reply_static(req, HTTP_OK, MOCK_CT_JSON, mock_reset_body,
                      MOCK_LIT_LEN(mock_reset_body));
}

static void
mock_not_found_cb(struct evhttp_request *req, void *arg)
{
    const struct mock_ctx *ctx = arg;
    char message[MOCK_MSG_BUF];
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(
        req));

    mock_log(ctx, req, NULL);
    snprintf(message, sizeof(message), "Unknown request URL: %s",
             path != NULL ? path : "?");
    mock_send_error(req, HTTP_NOTFOUND, MOCK_ERR_INVALID, "not_found",
                    message);
}

/* ------------------------------------------------------------------ */
/* Startup and shutdown                                                */
/* ------------------------------------------------------------------ */

static void
mock_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct mock_ctx *ctx = arg;

    (void)sig;
    (void)what;
    event_base_loopbreak(ctx->base);
}

static void
mock_usage(FILE *fp)
{
    fprintf(fp, "usage: %s [-a ADDR] [-p PORT] [-P PORTFILE] [-q]\n"
            "  -a ADDR      listen address (default %s)\n"
            "  -p PORT      listen port, 0 = ephemeral (default %d)\n"
            "  -P PORTFILE  write the bound port to PORTFILE\n"
            "  -q           no per-request logging\n",
            MOCK_NAME, MOCK_DEFAULT_ADDR, MOCK_DEFAULT_PORT);
}

static int
mock_parse_args(struct mock_ctx *ctx, int argc, char **argv)
{
    int opt;
    long port;

    ctx->addr = MOCK_DEFAULT_ADDR;
    ctx->port = MOCK_DEFAULT_PORT;
    while ((opt = getopt(argc, argv, "a:p:P:qh")) != -1) {
        switch (opt) {
        case 'a':
            ctx->addr = optarg;
            break;
        case 'p':
            if (mock_parse_number(optarg, 0, MOCK_PORT_MAX, &port) != 0) {
                fprintf(stderr, "%s: bad port '%s'\n", MOCK_NAME, optarg);
                return -1;
            }
            ctx->port = (int)port;
            break;
        case 'P':
            ctx->portfile = optarg;
            break;
        case 'q':
            ctx->quiet = 1;
            break;
        case 'h':
            mock_usage(stdout);
            exit(EXIT_SUCCESS);
        default:
            mock_usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        mock_usage(stderr);
        return -1;
    }
    return 0;
}

/* Write "PORT\n" to PORTFILE.tmp, then rename it over PORTFILE. */
static int
mock_write_portfile(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    FILE *fp = NULL;
    int n;

    n = snprintf(tmp, sizeof(tmp), "%s%s", path, MOCK_TMP_SUFFIX);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        fprintf(stderr, "%s: port file path too long\n", MOCK_NAME);
        return -1;
    }
    fp = fopen(tmp, "w");
    if (fp == NULL)
        goto fail;
    if (fprintf(fp, "%u\n", port) < 0)
        goto fail;
    if (fclose(fp) != 0) {
        fp = NULL;
        goto fail;
    }
    fp = NULL;
    if (rename(tmp, path) != 0)
        goto fail;
    return 0;

fail:
    fprintf(stderr, "%s: cannot write port file %s: %s\n", MOCK_NAME, path,
            strerror(errno));
    if (fp != NULL)
        fclose(fp);
    unlink(tmp);
    return -1;
}

/* Port actually bound (matters for -p 0); 0 on failure. */
static unsigned
mock_bound_port(evutil_socket_t fd)
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
mock_setup(struct mock_ctx *ctx)
{
    struct sigaction sa;
    struct evhttp_bound_socket *sock;
    evutil_socket_t fd;
    unsigned port;
    int one = 1;

    /* Writes to vanished clients must fail with EPIPE, not kill us. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        goto fail;

    ctx->base = event_base_new();
    if (ctx->base == NULL)
        goto fail;
    ctx->tok = json_tokener_new();
    ctx->chunk = evbuffer_new();
    ctx->http = evhttp_new(ctx->base);
    ctx->ev_sigterm = evsignal_new(ctx->base, SIGTERM, mock_signal_cb, ctx);
    ctx->ev_sigint = evsignal_new(ctx->base, SIGINT, mock_signal_cb, ctx);
    if (ctx->tok == NULL || ctx->chunk == NULL || ctx->http == NULL
        || ctx->ev_sigterm == NULL || ctx->ev_sigint == NULL)
        goto fail;
    json_tokener_set_flags(ctx->tok, JSON_TOKENER_STRICT);
    if (evsignal_add(ctx->ev_sigterm, NULL) != 0
        || evsignal_add(ctx->ev_sigint, NULL) != 0)
        goto fail;

    evhttp_set_allowed_methods(ctx->http, MOCK_ALL_METHODS);
    evhttp_set_timeout(ctx->http, MOCK_HTTP_TIMEOUT_SEC);
    evhttp_set_max_body_size(ctx->http, MOCK_MAX_BODY_BYTES);
    if (evhttp_set_cb(ctx->http, "/v1/chat/completions", mock_chat_cb,
                      ctx) != 0
        || evhttp_set_cb(ctx->http, "/v1/models", mock_models_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/stats", mock_stats_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/stats/aborted", mock_stats_cb, ctx) != 0
        || evhttp_set_cb(ctx->http, "/stats/models", mock_models_stats_cb,
                         ctx) != 0
        || evhttp_set_cb(ctx->http, "/stats/reset", mock_stats_reset_cb,
                         ctx) != 0)
        goto fail;
    evhttp_set_gencb(ctx->http, mock_not_found_cb, ctx);

    sock = evhttp_bind_socket_with_handle(ctx->http, ctx->addr,
                                          (ev_uint16_t)ctx->port);
    if (sock == NULL) {
        fprintf(stderr, "%s: cannot listen on %s:%d\n", MOCK_NAME,
                ctx->addr, ctx->port);
        goto fail;
    }
    fd = evhttp_bound_socket_get_fd(sock);
    /* libevent listens with a backlog of 128; hundreds of connections
     * opened at once (the streaming benchmark) need more. Linux takes a
     * second listen() as a new backlog. */
    if (listen(fd, MOCK_BACKLOG) != 0)
        fprintf(stderr, "%s: listen: %s\n", MOCK_NAME, strerror(errno));
    /* Accepted sockets inherit this (Linux): no Nagle stalls on SSE. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        fprintf(stderr, "%s: TCP_NODELAY: %s\n", MOCK_NAME,
                strerror(errno));
    port = mock_bound_port(fd);
    if (port == 0)
        goto fail;
    if (ctx->portfile != NULL && mock_write_portfile(ctx->portfile,
                                                     port) != 0)
        goto fail;
    if (strchr(ctx->addr, ':') != NULL)
        printf("%s listening [%s]:%u\n", MOCK_NAME, ctx->addr, port);
    else
        printf("%s listening %s:%u\n", MOCK_NAME, ctx->addr, port);
    fflush(stdout);
    return 0;

fail:
    return -1;
}

static void
mock_teardown(struct mock_ctx *ctx)
{
    /* Frees every connection; pending jobs are released via closecb. */
    if (ctx->http != NULL)
        evhttp_free(ctx->http);
    while (ctx->jobs != NULL)
        mock_job_free(ctx->jobs);
    if (ctx->ev_sigterm != NULL)
        event_free(ctx->ev_sigterm);
    if (ctx->ev_sigint != NULL)
        event_free(ctx->ev_sigint);
    if (ctx->chunk != NULL)
        evbuffer_free(ctx->chunk);
    if (ctx->tok != NULL)
        json_tokener_free(ctx->tok);
    if (ctx->base != NULL)
        event_base_free(ctx->base);
    libevent_global_shutdown();
}

int
main(int argc, char **argv)
{
    struct mock_ctx ctx;
    int rc = EXIT_FAILURE;

    memset(&ctx, 0, sizeof(ctx));
    if (mock_parse_args(&ctx, argc, argv) != 0)
        return MOCK_EXIT_USAGE;
    if (mock_setup(&ctx) != 0)
        goto out;
    if (event_base_dispatch(ctx.base) < 0)
        goto out;
    rc = EXIT_SUCCESS;

out:
    mock_teardown(&ctx);
    return rc;
}
