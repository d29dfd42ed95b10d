/* httpaddr.h - the URLs the worker's own HTTP client (worker/httpc.c)
 * serves: plain http:// at an IPv4 or bracketed IPv6 address, an
 * optional port, a path and query a request line carries as they are.
 * Anything else (https, a host name, user info, a fragment, dot
 * segments, bytes that need escaping) is left to libcurl. Pure: no
 * allocation, no I/O. */
#ifndef RCC_HTTPADDR_H
#define RCC_HTTPADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define HTTPADDR_HOST_MAX 64       /* an address as text, with its NUL */
#define HTTPADDR_DEFAULT_PORT 80

struct httpaddr {
    struct sockaddr_storage addr;  /* family, address and port */
    socklen_t addr_len;
    char host[HTTPADDR_HOST_MAX];  /* the address as written, no brackets */
    int port;
    const char *path;              /* into the URL: "" or from its '/' or
                                      '?' to its end */
};

/* 0 with out filled when url is one of those URLs, else -1. */
int httpaddr_parse(const char *url, struct httpaddr *out);

#endif
