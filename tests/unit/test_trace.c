/* test_trace.c - a request's stages and its log line: the exact info and
 * debug formats, attempts beyond the fixed array, an attempt whose
 * worker died, requests refused before queueing, hostile model names,
 * truncation, and the outcome of each worker error code. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "trace.h"
#include "unit.h"

#define TT_T0        1000000000LL      /* receipt, µs on the clock */
#define TT_MS        1000LL
#define TT_SMALL_CAP 40
#define TT_GUARD     '#'

static struct cfg_target tt_targets[2] = {
    { .name = "up/a" }, { .name = "up/b" },
};
static const struct cfg tt_cfg = { .targets = tt_targets, .target_count = 2 };

/* The request of the README's example: a 503, a retry that answers. */
static void tt_two_attempts(struct trace *t, struct trace_req *r)
{
    memset(t, 0, sizeof(*t));
    trace_reset(t);
    trace_dispatched(t, TT_T0 + 400);
    trace_attempt_begin(t, 0, TT_T0 + 500);
    trace_attempt_end(t, TRACE_HTTP, 503, TT_T0 + 1500);
    trace_attempt_begin(t, 1, TT_T0 + 102 * TT_MS);
    trace_attempt_end(t, TRACE_HTTP, 200, TT_T0 + 130 * TT_MS);
    *r = (struct trace_req){
        .model = "default", .status = 200, .received_us = TT_T0,
        .queued_us = TT_T0 + 100, .first_byte_us = TT_T0 + 140 * TT_MS,
        .end_us = TT_T0 + 160 * TT_MS,
    };
}

static void test_info_line(void)
{
    char out[TRACE_LINE_MAX];
    struct trace t;
    struct trace_req r;
    size_t n;

    tt_two_attempts(&t, &r);
    n = trace_format(out, sizeof(out), &r, &t, &tt_cfg, false);
    CU_ASSERT_STRING_EQUAL(out, "model=default target=up/b status=200 "
                           "attempts=2 ms=160.0 first_byte_ms=140.0");
    CU_ASSERT_EQUAL(n, strlen(out));
    /* The target the worker reported wins over the trace's. */
    r.target = "up/a";
    trace_format(out, sizeof(out), &r, &t, &tt_cfg, false);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " target=up/a "));
}

static void test_debug_stages(void)
{
    char out[TRACE_LINE_MAX];
    struct trace t;
    struct trace_req r;

    tt_two_attempts(&t, &r);
    trace_format(out, sizeof(out), &r, &t, &tt_cfg, true);
    CU_ASSERT_STRING_EQUAL(out, "model=default target=up/b status=200 "
                           "attempts=2 ms=160.0 first_byte_ms=140.0 "
                           "stages=received:0,queued:0.1,dispatched:0.4,"
                           "attempt1:up/a@0.5->503@1.5,"
                           "attempt2:up/b@102.0->200@130.0,"
                           "first_byte:140.0,done:160.0");
}

static void test_many_attempts(void)
{
    char out[TRACE_LINE_MAX];
    struct trace t;
    struct trace_req r;

    tt_two_attempts(&t, &r);
    trace_reset(&t);
    for (int i = 0; i < 11; i++) {
        trace_attempt_begin(&t, 0, TT_T0 + (i + 1) * TT_MS);
        trace_attempt_end(&t, i < 10 ? TRACE_UNREACHABLE : TRACE_HTTP,
                          i < 10 ? 0 : 200, TT_T0 + (i + 1) * TT_MS + 500);
    }
    trace_format(out, sizeof(out), &r, &t, &tt_cfg, true);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " attempts=11 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "attempt7:up/a@7.0->unreachable@7.5,"
                                  "+3_more,attempt11:up/a@11.0->200@11.5,"));
    CU_ASSERT_PTR_NULL(strstr(out, "attempt8:"));
    /* No dispatch recorded after the reset: none shown. */
    CU_ASSERT_PTR_NULL(strstr(out, "dispatched"));
}

static void test_worker_died(void)
{
    char out[TRACE_LINE_MAX];
    struct trace t;
    struct trace_req r;

    tt_two_attempts(&t, &r);
    trace_reset(&t);
    trace_dispatched(&t, TT_T0 + 200);
    trace_attempt_begin(&t, 0, TT_T0 + 300);          /* its worker died */
    trace_dispatched(&t, TT_T0 + 50 * TT_MS);         /* re-queued, taken */
    trace_attempt_begin(&t, 1, TT_T0 + 51 * TT_MS);
    trace_attempt_end(&t, TRACE_CANCELLED, 0, TT_T0 + 60 * TT_MS);
    /* A second outcome for the same attempt is ignored. */
    trace_attempt_end(&t, TRACE_HTTP, 200, TT_T0 + 61 * TT_MS);
    r.status = 502;
    r.error = "worker_died";
    r.first_byte_us = 0;
    r.client_gone = true;
    r.gone_us = TT_T0 + 55 * TT_MS;
    r.end_us = TT_T0 + 70 * TT_MS;
    trace_format(out, sizeof(out), &r, &t, &tt_cfg, true);
    CU_ASSERT_STRING_EQUAL(out, "model=default target=up/b status=502 "
                           "attempts=2 ms=70.0 first_byte_ms=- "
                           "error=worker_died client_gone=1 "
                           "stages=received:0,queued:0.1,dispatched:0.2,"
                           "attempt1:up/a@0.3->lost,dispatched2:50.0,"
                           "attempt2:up/b@51.0->cancelled@60.0,"
                           "client_gone:55.0,failed:70.0");
}

/* A stream whose client got 200 and then an error event: logged with
 * the 200 it got, the error beside it, and as failed. */
static void test_stream_cut(void)
{
    char out[TRACE_LINE_MAX];
    struct trace t;
    struct trace_req r;

    tt_two_attempts(&t, &r);
    r.error = "upstream_idle";
    trace_format(out, sizeof(out), &r, &t, &tt_cfg, true);
    CU_ASSERT_STRING_EQUAL(out, "model=default target=up/b status=200 "
                           "attempts=2 ms=160.0 first_byte_ms=140.0 "
                           "error=upstream_idle "
                           "stages=received:0,queued:0.1,dispatched:0.4,"
                           "attempt1:up/a@0.5->503@1.5,"
                           "attempt2:up/b@102.0->200@130.0,"
                           "first_byte:140.0,failed:160.0");
}

static void test_refused(void)
{
    char out[TRACE_LINE_MAX];
    struct trace_req r = {
        .error = "request_too_large", .status = 413,
        .received_us = TT_T0, .first_byte_us = TT_T0 + 200,
        .end_us = TT_T0 + 200,
    };

    trace_format(out, sizeof(out), &r, NULL, &tt_cfg, true);
    CU_ASSERT_STRING_EQUAL(out, "model=- target=- status=413 attempts=0 "
                           "ms=0.2 first_byte_ms=0.2 error=request_too_large"
                           " stages=received:0,first_byte:0.2,failed:0.2");
}

/* A client's model name cannot add fields or lines to the log. */
static void test_hostile_model(void)
{
    char out[TRACE_LINE_MAX];
    struct trace_req r = {
        .model = "x status=200 a,b\"c\nd", .status = 404,
        .received_us = TT_T0, .end_us = TT_T0,
    };

    trace_format(out, sizeof(out), &r, NULL, NULL, false);
    CU_ASSERT_STRING_EQUAL(out, "model=x?status?200?a?b?c?d target=- "
                           "status=404 attempts=0 ms=0.0 first_byte_ms=-");
}

/* Torn records (a worker killed while writing) print, without reading
 * outside the configuration. */
static void test_bad_indices(void)
{
    char out[TRACE_LINE_MAX];
    struct trace t;
    struct trace_req r;

    tt_two_attempts(&t, &r);
    t.attempt[1].target = 99;
    t.attempt[1].outcome = 200;
    trace_format(out, sizeof(out), &r, &t, &tt_cfg, true);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " target=- "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "attempt2:-@102.0->-@130.0"));
}

static void test_truncated(void)
{
    char out[TT_SMALL_CAP + 1];
    struct trace t;
    struct trace_req r;
    size_t n;

    tt_two_attempts(&t, &r);
    out[TT_SMALL_CAP] = TT_GUARD;
    n = trace_format(out, TT_SMALL_CAP, &r, &t, &tt_cfg, true);
    CU_ASSERT_EQUAL(n, TT_SMALL_CAP - 1);
    CU_ASSERT_EQUAL(strlen(out), TT_SMALL_CAP - 1);
    CU_ASSERT_STRING_EQUAL(out + n - 3, "...");
    CU_ASSERT_EQUAL(out[TT_SMALL_CAP], TT_GUARD);
    CU_ASSERT_EQUAL(strncmp(out, "model=default target=up/b", 25), 0);
}

static void test_outcomes(void)
{
    CU_ASSERT_EQUAL(trace_outcome_of("upstream_error", 503), TRACE_HTTP);
    CU_ASSERT_EQUAL(trace_outcome_of("upstream_rejected", 400), TRACE_HTTP);
    CU_ASSERT_EQUAL(trace_outcome_of("upstream_auth_failed", 401),
                    TRACE_HTTP);
    CU_ASSERT_EQUAL(trace_outcome_of("upstream_error", 0), TRACE_ERROR);
    CU_ASSERT_EQUAL(trace_outcome_of("upstream_unreachable", 0),
                    TRACE_UNREACHABLE);
    CU_ASSERT_EQUAL(trace_outcome_of("timeout", 0), TRACE_TIMEOUT);
    CU_ASSERT_EQUAL(trace_outcome_of("upstream_idle", 200), TRACE_IDLE);
    CU_ASSERT_EQUAL(trace_outcome_of("bad_upstream_response", 200),
                    TRACE_BAD_RESPONSE);
    CU_ASSERT_EQUAL(trace_outcome_of("incomplete_stream", 200),
                    TRACE_BAD_RESPONSE);
    CU_ASSERT_EQUAL(trace_outcome_of("missing_credentials", 0), TRACE_ERROR);
    CU_ASSERT_EQUAL(trace_outcome_of(NULL, 0), TRACE_ERROR);
}

static void test_end_without_begin(void)
{
    struct trace t;

    memset(&t, 0, sizeof(t));
    trace_attempt_end(&t, TRACE_HTTP, 200, TT_T0);
    CU_ASSERT_EQUAL(t.attempts, 0);
    CU_ASSERT_EQUAL(t.attempt[0].end_us, 0);
}

/* The tokens of an END frame follow first_byte_ms; none said, none
 * shown (an upstream that reports no usage is not "0 tokens"). */
static void test_tokens(void)
{
    char out[TRACE_LINE_MAX];
    struct trace_req r = {
        .model = "m", .status = 200, .usage = true, .prompt_tokens = 12,
        .completion_tokens = 34, .received_us = TT_T0,
        .first_byte_us = TT_T0 + 100, .end_us = TT_T0 + 200,
        .error = "upstream_idle",
    };

    trace_format(out, sizeof(out), &r, NULL, NULL, false);
    CU_ASSERT_STRING_EQUAL(out, "model=m target=- status=200 attempts=0 "
                           "ms=0.2 first_byte_ms=0.1 prompt_tokens=12 "
                           "completion_tokens=34 error=upstream_idle");
    r.usage = false;
    trace_format(out, sizeof(out), &r, NULL, NULL, false);
    CU_ASSERT_PTR_NULL(strstr(out, "tokens"));
}

static const CU_TestInfo trace_tests[] = {
    { "info line", test_info_line },
    { "debug stages in order", test_debug_stages },
    { "attempts beyond the array: +N_more, the last kept", test_many_attempts },
    { "worker died mid-attempt, job taken again", test_worker_died },
    { "stream cut: status 200, error=, failed", test_stream_cut },
    { "refused before queueing", test_refused },
    { "hostile model name", test_hostile_model },
    { "torn record: bad indices", test_bad_indices },
    { "truncated line ends in ...", test_truncated },
    { "outcome of each error code", test_outcomes },
    { "an end without a begin is ignored", test_end_without_begin },
    { "tokens after first_byte_ms, only when said", test_tokens },
    CU_TEST_INFO_NULL
};

int register_trace_tests(void)
{
    return unit_add_suite("trace", trace_tests);
}
