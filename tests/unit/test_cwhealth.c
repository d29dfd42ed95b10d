/* test_cwhealth.c - the health results cluster mode's instances send
 * each other (cwhealth.h): the exact encoding, a round trip, and the
 * decoder refusing anything that is not one. */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "cwhealth.h"
#include "health.h"
#include "unit.h"

static void test_round_trip(void)
{
    struct cwh_result in = { .state = HEALTH_UNHEALTHY,
                             .consecutive_failures = 4294967295u }, out;
    char text[CWH_MSG_MAX];

    strcpy(in.origin, "gw-a");
    strcpy(in.provider, "up|with bars");
    CU_ASSERT_EQUAL(cwh_encode(text, sizeof(text), &in), 0);
    CU_ASSERT_STRING_EQUAL(text, "H|2|4294967295|0|gw-a|up|with bars");
    CU_ASSERT_EQUAL(cwh_decode(text, strlen(text), &out), 0);
    CU_ASSERT_EQUAL(memcmp(&in, &out, sizeof(in)), 0);

    in.state = HEALTH_HEALTHY;
    in.consecutive_failures = 0;
    in.consecutive_successes = 12;
    CU_ASSERT_EQUAL(cwh_encode(text, sizeof(text), &in), 0);
    CU_ASSERT_STRING_EQUAL(text, "H|1|0|12|gw-a|up|with bars");
    CU_ASSERT_EQUAL(cwh_decode(text, strlen(text), &out), 0);
    CU_ASSERT_EQUAL(out.consecutive_successes, 12);

    /* Invalid results are not encoded. */
    in.consecutive_failures = 1;
    CU_ASSERT_EQUAL(cwh_encode(text, sizeof(text), &in), -1);
    in.consecutive_failures = 0;
    in.state = 3;
    CU_ASSERT_EQUAL(cwh_encode(text, sizeof(text), &in), -1);
    in.state = HEALTH_UNKNOWN;
    strcpy(in.origin, "bad origin");
    CU_ASSERT_EQUAL(cwh_encode(text, sizeof(text), &in), -1);
    strcpy(in.origin, "gw");
    in.provider[0] = '\0';
    CU_ASSERT_EQUAL(cwh_encode(text, sizeof(text), &in), -1);
    strcpy(in.provider, "p");
    CU_ASSERT_EQUAL(cwh_encode(text, 8, &in), -1);
}

static void test_refused(void)
{
    static const char *const bad[] = {
        "", "H", "H|", "H|1", "H|1|0", "H|1|0|0", "H|1|0|0|", "H|1|0|0|gw",
        "H|1|0|0|gw|", "O|1|0|0|gw|p", "h|1|0|0|gw|p", "H|3|0|0|gw|p",
        "H|01|0|0|gw|p", "H|1|00|0|gw|p", "H|1|0|01|gw|p", "H|1|1|1|gw|p",
        "H|1|4294967296|0|gw|p", "H|1|12345678901|0|gw|p", "H|-1|0|0|gw|p",
        "H||0|0|gw|p", "H|1|0|0||p", "H|1|0|0|g w|p", "H 1|0|0|gw|p",
        "H|1|x|0|gw|p", "H|1|0|0 |gw|p",
    };
    struct cwh_result r;
    char longname[CW_NAME_MAX + 16];
    char nul[] = "H|1|0|0|gw|a\0b";
    char nul_origin[] = "H|1|0|0|g\0|p";
    int head;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cwh_decode(bad[i], strlen(bad[i]), &r) != -1)
            fprintf(stderr, "\n    accepted [%s]\n", bad[i]);
        CU_ASSERT_EQUAL(cwh_decode(bad[i], strlen(bad[i]), &r), -1);
    }
    CU_ASSERT_EQUAL(cwh_decode(nul, sizeof(nul) - 1, &r), -1);
    CU_ASSERT_EQUAL(cwh_decode(nul_origin, sizeof(nul_origin) - 1, &r), -1);
    head = snprintf(longname, sizeof(longname), "H|0|0|0|gw|");
    memset(longname + head, 'n', CW_NAME_MAX);
    CU_ASSERT_EQUAL(cwh_decode(longname, (size_t)head + CW_NAME_MAX, &r), -1);
    CU_ASSERT_EQUAL(cwh_decode(longname, (size_t)head + CW_NAME_MAX - 1, &r),
                    0);
    /* Only len bytes are read. */
    CU_ASSERT_EQUAL(cwh_decode("H|0|0|0|gw|name-and-more", 15, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.provider, "name");
}

static const CU_TestInfo cwhealth_tests[] = {
    { "encoding and round trip", test_round_trip },
    { "malformed results refused", test_refused },
    CU_TEST_INFO_NULL
};

int register_cwhealth_tests(void)
{
    return unit_add_suite("cwhealth", cwhealth_tests);
}
