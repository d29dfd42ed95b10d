/* test_http.c - the master's HTTP server (master/http.c) on a real
 * loopback socket and event loop, for what the integration tests cannot
 * make happen on purpose: a request already sent when the connection is
 * accepted is dispatched in that same loop turn; queued stream chunks go
 * out at the end of the turn, one write per connection, in the order they
 * were queued; and a connection that goes away in the same turn as its
 * chunks were queued leaves the flush list with it (under ASan or
 * valgrind a dangling entry is a use after free); and a client that
 * pipelines requests without reading the answers gets no more of them
 * started once its unsent output passes the bound, and all of them once
 * it reads. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "http.h"
#include "unit.h"

#define HT_CONNS      2
#define HT_BUF        4096
#define HT_TURNS_MAX  200
#define HT_TIMEOUT_MS 5000
#define HT_MAX_CONNS  16
#define HT_PIPELINED  200          /* requests sent before any is read */
#define HT_ANSWER_LEN 8192         /* each answered with this many bytes */
#define HT_SNDBUF     16384        /* the server's socket buffers: small */
#define HT_RCVBUF     4096         /* and the client's */
#define HT_BLOCKED_MAX 40          /* answers that fit in them + the bound */
#define HT_DRAIN_TURNS 100000

static const char ht_request[] =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
    "Content-Length: 2\r\n\r\n{}";

struct ht_state {
    struct http_req *req[HT_CONNS];
    int requests;
    int lost;
};

static void ht_on_request(struct http_req *req, void *arg)
{
    struct ht_state *st = arg;

    if (st->requests < HT_CONNS)
        st->req[st->requests] = req;
    st->requests++;
}

/* The signature is http_lost_cb's, which cannot take a const request. */
// cppcheck-suppress constParameter
static void ht_on_lost(struct http_req *req, void *arg)
{
    struct ht_state *st = arg;

    for (int i = 0; i < HT_CONNS; i++)
        if (st->req[i] == req)
            st->req[i] = NULL;
    st->lost++;
}

static int ht_server(struct http_server *s, struct event_base *base,
                     struct ht_state *st, int *port, http_request_cb cb)
{
    struct http_limits lim = {
        .head = { HT_BUF, HT_BUF, 32 },
        .max_body = HT_BUF,
        .read_limit = HT_BUF,
        .header_timeout_ms = HT_TIMEOUT_MS,
        .body_timeout_ms = HT_TIMEOUT_MS,
        .idle_timeout_ms = HT_TIMEOUT_MS,
        .max_connections = HT_MAX_CONNS,
        .max_requests = 0,
    };
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    if (http_server_init(s, base, "127.0.0.1", 0, &lim, cb, ht_on_lost,
                         st) < 0)
        return -1;
    if (getsockname(evconnlistener_get_fd(s->listener),
                    (struct sockaddr *)&sa, &len) < 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return 0;
}

/* A client connected to port that has sent a request; -1 on failure. */
static int ht_client(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, ht_request, sizeof(ht_request) - 1) !=
            (ssize_t)(sizeof(ht_request) - 1)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Everything readable on fd now, appended to buf (NUL-terminated). */
static size_t ht_read(int fd, char *buf, size_t have)
{
    ssize_t n;

    while (have + 1 < HT_BUF &&
           (n = read(fd, buf + have, HT_BUF - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    return have;
}

/* Loop turns until want requests arrived (or a bound). Turns taken. */
static int ht_turns_until(struct event_base *base, const struct ht_state *st,
                          int want)
{
    int turns = 0;

    while (st->requests < want && turns < HT_TURNS_MAX) {
        event_base_loop(base, EVLOOP_ONCE);
        turns++;
    }
    return turns;
}

/* A request that is there when the connection is accepted is handed over
 * in the turn that accepts it, not a turn later. */
static void test_read_at_accept(void)
{
    struct event_base *base = event_base_new();
    struct http_server s;
    struct ht_state st = { 0 };
    int port = 0, fd;

    CU_ASSERT_FATAL(base != NULL);
    CU_ASSERT_FATAL(ht_server(&s, base, &st, &port, ht_on_request) == 0);
    fd = ht_client(port);
    CU_ASSERT_FATAL(fd >= 0);
    usleep(20000);            /* the request is in the socket by now */
    CU_ASSERT_EQUAL(ht_turns_until(base, &st, 1), 1);
    CU_ASSERT_EQUAL(st.requests, 1);
    CU_ASSERT_EQUAL(http_server_connections(&s), 1);
    close(fd);
    http_server_free(&s);
    event_base_free(base);
}

/* Chunks queued for two streams go out when the turn's callbacks are
 * done, both of them, and several chunks of one stream in one write. */
static void test_flush_list(void)
{
    struct event_base *base = event_base_new();
    struct http_server s;
    struct ht_state st = { 0 };
    char buf[HT_CONNS][HT_BUF];
    size_t have[HT_CONNS] = { 0 };
    int port = 0, fd[HT_CONNS];

    CU_ASSERT_FATAL(base != NULL);
    CU_ASSERT_FATAL(ht_server(&s, base, &st, &port, ht_on_request) == 0);
    for (int i = 0; i < HT_CONNS; i++) {
        fd[i] = ht_client(port);
        CU_ASSERT_FATAL(fd[i] >= 0);
    }
    ht_turns_until(base, &st, HT_CONNS);
    CU_ASSERT_FATAL(st.requests == HT_CONNS);
    for (int i = 0; i < HT_CONNS; i++) {
        http_stream_start(st.req[i], 200, "text/event-stream", NULL, 0);
        http_stream_chunk(st.req[i], "data: a\n\n", 9);
        http_stream_chunk(st.req[i], "data: b\n\n", 9);
        /* Queued, not written: the client sees nothing yet. */
        CU_ASSERT_EQUAL(ht_read(fd[i], buf[i], 0), 0);
    }
    /* One turn writes them all (the flush event is already active). */
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    for (int i = 0; i < HT_CONNS; i++) {
        CU_ASSERT_EQUAL(http_pending_output(st.req[i]), 0);
        for (int t = 0; t < HT_TURNS_MAX && !strstr(buf[i], "data: b"); t++) {
            have[i] = ht_read(fd[i], buf[i], have[i]);
            if (!strstr(buf[i], "data: b"))
                usleep(1000);
        }
        CU_ASSERT_PTR_NOT_NULL(strstr(buf[i], "HTTP/1.1 200"));
        CU_ASSERT_PTR_NOT_NULL(strstr(buf[i], "9\r\ndata: a\n\n\r\n"
                                              "9\r\ndata: b\n\n\r\n"));
        http_stream_end(st.req[i]);
    }
    for (int i = 0; i < HT_CONNS; i++)
        close(fd[i]);
    http_server_free(&s);
    event_base_free(base);
}

struct ht_feeder {
    struct ht_state *st;
    int fired;
    int queued;                   /* the stream was still there */
};

/* Stands for the master's read of a worker's frames: queues a chunk for
 * the first stream, if it is still there. */
static void ht_feed_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ht_feeder *f = arg;
    char b;

    (void)what;
    if (read(fd, &b, 1) != 1)
        return;
    f->fired++;
    if (f->st->req[0] != NULL) {
        http_stream_chunk(f->st->req[0], "data: x\n\n", 9);
        f->queued++;
    }
}

/* The client leaves in the same turn as a chunk is queued for it: its
 * connection is freed by the read callback before the flush runs, and
 * must have left the flush list. */
static void test_lost_while_queued(void)
{
    struct event_base *base = event_base_new();
    struct http_server s;
    struct ht_state st = { 0 };
    struct ht_feeder f = { &st, 0, 0 };
    struct event *feed;
    char buf[HT_BUF];
    int port = 0, fd, sv[2];

    signal(SIGPIPE, SIG_IGN);
    /* The feeder runs first (priority 0); the server's events (the
     * default, 1) after it: the client's read callback, which frees the
     * connection, and then the flush. */
    CU_ASSERT_FATAL(base != NULL && event_base_priority_init(base, 2) == 0 &&
                    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CU_ASSERT_FATAL(ht_server(&s, base, &st, &port, ht_on_request) == 0);
    feed = event_new(base, sv[0], EV_READ | EV_PERSIST, ht_feed_cb, &f);
    CU_ASSERT_FATAL(feed != NULL && event_priority_set(feed, 0) == 0 &&
                    event_add(feed, NULL) == 0);
    fd = ht_client(port);
    CU_ASSERT_FATAL(fd >= 0);
    ht_turns_until(base, &st, 1);
    CU_ASSERT_FATAL(st.requests == 1);
    http_stream_start(st.req[0], 200, "text/event-stream", NULL, 0);
    http_stream_flush(st.req[0]);
    /* The flush event made active by the start finds nothing to do. */
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    usleep(20000);
    ht_read(fd, buf, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.1 200"));
    /* Both become ready before the next turn. */
    CU_ASSERT_EQUAL(write(sv[1], "x", 1), 1);
    {
        struct linger lg = { 1, 0 };

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
    usleep(20000);
    for (int t = 0; t < 3; t++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(f.fired, 1);
    CU_ASSERT_EQUAL(f.queued, 1);     /* before the loss was seen */
    CU_ASSERT_EQUAL(st.lost, 1);
    CU_ASSERT_PTR_NULL(s.flush_list);
    CU_ASSERT_PTR_NULL(s.flush_tail);
    CU_ASSERT_EQUAL(http_server_connections(&s), 0);
    event_free(feed);
    close(sv[0]);
    close(sv[1]);
    http_server_free(&s);
    event_base_free(base);
}

/* Answers every request at once with HT_ANSWER_LEN bytes. */
static void ht_answer_cb(struct http_req *req, void *arg)
{
    static char body[HT_ANSWER_LEN];
    struct ht_state *st = arg;

    st->requests++;
    http_send(req, 200, "text/plain", NULL, 0, body, sizeof(body));
}

/* A client that sends HT_PIPELINED requests and reads nothing: once the
 * socket buffers are full and the unsent output passes the bound, no
 * further request is started, however many turns the loop takes. When
 * it reads, the rest are answered. */
static void test_unread_output_bound(void)
{
    static const char get[] = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    struct event_base *base = event_base_new();
    struct http_server s;
    struct ht_state st = { 0 };
    struct sockaddr_in sa;
    char buf[HT_BUF];
    size_t got = 0;
    int port = 0, fd, sndbuf = HT_SNDBUF, rcvbuf = HT_RCVBUF, turns = 0;

    CU_ASSERT_FATAL(base != NULL);
    CU_ASSERT_FATAL(ht_server(&s, base, &st, &port, ht_answer_cb) == 0);
    /* Accepted sockets inherit it, and a set size is not grown by the
     * kernel: what the socket absorbs stays small and known. */
    CU_ASSERT_FATAL(setsockopt(evconnlistener_get_fd(s.listener),
                               SOL_SOCKET, SO_SNDBUF, &sndbuf,
                               sizeof(sndbuf)) == 0);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    for (int i = 0; i < HT_PIPELINED; i++)
        CU_ASSERT_FATAL(write(fd, get, sizeof(get) - 1) ==
                        (ssize_t)(sizeof(get) - 1));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (int t = 0; t < HT_TURNS_MAX; t++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT(st.requests > 0);
    CU_ASSERT(st.requests <= HT_BLOCKED_MAX);
    /* Now read: the answers flow, and the requests behind them start. */
    while (got < (size_t)HT_PIPELINED * HT_ANSWER_LEN &&
           turns++ < HT_DRAIN_TURNS) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n > 0)
            got += (size_t)n;
        else
            usleep(100);
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    CU_ASSERT_EQUAL(st.requests, HT_PIPELINED);
    CU_ASSERT(got >= (size_t)HT_PIPELINED * HT_ANSWER_LEN);
    CU_ASSERT_EQUAL(http_server_connections(&s), 1);
    close(fd);
    http_server_free(&s);
    event_base_free(base);
}

static const CU_TestInfo http_tests[] = {
    { "a request there at accept is dispatched in that turn",
      test_read_at_accept },
    { "queued chunks leave at the end of the turn, per connection",
      test_flush_list },
    { "a client lost in the turn its chunk was queued leaves the list",
      test_lost_while_queued },
    { "unread answers over the bound: no more requests start, then all",
      test_unread_output_bound },
    CU_TEST_INFO_NULL
};

int register_http_tests(void)
{
    return unit_add_suite("http", http_tests);
}
