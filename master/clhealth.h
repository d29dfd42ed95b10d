/* clhealth.h - active health shared in cluster mode (clhealth.c): one
 * probe per provider per interval for the whole cluster, its result
 * applied on every instance. cluster.c calls clhealth_start once, at
 * its start, and the others through its table of parts, with its
 * connections up. */
#ifndef RCC_CLHEALTH_H
#define RCC_CLHEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct cluster;

/* Per health slot of the segment (a provider's entry), in struct
 * cluster. */
struct clhealth_slot {
    int64_t due_ms;           /* the deadline deferred while asking */
    int64_t held_ms;          /* what it was deferred to; 0: not asking */
    int64_t waiting_ms;       /* deferred to another's lease end; 0: not */
    uint64_t seen_probes;     /* this instance's probes, last published */
    uint64_t applied;         /* results applied from other instances */
    /* The provider all this is about: a reload that gives the slot to
     * another provider starts it afresh (clhealth_mine). */
    char provider[CFG_NAME_MAX];
};

/* At start, before the workers: the first probe of each provider waits
 * up to a second for Redis, so that one instance probes it, not all. */
void clhealth_start(struct cluster *c);
/* Just connected: publishes what was probed here while alone, or else
 * learns the last result stored for each provider. */
void clhealth_up(struct cluster *c);
/* Publishes this instance's new probe results, and asks Redis who
 * probes each provider whose round comes within CLHEALTH_AHEAD_MS. */
void clhealth_poll(struct cluster *c, int64_t now);
/* Redis lost: rounds held for another instance's lease come back now,
 * so that each instance probes alone at once. */
void clhealth_down(struct cluster *c);
/* A result from the health channel (len bytes): another instance's,
 * applied here; malformed ones and our own ignored. */
void clhealth_message(struct cluster *c, const char *payload, size_t len);

#endif
