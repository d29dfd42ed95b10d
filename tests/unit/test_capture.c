/* test_capture.c - the pure parts of request capture (capture.h): file-
 * safe ids, secret header names, masking secret values (also a secret
 * cut at a body's end), UTF-8 safe cuts and cleaning, a body as JSON and
 * the rotation choice. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "capture.h"
#include "unit.h"

#define TCAP_KEY "sk-secret-0123456789"

static void test_file_id(void)
{
    char out[CAP_ID_MAX];

    CU_ASSERT_EQUAL(cap_file_id("req-1_A.b", out, sizeof(out)), 9);
    CU_ASSERT_STRING_EQUAL(out, "req-1_A.b");
    cap_file_id("../../etc/passwd", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "_._.._etc_passwd");
    CU_ASSERT_PTR_NULL(strchr(out, '/'));
    cap_file_id(".hidden", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "_hidden");
    cap_file_id("a b\tc\xc3\xa9", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a_b_c__");
    CU_ASSERT_EQUAL(cap_file_id("", out, sizeof(out)), 1);
    CU_ASSERT_STRING_EQUAL(out, "_");
    CU_ASSERT_EQUAL(cap_file_id("abcdef", out, 4), 3);
    CU_ASSERT_STRING_EQUAL(out, "abc");
}

static void test_header_secret(void)
{
    static const char *const secret[] = {
        "Authorization", "authorization", "Proxy-Authorization",
        "x-api-key", "X-Goog-Api-Key", "api-key", "Cookie", "Set-Cookie",
        "X-Auth-Token", "x-session-id", "X-Client-Secret"
    };
    static const char *const plain[] = {
        "Content-Type", "content-length", "Date", "x-request-id",
        "Retry-After", "openai-processing-ms",
        "x-ratelimit-remaining-tokens"
    };

    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        CU_ASSERT_TRUE(cap_header_secret(secret[i], strlen(secret[i])));
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        CU_ASSERT_FALSE(cap_header_secret(plain[i], strlen(plain[i])));
    /* Only the name's bytes count. */
    CU_ASSERT_FALSE(cap_header_secret("Datekey", 4));
}

static void test_scrub(void)
{
    const char *secrets[] = { TCAP_KEY, NULL, "short" };
    char buf[] = "key " TCAP_KEY " and again " TCAP_KEY "; short stays";
    char cut[] = "tail sk-secret-01";
    char tiny[] = "ends with sk-";

    cap_scrub(buf, strlen(buf), secrets, 3);
    CU_ASSERT_PTR_NULL(strstr(buf, TCAP_KEY));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "key ********************"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "short stays"));
    /* A body cut in the middle of the key: its first bytes go too. */
    cap_scrub(cut, strlen(cut), secrets, 3);
    CU_ASSERT_STRING_EQUAL(cut, "tail ************");
    /* Fewer than CAP_TAIL_MIN bytes of it say nothing. */
    cap_scrub(tiny, strlen(tiny), secrets, 3);
    CU_ASSERT_STRING_EQUAL(tiny, "ends with sk-");
}

static void test_cut_and_clean(void)
{
    const char s[] = "ab\xc3\xa9" "cd";      /* a, b, e-acute, c, d */
    char bad[] = "ok\xff\xc3(\xed\xa0\x80z";

    CU_ASSERT_EQUAL(cap_cut(s, 6, 10), 6);
    CU_ASSERT_EQUAL(cap_cut(s, 6, 4), 4);
    CU_ASSERT_EQUAL(cap_cut(s, 6, 3), 2);     /* not inside the e-acute */
    CU_ASSERT_EQUAL(cap_cut(s, 6, 0), 0);
    cap_utf8_clean(bad, strlen(bad));
    CU_ASSERT_STRING_EQUAL(bad, "ok?" "?(?" "??z");
}

static void test_body_json(void)
{
    const char *secrets[] = { TCAP_KEY };
    const char body[] = "{\"k\":\"" TCAP_KEY "\"}";
    json_object *o = cap_body_json(body, strlen(body), 1000, secrets, 1);
    json_object *v;

    CU_ASSERT_TRUE(json_object_object_get_ex(o, "truncated", &v));
    CU_ASSERT_FALSE(json_object_get_boolean(v));
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "text", &v));
    CU_ASSERT_PTR_NULL(strstr(json_object_get_string(v), TCAP_KEY));
    json_object_put(o);
    o = cap_body_json(body, strlen(body), 10, secrets, 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "truncated", &v));
    CU_ASSERT_TRUE(json_object_get_boolean(v));
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "bytes", &v));
    CU_ASSERT_EQUAL(json_object_get_int64(v), (int64_t)strlen(body));
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "text", &v));
    CU_ASSERT_EQUAL(json_object_get_string_len(v), 10);
    CU_ASSERT_PTR_NULL(strstr(json_object_get_string(v), "sk-s"));
    json_object_put(o);
    o = cap_body_json(NULL, 0, 10, NULL, 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "text", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "");
    json_object_put(o);
}

static void test_rotate(void)
{
    struct cap_file f[5] = {
        { 300, "c.json" }, { 100, "b.json" }, { 500, "e.json" },
        { 100, "a.json" }, { 200, "d.json" }
    };

    CU_ASSERT_EQUAL(cap_rotate_pick(f, 5, 5), 0);
    CU_ASSERT_EQUAL(cap_rotate_pick(f, 5, 10), 0);
    CU_ASSERT_EQUAL(cap_rotate_pick(f, 5, 3), 2);
    /* Oldest first; the same time ordered by name. */
    CU_ASSERT_STRING_EQUAL(f[0].name, "a.json");
    CU_ASSERT_STRING_EQUAL(f[1].name, "b.json");
    CU_ASSERT_STRING_EQUAL(f[2].name, "d.json");
    CU_ASSERT_STRING_EQUAL(f[4].name, "e.json");
    CU_ASSERT_EQUAL(cap_rotate_pick(f, 5, 0), 5);
    CU_ASSERT_EQUAL(cap_rotate_pick(f, 0, 0), 0);
}

static CU_TestInfo capture_tests[] = {
    { "a request id made file-safe", test_file_id },
    { "secret header names", test_header_secret },
    { "secret values masked, a cut one too", test_scrub },
    { "cuts at UTF-8 boundaries; invalid bytes replaced", test_cut_and_clean },
    { "a body as JSON: masked, cut, marked", test_body_json },
    { "rotation deletes the oldest beyond the limit", test_rotate },
    CU_TEST_INFO_NULL
};

int register_capture_tests(void)
{
    return unit_add_suite("capture", capture_tests);
}
