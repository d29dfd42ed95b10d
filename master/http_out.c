/* http_out.c - the output half of the HTTP server: response heads
 * (Date, X-Request-Id, our headers), whole answers, chunked streams, the
 * one error-answer path (http_send_error), the server's flush list
 * (chunks queued in one loop turn leave in one write per connection),
 * backpressure (http_watch_drain) and what happens when an answer is
 * complete (close, or on to the next request through the server's
 * process hook, which http.c sets). Owns nothing it allocates: the
 * connection and its buffers are http.c's. */
#include "http_out.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/util.h>

#include "apierror.h"
#include "util.h"

#define HTTP_NUM_MAX 24      /* the digits of any uint64_t */

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case APIERR_CLIENT_GONE: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return status < 400 ? "OK" : status < 500 ? "Client Error"
                                                        : "Server Error";
    }
}

void http_out_arm(struct http_conn *c, int ms)
{
    struct timeval tv = util_ms_to_tv(ms);

    evtimer_add(c->timer, &tv);
}

void http_out_read_on(struct http_conn *c, bool on)
{
    if (on == c->reading)
        return;
    c->reading = on;
    if (on)
        event_add(c->rev, NULL);
    else
        event_del(c->rev);
}

/* Frees the connection from the event loop rather than from inside a
 * call the front end made: callers never see it vanish under them. */
void http_out_doom(struct http_conn *c)
{
    if (c->doomed)
        return;
    c->doomed = true;
    http_out_read_on(c, false);
    event_del(c->wev);
    event_active(c->timer, EV_TIMEOUT, 0);
}

static void http_check_drain(struct http_conn *c)
{
    struct http_server *s = c->srv;

    if (c->drain_watch && c->state == HTTP_BUSY &&
        evbuffer_get_length(c->out) <= c->drain_low) {
        c->drain_watch = false;
        if (s->on_drain != NULL)
            s->on_drain(&c->req, s->arg);
    }
}

void http_watch_drain(struct http_req *req, size_t low)
{
    req->conn->drain_watch = true;
    req->conn->drain_low = low;
}

/* Writes what is buffered; arms the write event for the rest. */
void http_out_flush(struct http_conn *c)
{
    http_out_unqueue(c);
    while (!c->doomed && evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);

        if (n < 0 && (EVUTIL_SOCKET_ERROR() == EAGAIN ||
                      EVUTIL_SOCKET_ERROR() == EINTR))
            break;
        if (n <= 0) {
            http_out_doom(c);
            return;
        }
    }
    if (c->doomed)
        return;
    if (evbuffer_get_length(c->out) > 0) {
        http_check_drain(c);
        event_add(c->wev, NULL);
        return;
    }
    event_del(c->wev);
    http_check_drain(c);
    if (c->state == HTTP_CLOSING) {
        /* Closing with unread input would reset the connection and
         * destroy our answer in flight: shut our side, then read and drop
         * what the client still sends, for a while (a lingering close). */
        c->state = HTTP_LINGERING;
        shutdown(c->fd, SHUT_WR);
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        http_out_read_on(c, true);
        http_out_arm(c, HTTP_LINGER_MS);
    }
}

/* Between requests: reads the next one, unless the client is behind on
 * reading its answers. Then nothing more is read or started (a client
 * that pipelines requests and never reads would otherwise have us
 * buffer answers without end) until the unsent output is down to
 * HTTP_OUTPUT_MAX again; the client has idle_timeout_ms to get there.
 * Returns whether input waits to be processed now. */
bool http_out_await_request(struct http_conn *c)
{
    size_t pending = evbuffer_get_length(c->in);

    if (evbuffer_get_length(c->out) > HTTP_OUTPUT_MAX) {
        if (!c->out_blocked) {
            c->out_blocked = true;
            http_out_read_on(c, false);
            http_out_arm(c, c->srv->limits.idle_timeout_ms);
        }
        return false;
    }
    c->out_blocked = false;
    http_out_read_on(c, true);
    c->req_started = pending > 0;
    http_out_arm(c, pending > 0 ? c->srv->limits.header_timeout_ms :
                              c->srv->limits.idle_timeout_ms);
    return pending > 0;
}

/* The answer is complete: close, or go on with the next request. */
void http_out_finish(struct http_conn *c)
{
    if (c->doomed)
        return;            /* being freed from the loop already */
    c->requests++;
    c->req_started = false;
    c->req.streaming = false;
    c->req.user = NULL;
    c->drain_watch = false;
    if (!c->keep_alive || c->close_after ||
        (c->srv->limits.max_requests > 0 &&
         c->requests >= c->srv->limits.max_requests)) {
        c->state = HTTP_CLOSING;
        http_out_read_on(c, false);
        /* A client that never reads its answer does not keep the slot. */
        http_out_arm(c, c->srv->limits.idle_timeout_ms);
        http_out_flush(c);
        return;
    }
    c->state = HTTP_READING;
    http_out_flush(c);
    if (c->doomed)
        return;
    /* Inside http_conn_process the request just answered is still at the
     * front of the input: that loop goes on once it has dropped it. */
    if (!c->in_dispatch && http_out_await_request(c))
        c->srv->process(c);
}

/* ---- writing answers ---- */

/* The id of the request whose head is hp (NULL: not parsed): the
 * client's X-Request-Id when it is a valid one, else a new one. */
void http_out_take_id(struct http_conn *c, const struct hp_request *hp)
{
    const struct hp_header *h = hp != NULL ? hp_find(hp, "x-request-id")
                                           : NULL;

    if (h != NULL && h->value_len < sizeof(c->req.id)) {
        memcpy(c->req.id, h->value, h->value_len);
        c->req.id[h->value_len] = '\0';
        if (util_request_id_valid(c->req.id))
            return;
    }
    util_request_id_make(c->req.id, sizeof(c->req.id), c->srv->id_prefix,
                         ++c->srv->id_counter);
}

static void http_date(struct http_server *s)
{
    time_t now = time(NULL);
    struct tm tm;

    if ((int64_t)now == s->date_second)
        return;
    s->date_second = (int64_t)now;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
             &tm);
}

/* A head being written: bytes appended to buf while they fit; once one
 * does not, full says so and nothing more is added. The head is built on
 * every answer: plain copies, not snprintf (a third of the master's own
 * instructions per request went to formatting it). */
struct http_head_buf {
    char *buf;
    size_t used, cap;
    bool full;
};

static void http_head_add(struct http_head_buf *h, const char *s, size_t n)
{
    if (h->full || n > h->cap - h->used) {
        h->full = true;
        return;
    }
    memcpy(h->buf + h->used, s, n);
    h->used += n;
}

static void http_head_str(struct http_head_buf *h, const char *s)
{
    http_head_add(h, s, strlen(s));
}

/* A decimal number (non-negative). */
static void http_head_num(struct http_head_buf *h, uint64_t v)
{
    char digits[HTTP_NUM_MAX];
    size_t at = sizeof(digits);

    do {
        digits[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && at > 0);
    http_head_add(h, digits + at, sizeof(digits) - at);
}

#define HTTP_HEAD_LIT(h, lit) http_head_add((h), (lit), sizeof(lit) - 1)

/* The status line and headers; length < 0 means a chunked body. */
static void http_head(struct http_conn *c, int status,
                      const char *content_type, const struct http_hdr *hdrs,
                      size_t nhdrs, int64_t length)
{
    char head[HTTP_HEAD_MAX];
    struct http_head_buf h = { head, 0, sizeof(head), false };
    size_t used;

    http_date(c->srv);
    if (c->req.id[0] == '\0')
        http_out_take_id(c, NULL);
    HTTP_HEAD_LIT(&h, "HTTP/1.1 ");
    http_head_num(&h, (uint64_t)(status > 0 ? status : 0));
    HTTP_HEAD_LIT(&h, " ");
    http_head_str(&h, http_reason(status));
    HTTP_HEAD_LIT(&h, "\r\n");
    http_head_str(&h, c->srv->date);
    HTTP_HEAD_LIT(&h, "X-Request-Id: ");
    http_head_str(&h, c->req.id);
    HTTP_HEAD_LIT(&h, "\r\n");
    if (c->req.id_alias != NULL) {
        /* The same id under the door's own name (request-id). */
        http_head_str(&h, c->req.id_alias);
        HTTP_HEAD_LIT(&h, ": ");
        http_head_str(&h, c->req.id);
        HTTP_HEAD_LIT(&h, "\r\n");
    }
    for (size_t i = 0; i < nhdrs; i++) {
        http_head_str(&h, hdrs[i].name);
        HTTP_HEAD_LIT(&h, ": ");
        http_head_str(&h, hdrs[i].value);
        HTTP_HEAD_LIT(&h, "\r\n");
    }
    if (content_type != NULL) {
        HTTP_HEAD_LIT(&h, "Content-Type: ");
        http_head_str(&h, content_type);
        HTTP_HEAD_LIT(&h, "\r\n");
    }
    if (length >= 0) {
        HTTP_HEAD_LIT(&h, "Content-Length: ");
        http_head_num(&h, (uint64_t)length);
        HTTP_HEAD_LIT(&h, "\r\n");
    } else if (!c->http10) {
        HTTP_HEAD_LIT(&h, "Transfer-Encoding: chunked\r\n");
    }
    if (!c->keep_alive || c->close_after || (length < 0 && c->http10))
        HTTP_HEAD_LIT(&h, "Connection: close\r\n");
    else if (c->http10)
        HTTP_HEAD_LIT(&h, "Connection: keep-alive\r\n");
    HTTP_HEAD_LIT(&h, "\r\n");
    used = h.used;
    if (h.full) {
        /* Only our own headers go in here; never let one cut the head. */
        used = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 500 %s\r\n"
                                "Content-Length: 0\r\nConnection: close"
                                "\r\n\r\n", http_reason(500));
        c->close_after = true;
    }
    UTIL_MUST(evbuffer_add(c->out, head, used), "an answer's output");
}

void http_send_buffer(struct http_req *req, int status,
                      const char *content_type, const struct http_hdr *hdrs,
                      size_t nhdrs, struct evbuffer *buf)
{
    struct http_conn *c = req->conn;
    size_t len = buf ? evbuffer_get_length(buf) : 0;

    http_head(c, status, content_type, hdrs, nhdrs, (int64_t)len);
    if (buf != NULL) {
        if (c->head_only)
            evbuffer_drain(buf, len);
        else
            UTIL_MUST(evbuffer_add_buffer(c->out, buf), "an answer's output");
    }
    http_out_finish(c);
}

void http_send_move(struct http_req *req, int status,
                    const char *content_type, const struct http_hdr *hdrs,
                    size_t nhdrs, struct evbuffer *src, size_t len)
{
    struct http_conn *c = req->conn;

    http_head(c, status, content_type, hdrs, nhdrs, (int64_t)len);
    if (c->head_only)
        evbuffer_drain(src, len);
    else if (evbuffer_remove_buffer(src, c->out, len) != (ev_ssize_t)len)
        util_oom("an answer's output");
    http_out_finish(c);
}

void http_send(struct http_req *req, int status, const char *content_type,
               const struct http_hdr *hdrs, size_t nhdrs, const void *body,
               size_t len)
{
    struct http_conn *c = req->conn;

    http_head(c, status, content_type, hdrs, nhdrs, (int64_t)len);
    if (len > 0 && !c->head_only)
        UTIL_MUST(evbuffer_add(c->out, body, len), "an answer's output");
    http_out_finish(c);
}

/* Stream chunks usually come in bursts (a worker's frames are read
 * together, and one read may carry several chunks of one stream): the
 * connection goes on the server's flush list, and the list is written
 * out when the callbacks already due in this turn of the loop are done,
 * one system call per connection. No write event is armed unless the
 * socket turns out to be full, so a chunk costs one writev and no
 * epoll_ctl, and it does not wait for the next epoll_wait. */
static void http_flush_soon(struct http_conn *c)
{
    struct http_server *s = c->srv;

    /* A full socket has its write event armed: that writes it all. */
    if (c->doomed || c->flush_queued || event_pending(c->wev, EV_WRITE, NULL))
        return;
    c->flush_queued = true;
    c->flush_next = NULL;
    c->flush_prev = s->flush_tail;      /* written in the order queued */
    if (s->flush_tail != NULL)
        s->flush_tail->flush_next = c;
    else {
        s->flush_list = c;
        event_active(s->flush_ev, EV_TIMEOUT, 0);
    }
    s->flush_tail = c;
}

void http_out_unqueue(struct http_conn *c)
{
    if (!c->flush_queued)
        return;
    c->flush_queued = false;
    if (c->flush_prev != NULL)
        c->flush_prev->flush_next = c->flush_next;
    else
        c->srv->flush_list = c->flush_next;
    if (c->flush_next != NULL)
        c->flush_next->flush_prev = c->flush_prev;
    else
        c->srv->flush_tail = c->flush_prev;
    c->flush_prev = c->flush_next = NULL;
}

void http_out_flush_list_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;

    (void)fd;
    (void)what;
    /* http_out_flush takes each off the list; a drain callback may queue
     * more, which this loop then writes too. */
    while (s->flush_list != NULL)
        http_out_flush(s->flush_list);
}

void http_stream_start(struct http_req *req, int status,
                       const char *content_type, const struct http_hdr *hdrs,
                       size_t nhdrs)
{
    struct http_conn *c = req->conn;

    req->streaming = true;
    if (c->http10)
        c->close_after = true;     /* the end of the stream is the close */
    http_head(c, status, content_type, hdrs, nhdrs, -1);
    /* The worker sends the head with the first chunk: they usually go
     * out together, in one write (http_stream_flush). */
    http_flush_soon(c);
}

void http_stream_flush(struct http_req *req)
{
    http_out_flush(req->conn);
}


static void http_chunk_header(struct http_conn *c, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char hdr[HTTP_CHUNK_HDR_MAX];
    size_t at = sizeof(hdr) - 2;

    if (c->http10)
        return;
    /* "%zx\r\n" by hand: one per chunk of every stream. */
    hdr[at] = '\r';
    hdr[at + 1] = '\n';
    do {
        hdr[--at] = hex[len & 0xf];
        len >>= 4;
    } while (len != 0 && at > 0);
    UTIL_MUST(evbuffer_add(c->out, hdr + at, sizeof(hdr) - at),
              "an answer's output");
}

void http_stream_chunk(struct http_req *req, const void *data, size_t len)
{
    struct http_conn *c = req->conn;

    if (len == 0 || c->head_only)
        return;
    http_chunk_header(c, len);
    UTIL_MUST(evbuffer_add(c->out, data, len), "an answer's output");
    if (!c->http10)
        UTIL_MUST(evbuffer_add(c->out, "\r\n", 2), "an answer's output");
    http_flush_soon(c);
}

void http_stream_move(struct http_req *req, struct evbuffer *src, size_t len)
{
    struct http_conn *c = req->conn;

    if (len == 0)
        return;
    if (c->head_only) {
        evbuffer_drain(src, len);
        return;
    }
    http_chunk_header(c, len);
    if (evbuffer_remove_buffer(src, c->out, len) != (int)len)
        util_oom("an answer's output");
    if (!c->http10)
        UTIL_MUST(evbuffer_add(c->out, "\r\n", 2), "an answer's output");
    http_flush_soon(c);
}

void http_stream_end(struct http_req *req)
{
    struct http_conn *c = req->conn;

    if (!c->http10 && !c->head_only)
        UTIL_MUST(evbuffer_add(c->out, "0\r\n\r\n", 5), "an answer's output");
    http_out_finish(c);
}

void http_close_after(struct http_req *req)
{
    req->conn->close_after = true;
}

size_t http_pending_output(const struct http_req *req)
{
    return evbuffer_get_length(req->conn->out);
}


void http_send_error(struct http_req *req, int status, const char *code,
                     const char *message, const struct http_hdr *hdrs,
                     size_t nhdrs)
{
    char body[APIERR_BODY_MAX];
    size_t n = req->error_format != NULL ?
               req->error_format(body, sizeof(body), status, code, message,
                                 false) :
               apierr_format(body, sizeof(body), status, code, message);

    http_send(req, status, "application/json", hdrs, nhdrs, body, n);
}

void http_stream_error(struct http_req *req, const char *body, size_t len)
{
    static const char head[] = "event: error\ndata: ";
    static const char tail[] = "\n\n";
    struct http_conn *c = req->conn;

    /* One chunk, the event whole. */
    if (!c->head_only) {
        http_chunk_header(c, sizeof(head) - 1 + len + sizeof(tail) - 1);
        UTIL_MUST(evbuffer_add(c->out, head, sizeof(head) - 1) |
                  evbuffer_add(c->out, body, len) |
                  evbuffer_add(c->out, tail, sizeof(tail) - 1),
                  "an answer's output");
        if (!c->http10)
            UTIL_MUST(evbuffer_add(c->out, "\r\n", 2), "an answer's output");
    }
    http_stream_end(req);
}
