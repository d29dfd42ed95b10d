/* test_httpparse.c - the request-head parser (every limit and every
 * refusal, with its status), the response-head parser (framing,
 * keep-alive, status lines, limits, every prefix of a head) and the
 * chunked body decoder, fed whole and one byte at a time. */
#include <stdbool.h>
#include <stdio.h>
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

/* --- response heads (hp_parse_response) -------------------------------- */

#define HT_BIG_MAX_HEAD 8192       /* room for more than HP_MAX_HEADERS */

static enum hp_result ht_resp(const char *s, struct hp_response *r)
{
    return hp_parse_response(s, strlen(s), &ht_lim, r);
}

/* s is refused, and says why. */
static void ht_resp_refused(const char *s)
{
    struct hp_response r;

    CU_ASSERT_EQUAL(ht_resp(s, &r), HP_ERROR);
    CU_ASSERT_PTR_NOT_NULL(r.error);
}

/* Two parses of the same head at the same address agree field by field. */
static void ht_resp_same(const struct hp_response *a,
                         const struct hp_response *b)
{
    CU_ASSERT_EQUAL(a->status, b->status);
    CU_ASSERT_EQUAL(a->minor, b->minor);
    CU_ASSERT_EQUAL(a->header_count, b->header_count);
    CU_ASSERT_EQUAL(a->content_length, b->content_length);
    CU_ASSERT_EQUAL(a->chunked, b->chunked);
    CU_ASSERT_EQUAL(a->to_close, b->to_close);
    CU_ASSERT_EQUAL(a->no_body, b->no_body);
    CU_ASSERT_EQUAL(a->keep_alive, b->keep_alive);
    CU_ASSERT_EQUAL(a->head_len, b->head_len);
    if (a->header_count == b->header_count)
        CU_ASSERT_EQUAL(memcmp(a->headers, b->headers,
                               a->header_count * sizeof(a->headers[0])), 0);
}

static void test_resp_plain(void)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length:  2 \r\n\r\n{}";
    struct hp_response r;

    CU_ASSERT_EQUAL_FATAL(ht_resp(s, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.minor, 1);
    CU_ASSERT_EQUAL(r.content_length, 2);
    CU_ASSERT_FALSE(r.chunked);
    CU_ASSERT_FALSE(r.to_close);
    CU_ASSERT_FALSE(r.no_body);
    CU_ASSERT_TRUE(r.keep_alive);
    CU_ASSERT_PTR_NULL(r.error);
    /* The body's two bytes follow the head. */
    CU_ASSERT_EQUAL(r.head_len, strlen(s) - 2);
    CU_ASSERT_EQUAL_FATAL(r.header_count, 2);
    CU_ASSERT_EQUAL(r.headers[0].name, s + strlen("HTTP/1.1 200 OK\r\n"));
    CU_ASSERT_EQUAL(r.headers[0].name_len, strlen("Content-Type"));
    CU_ASSERT_EQUAL(r.headers[0].value_len, strlen("application/json"));
    CU_ASSERT_EQUAL(memcmp(r.headers[0].value, "application/json",
                           r.headers[0].value_len), 0);
    CU_ASSERT_EQUAL(r.headers[1].value_len, 1);
    CU_ASSERT_EQUAL(r.headers[1].value[0], '2');
}

/* Whether the connection may carry another request (RFC 9112 9.3). */
static void test_resp_keep_alive(void)
{
    static const struct {
        const char *head;
        bool keep_alive;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true },
        { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n"
          "\r\n", false },
        { "HTTP/1.1 200 OK\r\nConnection: x, CLOSE\r\nContent-Length: 0"
          "\r\n\r\n", false },
        { "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0"
          "\r\n\r\n", true },
        { "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false },
        { "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0"
          "\r\n\r\n", true },
        { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close"
          "\r\nContent-Length: 0\r\n\r\n", false },
        /* Kept alive by the header, but the body ends with the
         * connection. */
        { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false },
        { "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
          true },
        { "HTTP/1.1 304 Not Modified\r\n\r\n", true },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hp_response r;

        CU_ASSERT_EQUAL_FATAL(ht_resp(cases[i].head, &r), HP_DONE);
        CU_ASSERT_EQUAL(r.keep_alive, cases[i].keep_alive);
    }
}

static void test_resp_framing(void)
{
    struct hp_response r;

    /* Chunked, in any case. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                                  "Chunked\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_TRUE(r.chunked);
    CU_ASSERT_EQUAL(r.content_length, -1);
    CU_ASSERT_FALSE(r.to_close);
    CU_ASSERT_FALSE(r.no_body);
    CU_ASSERT_TRUE(r.keep_alive);
    /* Chunked with a Content-Length, in either order: chunked wins and
     * the connection is not kept. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n", &r),
                          HP_DONE);
    CU_ASSERT_TRUE(r.chunked);
    CU_ASSERT_EQUAL(r.content_length, -1);
    CU_ASSERT_FALSE(r.keep_alive);
    CU_ASSERT_FALSE(r.to_close);
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                                  "chunked\r\nContent-Length: 5\r\n\r\n", &r),
                          HP_DONE);
    CU_ASSERT_TRUE(r.chunked);
    CU_ASSERT_EQUAL(r.content_length, -1);
    CU_ASSERT_FALSE(r.keep_alive);
    /* No length: the body runs to the connection's end. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", &r),
                          HP_DONE);
    CU_ASSERT_TRUE(r.to_close);
    CU_ASSERT_FALSE(r.keep_alive);
    CU_ASSERT_FALSE(r.chunked);
    CU_ASSERT_EQUAL(r.content_length, -1);
    /* A status that is not 1xx, 204 or 304 has a body even when empty. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 205 Reset Content\r\n\r\n", &r),
                          HP_DONE);
    CU_ASSERT_TRUE(r.to_close);
    CU_ASSERT_FALSE(r.no_body);
    /* The same Content-Length twice is one length; the largest 18 digits
     * are taken. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
                                  "content-length: 7\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_EQUAL(r.content_length, 7);
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 OK\r\nContent-Length: "
                                  "999999999999999999\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_EQUAL(r.content_length, 999999999999999999LL);
}

/* 1xx, 204 and 304 end at the blank line, whatever their fields say. */
static void test_resp_no_body(void)
{
    static const char *const heads[] = {
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
        "HTTP/1.1 199 X\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    struct hp_response r;
    const char *two = "HTTP/1.1 100 Continue\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(ht_resp(heads[i], &r), HP_DONE);
        CU_ASSERT_TRUE(r.no_body);
        CU_ASSERT_FALSE(r.chunked);
        CU_ASSERT_FALSE(r.to_close);
        CU_ASSERT_TRUE(r.keep_alive);
        CU_ASSERT_EQUAL(r.head_len, strlen(heads[i]));
    }
    /* A 304's Content-Length is the representation's, not a body's: kept
     * as parsed, beside no_body. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 304 Not Modified\r\n"
                                  "Content-Length: 100\r\n\r\n", &r),
                          HP_DONE);
    CU_ASSERT_TRUE(r.no_body);
    CU_ASSERT_EQUAL(r.content_length, 100);
    /* An interim response, then the final one right after it. */
    CU_ASSERT_EQUAL_FATAL(ht_resp(two, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 100);
    CU_ASSERT_EQUAL(r.head_len, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    CU_ASSERT_EQUAL_FATAL(ht_resp(two + r.head_len, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.content_length, 0);
}

static void test_resp_status_line(void)
{
    struct hp_response r;

    /* No reason, an empty one, one with a tab and obs-text. */
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200\r\nContent-Length: 0\r\n"
                                  "\r\n", &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 200 \r\nContent-Length: 0\r\n"
                                  "\r\n", &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.0 599 a\tb \xe9t\xe9\r\n\r\n", &r),
                          HP_DONE);
    CU_ASSERT_EQUAL(r.status, 599);
    CU_ASSERT_EQUAL(r.minor, 0);
    CU_ASSERT_EQUAL_FATAL(ht_resp("HTTP/1.1 100\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 100);

    ht_resp_refused("HTTP/2 200 OK\r\n\r\n");
    ht_resp_refused("HTTP/2.0 200 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.2 200 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1 20\r\n\r\n");
    ht_resp_refused("HTTP/1.1\r\n\r\n");
    ht_resp_refused("HTTP/1.1 600 Nope\r\n\r\n");
    ht_resp_refused("HTTP/1.1 099 Nope\r\n\r\n");
    ht_resp_refused("HTTP/1.1 2000 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1 2x0 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1 abc OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1200 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1  200 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200OK\r\n\r\n");
    ht_resp_refused("http/1.1 200 OK\r\n\r\n");
    ht_resp_refused(" HTTP/1.1 200 OK\r\n\r\n");
    ht_resp_refused("\r\nHTTP/1.1 200 OK\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 O\x01K\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\x7f\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 O\rK\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\r\n\r\n");
    /* A NUL in the reason, which strlen would not see. */
    {
        static const char nul[] = "HTTP/1.1 200 O\0K\r\n\r\n";

        CU_ASSERT_EQUAL(hp_parse_response(nul, sizeof(nul) - 1, &ht_lim,
                                          &r), HP_ERROR);
        CU_ASSERT_PTR_NOT_NULL(r.error);
    }
}

static void test_resp_refusals(void)
{
    /* Content-Length: malformed, signed, too long, empty, a list, or
     * disagreeing with itself. */
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: "
                    "1000000000000000000\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                    "Content-Length: 2\r\n\r\n");
    ht_resp_refused("HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\n"
                    "Content-Length: 2\r\n\r\n");
    /* A coding other than chunked, or chunked twice. */
    ht_resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked"
                    "\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n"
                    "\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
    /* Chunked in HTTP/1.0, which has no such coding. */
    ht_resp_refused("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n");
    /* Header fields as for a request. */
    ht_resp_refused("HTTP/1.1 200 OK\r\nX : a\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n");
    ht_resp_refused("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n");
}

/* Every prefix of a head needs more; the whole head, alone or with its
 * body after it, gives the same fields. */
static void ht_resp_prefixes(const char *s, size_t head_len)
{
    struct hp_response whole, part;

    CU_ASSERT_EQUAL_FATAL(hp_parse_response(s, head_len, &ht_lim, &whole),
                          HP_DONE);
    CU_ASSERT_EQUAL(whole.head_len, head_len);
    for (size_t n = 0; n < head_len; n++) {
        CU_ASSERT_EQUAL(hp_parse_response(s, n, &ht_lim, &part),
                        HP_NEED_MORE);
        CU_ASSERT_PTR_NULL(part.error);
    }
    CU_ASSERT_EQUAL_FATAL(hp_parse_response(s, strlen(s), &ht_lim, &part),
                          HP_DONE);
    ht_resp_same(&whole, &part);
}

static void test_resp_incomplete(void)
{
    const char *crlf = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                       "Connection: keep-alive\r\n\r\nhello";
    const char *lf = "HTTP/1.0 404 Not Found\nConnection: keep-alive\n"
                     "Content-Length: 3\n\nabc";
    const char *mixed = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\r\n"
                        "\n5\r\nhello\r\n0\r\n\r\n";
    struct hp_response r;

    ht_resp_prefixes(crlf, strlen(crlf) - strlen("hello"));
    ht_resp_prefixes(lf, strlen(lf) - strlen("abc"));
    ht_resp_prefixes(mixed, strlen(mixed) - strlen("5\r\nhello\r\n0\r\n\r\n"));
    /* Bare LF line ends. */
    CU_ASSERT_EQUAL_FATAL(ht_resp(lf, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_EQUAL(r.minor, 0);
    CU_ASSERT_EQUAL(r.content_length, 3);
    CU_ASSERT_TRUE(r.keep_alive);
    CU_ASSERT_EQUAL(r.head_len, strlen(lf) - 3);
    CU_ASSERT_EQUAL_FATAL(ht_resp(mixed, &r), HP_DONE);
    CU_ASSERT_TRUE(r.chunked);
    CU_ASSERT_EQUAL(mixed[r.head_len], '5');
    /* A result parsed over an earlier one keeps nothing of it. */
    CU_ASSERT_EQUAL_FATAL(ht_resp(crlf, &r), HP_DONE);
    CU_ASSERT_FALSE(r.chunked);
    CU_ASSERT_EQUAL(r.content_length, 5);
    CU_ASSERT_EQUAL_FATAL(ht_resp(mixed, &r), HP_DONE);
    CU_ASSERT_EQUAL(ht_resp("HTTP/1.1 200 OK\r\nX", &r), HP_NEED_MORE);
    CU_ASSERT_FALSE(r.chunked);
    CU_ASSERT_EQUAL(r.header_count, 0);
    CU_ASSERT_EQUAL(r.head_len, 0);
    CU_ASSERT_PTR_NULL(r.error);
}

static void test_resp_limits(void)
{
    static const struct hp_limits big = {
        HT_MAX_LINE, HT_BIG_MAX_HEAD, HP_MAX_HEADERS + 1
    };
    char line[HT_MAX_LINE + 3], head[HT_BIG_MAX_HEAD];
    struct hp_response r;
    size_t n;

    /* A status line of exactly max_line: need more until it is whole,
     * also when cut between its CR and LF. */
    memset(line, 'a', sizeof(line));
    memcpy(line, "HTTP/1.1 200 ", strlen("HTTP/1.1 200 "));
    line[HT_MAX_LINE] = '\r';
    line[HT_MAX_LINE + 1] = '\n';
    line[HT_MAX_LINE + 2] = '\n';
    CU_ASSERT_EQUAL(hp_parse_response(line, HT_MAX_LINE, &ht_lim, &r),
                    HP_NEED_MORE);
    CU_ASSERT_EQUAL(hp_parse_response(line, HT_MAX_LINE + 1, &ht_lim, &r),
                    HP_NEED_MORE);
    CU_ASSERT_EQUAL(hp_parse_response(line, HT_MAX_LINE + 2, &ht_lim, &r),
                    HP_NEED_MORE);
    CU_ASSERT_EQUAL(hp_parse_response(line, HT_MAX_LINE + 3, &ht_lim, &r),
                    HP_DONE);
    /* One byte longer: refused as soon as it is seen, before its end. */
    line[HT_MAX_LINE] = 'a';
    CU_ASSERT_EQUAL(hp_parse_response(line, HT_MAX_LINE + 1, &ht_lim, &r),
                    HP_ERROR);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    CU_ASSERT_EQUAL(hp_parse_response(line, HT_MAX_LINE + 3, &ht_lim, &r),
                    HP_ERROR);
    /* max_headers fields pass, one more does not. */
    CU_ASSERT_EQUAL(ht_resp("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
                            "D: 4\r\n\r\n", &r), HP_DONE);
    CU_ASSERT_EQUAL(r.header_count, HT_MAX_HEADERS);
    ht_resp_refused("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
                    "E: 5\r\n\r\n");
    /* A max_headers above the array's size is the array's size. */
    n = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < HP_MAX_HEADERS; i++)
        n += (size_t)snprintf(head + n, sizeof(head) - n, "X: %d\r\n", i);
    CU_ASSERT_EQUAL(hp_parse_response(head, n, &big, &r), HP_NEED_MORE);
    memcpy(head + n, "\r\n", 2);
    CU_ASSERT_EQUAL(hp_parse_response(head, n + 2, &big, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.header_count, HP_MAX_HEADERS);
    memcpy(head + n, "Y: z\r\n\r\n", 8);
    CU_ASSERT_EQUAL(hp_parse_response(head, n + 8, &big, &r), HP_ERROR);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    /* A head over max_head, whole or still arriving. */
    n = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nX: ");
    memset(head + n, 'v', HT_MAX_HEAD);
    head[n + HT_MAX_HEAD] = '\0';
    ht_resp_refused(head);
    strcat(head, "\r\n\r\n");
    ht_resp_refused(head);
    /* A head of exactly max_head passes. */
    n = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 204 x\r\nX: ");
    memset(head + n, 'v', HT_MAX_HEAD - n - 4);
    memcpy(head + HT_MAX_HEAD - 4, "\r\n\r\n", 5);
    CU_ASSERT_EQUAL(ht_resp(head, &r), HP_DONE);
    CU_ASSERT_EQUAL(r.head_len, HT_MAX_HEAD);
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
    { "response: a plain 200", test_resp_plain },
    { "response: keep-alive by version and Connection",
      test_resp_keep_alive },
    { "response: chunked, Content-Length or to close", test_resp_framing },
    { "response: 1xx, 204, 304 have no body", test_resp_no_body },
    { "response: status lines", test_resp_status_line },
    { "response: bad framing and fields refused", test_resp_refusals },
    { "response: incomplete at every length", test_resp_incomplete },
    { "response: limits", test_resp_limits },
    CU_TEST_INFO_NULL
};

int register_httpparse_tests(void)
{
    return unit_add_suite("httpparse", httpparse_tests);
}
