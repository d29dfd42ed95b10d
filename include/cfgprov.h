/* cfgprov.h - reads and checks one entry of the config's providers list,
 * by the rules of its kind's descriptor (provkind.h): which auth modes
 * it takes, its defaults (base_url, OAuth files and endpoints), what it
 * requires. Used by config.c only. */
#ifndef RCC_CFGPROV_H
#define RCC_CFGPROV_H

#include "cfgread.h"
#include "config.h"

#define CFGPROV_MAX_LATENCY_MS 600000   /* mock's latency_ms */
/* health_check: its defaults and bounds. */
#define CFGPROV_HEALTH_INTERVAL_MS     10000
#define CFGPROV_HEALTH_TIMEOUT_MS      2000
#define CFGPROV_HEALTH_UNHEALTHY_AFTER 2
#define CFGPROV_HEALTH_HEALTHY_AFTER   1
#define CFGPROV_HEALTH_MIN_MS          10
#define CFGPROV_HEALTH_MAX_MS          3600000
#define CFGPROV_HEALTH_MAX_COUNT       100

/* Fills p (zeroed by the caller; its strings are cfg_free's) from s,
 * whose members must be among keys (config.c's list of them); the
 * providers before it are cfg->providers[0..provider_count). 0, or -1
 * after cfg_fail. */
int cfgprov_load(struct cfg_loader *ld, const config_setting_t *s,
                 const char *const *keys, struct cfg *cfg,
                 struct cfg_provider *p);

#endif
