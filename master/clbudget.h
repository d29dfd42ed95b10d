/* clbudget.h - rate budgets shared by the instances of a cluster
 * (clbudget.c): target and client rpm/tpm leased in slices from one
 * bucket per budget in Redis into the shared segment, and split evenly
 * among the instances last seen while Redis is away. cluster.c calls
 * the first three through its table of parts; master.c calls
 * clbudget_configured after each configuration is applied. */
#ifndef RCC_CLBUDGET_H
#define RCC_CLBUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct cluster;
struct master;

/* Redis is reachable: every limited bucket becomes leased; what this
 * instance spent of it while alone is charged to the cluster's bucket
 * with its first lease. */
void clbudget_up(struct cluster *c);
/* Every CLUSTER_POLL_MS while up: a lease for each bucket down to half
 * a slice (and its debt, for tokens charged beyond it). */
void clbudget_poll(struct cluster *c, int64_t now);
/* Redis is lost: every limited bucket refills by itself again, as this
 * instance's share of its limit. */
void clbudget_down(struct cluster *c);
/* A configuration was applied (buckets placed or configured anew):
 * leased again, or split again, as the connection stands. Nothing
 * without cluster mode. */
void clbudget_configured(struct master *m);
/* stats: what the cluster has left of target slot's rpm (tokens
 * false) or tpm of limit: Redis's bucket as the last lease found it,
 * refilled to now (monotonic), with what this instance holds or owes
 * (held) added, at most limit. held itself without cluster mode, while Redis
 * is away, or before a lease was answered. */
int64_t clbudget_target_left(const struct master *m, int slot, bool tokens,
                             int64_t limit, int64_t held, int64_t now);
/* Frees what clbudget keeps in c (cluster_free). */
void clbudget_free(struct cluster *c);

#endif
