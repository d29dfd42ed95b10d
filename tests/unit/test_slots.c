/* test_slots.c - the slots of targets and virtual models across reloads
 * (slots_apply): a first placement, names that keep their slot and
 * their state, new names on fresh slots, removed names retired and only
 * reused once no older worker, job or call can reach them, targets that
 * move between virtual models, balancer state re-initialised only where
 * a model's targets changed, and a reload refused, changing nothing, when
 * the slots run out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "slots.h"
#include "unit.h"

#define SLT_QUEUE      8
#define SLT_RUNNING    4
#define SLT_ARENA      (16 * ARENA_BLOCK)
#define SLT_SPEC_MAX   4096
#define SLT_CURRENT    7          /* a balancer balance to recognise */
#define SLT_REQUESTS   42u
#define SLT_NOW_MS     1000

/* A configuration with only what slots_apply reads; calloc'd. */
struct slt_cfg {
    struct cfg cfg;
    struct cfg_vmodel vmodels[CFG_MAX_VMODELS];
    struct cfg_target targets[CFG_MAX_TARGETS];
    char vmodel_names[CFG_MAX_VMODELS][CFG_NAME_MAX];
};

/* Builds a configuration from "vm1:p/a,p/b*3;vm2:p/c" (name*weight);
 * the caller frees it with free(). */
static struct slt_cfg *slt_build(const char *spec)
{
    struct slt_cfg *c = calloc(1, sizeof(*c));
    char buf[SLT_SPEC_MAX], *save_vm = NULL, *vm;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->cfg.vmodels = c->vmodels;
    c->cfg.targets = c->targets;
    util_strlcpy(buf, spec, sizeof(buf));
    for (vm = strtok_r(buf, ";", &save_vm); vm != NULL;
         vm = strtok_r(NULL, ";", &save_vm)) {
        int v = c->cfg.vmodel_count++;
        char *colon = strchr(vm, ':'), *save_t = NULL, *t;

        CU_ASSERT_PTR_NOT_NULL_FATAL(colon);
        *colon = '\0';
        util_strlcpy(c->vmodel_names[v], vm, CFG_NAME_MAX);
        c->vmodels[v].name = c->vmodel_names[v];
        c->vmodels[v].first_target = c->cfg.target_count;
        for (t = strtok_r(colon + 1, ",", &save_t); t != NULL;
             t = strtok_r(NULL, ",", &save_t)) {
            struct cfg_target *ct = &c->targets[c->cfg.target_count++];
            char *star = strchr(t, '*');

            ct->weight = 1;
            if (star != NULL) {
                *star = '\0';
                ct->weight = (int)strtol(star + 1, NULL, 10);
            }
            util_strlcpy(ct->name, t, sizeof(ct->name));
            ct->vmodel = v;
            c->vmodels[v].target_count++;
        }
    }
    return c;
}

/* n targets "PREFIX/tI" in one virtual model "many"; calloc'd. */
static struct slt_cfg *slt_build_many(const char *prefix, int n)
{
    struct slt_cfg *c = calloc(1, sizeof(*c));

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->cfg.vmodels = c->vmodels;
    c->cfg.targets = c->targets;
    c->cfg.vmodel_count = 1;
    util_strlcpy(c->vmodel_names[0], "many", CFG_NAME_MAX);
    c->vmodels[0].name = c->vmodel_names[0];
    c->vmodels[0].target_count = n;
    for (int i = 0; i < n; i++) {
        snprintf(c->targets[i].name, sizeof(c->targets[i].name), "%s/t%d",
                 prefix, i);
        c->targets[i].weight = 1;
    }
    c->cfg.target_count = n;
    return c;
}

static void slt_segment(struct shm_view *shm)
{
    struct cfg cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.queue_capacity = SLT_QUEUE;
    cfg.max_concurrent_requests = SLT_RUNNING;
    cfg.body_arena_bytes = SLT_ARENA;
    memset(shm, 0, sizeof(*shm));
    CU_ASSERT_EQUAL_FATAL(shm_create(shm, &cfg), 0);
}

/* Applies c after prev (NULL: the first time) with every older worker
 * gone; *map receives the new map. */
static int slt_apply(struct shm_view *shm, const struct slt_cfg *prev,
                     const struct slots_map *prev_map,
                     const struct slt_cfg *c, uint32_t oldest_gen,
                     struct slots_map *map, uint64_t *fresh)
{
    char err[CFG_ERR_MAX];

    return slots_apply(shm, prev ? &prev->cfg : NULL, prev_map, &c->cfg,
                       oldest_gen, map, fresh, err, sizeof(err));
}

static int slt_slot(const struct slots_map *map, const struct slt_cfg *c,
                    const char *vmodel, const char *name)
{
    for (int t = 0; t < c->cfg.target_count; t++)
        if (strcmp(c->targets[t].name, name) == 0 &&
            strcmp(c->vmodels[c->targets[t].vmodel].name, vmodel) == 0)
            return map->target_slot[t];
    return SLOTS_NONE;
}

/* Opens the breaker of slot s and gives it some history. */
static void slt_dirty(struct shm_view *shm, int s)
{
    struct shm_target *st = &shm->targets[s];

    st->cb.state = CB_OPEN;
    st->cb.opened_ms = SLT_NOW_MS;
    atomic_store(&st->state, CB_OPEN);
    atomic_store(&st->requests, SLT_REQUESTS);
    atomic_store(&st->failures, SLT_REQUESTS);
    shm->lb[s].current_weight = SLT_CURRENT;
}

static void test_first_placement(void)
{
    struct slt_cfg *c = slt_build("a:p/x,p/y*3;b:q/z");
    struct slots_map map;
    uint64_t fresh[SLOTS_FRESH_WORDS];
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL(slt_apply(&shm, NULL, NULL, c, 0, &map, fresh), 0);
    CU_ASSERT_EQUAL(map.generation, 1);
    CU_ASSERT_EQUAL(shm.hdr->config_gen, 1);
    for (int t = 0; t < 3; t++) {
        CU_ASSERT_EQUAL(map.target_slot[t], t);
        CU_ASSERT_EQUAL(map.target_index[t], t);
        CU_ASSERT_TRUE(slots_fresh(fresh, t));
        CU_ASSERT_EQUAL(shm.targets[t].slot_state, SHM_SLOT_LIVE);
        CU_ASSERT_EQUAL(shm.targets[t].cb.state, CB_CLOSED);
    }
    CU_ASSERT_FALSE(slots_fresh(fresh, 3));
    CU_ASSERT_EQUAL(map.target_index[3], SLOTS_NONE);
    CU_ASSERT_EQUAL(map.target_slot[3], SLOTS_NONE);
    CU_ASSERT_EQUAL(map.vmodel_slot[0], 0);
    CU_ASSERT_EQUAL(map.vmodel_slot[1], 1);
    CU_ASSERT_EQUAL(map.vmodel_index[1], 1);
    CU_ASSERT_EQUAL(map.vmodel_index[2], SLOTS_NONE);
    CU_ASSERT_STRING_EQUAL(shm.targets[1].name, "p/y");
    CU_ASSERT_STRING_EQUAL(shm.targets[1].vmodel, "a");
    CU_ASSERT_STRING_EQUAL(shm.vmodels[1].name, "b");
    CU_ASSERT_EQUAL(shm.lb[1].effective_weight, 3);
    CU_ASSERT_EQUAL(slots_target_index(&map, -1), SLOTS_NONE);
    CU_ASSERT_EQUAL(slots_target_index(&map, SHM_TARGET_SLOTS), SLOTS_NONE);
    CU_ASSERT_EQUAL(slots_vmodel_index(&map, SHM_VMODEL_SLOTS), SLOTS_NONE);
    shm_destroy(&shm);
    free(c);
}

/* The same names in a new order: same slots, state kept. */
static void test_same_names_keep_state(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x,p/y;b:q/z");
    struct slt_cfg *c2 = slt_build("b:q/z;a:p/x,p/y");
    struct slots_map m1, m2;
    uint64_t fresh[SLOTS_FRESH_WORDS];
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    slt_dirty(&shm, 0);
    slt_dirty(&shm, 2);
    shm.vmodels[0].rr_next = SLT_CURRENT;
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, fresh), 0);
    CU_ASSERT_EQUAL(m2.generation, 2);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "a", "p/x"), 0);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "a", "p/y"), 1);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "b", "q/z"), 2);
    CU_ASSERT_EQUAL(m2.vmodel_slot[0], 1);     /* "b" is first now */
    CU_ASSERT_EQUAL(m2.vmodel_index[0], 1);
    for (int s = 0; s < SHM_TARGET_SLOTS; s++)
        CU_ASSERT_FALSE(slots_fresh(fresh, s));
    CU_ASSERT_EQUAL(shm.targets[0].cb.state, CB_OPEN);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[0].requests), SLT_REQUESTS);
    /* Unchanged models keep their balancer state and cursor. */
    CU_ASSERT_EQUAL(shm.lb[0].current_weight, SLT_CURRENT);
    CU_ASSERT_EQUAL(shm.lb[2].current_weight, SLT_CURRENT);
    CU_ASSERT_EQUAL(shm.vmodels[0].rr_next, SLT_CURRENT);
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

/* A target added to one model: a fresh slot for it, the balancer of that
 * model starts over, the other model's is kept. */
static void test_added_target(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x;b:q/z");
    struct slt_cfg *c2 = slt_build("a:p/x,p/new;b:q/z");
    struct slots_map m1, m2;
    uint64_t fresh[SLOTS_FRESH_WORDS];
    struct shm_view shm;
    int s;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    slt_dirty(&shm, 0);
    slt_dirty(&shm, 1);
    slt_dirty(&shm, 2);    /* a free slot with leftovers: must be reset */
    shm.vmodels[0].rr_next = SLT_CURRENT;
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, fresh), 0);
    s = slt_slot(&m2, c2, "a", "p/new");
    CU_ASSERT_EQUAL(s, 2);
    CU_ASSERT_TRUE(slots_fresh(fresh, 2));
    CU_ASSERT_FALSE(slots_fresh(fresh, 0));
    CU_ASSERT_EQUAL(shm.targets[2].cb.state, CB_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[2].state), CB_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[2].requests), 0);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[2].failures), 0);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "a", "p/x"), 0);
    CU_ASSERT_EQUAL(shm.targets[0].cb.state, CB_OPEN);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[0].requests), SLT_REQUESTS);
    CU_ASSERT_EQUAL(shm.lb[0].current_weight, 0);    /* "a" changed */
    CU_ASSERT_EQUAL(shm.lb[2].current_weight, 0);
    CU_ASSERT_EQUAL(shm.vmodels[0].rr_next, 0);
    CU_ASSERT_EQUAL(shm.lb[1].current_weight, SLT_CURRENT);   /* "b" not */
    CU_ASSERT_EQUAL(m2.target_index[2], 1);
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

/* A changed weight starts the model's balancer over too. */
static void test_weight_change(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x,p/y");
    struct slt_cfg *c2 = slt_build("a:p/x,p/y*5");
    struct slots_map m1, m2;
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    slt_dirty(&shm, 0);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, NULL), 0);
    CU_ASSERT_EQUAL(shm.lb[0].current_weight, 0);
    CU_ASSERT_EQUAL(shm.lb[1].effective_weight, 5);
    CU_ASSERT_EQUAL(shm.targets[0].cb.state, CB_OPEN);   /* breaker kept */
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

/* A removed target is retired: kept while a worker of the old
 * configuration lives, then reused, reset, by a new name. */
static void test_removed_target_retired(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x,p/y");
    struct slt_cfg *c2 = slt_build("a:p/x");
    struct slt_cfg *c3 = slt_build("a:p/x,p/z");
    struct slt_cfg *c4 = slt_build("a:p/x,p/z,p/w");
    struct slots_map m1, m2, m3, m4;
    uint64_t fresh[SLOTS_FRESH_WORDS];
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    slt_dirty(&shm, 1);
    /* Generation 1 workers are still alive. */
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, NULL), 0);
    CU_ASSERT_EQUAL(shm.targets[1].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(shm.targets[1].retired_gen, 2);
    CU_ASSERT_EQUAL(m2.target_index[1], SLOTS_NONE);
    /* The old map still finds it (an old worker's view). */
    CU_ASSERT_EQUAL(m1.target_index[1], 1);
    /* Still alive: a new name must not take the retired slot. */
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c2, &m2, c3, 1, &m3, NULL), 0);
    CU_ASSERT_EQUAL(slt_slot(&m3, c3, "a", "p/z"), 2);
    CU_ASSERT_EQUAL(shm.targets[1].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(shm.targets[1].cb.state, CB_OPEN);
    /* They are gone (the oldest live worker is of generation 3). */
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c3, &m3, c4, 3, &m4, fresh), 0);
    CU_ASSERT_EQUAL(slt_slot(&m4, c4, "a", "p/w"), 1);
    CU_ASSERT_TRUE(slots_fresh(fresh, 1));
    CU_ASSERT_EQUAL(shm.targets[1].slot_state, SHM_SLOT_LIVE);
    CU_ASSERT_STRING_EQUAL(shm.targets[1].name, "p/w");
    CU_ASSERT_EQUAL(shm.targets[1].cb.state, CB_CLOSED);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[1].requests), 0);
    shm_destroy(&shm);
    free(c1);
    free(c2);
    free(c3);
    free(c4);
}

/* A retired slot that a queued job names, or that a call still holds,
 * is not reused even when no old worker is left. */
static void test_retired_slot_held_by_job(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x,p/y;gone:p/g");
    struct slt_cfg *c2 = slt_build("a:p/x");
    struct slt_cfg *c3 = slt_build("a:p/x,p/n1,p/n2;new:p/n3");
    struct slots_map m1, m2, m3, m4;
    struct shm_view shm;
    uint32_t direct, vm_job;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    /* A queued job for p/y by name, one for model "gone", and a call
     * in flight on p/g. */
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &direct), 0);
    shm.jobs[direct].flags = SHM_JOB_DIRECT;
    shm.jobs[direct].target = 1;
    shm.jobs[direct].vmodel = 0;
    CU_ASSERT_EQUAL_FATAL(shm_job_enqueue(&shm, direct), 0);
    CU_ASSERT_EQUAL_FATAL(shm_job_alloc(&shm, 1, &vm_job), 0);
    shm.jobs[vm_job].vmodel = 1;
    CU_ASSERT_EQUAL_FATAL(shm_job_enqueue(&shm, vm_job), 0);
    atomic_store(&shm.targets[2].active, 1);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, NULL), 0);
    CU_ASSERT_EQUAL(m2.vmodel_index[1], SLOTS_NONE);  /* workers: 404 */
    CU_ASSERT_EQUAL(m2.target_index[1], SLOTS_NONE);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c2, &m2, c3, 3, &m3, NULL), 0);
    /* Slots 1 and 2 and model slot 1 are still in use. */
    CU_ASSERT_EQUAL(shm.targets[1].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(shm.targets[2].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(shm.vmodels[1].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(slt_slot(&m3, c3, "a", "p/n1"), 3);
    CU_ASSERT_EQUAL(slt_slot(&m3, c3, "a", "p/n2"), 4);
    CU_ASSERT_EQUAL(m3.vmodel_slot[1], 2);
    /* Once the jobs and the call are done the slots free up. */
    shm_job_free(&shm, direct);
    shm_job_free(&shm, vm_job);
    atomic_store(&shm.targets[2].active, 0);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c3, &m3, c3, 4, &m4, NULL), 0);
    CU_ASSERT_EQUAL(shm.targets[1].slot_state, SHM_SLOT_FREE);
    CU_ASSERT_EQUAL(shm.targets[2].slot_state, SHM_SLOT_FREE);
    CU_ASSERT_EQUAL(shm.vmodels[1].slot_state, SHM_SLOT_FREE);
    shm_destroy(&shm);
    free(c1);
    free(c2);
    free(c3);
}

/* A name that comes back while its slot is retired gets it back, state
 * and all. */
static void test_returning_name_revives(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x,p/y");
    struct slt_cfg *c2 = slt_build("a:p/x");
    struct slots_map m1, m2, m3;
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    slt_dirty(&shm, 1);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c2, &m2, c1, 1, &m3, NULL), 0);
    CU_ASSERT_EQUAL(slt_slot(&m3, c1, "a", "p/y"), 1);
    CU_ASSERT_EQUAL(shm.targets[1].slot_state, SHM_SLOT_LIVE);
    CU_ASSERT_EQUAL(shm.targets[1].cb.state, CB_OPEN);
    CU_ASSERT_EQUAL(atomic_load(&shm.targets[1].requests), SLT_REQUESTS);
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

/* A virtual model renamed: its targets keep their slots (matched by name
 * alone) and their breakers; the old model's slot is retired. One name in
 * two models has two slots, each kept by an exact match. */
static void test_moved_and_shared_targets(void)
{
    struct slt_cfg *c1 = slt_build("old:p/x,p/s;other:p/s");
    struct slt_cfg *c2 = slt_build("other:p/s;renamed:p/x,p/s");
    struct slots_map m1, m2;
    uint64_t fresh[SLOTS_FRESH_WORDS];
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    CU_ASSERT_EQUAL(slt_slot(&m1, c1, "old", "p/s"), 1);
    CU_ASSERT_EQUAL(slt_slot(&m1, c1, "other", "p/s"), 2);
    slt_dirty(&shm, 0);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 2, &m2, fresh), 0);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "other", "p/s"), 2);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "renamed", "p/x"), 0);
    CU_ASSERT_EQUAL(slt_slot(&m2, c2, "renamed", "p/s"), 1);
    CU_ASSERT_FALSE(slots_fresh(fresh, 0));
    CU_ASSERT_FALSE(slots_fresh(fresh, 1));
    CU_ASSERT_EQUAL(shm.targets[0].cb.state, CB_OPEN);
    CU_ASSERT_STRING_EQUAL(shm.targets[0].vmodel, "renamed");
    CU_ASSERT_EQUAL(shm.vmodels[0].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(m2.vmodel_slot[1], 2);
    CU_ASSERT_STRING_EQUAL(shm.vmodels[2].name, "renamed");
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

/* Every target replaced at once fits while the old workers live; a
 * third set before they exit does not: refused, nothing changed. */
static void test_slots_run_out(void)
{
    struct slt_cfg *c1 = slt_build_many("one", CFG_MAX_TARGETS);
    struct slt_cfg *c2 = slt_build_many("two", CFG_MAX_TARGETS);
    struct slt_cfg *c3 = slt_build_many("three", 1);
    struct slots_map m1, m2, m3;
    char err[CFG_ERR_MAX] = "";
    struct shm_view shm;

    slt_segment(&shm);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, NULL, NULL, c1, 0, &m1, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(slt_apply(&shm, c1, &m1, c2, 1, &m2, NULL), 0);
    CU_ASSERT_EQUAL(m2.target_slot[0], CFG_MAX_TARGETS);
    CU_ASSERT_EQUAL(m2.target_slot[CFG_MAX_TARGETS - 1],
                    SHM_TARGET_SLOTS - 1);
    CU_ASSERT_EQUAL(slots_apply(&shm, &c2->cfg, &m2, &c3->cfg, 1, &m3, NULL,
                                err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not enough free slots"));
    CU_ASSERT_EQUAL(shm.hdr->config_gen, 2);
    CU_ASSERT_EQUAL(shm.targets[0].slot_state, SHM_SLOT_RETIRED);
    CU_ASSERT_EQUAL(shm.targets[CFG_MAX_TARGETS].slot_state, SHM_SLOT_LIVE);
    CU_ASSERT_STRING_EQUAL(shm.targets[CFG_MAX_TARGETS].name, "two/t0");
    /* The generation 1 workers have exited: it fits. */
    CU_ASSERT_EQUAL(slt_apply(&shm, c2, &m2, c3, 2, &m3, NULL), 0);
    CU_ASSERT_EQUAL(m3.target_slot[0], 0);
    CU_ASSERT_EQUAL(m3.generation, 3);
    shm_destroy(&shm);
    free(c1);
    free(c2);
    free(c3);
}

/* With slots, a reload may change the targets and virtual models; what
 * sizes the segment or binds the sockets still needs a restart. */
static void test_reload_check(void)
{
    struct slt_cfg *c1 = slt_build("a:p/x,p/y;b:q/z");
    struct slt_cfg *c2 = slt_build("c:q/z;a:p/y");
    char err[CFG_ERR_MAX];
    struct cfg *o = &c1->cfg, *n = &c2->cfg;
    char host[] = "127.0.0.1", sock[] = "/tmp/ctl.sock";

    o->listen_host = n->listen_host = host;
    o->control_socket = n->control_socket = sock;
    o->listen_port = n->listen_port = SLT_NOW_MS;
    o->queue_capacity = n->queue_capacity = SLT_QUEUE;
    o->max_concurrent_requests = n->max_concurrent_requests = SLT_RUNNING;
    o->body_arena_bytes = n->body_arena_bytes = SLT_ARENA;
    CU_ASSERT_EQUAL(cfg_reload_check(o, n, err, sizeof(err)), 0);
    n->queue_capacity++;
    CU_ASSERT_EQUAL(cfg_reload_check(o, n, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'queue_capacity'"));
    n->queue_capacity--;
    n->body_arena_bytes++;
    CU_ASSERT_EQUAL(cfg_reload_check(o, n, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'body_arena_bytes'"));
    n->body_arena_bytes--;
    n->max_concurrent_requests++;
    CU_ASSERT_EQUAL(cfg_reload_check(o, n, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'max_concurrent_requests'"));
    n->max_concurrent_requests--;
    n->listen_port++;
    CU_ASSERT_EQUAL(cfg_reload_check(o, n, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'listen'"));
    free(c1);
    free(c2);
}

static CU_TestInfo slots_tests[] = {
    { "first placement", test_first_placement },
    { "same names keep slots and state", test_same_names_keep_state },
    { "added target: fresh slot, balancer over", test_added_target },
    { "weight change: balancer over", test_weight_change },
    { "removed target retired, reused later", test_removed_target_retired },
    { "retired slot held by jobs and calls", test_retired_slot_held_by_job },
    { "returning name revives its slot", test_returning_name_revives },
    { "moved and shared targets", test_moved_and_shared_targets },
    { "slots run out: refused, unchanged", test_slots_run_out },
    { "reload check allows new targets", test_reload_check },
    CU_TEST_INFO_NULL
};

int register_slots_tests(void)
{
    return unit_add_suite("slots", slots_tests);
}
