/* cloauth.h - OAuth tokens shared in cluster mode (cloauth.c): one
 * refresh at a time across the cluster (a Redis lock the master takes
 * for the worker that asks), and the new tokens of a refresh carried to
 * every instance's token file. cluster.c calls the first four through
 * its table of parts; relay.c hands it the workers' FRAME_OAUTH. */
#ifndef RCC_CLOAUTH_H
#define RCC_CLOAUTH_H

#include <stddef.h>
#include <stdint.h>

struct cluster;
struct master;

/* Just connected: publishes tokens refreshed here while Redis was away,
 * and takes the cluster's when ours are older. */
void cloauth_sync(struct cluster *c);
/* Looks at the token files now and then: new tokens here are stored and
 * announced. */
void cloauth_poll(struct cluster *c, int64_t now);
/* A notice from the OAuth channel: another instance has new tokens. */
void cloauth_message(struct cluster *c, const char *payload, size_t len);
/* Frees the part's state (cluster_free); NULL-safe. */
void cloauth_free(struct cluster *c);

/* A FRAME_OAUTH from the worker in slot (op: an enum frame_oauth_op,
 * provider: an index of the configuration). An ask is always answered:
 * GRANTED or BUSY from Redis, ALONE without cluster mode or Redis. */
void cloauth_worker_frame(struct master *m, int slot, unsigned op,
                          uint32_t provider);
/* The worker in slot died (relay.c): a cluster refresh lock it was
 * granted and did not release is released now, not at its expiry. */
void cloauth_worker_lost(struct master *m, int slot);

#endif
