/* oauth_base.c - the API base rule for a token's resource_url. */
#include "oauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "jsonscan.h"
#include "oauth_json.h"
#include "privs.h"
#include "util.h"

/* ---- resource_url -------------------------------------------------- */

/* A loopback host, with or without a port: "localhost", "[::1]" or
 * "127." followed by digits and dots. Where a plain http:// API base may
 * point (the tokens never cross a network in clear). */
static bool oauth_loopback_host(const char *host, size_t len)
{
    const char *colon;
    size_t n;

    if (len >= 5 && memcmp(host, "[::1]", 5) == 0)
        return len == 5 || host[5] == ':';
    colon = memchr(host, ':', len);
    n = colon != NULL ? (size_t)(colon - host) : len;
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    if (n < 5 || memcmp(host, "127.", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++)
        if (!isdigit((unsigned char)host[i]) && host[i] != '.')
            return false;
    return true;
}

int oauth_api_base(const char *resource_url, char *out, size_t outlen)
{
    const char *s, *end, *p, *rest, *path;
    bool has_scheme, has_v1;
    int n;

    if (out == NULL || outlen == 0)
        return -1;
    out[0] = '\0';
    if (resource_url == NULL)
        return -1;
    s = resource_url;
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    for (p = s; p < end; p++)
        if (!oauth_printable((unsigned char)*p) || *p == ' ')
            return -1;              /* no blanks or controls inside a URL */
    for (p = s; p < end && isalpha((unsigned char)*p); p++)
        ;
    has_scheme = p > s && end - p >= 3 && memcmp(p, "://", 3) == 0;
    rest = has_scheme ? p + 3 : s;
    while (end > rest && end[-1] == '/')
        end--;
    if (end == rest)
        return -1;                  /* no host */
    path = memchr(rest, '/', (size_t)(end - rest));
    /* Our bearer token goes there: https, or http to this machine only. */
    if (has_scheme && !(p - s == 5 && strncasecmp(s, "https", 5) == 0) &&
        !(p - s == 4 && strncasecmp(s, "http", 4) == 0 &&
          oauth_loopback_host(rest, (size_t)((path ? path : end) - rest))))
        return -1;
    has_v1 = path != NULL && end - path >= 3 && memcmp(end - 3, "/v1", 3) == 0;
    n = snprintf(out, outlen, "%s%.*s%s", has_scheme ? "" : "https://",
                 (int)(end - s), s, has_v1 ? "" : "/v1");
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}
