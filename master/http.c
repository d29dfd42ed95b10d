/* http.c - the HTTP/1.1 server. Each connection has a persistent read
 * event, an input and an output buffer and one timer; answers are written
 * at once and a write event is armed only when the socket is full, so a
 * request usually costs one read and one write system call. What one
 * connection holds is bounded whatever its client does: input to the
 * request being read (its head, then its body up to max_body) or 64 KiB
 * behind a running one, and output to one answer plus HTTP_OUTPUT_MAX,
 * since no request starts while more is unsent (a client that does not
 * read its answers is not read either). */
#include "http.h"

#include "apierror.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/util.h>

#include "apierror.h"
#include "util.h"

#define HTTP_READ_CHUNK      16384
#define HTTP_BACKLOG         1024
#define HTTP_PATH_MAX        8192
#define HTTP_STATUS_LINE_MAX 64
#define HTTP_HEAD_MAX        4096   /* our own response heads */
#define HTTP_PIPELINE_MAX    65536  /* input kept while a request runs */
#define HTTP_CHUNK_HDR_MAX   24
#define HTTP_LINGER_MS       2000   /* reading what a refused client sent */
#define HTTP_OUTPUT_MAX      65536  /* unsent answers that stop the reading */
#define HTTP_ACCEPT_RETRY_MS 250    /* out of descriptors: accept again after */
#define HTTP_ACCEPT_LOG_MS   60000  /* ... and say so at most this often */

enum http_conn_state {
    HTTP_READING,              /* waiting for (the rest of) a request */
    HTTP_BUSY,                 /* request dispatched, answer pending */
    HTTP_CLOSING,              /* answer out, then close */
    HTTP_LINGERING             /* write side shut; draining the client */
};

struct http_conn {
    struct http_server *srv;
    evutil_socket_t fd;
    struct event *rev, *wev, *timer;
    struct evbuffer *in, *out;
    struct evbuffer *body;     /* decoded chunked body, while reading */
    struct hp_chunked chunk;
    enum http_conn_state state;
    bool reading;              /* rev is added */
    bool head_done;            /* the head of the request being read */
    bool continue_sent;
    bool keep_alive;
    bool close_after;
    bool http10;
    bool head_only;            /* a HEAD request: no body in the answer */
    bool in_dispatch;          /* inside on_request */
    bool doomed;               /* to be freed from the loop, not here */
    bool drain_watch;          /* call on_drain at drain_low */
    bool req_started;          /* a byte of the next request arrived */
    bool flush_queued;         /* on the server's flush list */
    bool out_blocked;          /* between requests, waiting for the client
                                * to read its answers (HTTP_OUTPUT_MAX) */
    size_t drain_low;
    size_t head_len;
    int requests;
    struct http_req req;
    struct http_conn *prev, *next;
    struct http_conn *flush_prev, *flush_next;
};

static void http_conn_process(struct http_conn *c);
static void http_unqueue_flush(struct http_conn *c);
static void http_listener_resume(struct http_server *s);

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

/* ---- connection life ---- */

static void http_conn_free(struct http_conn *c, bool lost)
{
    struct http_server *s = c->srv;
    bool was_full = s->conn_count >= s->limits.max_connections;

    if (lost && c->state == HTTP_BUSY && s->on_lost != NULL)
        s->on_lost(&c->req, s->arg);
    http_unqueue_flush(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    if (c->body != NULL)
        evbuffer_free(c->body);
    evutil_closesocket(c->fd);
    free(c);
    s->conn_count--;
    /* Below the cap (which a reload may have moved), or a descriptor
     * back after accept() ran out of them: accept again. */
    if (was_full || s->fd_starved) {
        s->fd_starved = false;
        http_listener_resume(s);
    }
}

static void http_arm(struct http_conn *c, int ms)
{
    struct timeval tv = util_ms_to_tv(ms);

    evtimer_add(c->timer, &tv);
}

static void http_read_on(struct http_conn *c, bool on)
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
static void http_doom(struct http_conn *c)
{
    if (c->doomed)
        return;
    c->doomed = true;
    http_read_on(c, false);
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
static void http_flush(struct http_conn *c)
{
    http_unqueue_flush(c);
    while (!c->doomed && evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);

        if (n < 0 && (EVUTIL_SOCKET_ERROR() == EAGAIN ||
                      EVUTIL_SOCKET_ERROR() == EINTR))
            break;
        if (n <= 0) {
            http_doom(c);
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
        http_read_on(c, true);
        http_arm(c, HTTP_LINGER_MS);
    }
}

/* Between requests: reads the next one, unless the client is behind on
 * reading its answers. Then nothing more is read or started (a client
 * that pipelines requests and never reads would otherwise have us
 * buffer answers without end) until the unsent output is down to
 * HTTP_OUTPUT_MAX again; the client has idle_timeout_ms to get there.
 * Returns whether input waits to be processed now. */
static bool http_await_request(struct http_conn *c)
{
    size_t pending = evbuffer_get_length(c->in);

    if (evbuffer_get_length(c->out) > HTTP_OUTPUT_MAX) {
        if (!c->out_blocked) {
            c->out_blocked = true;
            http_read_on(c, false);
            http_arm(c, c->srv->limits.idle_timeout_ms);
        }
        return false;
    }
    c->out_blocked = false;
    http_read_on(c, true);
    c->req_started = pending > 0;
    http_arm(c, pending > 0 ? c->srv->limits.header_timeout_ms :
                              c->srv->limits.idle_timeout_ms);
    return pending > 0;
}

/* The answer is complete: close, or go on with the next request. */
static void http_finish(struct http_conn *c)
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
        http_read_on(c, false);
        /* A client that never reads its answer does not keep the slot. */
        http_arm(c, c->srv->limits.idle_timeout_ms);
        http_flush(c);
        return;
    }
    c->state = HTTP_READING;
    http_flush(c);
    if (c->doomed)
        return;
    /* Inside http_conn_process the request just answered is still at the
     * front of the input: that loop goes on once it has dropped it. */
    if (!c->in_dispatch && http_await_request(c))
        http_conn_process(c);
}

/* ---- writing answers ---- */

/* The id of the request whose head is hp (NULL: not parsed): the
 * client's X-Request-Id when it is a valid one, else a new one. */
static void http_take_id(struct http_conn *c, const struct hp_request *hp)
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

/* The status line and headers; length < 0 means a chunked body. */
static void http_head(struct http_conn *c, int status,
                      const char *content_type, const struct http_hdr *hdrs,
                      size_t nhdrs, int64_t length)
{
    char head[HTTP_HEAD_MAX];
    int n;
    size_t used;

    http_date(c->srv);
    if (c->req.id[0] == '\0')
        http_take_id(c, NULL);
    n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%sX-Request-Id: %s"
                 "\r\n", status, http_reason(status), c->srv->date,
                 c->req.id);
    used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < nhdrs && used < sizeof(head); i++) {
        n = snprintf(head + used, sizeof(head) - used, "%s: %s\r\n",
                     hdrs[i].name, hdrs[i].value);
        if (n > 0)
            used += (size_t)n;
    }
    if (used < sizeof(head) && content_type != NULL) {
        n = snprintf(head + used, sizeof(head) - used,
                     "Content-Type: %s\r\n", content_type);
        if (n > 0)
            used += (size_t)n;
    }
    if (used < sizeof(head)) {
        if (length >= 0)
            n = snprintf(head + used, sizeof(head) - used,
                         "Content-Length: %lld\r\n", (long long)length);
        else if (!c->http10)
            n = snprintf(head + used, sizeof(head) - used,
                         "Transfer-Encoding: chunked\r\n");
        else
            n = 0;
        if (n > 0)
            used += (size_t)n;
    }
    if (used < sizeof(head)) {
        bool close = !c->keep_alive || c->close_after ||
                     (length < 0 && c->http10);

        n = snprintf(head + used, sizeof(head) - used, "%s\r\n",
                     close ? "Connection: close\r\n" :
                     c->http10 ? "Connection: keep-alive\r\n" : "");
        if (n > 0)
            used += (size_t)n;
    }
    if (used >= sizeof(head)) {
        /* Only our own headers go in here; never let one cut the head. */
        used = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 500 %s\r\n"
                                "Content-Length: 0\r\nConnection: close"
                                "\r\n\r\n", http_reason(500));
        c->close_after = true;
    }
    evbuffer_add(c->out, head, used);
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
            evbuffer_add_buffer(c->out, buf);
    }
    http_finish(c);
}

void http_send(struct http_req *req, int status, const char *content_type,
               const struct http_hdr *hdrs, size_t nhdrs, const void *body,
               size_t len)
{
    struct http_conn *c = req->conn;

    http_head(c, status, content_type, hdrs, nhdrs, (int64_t)len);
    if (len > 0 && !c->head_only)
        evbuffer_add(c->out, body, len);
    http_finish(c);
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

static void http_unqueue_flush(struct http_conn *c)
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

static void http_flush_list_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;

    (void)fd;
    (void)what;
    /* http_flush takes each off the list; a drain callback may queue
     * more, which this loop then writes too. */
    while (s->flush_list != NULL)
        http_flush(s->flush_list);
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
    http_flush(req->conn);
}


static void http_chunk_header(struct http_conn *c, size_t len)
{
    char hdr[HTTP_CHUNK_HDR_MAX];
    int n;

    if (c->http10)
        return;
    n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
    evbuffer_add(c->out, hdr, (size_t)n);
}

void http_stream_chunk(struct http_req *req, const void *data, size_t len)
{
    struct http_conn *c = req->conn;

    if (len == 0 || c->head_only)
        return;
    http_chunk_header(c, len);
    evbuffer_add(c->out, data, len);
    if (!c->http10)
        evbuffer_add(c->out, "\r\n", 2);
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
    evbuffer_remove_buffer(src, c->out, len);
    if (!c->http10)
        evbuffer_add(c->out, "\r\n", 2);
    http_flush_soon(c);
}

void http_stream_end(struct http_req *req)
{
    struct http_conn *c = req->conn;

    if (!c->http10 && !c->head_only)
        evbuffer_add(c->out, "0\r\n\r\n", 5);
    http_finish(c);
}

void http_close_after(struct http_req *req)
{
    req->conn->close_after = true;
}

size_t http_pending_output(const struct http_req *req)
{
    return evbuffer_get_length(req->conn->out);
}

/* An error answered by the server itself (bad framing, limits): an
 * OpenAI-shaped body, and the connection closes after it. */
static void http_reject(struct http_conn *c, int status, const char *why)
{
    char body[APIERR_BODY_MAX];
    size_t n = apierr_format(body, sizeof(body), status,
                             status == 413 ? "request_too_large"
                                           : "invalid_request", why);

    if (c->req.id[0] == '\0')
        http_take_id(c, NULL);     /* no head to take one from */
    if (c->srv->log != NULL)
        log_msg(c->srv->log, LOG_INFO, c->req.id, "refused a request: %d "
                "%s", status, why);
    c->state = HTTP_BUSY;
    c->close_after = true;
    c->req.conn = c;
    http_send(&c->req, status, "application/json", NULL, 0, body, n);
}

/* ---- reading requests ---- */

static void http_dispatch(struct http_conn *c, const struct hp_request *hp,
                          const char *body, size_t body_len)
{
    char path[HTTP_PATH_MAX];
    size_t n = hp->target_len;
    const char *q = memchr(hp->target, '?', n);

    if (q != NULL)
        n = (size_t)(q - hp->target);
    if (n >= sizeof(path)) {
        http_reject(c, 414, "request target too long");
        return;
    }
    memcpy(path, hp->target, n);
    path[n] = '\0';
    c->state = HTTP_BUSY;
    evtimer_del(c->timer);
    /* The last request a connection may carry says so in its answer. */
    if (c->srv->limits.max_requests > 0 &&
        c->requests + 1 >= c->srv->limits.max_requests)
        c->close_after = true;
    c->req.conn = c;
    c->req.head = hp;
    c->req.path = path;
    c->req.body = body;
    c->req.body_len = body_len;
    c->req.streaming = false;
    c->req.user = NULL;
    c->in_dispatch = true;
    c->srv->on_request(&c->req, c->srv->arg);
    c->in_dispatch = false;
}

/* Tries to complete the request at the front of the input. */
static void http_conn_process(struct http_conn *c)
{
    while (c->state == HTTP_READING && !c->doomed) {
        size_t avail = evbuffer_get_length(c->in);
        const char *buf;
        struct hp_request hp;
        enum hp_result r;
        uint64_t need;

        if (avail == 0)
            return;
        if (!c->head_done) {
            /* Nothing of the previous request carries over (its id
             * was valid until it was answered). */
            c->req.id[0] = '\0';
            c->head_only = false;
            c->http10 = false;
            c->keep_alive = true;
        }
        buf = (const char *)evbuffer_pullup(c->in, -1);
        r = hp_parse_head(buf, avail, &c->srv->limits.head, &hp);
        if (r == HP_NEED_MORE)
            return;
        if (r == HP_ERROR) {
            http_reject(c, hp.error_status, hp.error);
            return;
        }
        if (!c->head_done) {
            /* The head just arrived: answer what can be decided now. The
             * whole body must follow within body_timeout_ms, however it
             * trickles in (dispatching stops the clock; a body that is
             * here already needs none). */
            c->head_done = true;
            http_take_id(c, &hp);
            if (hp.chunked || (uint64_t)avail < (uint64_t)hp.head_len +
                    (uint64_t)(hp.content_length > 0 ? hp.content_length : 0))
                http_arm(c, c->srv->limits.body_timeout_ms);
            c->http10 = hp.minor == 0;
            c->keep_alive = hp.keep_alive;
            c->head_only = hp.method == HP_HEAD;
            if (hp.content_length >= 0 &&
                (uint64_t)hp.content_length > c->srv->limits.read_limit) {
                char why[64];

                snprintf(why, sizeof(why), "request body exceeds %llu bytes",
                         (unsigned long long)c->srv->limits.read_limit);
                http_reject(c, 413, why);
                return;
            }
            if (hp.expect_continue && !c->continue_sent &&
                avail == hp.head_len) {
                evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->continue_sent = true;
                http_flush(c);
                if (c->doomed)
                    return;
            }
        }
        if (hp.chunked) {
            size_t consumed, produced;
            /* Decode what is there after the head, into c->body. */
            size_t have = avail - hp.head_len - 0;
            char *tmp;

            if (c->body == NULL) {
                c->body = evbuffer_new();
                hp_chunked_init(&c->chunk);
                c->head_len = hp.head_len;
            }
            if (c->body == NULL) {
                http_reject(c, 503, "out of memory");
                return;
            }
            tmp = malloc(have ? have : 1);
            if (tmp == NULL) {
                http_reject(c, 503, "out of memory");
                return;
            }
            r = hp_chunked_decode(&c->chunk, buf + hp.head_len, have, tmp,
                                  &consumed, &produced,
                                  c->srv->limits.read_limit);
            evbuffer_add(c->body, tmp, produced);
            free(tmp);
            if (r == HP_ERROR) {
                http_reject(c, c->chunk.total + c->chunk.remaining >
                               c->srv->limits.read_limit ? 413 : 400,
                            "bad chunked body");
                return;
            }
            /* Keep the head, drop the decoded encoding after it. */
            {
                struct evbuffer *rest = evbuffer_new();

                if (rest == NULL) {
                    http_reject(c, 503, "out of memory");
                    return;
                }
                evbuffer_remove_buffer(c->in, rest, hp.head_len);
                evbuffer_drain(c->in, consumed);
                evbuffer_prepend_buffer(c->in, rest);
                evbuffer_free(rest);
            }
            if (r == HP_NEED_MORE)
                return;
            /* Complete: the head is at the front again, re-parse it so its
             * pointers are valid, then dispatch with the decoded body. */
            buf = (const char *)evbuffer_pullup(c->in, (ev_ssize_t)hp.head_len);
            hp_parse_head(buf, hp.head_len, &c->srv->limits.head, &hp);
            {
                size_t blen = evbuffer_get_length(c->body);
                const char *body = (const char *)evbuffer_pullup(c->body, -1);

                http_dispatch(c, &hp, body ? body : "", blen);
            }
            evbuffer_drain(c->in, hp.head_len);
            evbuffer_free(c->body);
            c->body = NULL;
            c->head_done = false;
            c->continue_sent = false;
            if (c->state != HTTP_READING || c->doomed ||
                !http_await_request(c))
                return;
            continue;
        }
        need = (uint64_t)hp.head_len +
               (uint64_t)(hp.content_length > 0 ? hp.content_length : 0);
        if ((uint64_t)avail < need)
            return;
        http_dispatch(c, &hp, buf + hp.head_len, (size_t)(need - hp.head_len));
        /* The callback may have answered and freed nothing: the
         * connection stays until http_finish decides; its input is ours. */
        evbuffer_drain(c->in, (size_t)need);
        c->head_done = false;
        c->continue_sent = false;
        /* Answered at once: the next request, if the client keeps up. */
        if (c->state != HTTP_READING || c->doomed || !http_await_request(c))
            return;
    }
}

static void http_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    struct evbuffer_iovec vec[2];
    int nvec;
    ssize_t n;

    (void)what;
    if (c->doomed)
        return;
    if (c->state == HTTP_LINGERING) {
        char sink[HTTP_READ_CHUNK];

        n = read(fd, sink, sizeof(sink));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            http_conn_free(c, false);
        return;
    }
    if (c->out_blocked || (c->state != HTTP_READING &&
                           evbuffer_get_length(c->in) >= HTTP_PIPELINE_MAX)) {
        /* A client piling up requests behind a running one, or not
         * reading its answers, waits. */
        http_read_on(c, false);
        return;
    }
    nvec = evbuffer_reserve_space(c->in, HTTP_READ_CHUNK, vec, 2);
    if (nvec <= 0) {
        http_conn_free(c, true);
        return;
    }
    n = readv(fd, (struct iovec *)vec, nvec);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        http_conn_free(c, true);
        return;
    }
    if (n == 0) {
        http_conn_free(c, true);
        return;
    }
    for (int i = 0; i < nvec; i++) {
        size_t take = (size_t)n < vec[i].iov_len ? (size_t)n : vec[i].iov_len;

        vec[i].iov_len = take;
        n -= (ssize_t)take;
    }
    evbuffer_commit_space(c->in, vec, nvec);
    if (c->state == HTTP_READING) {
        /* The head must arrive within header_timeout_ms of its first
         * byte, however it trickles in; then the body within
         * body_timeout_ms (armed when the head is complete). */
        if (!c->req_started && !c->head_done)
            http_arm(c, c->srv->limits.header_timeout_ms);
        c->req_started = true;
        http_conn_process(c);
    }
}

static void http_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    http_flush(c);
    /* The client caught up with its answers: on with what it sent. */
    if (!c->doomed && c->out_blocked && c->state == HTTP_READING &&
        http_await_request(c))
        http_conn_process(c);
}


static void http_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->doomed)
        http_conn_free(c, c->state == HTTP_BUSY);
    else if (c->state == HTTP_READING && c->head_done)
        http_reject(c, 408, "request body not received in time");
    else if (c->state == HTTP_READING || c->state == HTTP_LINGERING ||
             c->state == HTTP_CLOSING)
        http_conn_free(c, false);   /* silent or too slow: a slowloris */
}

static void http_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                           struct sockaddr *sa, int socklen, void *arg)
{
    struct http_server *s = arg;
    struct http_conn *c = calloc(1, sizeof(*c));

    (void)l;
    (void)sa;
    (void)socklen;
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->state = HTTP_READING;
    c->keep_alive = true;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, http_read_cb, c);
    c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, http_write_cb, c);
    c->timer = evtimer_new(s->base, http_timeout_cb, c);
    if (c->in == NULL || c->out == NULL || c->rev == NULL ||
        c->wev == NULL || c->timer == NULL) {
        if (c->in) evbuffer_free(c->in);
        if (c->out) evbuffer_free(c->out);
        if (c->rev) event_free(c->rev);
        if (c->wev) event_free(c->wev);
        if (c->timer) event_free(c->timer);
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->next = s->conns;
    if (c->next != NULL)
        c->next->prev = c;
    s->conns = c;
    if (++s->conn_count >= s->limits.max_connections)
        evconnlistener_disable(s->listener);
    http_read_on(c, true);
    http_arm(c, s->limits.header_timeout_ms);
    /* A client sends its request right after connecting, so it is
     * usually here already: read it now. A burst of connections is then
     * dispatched as it is accepted (the workers start on it while we
     * accept the rest), not after the whole burst is accepted and the
     * loop has come round to its reads. May free c. */
    http_read_cb(fd, EV_READ, c);
}

/* The listener runs while we accept, are under the cap and are not
 * waiting for a descriptor. */
static void http_listener_resume(struct http_server *s)
{
    if (s->listener != NULL && s->accepting && !s->fd_starved &&
        s->conn_count < s->limits.max_connections)
        evconnlistener_enable(s->listener);
}

/* accept() failed, and not with "try again": nearly always for want of
 * a descriptor (EMFILE, ENFILE, ENOBUFS). The connection stays in the
 * backlog, so a listener left on would fail again at once, at full CPU,
 * for as long as that lasts: pause it until one of our connections
 * closes or the retry timer fires, and say so once in a while. */
static void http_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct http_server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = util_ms_to_tv(HTTP_ACCEPT_RETRY_MS);
    int64_t now = util_now_ms();

    evconnlistener_disable(l);
    s->fd_starved = true;
    evtimer_add(s->accept_retry, &tv);
    if (s->log == NULL || (s->accept_error_logged_ms != 0 &&
                           now - s->accept_error_logged_ms <
                           HTTP_ACCEPT_LOG_MS))
        return;
    s->accept_error_logged_ms = now;
    log_msg(s->log, LOG_ERROR, NULL, "accept: %s: new connections wait "
            "until a descriptor is free (%d open)%s", strerror(err),
            s->conn_count, err == EMFILE || err == ENFILE ?
            "; raise the open file limit or lower clients.max_connections"
            : "");
}

static void http_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;

    (void)fd;
    (void)what;
    s->fd_starved = false;
    http_listener_resume(s);
}

int http_server_init(struct http_server *s, struct event_base *base,
                     const char *host, int port,
                     const struct http_limits *limits,
                     http_request_cb on_request, http_lost_cb on_lost,
                     void *arg)
{
    struct evutil_addrinfo hints, *ai = NULL;
    char portstr[16];
    int one = 1;
    evutil_socket_t fd;

    memset(s, 0, sizeof(*s));
    s->base = base;
    if (util_random_bytes(&s->id_prefix, sizeof(s->id_prefix)) < 0)
        s->id_prefix = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    s->limits = *limits;
    s->on_request = on_request;
    s->on_lost = on_lost;
    s->arg = arg;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (evutil_getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        evutil_freeaddrinfo(ai);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Accepted sockets inherit it: stream chunks leave at once. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, (socklen_t)ai->ai_addrlen) < 0) {
        int e = errno;

        evutil_freeaddrinfo(ai);
        evutil_closesocket(fd);
        errno = e;
        return -1;
    }
    evutil_freeaddrinfo(ai);
    s->listener = evconnlistener_new(base, http_accept_cb, s,
                                     LEV_OPT_CLOSE_ON_FREE, HTTP_BACKLOG,
                                     fd);
    if (s->listener == NULL) {
        evutil_closesocket(fd);
        return -1;
    }
    s->flush_ev = event_new(base, -1, 0, http_flush_list_cb, s);
    s->accept_retry = evtimer_new(base, http_accept_retry_cb, s);
    if (s->flush_ev == NULL || s->accept_retry == NULL) {
        if (s->flush_ev != NULL)
            event_free(s->flush_ev);
        if (s->accept_retry != NULL)
            event_free(s->accept_retry);
        s->flush_ev = NULL;
        s->accept_retry = NULL;
        evconnlistener_free(s->listener);
        s->listener = NULL;
        return -1;
    }
    evconnlistener_set_error_cb(s->listener, http_accept_error_cb);
    s->accepting = true;
    return 0;
}

void http_server_set_limits(struct http_server *s,
                            const struct http_limits *limits)
{
    s->limits = *limits;
    if (s->listener == NULL || !s->accepting)
        return;
    if (s->conn_count >= s->limits.max_connections)
        evconnlistener_disable(s->listener);
    else
        http_listener_resume(s);
}

void http_server_stop_accepting(struct http_server *s)
{
    s->accepting = false;
    if (s->accept_retry != NULL)
        evtimer_del(s->accept_retry);
    if (s->listener != NULL) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
}

void http_server_free(struct http_server *s)
{
    http_server_stop_accepting(s);
    while (s->conns != NULL)
        http_conn_free(s->conns, false);
    if (s->flush_ev != NULL) {
        event_free(s->flush_ev);
        s->flush_ev = NULL;
    }
    if (s->accept_retry != NULL) {
        event_free(s->accept_retry);
        s->accept_retry = NULL;
    }
}

int http_server_connections(const struct http_server *s)
{
    return s->conn_count;
}
