/* clientbudget.c - the key -> name -> budget map and the constant-time
 * key lookup of clientbudget.h. The map is quadratic to build in the
 * worst case (names compared with earlier budgets' names), which is at
 * most CLIENTBUDGET_MAX_KEYS^2 / 2 string comparisons once per reload. */
#include "clientbudget.h"

#include <string.h>

int clientbudget_build(struct clientbudget_map *map,
                       const struct clientbudget_entry *entries, int n,
                       int *bad)
{
    if (bad != NULL)
        *bad = -1;
    map->key_count = 0;
    map->budget_count = 0;
    if (n < 0 || n > CLIENTBUDGET_MAX_KEYS || (n > 0 && entries == NULL))
        return -1;
    for (int i = 0; i < n; i++) {
        const struct clientbudget_entry *e = &entries[i];
        int budget = CLIENTBUDGET_NONE;

        if (e->name != NULL && e->name[0] == '\0') {
            if (bad != NULL)
                *bad = i;
            return -1;
        }
        if (e->name != NULL) {
            for (int b = 0; b < map->budget_count; b++) {
                const struct clientbudget_entry *first =
                    &entries[map->first_key[b]];

                if (strcmp(first->name, e->name) != 0)
                    continue;
                if (first->rpm != e->rpm || first->tpm != e->tpm) {
                    if (bad != NULL)
                        *bad = i;
                    return -1;
                }
                budget = b;
                break;
            }
            if (budget == CLIENTBUDGET_NONE) {
                budget = map->budget_count++;
                map->first_key[budget] = (int16_t)i;
            }
        }
        map->budget_of_key[i] = (int16_t)budget;
    }
    map->key_count = n;
    return 0;
}

int clientbudget_of(const struct clientbudget_map *map, int key_index)
{
    if (key_index < 0 || key_index >= map->key_count)
        return CLIENTBUDGET_NONE;
    return map->budget_of_key[key_index];
}

const char *clientbudget_name(const struct clientbudget_map *map,
                              const struct clientbudget_entry *entries,
                              int key_index)
{
    int budget = clientbudget_of(map, key_index);

    if (budget == CLIENTBUDGET_NONE)
        return CLIENTBUDGET_UNNAMED;
    return entries[map->first_key[budget]].name;
}

const struct clientbudget_entry *clientbudget_budget(
    const struct clientbudget_map *map,
    const struct clientbudget_entry *entries, int budget)
{
    if (budget < 0 || budget >= map->budget_count)
        return NULL;
    return &entries[map->first_key[budget]];
}

bool clientbudget_limited(const struct clientbudget_entry *entry)
{
    return entry != NULL && (entry->rpm > 0 || entry->tpm > 0);
}

int clientbudget_match(const uint8_t (*digests)[CLIENTBUDGET_DIGEST_LEN],
                       int n, const uint8_t *digest)
{
    /* found stays all ones until the first match, then all zeros; index
     * takes i only while found is all ones and this entry matches. */
    uint32_t found = UINT32_MAX;
    uint32_t index = UINT32_MAX;

    for (int i = 0; i < n; i++) {
        uint32_t diff = 0, equal;

        for (int b = 0; b < CLIENTBUDGET_DIGEST_LEN; b++)
            diff |= (uint32_t)(digests[i][b] ^ digest[b]);
        /* diff in 0..255: (diff - 1) >> 31 is 1 exactly when diff == 0. */
        equal = 0u - ((diff - 1u) >> 31);
        index = (index & ~(equal & found)) | ((uint32_t)i & equal & found);
        found &= ~equal;
    }
    return found == UINT32_MAX ? -1 : (int)index;
}
