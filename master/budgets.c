/* budgets.c - rate budgets and token accounting in the master (see
 * budgets.h). Client slots in the segment are matched by name on each
 * configuration: a name seen before keeps its slot, a new one takes a
 * slot never used, else one whose name has left. */
#include "budgets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "clbudget.h"
#include "master.h"

void budgets_place_targets(struct shm_view *shm, const struct cfg *cfg,
                           const struct slots_map *map,
                           const uint64_t fresh[SLOTS_FRESH_WORDS],
                           int64_t now_ms)
{
    for (int t = 0; t < cfg->target_count; t++) {
        int s = map->target_slot[t];
        struct bucket_pair *b = &shm->targets[s].budget;

        if (slots_fresh(fresh, s))
            bucket_pair_init(b, cfg->targets[t].rpm, cfg->targets[t].tpm,
                             now_ms);
        else
            bucket_pair_configure(b, cfg->targets[t].rpm,
                                  cfg->targets[t].tpm, now_ms);
    }
}

/* The slot client name had, or SHM_NO_CLIENT. */
static int budgets_find(const struct shm_view *shm, const char *name)
{
    for (int s = 0; s < SHM_CLIENT_SLOTS; s++)
        if (shm->clients[s].name[0] != '\0' &&
            strcmp(shm->clients[s].name, name) == 0)
            return s;
    return SHM_NO_CLIENT;
}

/* A slot for a new name: one never used, else one whose name is not in
 * this configuration (claimed: those that are). */
static int budgets_free_slot(const struct shm_view *shm, const bool *claimed)
{
    for (int s = 0; s < SHM_CLIENT_SLOTS; s++)
        if (shm->clients[s].name[0] == '\0' && !claimed[s])
            return s;
    for (int s = 0; s < SHM_CLIENT_SLOTS; s++)
        if (!claimed[s])
            return s;
    return SHM_NO_CLIENT;
}

int budgets_configure(struct master *m)
{
    const struct cfg *cfg = m->cfg;
    struct clientbudget_entry *e;
    struct budgets *b;
    bool *claimed;
    int64_t now = util_now_ms();
    int rc = 0;

    if (m->budgets == NULL && (m->budgets = calloc(1, sizeof(*m->budgets)))
        == NULL)
        util_oom("the client budgets");
    b = m->budgets;
    e = calloc((size_t)cfg->client_key_count + 1, sizeof(*e));
    claimed = calloc(SHM_CLIENT_SLOTS, sizeof(*claimed));
    if (e == NULL || claimed == NULL)
        util_oom("the client budgets");
    for (int i = 0; i < cfg->client_key_count; i++)
        e[i] = (struct clientbudget_entry){ cfg->clients[i].name,
                                            cfg->clients[i].rpm,
                                            cfg->clients[i].tpm };
    /* The loader checked the names (cfg_check_client_names). */
    if (clientbudget_build(&b->map, e, cfg->client_key_count, NULL) < 0) {
        b->map.key_count = b->map.budget_count = 0;
        rc = -1;
    }
    shm_lock(&m->shm);
    for (int k = 0; k < b->map.budget_count; k++) {
        int s = budgets_find(&m->shm, clientbudget_budget(&b->map, e, k)
                                          ->name);

        b->slot_of_budget[k] = (int16_t)s;
        if (s != SHM_NO_CLIENT)
            claimed[s] = true;
    }
    for (int s = 0; s < SHM_CLIENT_SLOTS; s++)
        m->shm.clients[s].used = claimed[s];
    for (int k = 0; k < b->map.budget_count; k++) {
        const struct clientbudget_entry *be = clientbudget_budget(&b->map,
                                                                  e, k);
        struct shm_client *sc;
        int s = b->slot_of_budget[k];

        if (s == SHM_NO_CLIENT) {
            s = budgets_free_slot(&m->shm, claimed);
            /* Cannot happen: a configuration names at most
             * SHM_CLIENT_SLOTS clients. */
            if (s == SHM_NO_CLIENT) {
                rc = -1;
                continue;
            }
            claimed[s] = true;
            b->slot_of_budget[k] = (int16_t)s;
            sc = &m->shm.clients[s];
            util_strlcpy(sc->name, be->name, sizeof(sc->name));
            bucket_pair_init(&sc->budget, be->rpm, be->tpm, now);
            memset(&b->clients[s], 0, sizeof(b->clients[s]));
        } else {
            sc = &m->shm.clients[s];
            bucket_pair_configure(&sc->budget, be->rpm, be->tpm, now);
        }
        sc->used = 1;
    }
    shm_unlock(&m->shm);
    free(e);
    free(claimed);
    if (rc < 0)
        log_msg(&m->log, LOG_ERROR, NULL, "client budgets: no room for "
                "every client name");
    return rc;
}

void budgets_free(struct master *m)
{
    free(m->budgets);
    m->budgets = NULL;
}

const char *budgets_client(const struct master *m, int key_index,
                           int32_t *slot)
{
    int k = m->budgets != NULL ? clientbudget_of(&m->budgets->map,
                                                 key_index)
                               : CLIENTBUDGET_NONE;

    *slot = k == CLIENTBUDGET_NONE ? SHM_NO_CLIENT
                                   : m->budgets->slot_of_budget[k];
    return budgets_name(m, *slot);
}

const char *budgets_name(const struct master *m, int32_t slot)
{
    if (slot < 0 || slot >= SHM_CLIENT_SLOTS)
        return NULL;
    return m->shm.clients[slot].name;
}

bool budgets_admit(struct master *m, int32_t slot, int64_t *retry_after_s)
{
    struct bucket_pair *b;
    int64_t now = util_now_ms(), wait = 0;
    bool ok;

    if (slot < 0 || slot >= SHM_CLIENT_SLOTS)
        return true;
    b = &m->shm.clients[slot].budget;
    shm_lock(&m->shm);
    ok = bucket_pair_ready(b, now);
    if (ok)
        bucket_pair_start(b, now);
    else
        wait = bucket_pair_wait_ms(b, now);
    shm_unlock(&m->shm);
    if (!ok)
        *retry_after_s = bucket_retry_after_s(wait);
    return ok;
}

/* The slot of the client named name in this configuration, or
 * SHM_NO_CLIENT. */
static int budgets_slot_named(const struct master *m, const char *name)
{
    const struct budgets *b = m->budgets;

    for (int k = 0; b != NULL && k < b->map.budget_count; k++) {
        int s = b->slot_of_budget[k];

        if (s >= 0 && strcmp(m->shm.clients[s].name, name) == 0)
            return s;
    }
    return SHM_NO_CLIENT;
}

void budgets_count(struct master *m, const struct trace_req *r)
{
    struct budgets *b = m->budgets;
    struct budgets_client *bc;
    int s, i;

    if (b == NULL)
        return;
    b->by_status[r->status > 0 && r->status < BUDGETS_STATUS_LIMIT ?
                 r->status : 0]++;
    if (r->client == NULL ||
        (s = budgets_slot_named(m, r->client)) == SHM_NO_CLIENT)
        return;
    bc = &b->clients[s];
    if (r->usage) {
        bc->prompt += r->prompt_tokens;
        bc->completion += r->completion_tokens;
    }
    for (i = 0; i < bc->kinds && bc->status[i] != r->status; i++)
        ;
    if (i == bc->kinds) {
        if (bc->kinds < BUDGETS_STATUS_KINDS)
            bc->status[bc->kinds++] = r->status;
        else
            i = BUDGETS_STATUS_KINDS - 1;
    }
    bc->count[i]++;
}

#define BUDGETS_PRINTF(buf, ...) \
    UTIL_MUST(evbuffer_add_printf((buf), __VA_ARGS__) < 0 ? -1 : 0, \
              "the /metrics answer")

void budgets_metrics(const struct master *m, struct evbuffer *buf)
{
    const struct budgets *b = m->budgets;

    if (b == NULL)
        return;
    BUDGETS_PRINTF(buf, "# HELP pipeline_requests_by_status_total Chat "
                   "requests by the status the client got.\n"
                   "# TYPE pipeline_requests_by_status_total counter\n");
    for (int s = 0; s < BUDGETS_STATUS_LIMIT; s++)
        if (b->by_status[s] > 0)
            BUDGETS_PRINTF(buf, "pipeline_requests_by_status_total"
                           "{status=\"%d\"} %llu\n", s,
                           (unsigned long long)b->by_status[s]);
    BUDGETS_PRINTF(buf, "# HELP pipeline_client_requests_total Chat "
                   "requests by client name and status.\n"
                   "# TYPE pipeline_client_requests_total counter\n");
    for (int k = 0; k < b->map.budget_count; k++) {
        int s = b->slot_of_budget[k];
        const struct budgets_client *bc;

        if (s < 0)
            continue;
        bc = &b->clients[s];
        for (int i = 0; i < bc->kinds; i++)
            BUDGETS_PRINTF(buf, "pipeline_client_requests_total{client="
                           "\"%s\",status=\"%d\"} %llu\n",
                           m->shm.clients[s].name, bc->status[i],
                           (unsigned long long)bc->count[i]);
    }
    BUDGETS_PRINTF(buf, "# HELP pipeline_client_tokens_total Tokens of "
                   "the answers by client name.\n"
                   "# TYPE pipeline_client_tokens_total counter\n");
    for (int k = 0; k < b->map.budget_count; k++) {
        int s = b->slot_of_budget[k];
        const char *name;

        if (s < 0)
            continue;
        name = m->shm.clients[s].name;
        BUDGETS_PRINTF(buf, "pipeline_client_tokens_total{client=\"%s\","
                       "kind=\"prompt\"} %llu\n"
                       "pipeline_client_tokens_total{client=\"%s\","
                       "kind=\"completion\"} %llu\n", name,
                       (unsigned long long)b->clients[s].prompt, name,
                       (unsigned long long)b->clients[s].completion);
    }
}

void budgets_target_stats(struct master *m, int t, void *obj)
{
    json_object *o = obj, *tokens = json_object_new_object();
    int s = m->slots.target_slot[t];
    const struct bucket_pair *b = &m->shm.targets[s].budget;
    int64_t now = util_now_ms(), rpm = 0, tpm = 0;
    bool rpm_set, tpm_set;

    json_object_object_add(tokens, "prompt", json_object_new_int64(
        (int64_t)m->tokens[s].prompt));
    json_object_object_add(tokens, "completion", json_object_new_int64(
        (int64_t)m->tokens[s].completion));
    json_object_object_add(o, "tokens", tokens);
    shm_lock(&m->shm);
    rpm_set = !bucket_unlimited(&b->requests);
    tpm_set = !bucket_unlimited(&b->tokens);
    if (rpm_set)
        rpm = bucket_tokens(&b->requests, now);
    if (tpm_set)
        tpm = bucket_tokens(&b->tokens, now);
    shm_unlock(&m->shm);
    /* In a cluster: what all instances have left, not this one's lease. */
    rpm = clbudget_target_left(m, s, false, m->cfg->targets[t].rpm, rpm, now);
    tpm = clbudget_target_left(m, s, true, m->cfg->targets[t].tpm, tpm, now);
    if (rpm_set || tpm_set) {
        json_object *budget = json_object_new_object();

        if (rpm_set)
            json_object_object_add(budget, "rpm", json_object_new_int64(rpm));
        if (tpm_set)
            json_object_object_add(budget, "tpm", json_object_new_int64(tpm));
        json_object_object_add(o, "budget", budget);
    }
}
