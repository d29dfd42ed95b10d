/* httpparse.h - HTTP/1.1 message parsing: the front end's request head
 * (request line and header fields, RFC 9112) and the worker's upstream
 * response head (worker/httpc.c), each parsed in one pass over a buffer
 * that may still be incomplete, and an incremental decoder for chunked
 * bodies (requests and responses alike). Limits are enforced as the bytes arrive, so an
 * over-long line or head is refused before it is buffered whole. Pure:
 * no allocation, no I/O; results point into the caller's buffer. */
#ifndef RCC_HTTPPARSE_H
#define RCC_HTTPPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HP_MAX_HEADERS 100     /* hard cap of the header array */

enum hp_method {
    HP_GET, HP_HEAD, HP_POST, HP_PUT, HP_DELETE, HP_OPTIONS, HP_PATCH,
    HP_OTHER
};

struct hp_limits {
    size_t max_line;           /* request line; beyond: 414 */
    size_t max_head;           /* whole head; beyond: 431 */
    size_t max_headers;        /* header fields (<= HP_MAX_HEADERS): 431 */
};

struct hp_header {
    const char *name;
    size_t name_len;
    const char *value;         /* without surrounding whitespace */
    size_t value_len;
};

struct hp_request {
    enum hp_method method;
    const char *method_str;
    size_t method_len;
    const char *target;        /* request-target as sent */
    size_t target_len;
    int minor;                 /* HTTP/1.minor: 0 or 1 */
    struct hp_header headers[HP_MAX_HEADERS];
    size_t header_count;
    int64_t content_length;    /* -1 when absent */
    bool chunked;              /* Transfer-Encoding: chunked */
    bool keep_alive;           /* after this request, per version/header */
    bool expect_continue;      /* Expect: 100-continue */
    size_t head_len;           /* bytes up to and including the blank line */
    int error_status;    /* with HP_ERROR: 400, 414, 417, 431, 501, 505 */
    const char *error;         /* with HP_ERROR: why, for the log */
};

enum hp_result { HP_ERROR = -1, HP_NEED_MORE = 0, HP_DONE = 1 };

/* Parses the head at buf[0..len). HP_DONE fills out; HP_NEED_MORE when
 * the head is incomplete but within limits; HP_ERROR with error_status. */
enum hp_result hp_parse_head(const char *buf, size_t len,
                             const struct hp_limits *lim,
                             struct hp_request *out);

/* An upstream's response head. Limits as for a request: max_line is
 * the status line's. */
struct hp_response {
    int status;                /* 100-599 */
    int minor;                 /* HTTP/1.minor: 0 or 1 */
    struct hp_header headers[HP_MAX_HEADERS];
    size_t header_count;
    int64_t content_length;    /* -1 when absent or chunked */
    bool chunked;              /* Transfer-Encoding: chunked */
    bool to_close;             /* the body ends when the connection does */
    bool no_body;              /* 1xx, 204, 304 */
    bool keep_alive;           /* the connection may carry another request */
    size_t head_len;           /* bytes up to and including the blank line */
    const char *error;         /* with HP_ERROR: why */
};

/* Parses the response head at buf[0..len), as hp_parse_head does a
 * request's. Strict where the framing is concerned (a Content-Length
 * that disagrees with itself, a coding other than chunked); chunked with
 * a Content-Length is taken as chunked and the connection not kept. */
enum hp_result hp_parse_response(const char *buf, size_t len,
                                 const struct hp_limits *lim,
                                 struct hp_response *out);

/* The request target's bytes that have arrived of a head that may be
 * incomplete or refused (after any empty lines, the method and one
 * space, up to a space, CR, LF or the end of buf): enough to tell whose
 * path a refused request was for. Sets *target; 0 when none arrived. */
size_t hp_peek_target(const char *buf, size_t len, const char **target);

/* Case-insensitive lookup of a header's value; NULL when absent. */
const struct hp_header *hp_find(const struct hp_request *req,
                                const char *name);

/* Chunked body decoding, incrementally. */
struct hp_chunked {
    int state;
    uint64_t remaining;        /* bytes left in the current chunk */
    uint64_t total;            /* decoded so far */
    size_t line;               /* bytes of the current size/trailer line */
    size_t digits;             /* hex digits of the current size */
};

void hp_chunked_init(struct hp_chunked *c);
/* Decodes from in[0..len), copying body bytes to out (which may be in;
 * decoding never writes ahead of reading). *consumed and *produced say
 * how far it got. HP_DONE at the end of the body (trailers included),
 * HP_NEED_MORE to continue, HP_ERROR on a malformed encoding or when the
 * body would exceed max_body. */
enum hp_result hp_chunked_decode(struct hp_chunked *c, const char *in,
                                 size_t len, char *out, size_t *consumed,
                                 size_t *produced, uint64_t max_body);

#endif
