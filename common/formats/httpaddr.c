/* httpaddr.c - which URLs the worker's own HTTP client serves, and
 * where they point (see httpaddr.h). */
#include "httpaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define HTTPADDR_PORT_DIGITS 5

static const char httpaddr_scheme[] = "http://";

/* The address (bracketed for IPv6) and port of the authority a[0..n). */
static int httpaddr_authority(const char *a, size_t n, struct httpaddr *out)
{
    const char *host = a, *colon;
    size_t hn;
    int family = AF_INET;
    long long port = HTTPADDR_DEFAULT_PORT;

    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);

        if (close == NULL)
            return -1;
        host = a + 1;
        hn = (size_t)(close - host);
        colon = close + 1 < a + n ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return -1;
        family = AF_INET6;
    } else {
        colon = memchr(a, ':', n);
        hn = colon != NULL ? (size_t)(colon - a) : n;
    }
    if (hn == 0 || hn >= sizeof(out->host))
        return -1;
    memcpy(out->host, host, hn);
    out->host[hn] = '\0';
    if (colon != NULL) {
        char num[HTTPADDR_PORT_DIGITS + 1];
        size_t pn = (size_t)(a + n - colon - 1);

        if (pn == 0 || pn > HTTPADDR_PORT_DIGITS)
            return -1;
        memcpy(num, colon + 1, pn);
        num[pn] = '\0';
        /* Digits only: libcurl refuses "+80" (strtoll would not). */
        if (strspn(num, "0123456789") != pn ||
            util_parse_int(num, 1, UINT16_MAX, &port) < 0)
            return -1;
    }
    out->port = (int)port;
    memset(&out->addr, 0, sizeof(out->addr));
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr;

        if (inet_pton(AF_INET6, out->host, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        out->addr_len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr;

        if (inet_pton(AF_INET, out->host, &s4->sin_addr) != 1)
            return -1;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        out->addr_len = sizeof(*s4);
    }
    return 0;
}

int httpaddr_parse(const char *url, struct httpaddr *out)
{
    const char *a, *path;
    size_t an;

    if (url == NULL ||
        strncasecmp(url, httpaddr_scheme, sizeof(httpaddr_scheme) - 1) != 0)
        return -1;
    a = url + sizeof(httpaddr_scheme) - 1;
    an = strcspn(a, "/?#");
    path = a + an;
    /* User info, a fragment, dot segments (libcurl removes them) or a
     * byte that would need escaping: libcurl's business. */
    if (memchr(a, '@', an) != NULL || strchr(path, '#') != NULL ||
        strstr(path, "/.") != NULL)
        return -1;
    for (const char *q = path; *q != '\0'; q++)
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f ||
            *q == '"' || *q == '<' || *q == '>' || *q == '\\' ||
            *q == '^' || *q == '`' || *q == '{' || *q == '|' || *q == '}')
            return -1;
    if (httpaddr_authority(a, an, out) < 0)
        return -1;
    out->path = path;
    return 0;
}
