/* test_request.c - req_validate(): the accepted shapes of a chat body
 * and one refusal per rule, including JSON that is not JSON, trailing
 * data, nesting beyond REQ_MAX_DEPTH and an escaped NUL in the model.
 * Bodies are copied into exact-size heap buffers without a NUL, so a
 * read past len shows under the sanitizers and valgrind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "request.h"
#include "unit.h"

#define RT_ERR_MAX      256
#define RT_SHORT_ERR    8
#define RT_MSGS         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
#define RT_VALID        "{\"model\":\"gpt-4o\"," RT_MSGS "}"
#define RT_NEST_PREFIX  "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"," \
                        "\"content\":"
#define RT_NEST_OUTER   3          /* object, messages, message */
#define RT_BODY_MAX     1024

/* Validates the first len bytes of body from an unterminated copy. */
static int rt_validate_n(const char *body, size_t len, struct req_info *out,
                         char *err)
{
    char *copy = calloc(1, len ? len : 1);
    int rc;

    if (copy == NULL)
        return -2;
    memcpy(copy, body, len);
    err[0] = '\0';
    rc = req_validate(copy, len, out, err, RT_ERR_MAX);
    free(copy);
    return rc;
}

static int rt_validate(const char *body, struct req_info *out, char *err)
{
    return rt_validate_n(body, strlen(body), out, err);
}

/* body must be refused with what in the message. */
static void rt_refused(const char *body, const char *what)
{
    struct req_info info;
    char err[RT_ERR_MAX];
    int rc = rt_validate(body, &info, err);

    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
    if (rc != -1 || strstr(err, what) == NULL)
        fprintf(stderr, "\n    body %s: rc %d, err \"%s\", wanted \"%s\"\n",
                body, rc, err, what);
}

static void rt_accepted(const char *body, const char *model, bool stream)
{
    struct req_info info;
    char err[RT_ERR_MAX];
    int rc;

    memset(&info, 0x5A, sizeof(info));
    rc = rt_validate(body, &info, err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "\n    body %s refused: %s\n", body, err);
        return;
    }
    CU_ASSERT_STRING_EQUAL(info.model, model);
    CU_ASSERT_EQUAL(info.stream, stream);
}

static void test_valid_minimal(void)
{
    rt_accepted(RT_VALID, "gpt-4o", false);
    rt_accepted("{\"messages\":[{\"role\":\"user\"}],\"model\":\"a/b\"}",
                "a/b", false);
    rt_accepted("{\"model\":\"\xe6\xa8\xa1\xe5\x9e\x8b\"," RT_MSGS "}",
                "\xe6\xa8\xa1\xe5\x9e\x8b", false);
}

static void test_stream_flag(void)
{
    rt_accepted("{\"model\":\"m\",\"stream\":true," RT_MSGS "}", "m", true);
    rt_accepted("{\"model\":\"m\",\"stream\":false," RT_MSGS "}", "m",
                false);
    rt_refused("{\"model\":\"m\",\"stream\":\"yes\"," RT_MSGS "}",
               "'stream' must be true or false");
    rt_refused("{\"model\":\"m\",\"stream\":1," RT_MSGS "}",
               "'stream' must be true or false");
}

static void test_model_rules(void)
{
    char body[RT_BODY_MAX];
    char model[CFG_TARGET_NAME_MAX + 1];

    rt_refused("{" RT_MSGS "}", "'model' is required");
    rt_refused("{\"model\":null," RT_MSGS "}", "'model' is required");
    rt_refused("{\"model\":5," RT_MSGS "}", "'model' must be a non-empty");
    rt_refused("{\"model\":[\"m\"]," RT_MSGS "}", "'model' must be a non");
    rt_refused("{\"model\":\"\"," RT_MSGS "}", "'model' must be a non-empty");

    /* The longest name that fits, then one byte more. */
    memset(model, 'm', CFG_TARGET_NAME_MAX - 1);
    model[CFG_TARGET_NAME_MAX - 1] = '\0';
    snprintf(body, sizeof(body), "{\"model\":\"%s\"," RT_MSGS "}", model);
    rt_accepted(body, model, false);
    memset(model, 'm', CFG_TARGET_NAME_MAX);
    model[CFG_TARGET_NAME_MAX] = '\0';
    snprintf(body, sizeof(body), "{\"model\":\"%s\"," RT_MSGS "}", model);
    rt_refused(body, "'model' is too long");
}

static void test_model_escaped_nul(void)
{
    rt_refused("{\"model\":\"gpt\\u0000evil\"," RT_MSGS "}",
               "must not contain NUL");
    rt_refused("{\"model\":\"\\u0000\"," RT_MSGS "}", "NUL");
    /* Other escapes are fine and decoded. */
    rt_accepted("{\"model\":\"a\\u0041\\/b\"," RT_MSGS "}", "aA/b", false);
}

static void test_messages_rules(void)
{
    rt_refused("{\"model\":\"m\"}", "'messages' is required");
    rt_refused("{\"model\":\"m\",\"messages\":null}",
               "'messages' is required");
    rt_refused("{\"model\":\"m\",\"messages\":{}}",
               "'messages' must be an array");
    rt_refused("{\"model\":\"m\",\"messages\":\"hi\"}",
               "'messages' must be an array");
    rt_refused("{\"model\":\"m\",\"messages\":[]}",
               "'messages' must not be empty");
    rt_refused("{\"model\":\"m\",\"messages\":[5]}",
               "messages[0] must be an object");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"u\"},null]}",
               "messages[1] must be an object");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
               "messages[0].role must be a non-empty string");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"\"}]}",
               "messages[0].role");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":7}]}",
               "messages[0].role");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":null}]}",
               "messages[0].role");
}

static void test_content_rules(void)
{
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"u\","
               "\"content\":5}]}", "messages[0].content must be");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"u\"},"
               "{\"role\":\"u\",\"content\":true}]}",
               "messages[1].content must be");
    rt_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"u\","
               "\"content\":{}}]}", "messages[0].content must be");
    rt_accepted("{\"model\":\"m\",\"messages\":[{\"role\":\"u\","
                "\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}",
                "m", false);
    rt_accepted("{\"model\":\"m\",\"messages\":[{\"role\":\"u\","
                "\"content\":null}]}", "m", false);
    rt_accepted("{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}]}", "m",
                false);
}

static void test_not_json(void)
{
    rt_refused("{", "not valid JSON");
    rt_refused("{\"model\":}", "not valid JSON");
    rt_refused("{\"model\" \"m\"}", "not valid JSON");
    rt_refused("{\"model\":\"m\" 1}", "not valid JSON");
    rt_refused("nonsense", "not valid JSON");
    rt_refused("   ", "not valid JSON");
    rt_refused("{\"model\":\"m\"," RT_MSGS "} x", "trailing data");
    rt_refused(RT_VALID "{}", "trailing data");
    rt_refused(RT_VALID "  ,", "trailing data");
}

static void test_trailing_whitespace(void)
{
    rt_accepted(RT_VALID " \t\r\n", "gpt-4o", false);
    rt_accepted(" \n\t" RT_VALID, "gpt-4o", false);
}

static void test_wrong_top_level(void)
{
    rt_refused("[" RT_VALID "]", "must be a JSON object");
    rt_refused("\"just a string\"", "must be a JSON object");
    rt_refused("true ", "must be a JSON object");
    /* A bare number or literal at the very end is refused too (json-c
     * cannot tell it ended, so the message speaks of the end). */
    rt_refused("123", "");
    rt_refused("null", "");
}

static void test_empty_body(void)
{
    struct req_info info;
    char err[RT_ERR_MAX];

    CU_ASSERT_EQUAL(rt_validate_n("", 0, &info, err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
}

/* A body cut short by len is incomplete, whatever follows in memory. */
static void test_len_respected(void)
{
    struct req_info info;
    char err[RT_ERR_MAX];

    CU_ASSERT_EQUAL(rt_validate_n(RT_VALID, strlen(RT_VALID) - 1, &info,
                                  err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not valid JSON"));
    CU_ASSERT_EQUAL(req_validate(RT_VALID "garbage", strlen(RT_VALID),
                                 &info, err, sizeof(err)), 0);
}

/* depth nested values in all: the outer object, messages, a message,
 * then arrays in content. */
static void rt_nested(char *body, size_t size, int depth)
{
    size_t n = (size_t)snprintf(body, size, "%s", RT_NEST_PREFIX);

    for (int i = 0; i < depth - RT_NEST_OUTER && n + 1 < size; i++)
        body[n++] = '[';
    for (int i = 0; i < depth - RT_NEST_OUTER && n + 1 < size; i++)
        body[n++] = ']';
    snprintf(body + n, size - n, "}]}");
}

static void test_nesting_depth(void)
{
    char body[RT_BODY_MAX];

    rt_nested(body, sizeof(body), REQ_MAX_DEPTH);
    rt_accepted(body, "m", false);
    rt_nested(body, sizeof(body), REQ_MAX_DEPTH + 1);
    rt_refused(body, "not valid JSON");
    rt_nested(body, sizeof(body), 4 * REQ_MAX_DEPTH);
    rt_refused(body, "not valid JSON");
}

/* The message always fits the buffer it is given. */
static void test_short_error_buffer(void)
{
    struct req_info info;
    char err[RT_SHORT_ERR + 1];

    memset(err, 'x', sizeof(err));
    CU_ASSERT_EQUAL(req_validate("{}", 2, &info, err, RT_SHORT_ERR), -1);
    CU_ASSERT_EQUAL(strlen(err), RT_SHORT_ERR - 1);
    CU_ASSERT_EQUAL(err[RT_SHORT_ERR], 'x');
}

/* Regression: strchr() matched a NUL byte after the object as
 * whitespace. JSON allows only space, tab, CR and LF there. */
static void test_bug_trailing_nul(void)
{
    static const char body[] = RT_VALID "\0";
    struct req_info info;
    char err[RT_ERR_MAX];

    CU_ASSERT_EQUAL(rt_validate_n(body, sizeof(body), &info, err), -1);
}

/* Regression (fuzzing): json-c 0.16 took an unterminated comment and a
 * NUL after the value as the end of a valid document. */
/* The scanner path and the json-c path (taken when a top-level key holds
 * an escape, here the extra member "\u0078") give the same verdict, the
 * same message and the same model and stream for each body. */
static void test_paths_agree(void)
{
    static const char *const bodies[] = {
        RT_VALID,
        "{\"model\":\"m\",\"stream\":true," RT_MSGS "}",
        "{\"model\":\"m\",\"stream\":null," RT_MSGS "}",
        "{\"model\":\"m\",\"stream\":false," RT_MSGS "}",
        "{\"model\":\"m\",\"stream\":1," RT_MSGS "}",
        "{\"model\":\"m\",\"stream\":\"true\"," RT_MSGS "}",
        "{\"model\":\"a\",\"model\":\"b\"," RT_MSGS "}",
        "{\"model\":\"a\",\"stream\":true,\"stream\":false," RT_MSGS "}",
        "{\"model\":null," RT_MSGS "}",
        "{\"model\":\"\"," RT_MSGS "}",
        "{\"model\":7," RT_MSGS "}",
        "{\"model\":\"m\\u00e9\"," RT_MSGS "}",
        "{\"model\":\"m\"}",
        "{\"model\":\"m\",\"messages\":null}",
        "{\"model\":\"m\",\"messages\":{}}",
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":[ \n ]}",
        "{\"model\":\"m\",\"messages\":[1]}",
        "{\"model\":\"m\",\"messages\":[[]]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"\\u0041\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":1}]}",
        "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\",\"role\":\"\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\",\"content\":5}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\",\"content\":true}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"} , "
        "{\"role\":\"a\",\"content\":{}}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"},{\"r\\u006fle\":"
        "\"a\"}]}",
        "{ \"model\" : \"m\" , \"messages\" : [ { \"role\" : \"u\" } ] }",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char tree[RT_BODY_MAX], err_a[RT_ERR_MAX], err_b[RT_ERR_MAX];
        struct req_info a, b;
        const char *brace = strchr(bodies[i], '{');
        int rc_a, rc_b;

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        snprintf(tree, sizeof(tree), "{\"\\u0078\":0,%s", brace + 1);
        rc_a = rt_validate(bodies[i], &a, err_a);
        rc_b = rt_validate(tree, &b, err_b);
        CU_ASSERT_EQUAL(rc_a, rc_b);
        CU_ASSERT_STRING_EQUAL(err_a, err_b);
        if (rc_a == 0 && rc_b == 0) {
            CU_ASSERT_STRING_EQUAL(a.model, b.model);
            CU_ASSERT_EQUAL(a.stream, b.stream);
        }
        if (rc_a != rc_b || strcmp(err_a, err_b) != 0)
            fprintf(stderr, "body %zu: %d '%s' vs %d '%s'\n", i, rc_a, err_a,
                    rc_b, err_b);
    }
}

static void test_fuzz_comment_then_nul(void)
{
    static const char obj[] = "{\"model\":\"m\",\"messages\":[{\"role\":"
                              "\"u\"}]}/*";
    static const char arr[] = "[{\"model\":\"m\",\"messages\":[{\"role\":"
                              "\"u\"}]}/*";
    struct req_info info;
    char err[RT_ERR_MAX];

    /* sizeof includes the NUL byte that followed the comment. */
    CU_ASSERT_EQUAL(req_validate(obj, sizeof(obj), &info, err, sizeof(err)),
                    -1);
    CU_ASSERT_EQUAL(req_validate(arr, sizeof(arr), &info, err, sizeof(err)),
                    -1);
}

static const CU_TestInfo request_tests[] = {
    { "valid minimal bodies", test_valid_minimal },
    { "stream flag", test_stream_flag },
    { "model rules", test_model_rules },
    { "model with escaped NUL", test_model_escaped_nul },
    { "messages rules", test_messages_rules },
    { "content rules", test_content_rules },
    { "invalid JSON and trailing garbage", test_not_json },
    { "surrounding whitespace ok", test_trailing_whitespace },
    { "top level not an object", test_wrong_top_level },
    { "empty body", test_empty_body },
    { "len is respected", test_len_respected },
    { "nesting depth limit", test_nesting_depth },
    { "short error buffer", test_short_error_buffer },
    { "NUL after the object is refused",
      test_bug_trailing_nul },
    { "fuzz: comment and NUL after the body", test_fuzz_comment_then_nul },
    { "scanner and json-c paths agree", test_paths_agree },
    CU_TEST_INFO_NULL
};

int register_request_tests(void)
{
    return unit_add_suite("request", request_tests);
}
