/* clientbudget.h - which budget and which name a client key stands for.
 * clients.api_keys holds plain keys and objects { key; name; rpm; tpm; };
 * the configuration loader keeps the keys (secrets) apart and gives this
 * module, per key and in the same order, only its name and limits. Keys
 * that share a name are one client (a key being rotated): they share one
 * budget, and must then carry the same limits. Every named client gets a
 * budget index, limited or not, so its requests and tokens can be counted
 * under its name; a plain key has none.
 *
 * Nothing here ever holds or returns a key: only names, limits and
 * indices. clientbudget_match() finds which digest of the configured keys
 * a request's key digest is, in time independent of where (or whether)
 * it matches, so the caller learns the index without a timing leak.
 *
 * Pure and per process (built from the configuration, not shared): the
 * buckets themselves (bucket.h's bucket_pair) live in the segment at the
 * budget index. */
#ifndef RCC_CLIENTBUDGET_H
#define RCC_CLIENTBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most keys clients.api_keys may hold (config.c's
 * CFG_MAX_CLIENT_KEYS). */
#define CLIENTBUDGET_MAX_KEYS     1024
/* No budget: a plain key, or no key (no client authentication). */
#define CLIENTBUDGET_NONE         (-1)
/* The name logged and counted for a client without one. */
#define CLIENTBUDGET_UNNAMED      "-"
/* SHA-256, as the keys are kept (frontend.c). */
#define CLIENTBUDGET_DIGEST_LEN   32

/* One configured key, without the key. Owned by the caller (the loaded
 * configuration); the map keeps pointers to the names. */
struct clientbudget_entry {
    const char *name;          /* NULL: a plain key */
    int64_t rpm;               /* 0: unlimited */
    int64_t tpm;               /* 0: unlimited */
};

struct clientbudget_map {
    int key_count;
    int budget_count;          /* distinct names */
    int16_t budget_of_key[CLIENTBUDGET_MAX_KEYS];   /* or NONE */
    int16_t first_key[CLIENTBUDGET_MAX_KEYS];   /* per budget: the entry
                                                   its name and limits
                                                   come from */
};

/* Builds map over entries[0..n). -1 when n is out of range (0 to
 * CLIENTBUDGET_MAX_KEYS), a name is empty, or two entries of one name
 * differ in rpm or tpm (*bad gets the later entry's index, else -1; bad
 * may be NULL). On success, budgets are numbered in the order their
 * names first appear. */
int clientbudget_build(struct clientbudget_map *map,
                       const struct clientbudget_entry *entries, int n,
                       int *bad);

/* The budget of key key_index (the index of the matching key), or
 * CLIENTBUDGET_NONE for a plain key or key_index out of range (no
 * client key: -1). */
int clientbudget_of(const struct clientbudget_map *map, int key_index);

/* The name for logs and metrics of key key_index: its name, or
 * CLIENTBUDGET_UNNAMED. Points into entries (or is a constant). */
const char *clientbudget_name(const struct clientbudget_map *map,
                              const struct clientbudget_entry *entries,
                              int key_index);

/* The name and limits of budget (0 .. budget_count): the entry they
 * come from, or NULL out of range. */
const struct clientbudget_entry *clientbudget_budget(
    const struct clientbudget_map *map,
    const struct clientbudget_entry *entries, int budget);

/* Whether a budget entry limits anything (rpm or tpm set). */
bool clientbudget_limited(const struct clientbudget_entry *entry);

/* The index of digest among digests[0..n), or -1. Compares against
 * every one, each in constant time, and selects the index without a
 * branch on the data; the first match wins if keys repeat. */
int clientbudget_match(const uint8_t (*digests)[CLIENTBUDGET_DIGEST_LEN],
                       int n, const uint8_t *digest);

#endif
