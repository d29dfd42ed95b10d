/* fuzz_httpresp.c - libFuzzer target for the worker's upstream HTTP/1.1
 * response-head parser, hp_parse_response() (include/httpparse.h), and
 * for the chunked decoder on the body after a chunked head.
 * Input: byte 0 bits 0-1 pick the limits; byte 1 a piece length (for the
 * body decoded in pieces) and one prefix to re-parse; the rest is the
 * bytes an upstream sent.
 * The client re-parses the head each time bytes arrive, so a head must
 * parse the same from any prefix: "need more" until it is whole, then
 * the same fields; a buffer that is refused has no prefix that parses.
 * A parsed head says how its body ends in exactly one way (no body,
 * chunked, to close, or a Content-Length) and keeps the connection only
 * when the version, the Connection field and the framing allow it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "httpparse.h"

#define FUZZ_HR_HEADER       2
#define FUZZ_HR_LIMITS_MASK  0x03
#define FUZZ_HR_MAX_BODY     4096     /* small, so the bound is reached */
#define FUZZ_HR_EVERY_PREFIX 512      /* heads this short: every prefix */
#define FUZZ_HR_CUTS         32       /* else: at most this many line cuts */
#define FUZZ_HR_VERSION      "HTTP/1."
#define FUZZ_HR_MINOR_AT     7        /* "HTTP/1.x" */
#define FUZZ_HR_STATUS_AT    9        /* "HTTP/1.x SSS" */
#define FUZZ_HR_STATUS_MIN   100
#define FUZZ_HR_STATUS_MAX   599
#define FUZZ_HR_LINE_MIN     12       /* "HTTP/1.1 200" */
#define FUZZ_HR_DECIMAL_MAX  24       /* "%lld" of an int64_t */

/* max_line stays below max_head in each, so a head that needs more is
 * never longer than max_head. */
static const struct hp_limits fuzz_hr_limits[] = {
    { 8192, 65536, 100 },             /* an upstream client's */
    { 64, 256, 8 },
    { 16, 48, 2 },
    { 1024, 65536, 1000 },            /* max_headers above the array */
};

/* What the header fields of a parsed head hold, counted here. */
struct fuzz_hr_fields {
    size_t lengths;                   /* Content-Length fields */
    size_t codings;                   /* Transfer-Encoding fields */
    bool close_alone;                 /* one is "close", nothing else */
    bool close_in;                    /* "close" within one */
    bool keep_in;                     /* "keep-alive" within one */
};

static bool fuzz_hr_inside(const char *p, size_t n, const char *lo,
                           const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static bool fuzz_hr_named(const struct hp_header *h, const char *name)
{
    return h->name_len == strlen(name) &&
           strncasecmp(h->name, name, h->name_len) == 0;
}

/* Is v[0..n) the decimal spelling of want, leading zeros allowed? */
static bool fuzz_hr_decimal_is(const char *v, size_t n, int64_t want)
{
    char text[FUZZ_HR_DECIMAL_MAX];
    int k = snprintf(text, sizeof(text), "%lld", (long long)want);

    while (n > 1 && v[0] == '0') {
        v++;
        n--;
    }
    return k > 0 && (size_t)k == n && memcmp(v, text, n) == 0;
}

/* Does h's value hold word (lower case) anywhere, in any case? */
static bool fuzz_hr_value_has(const struct hp_header *h, const char *word)
{
    size_t n = strlen(word);

    for (size_t at = 0; at + n <= h->value_len; at++)
        if (strncasecmp(h->value + at, word, n) == 0)
            return true;
    return false;
}

/* The header fields lie in order after the status line, inside the head,
 * with token names and trimmed values free of control bytes. */
static void fuzz_hr_check_fields(const char *buf, const char *lf,
                                 const struct hp_response *r,
                                 struct fuzz_hr_fields *seen)
{
    const char *from = lf + 1, *head_end = buf + r->head_len;

    memset(seen, 0, sizeof(*seen));
    for (size_t i = 0; i < r->header_count; i++) {
        const struct hp_header *h = &r->headers[i];

        FUZZ_CHECK(h->name_len > 0 &&
                   fuzz_hr_inside(h->name, h->name_len, from, head_end) &&
                   fuzz_hr_inside(h->value, h->value_len,
                                  h->name + h->name_len, head_end) &&
                   h->name[h->name_len] == ':',
                   "header %zu out of place", i);
        for (size_t k = 0; k < h->name_len; k++)
            FUZZ_CHECK(h->name[k] > ' ' && h->name[k] != ':' &&
                       (unsigned char)h->name[k] < 0x7f,
                       "header %zu name byte 0x%02x", i,
                       (unsigned char)h->name[k]);
        for (size_t k = 0; k < h->value_len; k++)
            FUZZ_CHECK((unsigned char)h->value[k] >= ' ' ||
                       h->value[k] == '\t', "header %zu value byte 0x%02x",
                       i, (unsigned char)h->value[k]);
        FUZZ_CHECK(h->value_len == 0 ||
                   (h->value[0] != ' ' && h->value[0] != '\t' &&
                    h->value[h->value_len - 1] != ' ' &&
                    h->value[h->value_len - 1] != '\t'),
                   "header %zu value keeps surrounding whitespace", i);
        from = h->value + h->value_len;
        seen->lengths += fuzz_hr_named(h, "content-length");
        seen->codings += fuzz_hr_named(h, "transfer-encoding");
        if (fuzz_hr_named(h, "connection")) {
            seen->close_alone |= h->value_len == strlen("close") &&
                                 fuzz_hr_value_has(h, "close");
            seen->close_in |= fuzz_hr_value_has(h, "close");
            seen->keep_in |= fuzz_hr_value_has(h, "keep-alive");
        }
        if (fuzz_hr_named(h, "content-length") && !r->chunked &&
            !r->no_body)
            FUZZ_CHECK(fuzz_hr_decimal_is(h->value, h->value_len,
                                          r->content_length),
                       "Content-Length \"%.*s\" taken as %lld",
                       (int)h->value_len, h->value,
                       (long long)r->content_length);
    }
}

/* How the body ends, and whether the connection is kept. */
static void fuzz_hr_check_framing(const struct hp_response *r,
                                  const struct fuzz_hr_fields *seen)
{
    bool no_body = r->status < 200 || r->status == 204 || r->status == 304;
    int ways = r->chunked + r->to_close + (r->content_length >= 0);

    FUZZ_CHECK(r->no_body == no_body, "status %d, no_body %d", r->status,
               r->no_body);
    /* A 1xx, 204 or 304 keeps the Content-Length it declares (that of
     * the representation), but has neither of the other two. */
    FUZZ_CHECK(r->no_body ? !r->chunked && !r->to_close : ways == 1,
               "framing: no_body %d chunked %d to_close %d length %lld",
               r->no_body, r->chunked, r->to_close,
               (long long)r->content_length);
    FUZZ_CHECK(r->content_length >= -1, "Content-Length %lld",
               (long long)r->content_length);
    FUZZ_CHECK(seen->codings <= 1 && (seen->codings == 0 || r->minor == 1),
               "%zu Transfer-Encoding fields in HTTP/1.%d", seen->codings,
               r->minor);
    FUZZ_CHECK(r->chunked == (!r->no_body && seen->codings == 1),
               "chunked %d with %zu Transfer-Encoding fields", r->chunked,
               seen->codings);
    FUZZ_CHECK(r->to_close == (!r->no_body && seen->codings == 0 &&
                               seen->lengths == 0),
               "to_close %d with %zu lengths, %zu codings", r->to_close,
               seen->lengths, seen->codings);
    FUZZ_CHECK((r->content_length >= 0) ==
               (seen->lengths > 0 && !r->chunked),
               "Content-Length %lld from %zu fields",
               (long long)r->content_length, seen->lengths);
    FUZZ_CHECK(!r->keep_alive || r->minor == 1 || seen->keep_in,
               "HTTP/1.0 kept alive without keep-alive");
    FUZZ_CHECK(!r->keep_alive || !seen->close_alone,
               "kept alive after Connection: close");
    FUZZ_CHECK(!r->keep_alive ||
               (!r->to_close && !(r->chunked && seen->lengths > 0)),
               "kept alive with a body that ends with the connection or "
               "is framed twice");
    FUZZ_CHECK(r->keep_alive || r->minor == 0 || seen->close_in ||
               r->to_close || (r->chunked && seen->lengths > 0),
               "HTTP/1.1 not kept alive for no reason");
}

/* What a head that parsed must be. */
static void fuzz_hr_check_done(const char *buf, size_t len,
                               const struct hp_limits *lim,
                               const struct hp_response *r)
{
    size_t max_headers = lim->max_headers < HP_MAX_HEADERS ?
                         lim->max_headers : HP_MAX_HEADERS;
    const char *lf;
    size_t line;
    struct fuzz_hr_fields seen;

    FUZZ_CHECK(r->error == NULL, "parsed, with error \"%s\"", r->error);
    FUZZ_CHECK(r->head_len > 0 && r->head_len <= len &&
               r->head_len <= lim->max_head && buf[r->head_len - 1] == '\n',
               "head_len %zu of %zu", r->head_len, len);
    lf = memchr(buf, '\n', r->head_len);
    line = (size_t)(lf - buf);
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    FUZZ_CHECK(line >= FUZZ_HR_LINE_MIN && line <= lim->max_line &&
               memcmp(buf, FUZZ_HR_VERSION, strlen(FUZZ_HR_VERSION)) == 0,
               "status line of %zu bytes, max_line %zu", line,
               lim->max_line);
    FUZZ_CHECK((r->minor == 0 || r->minor == 1) &&
               buf[FUZZ_HR_MINOR_AT] == '0' + r->minor,
               "HTTP/1.%d from '%c'", r->minor, buf[FUZZ_HR_MINOR_AT]);
    FUZZ_CHECK(r->status >= FUZZ_HR_STATUS_MIN &&
               r->status <= FUZZ_HR_STATUS_MAX &&
               fuzz_hr_decimal_is(buf + FUZZ_HR_STATUS_AT, 3, r->status),
               "status %d from \"%.3s\"", r->status,
               buf + FUZZ_HR_STATUS_AT);
    FUZZ_CHECK(buf[FUZZ_HR_STATUS_AT - 1] == ' ' &&
               (line == FUZZ_HR_LINE_MIN || buf[FUZZ_HR_LINE_MIN] == ' '),
               "status line \"%.*s\" not split by spaces", (int)line, buf);
    for (size_t i = FUZZ_HR_LINE_MIN; i < line; i++)
        FUZZ_CHECK(((unsigned char)buf[i] >= ' ' && buf[i] != '\x7f') ||
                   buf[i] == '\t', "reason byte 0x%02x",
                   (unsigned char)buf[i]);
    FUZZ_CHECK(r->header_count <= max_headers, "%zu headers, limit %zu",
               r->header_count, max_headers);
    fuzz_hr_check_fields(buf, lf, r, &seen);
    fuzz_hr_check_framing(r, &seen);
}

/* A buffer the parser waits on holds no blank line after a first line,
 * and is within the limits. */
static void fuzz_hr_check_need_more(const char *buf, size_t len,
                                    const struct hp_limits *lim,
                                    const struct hp_response *r)
{
    FUZZ_CHECK(r->error == NULL, "needs more, with error \"%s\"", r->error);
    FUZZ_CHECK(memmem(buf, len, "\n\n", 2) == NULL &&
               memmem(buf, len, "\n\r\n", 3) == NULL,
               "needs more after a blank line");
    FUZZ_CHECK(len <= lim->max_head, "needs more with %zu bytes, "
               "max_head %zu", len, lim->max_head);
    FUZZ_CHECK(memchr(buf, '\n', len) != NULL || len <= lim->max_line + 1,
               "needs more with a first line of %zu bytes, max_line %zu",
               len, lim->max_line);
}

/* The first k bytes of the buffer, whose whole parse gave *w: need more
 * below a parsed head's end, the same fields from it on; need more for a
 * buffer that needs more; anything but a parse for a refused one. */
static void fuzz_hr_prefix(const char *buf, size_t k,
                           const struct hp_limits *lim,
                           const struct hp_response *w, enum hp_result whole)
{
    struct hp_response *p = malloc(sizeof(*p));
    enum hp_result r;

    FUZZ_CHECK(p != NULL, "out of memory");
    r = hp_parse_response(buf, k, lim, p);
    if (whole == HP_ERROR) {
        FUZZ_CHECK(r != HP_DONE, "a prefix of %zu bytes parses, the whole "
                   "buffer is refused (%s)", k, w->error);
    } else if (whole == HP_NEED_MORE || k < w->head_len) {
        FUZZ_CHECK(r == HP_NEED_MORE, "prefix of %zu bytes gives %d (%s)",
                   k, r, p->error ? p->error : "");
    } else {
        FUZZ_CHECK(r == HP_DONE && p->head_len == w->head_len &&
                   p->status == w->status && p->minor == w->minor &&
                   p->header_count == w->header_count &&
                   p->content_length == w->content_length &&
                   p->chunked == w->chunked && p->to_close == w->to_close &&
                   p->no_body == w->no_body &&
                   p->keep_alive == w->keep_alive &&
                   memcmp(p->headers, w->headers,
                          w->header_count * sizeof(w->headers[0])) == 0,
                   "the head of %zu bytes parses differently from %zu "
                   "bytes (%d)", w->head_len, k, r);
    }
    free(p);
}

/* The prefixes re-parsed: all of them below a short head's end, else
 * those cut at each line's end (before and after its LF, and after a
 * CR), and the one the input picks. */
static void fuzz_hr_prefixes(const char *buf, size_t len, size_t pick,
                             const struct hp_limits *lim,
                             const struct hp_response *w,
                             enum hp_result whole)
{
    size_t end = whole == HP_DONE ? w->head_len : len;

    if (whole == HP_DONE && end <= FUZZ_HR_EVERY_PREFIX) {
        for (size_t k = 0; k < end; k++)
            fuzz_hr_prefix(buf, k, lim, w, whole);
    } else {
        size_t cuts = 0;

        for (size_t k = 0; k < end && cuts < FUZZ_HR_CUTS; k++)
            if (buf[k] == '\n' || buf[k] == '\r') {
                fuzz_hr_prefix(buf, k, lim, w, whole);
                fuzz_hr_prefix(buf, k + 1, lim, w, whole);
                cuts++;
            }
    }
    if (whole == HP_DONE)
        fuzz_hr_prefix(buf, w->head_len, lim, w, whole);
    if (len > 0)
        fuzz_hr_prefix(buf, pick % len, lim, w, whole);
}

/* The body after a chunked head, decoded whole and in pieces of piece
 * bytes: the same bytes, the same result, never more than the bound. */
static void fuzz_hr_body(const char *in, size_t len, size_t piece)
{
    struct hp_chunked all, cut;
    char *one = malloc(len + 1), *many = malloc(len + 1);
    size_t used, made, at = 0, out = 0;
    enum hp_result r, rc = HP_NEED_MORE;

    FUZZ_CHECK(one != NULL && many != NULL, "out of memory");
    hp_chunked_init(&all);
    r = hp_chunked_decode(&all, in, len, one, &used, &made,
                          FUZZ_HR_MAX_BODY);
    FUZZ_CHECK(used <= len && made <= used && made <= FUZZ_HR_MAX_BODY &&
               (r != HP_NEED_MORE || used == len),
               "result %d: %zu of %zu bytes read, %zu made", r, used, len,
               made);
    hp_chunked_init(&cut);
    while (rc == HP_NEED_MORE && at < len) {
        size_t n = len - at < piece ? len - at : piece, u, m;

        rc = hp_chunked_decode(&cut, in + at, n, many + out, &u, &m,
                               FUZZ_HR_MAX_BODY);
        FUZZ_CHECK(u <= n && m <= u, "piece of %zu: %zu read, %zu made", n,
                   u, m);
        at += u;
        out += m;
    }
    FUZZ_CHECK(rc == r && at == used && out == made &&
               memcmp(one, many, made) == 0,
               "in pieces of %zu: %d, %zu read, %zu made; whole: %d, %zu "
               "read, %zu made", piece, rc, at, out, r, used, made);
    free(one);
    free(many);
}

/* One upstream's bytes, parsed under lim; knob (byte 1) picks the
 * prefix re-parsed and the pieces the body is decoded in. */
static void fuzz_hr_run(const char *buf, size_t len,
                        const struct hp_limits *lim, uint8_t knob)
{
    struct hp_response *resp = malloc(sizeof(*resp));
    enum hp_result r;

    FUZZ_CHECK(resp != NULL, "out of memory");
    r = hp_parse_response(buf, len, lim, resp);
    FUZZ_CHECK(r == HP_ERROR || r == HP_NEED_MORE || r == HP_DONE,
               "hp_parse_response returned %d", r);
    if (r == HP_ERROR)
        FUZZ_CHECK(resp->error != NULL, "refused without a reason");
    else if (r == HP_NEED_MORE)
        fuzz_hr_check_need_more(buf, len, lim, resp);
    else
        fuzz_hr_check_done(buf, len, lim, resp);
    fuzz_hr_prefixes(buf, len, knob, lim, resp, r);
    if (r == HP_DONE && resp->chunked)
        fuzz_hr_body(buf + resp->head_len, len - resp->head_len,
                     knob > 0 ? knob : 1);
    free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= FUZZ_HR_HEADER)
        fuzz_hr_run((const char *)data + FUZZ_HR_HEADER,
                    size - FUZZ_HR_HEADER,
                    &fuzz_hr_limits[data[0] & FUZZ_HR_LIMITS_MASK], data[1]);
    return 0;
}
