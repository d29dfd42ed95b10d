/* provider_openai.c - the OpenAI-compatible adapter, the runtime part of
 * kinds "openai", "qwen" and "iflow" (API key or OAuth; auth.c owns
 * OAuth tokens; the kind's descriptor, provkind.h, says how a request is
 * signed, its chat path and what parameters it takes, via compat.c):
 * builds the upstream request, reads the answer plain or as SSE, and
 * classifies every outcome in one place. Owns w->headers and w->urls. */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "compat.h"
#include "door_anthropic.h"
#include "jsonscan.h"
#include "provkind.h"

#define OPENAI_MSG_MAX        300
#define OPENAI_SECRETS        3
#define OPENAI_BEARER         "Authorization: Bearer "
#define OPENAI_MS_PER_S       1000
#define OPENAI_RETRY_AFTER_MAX (3600 * 1000)
#define OPENAI_URL_MAX        2048

static const char sse_done_event[] = "data: [DONE]\n\n";

/* ---- reading the answer ---- */

static int64_t openai_parse_retry_after(const char *v)
{
    long long secs;
    struct tm tm;
    char buf[64];
    size_t n = strcspn(v, "\r\n");

    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (util_parse_int(buf, 0, OPENAI_RETRY_AFTER_MAX / OPENAI_MS_PER_S,
                       &secs) == 0)
        return secs * OPENAI_MS_PER_S;
    memset(&tm, 0, sizeof(tm));
    if (strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm) != NULL) {
        int64_t ms = ((int64_t)timegm(&tm) - (int64_t)time(NULL)) *
                     OPENAI_MS_PER_S;

        if (ms < 0)
            return 0;
        return ms < OPENAI_RETRY_AFTER_MAX ? ms : OPENAI_RETRY_AFTER_MAX;
    }
    return -1;
}

size_t provider_header_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    size_t len = size * n;
    char *v;

    call_touch(c);
    wcap_header(c, buf, len);
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue or a redirect). */
        c->json_type = false;
        c->retry_after_ms = -1;
        return len;
    }
    v = memchr(buf, ':', len);
    if (v == NULL)
        return len;
    v++;
    while (v < buf + len && (*v == ' ' || *v == '\t'))
        v++;
    if ((size_t)(v - buf) >= len)
        return len;
    if (strncasecmp(buf, "content-type:", 13) == 0) {
        c->json_type = strncasecmp(v, "application/json", 16) == 0 ||
                       strncasecmp(v, "text/json", 9) == 0;
    } else if (strncasecmp(buf, "retry-after:", 12) == 0) {
        char tmp[64];
        size_t vn = len - (size_t)(v - buf);

        if (vn < sizeof(tmp)) {
            memcpy(tmp, v, vn);
            tmp[vn] = '\0';
            c->retry_after_ms = (int)openai_parse_retry_after(tmp);
        }
    }
    return len;
}

/* An upstream SSE event: check it, note [DONE] / finish_reason / usage,
 * and relay it to the client. -1 aborts the transfer (proto_error). */
/* Does the event say a choice finished? A non-null finish_reason written
 * as a string. The pattern cannot match inside a JSON string, where every
 * quote is escaped. */
static bool openai_finished(const char *data, size_t len)
{
    static const char key[] = "\"finish_reason\":";
    const size_t at = sizeof("\"finish") - 1;     /* where its '_' is */
    const char *p, *end = data + len;

    /* Found from its '_', a byte rare in these events, with memchr: much
     * cheaper than memmem on every event of every stream. */
    if (len < sizeof(key) - 1)
        return false;
    p = data + at;
    while (p < end && (p = memchr(p, '_', (size_t)(end - p))) != NULL) {
        const char *k = p - at;

        p++;
        if ((size_t)(end - k) < sizeof(key) - 1 ||
            memcmp(k, key, sizeof(key) - 1) != 0)
            continue;
        p = k + sizeof(key) - 1;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' ||
                           *p == '\n'))
            p++;
        if (p < end && *p == '"')
            return true;
    }
    return false;
}

/* The top-level members of a stream event the adapter looks at. */
enum { OPENAI_EV_ERROR, OPENAI_EV_USAGE, OPENAI_EV_KEYS };
static const char *const openai_event_keys[OPENAI_EV_KEYS] = {
    "error", "usage"
};

/* An upstream SSE event: check it, note [DONE] / finish_reason / usage,
 * and relay it to the client. -1 aborts the transfer (proto_error). The
 * strict scanner does the checking and finds the members in one pass, no
 * tree, per event. */
static int openai_sse_event(void *arg, const char *event, const char *data,
                            size_t len)
{
    struct call *c = arg;
    size_t st[OPENAI_EV_KEYS], en[OPENAI_EV_KEYS], e;
    int rc;

    if (c->sse_done)
        return 0;     /* nothing may follow [DONE] */
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        c->sse_done = true;
        if (c->door_state != NULL) {
            if (wdoor_anthropic_event(c, data, len) < 0) {
                c->proto_error = "upstream stream ended without a "
                                 "finish_reason";
                return -1;
            }
            return 0;
        }
        call_send_head(c);
        call_send_chunk(c, sse_done_event, sizeof(sse_done_event) - 1);
        return 0;
    }
    rc = js_find_members(data, len, openai_event_keys, OPENAI_EV_KEYS, st,
                         en);
    if (rc < 0) {
        /* Not an object, or a key with an escape: then the members we
         * look for are taken as absent if it is a valid object. */
        size_t start = strspn(data, " \t\r\n");

        if (js_validate(data, len, JS_MAX_DEPTH) < 0 || data[start] != '{') {
            c->proto_error = "upstream sent a stream event that is not a "
                             "JSON object";
            return -1;
        }
        en[OPENAI_EV_ERROR] = en[OPENAI_EV_USAGE] = 0;
    }
    e = OPENAI_EV_ERROR;
    if (strcmp(event, "error") == 0 ||
        (en[e] != 0 && !(en[e] - st[e] == 4 &&
                         memcmp(data + st[e], "null", 4) == 0))) {
        c->proto_error = "upstream sent an error event in the stream";
        return -1;
    }
    if (!c->sse_finished && openai_finished(data, len))
        c->sse_finished = true;
    e = OPENAI_EV_USAGE;
    if (en[e] != 0 && data[st[e]] == '{') {
        struct compat_usage u;

        compat_usage(data + st[e], en[e] - st[e], &u);
        c->prompt_tokens = u.prompt_tokens;
        c->completion_tokens = u.completion_tokens;
        if (c->strip_usage && compat_usage_chunk(data, len))
            return 0;      /* the chunk we asked for, not the client */
    }
    if (c->door_state != NULL) {
        /* The Anthropic door's: translated as it comes. */
        if (wdoor_anthropic_event(c, data, len) < 0) {
            c->proto_error = "upstream sent a stream event that cannot be "
                             "translated";
            return -1;
        }
        return 0;
    }
    call_send_head(c);
    /* Gathered with the events around it into one frame (worker.c). */
    call_send_event(c, data, len);
    return 0;
}

static size_t openai_write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    size_t len = size * n;

    if (c->http_status == 0)
        c->http_status = upstream_status(c);
    call_touch(c);
    if (c->stream && c->http_status == 200 && call_output_full(c)) {
        /* The master has not taken what we sent yet: curl keeps this
         * piece and hands it over again when we resume. */
        return CURL_WRITEFUNC_PAUSE;
    }
    if (c->stream && c->http_status == 200) {
        wcap_answer(c, buf, len);
        /* Events before a bad one are good: they are sent. */
        if (sse_feed(&c->sse, buf, len) < 0) {
            if (c->proto_error == NULL)
                c->proto_error = "upstream stream event exceeds the size cap";
            return 0;
        }
        /* One curl call may drive a whole burst of new transfers: a
         * first chunk leaves now, not when curl is done with them all. */
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

/* ---- per-worker state: signed headers and URLs, built once ---- */

static int openai_add_header(void *arg, const char *line)
{
    struct curl_slist **h = arg;
    struct curl_slist *n = curl_slist_append(*h, line);

    if (n == NULL)
        return -1;
    *h = n;
    return 0;
}

/* The header lists of every provider with an API key, signed as its
 * kind says: the same few lines go out with each call. */
static int openai_build_headers(struct worker *w)
{
    const struct cfg *cfg = w->cfg;

    w->headers = calloc((size_t)cfg->provider_count * 2,
                        sizeof(*w->headers));
    if (w->headers == NULL)
        return -1;
    for (int p = 0; p < cfg->provider_count; p++) {
        const struct cfg_provider *prov = &cfg->providers[p];
        const struct provkind *k = provkind_of(prov->type);

        if (k->simulated)
            continue;
        for (int stream = 0; stream < 2; stream++) {
            struct curl_slist *h = NULL;

            if (k->sign(prov->api_key, stream != 0, openai_add_header,
                        &h) < 0) {
                curl_slist_free_all(h);
                return -1;
            }
            w->headers[2 * p + stream] = h;
        }
    }
    return 0;
}

/* Parses every provider's chat URL once; curl would parse the string
 * again on every transfer. */
static int openai_build_urls(struct worker *w)
{
    const struct cfg *cfg = w->cfg;

    w->urls = calloc((size_t)cfg->provider_count, sizeof(*w->urls));
    w->dests = calloc((size_t)cfg->provider_count, sizeof(*w->dests));
    if (w->urls == NULL || w->dests == NULL)
        return -1;
    for (int p = 0; p < cfg->provider_count; p++) {
        const struct provkind *k = provkind_of(cfg->providers[p].type);
        char url[OPENAI_URL_MAX];

        if (cfg->providers[p].base_url == NULL || k->simulated)
            continue;
        if (provkind_url(cfg->providers[p].base_url, k->chat_path, url,
                         sizeof(url)) < 0)
            return -1;
        w->urls[p] = curl_url();
        if (w->urls[p] == NULL ||
            curl_url_set(w->urls[p], CURLUPART_URL, url, 0) != CURLUE_OK)
            return -1;
        w->dests[p] = upstream_dest(w, url);
    }
    return 0;
}

static int openai_init(struct worker *w)
{
    if (openai_build_headers(w) < 0 || openai_build_urls(w) < 0)
        return -1;
    return auth_init(w);
}

static void openai_free(struct worker *w)
{
    auth_free(w);      /* its calls leave the multi before it goes */
    if (w->headers != NULL) {
        for (int i = 0; i < 2 * w->cfg->provider_count; i++)
            curl_slist_free_all(w->headers[i]);
        free(w->headers);
        w->headers = NULL;
    }
    if (w->urls != NULL) {
        for (int p = 0; p < w->cfg->provider_count; p++)
            curl_url_cleanup(w->urls[p]);
        free(w->urls);
        w->urls = NULL;
    }
    free(w->dests);       /* they are w->httpc's */
    w->dests = NULL;
}

/* The prebuilt request headers for c's provider and mode. */
static struct curl_slist *openai_headers(const struct call *c)
{
    int p = c->w->cfg->targets[c->target].provider;

    return c->w->headers[2 * p + (c->stream ? 1 : 0)];
}

/* ---- the request ---- */

/* The client's body as the target's provider takes it (compat.c), with
 * the target's model; malloc'd into c->req_body. */
static int openai_build_body(struct call *c)
{
    size_t len;
    const char *body = (const char *)call_body(c, &len);
    char *chat = NULL, *with_usage;
    size_t with_len;
    int rc;

    if (!wdoor_anthropic(c)) {
        if (compat_request(call_provider(c)->type, body, len, call_model(c),
                           &c->req_body, &c->req_len) < 0)
            return -1;
    } else {
        /* The Anthropic door's Messages body: made a chat body first (the
         * master checked it with the same rules), then the kind's rules. */
        char err[OPENAI_MSG_MAX];

        if (wdoor_anthropic_request(c, &chat, &len, err, sizeof(err)) < 0)
            return -1;
        rc = compat_request(call_provider(c)->type, chat, len, call_model(c),
                            &c->req_body, &c->req_len);
        free(chat);
        if (rc < 0)
            return -1;
    }
    /* Usage for every streamed answer (its tokens count against the
     * budgets): asked for when the client did not, and its chunk then
     * kept from the client (openai_sse_event). */
    c->strip_usage = false;
    if (!c->stream)
        return 0;
    rc = compat_ask_usage(c->req_body, c->req_len, &with_usage, &with_len);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        free(c->req_body);
        c->req_body = with_usage;
        c->req_len = with_len;
        c->strip_usage = true;
    }
    return 0;
}

/* This attempt's header list, signed as the kind says with the current
 * tokens' key. Freed with the attempt. */
static int openai_auth_headers(struct call *c)
{
    struct curl_slist *h = NULL;

    if (provkind_of(call_provider(c)->type)->sign(auth_secret(c), c->stream,
                                                  openai_add_header, &h) < 0) {
        curl_slist_free_all(h);
        return -1;
    }
    curl_slist_free_all(c->auth_headers);
    c->auth_headers = h;
    return 0;
}

static void openai_transfer_done(struct call *c, CURLcode result);

static void openai_xfer_done(struct upstream_xfer *x, CURLcode result)
{
    openai_transfer_done((struct call *)((char *)x -
                                         offsetof(struct call, xfer)),
                         result);
}

static int openai_start(struct call *c)
{
    const struct cfg_provider *p = call_provider(c);
    struct worker *w = c->w;
    struct upstream_req req = {
        .provider = w->cfg->targets[c->target].provider,
        .write_cb = openai_write_cb,
        .header_cb = provider_header_cb,
        .done = openai_xfer_done,
    };

    if (p->auth == CFG_AUTH_OAUTH) {
        int rc = auth_prepare(c, openai_start);

        if (rc <= 0)
            return rc;     /* parked (started again later), or failed */
    } else if (p->api_key == NULL) {
        char msg[OPENAI_MSG_MAX];

        snprintf(msg, sizeof(msg), "provider %s has no API key (%s is not "
                 "set)", p->name, p->api_key_env ? p->api_key_env : "api_key");
        call_attempt_failed(c, 502, "missing_credentials", msg, true, true);
        return -1;
    }
    if (openai_build_body(c) < 0) {
        call_attempt_failed(c, 502, "internal_error", "cannot build the "
                            "upstream request", false, false);
        return -1;
    }
    c->resp = evbuffer_new();
    if (c->resp == NULL)
        goto fail;
    if (c->stream)
        sse_init(&c->sse, WORKER_MAX_SSE_EVENT, openai_sse_event, c);
    if (p->auth == CFG_AUTH_OAUTH) {
        /* The URL and key come with the tokens, which may change. */
        if (openai_auth_headers(c) < 0)
            goto fail;
        req.url = auth_chat_url(c);
        req.headers = c->auth_headers;
    } else {
        req.headers = openai_headers(c);
    }
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

/* The upstream's own error message, or a printable snippet of its body,
 * into out. */
static void openai_upstream_message(struct call *c, char *out, size_t cap)
{
    size_t len = c->resp ? evbuffer_get_length(c->resp) : 0;
    const char *body = len ? (const char *)evbuffer_pullup(c->resp, -1) : "";

    const char *secrets[OPENAI_SECRETS] = { call_provider(c)->api_key, NULL,
                                            NULL };

    /* An upstream may quote the key it refused; it goes no further: the
     * key, the current OAuth token and the one this attempt was signed
     * with (the last line of its header list). */
    if (call_provider(c)->auth == CFG_AUTH_OAUTH) {
        const struct curl_slist *h = c->auth_headers;

        secrets[1] = auth_secret(c);
        while (h != NULL && h->next != NULL)
            h = h->next;
        if (h != NULL && strncmp(h->data, OPENAI_BEARER,
                                 sizeof(OPENAI_BEARER) - 1) == 0)
            secrets[2] = h->data + sizeof(OPENAI_BEARER) - 1;
    }
    compat_error_message(body, len, secrets, OPENAI_SECRETS, out, cap);
}

static void openai_http_failed(struct call *c, long status)
{
    char up[OPENAI_MSG_MAX], msg[2 * OPENAI_MSG_MAX];
    const char *name = c->w->cfg->targets[c->target].name;

    openai_upstream_message(c, up, sizeof(up));
    if (call_status_client_fault((int)status)) {
        /* The client's request is at fault: pass it on as it is. */
        call_attempt_failed(c, (int)status, "upstream_rejected",
                            up[0] ? up : "upstream rejected the request",
                            false, false);
        return;
    }
    if (status == 401 || status == 403) {
        if (call_provider(c)->auth == CFG_AUTH_OAUTH &&
            c->auth_retries < WORKER_AUTH_RETRIES && auth_rejected(c)) {
            /* New tokens, and once more on this target. */
            c->auth_retries++;
            call_attempt_again(c, (int)status);
            return;
        }
        /* Another target may hold good credentials. */
        snprintf(msg, sizeof(msg), "%s rejected the gateway's credentials "
                 "(HTTP %ld): %.200s", name, status, up);
        call_attempt_failed(c, 502, "upstream_auth_failed", msg, true, true);
        return;
    }
    snprintf(msg, sizeof(msg), "%s answered HTTP %ld: %.200s", name, status,
             up);
    call_attempt_failed(c, 502, "upstream_error", msg,
                        call_status_retryable((int)status), true);
}

static void openai_plain_done(struct call *c)
{
    size_t len = evbuffer_get_length(c->resp);
    const char *body = (const char *)evbuffer_pullup(c->resp, -1);
    struct compat_usage u = { 0, 0 };
    const char *why;

    why = c->json_type ? compat_check_answer(body, len, &u)
                       : "upstream answered with a non-JSON content type";
    if (why != NULL) {
        call_attempt_failed(c, 502, "bad_upstream_response", why, true, true);
        return;
    }
    c->prompt_tokens = u.prompt_tokens;
    c->completion_tokens = u.completion_tokens;
    if (c->door_state != NULL) {
        if (wdoor_anthropic_plain(c, body, len) < 0) {
            call_attempt_failed(c, 502, "bad_upstream_response", "upstream "
                                "answer is not a chat completion", true,
                                true);
        }
        return;
    }
    call_answered(c, body, len);
}

static void openai_stream_done(struct call *c)
{
    if (c->door_state != NULL && !c->sse_done && c->sse_finished &&
        !sse_pending(&c->sse)) {
        if (wdoor_anthropic_end(c) == 1) {
            call_succeeded(c);
            return;
        }
    } else if (c->sse_done ||
               (c->sse_finished && !sse_pending(&c->sse))) {
        if (!c->sse_done)
            call_send_chunk(c, sse_done_event, sizeof(sse_done_event) - 1);
        call_succeeded(c);
        return;
    }
    call_attempt_failed(c, 502, "incomplete_stream", "upstream stream ended "
                        "without [DONE] or a finish_reason", true, true);
}

static void openai_transfer_done(struct call *c, CURLcode result)
{
    long status;

    if (call_transfer_result(c, result, &status) < 0)
        return;
    if (status != 200) {
        openai_http_failed(c, status);
        return;
    }
    if (call_provider(c)->auth == CFG_AUTH_OAUTH)
        auth_accepted(c);
    if (c->stream)
        openai_stream_done(c);
    else
        openai_plain_done(c);
}

const struct provider_ops provider_openai_ops = {
    .type = "openai",
    .init = openai_init,
    .free = openai_free,
    .start = openai_start,
};
