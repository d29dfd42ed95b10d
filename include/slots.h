/* slots.h - where each configuration's targets and virtual models live
 * in the shared segment. Their state (breaker, calls in flight,
 * counters, balancer state, round-robin cursor) sits in slots that keep
 * their place across reloads, keyed by name: a virtual model by its name,
 * a target by its virtual model's name and "provider/model". Each applied
 * configuration gets a map from its own indices to slots and back; jobs
 * hold slots, never configuration indices, so workers of the old and the
 * new configuration can share the queue during a reload.
 *
 * The master alone calls slots_apply, with the segment lock held; workers
 * only read their copy of the map (a worker's configuration and its map
 * never change while it lives). */
#ifndef RCC_SLOTS_H
#define RCC_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "shm.h"

#define SLOTS_NONE        (-1)
#define SLOTS_FRESH_WORDS ((SHM_TARGET_SLOTS + 63) / 64)

/* One configuration's places in the segment. */
struct slots_map {
    uint32_t generation;                   /* shm hdr config_gen it set */
    int16_t target_slot[CFG_MAX_TARGETS];  /* cfg target index -> slot */
    int16_t vmodel_slot[CFG_MAX_VMODELS];  /* cfg vmodel index -> slot */
    int16_t target_index[SHM_TARGET_SLOTS];   /* slot -> index or NONE */
    int16_t vmodel_index[SHM_VMODEL_SLOTS];   /* slot -> index or NONE */
    int16_t health_slot[CFG_MAX_PROVIDERS];   /* cfg provider index ->
                                                 shm_health (provhealth.h) */
};

/* With the segment lock held, by the master: places the targets and
 * virtual models of cfg, the next configuration generation, and fills
 * *map for it.
 *   old, old_map: the configuration applied so far and its map (NULL,
 *     NULL the first time).
 *   oldest_gen: the generation of the oldest worker still alive (any
 *     value >= the current generation when none is).
 * First, retired slots nothing can use any more (no live worker of a
 * generation that had them, no job naming them, no call in flight) are
 * freed. Then a name seen before keeps its slot and its state: a target
 * matched on its virtual model and name, else on its name alone (a target
 * that moved to another virtual model keeps its breaker), retired slots
 * included (a name that comes back gets its old state). New names take
 * the lowest free slots, whose state is reset (closed breaker, zero
 * counters); names that are gone are retired. A virtual model whose list
 * of targets or weights changed gets its balancer state re-initialised;
 * the others keep theirs. fresh, when not NULL, receives a bit per target
 * slot whose state was reset (for the caller's own per-slot state).
 * Returns 0, or -1 with the reason in err and nothing changed when there
 * are not enough free slots (workers of an earlier configuration still
 * hold them). */
int slots_apply(struct shm_view *shm, const struct cfg *old,
                const struct slots_map *old_map, const struct cfg *cfg,
                uint32_t oldest_gen, struct slots_map *map,
                uint64_t fresh[SLOTS_FRESH_WORDS], char *err, size_t errlen);

/* The configuration index in slot, or SLOTS_NONE when the map's
 * configuration has nothing there (or slot is out of range). */
static inline int slots_target_index(const struct slots_map *map,
                                     int32_t slot)
{
    if (slot < 0 || slot >= SHM_TARGET_SLOTS)
        return SLOTS_NONE;
    return map->target_index[slot];
}

static inline int slots_vmodel_index(const struct slots_map *map,
                                     int32_t slot)
{
    if (slot < 0 || slot >= SHM_VMODEL_SLOTS)
        return SLOTS_NONE;
    return map->vmodel_index[slot];
}

static inline bool slots_fresh(const uint64_t fresh[SLOTS_FRESH_WORDS],
                               int slot)
{
    return (fresh[slot / 64] >> (slot % 64)) & 1u;
}

#endif
