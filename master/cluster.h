/* cluster.h - cluster mode in the master (cluster.c): the one Redis
 * connection pair of this instance, its heartbeat and instance list, and
 * circuit breakers shared by target name. Without a `cluster` group in
 * the configuration m->cluster stays NULL and every function here
 * returns at once: no Redis code runs. */
#ifndef RCC_CLUSTER_H
#define RCC_CLUSTER_H

#include <stdbool.h>

#include <json-c/json.h>

struct master;

/* Starts connecting (never waiting for Redis) when the configuration has
 * a `cluster` group; nothing otherwise. 0, or -1 (logged) when the group
 * cannot be used: its password variable unset, its host not resolved. */
int cluster_init(struct master *m);
/* Closes the connections and frees everything; NULL-safe, also in a
 * worker just forked (its callbacks then do nothing). */
void cluster_free(struct master *m);
/* "cluster": {"connected","instances"} for stats; NULL when not
 * configured. The caller owns the object. */
json_object *cluster_stats(struct master *m);
/* The `cluster` control command's answer, {"instances":[...]};
 * malloc'd, the caller frees. NULL when not configured. */
char *cluster_instances_json(struct master *m);
/* For /metrics: whether configured, connected, and the instances seen
 * (this one included). */
bool cluster_configured(const struct master *m);
bool cluster_connected(const struct master *m);
int cluster_instances(const struct master *m);

#endif
