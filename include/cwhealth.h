/* cwhealth.h - what cluster mode's health part (master/clhealth.c) sends
 * between instances: a provider's health as the instance that probed it
 * counted it, encoded for the health channel and the key that keeps the
 * last one for instances that join later, and a strict decoder. Pure: no
 * I/O, unit-tested and fuzzed on its own. */
#ifndef RCC_CWHEALTH_H
#define RCC_CWHEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "clusterwire.h"

/* The message's first field, so that nothing else is taken for one. */
#define CWH_KIND          'H'
/* An encoded result: kind, three counts, origin, provider, separators. */
#define CWH_MSG_MAX       (CW_INSTANCE_MAX + CW_NAME_MAX + 48)

/* A probe's result as the prober's health_record left it. */
struct cwh_result {
    uint32_t state;                     /* enum health_kind */
    uint32_t consecutive_failures;
    uint32_t consecutive_successes;     /* one of the two is 0 */
    char origin[CW_INSTANCE_MAX + 1];   /* the instance that probed */
    char provider[CW_NAME_MAX];         /* the provider's name */
};

/* "H|STATE|FAILURES|SUCCESSES|ORIGIN|PROVIDER" into out (CWH_MSG_MAX is
 * enough). 0, or -1 when r is invalid (see cwh_decode) or does not
 * fit. */
int cwh_encode(char *out, size_t outlen, const struct cwh_result *r);
/* Reads len bytes (no NUL needed): the kind, a state of enum
 * health_kind, two counts in 0..UINT32_MAX of which one is 0 (decimal,
 * no leading zero: cwh_encode's spelling), a valid instance name, a
 * provider name of 1..CW_NAME_MAX-1 bytes without NUL (it may hold '|':
 * it is the last field). 0, or -1 for anything else (r is then
 * unspecified). */
int cwh_decode(const char *buf, size_t len, struct cwh_result *r);

#endif
