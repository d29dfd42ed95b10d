/* frontend.c - the OpenAI-compatible HTTP front end on libevent's HTTP
 * server: routing, validation, client keys, queueing jobs into the
 * shared segment, deadlines, client disconnects, and the answers that
 * never reach a worker (errors, /v1/models, /health, /metrics). */
#include "master.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "apierror.h"
#include "frame.h"
#include "request.h"
#include "util.h"

#define FRONTEND_BEARER        "Bearer "
#define FRONTEND_SHA256_PREFIX "sha256:"
#define FRONTEND_TIMEOUT_S     60      /* idle keep-alive connections */
#define FRONTEND_SSE_ERR_MAX   (APIERR_BODY_MAX + 32)
#define FRONTEND_BODY_SLACK    65536
#define FRONTEND_WATCH_MS      50      /* then notice clients hanging up */

/* ---- small helpers ---- */

static void frontend_common_headers(struct evhttp_request *req,
                                    const char *req_id)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    if (req_id != NULL)
        evhttp_add_header(h, "X-Request-Id", req_id);
}

const char *frontend_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return status < 500 ? "Client Error" : "Server Error";
    }
}

static void frontend_send_json(struct evhttp_request *req, int status,
                               const char *json, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", "application/json");
    if (buf != NULL)
        evbuffer_add(buf, json, len);
    evhttp_send_reply(req, status, frontend_reason(status), buf);
    if (buf != NULL)
        evbuffer_free(buf);
}

void frontend_send_error(struct evhttp_request *req, const char *req_id,
                         int status, const char *code, const char *message)
{
    char body[APIERR_BODY_MAX];
    size_t n = apierr_format(body, sizeof(body), status, code, message);

    frontend_common_headers(req, req_id);
    if (status == 429 || status == 503) {
        char v[16];

        snprintf(v, sizeof(v), "%d", MASTER_RETRY_AFTER_S);
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Retry-After", v);
    }
    frontend_send_json(req, status, body, n);
}

/* ---- the request's life ---- */

static void frontend_detach(struct mreq *mr)
{
    if (mr->conn != NULL)
        evhttp_connection_set_closecb(mr->conn, NULL, NULL);
    mr->conn = NULL;
    mr->req = NULL;
}

void frontend_release(struct mreq *mr)
{
    struct master *m = mr->m;
    struct shm_job *sj = &m->shm.jobs[mr->job];

    log_msg(&m->log, LOG_INFO, sj->request_id, "model=%s target=%s "
            "status=%d attempts=%u ms=%lld%s", mr->model,
            mr->target[0] ? mr->target : "-", mr->status, mr->attempts,
            (long long)(util_now_ms() - mr->start_ms),
            mr->req == NULL && !mr->answered ? " client_gone" : "");
    if (mr->target[0] != '\0') {
        int t = cfg_find_target(m->cfg, mr->target);
        uint64_t ms = (uint64_t)(util_now_ms() - mr->start_ms);

        if (t >= 0)
            hist_record(&m->latency[t], ms);
        hist_record(&m->latency_all, ms);
    }
    if (mr->status >= 200 && mr->status < 300)
        atomic_fetch_add(&m->shm.hdr->counters.succeeded, 1);
    else
        atomic_fetch_add(&m->shm.hdr->counters.failed, 1);
    if (mr->timer != NULL)
        evtimer_del(mr->timer);
    if (mr->body != NULL) {
        evbuffer_free(mr->body);
        mr->body = NULL;
    }
    frontend_detach(mr);
    shm_lock(&m->shm);
    shm_job_free(&m->shm, mr->job);
    shm_unlock(&m->shm);
    mr->active = false;
    m->active_reqs--;
    if (m->draining && m->active_reqs == 0)
        master_begin_stop(m);
}

void frontend_cancel_job(struct mreq *mr)
{
    struct master *m = mr->m;
    struct shm_job *sj = &m->shm.jobs[mr->job];
    int owner = -1;
    bool queued;

    shm_lock(&m->shm);
    queued = sj->state == SHM_JOB_QUEUED;
    if (!queued) {
        atomic_store(&sj->cancel, 1);
        if (sj->state == SHM_JOB_RUNNING)
            owner = sj->owner;
    }
    shm_unlock(&m->shm);
    if (queued) {
        /* No worker has seen it: it simply leaves the queue. */
        if (mr->status == 0)
            mr->status = 499;
        frontend_release(mr);
    } else if (owner >= 0) {
        supervisor_send(m, owner, FRAME_CANCEL, mr->job, mr->gen);
    }
    /* A DONE job's END frame is on its way and releases it. */
}

static void frontend_close_cb(struct evhttp_connection *conn, void *arg)
{
    struct mreq *mr = arg;

    (void)conn;
    if (!mr->active || mr->req == NULL)
        return;
    log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
            "client went away");
    /* When the client hung up, libevent detaches the unanswered request
     * and leaves it to us; when the server is freeing the connection,
     * the request is still attached and libevent frees it itself. */
    if (evhttp_request_get_connection(mr->req) == NULL)
        evhttp_request_free(mr->req);
    mr->req = NULL;
    mr->conn = NULL;
    if (!mr->answered && mr->status == 0)
        mr->status = 499;
    frontend_cancel_job(mr);
}

void frontend_fail(struct mreq *mr, int status, const char *code,
                   const char *message)
{
    struct evhttp_request *req = mr->req;
    const char *rid = mr->m->shm.jobs[mr->job].request_id;

    mr->status = status;
    if (req == NULL || mr->answered)
        return;
    mr->answered = true;
    frontend_detach(mr);
    if (mr->head_sent) {
        /* Mid-stream: the client already has a 200. An error event and
         * no [DONE] tells it the answer was cut off. */
        char body[APIERR_BODY_MAX], ev[FRONTEND_SSE_ERR_MAX];
        struct evbuffer *buf = evbuffer_new();
        size_t n;

        apierr_format(body, sizeof(body), status, code, message);
        n = (size_t)snprintf(ev, sizeof(ev), "event: error\ndata: %s\n\n",
                             body);
        if (buf != NULL) {
            evbuffer_add(buf, ev, n < sizeof(ev) ? n : sizeof(ev) - 1);
            evhttp_send_reply_chunk(req, buf);
            evbuffer_free(buf);
        }
        evhttp_send_reply_end(req);
        return;
    }
    frontend_send_error(req, rid, status, code, message);
}

static void frontend_watch_close(struct evhttp_connection *conn);

static void frontend_arm(struct mreq *mr, int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000),
                          (suseconds_t)((ms % 1000) * 1000) };

    if (mr->timer != NULL)
        evtimer_add(mr->timer, &tv);
}

/* The request's timer: first, once it has waited FRONTEND_WATCH_MS,
 * start watching for a hang-up (most answers come sooner, and watching
 * costs system calls); then the deadline. */
static void frontend_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mreq *mr = arg;
    int64_t left = mr->deadline_ms - util_now_ms();

    (void)fd;
    (void)what;
    if (!mr->active)
        return;
    if (left > 0) {
        if (!mr->watching && mr->req != NULL && !mr->answered) {
            mr->watching = true;
            frontend_watch_close(mr->conn);
        }
        frontend_arm(mr, left);
        return;
    }
    log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
            "deadline passed");
    frontend_fail(mr, 504, "timeout", "request timed out");
    frontend_cancel_job(mr);
}

/* evhttp stops reading a connection once its request is complete, so a
 * client that hangs up while its job runs would go unnoticed until we
 * write. Reading again with no read callback leaves pipelined bytes in
 * the buffer but lets EOF reach evhttp, which runs the close callback. */
static void frontend_watch_close(struct evhttp_connection *conn)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    bufferevent_event_cb eventcb = NULL;
    bufferevent_data_cb writecb = NULL;
    void *cbarg = NULL;

    bufferevent_getcb(bev, NULL, &writecb, &eventcb, &cbarg);
    bufferevent_setcb(bev, NULL, writecb, eventcb, cbarg);
    bufferevent_enable(bev, EV_READ);
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

static bool frontend_authorized(struct master *m, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *v = evhttp_find_header(h, "Authorization");
    uint8_t digest[SHA256_DIGEST_LENGTH];
    int match = 0;

    if (m->client_digest_count == 0)
        return true;
    if (v != NULL && strncasecmp(v, FRONTEND_BEARER,
                                 strlen(FRONTEND_BEARER)) == 0)
        v += strlen(FRONTEND_BEARER);
    else
        v = evhttp_find_header(h, "x-api-key");
    if (v == NULL || *v == '\0')
        return false;
    SHA256((const unsigned char *)v, strlen(v), digest);
    /* Compare against every key, in constant time each. */
    for (int i = 0; i < m->client_digest_count; i++)
        match |= CRYPTO_memcmp(digest, m->client_digests[i],
                               sizeof(digest)) == 0;
    return match != 0;
}

/* ---- endpoints ---- */

static int frontend_header_int(struct evhttp_request *req, const char *name,
                               long long min, long long max, long long def,
                               long long *out)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       name);

    *out = def;
    if (v == NULL)
        return 0;
    return util_parse_int(v, min, max, out);
}

/* Puts a validated request into the shared queue. Returns the job, or
 * -1 after answering the client itself. */
static int frontend_enqueue(struct master *m, struct evhttp_request *req,
                            const char *rid, const struct req_info *info,
                            int vmodel, int target, long long priority,
                            long long timeout_ms)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    struct shm_job *sj;
    uint32_t j;
    int64_t now = util_now_ms();
    int rc;

    shm_lock(&m->shm);
    rc = pq_size(&m->shm.pq) >= m->shm.pq.hdr->capacity ? -1 :
         shm_job_alloc(&m->shm, (uint32_t)len, &j);
    shm_unlock(&m->shm);
    if (rc < 0) {
        frontend_send_error(req, rid, 429, "queue_full", "the request "
                            "queue is full; retry later");
        return -1;
    }
    sj = &m->shm.jobs[j];
    sj->priority = (int32_t)priority;
    sj->vmodel = vmodel;
    sj->target = target;
    sj->flags = (info->stream ? SHM_JOB_STREAM : 0) |
                (target >= 0 ? SHM_JOB_DIRECT : 0);
    sj->enqueued_ms = now;
    sj->deadline_ms = now + timeout_ms;
    util_strlcpy(sj->request_id, rid, sizeof(sj->request_id));
    evbuffer_copyout(in, shm_job_body(&m->shm, sj), len);
    shm_lock(&m->shm);
    rc = shm_job_enqueue(&m->shm, j);
    if (rc < 0)
        shm_job_free(&m->shm, j);
    shm_unlock(&m->shm);
    if (rc < 0) {
        frontend_send_error(req, rid, 429, "queue_full", "the request "
                            "queue is full; retry later");
        return -1;
    }
    return (int)j;
}

static void frontend_chat(struct master *m, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *rid_in = evhttp_find_header(h, "X-Request-Id");
    char rid[UTIL_REQUEST_ID_MAX], err[CFG_ERR_MAX];
    struct req_info info;
    long long priority, timeout_ms;
    int vmodel, target = -1, j;
    struct mreq *mr;

    if (rid_in != NULL && util_request_id_valid(rid_in))
        util_strlcpy(rid, rid_in, sizeof(rid));
    else
        util_request_id_make(rid, sizeof(rid), m->id_prefix,
                             ++m->id_counter);
    atomic_fetch_add(&m->shm.hdr->counters.total, 1);
    if (m->draining) {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Connection", "close");
        frontend_send_error(req, rid, 503, "shutting_down", "the server "
                            "is shutting down");
        goto rejected;
    }
    if ((long long)len > m->cfg->max_body_bytes) {
        snprintf(err, sizeof(err), "request body exceeds %lld bytes",
                 m->cfg->max_body_bytes);
        frontend_send_error(req, rid, 413, "request_too_large", err);
        goto rejected;
    }
    if (req_validate((const char *)evbuffer_pullup(in, -1), len, &info, err,
                     sizeof(err)) < 0) {
        frontend_send_error(req, rid, 400, "invalid_request", err);
        goto rejected;
    }
    if (frontend_header_int(req, "X-Priority", -MASTER_MAX_PRIORITY,
                            MASTER_MAX_PRIORITY, 0, &priority) < 0) {
        frontend_send_error(req, rid, 400, "invalid_request", "X-Priority "
                            "must be an integer between -1000000 and "
                            "1000000");
        goto rejected;
    }
    if (frontend_header_int(req, "X-Request-Timeout-Ms", 1, 86400000,
                            m->cfg->request_timeout_ms, &timeout_ms) < 0) {
        frontend_send_error(req, rid, 400, "invalid_request",
                            "X-Request-Timeout-Ms must be an integer "
                            "between 1 and 86400000");
        goto rejected;
    }
    vmodel = cfg_find_vmodel(m->cfg, info.model);
    if (vmodel < 0) {
        target = cfg_find_target(m->cfg, info.model);
        if (target < 0) {
            snprintf(err, sizeof(err), "the model '%s' does not exist",
                     info.model);
            frontend_send_error(req, rid, 404, "model_not_found", err);
            goto rejected;
        }
        vmodel = m->cfg->targets[target].vmodel;
    }
    if (supervisor_alive(m) == 0) {
        frontend_send_error(req, rid, 503, "no_worker", "no worker is "
                            "running");
        goto rejected;
    }
    j = frontend_enqueue(m, req, rid, &info, vmodel, target, priority,
                         timeout_ms);
    if (j < 0)
        goto rejected;

    mr = &m->reqs[j];
    mr->m = m;
    mr->req = req;
    mr->conn = evhttp_request_get_connection(req);
    mr->job = (uint32_t)j;
    mr->gen = m->shm.jobs[j].gen;
    mr->active = true;
    mr->stream = info.stream;
    mr->head_sent = mr->answered = false;
    mr->attempts = 0;
    mr->status = 0;
    mr->watching = false;
    mr->start_ms = util_now_ms();
    mr->deadline_ms = mr->start_ms + timeout_ms;
    mr->target[0] = '\0';
    util_strlcpy(mr->model, info.model, sizeof(mr->model));
    m->active_reqs++;
    evhttp_connection_set_closecb(mr->conn, frontend_close_cb, mr);
    if (mr->timer == NULL)
        mr->timer = evtimer_new(m->base, frontend_deadline_cb, mr);
    frontend_arm(mr, timeout_ms < FRONTEND_WATCH_MS ? timeout_ms
                                                    : FRONTEND_WATCH_MS);
    supervisor_wake(m);
    return;
rejected:
    atomic_fetch_add(&m->shm.hdr->counters.failed, 1);
}

static void frontend_models(struct master *m, struct evhttp_request *req)
{
    frontend_send_json(req, 200, m->models_json, m->models_len);
}

/* 200 while a worker is up and some target's breaker is not open. */
static void frontend_health(struct master *m, struct evhttp_request *req)
{
    char body[256];
    int alive = supervisor_alive(m), usable = 0, n;

    for (uint32_t t = 0; t < m->shm.hdr->target_count; t++)
        if (atomic_load(&m->shm.targets[t].state) != SHM_BREAKER_OPEN)
            usable++;
    n = snprintf(body, sizeof(body), "{\"status\":\"%s\",\"workers\":%d,"
                 "\"targets_usable\":%d,\"queue_depth\":%u%s}",
                 alive > 0 && usable > 0 ? "ok" : "unavailable", alive,
                 usable, pq_size(&m->shm.pq),
                 m->draining ? ",\"draining\":true" : "");
    frontend_send_json(req, alive > 0 && usable > 0 && !m->draining ? 200
                                                                    : 503,
                       body, (size_t)n);
}

static void frontend_metrics(struct master *m, struct evhttp_request *req)
{
    struct evbuffer *buf = evbuffer_new();
    const struct shm_counters *c = &m->shm.hdr->counters;

    if (buf == NULL) {
        frontend_send_error(req, NULL, 503, "unavailable", "out of memory");
        return;
    }
    evbuffer_add_printf(buf,
        "# HELP pipeline_requests_total Chat requests received.\n"
        "# TYPE pipeline_requests_total counter\n"
        "pipeline_requests_total %llu\n"
        "# HELP pipeline_requests_succeeded_total Requests answered 2xx.\n"
        "# TYPE pipeline_requests_succeeded_total counter\n"
        "pipeline_requests_succeeded_total %llu\n"
        "# HELP pipeline_requests_failed_total Requests answered otherwise.\n"
        "# TYPE pipeline_requests_failed_total counter\n"
        "pipeline_requests_failed_total %llu\n"
        "# HELP pipeline_retries_total Upstream attempts that were retried.\n"
        "# TYPE pipeline_retries_total counter\n"
        "pipeline_retries_total %llu\n"
        "# HELP pipeline_queue_depth Jobs waiting for a worker.\n"
        "# TYPE pipeline_queue_depth gauge\n"
        "pipeline_queue_depth %u\n"
        "# HELP pipeline_active_requests Requests in flight upstream.\n"
        "# TYPE pipeline_active_requests gauge\n"
        "pipeline_active_requests %u\n"
        "# HELP pipeline_workers Worker processes alive.\n"
        "# TYPE pipeline_workers gauge\n"
        "pipeline_workers %d\n",
        (unsigned long long)atomic_load(&c->total),
        (unsigned long long)atomic_load(&c->succeeded),
        (unsigned long long)atomic_load(&c->failed),
        (unsigned long long)atomic_load(&c->retried),
        pq_size(&m->shm.pq), m->shm.hdr->running, supervisor_alive(m));
    evbuffer_add_printf(buf,
        "# HELP pipeline_target_requests_total Upstream calls by target.\n"
        "# TYPE pipeline_target_requests_total counter\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        evbuffer_add_printf(buf, "pipeline_target_requests_total{target=\"%s\""
                            ",virtual_model=\"%s\"} %llu\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            (unsigned long long)atomic_load(
                                &m->shm.targets[t].requests));
    evbuffer_add_printf(buf,
        "# HELP pipeline_target_failures_total Failed upstream calls.\n"
        "# TYPE pipeline_target_failures_total counter\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        evbuffer_add_printf(buf, "pipeline_target_failures_total{target=\"%s\""
                            ",virtual_model=\"%s\"} %llu\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            (unsigned long long)atomic_load(
                                &m->shm.targets[t].failures));
    evbuffer_add_printf(buf,
        "# HELP pipeline_target_active Calls in flight by target.\n"
        "# TYPE pipeline_target_active gauge\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        evbuffer_add_printf(buf, "pipeline_target_active{target=\"%s\","
                            "virtual_model=\"%s\"} %d\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            atomic_load(&m->shm.targets[t].active));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

static void frontend_method_not_allowed(struct evhttp_request *req,
                                        const char *allow)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "method not allowed; use %s", allow);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    frontend_send_error(req, NULL, 405, "method_not_allowed", msg);
}

static void frontend_cb(struct evhttp_request *req, void *arg)
{
    struct master *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (evhttp_request_get_response_code(req) == 413) {
        /* libevent stopped reading an oversized body. */
        char err[96];

        snprintf(err, sizeof(err), "request body exceeds %lld bytes",
                 m->cfg->max_body_bytes);
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Connection", "close");
        frontend_send_error(req, NULL, 413, "request_too_large", err);
        return;
    }
    if (path == NULL || path[0] == '\0')
        path = "/";
    if (strcmp(path, "/health") == 0) {
        if (!get)
            frontend_method_not_allowed(req, "GET");
        else
            frontend_health(m, req);
        return;
    }
    if (strcmp(path, "/v1/chat/completions") == 0 ||
        strcmp(path, "/v1/models") == 0 || strcmp(path, "/metrics") == 0) {
        if (!frontend_authorized(m, req)) {
            frontend_send_error(req, NULL, 401, "invalid_api_key",
                                "missing or invalid API key");
            return;
        }
    }
    if (strcmp(path, "/v1/chat/completions") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            frontend_method_not_allowed(req, "POST");
        else
            frontend_chat(m, req);
    } else if (strcmp(path, "/v1/models") == 0) {
        if (!get)
            frontend_method_not_allowed(req, "GET");
        else
            frontend_models(m, req);
    } else if (strcmp(path, "/metrics") == 0) {
        if (!get)
            frontend_method_not_allowed(req, "GET");
        else
            frontend_metrics(m, req);
    } else {
        frontend_send_error(req, NULL, 404, "not_found", "no such path");
    }
}

/* The /v1/models answer never changes while a configuration lives. */
static int frontend_build_models(struct master *m)
{
    json_object *root = json_object_new_object();
    json_object *data = json_object_new_array();
    int64_t created = m->started_wall_ms / 1000;
    const char *s;
    size_t len;

    json_object_object_add(root, "object", json_object_new_string("list"));
    for (int v = 0; v < m->cfg->vmodel_count; v++) {
        const struct cfg_vmodel *vm = &m->cfg->vmodels[v];
        json_object *o = json_object_new_object();
        json_object *targets = json_object_new_array();

        json_object_object_add(o, "id", json_object_new_string(vm->name));
        json_object_object_add(o, "object", json_object_new_string("model"));
        json_object_object_add(o, "created", json_object_new_int64(created));
        json_object_object_add(o, "owned_by",
                               json_object_new_string("rcc-pipeline"));
        json_object_object_add(o, "strategy", json_object_new_string(
            cfg_strategy_name(vm->strategy)));
        for (int t = vm->first_target; t < vm->first_target +
                                               vm->target_count; t++)
            json_object_array_add(targets, json_object_new_string(
                m->cfg->targets[t].name));
        json_object_object_add(o, "targets", targets);
        json_object_array_add(data, o);
    }
    for (int t = 0; t < m->cfg->target_count; t++) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(
            m->cfg->targets[t].name));
        json_object_object_add(o, "object", json_object_new_string("model"));
        json_object_object_add(o, "created", json_object_new_int64(created));
        json_object_object_add(o, "owned_by", json_object_new_string(
            m->cfg->providers[m->cfg->targets[t].provider].name));
        json_object_array_add(data, o);
    }
    json_object_object_add(root, "data", data);
    s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
    m->models_json = strdup(s);
    m->models_len = len;
    json_object_put(root);
    return m->models_json ? 0 : -1;
}

int frontend_init(struct master *m)
{
    const struct cfg *cfg = m->cfg;
    int one = 1;

    if (frontend_build_models(m) < 0 || frontend_load_keys(m) < 0)
        return -1;
    m->http = evhttp_new(m->base);
    if (m->http == NULL)
        return -1;
    evhttp_set_gencb(m->http, frontend_cb, m);
    /* libevent answers a body over its own limit with an HTML page; let
     * it read up to twice ours so the usual too-large body gets our JSON
     * 413, while memory per connection stays bounded. */
    evhttp_set_max_body_size(m->http, 2 * cfg->max_body_bytes +
                             FRONTEND_BODY_SLACK);
    evhttp_set_timeout(m->http, FRONTEND_TIMEOUT_S);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
                               EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                               EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_PATCH);
    m->bound = evhttp_bind_socket_with_handle(m->http, cfg->listen_host,
                                              (ev_uint16_t)cfg->listen_port);
    if (m->bound == NULL) {
        log_msg(&m->log, LOG_ERROR, NULL, "cannot listen on %s: %s",
                cfg->listen, strerror(errno));
        return -1;
    }
    /* Accepted sockets inherit it: stream chunks leave at once. */
    setsockopt(evhttp_bound_socket_get_fd(m->bound), IPPROTO_TCP,
               TCP_NODELAY, &one, sizeof(one));
    return 0;
}

void frontend_stop_accepting(struct master *m)
{
    if (m->bound != NULL) {
        evhttp_del_accept_socket(m->http, m->bound);
        m->bound = NULL;
    }
}

void frontend_free(struct master *m)
{
    if (m->reqs != NULL) {
        for (uint32_t j = 0; j < m->shm.hdr->job_count; j++) {
            if (m->reqs[j].timer != NULL)
                event_free(m->reqs[j].timer);
            if (m->reqs[j].body != NULL)
                evbuffer_free(m->reqs[j].body);
        }
    }
    if (m->http != NULL)
        evhttp_free(m->http);
    m->http = NULL;
    free(m->models_json);
    m->models_json = NULL;
    free(m->client_digests);
    m->client_digests = NULL;
}
