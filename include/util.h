/* util.h - small helpers every process uses: clocks, bounded string
 * copies, request ids. No state lives here. */
#ifndef RCC_UTIL_H
#define RCC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/time.h>

#define UTIL_REQUEST_ID_MAX 64          /* bytes, including the NUL */

/* Milliseconds on the monotonic clock (deadlines, latencies). */
int64_t util_now_ms(void);
/* Microseconds on the same clock (a request's stages). */
int64_t util_now_us(void);
/* Milliseconds since the epoch (timestamps shown to people). */
int64_t util_wall_ms(void);
/* A duration in milliseconds (>= 0) as the timeval libevent takes. */
struct timeval util_ms_to_tv(int64_t ms);

/* The one policy for running out of memory, in every process: a daemon
 * that cannot allocate a few bytes cannot keep its promises to the
 * requests it holds, so it says what failed on stderr and aborts (the
 * master replaces a worker that died and runs its untouched jobs again;
 * the service manager restarts a master). Never returns. */
void util_oom(const char *what) __attribute__((noreturn));
/* rc is a libevent-style result (0 ok, -1 out of memory): dies through
 * util_oom when it is not 0. */
#define UTIL_MUST(rc, what) \
    do { if ((rc) != 0) util_oom(what); } while (0)

/* Copy src into dst[size] and NUL-terminate; returns -1 when truncated. */
int util_strlcpy(char *dst, const char *src, size_t size);

/* Parses a whole decimal integer in [min, max]; -1 on anything else. */
int util_parse_int(const char *s, long long min, long long max,
                   long long *out);

/* A request id is kept when it is 1..63 bytes of [A-Za-z0-9._:-]. */
bool util_request_id_valid(const char *id);

/* Writes "req-" and 16 hex digits made from prefix and counter. */
void util_request_id_make(char *out, size_t size, uint64_t prefix,
                          uint64_t counter);

struct event_base;
/* An event base whose epoll backend batches descriptor changes made in
 * one loop turn (a disable and re-enable cost no system call). The caller
 * frees it with event_base_free(). */
struct event_base *util_event_base_new(void);

/* Fills buf with len cryptographically random bytes; 0 or -1. */
int util_random_bytes(void *buf, size_t len);

#endif
