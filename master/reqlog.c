/* reqlog.c - a chat request's line and counts (reqlog.h). */
#include "reqlog.h"

#include <string.h>

#include "master.h"
#include "budgets.h"

void reqlog_write(struct master *m, enum log_level level, const char *rid,
                  const struct trace_req *r, const struct trace *t)
{
    char line[TRACE_LINE_MAX];
    struct trace local;

    /* Every request is counted by its status, refusals included. */
    budgets_count(m, r);
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

/* The slot of the target that answered: the one of the attempt that
 * answered (one provider/model may serve several virtual models, each
 * its own slot), else by name; -1 for a target a reload removed. */
static int32_t reqlog_slot(struct master *m, const char *target,
                           const struct trace *tr)
{
    int32_t slot = -1;

    if (tr->attempts > 0)
        slot = tr->attempt[tr->attempts <= TRACE_MAX_ATTEMPTS ?
                           tr->attempts - 1 : TRACE_MAX_ATTEMPTS - 1].target;
    if (slot < 0 || slot >= SHM_TARGET_SLOTS ||
        slots_target_index(&m->slots, slot) == SLOTS_NONE ||
        strcmp(m->shm.targets[slot].name, target) != 0) {
        int t = cfg_find_target(m->cfg, target);

        slot = t >= 0 ? m->slots.target_slot[t] : -1;
    }
    return slot;
}

void reqlog_finish(struct master *m, const char *rid,
                   const struct trace_req *r, const struct trace *t)
{
    reqlog_write(m, LOG_INFO, rid, r, t);
    if (r->target != NULL && r->target[0] != '\0') {
        /* The span the log line's ms= shows. A target a reload removed
         * meanwhile counts in the total only. */
        uint64_t us = r->end_us > r->received_us ?
                      (uint64_t)(r->end_us - r->received_us) : 0;
        int32_t slot = reqlog_slot(m, r->target, t);

        if (slot >= 0) {
            hist_record_us(&m->latency[slot], us);
            if (r->usage) {
                m->tokens[slot].prompt += r->prompt_tokens;
                m->tokens[slot].completion += r->completion_tokens;
            }
        }
        hist_record_us(&m->latency_all, us);
    }
    /* A stream cut by an error event got a 200 but failed. */
    if (r->status >= 200 && r->status < 300 && r->error == NULL)
        atomic_fetch_add(&m->shm.hdr->counters.succeeded, 1);
    else
        atomic_fetch_add(&m->shm.hdr->counters.failed, 1);
}
