/* test_ctlcli.c - pipelinectl's command line (options before or after
 * the command, negative numbers as words, "--", unknown options and
 * missing values refused) and the age shown in its workers table. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "ctlcli.h"
#include "unit.h"

#define CTLT_ARGV_MAX 8
#define CTLT_NOW      1700000000LL
#define CTLT_MINUTE   60
#define CTLT_HOUR     3600
#define CTLT_DAY      86400

static char ctlt_err[CTLCLI_ERR_MAX];
static const char *ctlt_words[CTLT_ARGV_MAX];

/* Parses the NULL-terminated list after "pipelinectl". */
static int ctlt_parse(struct ctlcli_args *a, const char *const *list)
{
    char *argv[CTLT_ARGV_MAX];
    int argc = 0;

    argv[argc++] = (char *)"pipelinectl";
    while (*list != NULL && argc < CTLT_ARGV_MAX)
        argv[argc++] = (char *)*list++;
    ctlt_err[0] = '\0';
    return ctlcli_parse(argc, argv, ctlt_words, a, ctlt_err,
                        sizeof(ctlt_err));
}

static void test_options_after_command(void)
{
    static const char *const list[] = { "stats", "--json", "-s", "/x.sock",
                                        NULL };
    struct ctlcli_args a;

    CU_ASSERT_EQUAL(ctlt_parse(&a, list), 0);
    CU_ASSERT_TRUE(a.json);
    CU_ASSERT_STRING_EQUAL(a.socket, "/x.sock");
    CU_ASSERT_EQUAL(a.word_count, 1);
    CU_ASSERT_STRING_EQUAL(a.words[0], "stats");
}

static void test_options_before_command(void)
{
    static const char *const list[] = { "-c/etc/p.conf", "--json", "breaker",
                                        "reset", "up/m", NULL };
    struct ctlcli_args a;

    CU_ASSERT_EQUAL(ctlt_parse(&a, list), 0);
    CU_ASSERT_TRUE(a.json);
    CU_ASSERT_PTR_NULL(a.socket);
    CU_ASSERT_STRING_EQUAL(a.config, "/etc/p.conf");
    CU_ASSERT_EQUAL(a.word_count, 3);
    CU_ASSERT_STRING_EQUAL(a.words[2], "up/m");
}

static void test_login_keeps_its_words(void)
{
    static const char *const list[] = { "-c", "p.conf", "login", "qwen",
                                        NULL };
    struct ctlcli_args a;

    CU_ASSERT_EQUAL(ctlt_parse(&a, list), 0);
    CU_ASSERT_STRING_EQUAL(a.config, "p.conf");
    CU_ASSERT_EQUAL(a.word_count, 2);
    CU_ASSERT_STRING_EQUAL(a.words[0], "login");
    CU_ASSERT_STRING_EQUAL(a.words[1], "qwen");
}

static void test_negative_number_is_a_word(void)
{
    static const char *const list[] = { "scale", "-2", "--json", NULL };
    struct ctlcli_args a;

    CU_ASSERT_EQUAL(ctlt_parse(&a, list), 0);
    CU_ASSERT_TRUE(a.json);
    CU_ASSERT_EQUAL(a.word_count, 2);
    CU_ASSERT_STRING_EQUAL(a.words[1], "-2");
}

static void test_double_dash_ends_options(void)
{
    static const char *const list[] = { "breaker", "--", "reset", "--json",
                                        NULL };
    struct ctlcli_args a;

    CU_ASSERT_EQUAL(ctlt_parse(&a, list), 0);
    CU_ASSERT_FALSE(a.json);
    CU_ASSERT_EQUAL(a.word_count, 3);
    CU_ASSERT_STRING_EQUAL(a.words[2], "--json");
}

static void test_refusals(void)
{
    static const char *const unknown[] = { "stats", "--jsn", NULL };
    static const char *const no_value[] = { "stats", "-s", NULL };
    static const char *const help[] = { "--help", NULL };
    struct ctlcli_args a;

    CU_ASSERT_EQUAL(ctlt_parse(&a, unknown), -1);
    CU_ASSERT_STRING_EQUAL(ctlt_err, "unknown option --jsn");
    CU_ASSERT_EQUAL(ctlt_parse(&a, no_value), -1);
    CU_ASSERT_STRING_EQUAL(ctlt_err, "option -s needs a value");
    CU_ASSERT_EQUAL(ctlt_parse(&a, help), 0);
    CU_ASSERT_TRUE(a.help);
    CU_ASSERT_EQUAL(a.word_count, 0);
}

static void test_age(void)
{
    char buf[CTLCLI_AGE_MAX];

    CU_ASSERT_STRING_EQUAL(ctlcli_format_age(CTLT_NOW, CTLT_NOW, buf,
                                             sizeof(buf)), "0s");
    CU_ASSERT_STRING_EQUAL(ctlcli_format_age(CTLT_NOW + 5, CTLT_NOW, buf,
                                             sizeof(buf)), "0s");
    CU_ASSERT_STRING_EQUAL(ctlcli_format_age(CTLT_NOW - 59, CTLT_NOW, buf,
                                             sizeof(buf)), "59s");
    CU_ASSERT_STRING_EQUAL(ctlcli_format_age(
        CTLT_NOW - 3 * CTLT_MINUTE - 12, CTLT_NOW, buf, sizeof(buf)),
        "3m12s");
    CU_ASSERT_STRING_EQUAL(ctlcli_format_age(
        CTLT_NOW - 2 * CTLT_HOUR - 5 * CTLT_MINUTE - 7, CTLT_NOW, buf,
        sizeof(buf)), "2h05m");
    CU_ASSERT_STRING_EQUAL(ctlcli_format_age(
        CTLT_NOW - 4 * CTLT_DAY - 7 * CTLT_HOUR, CTLT_NOW, buf,
        sizeof(buf)), "4d07h");
}

static const CU_TestInfo ctlcli_tests[] = {
    { "options after the command", test_options_after_command },
    { "options before the command", test_options_before_command },
    { "login keeps its words", test_login_keeps_its_words },
    { "a negative number is a word", test_negative_number_is_a_word },
    { "-- ends the options", test_double_dash_ends_options },
    { "unknown option, missing value, help", test_refusals },
    { "a worker's age", test_age },
    CU_TEST_INFO_NULL
};

int register_ctlcli_tests(void)
{
    return unit_add_suite("ctlcli", ctlcli_tests);
}
