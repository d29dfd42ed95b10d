/* test_jsonscan.c - the allocation-free JSON scanner: what it accepts and
 * refuses, agreement with json-c on valid documents, finding top-level
 * members (last one wins, escaped keys refused), and js_int. */
#include <string.h>

#include <CUnit/CUnit.h>
#include <json-c/json.h>

#include "jsonscan.h"
#include "unit.h"

#define JT_DEPTH 64

static int jt_valid(const char *s)
{
    return js_validate(s, strlen(s), JT_DEPTH);
}

static void test_valid_documents(void)
{
    static const char *const good[] = {
        "{}", "[]", " {\"a\":1} ", "\"x\"", "0", "-0.5e+10", "true",
        "false", "null", "[1,[2,[3]],{\"k\":\"v\\n\\u00e9\"}]",
        "{\"a\":{\"b\":[]},\"c\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
        "\r\n\t[ 1 , 2 ]\n",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_tokener *tok = json_tokener_new_ex(JT_DEPTH);
        json_object *o;

        CU_ASSERT_EQUAL(jt_valid(good[i]), 0);
        /* What the scanner accepts, json-c parses too. */
        o = json_tokener_parse_ex(tok, good[i], (int)strlen(good[i]));
        CU_ASSERT_TRUE(o != NULL || json_tokener_get_error(tok) ==
                                        json_tokener_continue);
        json_object_put(o);
        json_tokener_free(tok);
    }
}

static void test_invalid_documents(void)
{
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "'x'", "01", "1.", ".5", "1e", "-", "tru", "nul", "[1 2]",
        "\"unterminated", "\"bad \\x escape\"", "\"\\u12g4\"",
        "\"raw\ncontrol\"", "{} {}", "[1]]", "NaN", "{\"a\":1}x",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(jt_valid(bad[i]), -1);
    /* An embedded NUL is not whitespace. */
    CU_ASSERT_EQUAL(js_validate("{}\0", 3, JT_DEPTH), -1);
}

static void test_depth_limit(void)
{
    char deep[2 * JT_DEPTH + 3];
    size_t n = 0;

    for (int i = 0; i < JT_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < JT_DEPTH; i++)
        deep[n++] = ']';
    CU_ASSERT_EQUAL(js_validate(deep, n, JT_DEPTH), 0);
    CU_ASSERT_EQUAL(js_validate(deep, n, JT_DEPTH - 1), -1);
}

static void test_find_member(void)
{
    const char *s = "{\"model\":\"a\",\"n\":[1,{\"model\":2}],"
                    "\"model\" : \"last\" }";
    size_t start = 0, end = 0;

    CU_ASSERT_EQUAL(js_find_member(s, strlen(s), "model", &start, &end), 1);
    CU_ASSERT_EQUAL(end - start, 6);
    CU_ASSERT_EQUAL(strncmp(s + start, "\"last\"", 6), 0);
    CU_ASSERT_EQUAL(js_find_member(s, strlen(s), "n", &start, &end), 1);
    CU_ASSERT_EQUAL(strncmp(s + start, "[1,{\"model\":2}]", end - start), 0);
    CU_ASSERT_EQUAL(js_find_member(s, strlen(s), "absent", &start, &end), 0);
    CU_ASSERT_EQUAL(js_find_member(s, strlen(s), "mode", &start, &end), 0);
    CU_ASSERT_EQUAL(js_find_member("{}", 2, "model", &start, &end), 0);
    CU_ASSERT_EQUAL(js_find_member("[1]", 3, "model", &start, &end), -1);
    /* An escaped key could spell "model": the caller must parse fully. */
    s = "{\"mod\\u0065l\":\"x\"}";
    CU_ASSERT_EQUAL(js_find_member(s, strlen(s), "model", &start, &end), -1);
    s = "{\"model\":";
    CU_ASSERT_EQUAL(js_find_member(s, strlen(s), "model", &start, &end), -1);
}

static void test_int(void)
{
    CU_ASSERT_EQUAL(js_int("42", 2, -1), 42);
    CU_ASSERT_EQUAL(js_int("-7", 2, 0), -7);
    CU_ASSERT_EQUAL(js_int("", 0, 5), 5);
    CU_ASSERT_EQUAL(js_int("-", 1, 5), 5);
    CU_ASSERT_EQUAL(js_int("1.5", 3, 9), 9);
    CU_ASSERT_EQUAL(js_int("null", 4, 3), 3);
    CU_ASSERT_EQUAL(js_int("99999999999999999999", 20, 1), 1);
}

static void test_find_members(void)
{
    static const char *const keys[] = { "error", "usage", "x" };
    const char *ev = " {\"id\":\"a\",\"usage\":{\"n\":1},\"error\":null,"
                     "\"usage\":{\"n\":2},\"s\":\"long plain text run\"} \n";
    size_t st[3], en[3];

    CU_ASSERT_EQUAL(js_find_members(ev, strlen(ev), keys, 3, st, en), 2);
    CU_ASSERT_EQUAL(en[0] - st[0], 4);
    CU_ASSERT_NSTRING_EQUAL(ev + st[0], "null", 4);
    CU_ASSERT_NSTRING_EQUAL(ev + st[1], "{\"n\":2}", en[1] - st[1]);
    CU_ASSERT_EQUAL(en[2], 0);
    CU_ASSERT_EQUAL(js_find_members("{}", 2, keys, 3, st, en), 0);
    CU_ASSERT_EQUAL(js_find_members("{} x", 4, keys, 3, st, en), -1);
    CU_ASSERT_EQUAL(js_find_members("[1]", 3, keys, 3, st, en), -1);
    CU_ASSERT_EQUAL(js_find_members("{\"a\":\"\x01\"}", 9, keys, 3, st, en),
                    -1);
    CU_ASSERT_EQUAL(js_find_members("{\"e\\u0072ror\":1}", 16, keys, 3, st,
                                    en), -1);
    CU_ASSERT_EQUAL(js_find_members("{\"a\":\"12345678\\\"9\"}", 19, keys,
                                    3, st, en), 0);
}

/* Every special byte (quote, backslash, control) at every offset of a
 * string, across the eight-byte words the scanner reads: where it ends
 * and whether it is accepted must not depend on the alignment. */
static void test_string_offsets(void)
{
    enum { JT_LEN_MAX = 40, JT_BUF = JT_LEN_MAX + 16 };
    char buf[JT_BUF];

    for (size_t pre = 0; pre < 3; pre++) {
        for (size_t n = 0; n < JT_LEN_MAX; n++) {
            size_t k = 0;
            const char *keys[] = { "k" };
            size_t st[1], en[1];

            for (size_t i = 0; i < pre; i++)
                buf[k++] = ' ';
            memcpy(buf + k, "{\"k\":\"", 6);
            k += 6;
            memset(buf + k, 'a' + (char)(n % 26), n);
            k += n;
            /* plain, then an escape, then a raw control byte */
            memcpy(buf + k, "\"}", 2);
            CU_ASSERT_EQUAL(js_validate(buf, k + 2, JT_DEPTH), 0);
            CU_ASSERT_EQUAL(js_find_members(buf, k + 2, keys, 1, st, en), 1);
            CU_ASSERT_EQUAL(en[0] - st[0], n + 2);
            memcpy(buf + k, "\\\"x\"}", 5);
            CU_ASSERT_EQUAL(js_validate(buf, k + 5, JT_DEPTH), 0);
            memcpy(buf + k, "\\q\"}", 4);
            CU_ASSERT_EQUAL(js_validate(buf, k + 4, JT_DEPTH), -1);
            memcpy(buf + k, "\x1f\"}", 3);
            CU_ASSERT_EQUAL(js_validate(buf, k + 3, JT_DEPTH), -1);
            /* bytes >= 0x80 are plain (UTF-8) */
            memcpy(buf + k, "\xc3\xa9\"}", 4);
            CU_ASSERT_EQUAL(js_validate(buf, k + 4, JT_DEPTH), 0);
            /* unterminated at every length */
            CU_ASSERT_EQUAL(js_validate(buf, k, JT_DEPTH), -1);
        }
    }
}

/* Where a bad string went wrong, for the 400's message. */
static void test_string_error_positions(void)
{
    static const struct {
        const char *text;
        size_t pos;
    } cases[] = {
        { "{\"model\":\"abc", 13 },             /* ended: its length */
        { "{\"a\":\"xy\x01z\"}", 8 },            /* the control byte */
        { "{\"a\":\"\\q\"}", 7 },                /* the bad escape */
        { "{\"a\":\"\\u12g4\"}", 7 },            /* the u of \u12g4 */
        { "{\"a\":\"0123456789abcdef\x1f\"}", 22 },  /* past a fast word */
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
        size_t pos = 0;
        bool trailing = true;

        CU_ASSERT_EQUAL(js_validate_at(cases[k].text, strlen(cases[k].text),
                                       JS_MAX_DEPTH, &pos, &trailing), -1);
        CU_ASSERT_EQUAL(pos, cases[k].pos);
        CU_ASSERT_FALSE(trailing);
    }
}

/* js_array_each: every element's span in order, an early stop. */
struct ts_each {
    char seen[8][16];
    size_t n, stop_at;
};

static int ts_each_cb(void *arg, size_t index, const char *v, size_t len)
{
    struct ts_each *e = arg;

    CU_ASSERT_EQUAL(index, e->n);
    if (e->n < 8 && len < 16) {
        memcpy(e->seen[e->n], v, len);
        e->seen[e->n][len] = '\0';
    }
    e->n++;
    return e->n == e->stop_at ? 7 : 0;
}

static void test_array_each(void)
{
    const char *a = "[ 1 , \"x,]\" ,{\"k\":[2]},[] ,null]";
    struct ts_each e = { .n = 0, .stop_at = 0 };

    CU_ASSERT_EQUAL(js_array_each(a, strlen(a), ts_each_cb, &e), 0);
    CU_ASSERT_EQUAL(e.n, 5);
    CU_ASSERT_STRING_EQUAL(e.seen[0], "1");
    CU_ASSERT_STRING_EQUAL(e.seen[1], "\"x,]\"");
    CU_ASSERT_STRING_EQUAL(e.seen[2], "{\"k\":[2]}");
    CU_ASSERT_STRING_EQUAL(e.seen[3], "[]");
    CU_ASSERT_STRING_EQUAL(e.seen[4], "null");
    e.n = 0;
    e.stop_at = 2;
    CU_ASSERT_EQUAL(js_array_each(a, strlen(a), ts_each_cb, &e), 7);
    CU_ASSERT_EQUAL(e.n, 2);
    e.n = 0;
    e.stop_at = 0;
    CU_ASSERT_EQUAL(js_array_each(" [ ] ", 5, ts_each_cb, &e), 0);
    CU_ASSERT_EQUAL(e.n, 0);
    CU_ASSERT_EQUAL(js_array_each("{}", 2, ts_each_cb, &e), -1);
    CU_ASSERT_EQUAL(js_array_each("[1,", 3, ts_each_cb, &e), -1);
}

static const CU_TestInfo jsonscan_tests[] = {
    { "valid documents (and json-c agrees)", test_valid_documents },
    { "invalid documents", test_invalid_documents },
    { "depth limit", test_depth_limit },
    { "find a top-level member", test_find_member },
    { "integers", test_int },
    { "several members in one pass", test_find_members },
    { "string error positions", test_string_error_positions },
    { "special bytes at every offset", test_string_offsets },
    { "the elements of an array", test_array_each },
    CU_TEST_INFO_NULL
};

int register_jsonscan_tests(void)
{
    return unit_add_suite("jsonscan", jsonscan_tests);
}
