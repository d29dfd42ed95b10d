/* test_httpparse.c - the request-head parser (every limit and every
 * refusal, with its status) and the chunked body decoder, fed whole and
 * one byte at a time. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "httpparse.h"
#include "unit.h"

#define HT_MAX_LINE    64
#define HT_MAX_HEAD    256
#define HT_MAX_HEADERS 4
#define HT_MAX_BODY    1000

static const struct hp_limits ht_lim = {
    HT_MAX_LINE, HT_MAX_HEAD, HT_MAX_HEADERS
};

static enum hp_result ht_parse(const char *s, struct hp_request *r)
{
    return hp_parse_head(s, strlen(s), &ht_lim, r);
}

static int ht_status(const char *s)
{
    struct hp_request r;

    return ht_parse(s, &r) == HP_ERROR ? r.error_status : 0;
}

static void test_simple_get(void)
{
    const char *s = "GET /v1/models?x=1 HTTP/1.1\r\nHost: a\r\n"
                    "X-Thing:  v a l  \r\n\r\nrest";
    struct hp_request r;
    const struct hp_header *h;

    CU_ASSERT_EQUAL_FATAL(ht_parse(s, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.method, HP_GET);
    CU_ASSERT_EQUAL(r.target_len, 14);
    CU_ASSERT_EQUAL(strncmp(r.target, "/v1/models?x=1", 14), 0);
    CU_ASSERT_EQUAL(r.minor, 1);
    CU_ASSERT_EQUAL(r.header_count, 2);
    CU_ASSERT_EQUAL(r.content_length, -1);
    CU_ASSERT_TRUE(r.keep_alive);
    CU_ASSERT_EQUAL(r.head_len, strlen(s) - 4);
    h = hp_find(&r, "x-THING");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(h->value_len, 5);
    CU_ASSERT_EQUAL(strncmp(h->value, "v a l", 5), 0);
    CU_ASSERT_PTR_NULL(hp_find(&r, "absent"));
}

static void test_incomplete_at_every_length(void)
{
    const char *s = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
    struct hp_request r;

    for (size_t n = 0; n < strlen(s); n++)
        CU_ASSERT_EQUAL(hp_parse_head(s, n, &ht_lim, &r), HP_NEED_MORE);
    CU_ASSERT_EQUAL(hp_parse_head(s, strlen(s), &ht_lim, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.content_length, 3);
    CU_ASSERT_EQUAL(r.method, HP_POST);
}

static void test_versions_and_connection(void)
{
    struct hp_request r;

    CU_ASSERT_EQUAL(ht_parse("GET / HTTP/1.0\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_FALSE(r.keep_alive);
    CU_ASSERT_EQUAL(ht_parse("GET / HTTP/1.0\r\nConnection: Keep-Alive"
                             "\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_TRUE(r.keep_alive);
    CU_ASSERT_EQUAL(ht_parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: "
                             "foo, close\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_FALSE(r.keep_alive);
    CU_ASSERT_EQUAL(ht_parse("\r\n\r\nGET / HTTP/1.1\nHost: a\n\n", &r),
                    HP_DONE);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/2.0\r\n\r\n"), 505);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.2\r\n\r\n"), 505);
    CU_ASSERT_EQUAL(ht_status("GET / HTTX/1.1\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\n\r\n"), 400); /* Host */
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
                              "\r\n"), 400);
}

static void test_refusals(void)
{
    CU_ASSERT_EQUAL(ht_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
                    400);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"),
                    400);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nHost: \x7f\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.1\r\nHost: a\r\n"
                              "Content-Length: 1x\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.1\r\nHost: a\r\n"
                              "Content-Length: -1\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.1\r\nHost: a\r\n"
                              "Content-Length: 1\r\nContent-Length: 2\r\n"
                              "\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.1\r\nHost: a\r\n"
                              "Content-Length: 1\r\nTransfer-Encoding: "
                              "chunked\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.1\r\nHost: a\r\n"
                              "Transfer-Encoding: gzip\r\n\r\n"), 501);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.0\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"), 400);
    CU_ASSERT_EQUAL(ht_status("POST / HTTP/1.1\r\nHost: a\r\n"
                              "Expect: 200-ok\r\n\r\n"), 417);
}

static void test_limits(void)
{
    char line[HT_MAX_LINE * 2], head[HT_MAX_HEAD * 2];
    struct hp_request r;

    /* A request line over the limit: 414 as soon as it is seen, even
     * before its end arrives. */
    memset(line, 'a', sizeof(line));
    memcpy(line, "GET /", 5);
    CU_ASSERT_EQUAL(hp_parse_head(line, sizeof(line), &ht_lim, &r),
                    HP_ERROR);
    CU_ASSERT_EQUAL(r.error_status, 414);
    /* A request line exactly at the limit, cut between its CR and LF,
     * is not too long yet (found by fuzzing). */
    {
        char exact[HT_MAX_LINE + 3];

        memset(exact, 'a', HT_MAX_LINE);
        memcpy(exact, "GET /", 5);
        memcpy(exact + HT_MAX_LINE - 9, " HTTP/1.0", 9);
        exact[HT_MAX_LINE] = '\r';
        CU_ASSERT_EQUAL(hp_parse_head(exact, HT_MAX_LINE + 1, &ht_lim, &r),
                        HP_NEED_MORE);
        exact[HT_MAX_LINE + 1] = '\n';
        exact[HT_MAX_LINE + 2] = '\0';
        CU_ASSERT_EQUAL(hp_parse_head(exact, HT_MAX_LINE + 2, &ht_lim, &r),
                        HP_NEED_MORE);
    }
    /* Too many header fields. */
    CU_ASSERT_EQUAL(ht_status("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2"
                              "\r\nC: 3\r\nD: 4\r\n\r\n"), 431);
    /* A head over the limit, complete or not. */
    strcpy(head, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(head + strlen(head), 'v', HT_MAX_HEAD);
    head[strlen("GET / HTTP/1.1\r\nHost: a\r\nX: ") + HT_MAX_HEAD] = '\0';
    CU_ASSERT_EQUAL(ht_status(head), 431);
    strcat(head, "\r\n\r\n");
    CU_ASSERT_EQUAL(ht_status(head), 431);
}

static void test_expect_continue(void)
{
    struct hp_request r;

    CU_ASSERT_EQUAL(ht_parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: "
                             "100-Continue\r\nContent-Length: 5\r\n\r\n",
                             &r), HP_DONE);
    CU_ASSERT_TRUE(r.expect_continue);
}

/* Decodes s fed in pieces of step bytes; the body into out. */
static enum hp_result ht_chunked(const char *s, size_t step, char *out,
                                 size_t *out_len, uint64_t max)
{
    struct hp_chunked c;
    size_t len = strlen(s), pos = 0;
    enum hp_result r = HP_NEED_MORE;

    hp_chunked_init(&c);
    *out_len = 0;
    while (pos < len && r == HP_NEED_MORE) {
        size_t n = len - pos < step ? len - pos : step, used, made;

        r = hp_chunked_decode(&c, s + pos, n, out + *out_len, &used, &made,
                              max);
        pos += used;
        *out_len += made;
    }
    return r;
}

static void test_chunked(void)
{
    const char *s = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n"
                    "\r\n";
    char out[64];
    size_t n;

    for (size_t step = 1; step <= strlen(s); step++) {
        CU_ASSERT_EQUAL(ht_chunked(s, step, out, &n, HT_MAX_BODY), HP_DONE);
        CU_ASSERT_EQUAL(n, 11);
        CU_ASSERT_EQUAL(memcmp(out, "hello world", 11), 0);
    }
    CU_ASSERT_EQUAL(ht_chunked("A\nabcdefghij\n0\n\n", 3, out, &n,
                               HT_MAX_BODY), HP_DONE);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_EQUAL(ht_chunked("5\r\nhel", 64, out, &n, HT_MAX_BODY),
                    HP_NEED_MORE);
}

static void test_chunked_refusals(void)
{
    char out[64];
    size_t n;

    CU_ASSERT_EQUAL(ht_chunked("x\r\n", 64, out, &n, HT_MAX_BODY), HP_ERROR);
    CU_ASSERT_EQUAL(ht_chunked("\r\n", 64, out, &n, HT_MAX_BODY), HP_ERROR);
    CU_ASSERT_EQUAL(ht_chunked("3\r\nabcX\r\n", 64, out, &n, HT_MAX_BODY),
                    HP_ERROR);
    CU_ASSERT_EQUAL(ht_chunked("fffffffffffffffff\r\n", 64, out, &n,
                               UINT64_MAX), HP_ERROR);
    /* Beyond the body limit, announced or accumulated. */
    CU_ASSERT_EQUAL(ht_chunked("3e9\r\n", 64, out, &n, HT_MAX_BODY),
                    HP_ERROR);
    CU_ASSERT_EQUAL(ht_chunked("3\r\nabc\r\n3\r\ndef\r\n", 64, out, &n, 5),
                    HP_ERROR);
    CU_ASSERT_EQUAL(ht_chunked("0\r\n\rX", 64, out, &n, HT_MAX_BODY),
                    HP_ERROR);
}

/* The target of a head that is incomplete or refused, for the door a
 * refusal is dressed by. */
static void test_peek_target(void)
{
    static const struct { const char *in; const char *target; } cases[] = {
        { "POST /v1/messages HTTP/1.1\r\nBad\r\n\r\n", "/v1/messages" },
        { "\r\nPOST /v1/messages/x?q=1 HTTP/1.1\r\n", "/v1/messages/x?q=1" },
        { "GET /v1/messages?aaaa", "/v1/messages?aaaa" },  /* line cut */
        { "POST /v1/mess", "/v1/mess" },
        { "POST ", "" },
        { "POST", NULL },
        { "", NULL },
        { "PO(ST /x HTTP/1.1\r\n", NULL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = (const char *)1;
        size_t n = hp_peek_target(cases[i].in, strlen(cases[i].in), &t);

        if (cases[i].target == NULL) {
            CU_ASSERT_EQUAL(n, 0);
            CU_ASSERT_PTR_NULL(t);
        } else {
            CU_ASSERT_EQUAL(n, strlen(cases[i].target));
            CU_ASSERT_PTR_NOT_NULL_FATAL(t);
            CU_ASSERT_EQUAL(memcmp(t, cases[i].target, n), 0);
        }
    }
}

static const CU_TestInfo httpparse_tests[] = {
    { "peek at a refused head's target", test_peek_target },
    { "a simple GET", test_simple_get },
    { "incomplete at every length", test_incomplete_at_every_length },
    { "versions and Connection", test_versions_and_connection },
    { "malformed heads refused", test_refusals },
    { "limits: 414 and 431", test_limits },
    { "Expect: 100-continue", test_expect_continue },
    { "chunked bodies in any split", test_chunked },
    { "malformed chunked bodies refused", test_chunked_refusals },
    CU_TEST_INFO_NULL
};

int register_httpparse_tests(void)
{
    return unit_add_suite("httpparse", httpparse_tests);
}
