/* test_apierror.c - OpenAI-shaped error bodies: the type for each
 * status, JSON escaping of every awkward byte, cutting at a UTF-8
 * boundary, and that what comes out parses as JSON (checked with json-c)
 * with the message intact. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <CUnit/CUnit.h>

#include "apierror.h"
#include "unit.h"

#define AT_CONTROL_MAX   0x20
#define AT_RANDOM_RUNS   400
#define AT_RANDOM_SEED   0xD1B54A32D192ED03ULL
#define AT_RANDOM_LEN    900       /* past what the body keeps */
#define AT_QUOTED_MAX    (APIERR_BODY_MAX + 3)
#define AT_SMALL_CAP     100
#define AT_GUARD         '#'

/* Parses body and returns its error.message (caller puts root), or NULL
 * when body is not the expected JSON. */
static json_object *at_parse(const char *body, const char **message,
                             const char **type, json_object **code)
{
    json_object *root = json_tokener_parse(body), *err, *m, *t;

    if (root == NULL)
        return NULL;
    if (!json_object_object_get_ex(root, "error", &err) ||
        !json_object_object_get_ex(err, "message", &m) ||
        !json_object_object_get_ex(err, "type", &t) ||
        !json_object_object_get_ex(err, "code", code) ||
        !json_object_is_type(m, json_type_string)) {
        json_object_put(root);
        return NULL;
    }
    *message = json_object_get_string(m);
    *type = json_object_get_string(t);
    return root;
}

/* out holds a whole UTF-8 text: no sequence cut short. */
static int at_utf8_whole(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 :
                   (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;

        if (n == 0 || i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n;
    }
    return 1;
}

/* The escaped text in quotes parses as a JSON string. */
static int at_escape_is_json(const char *escaped)
{
    char quoted[AT_QUOTED_MAX];
    json_object *o;
    int ok;

    snprintf(quoted, sizeof(quoted), "\"%s\"", escaped);
    o = json_tokener_parse(quoted);
    ok = o != NULL && json_object_is_type(o, json_type_string);
    json_object_put(o);
    return ok;
}

static void test_types(void)
{
    static const struct { int status; const char *type; } cases[] = {
        { 400, "invalid_request_error" }, { 404, "invalid_request_error" },
        { 405, "invalid_request_error" }, { 413, "invalid_request_error" },
        { 414, "invalid_request_error" }, { 431, "invalid_request_error" },
        { 418, "invalid_request_error" }, { 401, "authentication_error" },
        { 403, "authentication_error" }, { 429, "rate_limit_error" },
        { 500, "server_error" }, { 501, "server_error" },
        { 502, "upstream_error" }, { 503, "service_unavailable" },
        { 504, "timeout_error" }, { 599, "server_error" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CU_ASSERT_STRING_EQUAL(apierr_type(cases[i].status), cases[i].type);
}

static void test_format_exact(void)
{
    char out[APIERR_BODY_MAX];
    size_t n;

    n = apierr_format(out, sizeof(out), 429, "queue_full", "queue is full");
    CU_ASSERT_STRING_EQUAL(out, "{\"error\":{\"message\":\"queue is full\","
                           "\"type\":\"rate_limit_error\",\"code\":"
                           "\"queue_full\"}}");
    CU_ASSERT_EQUAL(n, strlen(out));
    n = apierr_format(out, sizeof(out), 400, NULL, "bad");
    CU_ASSERT_STRING_EQUAL(out, "{\"error\":{\"message\":\"bad\",\"type\":"
                           "\"invalid_request_error\",\"code\":null}}");
    CU_ASSERT_EQUAL(n, strlen(out));
}

static void test_code_null_parses(void)
{
    char out[APIERR_BODY_MAX];
    const char *message = NULL, *type = NULL;
    json_object *code = NULL, *root;

    apierr_format(out, sizeof(out), 503, NULL, "down");
    root = at_parse(out, &message, &type, &code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_PTR_NULL(code);                 /* JSON null */
    CU_ASSERT_STRING_EQUAL(message, "down");
    CU_ASSERT_STRING_EQUAL(type, "service_unavailable");
    json_object_put(root);
}

static void test_escaping(void)
{
    static const char msg[] = "a\"b\\c\nd\te\x01" "f\x7f" "g\r/";
    char out[APIERR_BODY_MAX];
    const char *message = NULL, *type = NULL;
    json_object *code = NULL, *root;

    CU_ASSERT_EQUAL(apierr_escape(out, sizeof(out), msg, sizeof(msg) - 1),
                    strlen(out));
    CU_ASSERT_STRING_EQUAL(out, "a\\\"b\\\\c\\nd\\u0009e\\u0001f\\u007fg"
                           "\\u000d/");
    apierr_format(out, sizeof(out), 400, "x", msg);
    root = at_parse(out, &message, &type, &code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_STRING_EQUAL(message, msg);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(code), "x");
    json_object_put(root);
}

/* Every control character, one at a time, survives a JSON round trip. */
static void test_every_control_char(void)
{
    for (int c = 1; c <= AT_CONTROL_MAX; c++) {
        char msg[4] = { 'a', (char)c, 'b', '\0' };
        char out[APIERR_BODY_MAX];
        const char *message = NULL, *type = NULL;
        json_object *code = NULL, *root;

        apierr_format(out, sizeof(out), 500, "c", msg);
        root = at_parse(out, &message, &type, &code);
        CU_ASSERT_PTR_NOT_NULL_FATAL(root);
        CU_ASSERT_STRING_EQUAL(message, msg);
        json_object_put(root);
    }
}

/* Cut short, the output never ends inside a UTF-8 sequence nor inside
 * an escape, and is NUL-terminated within cap. */
static void test_escape_cut(void)
{
    static const char *const msgs[] = {
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",            /* 2-byte chars */
        "a\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",       /* 3-byte chars */
        "\xf0\x9f\x98\x80\xf0\x9f\x98\x80x",           /* 4-byte chars */
        "\"\"\\\\\n\n\x01\x01",                         /* escapes */
        "ab\xc3\xa9\x02\xe2\x82\xac\"",
    };

    for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
        size_t len = strlen(msgs[m]);

        for (size_t cap = 1; cap < 6 * len + 2; cap++) {
            char out[APIERR_BODY_MAX];
            size_t n;

            memset(out, AT_GUARD, sizeof(out));
            n = apierr_escape(out, cap, msgs[m], len);
            CU_ASSERT(n < cap);
            CU_ASSERT_EQUAL(out[n], '\0');
            CU_ASSERT_EQUAL(strlen(out), n);
            CU_ASSERT_EQUAL(out[cap], AT_GUARD);
            CU_ASSERT_TRUE(at_utf8_whole(out, n));
            CU_ASSERT_TRUE(at_escape_is_json(out));
        }
    }
}

static void test_escape_cap_zero(void)
{
    char out[2] = { AT_GUARD, AT_GUARD };

    CU_ASSERT_EQUAL(apierr_escape(out, 0, "abc", 3), 0);
    CU_ASSERT_EQUAL(out[0], AT_GUARD);
    CU_ASSERT_EQUAL(apierr_escape(out, 1, "abc", 3), 0);
    CU_ASSERT_EQUAL(out[0], '\0');
    CU_ASSERT_EQUAL(apierr_escape(out, 2, "", 0), 0);
}

/* A long message is cut, and the body is still JSON whose message is a
 * prefix of the original. */
static void test_long_message(void)
{
    char msg[3 * APIERR_BODY_MAX], out[APIERR_BODY_MAX];
    const char *message = NULL, *type = NULL;
    json_object *code = NULL, *root;
    size_t n;

    for (size_t i = 0; i + 1 < sizeof(msg); i += 2) {
        msg[i] = '\xc3';
        msg[i + 1] = '\xa9';
    }
    msg[sizeof(msg) - 1] = '\0';
    msg[sizeof(msg) - 2] = 'z';
    n = apierr_format(out, sizeof(out), 502, "upstream", msg);
    CU_ASSERT(n < sizeof(out));
    CU_ASSERT_EQUAL(strlen(out), n);
    root = at_parse(out, &message, &type, &code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT(strlen(message) > 0);
    CU_ASSERT_EQUAL(strncmp(message, msg, strlen(message)), 0);
    CU_ASSERT_STRING_EQUAL(type, "upstream_error");
    json_object_put(root);
}

/* Random messages of awkward bytes (valid UTF-8 plus controls, quotes
 * and backslashes) always give JSON at the documented size. */
static void test_random_messages_are_json(void)
{
    static const char *const pieces[] = {
        "a", "\"", "\\", "\n", "\r", "\t", "\x01", "\x1f", "\x7f", " ",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "/", "{", "}",
    };
    const uint64_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
    uint64_t rng = AT_RANDOM_SEED;
    int bad = 0;

    for (int run = 0; run < AT_RANDOM_RUNS; run++) {
        char msg[AT_RANDOM_LEN + 8], out[APIERR_BODY_MAX];
        const char *message = NULL, *type = NULL;
        json_object *code = NULL, *root;
        size_t len = 0, target = unit_rand_below(&rng, AT_RANDOM_LEN);

        while (len < target) {
            const char *p = pieces[unit_rand_below(&rng, n_pieces)];

            memcpy(msg + len, p, strlen(p));
            len += strlen(p);
        }
        msg[len] = '\0';
        apierr_format(out, sizeof(out), 400 + run % 200,
                      run % 2 ? NULL : "code", msg);
        root = at_parse(out, &message, &type, &code);
        if (root == NULL || strncmp(message, msg, strlen(message)) != 0 ||
            !at_utf8_whole(message, strlen(message)))
            bad++;
        json_object_put(root);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Regression: a small cap used to cut the whole body, leaving
 * unparseable JSON; now only the message is cut. */
static void test_bug_small_cap_not_json(void)
{
    char msg[APIERR_BODY_MAX], out[AT_SMALL_CAP];
    const char *message = NULL, *type = NULL;
    json_object *code = NULL, *root;

    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    apierr_format(out, sizeof(out), 400, "too_long", msg);
    root = at_parse(out, &message, &type, &code);
    CU_ASSERT_PTR_NOT_NULL(root);
    json_object_put(root);
}

/* Regression: cap 0 used to return SIZE_MAX as the body length. */
static void test_bug_format_cap_zero(void)
{
    char out[1] = { AT_GUARD };

    CU_ASSERT_EQUAL(apierr_format(out, 0, 400, NULL, "m"), 0);
    CU_ASSERT_EQUAL(out[0], AT_GUARD);
}

/* Regression (fuzzing): a whole multibyte character before the cut was
 * dropped too. */
static void test_escape_keeps_whole_character(void)
{
    char out[4];
    size_t n = apierr_escape(out, sizeof(out), "a\xc3\xa9" "b", 4);

    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_STRING_EQUAL(out, "a\xc3\xa9");
    n = apierr_escape(out, 3, "a\xc3\xa9" "b", 4);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(out, "a");
}

/* The answer for a request no target can be called for any more: its
 * last failure when an attempt failed (the real cause, even though its
 * failures opened the breakers), else the untried answer. */
static void test_final_error(void)
{
    struct apierr_kept last = { 0 }, open = { 0 };
    const struct apierr_kept *e;

    apierr_keep(&open, 503, "circuit_open", "every target's circuit "
                "breaker is open; retry in 100 ms");
    /* Nothing was attempted: the breakers are the cause. */
    e = apierr_final(&last, &open);
    CU_ASSERT_PTR_EQUAL(e, &open);
    CU_ASSERT_EQUAL(e->status, 503);
    CU_ASSERT_STRING_EQUAL(e->code, "circuit_open");
    CU_ASSERT_PTR_EQUAL(apierr_final(NULL, &open), &open);
    /* Attempts answered garbage and opened the breaker: the garbage. */
    apierr_keep(&last, 502, "bad_upstream_response",
                "upstream answer is not valid JSON");
    e = apierr_final(&last, &open);
    CU_ASSERT_EQUAL(e->status, 502);
    CU_ASSERT_STRING_EQUAL(e->code, "bad_upstream_response");
    CU_ASSERT_STRING_EQUAL(e->message, "upstream answer is not valid JSON");
    /* The last one counts: a timeout after a garbage answer. */
    apierr_keep(&last, 504, "timeout", "request timed out waiting for the "
                "upstream");
    e = apierr_final(&last, &open);
    CU_ASSERT_EQUAL(e->status, 504);
    CU_ASSERT_STRING_EQUAL(e->code, "timeout");
}

/* A kept failure is a copy, cut to fit, never overrun. */
static void test_keep_cuts(void)
{
    struct apierr_kept k;
    char big[2 * APIERR_BODY_MAX];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    apierr_keep(&k, 502, big, big);
    CU_ASSERT_EQUAL(strlen(k.code), APIERR_CODE_MAX);
    CU_ASSERT_EQUAL(strlen(k.message), sizeof(k.message) - 1);
    apierr_keep(&k, 502, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(k.code, "");
    CU_ASSERT_STRING_EQUAL(k.message, "");
}

/* The code of an error body, for the log line of a stream cut by it. */
static void test_code_of_body(void)
{
    char body[APIERR_BODY_MAX], code[APIERR_CODE_MAX + 1];
    size_t n;

    n = apierr_format(body, sizeof(body), 502, "upstream_idle",
                      "upstream up/a sent nothing for 1000 ms; "
                      "\"code\":\"fake\"");
    CU_ASSERT_EQUAL(apierr_code(body, n, code, sizeof(code)), 0);
    CU_ASSERT_STRING_EQUAL(code, "upstream_idle");
    /* Cut to the room given. */
    CU_ASSERT_EQUAL(apierr_code(body, n, code, 5), 0);
    CU_ASSERT_STRING_EQUAL(code, "upst");
    /* No code: null, absent, not a string, not one word, not JSON. */
    n = apierr_format(body, sizeof(body), 502, NULL, "m");
    CU_ASSERT_EQUAL(apierr_code(body, n, code, sizeof(code)), -1);
    CU_ASSERT_STRING_EQUAL(code, "");
    CU_ASSERT_EQUAL(apierr_code("{\"error\":{\"message\":\"m\"}}", 25,
                                code, sizeof(code)), -1);
    CU_ASSERT_EQUAL(apierr_code("{\"error\":{\"code\":7}}", 20, code,
                                sizeof(code)), -1);
    CU_ASSERT_EQUAL(apierr_code("{\"error\":{\"code\":\"a b\"}}", 24,
                                code, sizeof(code)), -1);
    CU_ASSERT_STRING_EQUAL(code, "");
    CU_ASSERT_EQUAL(apierr_code("{\"error\":\"x\"}", 13, code,
                                sizeof(code)), -1);
    CU_ASSERT_EQUAL(apierr_code("{\"error\":{", 10, code, sizeof(code)),
                    -1);
    CU_ASSERT_EQUAL(apierr_code("", 0, code, sizeof(code)), -1);
    CU_ASSERT_EQUAL(apierr_code(body, n, code, 0), -1);
}

/* A door of another shape re-dresses a worker's error by its message. */
static void test_message_of_body(void)
{
    char body[APIERR_BODY_MAX], msg[16];
    size_t n = apierr_format(body, sizeof(body), 502, "upstream_error",
                             "a \"quoted\" word");

    CU_ASSERT_EQUAL(apierr_message(body, n, body + n + 1,
                                   sizeof(body) - n - 1), 0);
    CU_ASSERT_STRING_EQUAL(body + n + 1, "a \"quoted\" word");
    CU_ASSERT_EQUAL(apierr_message(body, n, msg, 5), 0);   /* cut */
    CU_ASSERT_STRING_EQUAL(msg, "a \"q");
    CU_ASSERT_EQUAL(apierr_message("{\"error\":{}}", 12, msg, sizeof(msg)),
                    -1);
    CU_ASSERT_STRING_EQUAL(msg, "");
    CU_ASSERT_EQUAL(apierr_message("not json", 8, msg, sizeof(msg)), -1);
    CU_ASSERT_EQUAL(apierr_message(body, n, msg, 0), -1);
}

static const CU_TestInfo apierror_tests[] = {
    { "the message of an error body", test_message_of_body },
    { "final error: the last failure, else untried", test_final_error },
    { "a kept failure is cut to fit", test_keep_cuts },
    { "the code of an error body", test_code_of_body },
    { "type per status", test_types },
    { "exact bodies", test_format_exact },
    { "code NULL is JSON null", test_code_null_parses },
    { "escaping quotes, backslashes, controls", test_escaping },
    { "every control char round trips", test_every_control_char },
    { "cut at UTF-8 and escape boundaries", test_escape_cut },
    { "escape with cap 0 and 1", test_escape_cap_zero },
    { "long message cut, still JSON", test_long_message },
    { "random messages give JSON", test_random_messages_are_json },
    { "small cap cuts the message, not the JSON",
      test_bug_small_cap_not_json },
    { "cap 0 returns 0", test_bug_format_cap_zero },
    { "a cut keeps a whole last character",
      test_escape_keeps_whole_character },
    CU_TEST_INFO_NULL
};

int register_apierror_tests(void)
{
    return unit_add_suite("apierror", apierror_tests);
}
