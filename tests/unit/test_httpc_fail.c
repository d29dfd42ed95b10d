/* test_httpc_fail.c - the worker's own HTTP client (worker/httpc.c)
 * when the transfer fails, each with the CURLcode libcurl would give and
 * told through done from the loop, never from inside httpc_start:
 * answers that are cut short, malformed or reset, a refused or silent
 * connect, no socket at all, the deadline, callbacks that refuse bytes,
 * an abort (no done at all), a response head over 64 KiB. The server
 * and client are httpc_rig.c's. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc_rig.h"
#include "unit.h"

#define TC_SHORT_MS    200          /* a deadline meant to pass */
#define TC_CONNECT_SHORT_MS 100     /* a connect timeout meant to pass */
#define TS_BIG_HEAD    (70 * 1024)  /* over httpc's 64 KiB */
#define TS_PAD_LINE    1000

/* What the server answers and how it ends, and what the client says. */
static const struct bad_reply {
    const char *reply;
    enum { BR_CLOSE, BR_RESET, BR_WAIT } end;  /* BR_WAIT: for the client */
    CURLcode code;
    const char *err;               /* in the message */
    const char *body;              /* handed over first; NULL: not checked */
} bad_replies[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd", BR_CLOSE,
      CURLE_PARTIAL_FILE, "with 6 bytes remaining to read", "abcd" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
      BR_CLOSE, CURLE_PARTIAL_FILE, "outstanding read data", "hel" },
    { "HTTP/1.1 200 OK\r\nContent-", BR_CLOSE, CURLE_RECV_ERROR,
      "in the middle of the response head", "" },
    { "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", BR_WAIT,
      CURLE_WEIRD_SERVER_REPLY, "malformed status line", "" },
    { "SSH-2.0-OpenSSH_9.2\r\n\r\n", BR_WAIT, CURLE_WEIRD_SERVER_REPLY,
      "malformed", "" },
    { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", BR_WAIT,
      CURLE_WEIRD_SERVER_REPLY, "switched protocols", "" },
    { "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", BR_WAIT,
      CURLE_WEIRD_SERVER_REPLY, "bad Content-Length", "" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", BR_WAIT,
      CURLE_WEIRD_SERVER_REPLY, "unsupported Transfer-Encoding", "" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX",
      BR_WAIT, CURLE_RECV_ERROR, "malformed chunked body", NULL },
    { "", BR_RESET, CURLE_RECV_ERROR, "Recv failure: Connection reset", "" },
    { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd", BR_RESET,
      CURLE_RECV_ERROR, "Recv failure: Connection reset", "abcd" },
};

static const struct bad_reply *bad;

static void sv_bad(struct ts *s)
{
    int fd = ts_accept(s);
    struct linger now = { 1, 0 };

    if (fd < 0)
        return;
    if (ts_request(s, fd)) {
        ts_say(fd, bad->reply);
        if (bad->end == BR_WAIT)
            s->eof = ts_drain(fd);
        /* A reset once the client has what was sent. */
        ts_wait(s, &s->got, bad->body != NULL ? strlen(bad->body) : 0);
        if (bad->end == BR_RESET)
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    }
    close(fd);
}

static void test_bad_replies(void)
{
    for (size_t i = 0; i < sizeof(bad_replies) / sizeof(*bad_replies); i++) {
        bad = &bad_replies[i];
        tc_one(sv_bad);
        CU_ASSERT_EQUAL(tc.result, bad->code);
        CU_ASSERT_PTR_NOT_NULL(strstr(tc.err, bad->err));
        if (bad->body != NULL)
            CU_ASSERT_STRING_EQUAL(tc.body, bad->body);
        CU_ASSERT_EQUAL(tc.dones, 1);
        CU_ASSERT_EQUAL(ts.accepts, 1);
        CU_ASSERT_EQUAL(ts.extra, 0);
        if (bad->end == BR_WAIT)
            CU_ASSERT_TRUE(ts.eof);
        if (tc.result != bad->code || strstr(tc.err, bad->err) == NULL)
            fprintf(stderr, "\n    reply %zu: %d %s\n", i, tc.result, tc.err);
    }
}

static void sv_silent_close(struct ts *s)
{
    ts_answer(s, "", 0, NULL);
}

static void test_got_nothing(void)
{
    tc_one(sv_silent_close);
    CU_ASSERT_EQUAL(tc.result, CURLE_GOT_NOTHING);
    CU_ASSERT_STRING_EQUAL(tc.err, "Empty reply from server");
    CU_ASSERT_EQUAL(tc.dones, 1);
    CU_ASSERT_EQUAL(tc.lines, 0);
    CU_ASSERT_EQUAL(ts.accepts, 1);
    CU_ASSERT_EQUAL(ts.extra, 0);
}

/* Starts the transfer, which fails to connect: told from the loop, not
 * from httpc_start. restore: the descriptor limit to put back first. */
static void cannot_connect(const struct rlimit *restore, const char *err)
{
    tc_start(TC_TIMEOUT_MS);
    if (restore != NULL)
        CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, restore), 0);
    CU_ASSERT_EQUAL(tc.dones, 0);
    CU_ASSERT_TRUE(httpc_running(&tc.x));
    tc_run();
    tc_close();
    CU_ASSERT_EQUAL(tc.dones, 1);
    CU_ASSERT_EQUAL(tc.result, CURLE_COULDNT_CONNECT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tc.err, err));
}

static void test_refused(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    /* A port just bound and let go: nothing listens there. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&sa,
                                    sizeof(sa)) == 0 &&
                    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    close(fd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc_open("http://127.0.0.1:%d/", port, 0));
    cannot_connect(NULL, "Failed to connect to 127.0.0.1");
}

static void sv_mute(struct ts *s)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd))
        s->eof = ts_drain(fd);
    if (fd >= 0)
        close(fd);
}

static void test_timeout(void)
{
    TS_START(sv_mute);
    TC_OPEN();
    tc_go(TC_SHORT_MS);
    tc_close();
    ts_end();
    CU_ASSERT_EQUAL(tc.result, CURLE_OPERATION_TIMEDOUT);
    /* libevent's cached time may be a little behind */
    CU_ASSERT(tc.end_ms - tc.start_ms >= TC_SHORT_MS - 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(tc.err, "Operation timed out"));
    CU_ASSERT_TRUE(ts.eof);         /* the connection was closed */
}

/* A listener whose queue is full drops the SYN: the connect hangs. */
static void test_connect_timeout(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int filler = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(lfd >= 0 && filler >= 0 &&
                    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                    listen(lfd, 0) == 0 &&
                    getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0 &&
                    connect(filler, (struct sockaddr *)&sa, sl) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc_open("http://127.0.0.1:%d/",
                                         ntohs(sa.sin_port),
                                         TC_CONNECT_SHORT_MS));
    tc_go(TC_TIMEOUT_MS);
    tc_close();
    close(filler);
    close(lfd);
    CU_ASSERT_EQUAL(tc.result, CURLE_OPERATION_TIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(tc.err, "Connection timed out"));
    CU_ASSERT(tc.end_ms - tc.start_ms < TC_TIMEOUT_MS / 2);
}

/* No socket to be had (the descriptors used up): reported from the
 * loop too. */
static void test_no_socket(void)
{
    struct rlimit old, low;
    int fd = open("/dev/null", O_RDONLY);

    CU_ASSERT_FATAL(fd >= 0 && getrlimit(RLIMIT_NOFILE, &old) == 0);
    close(fd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc_open("http://127.0.0.1:9/", 0, 0));
    low = old;
    low.rlim_cur = (rlim_t)fd;     /* the lowest free one is out of reach */
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
    cannot_connect(&old, "Too many open files");
}

/* The start of an answer in each framing, then nothing more. */
static const char *const stall_replies[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
    "HTTP/1.1 200 OK\r\n\r\nhello",
};
static const char *stall_reply = "";

static void sv_stalls(struct ts *s)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, stall_reply);
        s->eof = ts_drain(fd);
    }
    if (fd >= 0)
        close(fd);
}

/* "hello" with a length, to each request on one connection. */
static void sv_hello(struct ts *s)
{
    int fd = ts_accept(s);

    while (fd >= 0 && ts_request(s, fd))
        ts_say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    if (fd >= 0)
        close(fd);
}

static void test_write_refused(void)
{
    for (size_t i = 0; i < sizeof(stall_replies) / sizeof(*stall_replies);
         i++) {
        stall_reply = stall_replies[i];
        tc.plan.refuse_on = 1;
        tc_one(sv_stalls);
        CU_ASSERT_EQUAL(tc.result, CURLE_WRITE_ERROR);
        CU_ASSERT_STRING_EQUAL(tc.err,
                               "Failure writing output to destination");
        CU_ASSERT_EQUAL(tc.writes, 1);
        CU_ASSERT_EQUAL(tc.dones, 1);
        CU_ASSERT_TRUE(ts.eof);
    }
    /* A header line refused the same way. */
    tc.plan.refuse_head = 2;
    tc_one(sv_hello);
    CU_ASSERT_EQUAL(tc.result, CURLE_WRITE_ERROR);
    CU_ASSERT_EQUAL(tc.writes, 0);
}

static void test_abort(void)
{
    stall_reply = stall_replies[0];
    TS_START(sv_stalls);
    TC_OPEN();
    tc.plan.abort_on = 1;
    tc_go(TC_TIMEOUT_MS);
    CU_ASSERT_TRUE(tc.aborted);
    CU_ASSERT_FALSE(httpc_running(&tc.x));
    /* Nothing comes of it later either. */
    event_base_loop(tc.base, EVLOOP_NONBLOCK);
    tc_close();
    ts_end();
    CU_ASSERT_EQUAL(tc.dones, 0);
    CU_ASSERT(tc.writes >= 1);
    CU_ASSERT_TRUE(ts.eof);
}

static void sv_huge_head(struct ts *s)
{
    int fd = ts_accept(s);
    char line[TS_PAD_LINE + 1];

    memset(line, 'p', sizeof(line));
    memcpy(line, "X-Pad: ", 7);
    memcpy(line + TS_PAD_LINE - 2, "\r\n", 3);
    if (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < TS_BIG_HEAD / TS_PAD_LINE; i++)
            ts_send(fd, line, TS_PAD_LINE);
        s->eof = ts_drain(fd);
    }
    if (fd >= 0)
        close(fd);
}

static void test_huge_head(void)
{
    tc_one(sv_huge_head);
    CU_ASSERT_EQUAL(tc.result, CURLE_WEIRD_SERVER_REPLY);
    CU_ASSERT_EQUAL(tc.lines, 0);
    CU_ASSERT_TRUE(ts.eof);
}

static const CU_TestInfo httpc_fail_tests[] = {
    { "closed unanswered: GOT_NOTHING", test_got_nothing },
    { "answers cut, malformed or reset", test_bad_replies },
    { "connection refused, from the loop", test_refused },
    { "the connect timeout", test_connect_timeout },
    { "no socket, from the loop", test_no_socket },
    { "the deadline", test_timeout },
    { "a callback refuses: WRITE_ERROR", test_write_refused },
    { "abort mid-answer", test_abort },
    { "a head over 64 KiB", test_huge_head },
    CU_TEST_INFO_NULL
};

int register_httpc_fail_tests(void)
{
    return unit_add_suite("httpc_fail", httpc_fail_tests);
}
