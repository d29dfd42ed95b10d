/* httpc_rig.h - what the suites of the worker's own HTTP client
 * (test_httpc.c, test_httpc_fail.c) share: a scripted server on the
 * loopback and a client on a real event loop (httpc_rig.c).
 *
 * The server: each test's script is a function run on a thread (accept,
 * read a request, write replies, close) with blocking sockets that give
 * up after TS_WAIT_MS. A reply cut into pieces is written piece by piece
 * as the client takes the body bytes (the client's write callback counts
 * them in ts.got and signals), so the cuts are the reads the client
 * makes. After the thread is joined, connections nobody accepted are
 * counted (ts.extra): a transfer that connected once too often shows.
 *
 * The client: one transfer (tc.x) on tc.base, its callbacks recording
 * into tc and doing what the test planned (tc.plan: pause, refuse, abort
 * on the Nth call), run until done fires (after tc.plan.more restarts
 * from done) or a guard of TC_GUARD_MS ends it. Nothing sleeps. */
#ifndef RCC_HTTPC_RIG_H
#define RCC_HTTPC_RIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "httpc.h"

#define TS_WAIT_MS     10000    /* the server's patience with any one step */
#define TC_GUARD_MS    15000    /* a transfer that never ends fails the test */
#define TC_TIMEOUT_MS  10000    /* a transfer's deadline when not the point */
#define TC_CONNECT_MS  5000
#define TS_REQ_MAX     8192     /* a request kept whole (head and body) */
#define TC_HEAD_MAX    8192
#define TC_BODY_MAX    4096

struct ts;
typedef void ts_script(struct ts *s);

extern struct ts {
    int lfd, port;
    pthread_t th;
    ts_script *script;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t got;                /* body bytes the client took */
    size_t marks;              /* steps told across (ts_mark) */
    /* The script's record, read after the join. */
    int accepts, requests, extra;
    char req[TS_REQ_MAX];      /* the last request: head, body's start */
    size_t req_len;
    uint64_t body_len, body_sum;  /* the last request's body */
    bool eof;                  /* the client closed what it should have */
} ts;

/* What the client's callbacks do, set before tc_open or tc_one (which
 * keep it) and cleared by tc_close. */
struct tc_plan {
    /* At their Nth call (1-based; 0: never). The write callback pauses
     * at call N when bit N-1 of pause_calls is set. */
    int refuse_on, abort_on, refuse_head, pause_head;
    unsigned pause_calls;
    bool mark_head;            /* ts_mark at the head's blank line */
    int more;                  /* transfers to start again from done */
};

extern struct tc {
    struct tc_plan plan;
    struct event_base *base;
    struct httpc *hc;
    struct httpc_dest *dest;
    struct httpc_xfer x;
    struct curl_slist *headers;
    const char *req_body;
    size_t req_len;
    char err[CURL_ERROR_SIZE];
    char head[TC_HEAD_MAX];    /* every header line given, joined */
    size_t head_len;
    int lines;
    char body[TC_BODY_MAX];
    size_t body_len;
    int writes;                /* write callback calls */
    char kept[TC_BODY_MAX];    /* what the write callback paused on */
    size_t kept_len;
    int again;                 /* the call after the pause: the same? */
    int dones;
    bool in_start, done_in_start, guard_fired, aborted;
    CURLcode result;
    int64_t start_ms, end_ms;
} tc;

/* The server's side, for scripts. */
int ts_accept(struct ts *s);             /* -1 when none came */
int ts_request(struct ts *s, int fd);    /* 1, or 0: closed or quiet */
void ts_send(int fd, const char *p, size_t n);
void ts_say(int fd, const char *text);
int ts_drain(int fd);                    /* 1 once the peer closed */
void ts_wait(struct ts *s, const size_t *v, size_t n);  /* *v >= n */
void ts_mark(struct ts *s);
/* A script's whole life: one connection, one request, first answered,
 * then (once the client took took body bytes) second unless NULL, then
 * closed. */
void ts_answer(struct ts *s, const char *first, size_t took,
               const char *second);

/* A listener on 127.0.0.1 (or ::1) and script on its thread (none when
 * NULL). 0 or -1. */
int ts_start(ts_script *script, bool v6);
void ts_end(void);                       /* join, count ts.extra */

/* A client and its destination: url_fmt with the port; connect_ms 0
 * for TC_CONNECT_MS. NULL when httpc refused the URL. */
struct httpc_dest *tc_open(const char *url_fmt, int port, int connect_ms);
void tc_start(int64_t timeout_ms);
void tc_run(void);                       /* the loop, until done */
void tc_go(int64_t timeout_ms);          /* start and run */
void tc_close(void);
/* One transfer to "/" against script, all closed after. */
void tc_one(ts_script *script);

#define TS_START(script) CU_ASSERT_EQUAL_FATAL(ts_start(script, false), 0)
#define TC_OPEN() \
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc_open("http://127.0.0.1:%d/", ts.port, 0))

#define TC_OK(body_text)                                                 \
    do {                                                                 \
        CU_ASSERT_EQUAL(tc.result, CURLE_OK);                            \
        CU_ASSERT_STRING_EQUAL(tc.err, "");                              \
        CU_ASSERT_STRING_EQUAL(tc.body, body_text);                      \
        CU_ASSERT_FALSE(httpc_running(&tc.x));                           \
    } while (0)

#endif
