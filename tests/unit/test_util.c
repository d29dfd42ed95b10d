/* test_util.c - the small helpers: whole-integer parsing with bounds,
 * request id checks and generation, bounded copies, clocks and the
 * random source. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "util.h"
#include "unit.h"

#define UT_IDS            100000
#define UT_ID_LEN         20        /* "req-" and 16 hex digits */
#define UT_PREFIX         0x1234ABCD5678EF90ULL
#define UT_UNTOUCHED      (-4242LL)
#define UT_EPOCH_2020_MS  1577836800000LL
#define UT_RANDOM_LEN     64
#define UT_GUARD          '#'

/* util_parse_int must refuse s and leave *out alone. */
static void ut_refused(const char *s, long long min, long long max)
{
    long long v = UT_UNTOUCHED;

    CU_ASSERT_EQUAL(util_parse_int(s, min, max, &v), -1);
    CU_ASSERT_EQUAL(v, UT_UNTOUCHED);
}

static void ut_parsed(const char *s, long long min, long long max,
                      long long want)
{
    long long v = UT_UNTOUCHED;

    CU_ASSERT_EQUAL(util_parse_int(s, min, max, &v), 0);
    CU_ASSERT_EQUAL(v, want);
}

static void test_parse_int(void)
{
    ut_parsed("0", 0, 10, 0);
    ut_parsed("42", 0, 100, 42);
    ut_parsed("-7", -10, 10, -7);
    ut_parsed("+7", -10, 10, 7);
    ut_parsed("007", 0, 10, 7);
    ut_parsed("10", 0, 10, 10);                 /* bounds inclusive */
    ut_parsed("-10", -10, 10, -10);
    ut_parsed("9223372036854775807", LLONG_MIN, LLONG_MAX, LLONG_MAX);
    ut_parsed("-9223372036854775808", LLONG_MIN, LLONG_MAX, LLONG_MIN);

    ut_refused(NULL, 0, 10);
    ut_refused("", 0, 10);
    ut_refused(" 1", 0, 10);
    ut_refused("\t1", 0, 10);
    ut_refused("1 ", 0, 10);
    ut_refused("1\n", 0, 10);
    ut_refused("1a", 0, 10);
    ut_refused("a1", 0, 10);
    ut_refused("0x10", 0, 100);
    ut_refused("1.0", 0, 10);
    ut_refused("-", -10, 10);
    ut_refused("+", -10, 10);
    ut_refused("--1", -10, 10);
    ut_refused("11", 0, 10);
    ut_refused("-1", 0, 10);
    ut_refused("9223372036854775808", LLONG_MIN, LLONG_MAX);
    ut_refused("-9223372036854775809", LLONG_MIN, LLONG_MAX);
    ut_refused("99999999999999999999999", LLONG_MIN, LLONG_MAX);
}

static void test_request_id_valid(void)
{
    char id[UTIL_REQUEST_ID_MAX + 1];

    CU_ASSERT_TRUE(util_request_id_valid("a"));
    CU_ASSERT_TRUE(util_request_id_valid("req-0123.abc_DEF:9"));
    CU_ASSERT_FALSE(util_request_id_valid(NULL));
    CU_ASSERT_FALSE(util_request_id_valid(""));
    CU_ASSERT_FALSE(util_request_id_valid("a b"));
    CU_ASSERT_FALSE(util_request_id_valid("a/b"));
    CU_ASSERT_FALSE(util_request_id_valid("a\nb"));
    CU_ASSERT_FALSE(util_request_id_valid("a\"b"));
    CU_ASSERT_FALSE(util_request_id_valid("\xc3\xa9"));
    CU_ASSERT_FALSE(util_request_id_valid("id\r"));

    memset(id, 'x', sizeof(id));
    id[UTIL_REQUEST_ID_MAX - 1] = '\0';         /* 63 bytes: fits */
    CU_ASSERT_TRUE(util_request_id_valid(id));
    id[UTIL_REQUEST_ID_MAX - 1] = 'x';
    id[UTIL_REQUEST_ID_MAX] = '\0';             /* 64 bytes: too long */
    CU_ASSERT_FALSE(util_request_id_valid(id));
}

static int ut_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_request_id_make(void)
{
    char (*ids)[UT_ID_LEN + 1] = malloc(UT_IDS * sizeof(*ids));
    char other[UTIL_REQUEST_ID_MAX];
    int bad_form = 0, dups = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    for (uint64_t c = 0; c < UT_IDS; c++) {
        util_request_id_make(ids[c], sizeof(ids[c]), UT_PREFIX, c);
        if (strlen(ids[c]) != UT_ID_LEN || strncmp(ids[c], "req-", 4) != 0 ||
            strspn(ids[c] + 4, "0123456789abcdef") != UT_ID_LEN - 4 ||
            !util_request_id_valid(ids[c]))
            bad_form++;
    }
    qsort(ids, UT_IDS, sizeof(*ids), ut_cmp);
    for (size_t i = 1; i < UT_IDS; i++)
        if (strcmp(ids[i], ids[i - 1]) == 0)
            dups++;
    CU_ASSERT_EQUAL(bad_form, 0);
    CU_ASSERT_EQUAL(dups, 0);
    free(ids);

    /* Another process (prefix) gives another id for the same counter. */
    util_request_id_make(other, sizeof(other), UT_PREFIX, 1);
    {
        char mine[UTIL_REQUEST_ID_MAX];

        util_request_id_make(mine, sizeof(mine), UT_PREFIX + 1, 1);
        CU_ASSERT_STRING_NOT_EQUAL(mine, other);
        /* The same id as "req-%016llx" of the mixed counter. */
        snprintf(other, sizeof(other), "req-%016llx", (unsigned long long)
                 (UT_PREFIX ^ (7 * 0x9E3779B97F4A7C15ULL)));
        util_request_id_make(mine, sizeof(mine), UT_PREFIX, 7);
        CU_ASSERT_STRING_EQUAL(mine, other);
    }
    /* A short buffer gets a terminated prefix. */
    memset(other, UT_GUARD, sizeof(other));
    util_request_id_make(other, 8, UT_PREFIX, 1);
    CU_ASSERT_EQUAL(strlen(other), 7);
    CU_ASSERT_EQUAL(other[8], UT_GUARD);
}

static void test_strlcpy(void)
{
    char dst[8];

    memset(dst, UT_GUARD, sizeof(dst));
    CU_ASSERT_EQUAL(util_strlcpy(dst, "abc", sizeof(dst)), 0);
    CU_ASSERT_STRING_EQUAL(dst, "abc");
    CU_ASSERT_EQUAL(util_strlcpy(dst, "1234567", sizeof(dst)), 0);
    CU_ASSERT_STRING_EQUAL(dst, "1234567");
    CU_ASSERT_EQUAL(util_strlcpy(dst, "12345678", sizeof(dst)), -1);
    CU_ASSERT_STRING_EQUAL(dst, "1234567");
    CU_ASSERT_EQUAL(util_strlcpy(dst, "a much longer string", sizeof(dst)),
                    -1);
    CU_ASSERT_STRING_EQUAL(dst, "a much ");
    CU_ASSERT_EQUAL(util_strlcpy(dst, "", sizeof(dst)), 0);
    CU_ASSERT_STRING_EQUAL(dst, "");
    CU_ASSERT_EQUAL(util_strlcpy(dst, "x", 1), -1);
    CU_ASSERT_STRING_EQUAL(dst, "");
    dst[0] = UT_GUARD;
    CU_ASSERT_EQUAL(util_strlcpy(dst, "x", 0), -1);
    CU_ASSERT_EQUAL(dst[0], UT_GUARD);
}

static void test_clocks(void)
{
    int64_t a = util_now_ms(), b = util_now_ms();

    CU_ASSERT(a >= 0);
    CU_ASSERT(b >= a);
    CU_ASSERT(util_wall_ms() > UT_EPOCH_2020_MS);
}

static void test_ms_to_tv(void)
{
    struct timeval tv = util_ms_to_tv(0);

    CU_ASSERT_EQUAL(tv.tv_sec, 0);
    CU_ASSERT_EQUAL(tv.tv_usec, 0);
    tv = util_ms_to_tv(1);
    CU_ASSERT_EQUAL(tv.tv_sec, 0);
    CU_ASSERT_EQUAL(tv.tv_usec, 1000);
    tv = util_ms_to_tv(12345);
    CU_ASSERT_EQUAL(tv.tv_sec, 12);
    CU_ASSERT_EQUAL(tv.tv_usec, 345000);
    tv = util_ms_to_tv(86400000LL * 365);
    CU_ASSERT_EQUAL(tv.tv_sec, 86400LL * 365);
    CU_ASSERT_EQUAL(tv.tv_usec, 0);
    tv = util_ms_to_tv(-5);        /* a deadline already past: at once */
    CU_ASSERT_EQUAL(tv.tv_sec, 0);
    CU_ASSERT_EQUAL(tv.tv_usec, 0);
}

static void test_random_bytes(void)
{
    unsigned char a[UT_RANDOM_LEN], b[UT_RANDOM_LEN];

    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    CU_ASSERT_EQUAL(util_random_bytes(a, sizeof(a)), 0);
    CU_ASSERT_EQUAL(util_random_bytes(b, sizeof(b)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
    CU_ASSERT_EQUAL(util_random_bytes(a, 0), 0);
}

static const CU_TestInfo util_tests[] = {
    { "milliseconds to a timeval", test_ms_to_tv },
    { "util_parse_int edge cases", test_parse_int },
    { "util_request_id_valid", test_request_id_valid },
    { "util_request_id_make unique", test_request_id_make },
    { "util_strlcpy truncation", test_strlcpy },
    { "clocks", test_clocks },
    { "util_random_bytes", test_random_bytes },
    CU_TEST_INFO_NULL
};

int register_util_tests(void)
{
    return unit_add_suite("util", util_tests);
}
