/* clbreaker.h - circuit breakers shared by target name in cluster mode
 * (clbreaker.c), and their half-open trial taken by one instance at a
 * time. cluster.c calls the first three, through its table of parts,
 * with its connections up; control.c calls clbreaker_reset. */
#ifndef RCC_CLBREAKER_H
#define RCC_CLBREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster;
struct master;

/* Per target slot, in struct cluster: the half-open lease asked for an
 * opening. */
struct clbreaker_trial {
    int64_t opened_ms;        /* the opening asked about; 0: none */
    int64_t until_ms;         /* its half-open time before the deferral */
    int64_t held_ms;          /* the deferral while asking; 0: answered */
    bool won;                 /* this instance tries the target */
    bool alone;               /* Redis refused the lease: this opening
                                 is tried here without one */
    bool fresh;               /* a reload placed a target here: its
                                 stored opening is read at the next poll */
    bool reset_owed;          /* reset here while Redis was away: the
                                 reset goes to the cluster at the next
                                 connection, instead of a read */
};

/* Publishes the openings found in the segment since the last poll, asks
 * for the half-open lease of those whose time is near, and tells the
 * others when this instance's trial closed a breaker. */
void clbreaker_poll(struct cluster *c, int64_t now);
/* Just connected: reads every target's stored opening, then publishes
 * what is open here. */
void clbreaker_sync(struct cluster *c);
/* A message from the breaker channel (len bytes): another instance's
 * opening or reset, applied here; malformed ones and our own ignored. */
void clbreaker_message(struct cluster *c, const char *payload, size_t len);
/* A reload reset target slot's state (a target new to it, or one that
 * took a freed slot): what cluster mode kept for the slot (the opening
 * published, the half-open trial won) goes too, so that it is not taken
 * for the new target's, and the new target's opening stored in Redis, if
 * any, is read at the next poll (as at a connection). Nothing without
 * cluster mode. */
void clbreaker_slot_fresh(struct master *m, int slot);
/* An operator reset NAME here: reset it on every instance (on this one
 * alone, logged, while Redis is away). Nothing without cluster mode. */
void clbreaker_reset(struct master *m, const char *name);

#endif
