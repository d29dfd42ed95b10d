/* test_httpaddr.c - which URLs the worker's own HTTP client serves
 * (common/formats/httpaddr.c): plain http:// at an IPv4 or bracketed
 * IPv6 address with an optional port, and where each points; every
 * other URL is refused (left to libcurl). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "httpaddr.h"
#include "unit.h"

/* Where addr points: the address bytes and the port. */
static const void *where(const struct httpaddr *a, size_t *len, int *port)
{
    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->addr;

        *len = sizeof(s6->sin6_addr);
        *port = ntohs(s6->sin6_port);
        return &s6->sin6_addr;
    }
    *len = sizeof(((const struct sockaddr_in *)&a->addr)->sin_addr);
    *port = ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
    return &((const struct sockaddr_in *)&a->addr)->sin_addr;
}

static void test_accepted(void)
{
    static const struct {
        const char *url;
        int family;
        const char *host;   /* as written, and what addr holds */
        int port;
        const char *path;   /* the URL's tail */
    } ok[] = {
        { "http://127.0.0.1:8080/v1/chat?x=1", AF_INET, "127.0.0.1", 8080,
          "/v1/chat?x=1" },
        { "http://[::1]:9000/p", AF_INET6, "::1", 9000, "/p" },
        { "http://[::ffff:10.0.0.1]", AF_INET6, "::ffff:10.0.0.1", 80, "" },
        { "http://[::1]?q", AF_INET6, "::1", 80, "?q" },
        { "http://10.0.0.1/x", AF_INET, "10.0.0.1", 80, "/x" },
        { "HTTP://10.0.0.1", AF_INET, "10.0.0.1", 80, "" },
        { "http://10.0.0.1?q=1", AF_INET, "10.0.0.1", 80, "?q=1" },
        { "http://10.0.0.1:1/", AF_INET, "10.0.0.1", 1, "/" },
        { "http://10.0.0.1:65535?q=1&r=/a", AF_INET, "10.0.0.1", 65535,
          "?q=1&r=/a" },
        { "http://10.0.0.1:00081/a%20b", AF_INET, "10.0.0.1", 81, "/a%20b" },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct httpaddr a;
        unsigned char want[sizeof(struct in6_addr)];
        size_t len;
        int port;
        const void *ip;

        CU_ASSERT_EQUAL_FATAL(httpaddr_parse(ok[i].url, &a), 0);
        ip = where(&a, &len, &port);
        CU_ASSERT_EQUAL(a.addr.ss_family, ok[i].family);
        CU_ASSERT_EQUAL(a.addr_len, ok[i].family == AF_INET6 ?
                        sizeof(struct sockaddr_in6) :
                        sizeof(struct sockaddr_in));
        CU_ASSERT_STRING_EQUAL(a.host, ok[i].host);
        CU_ASSERT_EQUAL_FATAL(inet_pton(ok[i].family, ok[i].host, want), 1);
        CU_ASSERT_EQUAL(memcmp(ip, want, len), 0);
        CU_ASSERT_EQUAL(a.port, ok[i].port);
        CU_ASSERT_EQUAL(port, ok[i].port);
        /* Into the URL, not a copy. */
        CU_ASSERT_PTR_EQUAL(a.path, ok[i].url + strlen(ok[i].url) -
                            strlen(ok[i].path));
    }
}

static void refused(const char *const *urls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct httpaddr a;

        CU_ASSERT_EQUAL(httpaddr_parse(urls[i], &a), -1);
        if (httpaddr_parse(urls[i], &a) != -1)
            fprintf(stderr, "\n    accepted: %s\n", urls[i]);
    }
}

static void test_refused(void)
{
    static const char *const bad[] = {
        /* ports */
        "http://10.0.0.1:0/", "http://10.0.0.1:65536/",
        "http://10.0.0.1:8o/", "http://10.0.0.1:/", "http://10.0.0.1:",
        "http://10.0.0.1:123456/", "http://10.0.0.1:-1/",
        "http://[::1]:/", "http://[::1]x/", "http://[::1]:http/",
        /* not an address */
        "http://example.com/", "http://localhost:80/", "http://127.1/",
        "http://::1/", "http://[::1/", "http://[10.0.0.1]/", "http://[]/",
        "http:///x", "http://", "http://10.0.0.1.:80/",
        "http://[fe80::1%25eth0]/",
        /* not plain http:// */
        "https://10.0.0.1/", "ftp://10.0.0.1/", "http:/10.0.0.1/",
        "10.0.0.1:80/", "", " http://10.0.0.1/",
        /* user info, fragments, dot segments */
        "http://u:p@10.0.0.1/", "http://u@10.0.0.1/", "http://10.0.0.1/a#f",
        "http://10.0.0.1#f", "http://10.0.0.1/./a", "http://10.0.0.1/a/../b",
        "http://10.0.0.1/a/..", "http://10.0.0.1/.",
        /* bytes that need escaping */
        "http://10.0.0.1/a b", "http://10.0.0.1/a\tb", "http://10.0.0.1/\x7f",
        "http://10.0.0.1/\xc3\xa9", "http://10.0.0.1/a\"b", "http://10.0.0.1/{}",
        "http://10.0.0.1 /", "http://10.0.0.1/a\r\nX: y",
    };
    struct httpaddr a;

    refused(bad, sizeof(bad) / sizeof(bad[0]));
    CU_ASSERT_EQUAL(httpaddr_parse(NULL, &a), -1);
}

/* libcurl refuses a port that does not start with a digit; so must
 * this, or the URL would work here and fail when libcurl takes it. */
static void test_bug_signed_port(void)
{
    static const char *const bad[] = {
        "http://10.0.0.1:+80/", "http://[::1]:+8080/", "http://10.0.0.1:+1",
    };

    refused(bad, sizeof(bad) / sizeof(bad[0]));
}

static const CU_TestInfo httpaddr_tests[] = {
    { "IPv4, bracketed IPv6, ports and paths", test_accepted },
    { "refused URLs", test_refused },
    { UNIT_BUG_PREFIX "a port with a sign refused", test_bug_signed_port },
    CU_TEST_INFO_NULL
};

int register_httpaddr_tests(void)
{
    return unit_add_suite("httpaddr", httpaddr_tests);
}
