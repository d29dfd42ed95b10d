/* test_main.c - the CUnit runner: registers every module's suite, runs
 * them all (or only the suite named in argv[1]) in verbose mode, and
 * prints "unit: N passed, M failed" counting tests, not asserts. Exits
 * non-zero when a test failed or a suite could not be registered. */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "unit.h"

#define UNIT_EXIT_OK      0
#define UNIT_EXIT_FAILED  1
#define UNIT_EXIT_USAGE   2

static int (*const unit_registrars[])(void) = {
    register_config_tests,
    register_pqueue_tests,
    register_arena_tests,
    register_shm_tests,
    register_slots_tests,
    register_frame_tests,
    register_sse_tests,
    register_request_tests,
    register_apierror_tests,
    register_backoff_tests,
    register_histogram_tests,
    register_util_tests,
    register_jsonscan_tests,
    register_httpparse_tests,
    register_balancer_tests,
    register_breaker_tests,
    register_compat_tests,
    register_oauth_tests,
    register_trace_tests,
    register_chan_tests,
    register_http_tests,
    register_ctlcli_tests,
    register_call_tests,
    register_bucket_tests,
    register_budgetlease_tests,
    register_health_tests,
    register_provhealth_tests,
    register_clientbudget_tests,
    register_budgets_tests,
    register_provkind_tests,
    register_offload_tests,
    register_anthropic_door_tests,
    register_anthropic_up_tests,
    register_capture_tests,
    register_clusterwire_tests,
    register_cwhealth_tests,
    register_oauthwire_tests,
    register_httpaddr_tests,
    register_httpc_tests,
    register_httpc_fail_tests,
};

int unit_add_suite(const char *name, const CU_TestInfo *tests)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);

    if (suite == NULL)
        return -1;
    for (const CU_TestInfo *t = tests; t->pName != NULL; t++)
        if (CU_add_test(suite, t->pName, t->pTestFunc) == NULL)
            return -1;
    return 0;
}

/* Registers every suite; -1 if CUnit refused one. */
static int unit_register_all(void)
{
    size_t n = sizeof(unit_registrars) / sizeof(unit_registrars[0]);

    for (size_t i = 0; i < n; i++) {
        if (unit_registrars[i]() < 0) {
            fprintf(stderr, "unit: registering suite %zu failed: %s\n", i,
                    CU_get_error_msg());
            return -1;
        }
    }
    return 0;
}

/* Runs the suite called name, or all when name is NULL. -1 when there is
 * no such suite or CUnit itself reported an error. */
static int unit_run(const char *name)
{
    CU_pSuite suite;

    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (name == NULL)
        return CU_basic_run_tests() == CUE_SUCCESS ? 0 : -1;
    suite = CU_get_suite(name);
    if (suite == NULL) {
        fprintf(stderr, "unit: no suite named \"%s\"\n", name);
        return -1;
    }
    return CU_basic_run_suite(suite) == CUE_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    unsigned int run, failed;
    int status = UNIT_EXIT_OK;

    if (argc > 2) {
        fprintf(stderr, "usage: %s [SUITE]\n", argv[0]);
        return UNIT_EXIT_USAGE;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "unit: %s\n", CU_get_error_msg());
        return UNIT_EXIT_FAILED;
    }
    if (unit_register_all() < 0) {
        CU_cleanup_registry();
        return UNIT_EXIT_FAILED;
    }
    if (unit_run(only) < 0)
        status = UNIT_EXIT_FAILED;
    /* Read the counts before CU_cleanup_registry() clears them. */
    run = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    if (failed > 0 || CU_get_number_of_failures() > 0)
        status = UNIT_EXIT_FAILED;
    printf("\nunit: %u passed, %u failed\n", run - failed, failed);
    CU_cleanup_registry();
    return status;
}
