/* fuzz_httpparse.c - libFuzzer target for the front end's HTTP/1.1
 * request-head parser and chunked body decoder (include/httpparse.h).
 * Input: byte 0 picks the mode and limits, byte 1 a piece length and a
 * prefix; the rest is the bytes a client sent.
 *   byte 0 bits 0-1  limits: the front end's (8192/32768/100), small,
 *                    tiny, or a max_headers above HP_MAX_HEADERS
 *          bits 2-3  0, 1: a request (head, then a chunked body when the
 *                    head says so); 2: a chunked body alone; 3: the bytes
 *                    chunk-encoded here, then decoded
 * The master re-parses the head each time bytes arrive and once more on
 * just head_len bytes, so a head must parse the same from any prefix:
 * "need more" until it is whole, then the same result. The chunked
 * decoder keeps state across calls: the body cut into pieces, in one
 * piece, and decoded in place must give the same bytes and result. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "httpparse.h"

#define FUZZ_HP_HEADER       2
#define FUZZ_HP_LIMITS_MASK  0x03
#define FUZZ_HP_MODE_SHIFT   2
#define FUZZ_HP_MODE_MASK    0x03
#define FUZZ_HP_MODE_CHUNKED 2
#define FUZZ_HP_MODE_ENCODE  3
#define FUZZ_HP_MAX_BODY     4096    /* small, so the bound is reached */
#define FUZZ_HP_NAME_MAX     128
#define FUZZ_HP_HEX_MAX      24      /* "%zx\r\n" of a chunk size */
#define FUZZ_HP_VERSION      " HTTP/1.1"
#define FUZZ_HP_CR_CUTS      16      /* prefixes cut after a CR, at most */
#define FUZZ_HP_TE           "transfer-encoding"

static const struct hp_limits fuzz_hp_limits[] = {
    { 8192, 32768, 100 },            /* master/frontend.c */
    { 64, 256, 8 },
    { 16, 48, 2 },
    { 1024, 65536, 1000 },
};

static bool fuzz_hp_within(const char *p, size_t n, const char *buf,
                           size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static bool fuzz_hp_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* What a request head that parsed must be. */
static void fuzz_hp_check_done(const char *buf, size_t len,
                               const struct hp_limits *lim,
                               const struct hp_request *r)
{
    size_t max_headers = lim->max_headers < HP_MAX_HEADERS ?
                         lim->max_headers : HP_MAX_HEADERS;
    bool te = false;

    FUZZ_CHECK(r->head_len > 0 && r->head_len <= len &&
               r->head_len <= lim->max_head && buf[r->head_len - 1] == '\n',
               "head_len %zu of %zu", r->head_len, len);
    FUZZ_CHECK(r->method_len > 0 && r->target_len > 0 &&
               fuzz_hp_within(r->method_str, r->method_len, buf,
                              r->head_len) &&
               fuzz_hp_within(r->target, r->target_len, buf, r->head_len),
               "request line outside the head");
    FUZZ_CHECK(r->method_len + 1 + r->target_len + strlen(FUZZ_HP_VERSION)
               <= lim->max_line,
               "request line longer than max_line %zu", lim->max_line);
    FUZZ_CHECK(r->minor == 0 || r->minor == 1, "HTTP/1.%d", r->minor);
    FUZZ_CHECK(r->method != HP_POST ||
               (r->method_len == 4 && memcmp(r->method_str, "POST", 4) == 0),
               "POST from \"%.*s\"", (int)r->method_len, r->method_str);
    FUZZ_CHECK(r->header_count <= max_headers, "%zu headers, limit %zu",
               r->header_count, max_headers);
    for (size_t i = 0; i < r->header_count; i++) {
        const struct hp_header *h = &r->headers[i];
        char name[FUZZ_HP_NAME_MAX];
        const struct hp_header *found;

        FUZZ_CHECK(h->name_len > 0 &&
                   fuzz_hp_within(h->name, h->name_len, buf, r->head_len) &&
                   fuzz_hp_within(h->value, h->value_len, buf, r->head_len),
                   "header %zu outside the head", i);
        for (size_t k = 0; k < h->name_len; k++)
            FUZZ_CHECK(fuzz_hp_tchar((unsigned char)h->name[k]),
                       "header name byte 0x%02x", (unsigned char)h->name[k]);
        for (size_t k = 0; k < h->value_len; k++)
            FUZZ_CHECK(h->value[k] != '\r' && h->value[k] != '\n' &&
                       h->value[k] != '\0', "CR, LF or NUL in a value");
        FUZZ_CHECK(h->value_len == 0 ||
                   (h->value[0] != ' ' && h->value[0] != '\t' &&
                    h->value[h->value_len - 1] != ' ' &&
                    h->value[h->value_len - 1] != '\t'),
                   "value keeps surrounding whitespace");
        if (h->name_len == strlen(FUZZ_HP_TE) &&
            strncasecmp(h->name, FUZZ_HP_TE, h->name_len) == 0)
            te = true;
        if (h->name_len < sizeof(name)) {
            memcpy(name, h->name, h->name_len);
            name[h->name_len] = '\0';
            found = hp_find(r, name);
            FUZZ_CHECK(found != NULL && found <= h &&
                       found->name_len == h->name_len &&
                       strncasecmp(found->name, name, h->name_len) == 0,
                       "hp_find(\"%s\") missed header %zu", name, i);
        }
    }
    FUZZ_CHECK(te == r->chunked, "Transfer-Encoding present %d, chunked %d",
               te, r->chunked);
    FUZZ_CHECK(r->content_length >= -1, "Content-Length %lld",
               (long long)r->content_length);
    FUZZ_CHECK(!r->chunked || (r->content_length == -1 && r->minor == 1),
               "chunked with Content-Length or in HTTP/1.0");
}

/* Two results for the same head, from buffers holding it at the same
 * place, must agree field by field. */
static void fuzz_hp_same(const struct hp_request *a,
                         const struct hp_request *b)
{
    FUZZ_CHECK(a->head_len == b->head_len && a->method == b->method &&
               a->method_str == b->method_str &&
               a->method_len == b->method_len && a->target == b->target &&
               a->target_len == b->target_len && a->minor == b->minor &&
               a->header_count == b->header_count &&
               a->content_length == b->content_length &&
               a->chunked == b->chunked && a->keep_alive == b->keep_alive &&
               a->expect_continue == b->expect_continue,
               "the same head parsed differently (head_len %zu, %zu)",
               a->head_len, b->head_len);
    FUZZ_CHECK(memcmp(a->headers, b->headers,
                      a->header_count * sizeof(a->headers[0])) == 0,
               "the same head gave different header fields");
}

/* The head seen through a prefix of k bytes, as the master sees it
 * while the bytes arrive. */
static void fuzz_hp_prefix(const char *buf, size_t k,
                           const struct hp_limits *lim, enum hp_result whole,
                           const struct hp_request *w)
{
    struct hp_request *p = malloc(sizeof(*p));
    enum hp_result r;

    FUZZ_CHECK(p != NULL, "out of memory");
    r = hp_parse_head(buf, k, lim, p);
    if (whole == HP_DONE && k >= w->head_len) {
        FUZZ_CHECK(r == HP_DONE, "head of %zu bytes: prefix of %zu gives %d",
                   w->head_len, k, r);
        fuzz_hp_same(w, p);
    } else if (whole == HP_DONE || whole == HP_NEED_MORE) {
        FUZZ_CHECK(r == HP_NEED_MORE, "prefix of %zu bytes gives %d (%d %s) "
                   "but %s", k, r, p->error_status,
                   p->error ? p->error : "",
                   whole == HP_DONE ? "the whole head parses"
                                    : "more bytes only need more");
    } else {
        FUZZ_CHECK(r != HP_DONE, "a prefix of %zu bytes parses, the whole "
                   "buffer is refused", k);
    }
    {
        /* What a refusal is dressed by: bytes of the prefix, and the
         * parsed target's start when the head parsed. */
        const char *t;
        size_t n = hp_peek_target(buf, k, &t);

        FUZZ_CHECK(n == 0 || fuzz_hp_within(t, n, buf, k),
                   "peeked target outside the %zu bytes", k);
        FUZZ_CHECK(r != HP_DONE || (t == p->target && n == p->target_len),
                   "peeked target differs from the parsed one");
    }
    free(p);
}

/* Decodes a chunked body three ways; returns the whole-buffer result. */
static enum hp_result fuzz_hp_chunked(const char *in, size_t len,
                                      size_t piece, uint64_t max_body,
                                      char **decoded, size_t *decoded_len,
                                      size_t *used)
{
    struct hp_chunked whole, cut, inplace;
    char *out_whole = malloc(len + 1), *out_cut = malloc(len + 1);
    char *buf = malloc(len + 1);
    size_t consumed, produced, cut_in = 0, cut_out = 0;
    enum hp_result rw, rc = HP_NEED_MORE, ri;

    FUZZ_CHECK(out_whole && out_cut && buf, "out of memory");
    hp_chunked_init(&whole);
    rw = hp_chunked_decode(&whole, in, len, out_whole, &consumed, &produced,
                           max_body);
    FUZZ_CHECK(rw >= HP_ERROR && rw <= HP_DONE, "result %d", rw);
    FUZZ_CHECK(consumed <= len && produced <= consumed,
               "consumed %zu, produced %zu of %zu", consumed, produced, len);
    FUZZ_CHECK(rw != HP_NEED_MORE || consumed == len,
               "needs more with %zu of %zu bytes unread", len - consumed,
               len);
    FUZZ_CHECK(produced <= max_body && whole.total == produced,
               "produced %zu, total %llu, max %llu", produced,
               (unsigned long long)whole.total,
               (unsigned long long)max_body);

    hp_chunked_init(&cut);
    while (rc == HP_NEED_MORE && cut_in < len) {
        size_t n = piece < len - cut_in ? piece : len - cut_in;
        size_t c_used, c_made;

        rc = hp_chunked_decode(&cut, in + cut_in, n, out_cut + cut_out,
                               &c_used, &c_made, max_body);
        FUZZ_CHECK(c_used <= n && c_made <= c_used, "piece: used %zu, "
                   "made %zu of %zu", c_used, c_made, n);
        cut_in += c_used;
        cut_out += c_made;
    }
    if (rc == HP_DONE) {
        size_t c_used = 1, c_made = 1;

        /* Done stays done and reads nothing more. */
        FUZZ_CHECK(hp_chunked_decode(&cut, in, len, out_cut, &c_used,
                                     &c_made, max_body) == HP_DONE &&
                   c_used == 0 && c_made == 0, "decoded past the end");
    }
    FUZZ_CHECK(rc == rw && cut_in == consumed && cut_out == produced &&
               memcmp(out_cut, out_whole, produced) == 0,
               "in pieces of %zu: result %d, %zu in, %zu out; whole: %d, "
               "%zu in, %zu out", piece, rc, cut_in, cut_out, rw, consumed,
               produced);

    memcpy(buf, in, len);
    hp_chunked_init(&inplace);
    ri = hp_chunked_decode(&inplace, buf, len, buf, &cut_in, &cut_out,
                           max_body);
    FUZZ_CHECK(ri == rw && cut_in == consumed && cut_out == produced &&
               memcmp(buf, out_whole, produced) == 0,
               "decoded in place: result %d, %zu out; apart: %d, %zu out",
               ri, cut_out, rw, produced);

    free(out_cut);
    free(buf);
    *decoded = out_whole;
    *decoded_len = produced;
    *used = consumed;
    return rw;
}

/* Chunk-encodes body (chunks of piece bytes, sizes in either case of
 * hex, an extension on odd chunks, one trailer) and decodes it back. */
static void fuzz_hp_round_trip(const char *body, size_t len, size_t piece)
{
    size_t cap = len + (len / piece + 2) * (FUZZ_HP_HEX_MAX + 16) + 32;
    char *enc = malloc(cap), *dec;
    size_t n = 0, dec_len, used, chunk = 0;
    enum hp_result r;

    FUZZ_CHECK(enc != NULL, "out of memory");
    for (size_t at = 0; at < len; at += piece, chunk++) {
        size_t k = piece < len - at ? piece : len - at;

        n += (size_t)snprintf(enc + n, cap - n,
                              chunk % 2 ? "%zX;ext=\"v\"\r\n" : "%zx\r\n",
                              k);
        memcpy(enc + n, body + at, k);
        n += k;
        memcpy(enc + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)snprintf(enc + n, cap - n, "0\r\nX-Trailer: t\r\n\r\n");
    r = fuzz_hp_chunked(enc, n, piece, UINT64_MAX, &dec, &dec_len, &used);
    FUZZ_CHECK(r == HP_DONE && used == n && dec_len == len &&
               memcmp(dec, body, len) == 0,
               "a body of %zu bytes in chunks of %zu: result %d, %zu "
               "bytes back", len, piece, r, dec_len);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct hp_limits *lim;
    const char *buf = (const char *)data + FUZZ_HP_HEADER;
    struct hp_request *req;
    enum hp_result r;
    size_t len, piece, dec_len, used;
    int mode;
    char *dec;

    if (size < FUZZ_HP_HEADER)
        return 0;
    lim = &fuzz_hp_limits[data[0] & FUZZ_HP_LIMITS_MASK];
    mode = (data[0] >> FUZZ_HP_MODE_SHIFT) & FUZZ_HP_MODE_MASK;
    piece = data[1] ? data[1] : 1;
    len = size - FUZZ_HP_HEADER;

    if (mode == FUZZ_HP_MODE_ENCODE) {
        fuzz_hp_round_trip(buf, len, piece);
        return 0;
    }
    if (mode == FUZZ_HP_MODE_CHUNKED) {
        fuzz_hp_chunked(buf, len, piece, FUZZ_HP_MAX_BODY, &dec, &dec_len,
                        &used);
        free(dec);
        return 0;
    }

    req = malloc(sizeof(*req));
    FUZZ_CHECK(req != NULL, "out of memory");
    r = hp_parse_head(buf, len, lim, req);
    FUZZ_CHECK(r >= HP_ERROR && r <= HP_DONE, "hp_parse_head returned %d",
               r);
    if (r == HP_ERROR) {
        int s = req->error_status;

        FUZZ_CHECK(req->error != NULL && (s == 400 || s == 414 ||
                   s == 417 || s == 431 || s == 501 || s == 505),
                   "refused with status %d", s);
    } else if (r == HP_DONE) {
        fuzz_hp_check_done(buf, len, lim, req);
        fuzz_hp_prefix(buf, req->head_len, lim, r, req);
        fuzz_hp_prefix(buf, req->head_len - 1, lim, r, req);
    }
    /* One more prefix, chosen by the input, and those that end just
     * after a CR: a segment boundary between CR and LF is where a line's
     * length is easiest to count twice. */
    if (len > 0)
        fuzz_hp_prefix(buf, len - 1 - (piece - 1) % len, lim, r, req);
    for (size_t i = 0, seen = 0; i + 1 < len && seen < FUZZ_HP_CR_CUTS; i++)
        if (buf[i] == '\r') {
            fuzz_hp_prefix(buf, i + 1, lim, r, req);
            seen++;
        }
    if (r == HP_DONE && req->chunked) {
        fuzz_hp_chunked(buf + req->head_len, len - req->head_len, piece,
                        FUZZ_HP_MAX_BODY, &dec, &dec_len, &used);
        free(dec);
    }
    free(req);
    return 0;
}
