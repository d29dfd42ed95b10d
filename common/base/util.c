/* util.c - clocks, bounded string helpers and request ids shared by the
 * master, the workers and the tools. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#define UTIL_MS_PER_S    1000LL
#define UTIL_NS_PER_MS   1000000LL
#define UTIL_US_PER_S    1000000LL
#define UTIL_NS_PER_US   1000LL

static int64_t util_clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * UTIL_MS_PER_S + ts.tv_nsec / UTIL_NS_PER_MS;
}

struct timeval util_ms_to_tv(int64_t ms)
{
    struct timeval tv;

    if (ms < 0)
        ms = 0;
    tv.tv_sec = (time_t)(ms / UTIL_MS_PER_S);
    tv.tv_usec = (suseconds_t)((ms % UTIL_MS_PER_S) * (UTIL_US_PER_S /
                                                       UTIL_MS_PER_S));
    return tv;
}

void util_oom(const char *what)
{
    static const char head[] = "pipelined: out of memory: ";
    /* write(2), not stdio: nothing here may allocate. */
    ssize_t rc = write(STDERR_FILENO, head, sizeof(head) - 1);

    rc += write(STDERR_FILENO, what, strlen(what));
    rc += write(STDERR_FILENO, "\n", 1);
    (void)rc;
    abort();
}

int64_t util_now_ms(void)
{
    return util_clock_ms(CLOCK_MONOTONIC);
}

int64_t util_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * UTIL_US_PER_S + ts.tv_nsec / UTIL_NS_PER_US;
}

int64_t util_wall_ms(void)
{
    return util_clock_ms(CLOCK_REALTIME);
}

int util_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);

    if (size == 0)
        return -1;
    if (len >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

int util_parse_int(const char *s, long long min, long long max,
                   long long *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

bool util_request_id_valid(const char *id)
{
    size_t n = 0;

    if (id == NULL)
        return false;
    for (; id[n] != '\0'; n++) {
        unsigned char c = (unsigned char)id[n];

        if (n >= UTIL_REQUEST_ID_MAX - 1)
            return false;
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return false;
    }
    return n > 0;
}

#define UTIL_ID_HEX_DIGITS 16    /* a uint64_t in hex */

void util_request_id_make(char *out, size_t size, uint64_t prefix,
                          uint64_t counter)
{
    /* Mix the counter so consecutive ids do not look alike in logs. */
    uint64_t x = prefix ^ (counter * 0x9E3779B97F4A7C15ULL);
    /* "req-%016llx" written by hand: made for every request. */
    static const char hex[] = "0123456789abcdef";
    char id[sizeof("req-") - 1 + UTIL_ID_HEX_DIGITS + 1] = "req-";

    for (int i = UTIL_ID_HEX_DIGITS - 1; i >= 0; i--) {
        id[sizeof("req-") - 1 + (size_t)i] = hex[x & 0xf];
        x >>= 4;
    }
    id[sizeof(id) - 1] = '\0';
    if (size > 0)
        util_strlcpy(out, id, size);
}

int util_random_bytes(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

struct event_base *util_event_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}
