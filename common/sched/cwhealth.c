/* cwhealth.c - the health results instances send each other in cluster
 * mode (cwhealth.h). */
#include "cwhealth.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "health.h"

#define CWH_SEP          '|'
#define CWH_COUNT_DIGITS 10          /* UINT32_MAX fits in this */

static bool cwh_ok(const struct cwh_result *r)
{
    size_t n = strnlen(r->provider, CW_NAME_MAX);

    return r->state <= HEALTH_UNHEALTHY &&
           (r->consecutive_failures == 0 || r->consecutive_successes == 0) &&
           cw_instance_ok(r->origin) && n > 0 && n < CW_NAME_MAX;
}

int cwh_encode(char *out, size_t outlen, const struct cwh_result *r)
{
    int n;

    if (!cwh_ok(r))
        return -1;
    n = snprintf(out, outlen, "%c%c%u%c%u%c%u%c%s%c%s", CWH_KIND, CWH_SEP,
                 r->state, CWH_SEP, r->consecutive_failures, CWH_SEP,
                 r->consecutive_successes, CWH_SEP, r->origin, CWH_SEP,
                 r->provider);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* One count at *p, then the separator; *p moves past it. 0, or -1. */
static int cwh_count(const char **p, const char *end, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int digits = 0;

    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (++digits > CWH_COUNT_DIGITS)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    /* One spelling per number: a result reads back to its bytes. */
    if (digits == 0 || (digits > 1 && **p == '0') || v > UINT32_MAX ||
        s >= end || *s != CWH_SEP)
        return -1;
    *out = (uint32_t)v;
    *p = s + 1;
    return 0;
}

int cwh_decode(const char *buf, size_t len, struct cwh_result *r)
{
    const char *p = buf, *end = buf + len, *sep;
    size_t n;

    memset(r, 0, sizeof(*r));
    if (len < 2 || p[0] != CWH_KIND || p[1] != CWH_SEP)
        return -1;
    p += 2;
    if (cwh_count(&p, end, &r->state) < 0 ||
        cwh_count(&p, end, &r->consecutive_failures) < 0 ||
        cwh_count(&p, end, &r->consecutive_successes) < 0)
        return -1;
    sep = memchr(p, CWH_SEP, (size_t)(end - p));
    if (sep == NULL || (size_t)(sep - p) > CW_INSTANCE_MAX ||
        memchr(p, '\0', (size_t)(sep - p)) != NULL)
        return -1;
    memcpy(r->origin, p, (size_t)(sep - p));
    p = sep + 1;
    n = (size_t)(end - p);
    if (n == 0 || n >= CW_NAME_MAX || memchr(p, '\0', n) != NULL)
        return -1;
    memcpy(r->provider, p, n);
    return cwh_ok(r) ? 0 : -1;
}
