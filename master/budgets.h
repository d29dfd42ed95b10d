/* budgets.h - the master's side of rate budgets and token accounting:
 * client budgets placed in the segment by name (kept across reloads),
 * the target buckets set up for each applied configuration, a client's
 * admission (429 rate_limited at once when over its budget), and the
 * counts /metrics shows by status and by client name. Keys never come
 * here: a client is its key's index, then its name. */
#ifndef RCC_MASTER_BUDGETS_H
#define RCC_MASTER_BUDGETS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "clientbudget.h"
#include "shm.h"
#include "slots.h"
#include "trace.h"

struct master;

/* Statuses a client's counts keep apart; further ones count as the
 * last. */
#define BUDGETS_STATUS_KINDS 16
/* HTTP statuses counted one by one (0 .. this - 1; others as 0). */
#define BUDGETS_STATUS_LIMIT 600

/* A client's counts, by its slot in the segment. */
struct budgets_client {
    uint64_t prompt;
    uint64_t completion;
    int kinds;
    int status[BUDGETS_STATUS_KINDS];
    uint64_t count[BUDGETS_STATUS_KINDS];
};

struct budgets {
    struct clientbudget_map map;   /* of the configuration applied last */
    int16_t slot_of_budget[CLIENTBUDGET_MAX_KEYS];
    struct budgets_client clients[SHM_CLIENT_SLOTS];
    uint64_t by_status[BUDGETS_STATUS_LIMIT];
};

/* With the segment lock held: the target buckets of cfg's targets in
 * the slots map gives them; a slot taken afresh (fresh) starts full,
 * the others keep their level (bucket_pair_configure). */
void budgets_place_targets(struct shm_view *shm, const struct cfg *cfg,
                           const struct slots_map *map,
                           const uint64_t fresh[SLOTS_FRESH_WORDS],
                           int64_t now_ms);

/* m->budgets for m->cfg's clients: allocated the first time (freed by
 * budgets_free), their names placed in the segment's client slots (a
 * name seen before keeps its slot, its budget and its counts). 0 or
 * -1 (out of client slots, logged). */
int budgets_configure(struct master *m);
void budgets_free(struct master *m);

/* The client of key key_index (-1: no key): its slot (*slot, or
 * SHM_NO_CLIENT) and its name (NULL for a plain key). */
const char *budgets_client(const struct master *m, int key_index,
                           int32_t *slot);

/* Admits one request of client slot (SHM_NO_CLIENT: always): takes a
 * request from its budget, or returns false with *retry_after_s. */
bool budgets_admit(struct master *m, int32_t slot, int64_t *retry_after_s);

/* The name of client slot, or NULL. */
const char *budgets_name(const struct master *m, int32_t slot);

/* Counts a request's end (by status; by client when r->client names
 * one, with its tokens). */
void budgets_count(struct master *m, const struct trace_req *r);

/* stats: target t's "tokens":{"prompt","completion"} and, when it has
 * limits, "budget":{"rpm","tpm"} (what is left now; a limit not set is
 * left out) added to its object o (a json_object). */
void budgets_target_stats(struct master *m, int t, void *o);

/* /metrics: requests by status, requests and tokens by client. */
void budgets_metrics(const struct master *m, struct evbuffer *buf);

#endif
