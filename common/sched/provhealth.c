/* provhealth.c - placing the providers' health entries in the segment
 * across reloads, and reading a target's health; see provhealth.h. */
#include "provhealth.h"

#include <string.h>

struct health_params provhealth_params(const struct cfg_health *h)
{
    struct health_params p;

    p.interval_ms = h->interval_ms;
    p.timeout_ms = h->timeout_ms;
    p.unhealthy_after = h->unhealthy_after > 0 ? (uint32_t)h->unhealthy_after
                                                : 1u;
    p.healthy_after = h->healthy_after > 0 ? (uint32_t)h->healthy_after : 1u;
    return p;
}

static int provhealth_find(const struct shm_hdr *hdr, const char *name)
{
    for (int h = 0; h < SHM_HEALTH_SLOTS; h++)
        if (hdr->health[h].used &&
            strncmp(hdr->health[h].provider, name, CFG_NAME_MAX) == 0)
            return h;
    return SHM_NO_HEALTH;
}

static bool provhealth_named(const struct cfg *cfg, const char *name)
{
    for (int p = 0; p < cfg->provider_count; p++)
        if (strncmp(cfg->providers[p].name, name, CFG_NAME_MAX) == 0)
            return true;
    return false;
}

int provhealth_apply(struct shm_view *shm, const struct cfg *cfg,
                     struct slots_map *map, int64_t now_ms,
                     enum health_change *changed)
{
    struct shm_hdr *hdr = shm->hdr;

    /* Names that left free their entries first, so that a reload that
     * renames every provider still finds room. */
    for (int h = 0; h < SHM_HEALTH_SLOTS; h++)
        if (hdr->health[h].used &&
            !provhealth_named(cfg, hdr->health[h].provider))
            hdr->health[h].used = 0;
    for (int p = 0; p < cfg->provider_count; p++) {
        const struct cfg_provider *prov = &cfg->providers[p];
        struct health_params hp = provhealth_params(&prov->health);
        int h = provhealth_find(hdr, prov->name);

        changed[p] = HEALTH_CHANGE_NONE;
        if (h == SHM_NO_HEALTH) {
            for (h = 0; h < SHM_HEALTH_SLOTS && hdr->health[h].used; h++)
                ;
            if (h == SHM_HEALTH_SLOTS)
                return -1;
            memset(&hdr->health[h], 0, sizeof(hdr->health[h]));
            memcpy(hdr->health[h].provider, prov->name,
                   strnlen(prov->name, CFG_NAME_MAX - 1));
            health_init(&hdr->health[h].st, now_ms);
            hdr->health[h].used = 1;
        } else {
            changed[p] = health_configure(&hdr->health[h].st, &hp, now_ms);
        }
        map->health_slot[p] = (int16_t)h;
    }
    for (int t = 0; t < cfg->target_count; t++) {
        int slot = map->target_slot[t];

        if (slot >= 0 && slot < SHM_TARGET_SLOTS)
            shm->targets[slot].health_slot =
                map->health_slot[cfg->targets[t].provider];
    }
    return 0;
}

struct health_state *provhealth_at(const struct shm_view *shm, int h)
{
    if (h < 0 || h >= SHM_HEALTH_SLOTS)
        return NULL;
    return &shm->hdr->health[h].st;
}

struct health_state *provhealth_of_target(const struct shm_view *shm,
                                          int32_t target_slot)
{
    if (target_slot < 0 || target_slot >= SHM_TARGET_SLOTS)
        return NULL;
    return provhealth_at(shm, shm->targets[target_slot].health_slot);
}

bool provhealth_target_usable(const struct shm_view *shm,
                              int32_t target_slot)
{
    const struct health_state *h = provhealth_of_target(shm, target_slot);

    return h == NULL || health_usable(h);
}

uint32_t provhealth_target_state(const struct shm_view *shm,
                                 int32_t target_slot)
{
    const struct health_state *h = provhealth_of_target(shm, target_slot);

    return h == NULL ? HEALTH_UNKNOWN : h->state;
}
