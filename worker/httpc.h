/* httpc.h - the worker's own HTTP/1.1 client, for upstreams reached over
 * plain HTTP at an IP address (no TLS, no name lookup, no proxy): one
 * POST per transfer, kept-alive connections per destination, its sockets
 * on the worker's event loop. upstream.c picks it for such a URL and
 * libcurl for every other. It reports as libcurl does, so the adapters
 * serve both the same way: the answer through curl-style header and
 * write callbacks (the write callback may pause it), the end through a
 * CURLcode and a message in an error buffer.
 *
 * Why not libcurl for these too: per plain request libcurl 7.88 spent
 * about 50k of the worker's 80k instructions (most of it formatting the
 * request head byte by byte) and made a poll() after every read of a
 * stream; see docs/BENCHMARKS.md. */
#ifndef RCC_WORKER_HTTPC_H
#define RCC_WORKER_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "httpparse.h"

struct httpc;          /* per worker: its destinations and connections */
struct httpc_dest;     /* one upstream address and request path */
struct httpc_conn;     /* one TCP connection to a destination */

/* One transfer, embedded in its owner. The caller fills the first part
 * before httpc_start and must not touch the rest. */
struct httpc_xfer {
    const char *body;              /* the POST body, the caller's */
    size_t body_len;
    /* Header lines, by libcurl's rules: "Name:" with nothing after it
     * sends nothing (it removes a header libcurl would add). */
    const struct curl_slist *headers;
    /* Each response header line with its line end (the status line
     * first, the blank line last); 1xx heads are skipped. */
    curl_write_callback header_cb;
    /* Body bytes (chunked coding removed); returning
     * CURL_WRITEFUNC_PAUSE pauses the transfer with these bytes kept for
     * after httpc_pause(x, false); any count but the one given fails it
     * with CURLE_WRITE_ERROR. */
    curl_write_callback write_cb;
    void *cb_arg;
    /* The transfer ended (never from inside httpc_start or httpc_pause):
     * CURLE_OK, or a failure with its words in err. x may be started
     * again from here. */
    void (*done)(struct httpc_xfer *x, CURLcode result);
    char *err;                     /* CURL_ERROR_SIZE bytes */

    /* httpc.c's */
    struct httpc *hc;
    struct httpc_dest *dest;
    struct httpc_conn *conn;
    struct event timer;            /* deadline, or a failure to report */
    bool timer_ready;              /* timer assigned */
    int state;
    CURLcode failed;               /* to report when the timer fires */
    int64_t start_ms, deadline_ms;
    char *head;                    /* the request head, malloc'd */
    size_t head_len, sent;         /* head and body bytes written */
    long status;
    struct hp_chunked chunked;
    int framing;
    int64_t left;                  /* Content-Length bytes to come */
    uint64_t received;             /* body bytes handed over */
    size_t pend, skip;             /* decoded bytes kept by a pause, and
                                      the coding bytes after them */
    bool keep;                     /* the connection may be kept */
    bool paused;
    bool retried;                  /* once on a fresh connection */
    bool starting;                 /* inside httpc_start */
    bool answered;                 /* bytes of the answer came */
};

/* A client for worker loop base; connections time out connecting after
 * connect_timeout_ms. NULL when out of memory. httpc_free closes every
 * connection; transfers must have ended or been aborted. */
struct httpc *httpc_new(struct event_base *base, int connect_timeout_ms);
void httpc_free(struct httpc *hc);

/* The destination for url when this client can serve it (http://, an
 * IPv4 or bracketed IPv6 address, an optional port, no user info), owned
 * by hc; NULL when libcurl must (or url is not a URL at all). */
struct httpc_dest *httpc_dest(struct httpc *hc, const char *url);

/* Starts x to dest, to end within timeout_ms (counted from now, as
 * CURLOPT_TIMEOUT_MS is). Failures are reported through done. */
void httpc_start(struct httpc *hc, struct httpc_dest *dest,
                 struct httpc_xfer *x, int64_t timeout_ms);
/* Ends x without telling done; its connection is closed. No-op when x
 * is not running. */
void httpc_abort(struct httpc_xfer *x);
/* Stops (true) or restarts (false) reading x's answer; bytes kept by a
 * write callback's pause are handed over first, from the loop. */
void httpc_pause(struct httpc_xfer *x, bool pause);
/* Is x running (started, not ended)? */
bool httpc_running(const struct httpc_xfer *x);
/* The answer's status once its head came, else 0. */
long httpc_status(const struct httpc_xfer *x);

#endif
