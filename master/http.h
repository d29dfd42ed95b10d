/* http.h - the master's HTTP/1.1 server on libevent: accepts client
 * connections, reads and parses requests (common/httpparse), hands each
 * complete request to the front end, and writes the answers it is given,
 * whole or as a chunked stream. Keep-alive, pipelining (one request at a
 * time per connection, and none started while the client is behind on
 * reading its answers), Expect: 100-continue, limits and timeouts, and
 * each request's id (X-Request-Id, on every answer) live here; what a
 * request means lives in frontend.c. */
#ifndef RCC_HTTP_H
#define RCC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "httpparse.h"
#include "log.h"
#include "util.h"

struct http_conn;

/* A request being served. Its head and body are valid only during the
 * request callback; the request itself until it is answered in full or
 * its connection is lost. */
struct http_req {
    struct http_conn *conn;
    const struct hp_request *head;     /* callback only */
    const char *path;                  /* callback only; NUL-terminated */
    const char *body;                  /* callback only */
    size_t body_len;
    bool streaming;                    /* http_stream_start was called */
    void *user;                        /* the front end's: the mreq
                                          serving it (master/mreq.c) */
    /* Set by the front end's door for the request it serves (reset for
     * each request): its error bodies, in_stream for the data of an SSE
     * error event (NULL: OpenAI's apierr_format), and a second header
     * name the request id also goes out under (NULL: none). */
    size_t (*error_format)(char *out, size_t cap, int status,
                           const char *code, const char *message,
                           bool in_stream);
    const char *id_alias;
    /* The client's X-Request-Id when valid, else one made here; every
     * answer carries it. Valid until the request is answered. */
    char id[UTIL_REQUEST_ID_MAX];
};

/* An extra response header. */
struct http_hdr {
    const char *name;
    const char *value;
};

/* The front end's callbacks. on_request gets every complete request and
 * must answer it, now or later. on_lost says a request's connection is
 * gone before it was answered; the request is invalid afterwards. */
typedef void (*http_request_cb)(struct http_req *req, void *arg);
typedef void (*http_lost_cb)(struct http_req *req, void *arg);
/* The answer's unwritten bytes fell to the low-water mark asked for with
 * http_watch_drain. */
typedef void (*http_drain_cb)(struct http_req *req, void *arg);
/* The request's path (without its query; path[0..len), not
 * NUL-terminated) is known: its head was parsed, or is being refused
 * with its request line readable (then the path may be cut short). Called
 * before any answer the server itself makes (413, 431, 414, 400, 408) and
 * before on_request: the front end may set the request's error_format
 * and id_alias for the door whose path it is. */
typedef void (*http_head_cb)(struct http_req *req, const char *path,
                             size_t len, void *arg);

struct http_limits {
    struct hp_limits head;
    uint64_t max_body;                 /* beyond: 413 */
    uint64_t read_limit;               /* bodies read to answer 413 JSON */
    int header_timeout_ms;             /* a request head must arrive in */
    int body_timeout_ms;               /* then its whole body; else 408 */
    int idle_timeout_ms;               /* a keep-alive connection may idle */
    int max_connections;               /* beyond: wait in the backlog */
    int max_requests;                  /* per connection, then close */
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct http_limits limits;
    http_request_cb on_request;
    http_lost_cb on_lost;
    http_drain_cb on_drain;            /* optional */
    http_head_cb on_head;              /* optional */
    void *arg;
    struct http_conn *conns;           /* every open connection */
    struct http_conn *flush_list;      /* output to write this turn, */
    struct http_conn *flush_tail;      /* in the order it was queued */
    struct event *flush_ev;            /* made active to write it */
    /* Reads on after an answer (http.c's; the output half calls it). */
    void (*process)(struct http_conn *c);
    int conn_count;
    bool accepting;
    bool fd_starved;                   /* accept() failed for want of a
                                          descriptor: paused until one is
                                          freed or accept_retry fires */
    struct event *accept_retry;
    int64_t accept_error_logged_ms;    /* when last said (monotonic) */
    const struct log *log;             /* refusals are logged here */
    uint64_t id_prefix;                /* request ids made here: random, */
    uint64_t id_counter;               /* mixed with a count */
    int64_t date_second;
    char date[40];                     /* "Date: ...\r\n" of that second */
};

/* Listens on host:port. 0, or -1 with errno. */
int http_server_init(struct http_server *s, struct event_base *base,
                     const char *host, int port,
                     const struct http_limits *limits,
                     http_request_cb on_request, http_lost_cb on_lost,
                     void *arg);
/* New limits (a reload); open connections follow them from their next
 * request on. */
void http_server_set_limits(struct http_server *s,
                            const struct http_limits *limits);
/* Stops accepting; open connections finish their requests. */
void http_server_stop_accepting(struct http_server *s);
/* Closes every connection without callbacks and frees the server. */
void http_server_free(struct http_server *s);
/* Connections open now. */
int http_server_connections(const struct http_server *s);

/* A whole answer with Content-Length. body may be NULL when len is 0.
 * Ends the request. */
void http_send(struct http_req *req, int status, const char *content_type,
               const struct http_hdr *hdrs, size_t nhdrs, const void *body,
               size_t len);
/* As http_send_buffer, with the len bytes at the front of src, moved
 * (not copied where src's chains allow) behind the head: one writev. */
void http_send_move(struct http_req *req, int status,
                    const char *content_type, const struct http_hdr *hdrs,
                    size_t nhdrs, struct evbuffer *src, size_t len);
/* The same, taking the bytes out of buf (no copy). */
void http_send_buffer(struct http_req *req, int status,
                      const char *content_type, const struct http_hdr *hdrs,
                      size_t nhdrs, struct evbuffer *buf);
/* The one error answer: an OpenAI-shaped JSON error body (common/
 * apierror) with status, code and message, and the headers given (none:
 * hdrs NULL, nhdrs 0). Ends the request. */
void http_send_error(struct http_req *req, int status, const char *code,
                     const char *message, const struct http_hdr *hdrs,
                     size_t nhdrs);
/* Ends a begun stream with an error event carrying body (an OpenAI
 * error, JSON) and no [DONE]: the client sees its answer was cut. */
void http_stream_error(struct http_req *req, const char *body, size_t len);
/* A streamed answer: the head, chunks as they come, then the end. What
 * is queued goes out when the callbacks already due in this loop turn are
 * done, in one write per connection, unless http_stream_flush writes it
 * sooner. */
void http_stream_start(struct http_req *req, int status,
                       const char *content_type, const struct http_hdr *hdrs,
                       size_t nhdrs);
/* Writes what the stream has queued now (its first chunk, which its
 * client is waiting for). */
void http_stream_flush(struct http_req *req);
void http_stream_chunk(struct http_req *req, const void *data, size_t len);
/* Moves len bytes from src into the stream without copying them. */
void http_stream_move(struct http_req *req, struct evbuffer *src, size_t len);
/* Ends the stream (and the request). */
void http_stream_end(struct http_req *req);
/* After this answer the connection closes. */
void http_close_after(struct http_req *req);
/* Bytes of this request's answer not yet written to the socket. */
size_t http_pending_output(const struct http_req *req);

/* Calls the server's on_drain once this answer's unwritten bytes are at
 * most low (backpressure: the front end pauses the producer meanwhile). */
void http_watch_drain(struct http_req *req, size_t low);

/* The reason phrase of a status code. */
const char *http_reason(int status);

#endif
