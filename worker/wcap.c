/* wcap.c - the worker's part of request capture: gathers an attempt's
 * data for a job marked SHM_JOB_CAPTURE and sends it as JSON in CAPTURE
 * frames (outq_send_capture). See wcap.h. Owns struct wcap (c->cap). */
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "capture.h"
#include "wcap.h"

/* Secret values masked in what an attempt sends: the key, the client
 * secret, the OAuth bearer, and the secret-named header values. */
#define WCAP_SECRETS     12
#define WCAP_BEARER      "Bearer "
#define WCAP_REDACTED    "[redacted]"

struct wcap {
    bool open;                     /* an attempt is being captured */
    int64_t start_ms;              /* its start, monotonic */
    struct evbuffer *headers;      /* the answer's header lines */
    struct evbuffer *answer;       /* a stream's bytes, the first max */
    size_t answer_total;           /* all of them */
};

static bool wcap_on(const struct call *c)
{
    return c->cap != NULL && c->cap->open;
}

void wcap_attempt_begin(struct call *c)
{
    struct wcap *cap = c->cap;

    if ((c->sj->flags & SHM_JOB_CAPTURE) == 0)
        return;
    if (cap == NULL) {
        cap = c->cap = calloc(1, sizeof(*cap));
        if (cap == NULL ||
            (cap->headers = evbuffer_new()) == NULL ||
            (cap->answer = evbuffer_new()) == NULL)
            util_oom("a request's capture");
    }
    evbuffer_drain(cap->headers, evbuffer_get_length(cap->headers));
    evbuffer_drain(cap->answer, evbuffer_get_length(cap->answer));
    cap->answer_total = 0;
    cap->start_ms = util_now_ms();
    cap->open = true;
}

void wcap_header(struct call *c, const char *line, size_t len)
{
    if (!wcap_on(c))
        return;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new answer (after 100 Continue): its headers only. */
        evbuffer_drain(c->cap->headers,
                       evbuffer_get_length(c->cap->headers));
        return;
    }
    UTIL_MUST(evbuffer_add(c->cap->headers, line, len), "a capture");
}

void wcap_answer(struct call *c, const char *data, size_t len)
{
    /* One byte past the cap, so that the cut knows it was cut. */
    size_t keep = (size_t)c->w->cfg->capture.max_body_bytes + 1, have;

    if (!wcap_on(c))
        return;
    have = evbuffer_get_length(c->cap->answer);
    if (have < keep && len > 0)
        UTIL_MUST(evbuffer_add(c->cap->answer, data,
                               len < keep - have ? len : keep - have),
                  "a capture");
    c->cap->answer_total += len;
}

/* Adds the value of a secret-named header line ("Name: value") of list
 * to secrets. */
static void wcap_header_secrets(const struct curl_slist *list,
                                const char **secrets, size_t *n)
{
    for (; list != NULL && *n < WCAP_SECRETS; list = list->next) {
        const char *colon = strchr(list->data, ':'), *v;

        if (colon == NULL ||
            !cap_header_secret(list->data, (size_t)(colon - list->data)))
            continue;
        v = colon + 1 + strspn(colon + 1, " \t");
        if (strncasecmp(v, WCAP_BEARER, sizeof(WCAP_BEARER) - 1) == 0)
            v += sizeof(WCAP_BEARER) - 1;
        secrets[(*n)++] = v;
    }
}

/* What must not leave the worker for c's attempt: its provider's key
 * and client secret, and the secret header values it was signed with
 * (an OAuth attempt's bearer token is in c->auth_headers). Read from
 * the call directly: this module calls no module that calls it. */
static size_t wcap_secrets(const struct call *c, const char **secrets)
{
    const struct cfg *cfg = c->w->cfg;
    const struct cfg_provider *p = c->target >= 0 ?
        &cfg->providers[cfg->targets[c->target].provider] : NULL;
    size_t n = 0;

    if (p == NULL)
        return 0;
    secrets[n++] = p->api_key;
    secrets[n++] = p->client_secret;
    wcap_header_secrets(c->auth_headers, secrets, &n);
    if (c->w->headers != NULL && c->target >= 0)
        wcap_header_secrets(c->w->headers[2 * c->w->cfg->targets[c->target]
                                          .provider + (c->stream ? 1 : 0)],
                            secrets, &n);
    return n;
}

/* The answer's headers as an object, secret ones redacted and every
 * value masked. */
static json_object *wcap_headers_json(struct evbuffer *lines,
                                      const char *const *secrets, size_t n)
{
    json_object *o = json_object_new_object();
    size_t len = evbuffer_get_length(lines);
    char *p, *end;

    if (o == NULL)
        util_oom("a capture");
    if (len == 0)
        return o;
    p = (char *)evbuffer_pullup(lines, -1);
    end = p + len;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *line_end = eol != NULL ? eol : end;
        char *colon = memchr(p, ':', (size_t)(line_end - p));
        char name[CFG_NAME_MAX];

        if (colon != NULL && (size_t)(colon - p) < sizeof(name)) {
            size_t nl = (size_t)(colon - p), vl;
            char *v = colon + 1 + strspn(colon + 1, " \t");

            memcpy(name, p, nl);
            name[nl] = '\0';
            cap_utf8_clean(name, nl);
            vl = (size_t)(line_end - v);
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (cap_header_secret(name, nl)) {
                json_object_object_add(o, name,
                                       json_object_new_string(WCAP_REDACTED));
            } else {
                cap_scrub(v, vl, secrets, n);
                cap_utf8_clean(v, vl);
                json_object_object_add(o, name,
                                       json_object_new_string_len(v,
                                                                  (int)vl));
            }
        }
        p = eol != NULL ? eol + 1 : end;
    }
    return o;
}

void wcap_attempt_end(struct call *c, const char *outcome)
{
    struct wcap *cap = c->cap;
    const char *secrets[WCAP_SECRETS];
    size_t n, max = (size_t)c->w->cfg->capture.max_body_bytes, len;
    int64_t now = util_now_ms(), base = c->sj->enqueued_ms;
    json_object *o;
    const char *text;
    int status = c->upstream_status ? c->upstream_status
                                    : (int)c->http_status;

    if (!wcap_on(c))
        return;
    cap->open = false;
    n = wcap_secrets(c, secrets);
    o = json_object_new_object();
    if (o == NULL)
        util_oom("a capture");
    json_object_object_add(o, "attempt", json_object_new_int(c->attempts));
    json_object_object_add(o, "target", json_object_new_string(
        c->target >= 0 ? c->w->cfg->targets[c->target].name : "-"));
    json_object_object_add(o, "start_ms",
                           json_object_new_int64(cap->start_ms - base));
    json_object_object_add(o, "end_ms", json_object_new_int64(now - base));
    json_object_object_add(o, "outcome", json_object_new_string(outcome));
    json_object_object_add(o, "request", cap_body_json(c->req_body,
                                                       c->req_len, max,
                                                       secrets, n));
    json_object_object_add(o, "status", json_object_new_int(status));
    json_object_object_add(o, "headers",
                           wcap_headers_json(cap->headers, secrets, n));
    if (cap->answer_total > 0) {
        json_object *a;

        len = evbuffer_get_length(cap->answer);
        a = cap_body_json((const char *)evbuffer_pullup(cap->answer, -1),
                          len, max, secrets, n);
        /* The whole stream's size, not what was kept of it. */
        json_object_object_add(a, "bytes", json_object_new_int64(
            (int64_t)cap->answer_total));
        json_object_object_add(o, "answer", a);
    } else {
        len = c->resp != NULL ? evbuffer_get_length(c->resp) : 0;
        json_object_object_add(o, "answer", cap_body_json(
            len ? (const char *)evbuffer_pullup(c->resp, -1) : "", len, max,
            secrets, n));
    }
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL)
        util_oom("a capture");
    outq_send_capture(c, text, strlen(text));
    json_object_put(o);
}

void wcap_free(struct call *c)
{
    if (c->cap == NULL)
        return;
    evbuffer_free(c->cap->headers);
    evbuffer_free(c->cap->answer);
    free(c->cap);
    c->cap = NULL;
}
