/* http_out.h - what the HTTP server's two halves share: a connection
 * (struct http_conn), its states and limits, and the output half's
 * internal functions. http.c reads requests and owns the connection's
 * life; http_out.c writes answers (the public answer API is in http.h).
 * Internal to master/http*.c. */
#ifndef RCC_HTTP_OUT_H
#define RCC_HTTP_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

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

/* Arms the connection's one timer for ms. */
void http_out_arm(struct http_conn *c, int ms);
/* Turns reading the client on or off. */
void http_out_read_on(struct http_conn *c, bool on);
/* Frees the connection from the event loop rather than from inside a
 * call the front end made: callers never see it vanish under them. */
void http_out_doom(struct http_conn *c);
/* Writes what is buffered; arms the write event for the rest. */
void http_out_flush(struct http_conn *c);
/* Takes the connection off the server's flush list (NULL-safe state). */
void http_out_unqueue(struct http_conn *c);
/* The server's flush event: writes every connection on its list. */
void http_out_flush_list_cb(evutil_socket_t fd, short what, void *arg);
/* Between requests: whether input waits to be processed now (see
 * http_out.c). */
bool http_out_await_request(struct http_conn *c);
/* The answer is complete: close, or go on with the next request. */
void http_out_finish(struct http_conn *c);
/* The id of the request whose head is hp (NULL: not parsed). */
void http_out_take_id(struct http_conn *c, const struct hp_request *hp);

#endif
