/* provhealth.h - the providers' active health in the shared segment: one
 * struct shm_health per provider name (health.h's state machine and probe
 * lease inside), placed by the master at each configuration it applies
 * and read by the balancer (worker), the all-open check, stats and
 * /metrics (master) through a target's slot. Probing itself is the
 * worker's (worker/probe.c). */
#ifndef RCC_PROVHEALTH_H
#define RCC_PROVHEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "health.h"
#include "shm.h"
#include "slots.h"

/* The health_check group as health.h's parameters (interval 0: off). */
struct health_params provhealth_params(const struct cfg_health *h);

/* By the master, with the segment lock held, after slots_apply filled
 * map for cfg: a provider named as before keeps its entry and state (new
 * parameters applied with health_configure), a new name takes a free
 * entry (unknown, first probe due at once), entries of names that left
 * are freed. Fills map->health_slot and each of cfg's target slots'
 * health_slot. changed[p] (provider_count entries) gets what
 * health_configure changed, for the caller to log. 0, or -1 when no
 * entry is free (cannot happen: twice the providers' maximum). */
int provhealth_apply(struct shm_view *shm, const struct cfg *cfg,
                     struct slots_map *map, int64_t now_ms,
                     enum health_change *changed);

/* The health entry of a target slot, or NULL when it has none. */
struct health_state *provhealth_of_target(const struct shm_view *shm,
                                          int32_t target_slot);
/* The entry of health slot h, or NULL when out of range. */
struct health_state *provhealth_at(const struct shm_view *shm, int h);

/* Whether the balancer may use the target in slot: unless its provider
 * is unhealthy. Read with the lock held (or accept a stale answer). */
bool provhealth_target_usable(const struct shm_view *shm,
                              int32_t target_slot);
/* enum health_kind of the target's provider (HEALTH_UNKNOWN without). */
uint32_t provhealth_target_state(const struct shm_view *shm,
                                 int32_t target_slot);

#endif
