/* test_sse.c - the incremental SSE parser: the same stream cut at every
 * byte gives the same events; LF, CRLF and CR line ends (a CR at the end
 * of one piece and an LF at the start of the next count once); comments,
 * field forms, keep-alives; the size bound; the callback stopping the
 * parse; pending state; and reuse after sse_free(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "sse.h"
#include "unit.h"

#define ST_MAX_EVENTS   16
#define ST_DATA_MAX     2048
#define ST_MAX_EVENT    4096       /* the parser's bound in most tests */
#define ST_SMALL_MAX    64
#define ST_LONG_DATA    1500       /* beyond the parser's first buffer */

struct st_event {
    char event[SSE_EVENT_NAME_MAX];
    char data[ST_DATA_MAX];
    size_t len;
};

/* What the callback saw. stop_after > 0: return -1 on that event. */
struct st_log {
    struct st_event ev[ST_MAX_EVENTS];
    int count;
    int overflow;             /* more events or data than fit, or no NUL */
    int stop_after;
};

static int st_cb(void *arg, const char *event, const char *data, size_t len)
{
    struct st_log *log = arg;
    struct st_event *e;

    if (log->count >= ST_MAX_EVENTS || len >= ST_DATA_MAX ||
        strlen(event) >= SSE_EVENT_NAME_MAX || data[len] != '\0') {
        log->overflow = 1;
        return 0;
    }
    e = &log->ev[log->count++];
    snprintf(e->event, sizeof(e->event), "%s", event);
    memcpy(e->data, data, len + 1);
    e->len = len;
    if (log->stop_after > 0 && log->count == log->stop_after)
        return -1;
    return 0;
}

/* Parses the pieces of stream cut at the offsets in cuts (ascending);
 * returns what sse_feed returned last (-1 stops early). */
static int st_parse(const char *stream, size_t len, const size_t *cuts,
                    size_t ncuts, size_t max_event, struct st_log *log)
{
    struct sse_parser p;
    size_t from = 0;
    int rc = 0;

    memset(log, 0, sizeof(*log));
    sse_init(&p, max_event, st_cb, log);
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = cuts != NULL && i < ncuts ? cuts[i] : len;

        rc = sse_feed(&p, stream + from, to - from);
        from = to;
    }
    sse_free(&p);
    return rc;
}

static int st_same(const struct st_log *a, const struct st_log *b)
{
    if (a->count != b->count || a->overflow || b->overflow)
        return 0;
    for (int i = 0; i < a->count; i++)
        if (a->ev[i].len != b->ev[i].len ||
            strcmp(a->ev[i].event, b->ev[i].event) != 0 ||
            memcmp(a->ev[i].data, b->ev[i].data, a->ev[i].len) != 0)
            return 0;
    return 1;
}

static void st_expect(const struct st_log *log, int i, const char *event,
                      const char *data)
{
    CU_ASSERT_FATAL(i < log->count);
    CU_ASSERT_STRING_EQUAL(log->ev[i].event, event);
    CU_ASSERT_STRING_EQUAL(log->ev[i].data, data);
    CU_ASSERT_EQUAL(log->ev[i].len, strlen(data));
}

static void test_single_event(void)
{
    static const char s[] = "data: hello\n\n";
    struct st_log log;

    CU_ASSERT_EQUAL(st_parse(s, sizeof(s) - 1, NULL, 0, ST_MAX_EVENT, &log),
                    0);
    CU_ASSERT_EQUAL(log.count, 1);
    CU_ASSERT_FALSE(log.overflow);
    st_expect(&log, 0, "", "hello");
}

/* Everything at once, in one stream: the reference the cut-up parses
 * must match. */
static const char st_mixed[] =
    ": comment first\r\n"
    "event: delta\r\n"
    "data: {\"a\":1}\r\n"
    "id: 7\r\n"
    "\r\n"
    "data:x\r"
    "data:  two spaces\r"
    "\r"
    "retry: 100\n"
    "data: last\n"
    "\n"
    "\n"
    "data: [DONE]\n\n";

static void test_mixed_stream(void)
{
    struct st_log log;

    CU_ASSERT_EQUAL(st_parse(st_mixed, sizeof(st_mixed) - 1, NULL, 0,
                             ST_MAX_EVENT, &log), 0);
    CU_ASSERT_FALSE(log.overflow);
    CU_ASSERT_EQUAL_FATAL(log.count, 4);
    st_expect(&log, 0, "delta", "{\"a\":1}");
    st_expect(&log, 1, "", "x\n two spaces");
    st_expect(&log, 2, "", "last");
    st_expect(&log, 3, "", "[DONE]");
}

static void test_byte_by_byte(void)
{
    const size_t len = sizeof(st_mixed) - 1;
    size_t cuts[sizeof(st_mixed)];
    struct st_log whole, bytes;

    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    CU_ASSERT_EQUAL(st_parse(st_mixed, len, NULL, 0, ST_MAX_EVENT, &whole),
                    0);
    CU_ASSERT_EQUAL(st_parse(st_mixed, len, cuts, len - 1, ST_MAX_EVENT,
                             &bytes), 0);
    CU_ASSERT_TRUE(st_same(&whole, &bytes));
}

static void test_every_two_way_split(void)
{
    const size_t len = sizeof(st_mixed) - 1;
    struct st_log whole, split;
    size_t bad = 0;

    CU_ASSERT_EQUAL(st_parse(st_mixed, len, NULL, 0, ST_MAX_EVENT, &whole),
                    0);
    for (size_t cut = 0; cut <= len; cut++) {
        if (st_parse(st_mixed, len, &cut, 1, ST_MAX_EVENT, &split) != 0 ||
            !st_same(&whole, &split))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Every three-way split of a short stream with all three line ends. */
static void test_every_three_way_split(void)
{
    static const char s[] = "data: a\r\ndata: b\rdata: c\n\r\n";
    const size_t len = sizeof(s) - 1;
    struct st_log log;
    size_t bad = 0;

    for (size_t i = 0; i <= len; i++) {
        for (size_t k = i; k <= len; k++) {
            size_t cuts[2] = { i, k };

            if (st_parse(s, len, cuts, 2, ST_MAX_EVENT, &log) != 0 ||
                log.count != 1 || strcmp(log.ev[0].data, "a\nb\nc") != 0)
                bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_line_endings(void)
{
    static const char *const streams[] = {
        "event: e\ndata: one\ndata: two\n\n",
        "event: e\r\ndata: one\r\ndata: two\r\n\r\n",
        "event: e\rdata: one\rdata: two\r\r",
        "event: e\r\ndata: one\rdata: two\n\r",
    };

    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        struct st_log log;

        CU_ASSERT_EQUAL(st_parse(streams[i], strlen(streams[i]), NULL, 0,
                                 ST_MAX_EVENT, &log), 0);
        CU_ASSERT_EQUAL_FATAL(log.count, 1);
        st_expect(&log, 0, "e", "one\ntwo");
    }
}

/* CR closing one piece and LF opening the next make one line end; if the
 * LF counted again, the blank line would dispatch "a" alone. */
static void test_cr_lf_across_feeds(void)
{
    static const char s[] = "data: a\r\ndata: b\r\n\r\n";
    const size_t cut = strlen("data: a\r");
    struct st_log log;

    CU_ASSERT_EQUAL(st_parse(s, sizeof(s) - 1, &cut, 1, ST_MAX_EVENT, &log),
                    0);
    CU_ASSERT_EQUAL_FATAL(log.count, 1);
    st_expect(&log, 0, "", "a\nb");
}

/* A lone CR then an LF-free piece: the CR still ends the line. */
static void test_cr_then_other_byte(void)
{
    static const char s[] = "data: a\rdata: b\r\r";
    const size_t cut = strlen("data: a\r");
    struct st_log log;

    CU_ASSERT_EQUAL(st_parse(s, sizeof(s) - 1, &cut, 1, ST_MAX_EVENT, &log),
                    0);
    CU_ASSERT_EQUAL_FATAL(log.count, 1);
    st_expect(&log, 0, "", "a\nb");
}

static void test_comments_and_keepalives(void)
{
    static const char s[] = ": ping\n\n:\n\n\n\n\r\n\r: x\r\n";
    struct st_log log;
    struct sse_parser p;

    CU_ASSERT_EQUAL(st_parse(s, sizeof(s) - 1, NULL, 0, ST_MAX_EVENT, &log),
                    0);
    CU_ASSERT_EQUAL(log.count, 0);

    memset(&log, 0, sizeof(log));
    sse_init(&p, ST_MAX_EVENT, st_cb, &log);
    CU_ASSERT_EQUAL(sse_feed(&p, s, sizeof(s) - 1), 0);
    CU_ASSERT_FALSE(sse_pending(&p));
    sse_free(&p);
}

static void test_field_forms(void)
{
    static const char s[] =
        "data\n\n"                  /* no colon: empty data */
        "data:\n\n"                 /* colon, nothing after */
        "data:no-space\n\n"
        "data: \n\n"                /* the one space is eaten */
        "foo: bar\nfoo\n\n"         /* unknown fields: nothing */
        "event: only-name\n\n"      /* no data: nothing */
        "data:a:b: c\n\n"           /* only the first colon splits */
        "Data: case\n\n";           /* names are case-sensitive */
    struct st_log log;

    CU_ASSERT_EQUAL(st_parse(s, sizeof(s) - 1, NULL, 0, ST_MAX_EVENT, &log),
                    0);
    CU_ASSERT_EQUAL_FATAL(log.count, 5);
    st_expect(&log, 0, "", "");
    st_expect(&log, 1, "", "");
    st_expect(&log, 2, "", "no-space");
    st_expect(&log, 3, "", "");
    st_expect(&log, 4, "", "a:b: c");
}

static void test_event_names(void)
{
    static const char s[] =
        "event: first\ndata: 1\n\n"
        "data: 2\n\n"                        /* name reset after dispatch */
        "event: a\nevent: b\ndata: 3\n\n"    /* the last one wins */
        "event:\ndata: 4\n\n"
        "event: "
        "0123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789\ndata: 5\n\n";
    struct st_log log;

    CU_ASSERT_EQUAL(st_parse(s, sizeof(s) - 1, NULL, 0, ST_MAX_EVENT, &log),
                    0);
    CU_ASSERT_EQUAL_FATAL(log.count, 5);
    st_expect(&log, 0, "first", "1");
    st_expect(&log, 1, "", "2");
    st_expect(&log, 2, "b", "3");
    st_expect(&log, 3, "", "4");
    /* Cut to fit, still NUL-terminated. */
    CU_ASSERT_EQUAL(strlen(log.ev[4].event), SSE_EVENT_NAME_MAX - 1);
    CU_ASSERT_EQUAL(strncmp(log.ev[4].event, "0123456789", 10), 0);
}

static void test_long_data(void)
{
    char *s = malloc(ST_LONG_DATA + 16);
    struct st_log log;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memcpy(s, "data: ", 6);
    memset(s + 6, 'z', ST_LONG_DATA);
    memcpy(s + 6 + ST_LONG_DATA, "\n\n", 2);
    n = 6 + ST_LONG_DATA + 2;
    CU_ASSERT_EQUAL(st_parse(s, n, NULL, 0, ST_MAX_EVENT, &log), 0);
    CU_ASSERT_EQUAL_FATAL(log.count, 1);
    CU_ASSERT_EQUAL(log.ev[0].len, ST_LONG_DATA);
    CU_ASSERT_EQUAL(log.ev[0].data[ST_LONG_DATA - 1], 'z');
    free(s);
}

static void test_max_event(void)
{
    char line[ST_SMALL_MAX * 2 + 16];
    struct st_log log;
    struct sse_parser p;
    int rc = 0;

    /* One line far beyond the bound. */
    memcpy(line, "data: ", 6);
    memset(line + 6, 'q', ST_SMALL_MAX * 2);
    memcpy(line + 6 + ST_SMALL_MAX * 2, "\n\n", 2);
    CU_ASSERT_EQUAL(st_parse(line, ST_SMALL_MAX * 2 + 8, NULL, 0,
                             ST_SMALL_MAX, &log), -1);
    CU_ASSERT_EQUAL(log.count, 0);

    /* Short lines adding up beyond the bound. */
    memset(&log, 0, sizeof(log));
    sse_init(&p, ST_SMALL_MAX, st_cb, &log);
    for (int i = 0; i < 10 && rc == 0; i++)
        rc = sse_feed(&p, "data: 0123456789\n", 17);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(log.count, 0);
    sse_free(&p);

    /* Well inside the bound: fine, and repeatedly. */
    memset(&log, 0, sizeof(log));
    sse_init(&p, ST_SMALL_MAX, st_cb, &log);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(sse_feed(&p, "data: 0123456789\n\n", 18), 0);
    CU_ASSERT_EQUAL(log.count, 10);
    sse_free(&p);
}

static void test_callback_stops(void)
{
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct st_log log;
    struct sse_parser p;

    memset(&log, 0, sizeof(log));
    log.stop_after = 1;
    sse_init(&p, ST_MAX_EVENT, st_cb, &log);
    CU_ASSERT_EQUAL(sse_feed(&p, s, sizeof(s) - 1), -1);
    CU_ASSERT_EQUAL(log.count, 1);
    st_expect(&log, 0, "", "1");
    sse_free(&p);
}

static void test_pending(void)
{
    struct st_log log;
    struct sse_parser p;

    memset(&log, 0, sizeof(log));
    sse_init(&p, ST_MAX_EVENT, st_cb, &log);
    CU_ASSERT_FALSE(sse_pending(&p));
    CU_ASSERT_EQUAL(sse_feed(&p, "data: par", 9), 0);
    CU_ASSERT_TRUE(sse_pending(&p));          /* an unfinished line */
    CU_ASSERT_EQUAL(sse_feed(&p, "tial\n", 5), 0);
    CU_ASSERT_TRUE(sse_pending(&p));          /* data, not dispatched */
    CU_ASSERT_EQUAL(log.count, 0);
    CU_ASSERT_EQUAL(sse_feed(&p, "\n", 1), 0);
    CU_ASSERT_FALSE(sse_pending(&p));
    CU_ASSERT_EQUAL_FATAL(log.count, 1);
    st_expect(&log, 0, "", "partial");
    CU_ASSERT_EQUAL(sse_feed(&p, "", 0), 0);
    CU_ASSERT_FALSE(sse_pending(&p));
    sse_free(&p);
}

static void test_free_and_reuse(void)
{
    struct st_log first, second;
    struct sse_parser p;

    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    sse_init(&p, ST_MAX_EVENT, st_cb, &first);
    CU_ASSERT_EQUAL(sse_feed(&p, "event: x\ndata: half", 19), 0);
    sse_free(&p);
    CU_ASSERT_PTR_NULL(p.line);
    CU_ASSERT_PTR_NULL(p.data);
    CU_ASSERT_FALSE(sse_pending(&p));
    sse_free(&p);                   /* twice is harmless */

    sse_init(&p, ST_MAX_EVENT, st_cb, &second);
    CU_ASSERT_EQUAL(sse_feed(&p, "data: fresh\n\n", 13), 0);
    CU_ASSERT_EQUAL(first.count, 0);
    CU_ASSERT_EQUAL_FATAL(second.count, 1);
    st_expect(&second, 0, "", "fresh");
    sse_free(&p);
}

static const CU_TestInfo sse_tests[] = {
    { "single event", test_single_event },
    { "mixed stream", test_mixed_stream },
    { "byte by byte equals whole", test_byte_by_byte },
    { "every 2-way split equals whole", test_every_two_way_split },
    { "every 3-way split", test_every_three_way_split },
    { "LF, CRLF and CR line ends", test_line_endings },
    { "CR and LF across feeds count once", test_cr_lf_across_feeds },
    { "CR at a feed end, then another byte", test_cr_then_other_byte },
    { "comments and keep-alives", test_comments_and_keepalives },
    { "field forms", test_field_forms },
    { "event names", test_event_names },
    { "data longer than the first buffer", test_long_data },
    { "max_event exceeded", test_max_event },
    { "callback -1 stops", test_callback_stops },
    { "sse_pending", test_pending },
    { "sse_free then sse_init", test_free_and_reuse },
    CU_TEST_INFO_NULL
};

int register_sse_tests(void)
{
    return unit_add_suite("sse", sse_tests);
}
