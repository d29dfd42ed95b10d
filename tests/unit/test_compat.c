/* test_compat.c - the provider compatibility layer: the request body per
 * provider (model spliced or rewritten, parameters dropped or renamed,
 * tools passed through), answer checks, usage under both spellings, and
 * error messages in each provider's shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <json-c/json.h>

#include "compat.h"
#include "unit.h"

#define CT_PARSE_DEPTH 128

/* compat_request on body, parsed back; the caller puts it. */
static json_object *compat_test_req(enum cfg_provider_type type,
                                    const char *body, const char *model)
{
    char *out = NULL;
    size_t n = 0;
    json_object *root;

    CU_ASSERT_EQUAL_FATAL(compat_request(type, body, strlen(body), model,
                                         &out, &n), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(strlen(out), n);
    {
        json_tokener *tok = json_tokener_new_ex(CT_PARSE_DEPTH);

        CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
        root = json_tokener_parse_ex(tok, out, (int)n);
        json_tokener_free(tok);
    }
    CU_ASSERT_PTR_NOT_NULL(root);
    free(out);
    return root;
}

static const char *compat_test_str(json_object *root, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(root, key, &v))
        return NULL;
    return json_object_get_string(v);
}

static void test_model_spliced(void)
{
    const char *body = "{\"model\":\"default\",\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"hi\"}],\"temperature\":0.5}";
    char *out = NULL;
    size_t n;

    CU_ASSERT_EQUAL(compat_request(CFG_PROVIDER_OPENAI, body, strlen(body),
                                   "gpt-4o", &out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"model\":\"gpt-4o\",\"messages\":[{\"role"
                           "\":\"user\",\"content\":\"hi\"}],\"temperature"
                           "\":0.5}");
    free(out);
}

static void test_model_escaped(void)
{
    json_object *root = compat_test_req(CFG_PROVIDER_OPENAI,
                                        "{\"model\":\"x\",\"messages\":[]}",
                                        "a\"b\\c");

    CU_ASSERT_STRING_EQUAL(compat_test_str(root, "model"), "a\"b\\c");
    json_object_put(root);
}

static void test_model_added(void)
{
    json_object *root = compat_test_req(CFG_PROVIDER_QWEN,
                                        "{\"messages\":[]}", "qwen-max");

    CU_ASSERT_STRING_EQUAL(compat_test_str(root, "model"), "qwen-max");
    json_object_put(root);
}

static void test_qwen_rules(void)
{
    json_object *root = compat_test_req(CFG_PROVIDER_QWEN,
        "{\"model\":\"q\",\"messages\":[],\"max_completion_tokens\":77,"
        "\"store\":true,\"metadata\":{\"a\":\"b\"},\"service_tier\":\"auto\","
        "\"prediction\":{},\"reasoning_effort\":\"low\",\"seed\":3}",
        "qwen-plus");
    json_object *v;

    CU_ASSERT_STRING_EQUAL(compat_test_str(root, "model"), "qwen-plus");
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "max_tokens", &v));
    CU_ASSERT_EQUAL(json_object_get_int(v), 77);
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "max_completion_tokens",
                                              NULL));
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "store", NULL));
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "metadata", NULL));
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "service_tier", NULL));
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "prediction", NULL));
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "reasoning_effort",
                                              NULL));
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "seed", NULL));
    json_object_put(root);
}

static void test_rename_keeps_explicit(void)
{
    json_object *root = compat_test_req(CFG_PROVIDER_IFLOW,
        "{\"model\":\"m\",\"max_tokens\":5,\"max_completion_tokens\":9}",
        "glm");
    json_object *v;

    CU_ASSERT_TRUE(json_object_object_get_ex(root, "max_tokens", &v));
    CU_ASSERT_EQUAL(json_object_get_int(v), 5);
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "max_completion_tokens",
                                              NULL));
    json_object_put(root);
}

static void test_openai_untouched(void)
{
    const char *body = "{\"model\":\"m\",\"store\":true,"
                       "\"max_completion_tokens\":9}";
    char *out = NULL;
    size_t n;

    CU_ASSERT_EQUAL(compat_request(CFG_PROVIDER_OPENAI, body, strlen(body),
                                   "gpt", &out, &n), 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"model\":\"gpt\",\"store\":true,"
                           "\"max_completion_tokens\":9}");
    free(out);
}

static void test_tools_pass_through(void)
{
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":"
                        "\"get_weather\",\"parameters\":{\"type\":\"object\","
                        "\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
    char body[512];
    json_object *root, *v;

    snprintf(body, sizeof(body), "{\"model\":\"m\",\"store\":false,"
             "\"tools\":%s,\"tool_choice\":{\"type\":\"function\","
             "\"function\":{\"name\":\"get_weather\"}}}", tools);
    root = compat_test_req(CFG_PROVIDER_QWEN, body, "qwen3-coder-plus");
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "tools", &v));
    CU_ASSERT_EQUAL(json_object_array_length(v), 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "tool_choice", &v));
    CU_ASSERT_STRING_EQUAL(compat_test_str(v, "type"), "function");
    json_object_put(root);
}

static void test_escaped_key_rule(void)
{
    /* A key written with an escape is the same key to the provider. */
    json_object *root = compat_test_req(CFG_PROVIDER_QWEN,
        "{\"model\":\"m\",\"st\\u006fre\":true}", "q");

    CU_ASSERT_FALSE(json_object_object_get_ex(root, "store", NULL));
    json_object_put(root);
}

static void test_not_object(void)
{
    char *out = (char *)"sentinel";
    size_t n;

    CU_ASSERT_EQUAL(compat_request(CFG_PROVIDER_QWEN, "[1]", 3, "m", &out,
                                   &n), -1);
    CU_ASSERT_PTR_NULL(out);
}

static void test_check_answer(void)
{
    struct compat_usage u = { 0, 0 };
    const char *ok = "{\"choices\":[],\"usage\":{\"prompt_tokens\":4,"
                     "\"completion_tokens\":7}}";

    CU_ASSERT_PTR_NULL(compat_check_answer(ok, strlen(ok), &u));
    CU_ASSERT_EQUAL(u.prompt_tokens, 4);
    CU_ASSERT_EQUAL(u.completion_tokens, 7);
    CU_ASSERT_PTR_NOT_NULL(compat_check_answer("", 0, &u));
    CU_ASSERT_PTR_NOT_NULL(compat_check_answer("{\"choices\":{}}", 14, &u));
    CU_ASSERT_PTR_NOT_NULL(compat_check_answer("{\"id\":1}", 8, &u));
    CU_ASSERT_PTR_NOT_NULL(compat_check_answer("[1]", 3, &u));
    CU_ASSERT_PTR_NOT_NULL(compat_check_answer("{\"choices\":[", 12, &u));
    /* One scan finds both members: the messages still tell the cases
     * apart, and the last of two usages counts. */
    CU_ASSERT_STRING_EQUAL(compat_check_answer("{\"choices\":[", 12, &u),
                           "upstream answered with invalid JSON");
    CU_ASSERT_STRING_EQUAL(compat_check_answer("[1]", 3, &u),
                           "upstream answer is not a JSON object");
    CU_ASSERT_STRING_EQUAL(compat_check_answer("{\"id\":1}", 8, &u),
                           "upstream answer has no choices");
    ok = "{\"usage\":{\"prompt_tokens\":1},\"choices\":[{}],"
         "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}";
    CU_ASSERT_PTR_NULL(compat_check_answer(ok, strlen(ok), &u));
    CU_ASSERT_EQUAL(u.prompt_tokens, 5);
    CU_ASSERT_EQUAL(u.completion_tokens, 6);
}

static void test_usage_spellings(void)
{
    struct compat_usage u;
    const char *ds = "{\"input_tokens\":11,\"output_tokens\":22}";
    const char *both = "{\"prompt_tokens\":1,\"input_tokens\":9,"
                       "\"completion_tokens\":2}";
    const char *bad = "{\"prompt_tokens\":-3,\"completion_tokens\":\"x\"}";

    compat_usage(ds, strlen(ds), &u);
    CU_ASSERT_EQUAL(u.prompt_tokens, 11);
    CU_ASSERT_EQUAL(u.completion_tokens, 22);
    compat_usage(both, strlen(both), &u);
    CU_ASSERT_EQUAL(u.prompt_tokens, 1);
    CU_ASSERT_EQUAL(u.completion_tokens, 2);
    compat_usage(bad, strlen(bad), &u);
    CU_ASSERT_EQUAL(u.prompt_tokens, 0);
    CU_ASSERT_EQUAL(u.completion_tokens, 0);
}

static void test_error_messages(void)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        { "{\"error\":{\"message\":\"bad key\",\"type\":\"x\"}}", "bad key" },
        { "{\"error\":\"plain\"}", "plain" },
        { "{\"code\":\"InvalidParameter\",\"message\":\"ds says no\","
          "\"request_id\":\"r\"}", "ds says no" },
        { "{\"message\":\"bare\"}", "bare" },
        { "<html>oops\n</html>", "<html>oops </html>" },
        { "{\"error\":{\"message\":\"tab\\there\"}}", "tab here" },
        { "", "" },
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        compat_error_message(cases[i].body, strlen(cases[i].body), NULL, 0,
                             out,
                             sizeof(out));
        CU_ASSERT_STRING_EQUAL(out, cases[i].want);
    }
    compat_error_message("{\"message\":\"0123456789\"}", 24, NULL, 0, out, 5);
    CU_ASSERT_STRING_EQUAL(out, "0123");
}

static void test_redact(void)
{
    char a[] = "Incorrect API key provided: sk-secret-1. sk-secret-1!";
    char b[] = "key";
    char c[] = "sk-secret-1";

    compat_redact(a, "sk-secret-1");
    CU_ASSERT_STRING_EQUAL(a, "Incorrect API key provided: ***. ***!");
    compat_redact(b, "k");
    CU_ASSERT_STRING_EQUAL(b, "key");
    compat_redact(c, "sk-secret-1");
    CU_ASSERT_STRING_EQUAL(c, "***");
    compat_redact(c, NULL);
    CU_ASSERT_STRING_EQUAL(c, "***");
}

/* A secret is redacted before the message is cut to fit, so one that
 * straddles the cut leaves nothing of itself; NULL secrets are skipped. */
static void test_error_message_redacted(void)
{
    const char *secrets[] = { NULL, "sk-live-0123456789abcdef" };
    const char *body = "{\"error\":{\"message\":\"Incorrect API key "
                       "provided: sk-live-0123456789abcdef\"}}";
    const char *raw = "oops sk-live-0123456789abcdef oops";
    char out[40];

    compat_error_message(body, strlen(body), secrets, 2, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "Incorrect API key provided: ***");
    compat_error_message(raw, strlen(raw), secrets, 2, out, 12);
    CU_ASSERT_STRING_EQUAL(out, "oops *** oo");
    CU_ASSERT_PTR_NULL(strstr(out, "sk-"));
}

/* Duplicate "model" or "stream" members leave one (ours, the last
 * stream); a body as deep as the front end allows is rewritten too. */
static void test_duplicates_and_depth(void)
{
    json_object *root, *v;
    char deep[512];
    size_t n = 0;

    root = compat_test_req(CFG_PROVIDER_OPENAI, "{\"model\":\"gpt-4-32k\","
                           "\"stream\":true,\"model\":\"cheap\","
                           "\"stream\":false}", "target");
    CU_ASSERT_STRING_EQUAL(compat_test_str(root, "model"), "target");
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "stream", &v));
    CU_ASSERT_FALSE(json_object_get_boolean(v));
    CU_ASSERT_EQUAL(json_object_object_length(root), 2);
    json_object_put(root);

    n += (size_t)snprintf(deep + n, sizeof(deep) - n,
                          "{\"model\":\"m\",\"max_completion_tokens\":1,"
                          "\"x\":");
    for (int i = 0; i < 60; i++)
        deep[n++] = '[';
    for (int i = 0; i < 60; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    root = compat_test_req(CFG_PROVIDER_QWEN, deep, "q");
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "max_tokens", NULL));
    json_object_put(root);
}

static CU_TestInfo compat_tests[] = {
    { "model spliced, rest byte for byte", test_model_spliced },
    { "model with quotes escaped", test_model_escaped },
    { "model added when absent", test_model_added },
    { "qwen: renamed and dropped parameters", test_qwen_rules },
    { "rename keeps an explicit max_tokens", test_rename_keeps_explicit },
    { "openai: parameters untouched", test_openai_untouched },
    { "tools and tool_choice pass through", test_tools_pass_through },
    { "escaped key still matches a rule", test_escaped_key_rule },
    { "not an object", test_not_object },
    { "answer check and usage", test_check_answer },
    { "usage spellings", test_usage_spellings },
    { "error messages per shape", test_error_messages },
    { "secrets redacted from messages", test_redact },
    { "redacted before the cut", test_error_message_redacted },
    { "duplicate keys, deep bodies", test_duplicates_and_depth },
    CU_TEST_INFO_NULL
};

int register_compat_tests(void)
{
    return unit_add_suite("compat", compat_tests);
}
