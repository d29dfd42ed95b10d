/* probe.h - the worker's active health probes (probe.c): a timer per
 * provider with a health_check, which claims the provider's probe lease
 * in the segment (health.h) and, when it wins the round, sends GET
 * {base_url}/models with the provider's credentials and counts the
 * outcome. */
#ifndef RCC_WORKER_PROBE_H
#define RCC_WORKER_PROBE_H

struct worker;

/* After provider_init (the OAuth state exists): a timer per provider
 * with a health_check, armed for its next due probe. 0, or -1 when out
 * of memory (probe_free undoes it). */
int probe_init(struct worker *w);
/* Stops the timers and takes probes in flight off the multi, before
 * provider_free and upstream_free. NULL-safe. */
void probe_free(struct worker *w);

#endif
