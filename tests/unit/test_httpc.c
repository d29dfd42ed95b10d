/* test_httpc.c - the worker's own HTTP client (worker/httpc.c) when
 * the answer comes: the request as it leaves (request line, Host, the
 * caller's header lines by libcurl's rules, Accept, Content-Length, a
 * body larger than a socket takes at once), each framing of the answer
 * (Content-Length, chunked in pieces with a trailer, up to the close,
 * none for 204; 1xx heads skipped, a head longer than the first read
 * buffer), kept-alive connections (reused, not after "Connection:
 * close" or extra bytes, closed by the server while idle, a request
 * sent again once only), two transfers at once, a pause from either
 * callback and the resume, and the URLs httpc_dest refuses. The server
 * and client are httpc_rig.c's; failures and abort are in
 * test_httpc_fail.c. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc_rig.h"
#include "unit.h"

#define TC_BIG_BODY    (4 * 1024 * 1024)  /* more than a socket takes */
#define TS_SMALL_RCVBUF 4096          /* so that the client must wait */
#define TC_LONG_PATH   600            /* over httpc's request line */
#define TC_SHORT_MS    2000           /* a wait that ends a test gone wrong */
#define TS_LONG_HEAD   (20 * 1024)    /* over httpc's first read buffer */
#define TS_LONG_LINES  40

static const char head_5[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain"
                             "\r\nContent-Length: 5\r\n\r\n";

/* Each request on one connection answered "hello" with a length. */
static void sv_hello(struct ts *s)
{
    int fd = ts_accept(s);

    while (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, head_5);
        ts_say(fd, "hello");
    }
    if (fd >= 0)
        close(fd);
}

static void test_content_length(void)
{
    tc_one(sv_hello);
    TC_OK("hello");
    CU_ASSERT_EQUAL(tc.dones, 1);
    CU_ASSERT_EQUAL(httpc_status(&tc.x), 200);
    CU_ASSERT_STRING_EQUAL(tc.head, head_5);
    CU_ASSERT_EQUAL(tc.lines, 4);
    CU_ASSERT_EQUAL(ts.accepts, 1);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

/* The request as sent, for headers and the URL's path. */
static void wire(const char *url_fmt, const char *const *lines,
                 const char *expect_fmt)
{
    char want[TS_REQ_MAX];

    CU_ASSERT_EQUAL_FATAL(ts_start(sv_hello, strchr(url_fmt, '[') != NULL),
                          0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc_open(url_fmt, ts.port, 0));
    for (; *lines != NULL; lines++)
        tc.headers = curl_slist_append(tc.headers, *lines);
    tc.req_body = "{\"a\":1}";
    tc.req_len = 7;
    tc_go(TC_TIMEOUT_MS);
    tc_close();
    ts_end();
    TC_OK("hello");
    snprintf(want, sizeof(want), expect_fmt, ts.port);
    CU_ASSERT_EQUAL(ts.req_len, strlen(want));
    CU_ASSERT_STRING_EQUAL(ts.req, want);
    if (strcmp(ts.req, want) != 0)
        fprintf(stderr, "\n    sent: %s\n    want: %s\n", ts.req, want);
}

static void test_request_on_the_wire(void)
{
    static const char *const curl_like[] = {
        "Content-Type: application/json", "Authorization: Bearer k",
        "Expect:", "X-Gone:", NULL
    };
    static const char *const accept[] = {
        "Accept: text/event-stream", "Expect:", NULL
    };
    static const char *const none[] = { NULL };

    wire("http://127.0.0.1:%d/v1/chat?x=1", curl_like,
         "POST /v1/chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
         "Content-Type: application/json\r\nAuthorization: Bearer k\r\n"
         "Accept: */*\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
    wire("http://127.0.0.1:%d", accept,
         "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
         "Accept: text/event-stream\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
    wire("http://127.0.0.1:%d?q=1", none,
         "POST /?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
         "Accept: */*\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
    wire("http://[::1]:%d/v1", none,
         "POST /v1 HTTP/1.1\r\nHost: [::1]:%d\r\n"
         "Accept: */*\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
}

/* libcurl sends no Accept when the caller's lines hold "Accept:". */
static void test_bug_accept_removed(void)
{
    static const char *const no_accept[] = { "Accept:", NULL };

    wire("http://127.0.0.1:%d/", no_accept,
         "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
         "Content-Length: 7\r\n\r\n{\"a\":1}");
}

/* The rest of libcurl's rules for the caller's lines: blanks after the
 * colon send nothing, "Name;" sends an empty value, a line with neither
 * a colon nor a semicolon is not sent. */
static void test_bug_header_rules(void)
{
    static const char *const lines[] = {
        "X-Blank:   ", "X-Empty;", "Accept;", "NoSeparator", "X-Semi; v",
        "X-Kept: v", NULL
    };

    wire("http://127.0.0.1:%d/", lines,
         "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
         "X-Empty:\r\nAccept:\r\nX-Kept: v\r\n"
         "Content-Length: 7\r\n\r\n{\"a\":1}");
}

/* A 4 MiB body to a server that reads slowly: it leaves in many
 * writes, waiting for room (the write event), whole. */
static void test_large_body(void)
{
    static char big[TC_BIG_BODY];
    uint64_t sum = 0;
    int rcvbuf = TS_SMALL_RCVBUF;

    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)('a' + i % 26);
        sum += (unsigned char)big[i];
    }
    TS_START(sv_hello);
    (void)setsockopt(ts.lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    TC_OPEN();
    tc.req_body = big;
    tc.req_len = sizeof(big);
    tc_go(TC_TIMEOUT_MS);
    tc_close();
    ts_end();
    TC_OK("hello");
    CU_ASSERT_EQUAL(ts.body_len, sizeof(big));
    CU_ASSERT_EQUAL(ts.body_sum, sum);
}

static void sv_chunked(struct ts *s)
{
    int fd = ts_accept(s);

    if (fd < 0 || !ts_request(s, fd))
        goto out;
    ts_say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhe");
    ts_wait(s, &s->got, 2);
    ts_say(fd, "llo\r\n1");
    ts_wait(s, &s->got, 5);
    ts_say(fd, "0;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n");
    /* Kept: the next request on it. */
    if (ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
out:
    if (fd >= 0)
        close(fd);
}

static void test_chunked(void)
{
    tc.plan.more = 1;
    tc_one(sv_chunked);
    TC_OK("hello0123456789abcdef");
    CU_ASSERT_EQUAL(tc.dones, 2);
    CU_ASSERT(tc.writes >= 3);
    CU_ASSERT_STRING_EQUAL(tc.head, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                           "chunked\r\n\r\nHTTP/1.1 200 OK\r\n"
                           "Content-Length: 0\r\n\r\n");
    CU_ASSERT_EQUAL(ts.accepts, 1);
    CU_ASSERT_EQUAL(ts.requests, 2);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

static void sv_to_close(struct ts *s)
{
    ts_answer(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                 "part1", 5, "part2");
}

static void test_close_delimited(void)
{
    tc_one(sv_to_close);
    TC_OK("part1part2");
    CU_ASSERT(tc.writes >= 2);
}

/* A 204, then a 100 Continue before a 200, on one connection. */
static void sv_no_body(struct ts *s)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
    if (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, "HTTP/1.1 100 Continue\r\nX-I: 1\r\n\r\n");
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    if (fd >= 0)
        close(fd);
}

static void test_204_and_100_continue(void)
{
    TS_START(sv_no_body);
    TC_OPEN();
    tc_go(TC_TIMEOUT_MS);
    CU_ASSERT_EQUAL(tc.result, CURLE_OK);
    CU_ASSERT_EQUAL(httpc_status(&tc.x), 204);
    CU_ASSERT_STRING_EQUAL(tc.head, "HTTP/1.1 204 No Content\r\nX-A: 1"
                           "\r\n\r\n");
    CU_ASSERT_EQUAL(tc.writes, 0);
    tc.head_len = 0;
    tc_go(TC_TIMEOUT_MS);
    tc_close();
    ts_end();
    TC_OK("ok");
    CU_ASSERT_EQUAL(httpc_status(&tc.x), 200);
    CU_ASSERT_STRING_EQUAL(tc.head, "HTTP/1.1 200 OK\r\nContent-Length: 2"
                           "\r\n\r\n");
    CU_ASSERT_EQUAL(ts.accepts, 1);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

static void test_keep_alive_reused(void)
{
    TS_START(sv_hello);
    TC_OPEN();
    tc_go(TC_TIMEOUT_MS);
    tc_go(TC_TIMEOUT_MS);    /* from the test */
    tc.plan.more = 1;
    tc_go(TC_TIMEOUT_MS);    /* and from done */
    tc_close();
    ts_end();
    TC_OK("hellohellohellohello");
    CU_ASSERT_EQUAL(tc.dones, 4);
    CU_ASSERT_EQUAL(ts.accepts, 1);
    CU_ASSERT_EQUAL(ts.requests, 4);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

/* Answers, closes (or resets, once the answer was taken) while the
 * connection is idle, answers on a new one. */
static bool idle_reset;

static void sv_idle_close(struct ts *s)
{
    int fd = ts_accept(s);
    struct linger now = { 1, 0 };

    if (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
        ts_wait(s, &s->got, 3);
        if (idle_reset)
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    }
    if (fd >= 0)
        close(fd);
    ts_mark(s);
    fd = ts_accept(s);
    if (fd >= 0 && ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
    if (fd >= 0)
        close(fd);
}

/* Reads the second request on the kept connection, closes it unanswered;
 * answers on a new one, or closes that unanswered too when told to. */
static void sv_drop_second(struct ts *s, bool drop_retry)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
    if (fd >= 0 && ts_request(s, fd)) {
        close(fd);
        fd = ts_accept(s);
        if (fd >= 0 && ts_request(s, fd) && !drop_retry)
            ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
    }
    if (fd >= 0)
        close(fd);
}

static void sv_drop_once(struct ts *s)
{
    sv_drop_second(s, false);
}

static void sv_drop_twice(struct ts *s)
{
    sv_drop_second(s, true);
}

/* When the next transfer starts: at once, once the server closed and
 * the loop had a turn to see it, or once it closed with no turn. */
enum { IDLE_NOW, IDLE_LOOP, IDLE_NO_LOOP };

static void idle_closed(ts_script *script, int when)
{
    TS_START(script);
    TC_OPEN();
    tc_go(TC_TIMEOUT_MS);
    CU_ASSERT_EQUAL(tc.result, CURLE_OK);
    if (when != IDLE_NOW)
        ts_wait(&ts, &ts.marks, 1);
    if (when == IDLE_LOOP)
        event_base_loop(tc.base, EVLOOP_NONBLOCK);
    tc_go(TC_TIMEOUT_MS);
    tc_close();
    ts_end();
    CU_ASSERT_EQUAL(ts.accepts, 2);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

/* Whether the close is seen while idle, as the request goes (a reset:
 * the send fails) or after (the read ends), the answer comes. */
static void test_idle_closed(void)
{
    for (int reset = 0; reset < 2; reset++) {
        idle_reset = reset != 0;
        idle_closed(sv_idle_close, IDLE_LOOP);
        TC_OK("onetwo");
        idle_closed(sv_idle_close, IDLE_NO_LOOP);
        TC_OK("onetwo");
    }
    idle_closed(sv_drop_once, IDLE_NOW);
    TC_OK("onetwo");
    CU_ASSERT_EQUAL(ts.requests, 3);
}

/* Sent again once, not twice: the new connection's silence counts. */
static void test_retried_once(void)
{
    idle_closed(sv_drop_twice, IDLE_NOW);
    CU_ASSERT_EQUAL(tc.result, CURLE_GOT_NOTHING);
    CU_ASSERT_EQUAL(tc.dones, 2);
    CU_ASSERT_EQUAL(ts.requests, 3);
}

/* Answers the first request; to the second, on the same connection, a
 * 100 Continue and then the close. */
static void sv_interim_then_close(struct ts *s)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
    if (fd >= 0 && ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    if (fd >= 0)
        close(fd);
}

/* The server answered (a 1xx) before it closed: the request is not
 * sent again, as libcurl would not. */
static void test_bug_interim_not_resent(void)
{
    TS_START(sv_interim_then_close);
    TC_OPEN();
    tc_go(TC_TIMEOUT_MS);
    CU_ASSERT_EQUAL(tc.result, CURLE_OK);
    /* Sent again, it would wait for an answer that never comes. */
    tc_go(TC_SHORT_MS);
    tc_close();
    ts_end();
    CU_ASSERT_EQUAL(tc.result, CURLE_GOT_NOTHING);
    CU_ASSERT_EQUAL(ts.accepts, 1);
    CU_ASSERT_EQUAL(ts.requests, 2);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

/* "hello" then " world" once the client took the first. */
static void sv_two_parts(struct ts *s)
{
    ts_answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello", 5,
              " world");
}

static void sv_chunked_pieces(struct ts *s)
{
    ts_answer(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n2", 5, "\r\n, \r\n5\r\nworld\r\n0\r\n\r\n");
}

/* The whole chunked body in one write: the pause comes at its end. */
static void sv_chunked_whole(struct ts *s)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        ts_wait(s, &s->marks, 1);
        ts_say(fd, "5\r\nhello\r\n0\r\n\r\n");
    }
    if (fd >= 0 && ts_request(s, fd))      /* the connection was kept */
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!");
    if (fd >= 0)
        close(fd);
}

/* The write callback pauses at the calls in mask (bit 0: the first),
 * each resumed from the loop. */
static void paused(ts_script *script, int more, unsigned mask,
                   const char *body)
{
    tc.plan.pause_calls = mask;
    tc.plan.more = more;
    tc.plan.mark_head = true;
    tc_one(script);
    TC_OK(body);
    CU_ASSERT_EQUAL(tc.again, 1);
    CU_ASSERT_EQUAL(tc.dones, more + 1);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

static void test_pause_resume(void)
{
    paused(sv_two_parts, 0, 1, "hello world");
    CU_ASSERT_STRING_EQUAL(tc.kept, "hello");
    paused(sv_chunked_pieces, 0, 1, "hello, world");
    CU_ASSERT_STRING_EQUAL(tc.kept, "hello");
    paused(sv_to_close, 0, 1, "part1part2");
    CU_ASSERT_STRING_EQUAL(tc.kept, "part1");
    /* Paused again as the kept bytes come back. */
    paused(sv_two_parts, 0, 3, "hello world");
    CU_ASSERT_STRING_EQUAL(tc.kept, "hello");
    paused(sv_chunked_pieces, 0, 3, "hello, world");
    CU_ASSERT_STRING_EQUAL(tc.kept, "hello");
    CU_ASSERT_EQUAL(tc.writes, 4);
    paused(sv_chunked_whole, 1, 1, "hello!");
    CU_ASSERT_STRING_EQUAL(tc.kept, "hello");
    CU_ASSERT_EQUAL(ts.accepts, 1);
}

/* A 1xx head, then a final one of 20 KiB: more than the first read
 * buffer holds, with the 1xx bytes before it. */
static void sv_long_head(struct ts *s)
{
    int fd = ts_accept(s);
    char head[TS_LONG_HEAD + 256];
    size_t n = 0;

    n += (size_t)sprintf(head, "HTTP/1.1 100 Continue\r\n\r\n"
                         "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < TS_LONG_LINES; i++)
        n += (size_t)sprintf(head + n, "X-Pad-%03d: %0*d\r\n", i,
                             TS_LONG_HEAD / TS_LONG_LINES - 13, i);
    n += (size_t)sprintf(head + n, "Content-Length: 2\r\n\r\nok");
    if (fd >= 0 && ts_request(s, fd))
        ts_send(fd, head, n);
    if (fd >= 0)
        close(fd);
}

static void test_long_head(void)
{
    tc_one(sv_long_head);
    TC_OK("ok");
    CU_ASSERT_EQUAL(tc.lines, TS_LONG_LINES + 3);
    /* Nothing to pause or resume once it ended. */
    httpc_pause(&tc.x, true);
    httpc_pause(&tc.x, false);
    CU_ASSERT_FALSE(httpc_running(&tc.x));
}

/* An answer after which the connection is not to be kept: "Connection:
 * close" (left open by the server), or bytes past the Content-Length.
 * The client closes it and makes the next request on a new one. */
static const char *const not_kept[] = {
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\none",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\noneXX",
};
static const char *not_kept_reply = "";

static void sv_not_kept(struct ts *s)
{
    int a = ts_accept(s), b = -1;

    if (a >= 0 && ts_request(s, a)) {
        ts_say(a, not_kept_reply);
        b = ts_accept(s);
    }
    if (b >= 0 && ts_request(s, b))
        ts_say(b, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
    s->eof = a >= 0 && ts_drain(a);
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
}

static void test_not_kept(void)
{
    for (size_t i = 0; i < sizeof(not_kept) / sizeof(*not_kept); i++) {
        not_kept_reply = not_kept[i];
        TS_START(sv_not_kept);
        TC_OPEN();
        tc_go(TC_TIMEOUT_MS);
        tc_go(TC_TIMEOUT_MS);
        tc_close();
        ts_end();
        TC_OK("onetwo");
        CU_ASSERT_EQUAL(ts.accepts, 2);
        CU_ASSERT_TRUE(ts.eof);
        CU_ASSERT_EQUAL(ts.extra, 0);
    }
}

/* Two requests at once on two connections; a third on either. */
static void sv_two_at_once(struct ts *s)
{
    int fds[2] = { ts_accept(s), ts_accept(s) };
    struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
    int served = 0;

    while (fds[0] >= 0 && fds[1] >= 0 && served < 3 &&
           poll(p, 2, TS_WAIT_MS) > 0) {
        for (int i = 0; i < 2; i++) {
            if (p[i].revents == 0)
                continue;
            if (!ts_request(s, fds[i]))
                goto out;
            ts_say(fds[i], "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!");
            served++;
        }
    }
out:
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static struct {
    struct httpc_xfer x;
    char err[CURL_ERROR_SIZE];
    int dones;
    CURLcode result;
    size_t got;
} other;

static size_t other_header(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)size;
    (void)arg;
    return n;
}

static size_t other_write(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)size;
    (void)arg;
    other.got += n;
    return n;
}

static void other_done(struct httpc_xfer *x, CURLcode result)
{
    (void)x;
    other.dones++;
    other.result = result;
    event_base_loopbreak(tc.base);
}

static void test_two_at_once(void)
{
    TS_START(sv_two_at_once);
    TC_OPEN();
    memset(&other, 0, sizeof(other));
    other.x.header_cb = other_header;
    other.x.write_cb = other_write;
    other.x.done = other_done;
    other.x.err = other.err;
    tc_start(TC_TIMEOUT_MS);
    httpc_start(tc.hc, tc.dest, &other.x, TC_TIMEOUT_MS);
    while ((tc.dones == 0 || other.dones == 0) && !tc.guard_fired)
        tc_run();
    tc_go(TC_TIMEOUT_MS);      /* on a kept one */
    tc_close();
    ts_end();
    TC_OK("!!");
    CU_ASSERT_EQUAL(other.result, CURLE_OK);
    CU_ASSERT_EQUAL(other.got, 1);
    CU_ASSERT_EQUAL(ts.accepts, 2);
    CU_ASSERT_EQUAL(ts.requests, 3);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

/* A caller that pauses from the header callback (as a slow client
 * makes the worker do): the body waits for the resume. */
static void test_pause_from_header(void)
{
    tc.plan.pause_head = 4;           /* the blank line */
    tc_one(sv_hello);
    TC_OK("hello");
    CU_ASSERT_STRING_EQUAL(tc.head, head_5);
}

static void test_dest_refused(void)
{
    struct event_base *base = event_base_new();
    struct httpc *hc = base != NULL ? httpc_new(base, TC_CONNECT_MS) : NULL;
    char url[TC_LONG_PATH + 32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(hc);
    CU_ASSERT_PTR_NULL(httpc_dest(hc, "https://127.0.0.1/"));
    CU_ASSERT_PTR_NULL(httpc_dest(hc, "http://localhost:8080/"));
    CU_ASSERT_PTR_NULL(httpc_dest(hc, "not a url"));
    CU_ASSERT_PTR_NULL(httpc_dest(hc, NULL));
    /* A path too long for the request line: libcurl's. */
    snprintf(url, sizeof(url), "http://127.0.0.1/%0*d", TC_LONG_PATH, 0);
    CU_ASSERT_PTR_NULL(httpc_dest(hc, url));
    CU_ASSERT_PTR_NOT_NULL(httpc_dest(hc, "http://127.0.0.1:9/v1"));
    httpc_free(hc);
    httpc_free(NULL);
    event_base_free(base);
}

static const CU_TestInfo httpc_tests[] = {
    { "a Content-Length answer", test_content_length },
    { "the request on the wire", test_request_on_the_wire },
    { UNIT_BUG_PREFIX "\"Accept:\" sends no Accept", test_bug_accept_removed },
    { UNIT_BUG_PREFIX "blank, \"Name;\" and bare header lines",
      test_bug_header_rules },
    { UNIT_BUG_PREFIX "answered with a 1xx: not sent again",
      test_bug_interim_not_resent },
    { "a 4 MiB request body", test_large_body },
    { "a chunked answer in pieces, trailer", test_chunked },
    { "an answer up to the close", test_close_delimited },
    { "204, then 100 Continue and 200", test_204_and_100_continue },
    { "keep-alive: one connection", test_keep_alive_reused },
    { "a 1xx, then a 20 KiB head", test_long_head },
    { "Connection: close, extra bytes: not kept", test_not_kept },
    { "a kept connection closed while idle", test_idle_closed },
    { "sent again once, not twice", test_retried_once },
    { "two at once: two connections", test_two_at_once },
    { "pause and resume", test_pause_resume },
    { "a pause from the header callback", test_pause_from_header },
    { "URLs httpc_dest refuses", test_dest_refused },
    CU_TEST_INFO_NULL
};

int register_httpc_tests(void)
{
    return unit_add_suite("httpc", httpc_tests);
}
