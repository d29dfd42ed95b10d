/* slots.c - gives the targets and virtual models of each applied
 * configuration their slots in the shared segment (see slots.h): frees
 * retired slots nothing can reach any more, matches names to the slots
 * they had, retires the names that left, resets the state of slots taken
 * afresh and the balancer state of virtual models whose targets changed.
 * Runs in the master, under the segment lock, once per reload. */
#include "slots.h"

#include <stdio.h>
#include <string.h>

#include "balancer.h"
#include "breaker.h"
#include "util.h"

#define SLOTS_WORD_BITS    64
#define SLOTS_TARGET_WORDS SLOTS_FRESH_WORDS
#define SLOTS_VMODEL_WORDS ((SHM_VMODEL_SLOTS + SLOTS_WORD_BITS - 1) / \
                            SLOTS_WORD_BITS)

/* What the new configuration will get, worked out before anything in
 * the segment changes, so a plan that does not fit changes nothing. */
struct slots_plan {
    int16_t target_slot[CFG_MAX_TARGETS];    /* SLOTS_NONE: a free one */
    int16_t vmodel_slot[CFG_MAX_VMODELS];
    bool target_claimed[SHM_TARGET_SLOTS];
    bool vmodel_claimed[SHM_VMODEL_SLOTS];
    int targets_needed;
    int vmodels_needed;
};

static void slots_mark(uint64_t *bits, int32_t slot, int limit)
{
    if (slot >= 0 && slot < limit)
        bits[slot / SLOTS_WORD_BITS] |= 1ULL << (slot % SLOTS_WORD_BITS);
}

static bool slots_marked(const uint64_t *bits, int slot)
{
    return (bits[slot / SLOTS_WORD_BITS] >> (slot % SLOTS_WORD_BITS)) & 1u;
}

/* A retired slot becomes free once no live worker runs a configuration
 * that had it (they all started at or after its retirement), no job in
 * the table names it and no call holds it. */
static void slots_reclaim(struct shm_view *shm, uint32_t oldest_gen)
{
    uint64_t target_ref[SLOTS_TARGET_WORDS] = { 0 };
    uint64_t vmodel_ref[SLOTS_VMODEL_WORDS] = { 0 };

    for (uint32_t j = 0; j < shm->hdr->job_high; j++) {
        const struct shm_job *job = &shm->jobs[j];

        if (job->state == SHM_JOB_FREE)
            continue;
        slots_mark(vmodel_ref, job->vmodel, SHM_VMODEL_SLOTS);
        slots_mark(target_ref, job->target, SHM_TARGET_SLOTS);
        slots_mark(target_ref, job->slot_target, SHM_TARGET_SLOTS);
    }
    for (int s = 0; s < SHM_TARGET_SLOTS; s++) {
        struct shm_target *st = &shm->targets[s];

        if (st->slot_state != SHM_SLOT_RETIRED ||
            st->retired_gen > oldest_gen || slots_marked(target_ref, s) ||
            atomic_load(&st->active) != 0)
            continue;
        st->slot_state = SHM_SLOT_FREE;
        st->vmodel[0] = '\0';
        st->name[0] = '\0';
    }
    for (int s = 0; s < SHM_VMODEL_SLOTS; s++) {
        struct shm_vmodel *sv = &shm->vmodels[s];

        if (sv->slot_state != SHM_SLOT_RETIRED ||
            sv->retired_gen > oldest_gen || slots_marked(vmodel_ref, s))
            continue;
        sv->slot_state = SHM_SLOT_FREE;
        sv->name[0] = '\0';
    }
}

/* The unclaimed, used slot of virtual model name, or SLOTS_NONE. */
static int slots_find_vmodel(const struct shm_view *shm,
                             const struct slots_plan *plan, const char *name)
{
    for (int s = 0; s < SHM_VMODEL_SLOTS; s++) {
        const struct shm_vmodel *sv = &shm->vmodels[s];

        if (sv->slot_state != SHM_SLOT_FREE && !plan->vmodel_claimed[s] &&
            strcmp(sv->name, name) == 0)
            return s;
    }
    return SLOTS_NONE;
}

/* The unclaimed, used slot of target name in virtual model vmodel (any
 * virtual model when vmodel is NULL), or SLOTS_NONE. */
static int slots_find_target(const struct shm_view *shm,
                             const struct slots_plan *plan,
                             const char *vmodel, const char *name)
{
    for (int s = 0; s < SHM_TARGET_SLOTS; s++) {
        const struct shm_target *st = &shm->targets[s];

        if (st->slot_state != SHM_SLOT_FREE && !plan->target_claimed[s] &&
            strcmp(st->name, name) == 0 &&
            (vmodel == NULL || strcmp(st->vmodel, vmodel) == 0))
            return s;
    }
    return SLOTS_NONE;
}

static const char *slots_vmodel_name(const struct cfg *cfg, int t)
{
    return cfg->vmodels[cfg->targets[t].vmodel].name;
}

/* Claims the slots cfg's names already have. */
static void slots_plan_matches(const struct shm_view *shm,
                               const struct cfg *cfg,
                               struct slots_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    for (int v = 0; v < cfg->vmodel_count; v++) {
        int s = slots_find_vmodel(shm, plan, cfg->vmodels[v].name);

        plan->vmodel_slot[v] = (int16_t)s;
        if (s == SLOTS_NONE)
            plan->vmodels_needed++;
        else
            plan->vmodel_claimed[s] = true;
    }
    /* Exact matches first, so a name-only match never takes the slot
     * that a target of the same virtual model and name would get. */
    for (int t = 0; t < cfg->target_count; t++) {
        int s = slots_find_target(shm, plan, slots_vmodel_name(cfg, t),
                                  cfg->targets[t].name);

        plan->target_slot[t] = (int16_t)s;
        if (s != SLOTS_NONE)
            plan->target_claimed[s] = true;
    }
    for (int t = 0; t < cfg->target_count; t++) {
        int s;

        if (plan->target_slot[t] != SLOTS_NONE)
            continue;
        s = slots_find_target(shm, plan, NULL, cfg->targets[t].name);
        plan->target_slot[t] = (int16_t)s;
        if (s == SLOTS_NONE)
            plan->targets_needed++;
        else
            plan->target_claimed[s] = true;
    }
}

static int slots_count_free_targets(const struct shm_view *shm)
{
    int n = 0;

    for (int s = 0; s < SHM_TARGET_SLOTS; s++)
        n += shm->targets[s].slot_state == SHM_SLOT_FREE;
    return n;
}

static int slots_count_free_vmodels(const struct shm_view *shm)
{
    int n = 0;

    for (int s = 0; s < SHM_VMODEL_SLOTS; s++)
        n += shm->vmodels[s].slot_state == SHM_SLOT_FREE;
    return n;
}

/* A free slot taken by a target: nothing of its last owner stays. */
static void slots_reset_target(struct shm_view *shm, int s, int weight)
{
    struct shm_target *st = &shm->targets[s];

    atomic_store(&st->active, 0);
    atomic_store(&st->requests, 0);
    atomic_store(&st->failures, 0);
    atomic_store(&st->state, SHM_BREAKER_CLOSED);
    atomic_store(&st->transitions, 0);
    cb_init(&st->cb);
    lb_init(&shm->lb[s], weight);
}

/* Whether virtual model v of cfg, placed in slot vslot, has the same
 * targets (slots, in order) with the same weights as it had in the
 * configuration applied before. */
static bool slots_vmodel_unchanged(const struct cfg *old,
                                   const struct slots_map *old_map,
                                   const struct cfg *cfg,
                                   const struct slots_plan *plan, int v)
{
    const struct cfg_vmodel *vm = &cfg->vmodels[v];
    const struct cfg_vmodel *was;
    int ov;

    if (old == NULL || old_map == NULL)
        return false;
    ov = slots_vmodel_index(old_map, plan->vmodel_slot[v]);
    if (ov == SLOTS_NONE || ov >= old->vmodel_count)
        return false;
    was = &old->vmodels[ov];
    if (was->target_count != vm->target_count)
        return false;
    for (int i = 0; i < vm->target_count; i++) {
        int t = vm->first_target + i, ot = was->first_target + i;

        if (old_map->target_slot[ot] != plan->target_slot[t] ||
            old->targets[ot].weight != cfg->targets[t].weight)
            return false;
    }
    return true;
}

/* Writes the plan into the segment: slots taken afresh, names that left
 * retired, keys of moved targets updated. */
static void slots_commit(struct shm_view *shm, const struct cfg *cfg,
                         struct slots_plan *plan, uint32_t gen,
                         uint64_t fresh[SLOTS_FRESH_WORDS])
{
    int next_free = 0;

    for (int s = 0; s < SHM_TARGET_SLOTS; s++) {
        struct shm_target *st = &shm->targets[s];

        if (st->slot_state == SHM_SLOT_LIVE && !plan->target_claimed[s]) {
            st->slot_state = SHM_SLOT_RETIRED;
            st->retired_gen = gen;
        }
    }
    for (int s = 0; s < SHM_VMODEL_SLOTS; s++) {
        struct shm_vmodel *sv = &shm->vmodels[s];

        if (sv->slot_state == SHM_SLOT_LIVE && !plan->vmodel_claimed[s]) {
            sv->slot_state = SHM_SLOT_RETIRED;
            sv->retired_gen = gen;
        }
    }
    for (int t = 0; t < cfg->target_count; t++) {
        struct shm_target *st;
        int s = plan->target_slot[t];

        if (s == SLOTS_NONE) {
            while (shm->targets[next_free].slot_state != SHM_SLOT_FREE)
                next_free++;      /* plan_fits counted enough of them */
            s = next_free++;
            slots_reset_target(shm, s, cfg->targets[t].weight);
            plan->target_slot[t] = (int16_t)s;
            if (fresh != NULL)
                slots_mark(fresh, s, SHM_TARGET_SLOTS);
        }
        st = &shm->targets[s];
        st->slot_state = SHM_SLOT_LIVE;
        st->retired_gen = 0;
        util_strlcpy(st->vmodel, slots_vmodel_name(cfg, t),
                     sizeof(st->vmodel));
        util_strlcpy(st->name, cfg->targets[t].name, sizeof(st->name));
    }
    next_free = 0;
    for (int v = 0; v < cfg->vmodel_count; v++) {
        struct shm_vmodel *sv;
        int s = plan->vmodel_slot[v];

        if (s == SLOTS_NONE) {
            while (shm->vmodels[next_free].slot_state != SHM_SLOT_FREE)
                next_free++;
            s = next_free++;
            shm->vmodels[s].rr_next = 0;
            plan->vmodel_slot[v] = (int16_t)s;
        }
        sv = &shm->vmodels[s];
        sv->slot_state = SHM_SLOT_LIVE;
        sv->retired_gen = 0;
        util_strlcpy(sv->name, cfg->vmodels[v].name, sizeof(sv->name));
    }
}

static void slots_fill_map(const struct cfg *cfg,
                           const struct slots_plan *plan, uint32_t gen,
                           struct slots_map *map)
{
    map->generation = gen;
    for (int s = 0; s < SHM_TARGET_SLOTS; s++)
        map->target_index[s] = SLOTS_NONE;
    for (int s = 0; s < SHM_VMODEL_SLOTS; s++)
        map->vmodel_index[s] = SLOTS_NONE;
    for (int t = 0; t < CFG_MAX_TARGETS; t++)
        map->target_slot[t] = t < cfg->target_count ? plan->target_slot[t]
                                                    : SLOTS_NONE;
    for (int v = 0; v < CFG_MAX_VMODELS; v++)
        map->vmodel_slot[v] = v < cfg->vmodel_count ? plan->vmodel_slot[v]
                                                    : SLOTS_NONE;
    for (int t = 0; t < cfg->target_count; t++)
        map->target_index[plan->target_slot[t]] = (int16_t)t;
    for (int v = 0; v < cfg->vmodel_count; v++)
        map->vmodel_index[plan->vmodel_slot[v]] = (int16_t)v;
}

int slots_apply(struct shm_view *shm, const struct cfg *old,
                const struct slots_map *old_map, const struct cfg *cfg,
                uint32_t oldest_gen, struct slots_map *map,
                uint64_t fresh[SLOTS_FRESH_WORDS], char *err, size_t errlen)
{
    uint32_t gen = shm->hdr->config_gen + 1;
    struct slots_plan plan;
    int free_targets, free_vmodels;

    slots_reclaim(shm, oldest_gen);
    slots_plan_matches(shm, cfg, &plan);
    free_targets = slots_count_free_targets(shm);
    free_vmodels = slots_count_free_vmodels(shm);
    if (plan.targets_needed > free_targets ||
        plan.vmodels_needed > free_vmodels) {
        if (err != NULL)
            snprintf(err, errlen, "not enough free slots for the new "
                     "targets and virtual models (%d and %d needed, %d and "
                     "%d free) while workers or requests of earlier "
                     "configurations still use theirs; try again once they "
                     "have finished", plan.targets_needed,
                     plan.vmodels_needed, free_targets, free_vmodels);
        return -1;
    }
    if (fresh != NULL)
        memset(fresh, 0, SLOTS_FRESH_WORDS * sizeof(fresh[0]));
    slots_commit(shm, cfg, &plan, gen, fresh);
    /* Smooth weighted round-robin keeps a balance across a virtual
     * model's targets: when they or their weights change, start it over
     * (as nginx does on reload). Unchanged ones keep theirs. */
    for (int v = 0; v < cfg->vmodel_count; v++) {
        const struct cfg_vmodel *vm = &cfg->vmodels[v];

        if (slots_vmodel_unchanged(old, old_map, cfg, &plan, v))
            continue;
        for (int t = vm->first_target; t < vm->first_target +
                                               vm->target_count; t++)
            lb_init(&shm->lb[plan.target_slot[t]], cfg->targets[t].weight);
        shm->vmodels[plan.vmodel_slot[v]].rr_next = 0;
    }
    slots_fill_map(cfg, &plan, gen, map);
    shm->hdr->config_gen = gen;
    return 0;
}
