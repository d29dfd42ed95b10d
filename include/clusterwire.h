/* clusterwire.h - the pure parts of cluster mode (master/cluster.c):
 * the names of the Redis keys and channel, the breaker messages
 * instances publish to each other (encoding and a strict decoder), an
 * instance's heartbeat record, and the reconnect back-off. No I/O, no
 * Redis: unit-tested and fuzzed on their own. */
#ifndef RCC_CLUSTERWIRE_H
#define RCC_CLUSTERWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest instance name and key prefix (bytes, without the NUL). */
#define CW_INSTANCE_MAX   64
#define CW_PREFIX_MAX     64
/* The longest target name a message carries (config.h's
 * CFG_TARGET_NAME_MAX, checked in master/cluster.c), NUL included. */
#define CW_NAME_MAX       256
/* A key: prefix, kind, ':', name. */
#define CW_KEY_MAX        (CW_PREFIX_MAX + 16 + CW_NAME_MAX)
/* An encoded message: kind, time, origin, name and separators. */
#define CW_MSG_MAX        (CW_INSTANCE_MAX + CW_NAME_MAX + 32)
/* The longest open period a message may carry: what a breaker can
 * reach (recovery_timeout_ms << 4) with room to spare; more is refused
 * as garbage. */
#define CW_OPEN_MAX_MS    (7LL * 24 * 3600 * 1000)

/* Reconnect back-off: first retry after CW_RETRY_BASE_MS, doubling up to
 * CW_RETRY_MAX_MS (a Redis that comes back is found within that). */
#define CW_RETRY_BASE_MS  100
#define CW_RETRY_MAX_MS   2000

/* What a breaker message says. */
enum cw_kind {
    CW_OPEN = 'O',            /* open for remaining_ms from receipt */
    CW_RESET = 'R',           /* reset by an operator: closed */
    CW_CLOSE = 'C'            /* the sender's half-open trial succeeded */
};

struct cw_msg {
    char kind;                /* enum cw_kind */
    int64_t remaining_ms;     /* CW_OPEN: > 0; CW_RESET, CW_CLOSE: 0 */
    char origin[CW_INSTANCE_MAX + 1];   /* the instance that sent it */
    char name[CW_NAME_MAX];   /* the target, "provider/model" */
};

/* One instance as its heartbeat describes it. */
struct cw_instance {
    char instance[CW_INSTANCE_MAX + 1];
    char host[CW_INSTANCE_MAX + 1];
    char listen[CW_NAME_MAX];
    int64_t pid;
    int64_t last_seen_ms;     /* wall clock, ms since the epoch */
    int64_t requests;
};

/* Whether s may be an instance name: 1..CW_INSTANCE_MAX bytes of
 * [A-Za-z0-9._:-]. */
bool cw_instance_ok(const char *s);
/* Whether s may be a key prefix: 0..CW_PREFIX_MAX printable bytes, no
 * space. */
bool cw_prefix_ok(const char *s);

/* "PREFIXkind:name" into out (CW_KEY_MAX is enough for valid parts).
 * 0, or -1 when it does not fit. */
int cw_key(char *out, size_t outlen, const char *prefix, const char *kind,
           const char *name);
/* A part's channel, "PREFIXpart" (e.g. "rcc:breakers"). 0, or -1. */
int cw_channel(char *out, size_t outlen, const char *prefix,
               const char *part);

/* "K|MS|ORIGIN|NAME" into out. 0, or -1 when msg is invalid or does not
 * fit. */
int cw_encode(char *out, size_t outlen, const struct cw_msg *msg);
/* Reads one message of len bytes (no NUL needed): a known kind, a time
 * in 1..CW_OPEN_MAX_MS for CW_OPEN and 0 for the others (decimal, no
 * leading zero: cw_encode's spelling, so a message that reads encodes
 * back to the same bytes), a valid origin, a
 * name of 1..CW_NAME_MAX-1 bytes with no NUL. 0, or -1 for anything
 * else (msg is then unspecified). */
int cw_decode(const char *buf, size_t len, struct cw_msg *msg);

/* The heartbeat's JSON, {"instance","pid","host","listen","last_seen_ms",
 * "requests"}; malloc'd, the caller frees; NULL out of memory. */
char *cw_instance_encode(const struct cw_instance *in);
/* Reads a heartbeat record (len bytes) back; fields that are missing or
 * of the wrong type are refused. 0, or -1. */
int cw_instance_decode(const char *buf, size_t len, struct cw_instance *in);

/* The wait before reconnect attempt n (0: the first after a loss). */
int64_t cw_backoff_ms(unsigned attempt);

#endif
