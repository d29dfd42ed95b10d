/* test_budgets.c - the pure parts of rate budgets and token accounting
 * outside bucket.c and clientbudget.c (their own suites): client key
 * groups in the configuration (names, limits, one name with two
 * budgets refused at its line, keys kept apart from names), target
 * rpm/tpm ranges, asking for include_usage and recognising its usage
 * chunk (compat.c), and client= in the log line (trace.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "compat.h"
#include "config.h"
#include "trace.h"
#include "unit.h"

#define BT_TEMPLATE "/tmp/rcc-unit-budgets-XXXXXX"
#define BT_PATH_MAX 64
#define BT_P "providers = ( { name = \"l\"; type = \"mock\"; } );\n"
#define BT_V "virtual_models = ( { name = \"v\"; targets = ( " \
             "{ provider = \"l\"; model = \"m\"; } ); } );\n"

/* Loads text from a temporary file; NULL with the message in err. */
static struct cfg *bt_load(const char *text, char *err, size_t errlen)
{
    char path[BT_PATH_MAX] = BT_TEMPLATE;
    int fd = mkstemp(path);
    struct cfg *cfg;
    FILE *f;

    if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    cfg = cfg_load(path, err, errlen, NULL);
    unlink(path);
    return cfg;
}

/* Refused with what in the message at line (FILE:LINE). */
static void bt_refused(const char *text, int line, const char *what)
{
    char err[CFG_ERR_MAX], at[32];
    struct cfg *cfg = bt_load(text, err, sizeof(err));

    CU_ASSERT_PTR_NULL(cfg);
    snprintf(at, sizeof(at), ":%d: ", line);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, at));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
    if (cfg != NULL || strstr(err, at) == NULL || strstr(err, what) == NULL)
        fprintf(stderr, "\n    wanted line %d \"%s\", got: %s\n", line,
                what, cfg ? "(loaded)" : err);
    cfg_free(&cfg);
}

static void test_client_groups(void)
{
    char err[CFG_ERR_MAX];
    struct cfg *cfg = bt_load(
        "clients = { api_keys = ( \"sk-plain\",\n"
        "  { key = \"sk-a1\"; name = \"team-a\"; rpm = 600; tpm = 100000; },\n"
        "  { key = \"sk-a2\"; name = \"team-a\"; rpm = 600; tpm = 100000; },\n"
        "  { key = \"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"
        "d15d6c15b0f00a08\"; name = \"b.2_x\"; } ); };\n" BT_P BT_V,
        err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->client_key_count, 4);
    CU_ASSERT_STRING_EQUAL(cfg->client_keys[0], "sk-plain");
    CU_ASSERT_PTR_NULL(cfg->clients[0].name);
    CU_ASSERT_STRING_EQUAL(cfg->client_keys[1], "sk-a1");
    CU_ASSERT_STRING_EQUAL(cfg->clients[1].name, "team-a");
    CU_ASSERT_EQUAL(cfg->clients[1].rpm, 600);
    CU_ASSERT_EQUAL(cfg->clients[1].tpm, 100000);
    CU_ASSERT_STRING_EQUAL(cfg->clients[2].name, "team-a");
    CU_ASSERT_STRING_EQUAL(cfg->clients[3].name, "b.2_x");
    CU_ASSERT_EQUAL(cfg->clients[3].rpm, 0);
    CU_ASSERT_EQUAL(cfg->clients[3].tpm, 0);
    CU_ASSERT_EQUAL(cfg->targets[0].rpm, 0);
    cfg_free(&cfg);
}

static void test_client_refusals(void)
{
    bt_refused("clients = { api_keys = (\n  { name = \"a\"; } ); };\n"
               BT_P BT_V, 2, "missing required key 'key'");
    bt_refused("clients = { api_keys = (\n  { key = \"k\"; } ); };\n"
               BT_P BT_V, 2, "missing required key 'name'");
    bt_refused("clients = { api_keys = (\n  { key = \"k\"; name = \"a\";\n"
               "    colour = 1; } ); };\n" BT_P BT_V, 3,
               "unknown key 'colour' in a client key");
    bt_refused("clients = { api_keys = (\n  { key = \"k\"; name = \"a\";\n"
               "    rpm = 0; } ); };\n" BT_P BT_V, 3,
               "'rpm' must be between 1 and 100000000");
    bt_refused("clients = { api_keys = (\n  { key = \"k\"; name = \"a\";\n"
               "    tpm = 2000000001; } ); };\n" BT_P BT_V, 3,
               "'tpm' must be between 1 and 2000000000");
    bt_refused("clients = { api_keys = (\n  { key = \"k\";\n"
               "    name = \"a b\"; } ); };\n" BT_P BT_V, 3, "'name' must be");
    bt_refused("clients = { api_keys = (\n  { key = \"k\";\n"
               "    name = \"-\"; } ); };\n" BT_P BT_V, 3, "'name' must be");
    bt_refused("clients = { api_keys = (\n  { key = \"k\";\n"
               "    name = \"\"; } ); };\n" BT_P BT_V, 3, "must not be empty");
    bt_refused("clients = { api_keys = (\n"
               "  { key = \"k1\"; name = \"a\"; rpm = 5; },\n"
               "  { key = \"k2\"; name = \"a\"; rpm = 6; } ); };\n"
               BT_P BT_V, 3, "client \"a\" is named before with other "
               "limits");
    bt_refused("clients = { api_keys = (\n  5 ); };\n" BT_P BT_V, 2,
               "each client key must be a string or a group");
}

static void test_target_limits(void)
{
    char err[CFG_ERR_MAX];
    struct cfg *cfg = bt_load(BT_P "virtual_models = ( { name = \"v\"; "
                              "targets = ( { provider = \"l\"; model = "
                              "\"m\"; rpm = 100000000; tpm = 2000000000; "
                              "} ); } );\n", err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->targets[0].rpm, CFG_MAX_RPM);
    CU_ASSERT_EQUAL(cfg->targets[0].tpm, CFG_MAX_TPM);
    cfg_free(&cfg);
    bt_refused(BT_P "virtual_models = ( { name = \"v\"; targets = (\n"
               "  { provider = \"l\"; model = \"m\"; rpm = 0; } ); } );\n",
               3, "'rpm' must be between 1 and");
    bt_refused(BT_P "virtual_models = ( { name = \"v\"; targets = (\n"
               "  { provider = \"l\"; model = \"m\"; tpm = 1.5; } ); } );\n",
               3, "'tpm' must be an integer");
}

/* compat_ask_usage on body: its return, and the result's text. */
static int bt_ask(const char *body, char **out)
{
    size_t n = 0;
    int rc = compat_ask_usage(body, strlen(body), out, &n);

    if (rc == 1)
        CU_ASSERT_EQUAL(n, strlen(*out));
    return rc;
}

static void test_ask_usage(void)
{
    char *out = NULL;

    /* Spliced before the closing brace, the rest byte for byte. */
    CU_ASSERT_EQUAL(bt_ask("{\"model\":\"m\",\"stream\":true} \n", &out),
                    1);
    CU_ASSERT_STRING_EQUAL(out, "{\"model\":\"m\",\"stream\":true,"
                           "\"stream_options\":{\"include_usage\":true}} \n");
    free(out);
    CU_ASSERT_EQUAL(bt_ask(" { } ", &out), 1);
    CU_ASSERT_STRING_EQUAL(out, " { \"stream_options\":"
                           "{\"include_usage\":true}} ");
    free(out);
    /* An escaped key: the tree reads it. */
    CU_ASSERT_EQUAL(bt_ask("{\"stream\\u005foptions\":{\"include_usage\""
                           ":true}}", &out), 0);
    CU_ASSERT_PTR_NULL(out);
    /* Other stream_options members are kept; false is overridden. */
    CU_ASSERT_EQUAL(bt_ask("{\"stream\":true,\"stream_options\":{\"x\":1,"
                           "\"include_usage\":false}}", &out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"x\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"include_usage\":true"));
    CU_ASSERT_PTR_NULL(strstr(out, "false"));
    free(out);
    /* Not an object: replaced. */
    CU_ASSERT_EQUAL(bt_ask("{\"stream\":true,\"stream_options\":7}", &out),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"include_usage\":true}"));
    free(out);
    /* The client asked: nothing made. */
    out = NULL;
    CU_ASSERT_EQUAL(bt_ask("{\"stream\":true,\"stream_options\":"
                           "{\"include_usage\":true}}", &out), 0);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(bt_ask("[1,2]", &out), -1);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(bt_ask("{\"a\":", &out), -1);
    CU_ASSERT_PTR_NULL(out);
}

static void test_usage_chunk(void)
{
    static const char *const yes[] = {
        "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":1}}",
        "{\"usage\":{},\"choices\":[ \n ]}",
    };
    static const char *const no[] = {
        /* OpenAI's other chunks carry "usage":null. */
        "{\"choices\":[{\"delta\":{}}],\"usage\":null}",
        "{\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1}}",
        "{\"usage\":{\"prompt_tokens\":1}}",
        "{\"choices\":[]}",
        "{\"choices\":[],\"usage\":5}",
        "not json",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        CU_ASSERT_TRUE(compat_usage_chunk(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        CU_ASSERT_FALSE(compat_usage_chunk(no[i], strlen(no[i])));
}

static void test_client_in_line(void)
{
    static const struct cfg none = { 0 };
    char out[TRACE_LINE_MAX];
    struct trace_req r = {
        .model = "m", .status = 429, .client = "team-a",
        .error = "rate_limited", .usage = true, .prompt_tokens = 2,
        .completion_tokens = 3,
    };

    trace_format(out, sizeof(out), &r, NULL, &none, false);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " client=team-a prompt_tokens=2 "
                                  "completion_tokens=3 error=rate_limited"));
    r.client = NULL;
    trace_format(out, sizeof(out), &r, NULL, &none, false);
    CU_ASSERT_PTR_NULL(strstr(out, "client="));
}

static CU_TestInfo budgets_tests[] = {
    { "client key groups: names and limits", test_client_groups },
    { "client key groups refused at their line", test_client_refusals },
    { "target rpm and tpm ranges", test_target_limits },
    { "include_usage asked when the client did not", test_ask_usage },
    { "the usage chunk recognised", test_usage_chunk },
    { "client= in the log line", test_client_in_line },
    CU_TEST_INFO_NULL
};

int register_budgets_tests(void)
{
    return unit_add_suite("budgets", budgets_tests);
}
