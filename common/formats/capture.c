/* capture.c - the pure parts of request capture: file-safe ids, secret
 * header names, masking secret values, UTF-8 safe cuts, a body as JSON,
 * and the rotation choice. See capture.h. */
#include "capture.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CAP_RATELIMIT "x-ratelimit-"

size_t cap_file_id(const char *id, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = id; *p != '\0' && n + 1 < cap; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
                  (ch == '.' && n > 0);

        out[n++] = ok ? ch : '_';
    }
    if (n == 0)
        out[n++] = '_';
    out[n] = '\0';
    return n;
}

/* Does name[len] contain word (lower case), in any case? */
static bool cap_contains(const char *name, size_t len, const char *word)
{
    size_t wl = strlen(word);

    for (size_t i = 0; i + wl <= len; i++)
        if (strncasecmp(name + i, word, wl) == 0)
            return true;
    return false;
}

bool cap_header_secret(const char *name, size_t len)
{
    static const char *const words[] = {
        "authorization", "api-key", "apikey", "cookie", "token", "secret",
        "auth", "key", "session", "password"
    };

    /* Rate limit headers count tokens; they carry none. */
    if (len >= sizeof(CAP_RATELIMIT) - 1 &&
        strncasecmp(name, CAP_RATELIMIT, sizeof(CAP_RATELIMIT) - 1) == 0)
        return false;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (cap_contains(name, len, words[i]))
            return true;
    return false;
}

void cap_scrub(char *buf, size_t len, const char *const *secrets, size_t n)
{
    for (size_t s = 0; s < n; s++) {
        const char *sec = secrets[s];
        size_t sl = sec != NULL ? strlen(sec) : 0;
        char *p = buf, *end = buf + len;

        if (sl < CAP_SECRET_MIN)
            continue;
        while (p < end) {
            char *hit = memmem(p, (size_t)(end - p), sec, sl);

            if (hit == NULL)
                break;
            memset(hit, CAP_MASK_CHAR, sl);
            p = hit + sl;
        }
        /* A cut body may end in the first bytes of a secret. */
        for (size_t k = sl - 1 < len ? sl - 1 : len; k >= CAP_TAIL_MIN;
             k--) {
            if (memcmp(end - k, sec, k) == 0) {
                memset(end - k, CAP_MASK_CHAR, k);
                break;
            }
        }
    }
}

/* Bytes of the UTF-8 sequence that begins with lead; 0 when lead cannot
 * begin one. */
static size_t cap_utf8_len(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead >= 0xE0 && lead <= 0xEF)
        return 3;
    if (lead >= 0xF0 && lead <= 0xF4)
        return 4;
    return 0;
}

/* Is s[len] at i a whole, valid UTF-8 sequence of n bytes? Overlong
 * forms, surrogates and code points over U+10FFFF are not. */
static bool cap_utf8_valid(const unsigned char *s, size_t len, size_t i,
                           size_t n)
{
    if (n == 0 || i + n > len)
        return false;
    for (size_t k = 1; k < n; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return false;
    if (n == 3 && ((s[i] == 0xE0 && s[i + 1] < 0xA0) ||
                   (s[i] == 0xED && s[i + 1] >= 0xA0)))
        return false;
    if (n == 4 && ((s[i] == 0xF0 && s[i + 1] < 0x90) ||
                   (s[i] == 0xF4 && s[i + 1] >= 0x90)))
        return false;
    return true;
}

size_t cap_cut(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    if (len <= max)
        return len;
    /* The last sequence that begins before max and ends after it goes. */
    while (i < max) {
        size_t n = cap_utf8_len(u[i]);

        if (n == 0 || !cap_utf8_valid(u, len, i, n))
            n = 1;         /* a stray byte: cap_utf8_clean replaces it */
        if (i + n > max)
            break;
        i += n;
    }
    return i;
}

void cap_utf8_clean(char *s, size_t len)
{
    unsigned char *u = (unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = cap_utf8_len(u[i]);

        if (u[i] == 0 || !cap_utf8_valid(u, len, i, n)) {
            u[i++] = '?';
            continue;
        }
        i += n;
    }
}

json_object *cap_body_json(const char *data, size_t len, size_t max,
                           const char *const *secrets, size_t n)
{
    json_object *o = json_object_new_object();
    size_t keep = data != NULL ? cap_cut(data, len, max) : 0;
    char *copy = malloc(keep + 1);

    if (o == NULL || copy == NULL)
        util_oom("a captured body");
    if (keep > 0)
        memcpy(copy, data, keep);
    copy[keep] = '\0';
    /* A secret across the cut leaves its first bytes at the end: the
     * tail rule of cap_scrub masks them. */
    cap_scrub(copy, keep, secrets, n);
    cap_utf8_clean(copy, keep);
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)len));
    json_object_object_add(o, "truncated", json_object_new_boolean(
        data != NULL && len > keep));
    json_object_object_add(o, "text", json_object_new_string_len(copy,
                                                                 (int)keep));
    free(copy);
    return o;
}

static int cap_file_cmp(const void *a, const void *b)
{
    const struct cap_file *x = a, *y = b;

    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->name, y->name);
}

size_t cap_rotate_pick(struct cap_file *files, size_t n, size_t max_files)
{
    if (n <= max_files)
        return 0;
    qsort(files, n, sizeof(*files), cap_file_cmp);
    return n - max_files;
}
