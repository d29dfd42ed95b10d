/* unit.h - what the CUnit runner (test_main.c) and the per-module test
 * files share: each file registers one suite through unit_add_suite(),
 * and randomized tests draw from a seeded generator so a failure replays
 * the same way every run. */
#ifndef RCC_UNIT_H
#define RCC_UNIT_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

/* Tests that demonstrate a bug in a module carry this prefix in their
 * CUnit name so a failing run says at once what it is. */
#define UNIT_BUG_PREFIX "BUG: "

/* Adds a suite named name holding tests (terminated by
 * CU_TEST_INFO_NULL). 0, or -1 when CUnit refused it. */
int unit_add_suite(const char *name, const CU_TestInfo *tests);

/* One per test file; each adds its suite. 0 or -1. */
int register_config_tests(void);
int register_pqueue_tests(void);
int register_arena_tests(void);
int register_shm_tests(void);
int register_slots_tests(void);
int register_frame_tests(void);
int register_sse_tests(void);
int register_request_tests(void);
int register_apierror_tests(void);
int register_backoff_tests(void);
int register_histogram_tests(void);
int register_util_tests(void);
int register_jsonscan_tests(void);
int register_httpparse_tests(void);
int register_balancer_tests(void);
int register_breaker_tests(void);
int register_compat_tests(void);
int register_oauth_tests(void);
int register_provkind_tests(void);
int register_offload_tests(void);
int register_trace_tests(void);
int register_chan_tests(void);
int register_http_tests(void);
int register_ctlcli_tests(void);
int register_call_tests(void);
int register_bucket_tests(void);
int register_budgetlease_tests(void);
int register_health_tests(void);
int register_provhealth_tests(void);
int register_clientbudget_tests(void);
int register_budgets_tests(void);
int register_anthropic_door_tests(void);
int register_anthropic_up_tests(void);
int register_capture_tests(void);
int register_clusterwire_tests(void);
int register_cwhealth_tests(void);
int register_oauthwire_tests(void);
int register_httpaddr_tests(void);
int register_httpc_tests(void);
int register_httpc_fail_tests(void);

/* xorshift64: a deterministic generator for randomized tests, kept
 * apart from backoff_rand() so the tests do not trust the code they
 * test. *state must not be 0. */
static inline uint64_t unit_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* An integer in [0, bound) for bound > 0 (the modulo bias is harmless
 * for tests). */
static inline uint64_t unit_rand_below(uint64_t *state, uint64_t bound)
{
    return unit_rand(state) % bound;
}

#endif
