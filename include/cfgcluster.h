/* cfgcluster.h - the `cluster` group, read and checked for config.c with
 * FILE:LINE errors: where Redis is, the key prefix, this instance's name
 * and the variable holding the Redis password. */
#ifndef RCC_CFGCLUSTER_H
#define RCC_CFGCLUSTER_H

#include <stdbool.h>

#include <libconfig.h>

#include "cfgread.h"
#include "config.h"

/* Reads the group when it is there (c->configured). 0, or -1 after
 * cfg_fail. */
int cfg_load_cluster(struct cfg_loader *ld, const config_setting_t *root,
                     struct cfg_cluster *c);
/* Frees what cfg_load_cluster allocated; NULL-safe members. */
void cfg_cluster_free(struct cfg_cluster *c);
/* Whether two groups are the same (a reload cannot change it). */
bool cfg_cluster_same(const struct cfg_cluster *a,
                      const struct cfg_cluster *b);

#endif
