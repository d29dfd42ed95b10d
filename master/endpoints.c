/* endpoints.c - the answers the master makes itself, never reaching a
 * worker: /v1/models (built once per configuration into m->models_json),
 * /health and /metrics (Prometheus text, from the segment's counters and
 * the master's histograms and token counts). Routing and client keys
 * are frontend.c's. */
#include "endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "master.h"
#include "budgets.h"
#include "cluster.h"
#include "provhealth.h"

#define ENDPOINTS_HIST_FOLD  HIST_SUB_COUNT  /* buckets per le label */
/* Appends to the /metrics answer; out of memory aborts (util_oom). */
#define ENDPOINTS_PRINTF(buf, ...) \
    do { if (evbuffer_add_printf(buf, __VA_ARGS__) < 0) \
             util_oom("the /metrics answer"); } while (0)

void endpoints_models(struct master *m, struct http_req *req)
{
    http_send(req, 200, "application/json", NULL, 0, m->models_json,
              m->models_len);
}

/* 200 while a worker is up and some target's breaker is not open and
 * its provider not unhealthy; names the targets of unhealthy providers. */
void endpoints_health(struct master *m, struct http_req *req)
{
    struct evbuffer *buf = evbuffer_new(), *names = evbuffer_new();
    int alive = supervisor_alive(m), usable = 0, unhealthy = 0;
    bool ok;

    int64_t now = util_now_ms();

    if (buf == NULL || names == NULL)
        util_oom("the /health answer");
    shm_lock(&m->shm);
    for (int t = 0; t < m->cfg->target_count; t++) {
        bool healthy = provhealth_target_usable(&m->shm,
                                                m->slots.target_slot[t]);

        if (healthy &&
            cb_usable(&master_target(m, t)->cb, &m->cfg->breaker, now))
            usable++;
        if (!healthy)
            ENDPOINTS_PRINTF(names, "%s\"%s\"", unhealthy++ ? "," : "",
                             m->cfg->targets[t].name);
    }
    shm_unlock(&m->shm);
    ok = alive > 0 && usable > 0 && !m->draining;
    ENDPOINTS_PRINTF(buf, "{\"status\":\"%s\",\"workers\":%d,"
                     "\"targets_usable\":%d,\"queue_depth\":%u,"
                     "\"connections\":%d%s,\"unhealthy\":[",
                     ok ? "ok" : "unavailable", alive, usable,
                     pq_size(&m->shm.pq), http_server_connections(&m->http),
                     m->draining ? ",\"draining\":true" : "");
    if (evbuffer_add_buffer(buf, names) < 0)
        util_oom("the /health answer");
    ENDPOINTS_PRINTF(buf, "]}");
    http_send_buffer(req, ok ? 200 : 503, "application/json", NULL, 0, buf);
    evbuffer_free(names);
    evbuffer_free(buf);
}

/* Active health: per target 1/0 (healthy or unknown / unhealthy), and
 * the probes' outcomes per provider with a health_check. */
static void endpoints_health_metrics(struct master *m, struct evbuffer *buf)
{
    static const char healthy[] = "pipeline_target_healthy";
    static const char checks[] = "pipeline_health_checks_total";

    ENDPOINTS_PRINTF(buf, "# HELP %s 1 unless the target's provider is "
                     "unhealthy (active health checks).\n# TYPE %s gauge\n",
                     healthy, healthy);
    for (int t = 0; t < m->cfg->target_count; t++)
        ENDPOINTS_PRINTF(buf, "%s{target=\"%s\",virtual_model=\"%s\"} %d\n",
                         healthy, m->cfg->targets[t].name,
                         m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                         provhealth_target_usable(&m->shm,
                             m->slots.target_slot[t]) ? 1 : 0);
    ENDPOINTS_PRINTF(buf, "# HELP %s Health probes by provider and "
                     "outcome.\n# TYPE %s counter\n", checks, checks);
    for (int p = 0; p < m->cfg->provider_count; p++) {
        const struct health_state *h = provhealth_at(&m->shm,
                                                     m->slots.health_slot[p]);

        if (m->cfg->providers[p].health.interval_ms <= 0 || h == NULL)
            continue;
        ENDPOINTS_PRINTF(buf, "%s{provider=\"%s\",result=\"ok\"} %llu\n"
                         "%s{provider=\"%s\",result=\"fail\"} %llu\n",
                         checks, m->cfg->providers[p].name,
                         (unsigned long long)atomic_load(&h->probes_ok),
                         checks, m->cfg->providers[p].name,
                         (unsigned long long)atomic_load(&h->probes_failed));
    }
}

/* Per-target series of /metrics. */
static void endpoints_targets(struct master *m, struct evbuffer *buf)
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
        ENDPOINTS_PRINTF(buf, "# HELP %s %s\n# TYPE %s %s\n",
                            series[k].name, series[k].help, series[k].name,
                            series[k].type);
        for (int t = 0; t < m->cfg->target_count; t++) {
            const struct shm_target *st = master_target(m, t);
            long long v = k == 0 ? (long long)atomic_load(&st->requests) :
                          k == 1 ? (long long)atomic_load(&st->failures) :
                                   (long long)atomic_load(&st->active);

            ENDPOINTS_PRINTF(buf, "%s{target=\"%s\",virtual_model="
                                "\"%s\"} %lld\n", series[k].name,
                                m->cfg->targets[t].name,
                                m->cfg->vmodels[m->cfg->targets[t].vmodel]
                                    .name, v);
        }
    }
}

/* Tokens the answers used, by target, as their END frames said. */
static void endpoints_tokens(struct master *m, struct evbuffer *buf)
{
    static const char name[] = "pipeline_tokens_total";

    ENDPOINTS_PRINTF(buf, "# HELP %s Tokens of the answers, as the "
                        "upstream reported them, by target.\n"
                        "# TYPE %s counter\n", name, name);
    for (int t = 0; t < m->cfg->target_count; t++) {
        const struct reqlog_tokens *tk =
            &m->tokens[m->slots.target_slot[t]];
        const char *tn = m->cfg->targets[t].name;
        const char *vm = m->cfg->vmodels[m->cfg->targets[t].vmodel].name;

        ENDPOINTS_PRINTF(buf, "%s{target=\"%s\",virtual_model=\"%s\","
                            "kind=\"prompt\"} %llu\n"
                            "%s{target=\"%s\",virtual_model=\"%s\","
                            "kind=\"completion\"} %llu\n", name, tn, vm,
                            (unsigned long long)tk->prompt, name, tn, vm,
                            (unsigned long long)tk->completion);
    }
}

/* Request latency per target as a Prometheus histogram: the log-linear
 * buckets folded to one per power of two of microseconds (cumulative, in
 * seconds). Each le is the bound's exact decimal, the same set always. */
static void endpoints_latency(struct master *m, struct evbuffer *buf)
{
    static const char name[] = "pipeline_request_duration_seconds";

    ENDPOINTS_PRINTF(buf, "# HELP %s Time from request to the end of "
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
            if ((i + 1) % ENDPOINTS_HIST_FOLD != 0)
                continue;
            hist_format_seconds(le, sizeof(le), hist_bucket_bound_us(i));
            ENDPOINTS_PRINTF(buf, "%s_bucket{target=\"%s\",le=\"%s\"} "
                                "%llu\n", name, tn, le,
                                (unsigned long long)cum);
        }
        hist_format_seconds(sum, sizeof(sum), h->sum_us);
        ENDPOINTS_PRINTF(buf, "%s_bucket{target=\"%s\",le=\"+Inf\"} "
                            "%llu\n%s_sum{target=\"%s\"} %s\n"
                            "%s_count{target=\"%s\"} %llu\n", name, tn,
                            (unsigned long long)h->total, name, tn, sum,
                            name, tn, (unsigned long long)h->total);
    }
    ENDPOINTS_PRINTF(buf, "# HELP pipeline_breaker_state Circuit breaker: "
                        "0 closed, 1 open, 2 half-open.\n"
                        "# TYPE pipeline_breaker_state gauge\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        ENDPOINTS_PRINTF(buf, "pipeline_breaker_state{target=\"%s\","
                            "virtual_model=\"%s\"} %u\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            atomic_load(&master_target(m, t)->state));
    ENDPOINTS_PRINTF(buf, "# HELP pipeline_breaker_transitions_total "
                        "Breaker state changes.\n"
                        "# TYPE pipeline_breaker_transitions_total counter\n");
    for (int t = 0; t < m->cfg->target_count; t++)
        ENDPOINTS_PRINTF(buf, "pipeline_breaker_transitions_total{target="
                            "\"%s\",virtual_model=\"%s\"} %llu\n",
                            m->cfg->targets[t].name,
                            m->cfg->vmodels[m->cfg->targets[t].vmodel].name,
                            (unsigned long long)atomic_load(
                                &master_target(m, t)->transitions));
}

/* Cluster mode only: whether Redis is reachable, how many instances. */
static void endpoints_cluster_metrics(struct master *m, struct evbuffer *buf)
{
    if (!cluster_configured(m))
        return;
    ENDPOINTS_PRINTF(buf, "# HELP pipeline_cluster_connected Whether this "
                        "instance reaches the cluster's Redis.\n"
                        "# TYPE pipeline_cluster_connected gauge\n"
                        "pipeline_cluster_connected %d\n"
                        "# HELP pipeline_cluster_instances Instances seen "
                        "in the cluster, this one included.\n"
                        "# TYPE pipeline_cluster_instances gauge\n"
                        "pipeline_cluster_instances %d\n",
                        cluster_connected(m) ? 1 : 0, cluster_instances(m));
}

void endpoints_metrics(struct master *m, struct http_req *req)
{
    struct evbuffer *buf = evbuffer_new();
    const struct shm_counters *c = &m->shm.hdr->counters;

    if (buf == NULL)
        util_oom("the /metrics answer");
    ENDPOINTS_PRINTF(buf,
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
    endpoints_targets(m, buf);
    endpoints_tokens(m, buf);
    budgets_metrics(m, buf);
    endpoints_latency(m, buf);
    endpoints_health_metrics(m, buf);
    endpoints_cluster_metrics(m, buf);
    http_send_buffer(req, 200, "text/plain; version=0.0.4", NULL, 0, buf);
    evbuffer_free(buf);
}


/* The /v1/models answer never changes while a configuration lives. */
int endpoints_build_models(struct master *m)
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

