/* fuzz_jsonscan.c - libFuzzer target for the allocation-free JSON
 * scanner, checked against json-c:
 *   - js_validate_at() agrees with js_validate() and says where.
 *   - js_validate(s, len, 64) == 0 implies json-c (depth-64 tokener)
 *     parses the whole buffer too. The converse does not hold: json-c's
 *     defaults accept more than RFC 8259 (comments, trailing commas,
 *     single quotes, NaN, raw control characters, any-case literals...).
 *     Such inputs are only counted, and printed when the environment
 *     sets FUZZ_REPORT_DISAGREEMENTS.
 *   - js_find_member() on anything json-c reads as an object (the worker
 *     runs it on bodies json-c accepted): a member it finds is json-c's
 *     value for that key (the last one), one it reports absent json-c
 *     does not have either.
 *   - js_int() on a found integer is json-c's value (or the default), and
 *     on any input it never reads out of bounds. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define FUZZ_JS_MULTI_MAX 16
#include "jsonscan.h"

#define FUZZ_JS_DEPTH        64
#define FUZZ_JS_INT_DEF      LLONG_MIN
#define FUZZ_JS_KEY_MAX      64
#define FUZZ_JS_REPORT_MAX   100      /* disagreements printed per process */
#define FUZZ_JS_PLAIN_DIGITS 15       /* js_int is exact up to here */

static const char *const fuzz_js_keys[] = {
    "model", "stream", "messages", "choices", "usage", "prompt_tokens",
    "a", "", NULL
};

static unsigned long fuzz_js_disagreements;

/* Checks js_find_member(s, key) against json-c's object root. */
static void fuzz_js_member(const char *s, size_t len, json_object *root,
                           const char *key)
{
    size_t start = 0, end = 0;
    json_object *want = NULL, *got;
    bool has = json_object_object_get_ex(root, key, &want);
    bool ok;
    int rc = js_find_member(s, len, key, &start, &end);

    FUZZ_CHECK(rc >= -1 && rc <= 1, "js_find_member returned %d", rc);
    if (rc == 0)
        FUZZ_CHECK(!has, "js_find_member: \"%s\" absent, json-c has it",
                   key);
    if (rc != 1)
        return;
    FUZZ_CHECK(start < end && end <= len, "span [%zu, %zu) of %zu", start,
               end, len);
    FUZZ_CHECK(has, "js_find_member found \"%s\", json-c did not", key);
    got = fuzz_json_parse(s + start, end - start, FUZZ_JS_DEPTH, 0, &ok);
    FUZZ_CHECK(ok, "span of \"%s\" is not JSON: %.*s", key,
               (int)(end - start), s + start);
    FUZZ_CHECK(json_object_equal(got, want),
               "\"%s\": js_find_member found %.*s, json-c has %s", key,
               (int)(end - start), s + start,
               json_object_to_json_string(want));
    if (json_object_is_type(want, json_type_int)) {
        long long v = js_int(s + start, end - start, FUZZ_JS_INT_DEF);

        FUZZ_CHECK(v == FUZZ_JS_INT_DEF ||
                   v == (long long)json_object_get_int64(want),
                   "js_int(%.*s) = %lld, json-c %s", (int)(end - start),
                   s + start, v, json_object_to_json_string(want));
    }
    json_object_put(got);
}

static void fuzz_js_members(const char *s, size_t len, json_object *root)
{
    char first[FUZZ_JS_KEY_MAX];

    for (const char *const *k = fuzz_js_keys; *k != NULL; k++)
        fuzz_js_member(s, len, root, *k);
    /* And the object's first key, so keys the fuzzer invents are tried. */
    first[0] = '\0';
    json_object_object_foreach(root, key, val) {
        (void)val;
        if (strlen(key) < sizeof(first))
            memcpy(first, key, strlen(key) + 1);
        break;
    }
    if (first[0] != '\0')
        fuzz_js_member(s, len, root, first);
}

/* js_validate_at agrees with js_validate; a refusal points into the
 * buffer, and "trailing" means a whole value (with its whitespace) came
 * first: the bytes before the error position validate on their own. */
static void fuzz_js_validate_at(const char *s, size_t len, int valid)
{
    size_t pos = SIZE_MAX;
    bool trailing = false;
    int rc = js_validate_at(s, len, FUZZ_JS_DEPTH, &pos, &trailing);

    FUZZ_CHECK(rc == valid, "js_validate_at %d, js_validate %d", rc, valid);
    if (rc == 0)
        return;
    FUZZ_CHECK(pos <= len, "error at %zu of %zu", pos, len);
    if (trailing) {
        FUZZ_CHECK(pos < len && !fuzz_json_ws(s[pos]),
                   "trailing data at %zu is whitespace or past the end",
                   pos);
        FUZZ_CHECK(js_validate(s, pos, FUZZ_JS_DEPTH) == 0,
                   "trailing data at %zu but the bytes before it do not "
                   "validate", pos);
    }
}

/* js_int on a plain decimal of a few digits is strtoll. */
static void fuzz_js_int(const char *s, size_t len)
{
    char buf[FUZZ_JS_PLAIN_DIGITS + 2];
    size_t digits = len > 0 && s[0] == '-' ? len - 1 : len;
    long long v = js_int(s, len, FUZZ_JS_INT_DEF);

    if (digits == 0 || digits > FUZZ_JS_PLAIN_DIGITS)
        return;
    for (size_t i = len - digits; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return;
    memcpy(buf, s, len);
    buf[len] = '\0';
    FUZZ_CHECK(v == strtoll(buf, NULL, 10), "js_int(%s) = %lld", buf, v);
}

/* js_find_members() is js_validate() of an object plus js_find_member()
 * of each key, in one pass: it must agree with both. */
static void fuzz_js_multi(const char *s, size_t size, int valid)
{
    size_t nk = 0, st[FUZZ_JS_MULTI_MAX], en[FUZZ_JS_MULTI_MAX];
    int rc, want = 0;
    bool escaped_key = false;

    while (nk < FUZZ_JS_MULTI_MAX && fuzz_js_keys[nk] != NULL)
        nk++;
    rc = js_find_members(s, size, fuzz_js_keys, nk, st, en);
    for (size_t k = 0; k < nk; k++) {
        size_t a, b;
        int one = js_find_member(s, size, fuzz_js_keys[k], &a, &b);

        if (one < 0)
            escaped_key = true;
        if (rc < 0)
            continue;
        FUZZ_CHECK(one >= 0, "js_find_members accepted what js_find_member "
                   "refused");
        if (one == 1) {
            want++;
            FUZZ_CHECK(st[k] == a && en[k] == b, "key %s: [%zu,%zu) vs "
                       "[%zu,%zu)", fuzz_js_keys[k], st[k], en[k], a, b);
        } else {
            FUZZ_CHECK(en[k] == 0, "key %s found only by js_find_members",
                       fuzz_js_keys[k]);
        }
    }
    if (rc >= 0) {
        FUZZ_CHECK(valid == 0, "js_find_members accepted an invalid text");
        FUZZ_CHECK(rc == want, "found %d, js_find_member %d", rc, want);
    } else if (valid == 0 && !escaped_key) {
        size_t i = strspn(s, " \t\r\n");

        FUZZ_CHECK(i >= size || s[i] != '{', "a valid object refused");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int valid = js_validate(s, size, FUZZ_JS_DEPTH);
    bool jc_ok;
    json_object *root;

    FUZZ_CHECK(valid == 0 || valid == -1, "js_validate returned %d", valid);
    fuzz_js_validate_at(s, size, valid);
    root = fuzz_json_parse(s, size, FUZZ_JS_DEPTH, 0, &jc_ok);
    if (valid == 0)
        FUZZ_CHECK(jc_ok, "js_validate accepts, json-c refuses");
    if (valid != 0 && jc_ok && memchr(s, '\0', size) == NULL) {
        fuzz_js_disagreements++;
        if (getenv("FUZZ_REPORT_DISAGREEMENTS") != NULL &&
            fuzz_js_disagreements <= FUZZ_JS_REPORT_MAX)
            fuzz_print_hex(stderr, "json-c accepts, js_validate refuses",
                           data, size);
    }
    if (jc_ok && json_object_is_type(root, json_type_object))
        fuzz_js_members(s, size, root);
    else
        for (const char *const *k = fuzz_js_keys; *k != NULL; k++) {
            size_t start, end;

            /* Not an object json-c reads: must still stay in bounds. */
            if (js_find_member(s, size, *k, &start, &end) == 1)
                FUZZ_CHECK(start < end && end <= size, "span [%zu, %zu)",
                           start, end);
        }
    fuzz_js_multi(s, size, valid);
    fuzz_js_int(s, size);
    json_object_put(root);
    return 0;
}
