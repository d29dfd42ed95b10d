/* frontend.c - the OpenAI-compatible API over the master's HTTP server
 * (http.c): routing, client keys, validation of chat requests, queueing
 * their jobs into the shared segment and starting their mreq (mreq.c),
 * and the refusals of requests that never reach a worker (each with its
 * log line). /v1/models, /health and /metrics are endpoints.c's. */
#include "master.h"
#include "budgets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "apierror.h"
#include "budgets.h"
#include "clientbudget.h"
#include "door.h"
#include "endpoints.h"
#include "mcap.h"
#include "mreq.h"
#include "provhealth.h"
#include "reqlog.h"
#include "request.h"
#include "trace.h"
#include "util.h"

#define FRONTEND_BEARER        "Bearer "
#define FRONTEND_SHA256_PREFIX "sha256:"
#define FRONTEND_INT_MAX       32      /* bytes of an integer header */
#define FRONTEND_MAX_TIMEOUT_MS 86400000
#define FRONTEND_NO_AUTH       (-1)    /* frontend_key: no client keys */
#define FRONTEND_BAD_KEY       (-2)    /* frontend_key: refused */

/* ---- small helpers ---- */

/* A header's value copied into buf (NUL-terminated); NULL when absent
 * or longer than the buffer. */
static const char *frontend_header(const struct http_req *req,
                                   const char *name, char *buf, size_t size)
{
    const struct hp_header *h = hp_find(req->head, name);

    if (h == NULL || h->value_len >= size)
        return NULL;
    memcpy(buf, h->value, h->value_len);
    buf[h->value_len] = '\0';
    return buf;
}

/* Refuses a request that is not a chat completion; its one log line. */
static void frontend_refuse(struct master *m, struct http_req *req,
                            int status, const char *code,
                            const char *message)
{
    log_msg(&m->log, status >= 500 ? LOG_WARN : LOG_INFO, req->id,
            "%.*s %s status=%d error=%s", (int)req->head->method_len,
            req->head->method_str, req->path, status, message);
    mreq_send_error(req, status, code, message);
}

/* Refuses a chat request before it is queued (model: NULL while not
 * known); its one log line. */
static void frontend_refuse_chat(struct master *m, struct http_req *req,
                            const char *rid, int64_t received_us,
                            const char *model, int status, const char *code,
                            const char *message)
{
    struct trace_req r = {
        .model = model, .error = code, .status = status,
        .received_us = received_us,
    };

    mreq_send_error(req, status, code, message);
    r.first_byte_us = r.end_us = util_now_us();
    reqlog_write(m, status >= 500 ? LOG_WARN : LOG_INFO, rid, &r,
                         NULL);
}

/* ---- client keys ---- */

static int frontend_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Keys are kept only as SHA-256 digests; "sha256:HEX" is one already. */
static int frontend_load_keys(struct master *m)
{
    const struct cfg *cfg = m->cfg;
    size_t plen = strlen(FRONTEND_SHA256_PREFIX);

    if (cfg->client_key_count == 0)
        return 0;
    m->client_digests = calloc((size_t)cfg->client_key_count,
                               sizeof(*m->client_digests));
    if (m->client_digests == NULL)
        return -1;
    for (int i = 0; i < cfg->client_key_count; i++) {
        const char *k = cfg->client_keys[i];

        if (strncmp(k, FRONTEND_SHA256_PREFIX, plen) == 0 &&
            strlen(k + plen) == 2 * SHA256_DIGEST_LENGTH) {
            for (int b = 0; b < SHA256_DIGEST_LENGTH; b++) {
                int hi = frontend_hex(k[plen + 2 * b]);
                int lo = frontend_hex(k[plen + 2 * b + 1]);

                if (hi < 0 || lo < 0) {
                    log_msg(&m->log, LOG_ERROR, NULL, "client key %d: bad "
                            "sha256 digest", i + 1);
                    return -1;
                }
                m->client_digests[i][b] = (uint8_t)(hi << 4 | lo);
            }
        } else {
            SHA256((const unsigned char *)k, strlen(k),
                   m->client_digests[i]);
        }
        m->client_digest_count++;
    }
    return 0;
}

/* The index of the client key the request carries: FRONTEND_NO_AUTH
 * when there is no client authentication, FRONTEND_BAD_KEY when the key
 * is missing or unknown. */
static int frontend_key(struct master *m, const struct http_req *req)
{
    const struct hp_header *h;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    const char *v = NULL;
    size_t len = 0, blen = strlen(FRONTEND_BEARER);
    int match;

    if (m->client_digest_count == 0)
        return FRONTEND_NO_AUTH;
    h = hp_find(req->head, "authorization");
    if (h != NULL && h->value_len > blen &&
        strncasecmp(h->value, FRONTEND_BEARER, blen) == 0) {
        v = h->value + blen;
        len = h->value_len - blen;
    } else if ((h = hp_find(req->head, "x-api-key")) != NULL) {
        v = h->value;
        len = h->value_len;
    }
    if (v == NULL || len == 0)
        return FRONTEND_BAD_KEY;
    SHA256((const unsigned char *)v, len, digest);
    /* Compares against every key, in constant time each. */
    match = clientbudget_match((const uint8_t (*)[CLIENTBUDGET_DIGEST_LEN])
                               m->client_digests, m->client_digest_count,
                               digest);
    return match < 0 ? FRONTEND_BAD_KEY : match;
}

static bool frontend_authorized(struct master *m, const struct http_req *req)
{
    return frontend_key(m, req) != FRONTEND_BAD_KEY;
}

/* A client over its budget: 429 rate_limited at once, Retry-After the
 * seconds until its budget has a request and a token again. */
static void frontend_client_limited(struct master *m, struct http_req *req,
                                    const char *rid, int64_t received_us,
                                    const char *model, const char *client,
                                    int64_t retry_after_s)
{
    char body[APIERR_BODY_MAX], retry[FRONTEND_INT_MAX];
    struct http_hdr retry_after = { "Retry-After", retry };
    struct trace_req r = {
        .model = model, .client = client, .error = "rate_limited",
        .status = 429, .received_us = received_us,
    };
    size_t len;

    snprintf(retry, sizeof(retry), "%lld", (long long)retry_after_s);
    len = apierr_format(body, sizeof(body), 429, "rate_limited", "this "
                        "client's rate budget is spent; retry later");
    http_send(req, 429, "application/json", &retry_after, 1, body, len);
    r.first_byte_us = r.end_us = util_now_us();
    reqlog_write(m, LOG_INFO, rid, &r, NULL);
}

/* ---- endpoints ---- */

static int frontend_header_int(const struct http_req *req, const char *name,
                               long long min, long long max, long long def,
                               long long *out)
{
    char buf[FRONTEND_INT_MAX];
    const struct hp_header *h = hp_find(req->head, name);

    *out = def;
    if (h == NULL)
        return 0;
    if (frontend_header(req, name, buf, sizeof(buf)) == NULL)
        return -1;
    return util_parse_int(buf, min, max, out);
}

/* Puts a validated request into the shared queue; vmodel and target are
 * indices of m->cfg, the job gets their slots. Returns the job, or -1
 * after answering the client itself. */
static int frontend_enqueue(struct master *m, struct http_req *req,
                            const char *rid, const struct req_info *info,
                            int vmodel, int target, int32_t client,
                            long long priority, long long timeout_ms,
                            int64_t received_us, uint32_t job_flags,
                            const char *fwd_header, int64_t *queued_us)
{
    size_t len = req->body_len;
    struct shm_job *sj;
    uint32_t j;
    int64_t now = util_now_ms();
    int rc;

    shm_lock(&m->shm);
    rc = pq_size(&m->shm.pq) >= m->shm.pq.hdr->capacity ? -1 :
         shm_job_alloc(&m->shm, (uint32_t)len, &j);
    shm_unlock(&m->shm);
    if (rc < 0) {
        frontend_refuse_chat(m, req, rid, received_us, info->model, 429,
                        "queue_full", "the request queue is full; retry "
                        "later");
        return -1;
    }
    sj = &m->shm.jobs[j];
    sj->priority = (int32_t)priority;
    sj->vmodel = m->slots.vmodel_slot[vmodel];
    sj->target = target >= 0 ? m->slots.target_slot[target] : SHM_NO_TARGET;
    sj->flags = (info->stream ? SHM_JOB_STREAM : 0) |
                (target >= 0 ? SHM_JOB_DIRECT : 0) | job_flags |
                (mcap_wanted(m, req) ? SHM_JOB_CAPTURE : 0);
    sj->client = client;
    sj->enqueued_ms = now;
    sj->deadline_ms = now + timeout_ms;
    util_strlcpy(sj->request_id, rid, sizeof(sj->request_id));
    util_strlcpy(sj->fwd_header, fwd_header != NULL ? fwd_header : "",
                 sizeof(sj->fwd_header));
    trace_reset(&sj->trace);
    memcpy(shm_job_body(&m->shm, sj), req->body, len);
    *queued_us = util_now_us();
    shm_lock(&m->shm);
    rc = shm_job_enqueue(&m->shm, j);
    if (rc < 0)
        shm_job_free(&m->shm, j);
    shm_unlock(&m->shm);
    if (rc < 0) {
        frontend_refuse_chat(m, req, rid, received_us, info->model, 429,
                        "queue_full", "the request queue is full; retry "
                        "later");
        return -1;
    }
    return (int)j;
}

/* When every target the request could use has its breaker open or its
 * provider unhealthy, answers 503 at once with Retry-After set to the
 * soonest half-open time or next probe, instead of queueing a job no
 * worker could run. */
static bool frontend_all_open(struct master *m, struct http_req *req,
                              const char *rid, int64_t received_us,
                              const char *model, int vmodel, int target)
{
    const struct cfg_vmodel *vm = &m->cfg->vmodels[vmodel];
    int first = target >= 0 ? target : vm->first_target;
    int n = target >= 0 ? 1 : vm->target_count;
    int64_t now = util_now_ms(), next = INT64_MAX;
    char retry[FRONTEND_INT_MAX];
    struct http_hdr retry_after;
    struct trace_req r = { 0 };

    bool any_unhealthy = false;

    shm_lock(&m->shm);
    for (int t = first; t < first + n; t++) {
        const struct cb_state *cb = &master_target(m, t)->cb;
        int32_t slot = m->slots.target_slot[t];
        int64_t at;

        if (!provhealth_target_usable(&m->shm, slot)) {
            /* Skipped like an open breaker until a probe is due. */
            any_unhealthy = true;
            at = health_due_ms(provhealth_of_target(&m->shm, slot));
        } else if (cb_usable(cb, &m->cfg->breaker, now)) {
            shm_unlock(&m->shm);
            return false;
        } else {
            at = cb_next_try_ms(cb, &m->cfg->breaker, now);
        }
        next = at < next ? at : next;
    }
    shm_unlock(&m->shm);
    /* Whole seconds, rounded up, at least one. */
    snprintf(retry, sizeof(retry), "%lld",
             (long long)((next - now + 999) / 1000 > 0 ?
                         (next - now + 999) / 1000 : 1));
    retry_after = (struct http_hdr){ "Retry-After", retry };
    http_send_error(req, 503, "circuit_open", any_unhealthy ?
                    "every target's circuit breaker is open or its provider "
                    "unhealthy" : "every target's circuit breaker is open",
                    &retry_after, 1);
    r.model = model;
    r.error = "circuit_open";
    r.status = 503;
    r.received_us = received_us;
    r.first_byte_us = r.end_us = util_now_us();
    reqlog_write(m, LOG_INFO, rid, &r, NULL);
    return true;
}

/* A chat-like request of any door (door.h, door_core.submit): the
 * door's validate checks its body, job_flags mark its job. */
static void frontend_submit(struct master *m, struct http_req *req,
                            door_validate_fn validate, uint32_t job_flags,
                            const char *fwd_header)
{
    /* The HTTP server gave the request its id (and puts it on the
     * answer): the client's X-Request-Id, else a new one. */
    const char *rid = req->id;
    char err[CFG_ERR_MAX];
    struct req_info info;
    long long priority, timeout_ms;
    int vmodel, target = -1, j, key = frontend_key(m, req);
    int64_t received_us = util_now_us(), queued_us = 0, retry_after_s = 0;
    int32_t client;
    const char *client_name = budgets_client(m, key, &client);

    if (key == FRONTEND_BAD_KEY) {
        /* Not counted as a request; logged as one, with its id. */
        frontend_refuse_chat(m, req, rid, received_us, NULL, 401,
                        "invalid_api_key", "missing or invalid API key");
        return;
    }
    atomic_fetch_add(&m->shm.hdr->counters.total, 1);
    if (m->draining) {
        http_close_after(req);
        frontend_refuse_chat(m, req, rid, received_us, NULL, 503,
                        "shutting_down", "the server is shutting down");
        goto rejected;
    }
    if ((long long)req->body_len > m->cfg->max_body_bytes) {
        snprintf(err, sizeof(err), "request body exceeds %lld bytes",
                 m->cfg->max_body_bytes);
        frontend_refuse_chat(m, req, rid, received_us, NULL, 413,
                        "request_too_large", err);
        goto rejected;
    }
    if (validate(req->body, req->body_len, &info, err, sizeof(err)) < 0) {
        frontend_refuse_chat(m, req, rid, received_us, NULL, 400,
                        "invalid_request", err);
        goto rejected;
    }
    if (frontend_header_int(req, "x-priority", -MASTER_MAX_PRIORITY,
                            MASTER_MAX_PRIORITY, 0, &priority) < 0) {
        frontend_refuse_chat(m, req, rid, received_us, info.model, 400,
                        "invalid_request", "X-Priority must be an integer "
                        "between -1000000 and 1000000");
        goto rejected;
    }
    if (frontend_header_int(req, "x-request-timeout-ms", 1,
                            FRONTEND_MAX_TIMEOUT_MS,
                            m->cfg->request_timeout_ms, &timeout_ms) < 0) {
        frontend_refuse_chat(m, req, rid, received_us, info.model, 400,
                        "invalid_request", "X-Request-Timeout-Ms must be "
                        "an integer between 1 and 86400000");
        goto rejected;
    }
    vmodel = cfg_find_vmodel(m->cfg, info.model);
    if (vmodel < 0) {
        target = cfg_find_target(m->cfg, info.model);
        if (target < 0) {
            snprintf(err, sizeof(err), "the model '%s' does not exist",
                     info.model);
            frontend_refuse_chat(m, req, rid, received_us, info.model, 404,
                            "model_not_found", err);
            goto rejected;
        }
        vmodel = m->cfg->targets[target].vmodel;
    }
    if (supervisor_alive(m) == 0) {
        frontend_refuse_chat(m, req, rid, received_us, info.model, 503,
                        "no_worker", "no worker is running");
        goto rejected;
    }
    if (frontend_all_open(m, req, rid, received_us, info.model, vmodel,
                          target))
        goto rejected;
    if (!budgets_admit(m, client, &retry_after_s)) {
        frontend_client_limited(m, req, rid, received_us, info.model,
                                client_name, retry_after_s);
        goto rejected;
    }
    j = frontend_enqueue(m, req, rid, &info, vmodel, target, client,
                         priority, timeout_ms, received_us, job_flags,
                         fwd_header, &queued_us);
    if (j < 0)
        goto rejected;

    mreq_start(m, req, (uint32_t)j, info.stream, info.model, timeout_ms,
               received_us, queued_us);
    return;
rejected:
    atomic_fetch_add(&m->shm.hdr->counters.failed, 1);
}

static void frontend_method_not_allowed(struct master *m,
                                        struct http_req *req,
                                        const char *allow)
{
    char msg[64];
    struct http_hdr hdr = { "Allow", allow };

    snprintf(msg, sizeof(msg), "method not allowed; use %s", allow);
    log_msg(&m->log, LOG_INFO, req->id, "%.*s %s status=405", (int)
            req->head->method_len, req->head->method_str, req->path);
    http_send_error(req, 405, "method_not_allowed", msg, &hdr, 1);
}

static const struct door_core frontend_core = {
    .authorized = frontend_authorized,
    .submit = frontend_submit,
    .refuse = frontend_refuse,
    .method_not_allowed = frontend_method_not_allowed,
};

/* The doors besides OpenAI's (served below): one line per door. */
static const struct door *const frontend_doors[] = {
    &door_anthropic,
};

#define FRONTEND_DOOR_COUNT (sizeof(frontend_doors) / \
                             sizeof(frontend_doors[0]))

/* Serves the request when a door has its path; false when none has. */
static bool frontend_door(struct master *m, struct http_req *req)
{
    for (size_t d = 0; d < FRONTEND_DOOR_COUNT; d++)
        for (const struct door_route *r = frontend_doors[d]->routes;
             r->path != NULL; r++)
            if (strcmp(req->path, r->path) == 0) {
                r->serve(m, req, &frontend_core);
                return true;
            }
    return false;
}

/* The HTTP server knows a request's path (http.h, on_head): a door
 * whose prefix it is under dresses the request in its shape. */
static void frontend_dress(struct http_req *req, const char *path,
                           size_t len, void *arg)
{
    (void)arg;
    for (size_t d = 0; d < FRONTEND_DOOR_COUNT; d++) {
        const struct door *door = frontend_doors[d];
        size_t n = door->prefix != NULL ? strlen(door->prefix) : 0;

        if (door->dress != NULL && n > 0 && len >= n &&
            memcmp(path, door->prefix, n) == 0 &&
            (len == n || path[n] == '/')) {
            door->dress(req);
            return;
        }
    }
}

static void frontend_cb(struct http_req *req, void *arg)
{
    struct master *m = arg;
    const char *path = req->path;
    enum hp_method method = req->head->method;
    bool get = method == HP_GET || method == HP_HEAD;

    if (strcmp(path, "/health") == 0) {
        if (!get)
            frontend_method_not_allowed(m, req, "GET");
        else
            endpoints_health(m, req);
        return;
    }
    if (strcmp(path, "/v1/chat/completions") == 0 && method == HP_POST) {
        /* It checks the client's key itself, so that a refusal is
         * logged as a request, with its id. */
        frontend_submit(m, req, req_validate, 0, NULL);
        return;
    }
    if (frontend_door(m, req))
        return;
    if ((strcmp(path, "/v1/chat/completions") == 0 ||
         strcmp(path, "/v1/models") == 0 || strcmp(path, "/metrics") == 0) &&
        !frontend_authorized(m, req)) {
        frontend_refuse(m, req, 401, "invalid_api_key",
                        "missing or invalid API key");
        return;
    }
    if (strcmp(path, "/v1/chat/completions") == 0) {
        frontend_method_not_allowed(m, req, "POST");
    } else if (strcmp(path, "/v1/models") == 0) {
        if (!get)
            frontend_method_not_allowed(m, req, "GET");
        else
            endpoints_models(m, req);
    } else if (strcmp(path, "/metrics") == 0) {
        if (!get)
            frontend_method_not_allowed(m, req, "GET");
        else
            endpoints_metrics(m, req);
    } else {
        frontend_refuse(m, req, 404, "not_found", "no such path");
    }
}

static struct http_limits frontend_limits(const struct cfg *cfg)
{
    struct http_limits lim = {
        .head = { (size_t)cfg->limits.max_request_line,
                  (size_t)cfg->limits.max_header_bytes,
                  (size_t)cfg->limits.max_headers },
        .max_body = (uint64_t)cfg->max_body_bytes,
        .read_limit = (uint64_t)cfg->max_body_bytes,
        .header_timeout_ms = cfg->limits.header_timeout_ms,
        .body_timeout_ms = cfg->limits.body_timeout_ms,
        .idle_timeout_ms = cfg->limits.keepalive_timeout_ms,
        .max_connections = cfg->limits.max_connections,
        .max_requests = cfg->limits.keepalive_requests,
    };

    return lim;
}

int frontend_init(struct master *m)
{
    const struct cfg *cfg = m->cfg;
    struct http_limits lim = frontend_limits(cfg);

    if (endpoints_build_models(m) < 0 || frontend_load_keys(m) < 0 ||
        budgets_configure(m) < 0)
        return -1;
    if (http_server_init(&m->http, m->base, cfg->listen_host,
                         cfg->listen_port, &lim, frontend_cb,
                         mreq_client_lost, m) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "cannot listen on %s: %s",
                cfg->listen, strerror(errno));
        return -1;
    }
    m->http.log = &m->log;
    m->http.on_drain = mreq_client_drained;
    m->http.on_head = frontend_dress;
    m->http_up = true;
    return 0;
}

int frontend_reconfigure(struct master *m)
{
    struct http_limits lim = frontend_limits(m->cfg);

    free(m->models_json);
    m->models_json = NULL;
    free(m->client_digests);
    m->client_digests = NULL;
    m->client_digest_count = 0;
    if (endpoints_build_models(m) < 0 || frontend_load_keys(m) < 0 ||
        budgets_configure(m) < 0)
        return -1;
    if (m->http_up)
        http_server_set_limits(&m->http, &lim);
    return 0;
}

void frontend_stop_accepting(struct master *m)
{
    if (m->http_up)
        http_server_stop_accepting(&m->http);
}

void frontend_free(struct master *m)
{
    if (m->http_up)
        http_server_free(&m->http);
    m->http_up = false;
    free(m->models_json);
    m->models_json = NULL;
    free(m->client_digests);
    m->client_digests = NULL;
}
