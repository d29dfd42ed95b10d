/* jsonscan.c - a recursive-descent JSON recogniser (RFC 8259 grammar,
 * depth-limited) and a top-level member finder built on it. */
#include "jsonscan.h"

#include <stdint.h>
#include <string.h>

struct js {
    const char *s;
    size_t len;
    size_t i;
    int max_depth;
};

static void js_ws(struct js *j)
{
    while (j->i < j->len && (j->s[j->i] == ' ' || j->s[j->i] == '\t' ||
                             j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
}

static int js_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* Eight bytes at a time: does v hold a '"', a '\\' or a control byte
 * (< 0x20)? The classic exact tests for a zero byte and for a byte below
 * n (n <= 128), from "Bit Twiddling Hacks". */
#define JS_ONES  0x0101010101010101ULL
#define JS_HIGHS 0x8080808080808080ULL
#define JS_HAS_ZERO(x)    (((x) - JS_ONES) & ~(x) & JS_HIGHS)
#define JS_HAS_LESS(x, n) (((x) - JS_ONES * (n)) & ~(x) & JS_HIGHS)

/* The high bit of each byte of v that is special in a string, and
 * possibly of bytes above the first special one (a borrow runs upward),
 * never below it: so the lowest set bit marks the first special byte. */
static uint64_t js_special8(uint64_t v)
{
    return JS_HAS_ZERO(v ^ (JS_ONES * '"')) |
           JS_HAS_ZERO(v ^ (JS_ONES * '\\')) | JS_HAS_LESS(v, 0x20);
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JS_BITS_PER_BYTE 8
/* Bytes before the first special one (memory order: little-endian). */
#define JS_PLAIN_PREFIX(m) ((size_t)__builtin_ctzll(m) / JS_BITS_PER_BYTE)
#else
#define JS_PLAIN_PREFIX(m) ((size_t)0)   /* find it byte by byte */
#endif

/* A string at j->i (the opening quote); *escaped says if it held '\'.
 * Plain bytes go eight at a time, and the first special byte in a word
 * is found from its mask: a short string (most keys and values of a
 * stream event) costs a word or two, not a word test per byte. */
static int js_string(struct js *j, bool *escaped)
{
    const unsigned char *s = (const unsigned char *)j->s;
    size_t i = j->i, len = j->len;

    if (i >= len || s[i] != '"')
        return -1;
    i++;
    while (i < len) {
        unsigned char c;
        uint64_t v;

        while (i + sizeof(v) <= len) {
            uint64_t m;

            memcpy(&v, s + i, sizeof(v));
            m = js_special8(v);
            if (m != 0) {
                i += JS_PLAIN_PREFIX(m);
                break;
            }
            i += sizeof(v);
        }
        if (i >= len)
            break;
        c = s[i];
        if (c == '"') {
            j->i = i + 1;
            return 0;
        }
        if (c < 0x20)
            goto bad;
        if (c == '\\') {
            if (escaped != NULL)
                *escaped = true;
            if (++i >= len)
                goto bad;
            c = s[i];
            if (c == 'u') {
                if (i + 4 >= len || !js_hex((char)s[i + 1]) ||
                    !js_hex((char)s[i + 2]) || !js_hex((char)s[i + 3]) ||
                    !js_hex((char)s[i + 4]))
                    goto bad;
                i += 4;
            } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
                goto bad;
            }
        }
        i++;
    }
bad:
    /* Where it went wrong, for the error message (len: it ended). */
    j->i = i < len ? i : len;
    return -1;
}

static int js_digits(struct js *j)
{
    size_t start = j->i;

    while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    return j->i > start ? 0 : -1;
}

static int js_number(struct js *j)
{
    if (j->i < j->len && j->s[j->i] == '-')
        j->i++;
    if (j->i < j->len && j->s[j->i] == '0')
        j->i++;
    else if (js_digits(j) < 0)
        return -1;
    if (j->i < j->len && j->s[j->i] == '.') {
        j->i++;
        if (js_digits(j) < 0)
            return -1;
    }
    if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        if (js_digits(j) < 0)
            return -1;
    }
    return 0;
}

static int js_literal(struct js *j, const char *word)
{
    size_t n = strlen(word);

    if (j->len - j->i < n || memcmp(j->s + j->i, word, n) != 0)
        return -1;
    j->i += n;
    return 0;
}

static int js_value(struct js *j, int depth);

static int js_container(struct js *j, int depth, char close, bool object)
{
    j->i++;
    js_ws(j);
    if (j->i < j->len && j->s[j->i] == close) {
        j->i++;
        return 0;
    }
    for (;;) {
        js_ws(j);
        if (object) {
            if (js_string(j, NULL) < 0)
                return -1;
            js_ws(j);
            if (j->i >= j->len || j->s[j->i] != ':')
                return -1;
            j->i++;
            js_ws(j);
        }
        if (js_value(j, depth + 1) < 0)
            return -1;
        js_ws(j);
        if (j->i >= j->len)
            return -1;
        if (j->s[j->i] == close) {
            j->i++;
            return 0;
        }
        if (j->s[j->i] != ',')
            return -1;
        j->i++;
    }
}

static int js_value(struct js *j, int depth)
{
    if (depth > j->max_depth || j->i >= j->len)
        return -1;
    switch (j->s[j->i]) {
    case '{': return js_container(j, depth, '}', true);
    case '[': return js_container(j, depth, ']', false);
    case '"': return js_string(j, NULL);
    case 't': return js_literal(j, "true");
    case 'f': return js_literal(j, "false");
    case 'n': return js_literal(j, "null");
    default:  return js_number(j);
    }
}

int js_validate_at(const char *s, size_t len, int max_depth,
                   size_t *err_pos, bool *trailing)
{
    struct js j = { s, len, 0, max_depth };

    *trailing = false;
    js_ws(&j);
    if (js_value(&j, 1) < 0) {
        *err_pos = j.i;
        return -1;
    }
    js_ws(&j);
    if (j.i != len) {
        *err_pos = j.i;
        *trailing = true;
        return -1;
    }
    return 0;
}

int js_validate(const char *s, size_t len, int max_depth)
{
    size_t pos;
    bool trailing;

    return js_validate_at(s, len, max_depth, &pos, &trailing);
}

int js_find_member(const char *s, size_t len, const char *key,
                   size_t *start, size_t *end)
{
    size_t st, en;
    int rc = js_count_members(s, len, &key, 1, &st, &en, NULL);

    if (rc == 1) {
        *start = st;
        *end = en;
    }
    return rc;
}

int js_find_members(const char *s, size_t len, const char *const *keys,
                    size_t nkeys, size_t *starts, size_t *ends)
{
    return js_count_members(s, len, keys, nkeys, starts, ends, NULL);
}

int js_count_members(const char *s, size_t len, const char *const *keys,
                     size_t nkeys, size_t *starts, size_t *ends,
                     unsigned *counts)
{
    struct js j = { s, len, 0, JS_MAX_DEPTH };
    int found = 0;

    for (size_t k = 0; k < nkeys; k++) {
        starts[k] = ends[k] = 0;
        if (counts != NULL)
            counts[k] = 0;
    }
    js_ws(&j);
    if (j.i >= len || s[j.i] != '{')
        return -1;
    j.i++;
    js_ws(&j);
    if (j.i < len && s[j.i] == '}') {
        j.i++;
        goto tail;
    }
    for (;;) {
        size_t kstart, klen_here, vstart;
        bool escaped = false;

        js_ws(&j);
        kstart = j.i + 1;
        if (js_string(&j, &escaped) < 0 || escaped)
            return -1;
        klen_here = j.i - 1 - kstart;
        js_ws(&j);
        if (j.i >= len || s[j.i] != ':')
            return -1;
        j.i++;
        js_ws(&j);
        vstart = j.i;
        if (js_value(&j, 2) < 0)
            return -1;
        for (size_t k = 0; k < nkeys; k++) {
            if (strlen(keys[k]) == klen_here &&
                memcmp(s + kstart, keys[k], klen_here) == 0) {
                if (ends[k] == 0)
                    found++;
                starts[k] = vstart;
                ends[k] = j.i;
                if (counts != NULL)
                    counts[k]++;
            }
        }
        js_ws(&j);
        if (j.i >= len)
            return -1;
        if (s[j.i] == '}') {
            j.i++;
            break;
        }
        if (s[j.i] != ',')
            return -1;
        j.i++;
    }
tail:
    js_ws(&j);
    return j.i == len ? found : -1;
}

int js_array_each(const char *s, size_t len,
                  int (*fn)(void *arg, size_t index, const char *value,
                            size_t value_len),
                  void *arg)
{
    struct js j = { s, len, 0, JS_MAX_DEPTH };
    size_t index = 0;

    js_ws(&j);
    if (j.i >= len || s[j.i] != '[')
        return -1;
    j.i++;
    js_ws(&j);
    if (j.i < len && s[j.i] == ']')
        return 0;
    for (;;) {
        size_t start;
        int rc;

        js_ws(&j);
        start = j.i;
        if (js_value(&j, 2) < 0)
            return -1;
        rc = fn(arg, index++, s + start, j.i - start);
        if (rc != 0)
            return rc;
        js_ws(&j);
        if (j.i >= len)
            return -1;
        if (s[j.i] == ']')
            return 0;
        if (s[j.i] != ',')
            return -1;
        j.i++;
    }
}

long long js_int(const char *s, size_t len, long long def)
{
    long long v = 0;
    size_t i = 0;
    bool neg = false;

    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return def;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (1LL << 53))
            return def;
        v = v * 10 + (s[i] - '0');
    }
    return neg ? -v : v;
}
