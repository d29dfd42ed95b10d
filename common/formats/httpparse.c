/* httpparse.c - the request-head and response-head parsers and the
 * chunked body decoder.
 * Strict where leniency invites request smuggling (a Content-Length that
 * disagrees with itself, Transfer-Encoding with Content-Length, obsolete
 * line folding, whitespace before a colon are all refused). */
#include "httpparse.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define HP_CHUNK_LINE_MAX 1024     /* a chunk-size or trailer line */
#define HP_HEX_DIGITS_MAX 15       /* keeps a chunk size below 2^60 */
#define HP_STATUS_LINE_MIN 12      /* "HTTP/1.1 200" */
#define HP_LENGTH_DIGITS_MAX 18    /* a Content-Length below 10^18 */

enum {
    HP_CH_SIZE, HP_CH_EXT, HP_CH_SIZE_LF, HP_CH_DATA, HP_CH_DATA_CR,
    HP_CH_DATA_LF, HP_CH_TRAILER, HP_CH_TRAILER_LINE, HP_CH_END_LF,
    HP_CH_DONE
};

static const struct {
    const char *name;
    enum hp_method method;
} hp_methods[] = {
    { "GET", HP_GET }, { "HEAD", HP_HEAD }, { "POST", HP_POST },
    { "PUT", HP_PUT }, { "DELETE", HP_DELETE }, { "OPTIONS", HP_OPTIONS },
    { "PATCH", HP_PATCH },
};

/* RFC 9110 tchar, by table: every byte of every method and header name
 * is checked. */
static const bool hp_tchars[UCHAR_MAX + 1] = {
    ['0' ... '9'] = true, ['a' ... 'z'] = true, ['A' ... 'Z'] = true,
    ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true,
    ['\''] = true, ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true,
    ['^'] = true, ['_'] = true, ['`'] = true, ['|'] = true, ['~'] = true,
};

static bool hp_tchar(unsigned char c)
{
    return hp_tchars[c];
}

/* Bytes a field value may not hold: controls other than HTAB, and DEL. */
static const bool hp_ctls[UCHAR_MAX + 1] = {
    [0 ... 8] = true, [10 ... 31] = true, [0x7f] = true,
};

static enum hp_result hp_fail(struct hp_request *out, int status,
                              const char *why)
{
    out->error_status = status;
    out->error = why;
    return HP_ERROR;
}

/* The end of the line starting at p (index of its '\n'), or -1. */
static const char *hp_eol(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* A line's length without its CR LF (or bare LF); -1 for a CR elsewhere. */
static long hp_line_len(const char *p, const char *lf)
{
    const char *e = lf;

    if (e > p && e[-1] == '\r')
        e--;
    if (memchr(p, '\r', (size_t)(e - p)) != NULL)
        return -1;
    return (long)(e - p);
}

static enum hp_result hp_request_line(const char *p, size_t n,
                                      struct hp_request *out)
{
    const char *end = p + n, *sp1, *sp2;

    for (sp1 = p; sp1 < end && hp_tchar((unsigned char)*sp1); sp1++)
        ;
    if (sp1 == p || sp1 >= end || *sp1 != ' ')
        return hp_fail(out, 400, "malformed request line");
    out->method_str = p;
    out->method_len = (size_t)(sp1 - p);
    out->method = HP_OTHER;
    for (size_t i = 0; i < sizeof(hp_methods) / sizeof(hp_methods[0]); i++)
        if (strlen(hp_methods[i].name) == out->method_len &&
            memcmp(hp_methods[i].name, p, out->method_len) == 0)
            out->method = hp_methods[i].method;
    out->target = sp1 + 1;
    for (sp2 = out->target; sp2 < end && *sp2 != ' '; sp2++)
        if ((unsigned char)*sp2 <= ' ' || *sp2 == 0x7f)
            return hp_fail(out, 400, "control character in the target");
    out->target_len = (size_t)(sp2 - out->target);
    if (out->target_len == 0 || sp2 >= end)
        return hp_fail(out, 400, "malformed request line");
    sp2++;
    if (end - sp2 != 8 || memcmp(sp2, "HTTP/", 5) != 0 || sp2[6] != '.' ||
        sp2[5] < '0' || sp2[5] > '9' || sp2[7] < '0' || sp2[7] > '9')
        return hp_fail(out, 400, "malformed HTTP version");
    if (sp2[5] != '1' || sp2[7] > '1')
        return hp_fail(out, 505, "HTTP version not supported");
    out->minor = sp2[7] - '0';
    return HP_DONE;
}

/* Does the comma-separated list in v hold token (case-insensitive)? */
static bool hp_list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t start, stop;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',')
            i++;
        stop = i;
        while (stop > start && (v[stop - 1] == ' ' || v[stop - 1] == '\t'))
            stop--;
        if (stop - start == tl && strncasecmp(v + start, token, tl) == 0)
            return true;
    }
    return false;
}

/* Is h's name name (of length len), case-insensitively? */
static bool hp_name_is(const struct hp_header *h, const char *name,
                       size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

#define HP_NAME_IS(h, lit) hp_name_is((h), (lit), sizeof(lit) - 1)

/* What a message's framing fields say, a request's or a response's. */
struct hp_framing {
    int64_t content_length;    /* -1 when absent */
    bool chunked;              /* Transfer-Encoding: chunked */
    bool close, keep;          /* Connection: close, keep-alive */
};

/* Reads h into f when it is Content-Length, Transfer-Encoding (only
 * "chunked", alone: no other coding is implemented) or Connection: 1
 * read, 0 another field, -1 refused with *status (400, 501) and *why.
 * Inlined: as a call it cost the master 120 instructions per request
 * (callgrind), 0.9% of all it does. */
static inline __attribute__((always_inline)) int
hp_framing_field(const struct hp_header *h, struct hp_framing *f,
                 int *status, const char **why)
{
    *status = 400;
    if (HP_NAME_IS(h, "content-length")) {
        int64_t v = 0;
        size_t k = 0;

        /* At most 18 digits: a 19th would be refused, not overflow. */
        while (k < h->value_len && k < HP_LENGTH_DIGITS_MAX &&
               h->value[k] >= '0' && h->value[k] <= '9')
            v = v * 10 + (h->value[k++] - '0');
        if (k == 0 || k != h->value_len) {
            *why = "bad Content-Length";
            return -1;
        }
        if (f->content_length >= 0 && f->content_length != v) {
            *why = "conflicting Content-Length";
            return -1;
        }
        f->content_length = v;
    } else if (HP_NAME_IS(h, "transfer-encoding")) {
        if (f->chunked || h->value_len != 7 ||
            strncasecmp(h->value, "chunked", 7) != 0) {
            *status = 501;
            *why = "unsupported Transfer-Encoding";
            return -1;
        }
        f->chunked = true;
    } else if (HP_NAME_IS(h, "connection")) {
        f->close |= hp_list_has(h->value, h->value_len, "close");
        f->keep |= hp_list_has(h->value, h->value_len, "keep-alive");
    } else {
        return 0;
    }
    return 1;
}

/* Whether the connection may carry another message (RFC 9112 9.3). */
static bool hp_keep_alive(const struct hp_framing *f, int minor)
{
    return minor >= 1 ? !f->close : f->keep && !f->close;
}

/* Content-Length, Transfer-Encoding, Connection, Expect, Host. */
static enum hp_result hp_semantics(struct hp_request *out)
{
    struct hp_framing f = { -1, false, false, false };
    bool host = false;
    const char *why;
    int status, rc;

    for (size_t i = 0; i < out->header_count; i++) {
        const struct hp_header *h = &out->headers[i];

        /* Most fields are none of these, which their lengths tell. */
        if (h->name_len != sizeof("host") - 1 &&
            h->name_len != sizeof("expect") - 1 &&
            h->name_len != sizeof("connection") - 1 &&
            h->name_len != sizeof("content-length") - 1 &&
            h->name_len != sizeof("transfer-encoding") - 1)
            continue;
        rc = hp_framing_field(h, &f, &status, &why);
        if (rc < 0)
            return hp_fail(out, status, why);
        if (rc > 0)
            continue;
        if (HP_NAME_IS(h, "expect")) {
            if (h->value_len == 12 &&
                strncasecmp(h->value, "100-continue", 12) == 0)
                out->expect_continue = out->minor >= 1;
            else
                return hp_fail(out, 417, "unsupported Expect");
        } else if (HP_NAME_IS(h, "host")) {
            if (host)
                return hp_fail(out, 400, "more than one Host");
            host = true;
        }
    }
    if (f.chunked && f.content_length >= 0)
        return hp_fail(out, 400, "Content-Length with Transfer-Encoding");
    if (f.chunked && out->minor == 0)
        return hp_fail(out, 400, "chunked body in HTTP/1.0");
    if (out->minor >= 1 && !host)
        return hp_fail(out, 400, "missing Host");
    out->content_length = f.content_length;
    out->chunked = f.chunked;
    out->keep_alive = hp_keep_alive(&f, out->minor);
    return HP_DONE;
}

/* The header fields from p (inside buf, where the head starts) to the
 * blank line that ends the head, into hs (at most max_headers): HP_DONE
 * with *count and *head_len, HP_NEED_MORE, or HP_ERROR with *status
 * (400 or 431) and *why (too_large when the head is over max_head).
 * What a request and a response share. */
static enum hp_result hp_fields(const char *buf, size_t len, const char *p,
                                const struct hp_limits *lim,
                                size_t max_headers, struct hp_header *hs,
                                size_t *count, size_t *head_len,
                                const char *too_large, int *status,
                                const char **why)
{
    const char *end = buf + len, *lf;
    long n;

    *status = 400;
    for (;;) {
        struct hp_header *h;
        const char *colon, *v, *ve;

        if ((size_t)(p - buf) > lim->max_head)
            goto too_large;
        lf = hp_eol(p, end);
        if (lf == NULL) {
            if (len > lim->max_head)
                goto too_large;
            return HP_NEED_MORE;
        }
        if ((size_t)(lf + 1 - buf) > lim->max_head)
            goto too_large;
        n = hp_line_len(p, lf);
        if (n < 0) {
            *why = "stray CR in a header";
            return HP_ERROR;
        }
        if (n == 0)
            break;
        if (*p == ' ' || *p == '\t') {
            *why = "obsolete line folding";
            return HP_ERROR;
        }
        if (*count >= max_headers) {
            *status = 431;
            *why = "too many header fields";
            return HP_ERROR;
        }
        for (colon = p; colon < p + n && hp_tchar((unsigned char)*colon);
             colon++)
            ;
        if (colon == p || colon >= p + n || *colon != ':') {
            *why = "malformed header field";
            return HP_ERROR;
        }
        for (v = colon + 1; v < p + n && (*v == ' ' || *v == '\t'); v++)
            ;
        for (ve = p + n; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
            ;
        for (const char *q = v; q < ve; q++)
            if (hp_ctls[(unsigned char)*q]) {
                *why = "control character in a header";
                return HP_ERROR;
            }
        h = &hs[(*count)++];
        h->name = p;
        h->name_len = (size_t)(colon - p);
        h->value = v;
        h->value_len = (size_t)(ve - v);
        p = lf + 1;
    }
    *head_len = (size_t)(lf + 1 - buf);
    return HP_DONE;
too_large:
    *status = 431;
    *why = too_large;
    return HP_ERROR;
}

/* The first line of a head: its start, with *n its length without CR
 * LF; NULL when it is not whole yet (*why NULL while it is within
 * max_line) or is refused (*why says why, *too_long: for its length). */
static const char *hp_first_line(const char *p, const char *end,
                                 size_t max_line, long *n, bool *too_long,
                                 const char **why)
{
    const char *lf = hp_eol(p, end);

    *too_long = false;
    *why = NULL;
    if (lf == NULL) {
        size_t have = (size_t)(end - p);

        /* A CR at the end may be the first half of the line's CRLF. */
        if (have > 0 && end[-1] == '\r')
            have--;
        if (have > max_line) {
            *too_long = true;
            *why = "first line too long";
        }
        return NULL;
    }
    *n = hp_line_len(p, lf);
    if (*n < 0)
        *why = "stray CR in the first line";
    else if ((size_t)*n > max_line) {
        *too_long = true;
        *why = "first line too long";
    }
    return *why == NULL ? p : NULL;
}

static size_t hp_max_headers(const struct hp_limits *lim)
{
    return lim->max_headers < HP_MAX_HEADERS ? lim->max_headers
                                             : HP_MAX_HEADERS;
}

enum hp_result hp_parse_head(const char *buf, size_t len,
                             const struct hp_limits *lim,
                             struct hp_request *out)
{
    const char *p = buf, *end = buf + len, *line;
    enum hp_result r;
    bool too_long;
    const char *why;
    int status;
    long n = 0;

    /* All but the header array, of which only header_count entries are
     * ever read: 3 KiB not cleared on every parse. */
    memset(out, 0, offsetof(struct hp_request, headers));
    memset(&out->header_count, 0,
           sizeof(*out) - offsetof(struct hp_request, header_count));
    /* Empty lines before the request line are ignored (RFC 9112 2.2). */
    while (p < end && (*p == '\r' || *p == '\n')) {
        if ((size_t)(p - buf) >= lim->max_line)
            return hp_fail(out, 400, "too many empty lines");
        p++;
    }
    line = hp_first_line(p, end, lim->max_line, &n, &too_long, &why);
    if (line == NULL) {
        if (why == NULL)
            return HP_NEED_MORE;
        return too_long ? hp_fail(out, 414, "request line too long")
                        : hp_fail(out, 400, "stray CR in the request line");
    }
    if (hp_request_line(p, (size_t)n, out) != HP_DONE)
        return HP_ERROR;
    p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
    r = hp_fields(buf, len, p, lim, hp_max_headers(lim), out->headers,
                  &out->header_count, &out->head_len,
                  "request head too large", &status, &why);
    if (r == HP_ERROR)
        return hp_fail(out, status, why);
    return r == HP_DONE ? hp_semantics(out) : r;
}

/* "HTTP/1.x SSS reason" (the reason may be empty, its space too). */
static enum hp_result hp_status_line(const char *p, size_t n,
                                     struct hp_response *out)
{
    if (n < HP_STATUS_LINE_MIN || memcmp(p, "HTTP/1.", 7) != 0 ||
        (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9' ||
        (n > HP_STATUS_LINE_MIN && p[HP_STATUS_LINE_MIN] != ' ')) {
        out->error = "malformed status line";
        return HP_ERROR;
    }
    for (size_t i = HP_STATUS_LINE_MIN; i < n; i++)
        if (hp_ctls[(unsigned char)p[i]]) {
            out->error = "control character in the status line";
            return HP_ERROR;
        }
    out->minor = p[7] - '0';
    out->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return HP_DONE;
}

/* How the body is delimited, and whether the connection may be kept
 * (RFC 9112 6.3). */
static enum hp_result hp_response_semantics(struct hp_response *out)
{
    struct hp_framing f = { -1, false, false, false };
    int status;

    for (size_t i = 0; i < out->header_count; i++)
        if (hp_framing_field(&out->headers[i], &f, &status,
                             &out->error) < 0)
            return HP_ERROR;
    if (f.chunked && out->minor == 0) {
        out->error = "chunked body in HTTP/1.0";
        return HP_ERROR;
    }
    out->content_length = f.content_length;
    out->keep_alive = hp_keep_alive(&f, out->minor);
    if (out->status < 200 || out->status == 204 || out->status == 304) {
        out->no_body = true;
        return HP_DONE;
    }
    if (f.chunked) {
        /* Chunked wins; a Content-Length beside it is a framing fault
         * the connection does not survive. */
        out->chunked = true;
        if (out->content_length >= 0)
            out->keep_alive = false;
        out->content_length = -1;
    } else if (out->content_length < 0) {
        out->to_close = true;
        out->keep_alive = false;
    }
    return HP_DONE;
}

enum hp_result hp_parse_response(const char *buf, size_t len,
                                 const struct hp_limits *lim,
                                 struct hp_response *out)
{
    const char *end = buf + len, *line;
    enum hp_result r;
    bool too_long;
    int status;
    long n = 0;

    memset(out, 0, offsetof(struct hp_response, headers));
    memset(&out->header_count, 0,
           sizeof(*out) - offsetof(struct hp_response, header_count));
    line = hp_first_line(buf, end, lim->max_line, &n, &too_long,
                         &out->error);
    if (line == NULL)
        return out->error == NULL ? HP_NEED_MORE : HP_ERROR;
    if (hp_status_line(line, (size_t)n, out) != HP_DONE)
        return HP_ERROR;
    r = hp_fields(buf, len, (const char *)memchr(buf, '\n', len) + 1, lim,
                  hp_max_headers(lim), out->headers, &out->header_count,
                  &out->head_len, "response head too large", &status,
                  &out->error);
    return r == HP_DONE ? hp_response_semantics(out) : r;
}

size_t hp_peek_target(const char *buf, size_t len, const char **target)
{
    const char *p = buf, *end = buf + len, *t;

    *target = NULL;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    while (p < end && hp_tchar((unsigned char)*p))
        p++;
    if (p >= end || *p != ' ')
        return 0;
    t = ++p;
    while (p < end && *p != ' ' && *p != '\r' && *p != '\n')
        p++;
    *target = t;
    return (size_t)(p - t);
}

const struct hp_header *hp_find(const struct hp_request *req,
                                const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < req->header_count; i++)
        if (hp_name_is(&req->headers[i], name, len))
            return &req->headers[i];
    return NULL;
}

void hp_chunked_init(struct hp_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = HP_CH_SIZE;
}

static int hp_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The size line ended: data next, or the trailers after a 0 chunk. */
static enum hp_result hp_chunk_size_done(struct hp_chunked *c,
                                         uint64_t max_body)
{
    if (c->digits == 0)
        return HP_ERROR;
    if (c->remaining > max_body - c->total)
        return HP_ERROR;
    c->state = c->remaining == 0 ? HP_CH_TRAILER : HP_CH_DATA;
    c->line = 0;
    c->digits = 0;
    return HP_NEED_MORE;
}

enum hp_result hp_chunked_decode(struct hp_chunked *c, const char *in,
                                 size_t len, char *out, size_t *consumed,
                                 size_t *produced, uint64_t max_body)
{
    size_t i = 0, o = 0;
    enum hp_result r = HP_NEED_MORE;

    while (i < len && c->state != HP_CH_DONE && r != HP_ERROR) {
        char ch = in[i];

        switch (c->state) {
        case HP_CH_SIZE: {
            int d = hp_hexval(ch);

            i++;
            c->line++;
            if (d >= 0) {
                if (++c->digits > HP_HEX_DIGITS_MAX)
                    r = HP_ERROR;
                c->remaining = c->remaining * 16 + (uint64_t)d;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = HP_CH_EXT;
            } else if (ch == '\r') {
                c->state = HP_CH_SIZE_LF;
            } else if (ch == '\n') {
                r = hp_chunk_size_done(c, max_body);
            } else {
                r = HP_ERROR;
            }
            break;
        }
        case HP_CH_EXT:
            /* Chunk extensions are ignored, within a line limit. */
            i++;
            if (ch == '\n')
                r = hp_chunk_size_done(c, max_body);
            else if (++c->line > HP_CHUNK_LINE_MAX)
                r = HP_ERROR;
            break;
        case HP_CH_SIZE_LF:
            i++;
            r = ch == '\n' ? hp_chunk_size_done(c, max_body) : HP_ERROR;
            break;
        case HP_CH_DATA: {
            size_t n = len - i;

            if (n > c->remaining)
                n = (size_t)c->remaining;
            memmove(out + o, in + i, n);
            i += n;
            o += n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = HP_CH_DATA_CR;
            break;
        }
        case HP_CH_DATA_CR:
            i++;
            if (ch == '\r')
                c->state = HP_CH_DATA_LF;
            else if (ch == '\n')
                c->state = HP_CH_SIZE;
            else
                r = HP_ERROR;
            break;
        case HP_CH_DATA_LF:
            i++;
            if (ch == '\n')
                c->state = HP_CH_SIZE;
            else
                r = HP_ERROR;
            break;
        case HP_CH_TRAILER:
            i++;
            if (ch == '\r')
                c->state = HP_CH_END_LF;
            else if (ch == '\n')
                c->state = HP_CH_DONE;
            else {
                c->state = HP_CH_TRAILER_LINE;
                c->line = 1;
            }
            break;
        case HP_CH_TRAILER_LINE:
            i++;
            if (ch == '\n')
                c->state = HP_CH_TRAILER;
            else if (++c->line > HP_CHUNK_LINE_MAX)
                r = HP_ERROR;
            break;
        case HP_CH_END_LF:
            i++;
            if (ch == '\n')
                c->state = HP_CH_DONE;
            else
                r = HP_ERROR;
            break;
        default:
            r = HP_ERROR;
            break;
        }
    }
    *consumed = i;
    *produced = o;
    if (r == HP_ERROR)
        return HP_ERROR;
    return c->state == HP_CH_DONE ? HP_DONE : HP_NEED_MORE;
}
