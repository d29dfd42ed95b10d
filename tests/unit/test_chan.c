/* test_chan.c - the master<->worker channel over a real socketpair and
 * event loop: one read takes far more than libevent's 4 KiB, a flush
 * writes at once, a full socket arms the write event and the rest goes
 * out as the peer reads (with on_drain), the peer's close is reported
 * once, and chan_read_once drains what a dead peer left. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "chan.h"
#include "unit.h"

#define CT_READ_MAX   (64 * 1024)
#define CT_BIG        (48 * 1024)     /* > 4 KiB, < CT_READ_MAX */
#define CT_HUGE       (4 * 1024 * 1024) /* more than a socket buffer */
#define CT_BYTE       0x5A
#define CT_LOOP_MAX   10000

struct ct_state {
    int reads;
    size_t got;                   /* bytes consumed by on_read */
    size_t first_read;            /* bytes the first on_read saw */
    int drains;
    int closes;
};

static void ct_on_read(struct chan *c, void *arg)
{
    struct ct_state *st = arg;
    size_t n = evbuffer_get_length(c->in);

    if (st->reads++ == 0)
        st->first_read = n;
    st->got += n;
    evbuffer_drain(c->in, n);
}

static void ct_on_drain(struct chan *c, void *arg)
{
    struct ct_state *st = arg;

    (void)c;
    st->drains++;
}

static void ct_on_close(struct chan *c, void *arg)
{
    struct ct_state *st = arg;

    (void)c;
    st->closes++;
}

/* A non-blocking socketpair; 0 or -1. */
static int ct_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK) < 0)
            return -1;
    return 0;
}

static void test_big_read(void)
{
    struct event_base *base = event_base_new();
    struct ct_state st = { 0 };
    struct chan c;
    char *buf = malloc(CT_BIG);
    int sv[2];

    CU_ASSERT_FATAL(base != NULL && buf != NULL && ct_pair(sv) == 0);
    CU_ASSERT_FATAL(chan_init(&c, base, sv[0], CT_READ_MAX, ct_on_read,
                              ct_on_close, &st) == 0);
    memset(buf, CT_BYTE, CT_BIG);
    CU_ASSERT_FATAL(write(sv[1], buf, CT_BIG) == CT_BIG);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(st.reads, 1);
    CU_ASSERT_EQUAL(st.first_read, CT_BIG);
    CU_ASSERT_EQUAL(st.closes, 0);
    close(sv[1]);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(st.closes, 1);
    CU_ASSERT_TRUE(c.closed);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(st.closes, 1);
    chan_free(&c);
    CU_ASSERT_EQUAL(c.fd, -1);
    chan_free(&c);                /* twice is harmless */
    free(buf);
    event_base_free(base);
}

static void test_flush_and_backlog(void)
{
    struct event_base *base = event_base_new();
    struct ct_state st = { 0 };
    struct chan c;
    char *buf = malloc(CT_HUGE), *sink = malloc(CT_HUGE);
    size_t got = 0;
    int sv[2];

    CU_ASSERT_FATAL(base != NULL && buf != NULL && sink != NULL &&
                    ct_pair(sv) == 0);
    CU_ASSERT_FATAL(chan_init(&c, base, sv[0], CT_READ_MAX, ct_on_read,
                              ct_on_close, &st) == 0);
    chan_set_drain(&c, 0, ct_on_drain);
    /* Small: out at once, nothing left, drained. */
    evbuffer_add(c.out, "abc", 3);
    CU_ASSERT_EQUAL(chan_flush(&c), 0);
    CU_ASSERT_EQUAL(chan_pending(&c), 0);
    CU_ASSERT_FALSE(c.writing);
    CU_ASSERT_EQUAL(st.drains, 1);
    CU_ASSERT_EQUAL(read(sv[1], sink, CT_HUGE), 3);
    /* Bigger than the socket takes: the rest waits for the write event. */
    memset(buf, CT_BYTE, CT_HUGE);
    evbuffer_add(c.out, buf, CT_HUGE);
    CU_ASSERT_EQUAL(chan_flush(&c), 0);
    CU_ASSERT_TRUE(chan_pending(&c) > 0);
    CU_ASSERT_TRUE(c.writing);
    CU_ASSERT_EQUAL(st.drains, 1);
    for (int i = 0; i < CT_LOOP_MAX && got < CT_HUGE; i++) {
        ssize_t n = read(sv[1], sink, CT_HUGE);

        if (n > 0)
            got += (size_t)n;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    CU_ASSERT_EQUAL(got, CT_HUGE);
    CU_ASSERT_EQUAL(chan_pending(&c), 0);
    CU_ASSERT_FALSE(c.writing);
    CU_ASSERT_EQUAL(st.drains, 2);
    CU_ASSERT_EQUAL(memcmp(sink, buf, 16), 0);
    /* A write to a closed peer fails and reports the close once (the
     * daemon's processes ignore SIGPIPE too). */
    signal(SIGPIPE, SIG_IGN);
    close(sv[1]);
    evbuffer_add(c.out, "x", 1);
    CU_ASSERT_EQUAL(chan_flush(&c), -1);
    CU_ASSERT_EQUAL(st.closes, 1);
    CU_ASSERT_EQUAL(chan_flush(&c), -1);
    CU_ASSERT_EQUAL(st.closes, 1);
    chan_free(&c);
    free(buf);
    free(sink);
    event_base_free(base);
}

static void test_read_once_and_stop(void)
{
    struct event_base *base = event_base_new();
    struct ct_state st = { 0 };
    struct chan c;
    int sv[2];

    CU_ASSERT_FATAL(base != NULL && ct_pair(sv) == 0);
    CU_ASSERT_FATAL(chan_init(&c, base, sv[0], CT_READ_MAX, ct_on_read,
                              NULL, &st) == 0);
    CU_ASSERT_EQUAL(chan_read_once(&c), 0);       /* nothing there */
    CU_ASSERT_EQUAL(write(sv[1], "hello", 5), 5);
    close(sv[1]);
    CU_ASSERT_EQUAL(chan_read_once(&c), 5);
    CU_ASSERT_EQUAL(chan_read_once(&c), 0);       /* EOF */
    CU_ASSERT_EQUAL(evbuffer_get_length(c.in), 5);
    CU_ASSERT_EQUAL(st.reads, 0);                 /* no callback */
    chan_stop(&c);
    CU_ASSERT_TRUE(c.closed);
    CU_ASSERT_EQUAL(chan_read_once(&c), -1);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(st.reads, 0);
    CU_ASSERT_EQUAL(st.closes, 0);
    chan_free(&c);
    event_base_free(base);
}

/* chan_write_now writes what the socket takes and nothing else: no
 * write event for the rest, no on_drain, no on_close on failure; the
 * next chan_flush does those. */
static void test_write_now(void)
{
    struct event_base *base = event_base_new();
    struct ct_state st = { 0 };
    struct chan c;
    char *buf = malloc(CT_HUGE), *sink = malloc(CT_HUGE);
    int sv[2], n;

    CU_ASSERT_FATAL(base != NULL && buf != NULL && sink != NULL &&
                    ct_pair(sv) == 0);
    CU_ASSERT_FATAL(chan_init(&c, base, sv[0], CT_READ_MAX, ct_on_read,
                              ct_on_close, &st) == 0);
    chan_set_drain(&c, 0, ct_on_drain);
    CU_ASSERT_EQUAL(chan_write_now(&c), 0);        /* nothing to write */
    evbuffer_add(c.out, "abc", 3);
    CU_ASSERT_EQUAL(chan_write_now(&c), 3);
    CU_ASSERT_EQUAL(chan_pending(&c), 0);
    CU_ASSERT_EQUAL(st.drains, 0);
    CU_ASSERT_EQUAL(read(sv[1], sink, CT_HUGE), 3);
    /* More than the socket takes: part written, no write event armed. */
    memset(buf, CT_BYTE, CT_HUGE);
    evbuffer_add(c.out, buf, CT_HUGE);
    n = chan_write_now(&c);
    CU_ASSERT_TRUE(n > 0 && n < CT_HUGE);
    CU_ASSERT_EQUAL(chan_pending(&c), (size_t)(CT_HUGE - n));
    CU_ASSERT_FALSE(c.writing);
    CU_ASSERT_EQUAL(chan_write_now(&c), 0);        /* full: EAGAIN */
    CU_ASSERT_EQUAL(chan_flush(&c), 0);            /* the flush arms it */
    CU_ASSERT_TRUE(c.writing);
    /* A failed write is left for chan_flush to report. */
    signal(SIGPIPE, SIG_IGN);
    close(sv[1]);
    CU_ASSERT_EQUAL(chan_write_now(&c), -1);
    CU_ASSERT_EQUAL(st.closes, 0);
    CU_ASSERT_FALSE(c.closed);
    CU_ASSERT_EQUAL(chan_flush(&c), -1);
    CU_ASSERT_EQUAL(st.closes, 1);
    CU_ASSERT_EQUAL(chan_write_now(&c), 0);        /* closed: nothing */
    chan_free(&c);
    free(buf);
    free(sink);
    event_base_free(base);
}

static const CU_TestInfo chan_tests[] = {
    { "write_now: no write event, no callbacks", test_write_now },
    { "one read takes more than 4 KiB; close reported once",
      test_big_read },
    { "flush at once; backlog via the write event; drain",
      test_flush_and_backlog },
    { "read_once drains a gone peer; stop", test_read_once_and_stop },
    CU_TEST_INFO_NULL
};

int register_chan_tests(void)
{
    return unit_add_suite("chan", chan_tests);
}
