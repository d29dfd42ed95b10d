/* fuzz_httpaddr.c - libFuzzer target for the URLs the worker's own HTTP
 * client serves (httpaddr.c): the input, up to its first NUL, is the
 * URL. An accepted one points at an IPv4 or IPv6 address with the
 * family's length and a port 1-65535 (the same in the socket address),
 * names the address as written without brackets, has its path inside
 * the input with none of the bytes or pieces left to libcurl; parsing
 * it again gives the same, and so does the URL written back from the
 * parts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "httpaddr.h"

#define FUZZ_HA_URL_MAX (HTTPADDR_HOST_MAX + 16)

/* The address bytes and port of a, as inet_pton and ntohs see them. */
static void fuzz_ha_where(const struct httpaddr *a, const void **ip,
                          size_t *ip_len, int *port)
{
    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->addr;

        *ip = &s6->sin6_addr;
        *ip_len = sizeof(s6->sin6_addr);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->addr;

        *ip = &s4->sin_addr;
        *ip_len = sizeof(s4->sin_addr);
        *port = ntohs(s4->sin_port);
    }
}

/* b says what a says (both accepted). */
static bool fuzz_ha_same(const struct httpaddr *a, const struct httpaddr *b)
{
    const void *ia, *ib;
    size_t la, lb;
    int pa, pb;

    fuzz_ha_where(a, &ia, &la, &pa);
    fuzz_ha_where(b, &ib, &lb, &pb);
    return a->addr.ss_family == b->addr.ss_family &&
           a->addr_len == b->addr_len && la == lb &&
           memcmp(ia, ib, la) == 0 && pa == pb && a->port == b->port &&
           strcmp(a->host, b->host) == 0 && strcmp(a->path, b->path) == 0;
}

static void fuzz_ha_check(const char *url, const struct httpaddr *a)
{
    size_t len = strlen(url), host_len = strnlen(a->host, sizeof(a->host));
    unsigned char parsed[sizeof(struct in6_addr)];
    const void *ip;
    size_t ip_len;
    int port;
    bool v6 = a->addr.ss_family == AF_INET6;

    FUZZ_CHECK(strncasecmp(url, "http://", 7) == 0, "not http://");
    FUZZ_CHECK(a->port >= 1 && a->port <= 65535, "port %d", a->port);
    FUZZ_CHECK((a->addr.ss_family == AF_INET &&
                a->addr_len == sizeof(struct sockaddr_in)) ||
               (v6 && a->addr_len == sizeof(struct sockaddr_in6)),
               "family %d with length %u", a->addr.ss_family,
               (unsigned)a->addr_len);
    fuzz_ha_where(a, &ip, &ip_len, &port);
    FUZZ_CHECK(port == a->port, "socket port %d, port %d", port, a->port);
    FUZZ_CHECK(host_len > 0 && host_len < sizeof(a->host), "host length");
    FUZZ_CHECK(strpbrk(a->host, "[]") == NULL, "brackets in host %s",
               a->host);
    FUZZ_CHECK(inet_pton(a->addr.ss_family, a->host, parsed) == 1 &&
               memcmp(parsed, ip, ip_len) == 0,
               "host %s is not the address", a->host);
    /* The address stands in the URL as written (bracketed for IPv6). */
    FUZZ_CHECK(strncmp(url + 7 + v6, a->host, host_len) == 0,
               "host %s not in %s", a->host, url);
    FUZZ_CHECK(a->path >= url + 7 && a->path <= url + len &&
               a->path + strlen(a->path) == url + len,
               "path outside the URL");
    FUZZ_CHECK(a->path[0] == '\0' || a->path[0] == '/' || a->path[0] == '?',
               "path %s", a->path);
    FUZZ_CHECK(memchr(url, '@', (size_t)(a->path - url)) == NULL,
               "user info accepted");
    FUZZ_CHECK(strchr(a->path, '#') == NULL && strstr(a->path, "/.") == NULL,
               "fragment or dot segment in %s", a->path);
    for (const char *p = a->path; *p != '\0'; p++)
        FUZZ_CHECK((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f &&
                   strchr("\"<>\\^`{|}", *p) == NULL,
                   "byte 0x%02x in the path", (unsigned char)*p);
}

/* The URL written back from a's parts reads the same. */
static void fuzz_ha_rewrite(const struct httpaddr *a)
{
    size_t plen = strlen(a->path);
    char *url = malloc(FUZZ_HA_URL_MAX + plen);
    bool v6 = a->addr.ss_family == AF_INET6;
    struct httpaddr again;

    FUZZ_CHECK(url != NULL, "out of memory");
    snprintf(url, FUZZ_HA_URL_MAX + plen, "http://%s%s%s:%d%s",
             v6 ? "[" : "", a->host, v6 ? "]" : "", a->port, a->path);
    memset(&again, 0x5a, sizeof(again));
    FUZZ_CHECK(httpaddr_parse(url, &again) == 0, "%s refused", url);
    FUZZ_CHECK(fuzz_ha_same(a, &again), "%s reads differently", url);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    struct httpaddr a, b;
    int rc;

    if (url == NULL)
        abort();
    memcpy(url, data, size);
    url[size] = '\0';
    memset(&a, 0, sizeof(a));
    memset(&b, 0xa5, sizeof(b));
    rc = httpaddr_parse(url, &a);
    FUZZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
    FUZZ_CHECK(httpaddr_parse(url, &b) == rc, "a second parse disagrees");
    if (rc == 0) {
        FUZZ_CHECK(fuzz_ha_same(&a, &b), "a second parse reads differently");
        fuzz_ha_check(url, &a);
        fuzz_ha_rewrite(&a);
    }
    free(url);
    return 0;
}
