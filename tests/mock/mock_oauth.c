/*
 * tests/mock/mock_oauth.c
 *
 * Owns the mock OAuth authorization server and token-checking model API
 * used by the rcc-pipeline tests: Qwen's device authorization flow (RFC
 * 8628 with PKCE S256) and refresh grant, iFlow's refresh grant (client
 * secret in a Basic header) and user-info lookup that hands out the API
 * key, and an OpenAI-compatible chat endpoint that only accepts the
 * current access token or API key.  POST /control scripts its behaviour,
 * GET /stats reports what it saw.  A standalone, single-threaded libevent
 * (evhttp) server; it shares no code or headers with the daemon.
 *
 *   mock_oauth [-a ADDR] [-p PORT] [-P PORTFILE] [-q]
 *
 * Tokens are deterministic: every mint takes the next number n and names
 * its values "at-<n>", "rt-<n>", "ik-<n>"; the server starts with at-0,
 * rt-0 and ik-0.  Delays (refresh_delay_ms, chat_delay_ms) are evtimers,
 * so the server keeps answering other clients meanwhile; a client that
 * leaves during one cancels it (nothing is minted, "aborted" counts it).
 *
 *   POST /api/v1/oauth2/device/code   Qwen device authorization
 *   POST /api/v1/oauth2/token         Qwen device_code / refresh_token
 *   POST /oauth/token                 iFlow refresh_token (+ Basic auth)
 *   GET  /api/oauth/getUserInfo       iFlow: ?accessToken= -> apiKey
 *   POST /v1/chat/completions         Bearer access token or API key
 *   GET  /v1/models                   the same check (health probes)
 *   POST /control?k=v&...             (or a form body) script the state
 *   GET  /stats, POST /stats/reset    counters, tokens, poll gaps
 *   GET  /authorize                   the verification_uri's page
 *
 * OAuth endpoints want an application/x-www-form-urlencoded body.  The
 * counters count requests that reached their endpoint with the right
 * method, whatever the answer: device_code, polls (device_code grant),
 * refresh (Qwen refresh_token grant), iflow_refresh, userinfo; chat
 * counts those with an accepted token, chat_401 the others; models and
 * models_401 likewise for GET /v1/models.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <json-c/json.h>
#include <openssl/evp.h>

/* ------------------------------------------------------------------ */
/* Constants                                                           */
/* ------------------------------------------------------------------ */

#define MO_NAME                 "mock_oauth"
#define MO_DEFAULT_ADDR         "127.0.0.1"
#define MO_DEFAULT_PORT         0
#define MO_PORT_MAX             65535
#define MO_EXIT_USAGE           2
#define MO_TMP_SUFFIX           ".tmp"
#define MO_DECIMAL              10

#define MO_HTTP_TIMEOUT_SEC     600
#define MO_MAX_BODY_BYTES       (1024L * 1024L)
#define MO_MS_PER_SEC           1000L
#define MO_US_PER_MS            1000L
#define MO_NS_PER_MS            1000000L

/* Ranges accepted by /control. */
#define MO_MAX_DELAY_MS         600000L
#define MO_MAX_COUNT            1000000L
#define MO_MAX_SECONDS          1000000000L

/* Defaults of the scriptable state. */
#define MO_DEFAULT_QWEN_CLIENT  "f0304373b74a44d2b584a3fb70ca9e56"
#define MO_DEFAULT_IFLOW_ID     "iflow-test-client"
#define MO_DEFAULT_IFLOW_SECRET "iflow-test-secret"
#define MO_DEFAULT_EXPIRES_IN   3600L
#define MO_DEFAULT_DEVICE_TTL   300L
#define MO_DEFAULT_INTERVAL     1L

#define MO_GRANT_DEVICE         "urn:ietf:params:oauth:grant-type:device_code"
#define MO_GRANT_REFRESH        "refresh_token"
#define MO_CHALLENGE_METHOD     "S256"
#define MO_CHALLENGE_LEN        43      /* base64url of a SHA-256 digest */
#define MO_SHA256_LEN           32
#define MO_POLL_GAPS            16

/* resource_url control values with a meaning of their own. */
#define MO_RESOURCE_NONE        "none"      /* omit the member */
#define MO_RESOURCE_DEFAULT     "default"   /* back to http://ADDR:PORT */

#define MO_CHAT_ID_PREFIX       "chatcmpl-mock-"
#define MO_CHAT_PROMPT_TOKENS   3
#define MO_CHAT_ANSWER_TOKENS   3
#define MO_CHAT_VIA_TOKEN       "ok via token"
#define MO_CHAT_VIA_APIKEY      "ok via apikey"

#define MO_HTTP_UNAUTHORIZED    401
#define MO_HTTP_TOO_MANY        429

#define MO_CT_JSON              "application/json"
#define MO_CT_SSE               "text/event-stream"
#define MO_CT_FORM              "application/x-www-form-urlencoded"
#define MO_CT_TEXT              "text/plain"

#define MO_AUTH_BEARER          "Bearer"
#define MO_AUTH_BASIC           "Basic"

#define MO_URL_MAX              320
#define MO_CODE_MAX             48
#define MO_MSG_MAX              160

#define MO_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

#define MO_ALL_METHODS                                                    \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT  \
     | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE          \
     | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

/* Length of a string literal, without the terminating NUL. */
#define MO_LIT_LEN(s)           (sizeof(s) - 1)

static const char mo_sse_done[] = "data: [DONE]\n\n";
static const char mo_base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

/* What the token endpoint says once pending and slow_down are used up. */
enum mo_device_mode {
    MO_DEVICE_OK,
    MO_DEVICE_EXPIRED,
    MO_DEVICE_DENIED,
    MO_DEVICE_MODES
};

static const char *const mo_device_names[MO_DEVICE_MODES] = {
    "ok", "expired", "denied"
};

/* Which values one mint replaces; they all share the mint's number. */
enum mo_mint_slot {
    MO_SLOT_ACCESS,
    MO_SLOT_REFRESH,
    MO_SLOT_APIKEY,
    MO_SLOTS
};

#define MO_MINT_ACCESS          (1u << MO_SLOT_ACCESS)
#define MO_MINT_REFRESH         (1u << MO_SLOT_REFRESH)
#define MO_MINT_APIKEY          (1u << MO_SLOT_APIKEY)

static const char *const mo_slot_prefixes[MO_SLOTS] = {
    "at-", "rt-", "ik-"
};

/* Everything /control can set.  Strings are malloc'd and owned here. */
struct mo_state {
    char *qwen_client_id;
    char *iflow_client_id;
    char *iflow_client_secret;
    char *slots[MO_SLOTS];      /* current access, refresh, api key */
    char *resource_url;         /* NULL: the server's own base URL */
    long device_mode;           /* enum mo_device_mode */
    long pending;
    long slow_down;
    long rotate;
    long revoked;
    long expires_in;
    long refresh_delay_ms;
    long interval;
    long device_expires_in;
    long chat_delay_ms;
};

/* What /stats reports; /stats/reset clears all of it. */
struct mo_stats {
    unsigned long device_code;
    unsigned long polls;
    unsigned long refresh;
    unsigned long iflow_refresh;
    unsigned long userinfo;
    unsigned long chat;
    unsigned long chat_401;
    unsigned long models;
    unsigned long models_401;
    unsigned long aborted;      /* clients gone before a delayed answer */
    int64_t gaps_ms[MO_POLL_GAPS];  /* ring of the latest poll gaps */
    size_t gap_count;
    size_t gap_next;
    int64_t last_poll_ms;
    int have_last_poll;
    char *last_model;           /* owned; NULL until a chat arrives */
    int last_stream;
    struct json_object *last_keys;  /* owned array of key strings */
};

/* The one outstanding device authorization (the latest wins). */
struct mo_device {
    unsigned long seq;          /* k of "dc-<k>" / "UC-<k>"; 0: none */
    char challenge[MO_CHALLENGE_LEN + 1];
};

enum mo_job_kind {
    MO_JOB_QWEN_REFRESH,
    MO_JOB_IFLOW_REFRESH,
    MO_JOB_CHAT
};

struct mo_ctx;

/*
 * A request whose answer waits for a timer.  Linked into the context and
 * registered as its connection's close callback, so a client going away
 * (or shutdown) cancels the timer and frees it; nothing is minted then.
 */
struct mo_job {
    struct mo_ctx *ctx;
    struct mo_job *prev;
    struct mo_job *next;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    enum mo_job_kind kind;
    char *model;                /* chat: owned copy of the request's */
    int stream;                 /* chat */
    const char *content;        /* chat: static answer text */
};

struct mo_ctx {
    const char *addr;
    const char *portfile;
    int port;
    int quiet;
    char base_url[MO_URL_MAX];  /* http://ADDR:PORT once listening */
    struct event_base *base;
    struct evhttp *http;
    struct event *ev_sigterm;
    struct event *ev_sigint;
    struct json_tokener *tok;
    struct mo_job *jobs;
    struct mo_state state;
    struct mo_stats stats;
    struct mo_device device;
    unsigned long minted;       /* n of the latest mint */
    unsigned long chat_seq;
};

/* /control keys, validated all before any is applied. */
enum mo_key_kind {
    MO_KEY_TEXT,        /* non-empty string into a char * of mo_state */
    MO_KEY_NUMBER,      /* decimal in [min, max] into a long of mo_state */
    MO_KEY_DEVICE,      /* ok | expired | denied */
    MO_KEY_RESOURCE,    /* any string; "none" omits, "default" resets */
    MO_KEY_REMINT       /* "1": mint a replacement nobody is told */
};

struct mo_key {
    const char *name;
    enum mo_key_kind kind;
    size_t offset;      /* TEXT, NUMBER: field in struct mo_state */
    long min;           /* NUMBER */
    long max;           /* NUMBER */
    unsigned mint;      /* REMINT */
};

#define MO_KEY_TEXT_AT(name, field)                                       \
    { name, MO_KEY_TEXT, offsetof(struct mo_state, field), 0, 0, 0 }
#define MO_KEY_NUMBER_AT(name, field, lo, hi)                             \
    { name, MO_KEY_NUMBER, offsetof(struct mo_state, field), lo, hi, 0 }

static const struct mo_key mo_keys[] = {
    MO_KEY_TEXT_AT("access", slots[MO_SLOT_ACCESS]),
    MO_KEY_TEXT_AT("refresh", slots[MO_SLOT_REFRESH]),
    MO_KEY_TEXT_AT("apikey", slots[MO_SLOT_APIKEY]),
    MO_KEY_NUMBER_AT("pending", pending, 0, MO_MAX_COUNT),
    MO_KEY_NUMBER_AT("slow_down", slow_down, 0, MO_MAX_COUNT),
    { "device", MO_KEY_DEVICE, 0, 0, 0, 0 },
    MO_KEY_NUMBER_AT("rotate", rotate, 0, 1),
    MO_KEY_NUMBER_AT("revoked", revoked, 0, 1),
    MO_KEY_NUMBER_AT("expires_in", expires_in, 0, MO_MAX_SECONDS),
    MO_KEY_NUMBER_AT("refresh_delay_ms", refresh_delay_ms, 0,
                     MO_MAX_DELAY_MS),
    { "resource_url", MO_KEY_RESOURCE, 0, 0, 0, 0 },
    MO_KEY_NUMBER_AT("interval", interval, 0, MO_MAX_SECONDS),
    MO_KEY_NUMBER_AT("device_expires_in", device_expires_in, 0,
                     MO_MAX_SECONDS),
    MO_KEY_NUMBER_AT("chat_delay_ms", chat_delay_ms, 0, MO_MAX_DELAY_MS),
    MO_KEY_TEXT_AT("client_id", qwen_client_id),
    MO_KEY_TEXT_AT("iflow_client_id", iflow_client_id),
    MO_KEY_TEXT_AT("iflow_client_secret", iflow_client_secret),
    { "invalidate_access", MO_KEY_REMINT, 0, 0, 0, MO_MINT_ACCESS },
    { "invalidate_apikey", MO_KEY_REMINT, 0, 0, 0, MO_MINT_APIKEY }
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int
mo_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int64_t
mo_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * MO_MS_PER_SEC + ts.tv_nsec / MO_NS_PER_MS;
}

/* Parse a decimal number made only of digits, within [min, max]. */
static int
mo_parse_number(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    const char *p;
    long v;

    if (*s == '\0')
        return -1;
    for (p = s; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
    }
    errno = 0;
    v = strtol(s, &end, MO_DECIMAL);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Replace *slot with a copy of value.  0, or -1 (ENOMEM, slot kept). */
static int
mo_set_string(char **slot, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* base64url of in[0..n) without padding; out holds (n * 4 + 2) / 3 + 1. */
static void
mo_base64url(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    size_t o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)in[i] << 16)
                          | ((unsigned long)in[i + 1] << 8) | in[i + 2];

        out[o++] = mo_base64url_alphabet[(v >> 18) & 0x3f];
        out[o++] = mo_base64url_alphabet[(v >> 12) & 0x3f];
        out[o++] = mo_base64url_alphabet[(v >> 6) & 0x3f];
        out[o++] = mo_base64url_alphabet[v & 0x3f];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;

        out[o++] = mo_base64url_alphabet[(v >> 18) & 0x3f];
        out[o++] = mo_base64url_alphabet[(v >> 12) & 0x3f];
    } else if (n - i == 2) {
        unsigned long v = ((unsigned long)in[i] << 16)
                          | ((unsigned long)in[i + 1] << 8);

        out[o++] = mo_base64url_alphabet[(v >> 18) & 0x3f];
        out[o++] = mo_base64url_alphabet[(v >> 12) & 0x3f];
        out[o++] = mo_base64url_alphabet[(v >> 6) & 0x3f];
    }
    out[o] = '\0';
}

/* 1 if s is exactly a S256 challenge's shape: 43 base64url characters. */
static int
mo_challenge_valid(const char *s)
{
    size_t len = strlen(s);

    return len == MO_CHALLENGE_LEN
           && strspn(s, mo_base64url_alphabet) == len;
}

/* base64url(SHA-256(verifier)) into out.  0, or -1. */
static int
mo_pkce_challenge(const char *verifier, char out[MO_CHALLENGE_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    if (EVP_Digest(verifier, strlen(verifier), digest, &digest_len,
                   EVP_sha256(), NULL) != 1
        || digest_len != MO_SHA256_LEN)
        return -1;
    mo_base64url(digest, digest_len, out);
    return 0;
}

/*
 * The credentials after "SCHEME " in an Authorization header (scheme
 * matched case-insensitively, blanks skipped), or NULL.
 */
static const char *
mo_auth_param(struct evhttp_request *req, const char *scheme)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "Authorization");
    size_t len = strlen(scheme);

    if (h == NULL || strncasecmp(h, scheme, len) != 0
        || (h[len] != ' ' && h[len] != '\t'))
        return NULL;
    h += len;
    while (*h == ' ' || *h == '\t')
        h++;
    return *h != '\0' ? h : NULL;
}

static const char *
mo_method_name(enum evhttp_cmd_type cmd)
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
mo_log(const struct mo_ctx *ctx, struct evhttp_request *req)
{
    if (ctx->quiet)
        return;
    fprintf(stderr, "%s: %s %s\n", MO_NAME,
            mo_method_name(evhttp_request_get_command(req)),
            evhttp_request_get_uri(req));
}

/* ------------------------------------------------------------------ */
/* JSON building (a NULL object or value makes every helper fail)      */
/* ------------------------------------------------------------------ */

/* Add v (consumed, also on failure) to o as key.  0, or -1. */
static int
mo_add(struct json_object *o, const char *key, struct json_object *v)
{
    if (o == NULL || v == NULL || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

static int
mo_add_str(struct json_object *o, const char *key, const char *s)
{
    return mo_add(o, key, json_object_new_string(s));
}

static int
mo_add_int(struct json_object *o, const char *key, int64_t v)
{
    return mo_add(o, key, json_object_new_int64(v));
}

static int
mo_add_bool(struct json_object *o, const char *key, int v)
{
    return mo_add(o, key, json_object_new_boolean(v));
}

static int
mo_add_null(struct json_object *o, const char *key)
{
    return o == NULL || json_object_object_add(o, key, NULL) != 0 ? -1 : 0;
}

/* Append v (consumed, also on failure) to the array a.  0, or -1. */
static int
mo_push(struct json_object *a, struct json_object *v)
{
    if (a == NULL || v == NULL || json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* Reason phrases libevent 2.1 does not know (it says "Client Error"). */
static const char *
mo_reason(int code)
{
    return code == MO_HTTP_TOO_MANY ? "Too Many Requests" : NULL;
}

/*
 * Send obj (consumed) as a JSON body with status code, or a bare 500 when
 * building it failed (built != 0 or obj NULL).
 */
static void
mo_reply_json(struct evhttp_request *req, int code, struct json_object *obj,
              int built)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const char *text;

    if (built != 0 || obj == NULL)
        goto out_fail;
    text = json_object_to_json_string_ext(obj, MO_JSON_FLAGS);
    if (text == NULL || evbuffer_add(out, text, strlen(text)) != 0)
        goto out_fail;
    json_object_put(obj);
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", MO_CT_JSON);
    evhttp_send_reply(req, code, mo_reason(code), NULL);
    return;

out_fail:
    json_object_put(obj);
    evbuffer_drain(out, evbuffer_get_length(out));
    evhttp_send_error(req, HTTP_INTERNAL, NULL);
}

/* OAuth error: {"error":error[,"error_description":description]}. */
static void
mo_oauth_error(struct evhttp_request *req, int code, const char *error,
               const char *description)
{
    struct json_object *obj = json_object_new_object();
    int rc = mo_add_str(obj, "error", error);

    if (rc == 0 && description != NULL)
        rc = mo_add_str(obj, "error_description", description);
    mo_reply_json(req, code, obj, rc);
}

/* OpenAI error: {"error":{"message","type","code"}}. */
static void
mo_openai_error(struct evhttp_request *req, int code, const char *type,
                const char *errcode, const char *message)
{
    struct json_object *obj = json_object_new_object();
    struct json_object *err = json_object_new_object();
    int rc;

    rc = (mo_add_str(err, "message", message) != 0
          || mo_add_str(err, "type", type) != 0
          || mo_add_str(err, "code", errcode) != 0) ? -1 : 0;
    if (rc == 0)
        rc = mo_add(obj, "error", err);
    else
        json_object_put(err);
    mo_reply_json(req, code, obj, rc);
}

static void
mo_bad_method(struct evhttp_request *req)
{
    mo_oauth_error(req, HTTP_BADMETHOD, "method_not_allowed",
                   "method not allowed on this endpoint");
}

/* ------------------------------------------------------------------ */
/* Form and query parameters                                           */
/* ------------------------------------------------------------------ */

/* 1 if the request says its body is application/x-www-form-urlencoded. */
static int
mo_is_form(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
                                        "Content-Type");
    size_t len = MO_LIT_LEN(MO_CT_FORM);

    return ct != NULL && strncasecmp(ct, MO_CT_FORM, len) == 0
           && (ct[len] == '\0' || ct[len] == ';' || ct[len] == ' ');
}

/*
 * Parse "k=v&k=v" (values percent-decoded, '+' as space) into pairs,
 * which is always initialised: the caller clears it with
 * evhttp_clear_headers().  An empty string gives no pairs.  0, or -1.
 */
static int
mo_parse_pairs(const char *text, struct evkeyvalq *pairs)
{
    TAILQ_INIT(pairs);
    if (text == NULL || *text == '\0')
        return 0;
    return evhttp_parse_query_str(text, pairs);
}

/* The body's pairs (see mo_parse_pairs); -1 also for NUL bytes. */
static int
mo_parse_body(struct evhttp_request *req, struct evkeyvalq *pairs)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *text;
    int rc = -1;

    TAILQ_INIT(pairs);
    text = malloc(len + 1);
    if (text == NULL)
        return -1;
    if (len > 0 && evbuffer_copyout(in, text, len) != (ev_ssize_t)len)
        goto out_free;
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL)
        goto out_free;
    rc = mo_parse_pairs(text, pairs);

out_free:
    free(text);
    return rc;
}

/*
 * The form of an OAuth endpoint request: Content-Type must say form.
 * Answers 400 invalid_request itself and returns -1 when it cannot.
 */
static int
mo_oauth_form(struct evhttp_request *req, struct evkeyvalq *form)
{
    TAILQ_INIT(form);
    if (!mo_is_form(req)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "Content-Type must be " MO_CT_FORM);
        return -1;
    }
    if (mo_parse_body(req, form) != 0) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "malformed form body");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Token state                                                         */
/* ------------------------------------------------------------------ */

/*
 * Take the next mint number n and replace the slots in what with
 * "at-<n>" / "rt-<n>" / "ik-<n>".  All or nothing: 0, or -1 (ENOMEM).
 */
static int
mo_mint(struct mo_ctx *ctx, unsigned what)
{
    char *fresh[MO_SLOTS] = { NULL };
    unsigned long n = ctx->minted + 1;
    size_t i;

    for (i = 0; i < MO_SLOTS; i++) {
        if ((what & (1u << i)) == 0)
            continue;
        if (asprintf(&fresh[i], "%s%lu", mo_slot_prefixes[i], n) < 0) {
            fresh[i] = NULL;
            goto out_free;
        }
    }
    for (i = 0; i < MO_SLOTS; i++) {
        if (fresh[i] != NULL) {
            free(ctx->state.slots[i]);
            ctx->state.slots[i] = fresh[i];
        }
    }
    ctx->minted = n;
    return 0;

out_free:
    for (i = 0; i < MO_SLOTS; i++)
        free(fresh[i]);
    return -1;
}

/* The resource_url to send, or NULL to leave the member out. */
static const char *
mo_resource_url(const struct mo_ctx *ctx)
{
    if (ctx->state.resource_url == NULL)
        return ctx->base_url;
    if (strcmp(ctx->state.resource_url, MO_RESOURCE_NONE) == 0)
        return NULL;
    return ctx->state.resource_url;
}

/* The poll arrived now: remember the gap since the previous one. */
static void
mo_record_poll(struct mo_ctx *ctx)
{
    struct mo_stats *st = &ctx->stats;
    int64_t now = mo_now_ms();

    if (st->have_last_poll) {
        st->gaps_ms[st->gap_next] = now - st->last_poll_ms;
        st->gap_next = (st->gap_next + 1) % MO_POLL_GAPS;
        if (st->gap_count < MO_POLL_GAPS)
            st->gap_count++;
    }
    st->last_poll_ms = now;
    st->have_last_poll = 1;
}

/* 1 if the form's refresh_token is the current one and not revoked. */
static int
mo_refresh_token_valid(const struct mo_ctx *ctx, struct evkeyvalq *form)
{
    return !ctx->state.revoked
           && mo_streq(evhttp_find_header(form, "refresh_token"),
                       ctx->state.slots[MO_SLOT_REFRESH]);
}

/* ------------------------------------------------------------------ */
/* Delayed answers                                                     */
/* ------------------------------------------------------------------ */

static void mo_qwen_refresh_finish(struct mo_ctx *ctx,
                                   struct evhttp_request *req);
static void mo_iflow_refresh_finish(struct mo_ctx *ctx,
                                    struct evhttp_request *req);
static void mo_chat_answer(struct mo_ctx *ctx, struct evhttp_request *req,
                           const char *model, int stream,
                           const char *content);

/* Unlink and free a job.  Never touches its request or connection. */
static void
mo_job_free(struct mo_job *job)
{
    struct mo_ctx *ctx = job->ctx;

    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        ctx->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    if (job->timer != NULL)
        event_free(job->timer);
    free(job->model);
    free(job);
}

/*
 * The connection is going away before the job finished: the client
 * disconnected (evhttp then detaches the unanswered request and hands it
 * to us) or the server is shutting down (the request is still queued and
 * evhttp frees it right after this callback).
 */
static void
mo_job_closecb(struct evhttp_connection *evcon, void *arg)
{
    struct mo_job *job = arg;

    (void)evcon;
    job->ctx->stats.aborted++;
    if (!job->ctx->quiet)
        fprintf(stderr, "%s: connection closed, delayed answer dropped\n",
                MO_NAME);
    if (evhttp_request_get_connection(job->req) == NULL)
        evhttp_request_free(job->req);
    mo_job_free(job);
}

static void
mo_job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mo_job *job = arg;

    (void)fd;
    (void)what;
    evhttp_connection_set_closecb(job->evcon, NULL, NULL);
    switch (job->kind) {
    case MO_JOB_QWEN_REFRESH:
        mo_qwen_refresh_finish(job->ctx, job->req);
        break;
    case MO_JOB_IFLOW_REFRESH:
        mo_iflow_refresh_finish(job->ctx, job->req);
        break;
    case MO_JOB_CHAT:
    default:
        mo_chat_answer(job->ctx, job->req, job->model, job->stream,
                       job->content);
        break;
    }
    mo_job_free(job);
}

/*
 * Keep watching for EOF while a request waits for its answer.  evhttp
 * stops reading once a request is complete, so without this a client
 * that gives up would only be noticed when we finally write.  The read
 * callback stays NULL so pipelined bytes just wait in the input buffer;
 * EOF goes to evhttp's event callback, which frees the connection and
 * thus calls mo_job_closecb().
 */
static void
mo_watch_close(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    bufferevent_data_cb writecb = NULL;
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;

    bufferevent_getcb(bev, NULL, &writecb, &eventcb, &cbarg);
    bufferevent_setcb(bev, NULL, writecb, eventcb, cbarg);
    bufferevent_enable(bev, EV_READ);
}

/*
 * Answer req after delay_ms.  model (copied) and the others only matter
 * for MO_JOB_CHAT.  0, or -1 when nothing was scheduled (the caller
 * answers).
 */
static int
mo_job_start(struct mo_ctx *ctx, struct evhttp_request *req,
             enum mo_job_kind kind, long delay_ms, const char *model,
             int stream, const char *content)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct mo_job *job;
    struct timeval delay;

    if (evcon == NULL)
        return -1;
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        return -1;
    if (model != NULL) {
        job->model = strdup(model);
        if (job->model == NULL)
            goto out_free;
    }
    job->timer = evtimer_new(ctx->base, mo_job_timer_cb, job);
    if (job->timer == NULL)
        goto out_free;
    delay.tv_sec = delay_ms / MO_MS_PER_SEC;
    delay.tv_usec = (delay_ms % MO_MS_PER_SEC) * MO_US_PER_MS;
    if (evtimer_add(job->timer, &delay) != 0)
        goto out_free;
    job->ctx = ctx;
    job->req = req;
    job->evcon = evcon;
    job->kind = kind;
    job->stream = stream;
    job->content = content;
    job->next = ctx->jobs;
    if (ctx->jobs != NULL)
        ctx->jobs->prev = job;
    ctx->jobs = job;
    evhttp_connection_set_closecb(evcon, mo_job_closecb, job);
    mo_watch_close(evcon);
    return 0;

out_free:
    if (job->timer != NULL)
        event_free(job->timer);
    free(job->model);
    free(job);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Qwen: POST /api/v1/oauth2/device/code                               */
/* ------------------------------------------------------------------ */

static void
mo_device_code_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    struct evkeyvalq form;
    struct json_object *obj;
    const char *challenge;
    const char *method;
    char text[MO_URL_MAX + MO_CODE_MAX];
    unsigned long k;
    int rc;

    TAILQ_INIT(&form);
    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mo_bad_method(req);
        return;
    }
    ctx->stats.device_code++;
    if (mo_oauth_form(req, &form) != 0)
        goto out;
    challenge = evhttp_find_header(&form, "code_challenge");
    method = evhttp_find_header(&form, "code_challenge_method");
    if (!mo_streq(evhttp_find_header(&form, "client_id"),
                  ctx->state.qwen_client_id)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "unknown client_id");
        goto out;
    }
    if (evhttp_find_header(&form, "scope") == NULL) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "scope is required");
        goto out;
    }
    if (challenge == NULL || !mo_challenge_valid(challenge)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "code_challenge must be 43 base64url characters");
        goto out;
    }
    if (!mo_streq(method, MO_CHALLENGE_METHOD)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "code_challenge_method must be S256");
        goto out;
    }

    k = ctx->device.seq + 1;
    obj = json_object_new_object();
    snprintf(text, sizeof(text), "dc-%lu", k);
    rc = mo_add_str(obj, "device_code", text);
    snprintf(text, sizeof(text), "UC-%lu", k);
    rc |= mo_add_str(obj, "user_code", text);
    snprintf(text, sizeof(text), "%s/authorize", ctx->base_url);
    rc |= mo_add_str(obj, "verification_uri", text);
    snprintf(text, sizeof(text), "%s/authorize?user_code=UC-%lu",
             ctx->base_url, k);
    rc |= mo_add_str(obj, "verification_uri_complete", text);
    rc |= mo_add_int(obj, "expires_in", ctx->state.device_expires_in);
    rc |= mo_add_int(obj, "interval", ctx->state.interval);
    if (rc == 0 && obj != NULL) {
        ctx->device.seq = k;
        memcpy(ctx->device.challenge, challenge, MO_CHALLENGE_LEN + 1);
        /* Gaps are between polls of one device code. */
        ctx->stats.have_last_poll = 0;
    }
    mo_reply_json(req, HTTP_OK, obj, rc);

out:
    evhttp_clear_headers(&form);
}

/* ------------------------------------------------------------------ */
/* Qwen: POST /api/v1/oauth2/token                                     */
/* ------------------------------------------------------------------ */

/* Qwen's token answer; the refresh token only when with_refresh. */
static void
mo_qwen_tokens_reply(struct mo_ctx *ctx, struct evhttp_request *req,
                     int with_refresh)
{
    struct json_object *obj = json_object_new_object();
    const char *resource = mo_resource_url(ctx);
    int rc;

    rc = mo_add_str(obj, "access_token", ctx->state.slots[MO_SLOT_ACCESS]);
    if (with_refresh)
        rc |= mo_add_str(obj, "refresh_token",
                         ctx->state.slots[MO_SLOT_REFRESH]);
    rc |= mo_add_str(obj, "token_type", "Bearer");
    rc |= mo_add_int(obj, "expires_in", ctx->state.expires_in);
    if (resource != NULL)
        rc |= mo_add_str(obj, "resource_url", resource);
    mo_reply_json(req, HTTP_OK, obj, rc);
}

static void
mo_token_device(struct mo_ctx *ctx, struct evhttp_request *req,
                struct evkeyvalq *form)
{
    const char *verifier = evhttp_find_header(form, "code_verifier");
    char expected[MO_CODE_MAX];
    char challenge[MO_CHALLENGE_LEN + 1];

    ctx->stats.polls++;
    mo_record_poll(ctx);
    if (!mo_streq(evhttp_find_header(form, "client_id"),
                  ctx->state.qwen_client_id)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_grant",
                       "client_id does not match");
        return;
    }
    snprintf(expected, sizeof(expected), "dc-%lu", ctx->device.seq);
    if (ctx->device.seq == 0
        || !mo_streq(evhttp_find_header(form, "device_code"), expected)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_grant",
                       "unknown device_code");
        return;
    }
    if (verifier == NULL || mo_pkce_challenge(verifier, challenge) != 0
        || strcmp(challenge, ctx->device.challenge) != 0) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_grant",
                       "code_verifier does not match the code_challenge");
        return;
    }
    if (ctx->state.slow_down > 0) {
        ctx->state.slow_down--;
        mo_oauth_error(req, MO_HTTP_TOO_MANY, "slow_down",
                       "polling too fast");
        return;
    }
    if (ctx->state.pending > 0) {
        ctx->state.pending--;
        mo_oauth_error(req, HTTP_BADREQUEST, "authorization_pending",
                       "the user has not authorized yet");
        return;
    }
    switch (ctx->state.device_mode) {
    case MO_DEVICE_EXPIRED:
        mo_oauth_error(req, HTTP_BADREQUEST, "expired_token", NULL);
        return;
    case MO_DEVICE_DENIED:
        mo_oauth_error(req, HTTP_BADREQUEST, "access_denied", NULL);
        return;
    default:
        break;
    }
    if (mo_mint(ctx, MO_MINT_ACCESS | MO_MINT_REFRESH) != 0) {
        mo_reply_json(req, HTTP_INTERNAL, NULL, -1);
        return;
    }
    mo_qwen_tokens_reply(ctx, req, 1);
}

/* A checked Qwen refresh, when its delay is over. */
static void
mo_qwen_refresh_finish(struct mo_ctx *ctx, struct evhttp_request *req)
{
    int rotate = ctx->state.rotate != 0;
    unsigned what = MO_MINT_ACCESS | (rotate ? MO_MINT_REFRESH : 0);

    if (mo_mint(ctx, what) != 0) {
        mo_reply_json(req, HTTP_INTERNAL, NULL, -1);
        return;
    }
    mo_qwen_tokens_reply(ctx, req, rotate);
}

static void
mo_token_refresh(struct mo_ctx *ctx, struct evhttp_request *req,
                 struct evkeyvalq *form)
{
    ctx->stats.refresh++;
    if (!mo_streq(evhttp_find_header(form, "client_id"),
                  ctx->state.qwen_client_id)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_client", NULL);
        return;
    }
    if (!mo_refresh_token_valid(ctx, form)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_grant",
                       "refresh token is invalid or revoked");
        return;
    }
    if (ctx->state.refresh_delay_ms > 0
        && mo_job_start(ctx, req, MO_JOB_QWEN_REFRESH,
                        ctx->state.refresh_delay_ms, NULL, 0, NULL) == 0)
        return;
    mo_qwen_refresh_finish(ctx, req);
}

static void
mo_token_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    struct evkeyvalq form;
    const char *grant;

    TAILQ_INIT(&form);
    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mo_bad_method(req);
        return;
    }
    if (mo_oauth_form(req, &form) != 0)
        goto out;
    grant = evhttp_find_header(&form, "grant_type");
    if (grant == NULL)
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_request",
                       "grant_type is required");
    else if (strcmp(grant, MO_GRANT_DEVICE) == 0)
        mo_token_device(ctx, req, &form);
    else if (strcmp(grant, MO_GRANT_REFRESH) == 0)
        mo_token_refresh(ctx, req, &form);
    else
        mo_oauth_error(req, HTTP_BADREQUEST, "unsupported_grant_type",
                       "grant_type is not supported");

out:
    evhttp_clear_headers(&form);
}

/* ------------------------------------------------------------------ */
/* iFlow: POST /oauth/token, GET /api/oauth/getUserInfo                */
/* ------------------------------------------------------------------ */

/*
 * 1 if the form's client_id / client_secret and the Basic header both
 * name the iFlow client.
 */
static int
mo_iflow_client_valid(const struct mo_ctx *ctx, struct evhttp_request *req,
                      struct evkeyvalq *form)
{
    const char *id = ctx->state.iflow_client_id;
    const char *secret = ctx->state.iflow_client_secret;
    const char *given = mo_auth_param(req, MO_AUTH_BASIC);
    char *pair = NULL;
    char *expected = NULL;
    int len;
    int valid = 0;

    if (!mo_streq(evhttp_find_header(form, "client_id"), id)
        || !mo_streq(evhttp_find_header(form, "client_secret"), secret)
        || given == NULL)
        return 0;
    len = asprintf(&pair, "%s:%s", id, secret);
    if (len < 0) {
        pair = NULL;
        goto out;
    }
    /* Standard base64 with padding, NUL-terminated. */
    expected = malloc(((size_t)len + 2) / 3 * 4 + 1);
    if (expected == NULL)
        goto out;
    EVP_EncodeBlock((unsigned char *)expected, (const unsigned char *)pair,
                    len);
    valid = strcmp(given, expected) == 0;

out:
    free(expected);
    free(pair);
    return valid;
}

/* A checked iFlow refresh, when its delay is over. */
static void
mo_iflow_refresh_finish(struct mo_ctx *ctx, struct evhttp_request *req)
{
    int rotate = ctx->state.rotate != 0;
    unsigned what = MO_MINT_ACCESS | MO_MINT_APIKEY
                    | (rotate ? MO_MINT_REFRESH : 0);
    struct json_object *obj;
    int rc;

    if (mo_mint(ctx, what) != 0) {
        mo_reply_json(req, HTTP_INTERNAL, NULL, -1);
        return;
    }
    obj = json_object_new_object();
    rc = mo_add_str(obj, "access_token", ctx->state.slots[MO_SLOT_ACCESS]);
    if (rotate)
        rc |= mo_add_str(obj, "refresh_token",
                         ctx->state.slots[MO_SLOT_REFRESH]);
    rc |= mo_add_int(obj, "expires_in", ctx->state.expires_in);
    rc |= mo_add_str(obj, "token_type", "bearer");
    rc |= mo_add_str(obj, "scope", "read");
    mo_reply_json(req, HTTP_OK, obj, rc);
}

static void
mo_iflow_token_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    struct evkeyvalq form;

    TAILQ_INIT(&form);
    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mo_bad_method(req);
        return;
    }
    ctx->stats.iflow_refresh++;
    if (mo_oauth_form(req, &form) != 0)
        goto out;
    if (!mo_iflow_client_valid(ctx, req, &form)) {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "WWW-Authenticate", "Basic realm=\"mock_oauth\"");
        mo_oauth_error(req, MO_HTTP_UNAUTHORIZED, "invalid_client", NULL);
        goto out;
    }
    if (!mo_streq(evhttp_find_header(&form, "grant_type"),
                  MO_GRANT_REFRESH)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "unsupported_grant_type",
                       "grant_type must be refresh_token");
        goto out;
    }
    if (!mo_refresh_token_valid(ctx, &form)) {
        mo_oauth_error(req, HTTP_BADREQUEST, "invalid_grant",
                       "refresh token is invalid or revoked");
        goto out;
    }
    if (ctx->state.refresh_delay_ms > 0
        && mo_job_start(ctx, req, MO_JOB_IFLOW_REFRESH,
                        ctx->state.refresh_delay_ms, NULL, 0, NULL) == 0)
        goto out;
    mo_iflow_refresh_finish(ctx, req);

out:
    evhttp_clear_headers(&form);
}

static void
mo_userinfo_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    struct evkeyvalq query;
    struct json_object *obj;
    struct json_object *data;
    int rc;

    TAILQ_INIT(&query);
    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        mo_bad_method(req);
        return;
    }
    ctx->stats.userinfo++;
    obj = json_object_new_object();
    /* A malformed query is just one without the right token. */
    if (mo_parse_pairs(evhttp_uri_get_query(
                           evhttp_request_get_evhttp_uri(req)),
                       &query) != 0
        || !mo_streq(evhttp_find_header(&query, "accessToken"),
                     ctx->state.slots[MO_SLOT_ACCESS])) {
        rc = mo_add_bool(obj, "success", 0);
        rc |= mo_add_str(obj, "message", "invalid access token");
        mo_reply_json(req, HTTP_OK, obj, rc);
        goto out;
    }
    data = json_object_new_object();
    rc = mo_add_str(data, "apiKey", ctx->state.slots[MO_SLOT_APIKEY]);
    rc |= mo_add_str(data, "userId", "u1");
    rc |= mo_add_str(data, "userName", "tester");
    if (rc != 0) {
        json_object_put(data);
        data = NULL;
    }
    rc |= mo_add_bool(obj, "success", 1);
    rc |= mo_add(obj, "data", data);
    mo_reply_json(req, HTTP_OK, obj, rc);

out:
    evhttp_clear_headers(&query);
}

/* ------------------------------------------------------------------ */
/* POST /v1/chat/completions                                           */
/* ------------------------------------------------------------------ */

/* Parse the request body; NULL unless it is exactly one JSON object. */
static struct json_object *
mo_parse_json(struct mo_ctx *ctx, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data;
    struct json_object *root;
    size_t end;

    if (len == 0 || len > INT_MAX)
        return NULL;
    data = (const char *)evbuffer_pullup(in, -1);
    if (data == NULL)
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

/* Remember model, stream and the top-level keys of this chat request. */
static void
mo_record_chat(struct mo_ctx *ctx, struct json_object *root,
               const char *model, int stream)
{
    struct json_object *keys = json_object_new_array();

    if (mo_set_string(&ctx->stats.last_model, model) != 0)
        fprintf(stderr, "%s: out of memory\n", MO_NAME);
    ctx->stats.last_stream = stream;
    json_object_object_foreach(root, key, value) {
        (void)value;
        if (mo_push(keys, json_object_new_string(key)) != 0)
            break;
    }
    json_object_put(ctx->stats.last_keys);
    ctx->stats.last_keys = keys;
}

/* The chat.completion(.chunk) object up to, not including, "choices". */
static struct json_object *
mo_chat_head(const char *object, const char *id, int64_t created,
             const char *model)
{
    struct json_object *obj = json_object_new_object();

    if (mo_add_str(obj, "id", id) != 0
        || mo_add_str(obj, "object", object) != 0
        || mo_add_int(obj, "created", created) != 0
        || mo_add_str(obj, "model", model) != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

static struct json_object *
mo_chat_usage(void)
{
    struct json_object *usage = json_object_new_object();

    if (mo_add_int(usage, "prompt_tokens", MO_CHAT_PROMPT_TOKENS) != 0
        || mo_add_int(usage, "completion_tokens", MO_CHAT_ANSWER_TOKENS) != 0
        || mo_add_int(usage, "total_tokens",
                      MO_CHAT_PROMPT_TOKENS + MO_CHAT_ANSWER_TOKENS) != 0) {
        json_object_put(usage);
        return NULL;
    }
    return usage;
}

/* Add "choices":[choice] (choice consumed) to obj.  0, or -1. */
static int
mo_add_choice(struct json_object *obj, struct json_object *choice)
{
    struct json_object *choices = json_object_new_array();

    if (mo_push(choices, choice) != 0) {
        json_object_put(choices);
        return -1;
    }
    return mo_add(obj, "choices", choices);
}

/* {"role":"assistant","content":content} */
static struct json_object *
mo_chat_message(const char *content)
{
    struct json_object *msg = json_object_new_object();

    if (mo_add_str(msg, "role", "assistant") != 0
        || mo_add_str(msg, "content", content) != 0) {
        json_object_put(msg);
        return NULL;
    }
    return msg;
}

/* Send obj (consumed) as one "data: ...\n\n" chunk. */
static void
mo_send_event(struct evhttp_request *req, struct json_object *obj)
{
    struct evbuffer *chunk = evbuffer_new();
    const char *text;

    if (chunk == NULL || obj == NULL)
        goto out;
    text = json_object_to_json_string_ext(obj, MO_JSON_FLAGS);
    if (text == NULL || evbuffer_add_printf(chunk, "data: %s\n\n", text) < 0)
        goto out;
    evhttp_send_reply_chunk(req, chunk);

out:
    if (chunk != NULL)
        evbuffer_free(chunk);
    json_object_put(obj);
}

static void
mo_chat_stream(struct evhttp_request *req, const char *id, int64_t created,
               const char *model, const char *content)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct json_object *obj;
    struct json_object *choice;
    struct evbuffer *done;
    int rc;

    evhttp_add_header(headers, "Content-Type", MO_CT_SSE);
    evhttp_add_header(headers, "Cache-Control", "no-cache");
    evhttp_send_reply_start(req, HTTP_OK, NULL);

    obj = mo_chat_head("chat.completion.chunk", id, created, model);
    choice = json_object_new_object();
    rc = mo_add_int(choice, "index", 0);
    rc |= mo_add(choice, "delta", mo_chat_message(content));
    rc |= mo_add_null(choice, "finish_reason");
    if (rc != 0) {
        json_object_put(choice);
        choice = NULL;
    }
    if (mo_add_choice(obj, choice) == 0)
        mo_send_event(req, obj);
    else
        json_object_put(obj);

    obj = mo_chat_head("chat.completion.chunk", id, created, model);
    choice = json_object_new_object();
    rc = mo_add_int(choice, "index", 0);
    rc |= mo_add(choice, "delta", json_object_new_object());
    rc |= mo_add_str(choice, "finish_reason", "stop");
    if (rc != 0) {
        json_object_put(choice);
        choice = NULL;
    }
    if (mo_add_choice(obj, choice) == 0
        && mo_add(obj, "usage", mo_chat_usage()) == 0)
        mo_send_event(req, obj);
    else
        json_object_put(obj);

    done = evbuffer_new();
    if (done != NULL) {
        if (evbuffer_add_reference(done, mo_sse_done,
                                   MO_LIT_LEN(mo_sse_done), NULL,
                                   NULL) == 0)
            evhttp_send_reply_chunk(req, done);
        evbuffer_free(done);
    }
    evhttp_send_reply_end(req);
}

/* The answer to an accepted chat request, plain or streamed. */
static void
mo_chat_answer(struct mo_ctx *ctx, struct evhttp_request *req,
               const char *model, int stream, const char *content)
{
    char id[MO_CODE_MAX];
    int64_t created = (int64_t)time(NULL);
    struct json_object *obj;
    struct json_object *choice;
    int rc;

    snprintf(id, sizeof(id), MO_CHAT_ID_PREFIX "%lu", ++ctx->chat_seq);
    if (stream) {
        mo_chat_stream(req, id, created, model, content);
        return;
    }
    obj = mo_chat_head("chat.completion", id, created, model);
    choice = json_object_new_object();
    rc = mo_add_int(choice, "index", 0);
    rc |= mo_add(choice, "message", mo_chat_message(content));
    rc |= mo_add_str(choice, "finish_reason", "stop");
    if (rc != 0) {
        json_object_put(choice);
        choice = NULL;
    }
    rc = mo_add_choice(obj, choice);
    rc |= mo_add(obj, "usage", mo_chat_usage());
    mo_reply_json(req, HTTP_OK, obj, rc);
}

/* GET /v1/models: a one-model list for the current access token or API
 * key, 401 for anything else. */
static void
mo_models_cb(struct evhttp_request *req, void *arg)
{
    static const char body[] =
        "{\"object\":\"list\",\"data\":[{\"id\":\"mock-model\","
        "\"object\":\"model\",\"owned_by\":\"mock_oauth\"}]}";
    struct mo_ctx *ctx = arg;
    const char *token;

    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        mo_bad_method(req);
        return;
    }
    token = mo_auth_param(req, MO_AUTH_BEARER);
    if (!mo_streq(token, ctx->state.slots[MO_SLOT_ACCESS])
        && !mo_streq(token, ctx->state.slots[MO_SLOT_APIKEY])) {
        ctx->stats.models_401++;
        mo_openai_error(req, MO_HTTP_UNAUTHORIZED, "invalid_request_error",
                        "invalid_api_key", "Invalid access token");
        return;
    }
    ctx->stats.models++;
    evbuffer_add(evhttp_request_get_output_buffer(req), body,
                 sizeof(body) - 1);
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", "application/json");
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

static void
mo_chat_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    struct json_object *root;
    struct json_object *model;
    struct json_object *messages;
    struct json_object *stream_obj;
    const char *token;
    const char *content;
    int stream;

    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mo_bad_method(req);
        return;
    }
    token = mo_auth_param(req, MO_AUTH_BEARER);
    if (mo_streq(token, ctx->state.slots[MO_SLOT_ACCESS])) {
        content = MO_CHAT_VIA_TOKEN;
    } else if (mo_streq(token, ctx->state.slots[MO_SLOT_APIKEY])) {
        content = MO_CHAT_VIA_APIKEY;
    } else {
        ctx->stats.chat_401++;
        mo_openai_error(req, MO_HTTP_UNAUTHORIZED, "invalid_request_error",
                        "invalid_api_key", "Invalid access token");
        return;
    }
    ctx->stats.chat++;
    root = mo_parse_json(ctx, req);
    if (root == NULL) {
        mo_openai_error(req, HTTP_BADREQUEST, "invalid_request_error",
                        "bad_request",
                        "Request body must be a single JSON object.");
        return;
    }
    if (!json_object_object_get_ex(root, "model", &model)
        || !json_object_is_type(model, json_type_string)) {
        mo_openai_error(req, HTTP_BADREQUEST, "invalid_request_error",
                        "bad_request",
                        "Missing required string parameter: 'model'.");
        goto out;
    }
    if (!json_object_object_get_ex(root, "messages", &messages)
        || !json_object_is_type(messages, json_type_array)) {
        mo_openai_error(req, HTTP_BADREQUEST, "invalid_request_error",
                        "bad_request",
                        "Missing required array parameter: 'messages'.");
        goto out;
    }
    stream = json_object_object_get_ex(root, "stream", &stream_obj)
             && json_object_is_type(stream_obj, json_type_boolean)
             && json_object_get_boolean(stream_obj);
    mo_record_chat(ctx, root, json_object_get_string(model), stream);
    if (ctx->state.chat_delay_ms > 0
        && mo_job_start(ctx, req, MO_JOB_CHAT, ctx->state.chat_delay_ms,
                        json_object_get_string(model), stream,
                        content) == 0)
        goto out;
    mo_chat_answer(ctx, req, json_object_get_string(model), stream,
                   content);

out:
    json_object_put(root);
}

/* ------------------------------------------------------------------ */
/* POST /control                                                       */
/* ------------------------------------------------------------------ */

static const struct mo_key *
mo_key_find(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(mo_keys) / sizeof(mo_keys[0]); i++) {
        if (strcmp(mo_keys[i].name, name) == 0)
            return &mo_keys[i];
    }
    return NULL;
}

static long
mo_device_mode_parse(const char *value)
{
    long i;

    for (i = 0; i < MO_DEVICE_MODES; i++) {
        if (strcmp(value, mo_device_names[i]) == 0)
            return i;
    }
    return -1;
}

/* 0 if value is acceptable for key; else -1 and a reason in why. */
static int
mo_control_check(const struct mo_key *key, const char *value, char *why,
                 size_t whylen)
{
    long number;
    int ok;

    switch (key->kind) {
    case MO_KEY_TEXT:
        ok = *value != '\0';
        break;
    case MO_KEY_NUMBER:
        ok = mo_parse_number(value, key->min, key->max, &number) == 0;
        break;
    case MO_KEY_DEVICE:
        ok = mo_device_mode_parse(value) >= 0;
        break;
    case MO_KEY_REMINT:
        ok = strcmp(value, "1") == 0;
        break;
    case MO_KEY_RESOURCE:
    default:
        ok = 1;
        break;
    }
    if (!ok)
        snprintf(why, whylen, "bad value for '%s'", key->name);
    return ok ? 0 : -1;
}

/* Apply one checked pair.  0, or -1 (ENOMEM). */
static int
mo_control_apply(struct mo_ctx *ctx, const struct mo_key *key,
                 const char *value)
{
    char *field = (char *)&ctx->state + key->offset;
    long number = 0;

    switch (key->kind) {
    case MO_KEY_TEXT:
        return mo_set_string((char **)(void *)field, value);
    case MO_KEY_NUMBER:
        if (mo_parse_number(value, key->min, key->max, &number) != 0)
            return -1;
        *(long *)(void *)field = number;
        return 0;
    case MO_KEY_DEVICE:
        ctx->state.device_mode = mo_device_mode_parse(value);
        return 0;
    case MO_KEY_RESOURCE:
        if (strcmp(value, MO_RESOURCE_DEFAULT) == 0) {
            free(ctx->state.resource_url);
            ctx->state.resource_url = NULL;
            return 0;
        }
        return mo_set_string(&ctx->state.resource_url, value);
    case MO_KEY_REMINT:
    default:
        return mo_mint(ctx, key->mint);
    }
}

/* Check every pair of lists[0..n); 0, or -1 with a reason in why. */
static int
mo_control_check_all(struct evkeyvalq *lists, size_t n, char *why,
                     size_t whylen)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const struct evkeyval *kv;

        TAILQ_FOREACH(kv, &lists[i], next) {
            const struct mo_key *key = mo_key_find(kv->key);

            if (key == NULL) {
                snprintf(why, whylen, "unknown key '%s'", kv->key);
                return -1;
            }
            if (mo_control_check(key, kv->value, why, whylen) != 0)
                return -1;
        }
    }
    return 0;
}

static void
mo_control_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    /* The query string's pairs, then the body's. */
    struct evkeyvalq lists[2];
    struct json_object *obj;
    char why[MO_MSG_MAX];
    size_t i;
    int rc = 0;

    TAILQ_INIT(&lists[0]);
    TAILQ_INIT(&lists[1]);
    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mo_bad_method(req);
        return;
    }
    if (mo_parse_pairs(evhttp_uri_get_query(
                           evhttp_request_get_evhttp_uri(req)),
                       &lists[0]) != 0
        || mo_parse_body(req, &lists[1]) != 0) {
        snprintf(why, sizeof(why), "malformed key=value list");
        goto out_refuse;
    }
    if (mo_control_check_all(lists, 2, why, sizeof(why)) != 0)
        goto out_refuse;
    for (i = 0; i < 2 && rc == 0; i++) {
        const struct evkeyval *kv;

        TAILQ_FOREACH(kv, &lists[i], next) {
            rc = mo_control_apply(ctx, mo_key_find(kv->key), kv->value);
            if (rc != 0)
                break;
        }
    }
    if (rc != 0) {
        mo_reply_json(req, HTTP_INTERNAL, NULL, -1);
        goto out;
    }
    obj = json_object_new_object();
    mo_reply_json(req, HTTP_OK, obj, mo_add_bool(obj, "ok", 1));
    goto out;

out_refuse:
    obj = json_object_new_object();
    rc = mo_add_bool(obj, "ok", 0);
    rc |= mo_add_str(obj, "error", why);
    mo_reply_json(req, HTTP_BADREQUEST, obj, rc);
out:
    evhttp_clear_headers(&lists[0]);
    evhttp_clear_headers(&lists[1]);
}

/* ------------------------------------------------------------------ */
/* GET /stats, POST /stats/reset, GET /authorize, 404                  */
/* ------------------------------------------------------------------ */

static struct json_object *
mo_stats_gaps(const struct mo_stats *st)
{
    struct json_object *gaps = json_object_new_array();
    size_t start = (st->gap_next + MO_POLL_GAPS - st->gap_count)
                   % MO_POLL_GAPS;
    size_t i;

    for (i = 0; i < st->gap_count; i++) {
        if (mo_push(gaps, json_object_new_int64(
                              st->gaps_ms[(start + i) % MO_POLL_GAPS]))
            != 0) {
            json_object_put(gaps);
            return NULL;
        }
    }
    return gaps;
}

static void
mo_stats_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    const struct mo_stats *st = &ctx->stats;
    struct json_object *obj;
    struct json_object *keys;
    int rc;

    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        mo_bad_method(req);
        return;
    }
    keys = st->last_keys != NULL ? json_object_get(st->last_keys)
                                 : json_object_new_array();
    obj = json_object_new_object();
    rc = mo_add_int(obj, "device_code", (int64_t)st->device_code);
    rc |= mo_add_int(obj, "polls", (int64_t)st->polls);
    rc |= mo_add_int(obj, "refresh", (int64_t)st->refresh);
    rc |= mo_add_int(obj, "iflow_refresh", (int64_t)st->iflow_refresh);
    rc |= mo_add_int(obj, "userinfo", (int64_t)st->userinfo);
    rc |= mo_add_int(obj, "chat", (int64_t)st->chat);
    rc |= mo_add_int(obj, "chat_401", (int64_t)st->chat_401);
    rc |= mo_add_int(obj, "models", (int64_t)st->models);
    rc |= mo_add_int(obj, "models_401", (int64_t)st->models_401);
    rc |= mo_add_int(obj, "aborted", (int64_t)st->aborted);
    rc |= mo_add_str(obj, "access", ctx->state.slots[MO_SLOT_ACCESS]);
    rc |= mo_add_str(obj, "refresh_token",
                     ctx->state.slots[MO_SLOT_REFRESH]);
    rc |= mo_add_str(obj, "apikey", ctx->state.slots[MO_SLOT_APIKEY]);
    rc |= mo_add(obj, "poll_gaps_ms", mo_stats_gaps(st));
    rc |= mo_add_str(obj, "last_model",
                     st->last_model != NULL ? st->last_model : "");
    rc |= mo_add_bool(obj, "last_stream", st->last_stream);
    rc |= mo_add(obj, "last_keys", keys);
    mo_reply_json(req, HTTP_OK, obj, rc);
}

static void
mo_stats_clear(struct mo_stats *st)
{
    free(st->last_model);
    json_object_put(st->last_keys);
    memset(st, 0, sizeof(*st));
}

static void
mo_stats_reset_cb(struct evhttp_request *req, void *arg)
{
    struct mo_ctx *ctx = arg;
    struct json_object *obj;

    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        mo_bad_method(req);
        return;
    }
    mo_stats_clear(&ctx->stats);
    obj = json_object_new_object();
    mo_reply_json(req, HTTP_OK, obj, mo_add_bool(obj, "ok", 1));
}

/* Where verification_uri points: a page saying the code is accepted. */
static void
mo_authorize_cb(struct evhttp_request *req, void *arg)
{
    const struct mo_ctx *ctx = arg;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    mo_log(ctx, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        mo_bad_method(req);
        return;
    }
    if (evbuffer_add_printf(out, "%s: authorization page\n", MO_NAME) < 0) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", MO_CT_TEXT);
    evhttp_send_reply(req, HTTP_OK, NULL, NULL);
}

static void
mo_not_found_cb(struct evhttp_request *req, void *arg)
{
    const struct mo_ctx *ctx = arg;
    char message[MO_MSG_MAX];
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(
        req));

    mo_log(ctx, req);
    snprintf(message, sizeof(message), "no such endpoint: %s",
             path != NULL ? path : "?");
    mo_oauth_error(req, HTTP_NOTFOUND, "not_found", message);
}

/* ------------------------------------------------------------------ */
/* Startup and shutdown                                                */
/* ------------------------------------------------------------------ */

static void
mo_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct mo_ctx *ctx = arg;

    (void)sig;
    (void)what;
    event_base_loopbreak(ctx->base);
}

static void
mo_usage(FILE *fp)
{
    fprintf(fp, "usage: %s [-a ADDR] [-p PORT] [-P PORTFILE] [-q]\n"
            "  -a ADDR      listen address (default %s)\n"
            "  -p PORT      listen port, 0 = ephemeral (default %d)\n"
            "  -P PORTFILE  write the bound port to PORTFILE\n"
            "  -q           no per-request logging\n",
            MO_NAME, MO_DEFAULT_ADDR, MO_DEFAULT_PORT);
}

static int
mo_parse_args(struct mo_ctx *ctx, int argc, char **argv)
{
    int opt;
    long port;

    ctx->addr = MO_DEFAULT_ADDR;
    ctx->port = MO_DEFAULT_PORT;
    while ((opt = getopt(argc, argv, "a:p:P:qh")) != -1) {
        switch (opt) {
        case 'a':
            ctx->addr = optarg;
            break;
        case 'p':
            if (mo_parse_number(optarg, 0, MO_PORT_MAX, &port) != 0) {
                fprintf(stderr, "%s: bad port '%s'\n", MO_NAME, optarg);
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
            mo_usage(stdout);
            exit(EXIT_SUCCESS);
        default:
            mo_usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        mo_usage(stderr);
        return -1;
    }
    return 0;
}

/* The state the server starts with.  0, or -1 (ENOMEM). */
static int
mo_state_init(struct mo_state *st)
{
    st->qwen_client_id = strdup(MO_DEFAULT_QWEN_CLIENT);
    st->iflow_client_id = strdup(MO_DEFAULT_IFLOW_ID);
    st->iflow_client_secret = strdup(MO_DEFAULT_IFLOW_SECRET);
    st->slots[MO_SLOT_ACCESS] = strdup("at-0");
    st->slots[MO_SLOT_REFRESH] = strdup("rt-0");
    st->slots[MO_SLOT_APIKEY] = strdup("ik-0");
    st->device_mode = MO_DEVICE_OK;
    st->rotate = 1;
    st->expires_in = MO_DEFAULT_EXPIRES_IN;
    st->interval = MO_DEFAULT_INTERVAL;
    st->device_expires_in = MO_DEFAULT_DEVICE_TTL;
    if (st->qwen_client_id == NULL || st->iflow_client_id == NULL
        || st->iflow_client_secret == NULL
        || st->slots[MO_SLOT_ACCESS] == NULL
        || st->slots[MO_SLOT_REFRESH] == NULL
        || st->slots[MO_SLOT_APIKEY] == NULL)
        return -1;
    return 0;
}

static void
mo_state_free(struct mo_state *st)
{
    size_t i;

    free(st->qwen_client_id);
    free(st->iflow_client_id);
    free(st->iflow_client_secret);
    for (i = 0; i < MO_SLOTS; i++)
        free(st->slots[i]);
    free(st->resource_url);
    memset(st, 0, sizeof(*st));
}

/* Write "PORT\n" to PORTFILE.tmp, then rename it over PORTFILE. */
static int
mo_write_portfile(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    FILE *fp = NULL;
    int n;

    n = snprintf(tmp, sizeof(tmp), "%s%s", path, MO_TMP_SUFFIX);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        fprintf(stderr, "%s: port file path too long\n", MO_NAME);
        return -1;
    }
    fp = fopen(tmp, "w");
    if (fp == NULL)
        goto out_fail;
    if (fprintf(fp, "%u\n", port) < 0)
        goto out_fail;
    if (fclose(fp) != 0) {
        fp = NULL;
        goto out_fail;
    }
    fp = NULL;
    if (rename(tmp, path) != 0)
        goto out_fail;
    return 0;

out_fail:
    fprintf(stderr, "%s: cannot write port file %s: %s\n", MO_NAME, path,
            strerror(errno));
    if (fp != NULL)
        fclose(fp);
    unlink(tmp);
    return -1;
}

/* Port actually bound (matters for -p 0); 0 on failure. */
static unsigned
mo_bound_port(evutil_socket_t fd)
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

/* Register every endpoint.  0, or -1. */
static int
mo_routes(struct mo_ctx *ctx)
{
    static const struct {
        const char *path;
        void (*cb)(struct evhttp_request *, void *);
    } routes[] = {
        { "/api/v1/oauth2/device/code", mo_device_code_cb },
        { "/api/v1/oauth2/token", mo_token_cb },
        { "/oauth/token", mo_iflow_token_cb },
        { "/api/oauth/getUserInfo", mo_userinfo_cb },
        { "/v1/chat/completions", mo_chat_cb },
        { "/v1/models", mo_models_cb },
        { "/control", mo_control_cb },
        { "/stats", mo_stats_cb },
        { "/stats/reset", mo_stats_reset_cb },
        { "/authorize", mo_authorize_cb }
    };
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (evhttp_set_cb(ctx->http, routes[i].path, routes[i].cb, ctx) != 0)
            return -1;
    }
    evhttp_set_gencb(ctx->http, mo_not_found_cb, ctx);
    return 0;
}

static int
mo_setup(struct mo_ctx *ctx)
{
    struct sigaction sa;
    struct evhttp_bound_socket *sock;
    unsigned port;
    int ipv6 = strchr(ctx->addr, ':') != NULL;

    /* Writes to vanished clients must fail with EPIPE, not kill us. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    if (mo_state_init(&ctx->state) != 0)
        return -1;

    ctx->base = event_base_new();
    if (ctx->base == NULL)
        return -1;
    ctx->tok = json_tokener_new();
    ctx->http = evhttp_new(ctx->base);
    ctx->ev_sigterm = evsignal_new(ctx->base, SIGTERM, mo_signal_cb, ctx);
    ctx->ev_sigint = evsignal_new(ctx->base, SIGINT, mo_signal_cb, ctx);
    if (ctx->tok == NULL || ctx->http == NULL || ctx->ev_sigterm == NULL
        || ctx->ev_sigint == NULL)
        return -1;
    json_tokener_set_flags(ctx->tok, JSON_TOKENER_STRICT);
    if (evsignal_add(ctx->ev_sigterm, NULL) != 0
        || evsignal_add(ctx->ev_sigint, NULL) != 0)
        return -1;

    evhttp_set_allowed_methods(ctx->http, MO_ALL_METHODS);
    evhttp_set_timeout(ctx->http, MO_HTTP_TIMEOUT_SEC);
    evhttp_set_max_body_size(ctx->http, MO_MAX_BODY_BYTES);
    if (mo_routes(ctx) != 0)
        return -1;

    sock = evhttp_bind_socket_with_handle(ctx->http, ctx->addr,
                                          (ev_uint16_t)ctx->port);
    if (sock == NULL) {
        fprintf(stderr, "%s: cannot listen on %s:%d\n", MO_NAME, ctx->addr,
                ctx->port);
        return -1;
    }
    port = mo_bound_port(evhttp_bound_socket_get_fd(sock));
    if (port == 0)
        return -1;
    snprintf(ctx->base_url, sizeof(ctx->base_url),
             ipv6 ? "http://[%s]:%u" : "http://%s:%u", ctx->addr, port);
    if (ctx->portfile != NULL && mo_write_portfile(ctx->portfile, port) != 0)
        return -1;
    printf("%s listening %s\n", MO_NAME, ctx->base_url);
    fflush(stdout);
    return 0;
}

static void
mo_teardown(struct mo_ctx *ctx)
{
    /* Frees every connection; pending jobs are released via closecb. */
    if (ctx->http != NULL)
        evhttp_free(ctx->http);
    while (ctx->jobs != NULL)
        mo_job_free(ctx->jobs);
    if (ctx->ev_sigterm != NULL)
        event_free(ctx->ev_sigterm);
    if (ctx->ev_sigint != NULL)
        event_free(ctx->ev_sigint);
    if (ctx->tok != NULL)
        json_tokener_free(ctx->tok);
    if (ctx->base != NULL)
        event_base_free(ctx->base);
    mo_stats_clear(&ctx->stats);
    mo_state_free(&ctx->state);
    libevent_global_shutdown();
}

int
main(int argc, char **argv)
{
    struct mo_ctx ctx;
    int rc = EXIT_FAILURE;

    memset(&ctx, 0, sizeof(ctx));
    if (mo_parse_args(&ctx, argc, argv) != 0)
        return MO_EXIT_USAGE;
    if (mo_setup(&ctx) != 0)
        goto out;
    if (event_base_dispatch(ctx.base) < 0)
        goto out;
    rc = EXIT_SUCCESS;

out:
    mo_teardown(&ctx);
    return rc;
}
