/* test_provhealth.c - the providers' health entries in the segment
 * across reloads (provhealth_apply): a first placement (unknown, targets
 * pointing at their provider's entry), a reload keeping an unchanged
 * provider's state and counters, a removed provider's entry freed and a
 * returning name starting afresh, health_check removed making a known
 * provider unknown (reported once), a reload renaming every provider at
 * the maximum count, and the balancer's view (provhealth_target_usable)
 * of an unhealthy provider. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "provhealth.h"
#include "unit.h"

#define PH_QUEUE      8
#define PH_RUNNING    4
#define PH_ARENA      (16 * ARENA_BLOCK)
#define PH_NOW_MS     1000
#define PH_INTERVAL   100

/* A configuration with only what provhealth_apply reads: providers and
 * one target per provider, in target slot = index. calloc'd. */
struct ph_cfg {
    struct cfg cfg;
    struct cfg_provider providers[CFG_MAX_PROVIDERS];
    struct cfg_target targets[CFG_MAX_PROVIDERS];
    char names[CFG_MAX_PROVIDERS][CFG_NAME_MAX];
};

static struct ph_cfg *ph_build(int n, const char *prefix, int interval_ms)
{
    struct ph_cfg *c = calloc(1, sizeof(*c));

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->cfg.providers = c->providers;
    c->cfg.targets = c->targets;
    c->cfg.provider_count = n;
    c->cfg.target_count = n;
    for (int p = 0; p < n; p++) {
        snprintf(c->names[p], CFG_NAME_MAX, "%s%d", prefix, p);
        c->providers[p].name = c->names[p];
        c->providers[p].health.interval_ms = interval_ms;
        c->providers[p].health.timeout_ms = interval_ms;
        c->providers[p].health.unhealthy_after = 1;
        c->providers[p].health.healthy_after = 1;
        c->targets[p].provider = p;
    }
    return c;
}

static void ph_segment(struct shm_view *shm)
{
    struct cfg cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.queue_capacity = PH_QUEUE;
    cfg.max_concurrent_requests = PH_RUNNING;
    cfg.body_arena_bytes = PH_ARENA;
    memset(shm, 0, sizeof(*shm));
    CU_ASSERT_EQUAL_FATAL(shm_create(shm, &cfg), 0);
}

static int ph_apply(struct shm_view *shm, const struct ph_cfg *c,
                    struct slots_map *map, enum health_change *changed)
{
    memset(map, 0, sizeof(*map));
    for (int t = 0; t < c->cfg.target_count; t++)
        map->target_slot[t] = (int16_t)t;
    return provhealth_apply(shm, &c->cfg, map, PH_NOW_MS, changed);
}

/* Makes provider p of map unhealthy with one failed probe. */
static void ph_fail(struct shm_view *shm, const struct ph_cfg *c,
                    const struct slots_map *map, int p)
{
    struct health_state *h = provhealth_at(shm, map->health_slot[p]);
    struct health_params hp = provhealth_params(&c->providers[p].health);
    int64_t round;

    CU_ASSERT_TRUE_FATAL(health_claim(h, &hp, 0, PH_NOW_MS, &round));
    CU_ASSERT_EQUAL(health_record(h, &hp, round, HEALTH_FAIL, PH_NOW_MS),
                    HEALTH_CHANGE_UNHEALTHY);
}

static void test_first_placement(void)
{
    struct shm_view shm;
    struct ph_cfg *c = ph_build(3, "p", PH_INTERVAL);
    struct slots_map map;
    enum health_change changed[CFG_MAX_PROVIDERS];

    ph_segment(&shm);
    CU_ASSERT_EQUAL(ph_apply(&shm, c, &map, changed), 0);
    for (int p = 0; p < 3; p++) {
        CU_ASSERT_EQUAL(changed[p], HEALTH_CHANGE_NONE);
        CU_ASSERT_EQUAL(shm.targets[p].health_slot, map.health_slot[p]);
        CU_ASSERT_EQUAL(provhealth_target_state(&shm, p), HEALTH_UNKNOWN);
        CU_ASSERT_TRUE(provhealth_target_usable(&shm, p));
        CU_ASSERT_STRING_EQUAL(shm.hdr->health[map.health_slot[p]].provider,
                               c->names[p]);
    }
    CU_ASSERT_NOT_EQUAL(map.health_slot[0], map.health_slot[1]);
    /* No target slot, no health: usable. */
    CU_ASSERT_TRUE(provhealth_target_usable(&shm, SHM_NO_TARGET));
    shm_destroy(&shm);
    free(c);
}

static void test_reload_keeps_state(void)
{
    struct shm_view shm;
    struct ph_cfg *c1 = ph_build(2, "p", PH_INTERVAL);
    struct ph_cfg *c2 = ph_build(2, "p", 2 * PH_INTERVAL);
    struct slots_map m1, m2;
    enum health_change changed[CFG_MAX_PROVIDERS];
    const struct health_state *h;

    ph_segment(&shm);
    CU_ASSERT_EQUAL(ph_apply(&shm, c1, &m1, changed), 0);
    ph_fail(&shm, c1, &m1, 1);
    CU_ASSERT_FALSE(provhealth_target_usable(&shm, 1));
    CU_ASSERT_TRUE(provhealth_target_usable(&shm, 0));
    CU_ASSERT_EQUAL(ph_apply(&shm, c2, &m2, changed), 0);
    CU_ASSERT_EQUAL(m2.health_slot[1], m1.health_slot[1]);
    CU_ASSERT_EQUAL(changed[1], HEALTH_CHANGE_NONE);
    h = provhealth_at(&shm, m2.health_slot[1]);
    CU_ASSERT_EQUAL(h->state, HEALTH_UNHEALTHY);
    CU_ASSERT_EQUAL(atomic_load(&h->probes_failed), 1u);
    CU_ASSERT_FALSE(provhealth_target_usable(&shm, 1));
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

static void test_removed_and_returning(void)
{
    struct shm_view shm;
    struct ph_cfg *c1 = ph_build(2, "p", PH_INTERVAL);
    struct ph_cfg *c2 = ph_build(1, "p", PH_INTERVAL);
    struct slots_map m1, m2, m3;
    enum health_change changed[CFG_MAX_PROVIDERS];
    int used = 0;

    ph_segment(&shm);
    CU_ASSERT_EQUAL(ph_apply(&shm, c1, &m1, changed), 0);
    ph_fail(&shm, c1, &m1, 1);
    CU_ASSERT_EQUAL(ph_apply(&shm, c2, &m2, changed), 0);
    for (int h = 0; h < SHM_HEALTH_SLOTS; h++)
        used += (int)shm.hdr->health[h].used;
    CU_ASSERT_EQUAL(used, 1);
    /* p1 comes back: a new provider, unknown, nothing counted. */
    CU_ASSERT_EQUAL(ph_apply(&shm, c1, &m3, changed), 0);
    CU_ASSERT_EQUAL(provhealth_target_state(&shm, 1), HEALTH_UNKNOWN);
    CU_ASSERT_EQUAL(atomic_load(&provhealth_at(&shm, m3.health_slot[1])
                                    ->probes_failed), 0u);
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

static void test_check_removed(void)
{
    struct shm_view shm;
    struct ph_cfg *c1 = ph_build(1, "p", PH_INTERVAL);
    struct ph_cfg *c2 = ph_build(1, "p", 0);
    struct slots_map m1, m2;
    enum health_change changed[CFG_MAX_PROVIDERS];

    ph_segment(&shm);
    CU_ASSERT_EQUAL(ph_apply(&shm, c1, &m1, changed), 0);
    ph_fail(&shm, c1, &m1, 0);
    CU_ASSERT_EQUAL(ph_apply(&shm, c2, &m2, changed), 0);
    CU_ASSERT_EQUAL(changed[0], HEALTH_CHANGE_UNKNOWN);
    CU_ASSERT_TRUE(provhealth_target_usable(&shm, 0));
    CU_ASSERT_EQUAL(ph_apply(&shm, c2, &m2, changed), 0);
    CU_ASSERT_EQUAL(changed[0], HEALTH_CHANGE_NONE);   /* reported once */
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

static void test_rename_all_at_maximum(void)
{
    struct shm_view shm;
    struct ph_cfg *c1 = ph_build(CFG_MAX_PROVIDERS, "a", PH_INTERVAL);
    struct ph_cfg *c2 = ph_build(CFG_MAX_PROVIDERS, "b", PH_INTERVAL);
    struct slots_map m;
    enum health_change changed[CFG_MAX_PROVIDERS];

    ph_segment(&shm);
    CU_ASSERT_EQUAL(ph_apply(&shm, c1, &m, changed), 0);
    CU_ASSERT_EQUAL(ph_apply(&shm, c2, &m, changed), 0);
    CU_ASSERT_EQUAL(ph_apply(&shm, c1, &m, changed), 0);
    for (int p = 0; p < CFG_MAX_PROVIDERS; p++)
        CU_ASSERT_STRING_EQUAL(shm.hdr->health[m.health_slot[p]].provider,
                               c1->names[p]);
    shm_destroy(&shm);
    free(c1);
    free(c2);
}

static CU_TestInfo provhealth_tests[] = {
    { "first placement", test_first_placement },
    { "reload keeps an unchanged provider's state", test_reload_keeps_state },
    { "removed provider freed, returning one fresh",
      test_removed_and_returning },
    { "health_check removed: unknown, reported once", test_check_removed },
    { "every provider renamed at the maximum", test_rename_all_at_maximum },
    CU_TEST_INFO_NULL
};

int register_provhealth_tests(void)
{
    return unit_add_suite("provhealth", provhealth_tests);
}
