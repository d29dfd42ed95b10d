/* httpc_rig.c - the scripted loopback server and the event-loop client
 * the suites of worker/httpc.c share (see httpc_rig.h). */
#include "httpc_rig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define TS_SLOW_READ 512

struct ts ts;
struct tc tc;

/* ---- the server ---- */

/* A connection accepted within TS_WAIT_MS, reads timing out as long;
 * -1 when none came. */
int ts_accept(struct ts *s)
{
    struct pollfd p = { s->lfd, POLLIN, 0 };
    struct timeval tv = util_ms_to_tv(TS_WAIT_MS);
    int fd, on = 1;

    if (poll(&p, 1, TS_WAIT_MS) != 1 || (fd = accept(s->lfd, NULL, NULL)) < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    s->accepts++;
    return fd;
}

/* One request on fd: its first TS_REQ_MAX bytes kept, the body's length
 * and byte sum counted (what does not fit, read in small pieces: a slow
 * reader, so that a large body fills the client's socket). 1, or 0 when
 * the peer closed or went quiet. */
int ts_request(struct ts *s, int fd)
{
    static const struct hp_limits lim = { TS_REQ_MAX, TS_REQ_MAX, 100 };
    struct hp_request r;
    size_t len = 0, head = 0;
    int64_t clen = 0;
    uint64_t sum = 0;
    char buf[TS_SLOW_READ] = { 0 };   /* past the kept bytes */
    const size_t keep = sizeof(s->req) - 1;    /* and a NUL */

    for (;;) {
        char *to = len < keep ? s->req + len : buf;
        size_t room = len < keep ? keep - len : TS_SLOW_READ;
        ssize_t n = recv(fd, to, room, 0);

        if (n <= 0)
            return 0;
        len += (size_t)n;
        if (head == 0) {
            if (hp_parse_head(s->req, len < keep ? len : keep, &lim,
                              &r) != HP_DONE)
                continue;
            head = r.head_len;
            clen = r.content_length > 0 ? r.content_length : 0;
            for (size_t i = head; i < len; i++)
                sum += (unsigned char)s->req[i];
        } else {
            for (ssize_t i = 0; i < n; i++)
                sum += (unsigned char)to[i];
        }
        if (len >= head + (size_t)clen) {
            s->body_len = len - head;
            s->body_sum = sum;
            s->req_len = len < keep ? len : keep;
            s->req[s->req_len] = '\0';
            s->requests++;
            return 1;
        }
    }
}

void ts_send(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void ts_say(int fd, const char *text)
{
    ts_send(fd, text, strlen(text));
}

/* Until the client closed fd (1) or went quiet (0). */
int ts_drain(int fd)
{
    char buf[4096];
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
        ;
    return n == 0 || errno == ECONNRESET;
}

static struct timespec ts_deadline(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += TS_WAIT_MS / 1000;
    return t;
}

/* Waits (at most TS_WAIT_MS) until *v (got or marks) reaches n. */
void ts_wait(struct ts *s, const size_t *v, size_t n)
{
    struct timespec until = ts_deadline();

    pthread_mutex_lock(&s->mu);
    while (*v < n && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&s->mu);
}

/* One side tells the other it came this far. */
void ts_mark(struct ts *s)
{
    pthread_mutex_lock(&s->mu);
    s->marks++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void ts_answer(struct ts *s, const char *first, size_t took,
               const char *second)
{
    int fd = ts_accept(s);

    if (fd >= 0 && ts_request(s, fd)) {
        ts_say(fd, first);
        ts_wait(s, &s->got, took);
        if (second != NULL)
            ts_say(fd, second);
    }
    if (fd >= 0)
        close(fd);
}

static void *ts_main(void *arg)
{
    struct ts *s = arg;

    s->script(s);
    return NULL;
}

/* A listener on 127.0.0.1 (or ::1) and script on its thread. 0 or -1. */
int ts_start(ts_script *script, bool v6)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int on = 1;

    memset(&ts, 0, sizeof(ts));
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = v6 ? AF_INET6 : AF_INET;
    if (v6)
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    else
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ts.lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ts.lfd < 0)
        return -1;
    (void)setsockopt(ts.lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(ts.lfd, (struct sockaddr *)&ss, v6 ? sizeof(struct sockaddr_in6)
             : sizeof(struct sockaddr_in)) < 0 || listen(ts.lfd, 8) < 0 ||
        getsockname(ts.lfd, (struct sockaddr *)&ss, &sl) < 0) {
        close(ts.lfd);
        return -1;
    }
    ts.port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    ts.script = script;
    pthread_mutex_init(&ts.mu, NULL);
    pthread_cond_init(&ts.cv, NULL);
    if (script != NULL && pthread_create(&ts.th, NULL, ts_main, &ts) != 0)
        return -1;
    return 0;
}

/* Joins the script, then counts the connections nobody accepted. */
void ts_end(void)
{
    int fd;

    if (ts.script != NULL)
        pthread_join(ts.th, NULL);
    (void)fcntl(ts.lfd, F_SETFL, O_NONBLOCK);
    while ((fd = accept(ts.lfd, NULL, NULL)) >= 0) {
        ts.extra++;
        close(fd);
    }
    close(ts.lfd);
    pthread_cond_destroy(&ts.cv);
    pthread_mutex_destroy(&ts.mu);
}

/* ---- the client ---- */

static void tc_soon(event_callback_fn cb);
static void tc_resume_cb(evutil_socket_t fd, short what, void *arg);

static size_t tc_header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct tc *t = arg;

    (void)size;
    if (++t->lines == t->plan.refuse_head)
        return 0;
    if (t->plan.mark_head && n == 2)
        ts_mark(&ts);      /* the head is in: the server may go on */
    if (t->lines == t->plan.pause_head) {
        /* As a caller pausing from here: no CURL_WRITEFUNC_PAUSE. */
        httpc_pause(&t->x, true);
        tc_soon(tc_resume_cb);
    }
    if (t->head_len + n < sizeof(t->head)) {
        memcpy(t->head + t->head_len, p, n);
        t->head_len += n;
        t->head[t->head_len] = '\0';
    }
    return n;
}

static void tc_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    httpc_pause(&tc.x, false);
}

static void tc_abort_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    httpc_abort(&tc.x);
    tc.aborted = true;
    event_base_loopbreak(tc.base);
}

static void tc_soon(event_callback_fn cb)
{
    struct timeval now = { 0, 0 };

    UTIL_MUST(event_base_once(tc.base, -1, EV_TIMEOUT, cb, NULL, &now),
              "a test's event");
}

static size_t tc_write_cb(char *p, size_t size, size_t n, void *arg)
{
    struct tc *t = arg;

    (void)size;
    t->writes++;
    if (t->kept_len > 0 && t->again < 0)
        t->again = n == t->kept_len && memcmp(p, t->kept, n) == 0;
    if (t->writes <= 32 && (t->plan.pause_calls >> (t->writes - 1) & 1) != 0 &&
        n < sizeof(t->kept)) {
        memcpy(t->kept, p, n);
        t->kept[n] = '\0';
        t->kept_len = n;
        t->again = -1;
        tc_soon(tc_resume_cb);
        return CURL_WRITEFUNC_PAUSE;
    }
    if (t->writes == t->plan.refuse_on)
        return 0;
    if (t->writes == t->plan.abort_on)
        tc_soon(tc_abort_cb);
    if (t->body_len + n < sizeof(t->body)) {
        memcpy(t->body + t->body_len, p, n);
        t->body_len += n;
        t->body[t->body_len] = '\0';
    }
    pthread_mutex_lock(&ts.mu);
    ts.got += n;
    pthread_cond_broadcast(&ts.cv);
    pthread_mutex_unlock(&ts.mu);
    return n;
}

static void tc_done(struct httpc_xfer *x, CURLcode result)
{
    (void)x;
    tc.dones++;
    tc.result = result;
    tc.end_ms = util_now_ms();
    if (tc.in_start)
        tc.done_in_start = true;
    if (tc.plan.more > 0) {
        tc.plan.more--;
        tc_start(TC_TIMEOUT_MS);
        return;
    }
    event_base_loopbreak(tc.base);
}

static void tc_guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    tc.guard_fired = true;
    event_base_loopbreak(tc.base);
}

struct httpc_dest *tc_open(const char *url_fmt, int port, int connect_ms)
{
    char url[256];

    struct tc_plan plan = tc.plan;

    memset(&tc, 0, sizeof(tc));
    tc.plan = plan;
    snprintf(url, sizeof(url), url_fmt, port);
    tc.base = event_base_new();
    tc.hc = tc.base == NULL ? NULL : httpc_new(tc.base, connect_ms > 0 ?
                                               connect_ms : TC_CONNECT_MS);
    tc.dest = tc.hc != NULL ? httpc_dest(tc.hc, url) : NULL;
    tc.req_body = "{}";
    tc.req_len = 2;
    return tc.dest;
}

void tc_start(int64_t timeout_ms)
{
    struct httpc_xfer *x = &tc.x;

    x->body = tc.req_body;
    x->body_len = tc.req_len;
    x->headers = tc.headers;
    x->header_cb = tc_header_cb;
    x->write_cb = tc_write_cb;
    x->cb_arg = &tc;
    x->done = tc_done;
    x->err = tc.err;
    tc.start_ms = util_now_ms();
    tc.in_start = true;
    httpc_start(tc.hc, tc.dest, x, timeout_ms);
    tc.in_start = false;
}

/* The loop until done (with plan.more 0) or the guard. */
void tc_run(void)
{
    struct event *guard = evtimer_new(tc.base, tc_guard_cb, NULL);
    struct timeval tv = util_ms_to_tv(TC_GUARD_MS);

    if (guard == NULL || evtimer_add(guard, &tv) < 0)
        util_oom("a test's guard");
    event_base_dispatch(tc.base);
    event_free(guard);
    CU_ASSERT_FALSE(tc.guard_fired);
    CU_ASSERT_FALSE(tc.done_in_start);
}

void tc_go(int64_t timeout_ms)
{
    tc_start(timeout_ms);
    tc_run();
}

void tc_close(void)
{
    if (tc.hc != NULL)
        httpc_abort(&tc.x);
    httpc_free(tc.hc);
    if (tc.base != NULL)
        event_base_free(tc.base);
    curl_slist_free_all(tc.headers);
    tc.headers = NULL;
    memset(&tc.plan, 0, sizeof(tc.plan));
}

/* One transfer against script; the server's record is final after. */
void tc_one(ts_script *script)
{
    TS_START(script);
    TC_OPEN();
    tc_go(TC_TIMEOUT_MS);
    tc_close();
    ts_end();
}
