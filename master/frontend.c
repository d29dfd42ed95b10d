/* frontend.c - the OpenAI-compatible API over the master's HTTP server
 * (http.c): routing, validation, client keys, queueing jobs into the
 * shared segment, deadlines, client disconnects, and the answers that
 * never reach a worker (errors, /v1/models, /health, /metrics). */
#include "master.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "apierror.h"
#include "frame.h"
#include "request.h"
#include "trace.h"
#include "util.h"

#define FRONTEND_BEARER        "Bearer "
#define FRONTEND_SHA256_PREFIX "sha256:"
#define FRONTEND_SSE_ERR_MAX   (APIERR_BODY_MAX + 32)
#define FRONTEND_INT_MAX       32      /* bytes of an integer header */
#define FRONTEND_MAX_TIMEOUT_MS 86400000
#define FRONTEND_HIST_FOLD     HIST_SUB_COUNT  /* buckets per le label */


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

void frontend_send_error(struct http_req *req, int status, const char *code,
                         const char *message)
{
    char body[APIERR_BODY_MAX];
    size_t n = apierr_format(body, sizeof(body), status, code, message);
    struct http_hdr retry = { "Retry-After", MASTER_RETRY_AFTER };
    bool busy = status == 429 || status == 503;

    http_send(req, status, "application/json", busy ? &retry : NULL,
              busy ? 1 : 0, body, n);
}

/* Refuses a request that is not a chat completion; its one log line. */
static void frontend_reject(struct master *m, struct http_req *req,
                            int status, const char *code,
                            const char *message)
{
    log_msg(&m->log, status >= 500 ? LOG_WARN : LOG_INFO, req->id,
            "%.*s %s status=%d error=%s", (int)req->head->method_len,
            req->head->method_str, req->path, status, message);
    frontend_send_error(req, status, code, message);
}

/* A chat request's one line (README, "Logging"): what happened to it,
 * and at debug level each stage with its time from receipt. t is NULL
 * for a request answered before it was queued. */
static void frontend_log_request(struct master *m, enum log_level level,
                                 const char *rid, const struct trace_req *r,
                                 const struct trace *t)
{
    char line[TRACE_LINE_MAX];
    struct trace local;

    if (!log_enabled(&m->log, level))
        return;
    if (t != NULL) {
        /* Workers record target slots (their configuration may be older
         * than ours); name them through our map. A target removed since
         * shows as "-". */
        local = *t;
        for (int i = 0; i < TRACE_MAX_ATTEMPTS; i++)
            local.attempt[i].target =
                slots_target_index(&m->slots, local.attempt[i].target);
        t = &local;
    }
    trace_format(line, sizeof(line), r, t, m->cfg,
                 log_enabled(&m->log, LOG_DEBUG));
    log_msg(&m->log, level, rid, "%s", line);
}

/* Refuses a chat request before it is queued (model: NULL while not
 * known); its one log line. */
static void frontend_refuse(struct master *m, struct http_req *req,
                            const char *rid, int64_t received_us,
                            const char *model, int status, const char *code,
                            const char *message)
{
    struct trace_req r = {
        .model = model, .error = code, .status = status,
        .received_us = received_us,
    };

    frontend_send_error(req, status, code, message);
    r.first_byte_us = r.end_us = util_now_us();
    frontend_log_request(m, status >= 500 ? LOG_WARN : LOG_INFO, rid, &r,
                         NULL);
}

/* ---- the request's life ---- */

void frontend_first_byte(struct mreq *mr)
{
    if (mr->first_byte_us == 0)
        mr->first_byte_us = util_now_us();
}

void frontend_release(struct mreq *mr)
{
    struct master *m = mr->m;
    struct shm_job *sj = &m->shm.jobs[mr->job];
    struct trace_req r = {
        .model = mr->model, .target = mr->target, .error = mr->error,
        .status = mr->status, .client_gone = mr->client_gone,
        .received_us = mr->received_us, .queued_us = mr->queued_us,
        .first_byte_us = mr->first_byte_us, .gone_us = mr->gone_us,
        .end_us = util_now_us(),
    };

    frontend_log_request(m, LOG_INFO, sj->request_id, &r, &sj->trace);
    if (mr->target[0] != '\0') {
        /* The slot of the attempt that answered (one provider/model may
         * serve several virtual models, each its own slot); else by name.
         * A target a reload removed meanwhile counts in the total only. */
        const struct trace *tr = &sj->trace;
        /* The span the log line's ms= shows. */
        uint64_t us = r.end_us > mr->received_us ?
                      (uint64_t)(r.end_us - mr->received_us) : 0;
        int32_t slot = -1;

        if (tr->attempts > 0)
            slot = tr->attempt[tr->attempts <= TRACE_MAX_ATTEMPTS ?
                               tr->attempts - 1 :
                               TRACE_MAX_ATTEMPTS - 1].target;
        if (slot < 0 || slot >= SHM_TARGET_SLOTS ||
            slots_target_index(&m->slots, slot) == SLOTS_NONE ||
            strcmp(m->shm.targets[slot].name, mr->target) != 0) {
            int t = cfg_find_target(m->cfg, mr->target);

            slot = t >= 0 ? m->slots.target_slot[t] : -1;
        }
        if (slot >= 0)
            hist_record_us(&m->latency[slot], us);
        hist_record_us(&m->latency_all, us);
    }
    /* A stream cut by an error event got a 200 but failed. */
    if (mr->status >= 200 && mr->status < 300 && mr->error == NULL)
        atomic_fetch_add(&m->shm.hdr->counters.succeeded, 1);
    else
        atomic_fetch_add(&m->shm.hdr->counters.failed, 1);
    if (mr->timer != NULL)
        evtimer_del(mr->timer);
    if (mr->body != NULL) {
        evbuffer_free(mr->body);
        mr->body = NULL;
    }
    if (mr->req != NULL)
        mr->req->user = NULL;
    mr->req = NULL;
    shm_lock(&m->shm);
    shm_job_free(&m->shm, mr->job);
    shm_unlock(&m->shm);
    mr->active = false;
    m->active_reqs--;
    /* A slot freed: if work waits, make sure a worker that can take it
     * looks (a retiring worker that freed it will not). */
    if (pq_size(&m->shm.pq) > 0)
        supervisor_wake(m);
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
    if (queued) {
        /* Out of the heap under this same lock, so no worker can pop it
         * between this check and its release below. */
        pq_remove(&m->shm.pq, mr->job);
    } else {
        atomic_store(&sj->cancel, 1);
        if (sj->state == SHM_JOB_RUNNING)
            owner = sj->owner;
    }
    shm_unlock(&m->shm);
    if (queued) {
        /* No worker has seen it: it simply leaves the queue. */
        if (mr->status == 0)
            mr->status = APIERR_CLIENT_GONE;
        frontend_release(mr);
    } else if (owner >= 0) {
        supervisor_send(m, owner, FRAME_CANCEL, mr->job, mr->gen);
    }
    /* A DONE job's END frame is on its way and releases it. */
}

/* The client's connection went away before its answer was complete. */
static void frontend_lost_cb(struct http_req *req, void *arg)
{
    struct mreq *mr = req->user;

    (void)arg;
    if (mr == NULL || !mr->active)
        return;
    log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
            "client went away");
    mr->req = NULL;
    mr->client_gone = true;
    mr->gone_us = util_now_us();
    /* Even with a status line from a stream's start: it did not get its
     * whole answer. */
    if (!mr->answered)
        mr->status = APIERR_CLIENT_GONE;
    frontend_cancel_job(mr);
}

/* A paused stream's client caught up: let its upstream flow again. */
static void frontend_drain_cb(struct http_req *req, void *arg)
{
    struct mreq *mr = req->user;

    (void)arg;
    if (mr == NULL || !mr->active || !mr->paused)
        return;
    mr->paused = false;
    supervisor_send(mr->m, mr->m->shm.jobs[mr->job].owner, FRAME_RESUME,
                    mr->job, mr->gen);
}

/* Takes the request off the mreq before answering it: once answered in
 * full, the connection may move on to its next request. */
static struct http_req *frontend_take(struct mreq *mr)
{
    struct http_req *req = mr->req;

    mr->req = NULL;
    if (req != NULL)
        req->user = NULL;
    return req;
}

void frontend_fail(struct mreq *mr, int status, const char *code,
                   const char *message)
{
    struct http_req *req;

    /* A client answered already or gone keeps the status it saw. */
    if (mr->req == NULL || mr->answered) {
        if (mr->status == 0)
            mr->status = status;
        return;
    }
    mr->error = code;
    mr->answered = true;
    frontend_first_byte(mr);
    req = frontend_take(mr);
    if (mr->head_sent) {
        /* Mid-stream: the client already has a 200, and that is the
         * status it is logged with (error= beside it). An error event
         * and no [DONE] tells it the answer was cut off. */
        char body[APIERR_BODY_MAX], ev[FRONTEND_SSE_ERR_MAX];
        int n;

        apierr_format(body, sizeof(body), status, code, message);
        n = snprintf(ev, sizeof(ev), "event: error\ndata: %s\n\n", body);
        http_stream_chunk(req, ev, n > 0 && (size_t)n < sizeof(ev) ?
                                   (size_t)n : sizeof(ev) - 1);
        http_stream_end(req);
        return;
    }
    mr->status = status;
    frontend_send_error(req, status, code, message);
}

static void frontend_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mreq *mr = arg;

    (void)fd;
    (void)what;
    if (!mr->active)
        return;
    log_msg(&mr->m->log, LOG_DEBUG, mr->m->shm.jobs[mr->job].request_id,
            "deadline passed");
    frontend_fail(mr, 504, "timeout", "request timed out");
    frontend_cancel_job(mr);
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

static bool frontend_authorized(struct master *m, const struct http_req *req)
{
    const struct hp_header *h;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    const char *v = NULL;
    size_t len = 0, blen = strlen(FRONTEND_BEARER);
    int match = 0;

    if (m->client_digest_count == 0)
        return true;
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
        return false;
    SHA256((const unsigned char *)v, len, digest);
    /* Compare against every key, in constant time each. */
    for (int i = 0; i < m->client_digest_count; i++)
        match |= CRYPTO_memcmp(digest, m->client_digests[i],
                               sizeof(digest)) == 0;
    return match != 0;
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
                            int vmodel, int target, long long priority,
                            long long timeout_ms, int64_t received_us,
                            int64_t *queued_us)
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
        frontend_refuse(m, req, rid, received_us, info->model, 429,
                        "queue_full", "the request queue is full; retry "
                        "later");
        return -1;
    }
    sj = &m->shm.jobs[j];
    sj->priority = (int32_t)priority;
    sj->vmodel = m->slots.vmodel_slot[vmodel];
    sj->target = target >= 0 ? m->slots.target_slot[target] : SHM_NO_TARGET;
    sj->flags = (info->stream ? SHM_JOB_STREAM : 0) |
                (target >= 0 ? SHM_JOB_DIRECT : 0);
    sj->enqueued_ms = now;
    sj->deadline_ms = now + timeout_ms;
    util_strlcpy(sj->request_id, rid, sizeof(sj->request_id));
    trace_reset(&sj->trace);
    memcpy(shm_job_body(&m->shm, sj), req->body, len);
    *queued_us = util_now_us();
    shm_lock(&m->shm);
    rc = shm_job_enqueue(&m->shm, j);
    if (rc < 0)
        shm_job_free(&m->shm, j);
    shm_unlock(&m->shm);
    if (rc < 0) {
        frontend_refuse(m, req, rid, received_us, info->model, 429,
                        "queue_full", "the request queue is full; retry "
                        "later");
        return -1;
    }
    return (int)j;
}

/* When every target the request could use has its breaker open, answers
 * 503 at once with Retry-After set to the soonest half-open time, instead
 * of queueing a job no worker could run. */
static bool frontend_all_open(struct master *m, struct http_req *req,
                              const char *rid, int64_t received_us,
                              const char *model, int vmodel, int target)
{
    const struct cfg_vmodel *vm = &m->cfg->vmodels[vmodel];
    int first = target >= 0 ? target : vm->first_target;
    int n = target >= 0 ? 1 : vm->target_count;
    int64_t now = util_now_ms(), next = INT64_MAX;
    char body[APIERR_BODY_MAX], retry[FRONTEND_INT_MAX];
    struct http_hdr retry_after;
    struct trace_req r = { 0 };
    size_t len;

    shm_lock(&m->shm);
    for (int t = first; t < first + n; t++) {
        const struct cb_state *cb = &master_target(m, t)->cb;
        int64_t at;

        if (cb_usable(cb, &m->cfg->breaker, now)) {
            shm_unlock(&m->shm);
            return false;
        }
        at = cb_next_try_ms(cb, &m->cfg->breaker, now);
        next = at < next ? at : next;
    }
    shm_unlock(&m->shm);
    /* Whole seconds, rounded up, at least one. */
    snprintf(retry, sizeof(retry), "%lld",
             (long long)((next - now + 999) / 1000 > 0 ?
                         (next - now + 999) / 1000 : 1));
    len = apierr_format(body, sizeof(body), 503, "circuit_open", "every "
                        "target's circuit breaker is open");
    retry_after = (struct http_hdr){ "Retry-After", retry };
    http_send(req, 503, "application/json", &retry_after, 1, body, len);
    r.model = model;
    r.error = "circuit_open";
    r.status = 503;
    r.received_us = received_us;
    r.first_byte_us = r.end_us = util_now_us();
    frontend_log_request(m, LOG_INFO, rid, &r, NULL);
    return true;
}

static void frontend_chat(struct master *m, struct http_req *req)
{
    /* The HTTP server gave the request its id (and puts it on the
     * answer): the client's X-Request-Id, else a new one. */
    const char *rid = req->id;
    char err[CFG_ERR_MAX];
    struct req_info info;
    long long priority, timeout_ms;
    int vmodel, target = -1, j;
    int64_t received_us = util_now_us(), queued_us = 0;
    struct mreq *mr;
    struct timeval tv;

    if (!frontend_authorized(m, req)) {
        /* Not counted as a request; logged as one, with its id. */
        frontend_refuse(m, req, rid, received_us, NULL, 401,
                        "invalid_api_key", "missing or invalid API key");
        return;
    }
    atomic_fetch_add(&m->shm.hdr->counters.total, 1);
    if (m->draining) {
        http_close_after(req);
        frontend_refuse(m, req, rid, received_us, NULL, 503,
                        "shutting_down", "the server is shutting down");
        goto rejected;
    }
    if ((long long)req->body_len > m->cfg->max_body_bytes) {
        snprintf(err, sizeof(err), "request body exceeds %lld bytes",
                 m->cfg->max_body_bytes);
        frontend_refuse(m, req, rid, received_us, NULL, 413,
                        "request_too_large", err);
        goto rejected;
    }
    if (req_validate(req->body, req->body_len, &info, err,
                     sizeof(err)) < 0) {
        frontend_refuse(m, req, rid, received_us, NULL, 400,
                        "invalid_request", err);
        goto rejected;
    }
    if (frontend_header_int(req, "x-priority", -MASTER_MAX_PRIORITY,
                            MASTER_MAX_PRIORITY, 0, &priority) < 0) {
        frontend_refuse(m, req, rid, received_us, info.model, 400,
                        "invalid_request", "X-Priority must be an integer "
                        "between -1000000 and 1000000");
        goto rejected;
    }
    if (frontend_header_int(req, "x-request-timeout-ms", 1,
                            FRONTEND_MAX_TIMEOUT_MS,
                            m->cfg->request_timeout_ms, &timeout_ms) < 0) {
        frontend_refuse(m, req, rid, received_us, info.model, 400,
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
            frontend_refuse(m, req, rid, received_us, info.model, 404,
                            "model_not_found", err);
            goto rejected;
        }
        vmodel = m->cfg->targets[target].vmodel;
    }
    if (supervisor_alive(m) == 0) {
        frontend_refuse(m, req, rid, received_us, info.model, 503,
                        "no_worker", "no worker is running");
        goto rejected;
    }
    if (frontend_all_open(m, req, rid, received_us, info.model, vmodel,
                          target))
        goto rejected;
    j = frontend_enqueue(m, req, rid, &info, vmodel, target, priority,
                         timeout_ms, received_us, &queued_us);
    if (j < 0)
        goto rejected;

    mr = &m->reqs[j];
    mr->m = m;
    mr->req = req;
    req->user = mr;
    mr->job = (uint32_t)j;
    mr->gen = m->shm.jobs[j].gen;
    mr->active = true;
    mr->stream = info.stream;
    mr->head_sent = mr->chunk_sent = mr->answered = mr->client_gone =
        mr->paused = false;
    mr->attempts = 0;
    mr->status = 0;
    mr->received_us = received_us;
    mr->queued_us = queued_us;
    mr->first_byte_us = mr->gone_us = 0;
    mr->error = NULL;
    mr->target[0] = '\0';
    util_strlcpy(mr->model, info.model, sizeof(mr->model));
    m->active_reqs++;
    if (mr->timer == NULL)
        mr->timer = evtimer_new(m->base, frontend_deadline_cb, mr);
    if (mr->timer == NULL)
        util_oom("a request's deadline timer");
    tv = util_ms_to_tv(timeout_ms);
    UTIL_MUST(evtimer_add(mr->timer, &tv), "a request's deadline timer");
    supervisor_wake(m);
    return;
rejected:
    atomic_fetch_add(&m->shm.hdr->counters.failed, 1);
}

static void frontend_models(struct master *m, struct http_req *req)
{
    http_send(req, 200, "application/json", NULL, 0, m->models_json,
              m->models_len);
}

/* 200 while a worker is up and some target's breaker is not open. */
static void frontend_health(struct master *m, struct http_req *req)
{
    char body[256];
    int alive = supervisor_alive(m), usable = 0, n;
    bool ok;

    int64_t now = util_now_ms();

    shm_lock(&m->shm);
    for (int t = 0; t < m->cfg->target_count; t++)
        if (cb_usable(&master_target(m, t)->cb, &m->cfg->breaker, now))
            usable++;
    shm_unlock(&m->shm);
    ok = alive > 0 && usable > 0 && !m->draining;
    n = snprintf(body, sizeof(body), "{\"status\":\"%s\",\"workers\":%d,"
                 "\"targets_usable\":%d,\"queue_depth\":%u,"
                 "\"connections\":%d%s}", ok ? "ok" : "unavailable", alive,
                 usable, pq_size(&m->shm.pq),
                 http_server_connections(&m->http),
                 m->draining ? ",\"draining\":true" : "");
    http_send(req, ok ? 200 : 503, "application/json", NULL, 0, body,
              (size_t)n);
}

/* Per-target series of /metrics. */
static void frontend_metrics_targets(struct master *m, struct evbuffer *buf)
{
    static const struct {
        const char *name, *help, *type;
    } series[] = {
        { "pipeline_target_requests_total", "Upstream calls by target.",
          "counter" },
        { "pipeline_target_failures_total", "Failed upstream calls.",
          "counter" },
        { "pipeline_target_active", "Calls in flight by target.", "gauge" },
    };

    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
        evbuffer_add_printf(buf, "# HELP %s %s\n# TYPE %s %s\n",
                            series[k].name, series[k].help, series[k].name,
                            series[k].type);
        for (int t = 0; t < m->cfg->target_count; t++) {
            const struct shm_target *st = master_target(m, t);
            long long v = k == 0 ? (long long)atomic_load(&st->requests) :
                          k == 1 ? (long long)atomic_load(&st->failures) :
                                   (long long)atomic_load(&st->active);

            evbuffer_add_printf(buf, "%s{target=\"%s\",virtual_model="
                                "\"%s\"} %lld\n", series[k].name,
                                m->cfg->targets[t].name,
                                m->cfg->vmodels[m->cfg->targets[t].vmodel]
                                    .name, v);
        }
    }
}

/* Request latency per target as a Prometheus histogram: the log-linear
 * buckets folded to one per power of two of microseconds (cumulative, in
 * seconds). Each le is the bound's exact decimal, the same set always. */
static void frontend_metrics_latency(struct master *m, struct evbuffer *buf)
{
    static const char name[] = "pipeline_request_duration_seconds";

    evbuffer_add_printf(buf, "# HELP %s Time from request to the end of "
                        "its answer, by target.\n# TYPE %s histogram\n",
                        name, name);
    for (int t = 0; t < m->cfg->target_count; t++) {
        const struct histogram *h = &m->latency[m->slots.target_slot[t]];
        char tn[2 * CFG_TARGET_NAME_MAX], sum[HIST_SECONDS_MAX];
        uint64_t cum = 0;

        /* One target name may serve several virtual models. */
        snprintf(tn, sizeof(tn), "%s\",virtual_model=\"%s",
                 m->cfg->targets[t].name,
                 m->cfg->vmodels[m->cfg->targets[t].vmodel].name);

        for (int i = 0; i < HIST_BUCKETS; i++) {
            char le[HIST_SECONDS_MAX];

            cum += h->counts[i];
            if ((i + 1) % FRONTEND_HIST_FOLD != 0)
                continue;
            hist_format_seconds(le, sizeof(le), hist_bucket_bound_us(i));
            evbuffer_add_printf(buf, "%s_bucket{target=\"%s\",le=\"%s\"} "
                                "%llu\n", name, tn, le,
                                (unsigned long long)cum);
        }
        hist_format_seconds(sum, sizeof(sum), h->sum_us);
        evbuffer_add_printf(buf, "%s_bucket{target=\"%s\",le=\"+Inf\"} "
                            "%llu\n%s_sum{target=\"%s\"} %s\n"
                            "%s_count{target=\"%s\"} %llu\n", name, tn,
                            (unsigned long long)h->total, name, tn, sum,
                            name, tn, (unsigned long long)h->total);
    }
    evbuffer_add_printf(buf, "# HELP pipeline_breaker_state Circuit breaker: "
                        "0 closed, 1 open, 2 half-open.\n"
                        "# TYPE pipeline_breaker_state gauge\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        evbuffer_add_printf(buf, "pipeline_breaker_state{target=\"%s\","
                            "virtual_model=\"%s\"} %u\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            atomic_load(&master_target(m, t)->state));
    evbuffer_add_printf(buf, "# HELP pipeline_breaker_transitions_total "
                        "Breaker state changes.\n"
                        "# TYPE pipeline_breaker_transitions_total counter\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        evbuffer_add_printf(buf, "pipeline_breaker_transitions_total{target="
                            "\"%s\",virtual_model=\"%s\"} %llu\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            (unsigned long long)atomic_load(
                                &master_target(m, t)->transitions));
}

static void frontend_metrics(struct master *m, struct http_req *req)
{
    struct evbuffer *buf = evbuffer_new();
    const struct shm_counters *c = &m->shm.hdr->counters;

    if (buf == NULL) {
        frontend_reject(m, req, 503, "unavailable", "out of memory");
        return;
    }
    evbuffer_add_printf(buf,
        "# HELP pipeline_requests_total Chat requests received.\n"
        "# TYPE pipeline_requests_total counter\n"
        "pipeline_requests_total %llu\n"
        "# HELP pipeline_requests_succeeded_total Requests answered 2xx "
        "in full.\n"
        "# TYPE pipeline_requests_succeeded_total counter\n"
        "pipeline_requests_succeeded_total %llu\n"
        "# HELP pipeline_requests_failed_total Requests answered "
        "otherwise, or cut by an error event.\n"
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
        "pipeline_workers %d\n"
        "# HELP pipeline_connections Client connections open.\n"
        "# TYPE pipeline_connections gauge\n"
        "pipeline_connections %d\n",
        (unsigned long long)atomic_load(&c->total),
        (unsigned long long)atomic_load(&c->succeeded),
        (unsigned long long)atomic_load(&c->failed),
        (unsigned long long)atomic_load(&c->retried),
        pq_size(&m->shm.pq), m->shm.hdr->running, supervisor_alive(m),
        http_server_connections(&m->http));
    frontend_metrics_targets(m, buf);
    frontend_metrics_latency(m, buf);
    http_send_buffer(req, 200, "text/plain; version=0.0.4", NULL, 0, buf);
    evbuffer_free(buf);
}

static void frontend_method_not_allowed(struct master *m,
                                        struct http_req *req,
                                        const char *allow)
{
    char msg[64], body[APIERR_BODY_MAX];
    struct http_hdr hdr = { "Allow", allow };
    size_t n;

    snprintf(msg, sizeof(msg), "method not allowed; use %s", allow);
    log_msg(&m->log, LOG_INFO, req->id, "%.*s %s status=405", (int)
            req->head->method_len, req->head->method_str, req->path);
    n = apierr_format(body, sizeof(body), 405, "method_not_allowed", msg);
    http_send(req, 405, "application/json", &hdr, 1, body, n);
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
            frontend_health(m, req);
        return;
    }
    if (strcmp(path, "/v1/chat/completions") == 0 && method == HP_POST) {
        /* It checks the client's key itself, so that a refusal is
         * logged as a request, with its id. */
        frontend_chat(m, req);
        return;
    }
    if ((strcmp(path, "/v1/chat/completions") == 0 ||
         strcmp(path, "/v1/models") == 0 || strcmp(path, "/metrics") == 0) &&
        !frontend_authorized(m, req)) {
        frontend_reject(m, req, 401, "invalid_api_key",
                        "missing or invalid API key");
        return;
    }
    if (strcmp(path, "/v1/chat/completions") == 0) {
        frontend_method_not_allowed(m, req, "POST");
    } else if (strcmp(path, "/v1/models") == 0) {
        if (!get)
            frontend_method_not_allowed(m, req, "GET");
        else
            frontend_models(m, req);
    } else if (strcmp(path, "/metrics") == 0) {
        if (!get)
            frontend_method_not_allowed(m, req, "GET");
        else
            frontend_metrics(m, req);
    } else {
        frontend_reject(m, req, 404, "not_found", "no such path");
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
    s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    m->models_json = strdup(s);
    m->models_len = len;
    json_object_put(root);
    return m->models_json ? 0 : -1;
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

    if (frontend_build_models(m) < 0 || frontend_load_keys(m) < 0)
        return -1;
    if (http_server_init(&m->http, m->base, cfg->listen_host,
                         cfg->listen_port, &lim, frontend_cb,
                         frontend_lost_cb, m) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "cannot listen on %s: %s",
                cfg->listen, strerror(errno));
        return -1;
    }
    m->http.log = &m->log;
    m->http.on_drain = frontend_drain_cb;
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
    if (frontend_build_models(m) < 0 || frontend_load_keys(m) < 0)
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
    if (m->reqs != NULL) {
        for (uint32_t j = 0; j < m->shm.hdr->job_count; j++) {
            if (m->reqs[j].timer != NULL)
                event_free(m->reqs[j].timer);
            if (m->reqs[j].body != NULL)
                evbuffer_free(m->reqs[j].body);
        }
    }
    if (m->http_up)
        http_server_free(&m->http);
    m->http_up = false;
    free(m->models_json);
    m->models_json = NULL;
    free(m->client_digests);
    m->client_digests = NULL;
}
