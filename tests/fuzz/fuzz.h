/* fuzz.h - what the libFuzzer targets in tests/fuzz share: a check that
 * aborts with a message (so libFuzzer records the input as a crash), a
 * whole-buffer json-c parse used as the reference JSON parser, and a
 * UTF-8 checker. Header-only: every target is built from its own .c and
 * the common modules, nothing else. */
#ifndef RCC_FUZZ_H
#define RCC_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* An invariant the module must keep: on failure, say which and abort so
 * libFuzzer saves the input as crash-<sha1>. */
#define FUZZ_CHECK(cond, ...)                                            \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__,   \
                    __LINE__, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                \
            fputc('\n', stderr);                                         \
            abort();                                                     \
        }                                                                \
    } while (0)

/* RFC 8259 whitespace, the only bytes allowed around a JSON text. */
static inline bool fuzz_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses s[0..len) with a json-c tokener nested at most max_depth deep
 * and the given flags (0: json-c's lenient defaults). The whole buffer
 * must be one value, with only whitespace after it. json-c needs an end
 * marker to finish a top-level number, so it is fed a NUL-terminated
 * copy. Returns the object (the caller puts it) and sets *ok; a JSON
 * null parses to NULL with *ok true. */
static inline json_object *fuzz_json_parse(const char *s, size_t len,
                                           int max_depth, int flags,
                                           bool *ok)
{
    json_tokener *tok = json_tokener_new_ex(max_depth);
    char *copy = malloc(len + 1);
    json_object *obj = NULL;

    *ok = false;
    if (tok == NULL || copy == NULL) {
        fprintf(stderr, "fuzz_json_parse: out of memory\n");
        abort();
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    json_tokener_set_flags(tok, flags);
    obj = json_tokener_parse_ex(tok, copy, (int)len + 1);
    if (json_tokener_get_error(tok) == json_tokener_success) {
        size_t end = json_tokener_get_parse_end(tok);

        *ok = true;
        for (size_t i = end; i < len; i++)
            if (!fuzz_json_ws(s[i]))
                *ok = false;
    }
    if (!*ok) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    free(copy);
    return obj;
}

/* Length of the UTF-8 sequence starting at s[0..len), or 0 when it is
 * not a well-formed one (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF). */
static inline size_t fuzz_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2; cp = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3; cp = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static inline bool fuzz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        size_t n = fuzz_utf8_seq(u + i, len - i);

        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Prints len bytes as hex on one line (for information messages). */
static inline void fuzz_print_hex(FILE *f, const char *what,
                                  const uint8_t *p, size_t len)
{
    fprintf(f, "%s (%zu bytes): ", what, len);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", p[i]);
    fputc('\n', f);
}

#endif
