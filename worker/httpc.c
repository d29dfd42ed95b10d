/* httpc.c - the worker's own HTTP/1.1 client (see httpc.h): owns its
 * destinations, their kept-alive connections (idle ones newest first)
 * and each transfer's life: connect, send head and body with one
 * sendmsg, parse the response head (httpparse.c), hand the body over as
 * it comes (Content-Length, chunked, up to the close), report the end.
 * Per request on a kept-alive connection: one sendmsg, one read per
 * arriving segment, no epoll_ctl (the read event stays in the loop for
 * the connection's life; the write event only while a send waits). An
 * idle connection that turns readable (the server closed it) is closed;
 * a request on a kept-alive connection that dies before any byte of the
 * answer came is sent once more on a new one, as libcurl does. */
#include "httpc.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "httpaddr.h"
#include "util.h"

#define HTTPC_READ_BUF     (16 * 1024)  /* a transfer's first read buffer */
#define HTTPC_HEAD_MAX     (64 * 1024)  /* a response head, at most */
#define HTTPC_IDLE_MAX     256          /* idle connections per destination */
/* An idle connection older than this is not reused (libcurl's default
 * CURLOPT_MAXAGE_CONN). */
#define HTTPC_IDLE_AGE_MS  118000
#define HTTPC_KEEPIDLE_S   60           /* TCP keep-alive, as libcurl's */
#define HTTPC_KEEPINTVL_S  60
#define HTTPC_LINE_MAX     512          /* the request line and Host */
#define HTTPC_LENGTH_LINE  48           /* "Content-Length: N\r\n\r\n" */

enum httpc_state {
    HTTPC_IDLE,         /* not running */
    HTTPC_CONNECTING,
    HTTPC_ASKING,       /* sending, then waiting for the answer's head
                           (which may come before the send ends) */
    HTTPC_BODY,
    HTTPC_FAILING,      /* failed; reported when the timer fires */
};

enum httpc_framing { HTTPC_LENGTH, HTTPC_CHUNKED, HTTPC_TO_CLOSE };

struct httpc_conn {
    struct httpc_dest *dest;
    struct httpc_conn *prev, *next;   /* on dest's idle list */
    struct httpc_xfer *x;             /* the transfer on it; NULL: idle */
    struct event rev, wev;
    bool writing;                     /* wev added */
    bool reading;                     /* rev added */
    bool reused;                      /* it carried an answer before */
    int fd;
    int64_t idle_ms;                  /* when it went idle */
    char *in;                         /* read buffer while a transfer
                                         runs (NULL when idle) */
    size_t in_off, in_len, in_cap;    /* unprocessed: in[in_off, in_len) */
};

struct httpc_dest {
    struct httpc_dest *next;          /* hc's list */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *line;          /* "POST path HTTP/1.1\r\nHost: h[:p]\r\n" */
    size_t line_len;
    char label[HTTPADDR_HOST_MAX + 16];  /* "ADDR port P", for messages */
    struct httpc_conn *idle;          /* most recently idle first */
    struct httpc_conn *idle_tail;     /* the longest idle */
    int idle_count;
};

struct httpc {
    struct event_base *base;
    int connect_timeout_ms;
    struct httpc_dest *dests;
};

static const struct hp_limits httpc_limits = {
    HTTPC_HEAD_MAX, HTTPC_HEAD_MAX, HP_MAX_HEADERS
};

static void httpc_read_cb(evutil_socket_t fd, short what, void *arg);
static void httpc_write_cb(evutil_socket_t fd, short what, void *arg);
static void httpc_connect(struct httpc_xfer *x);

/* ---- connections ---- */

static void httpc_conn_close(struct httpc_conn *k)
{
    if (k->reading)
        event_del(&k->rev);
    if (k->writing)
        event_del(&k->wev);
    close(k->fd);
    free(k->in);
    free(k);
}

static void httpc_idle_unlink(struct httpc_conn *k)
{
    struct httpc_dest *d = k->dest;

    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        d->idle = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    else
        d->idle_tail = k->prev;
    k->prev = k->next = NULL;
    d->idle_count--;
}

/* Adds or removes ev so that it is added exactly when want. */
static void httpc_want(struct event *ev, bool *on, bool want)
{
    if (*on == want)
        return;
    *on = want;
    UTIL_MUST(want ? event_add(ev, NULL) : event_del(ev), "an upstream "
              "connection's event");
}

/* A new connection's socket, connecting; NULL with errno when the
 * system refused it. */
static struct httpc_conn *httpc_conn_new(struct httpc *hc,
                                         struct httpc_dest *d)
{
    struct httpc_conn *k;
    int on = 1, idle = HTTPC_KEEPIDLE_S, intvl = HTTPC_KEEPINTVL_S;
    int fd = socket(d->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return NULL;
    /* Best effort, as libcurl's own: a request leaves in one segment
     * anyway, and keep-alive only finds dead peers sooner. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    if (connect(fd, (const struct sockaddr *)&d->addr, d->addr_len) < 0 &&
        errno != EINPROGRESS) {
        int e = errno;

        close(fd);
        errno = e;
        return NULL;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        util_oom("an upstream connection");
    k->dest = d;
    k->fd = fd;
    if (event_assign(&k->rev, hc->base, fd, EV_READ | EV_PERSIST,
                     httpc_read_cb, k) < 0 ||
        event_assign(&k->wev, hc->base, fd, EV_WRITE | EV_PERSIST,
                     httpc_write_cb, k) < 0)
        util_oom("an upstream connection's events");
    return k;
}

/* An idle connection that is not too old, taken off the list; NULL when
 * none. */
static struct httpc_conn *httpc_conn_reuse(struct httpc_dest *d)
{
    int64_t now = util_now_ms();

    while (d->idle != NULL) {
        struct httpc_conn *k = d->idle;

        httpc_idle_unlink(k);
        if (now - k->idle_ms <= HTTPC_IDLE_AGE_MS)
            return k;
        httpc_conn_close(k);
    }
    return NULL;
}

/* The transfer is done with k: kept for the next one, or closed. */
static void httpc_conn_release(struct httpc_conn *k, bool keep)
{
    struct httpc_dest *d = k->dest;

    k->x = NULL;
    if (!keep || d->idle_count >= HTTPC_IDLE_MAX) {
        httpc_conn_close(k);
        return;
    }
    free(k->in);
    k->in = NULL;
    k->in_off = k->in_len = k->in_cap = 0;
    httpc_want(&k->wev, &k->writing, false);
    httpc_want(&k->rev, &k->reading, true);
    k->reused = true;
    k->idle_ms = util_now_ms();
    k->prev = NULL;
    k->next = d->idle;
    if (d->idle != NULL)
        d->idle->prev = k;
    else
        d->idle_tail = k;
    d->idle = k;
    d->idle_count++;
    /* Reuse takes the newest: the oldest would never age out after a
     * burst, so they are closed here (libcurl closes them as it starts
     * transfers, too). */
    while (d->idle_tail != NULL &&
           k->idle_ms - d->idle_tail->idle_ms > HTTPC_IDLE_AGE_MS) {
        struct httpc_conn *old = d->idle_tail;

        httpc_idle_unlink(old);
        httpc_conn_close(old);
    }
}

/* ---- the end of a transfer ---- */

static void httpc_reset(struct httpc_xfer *x)
{
    free(x->head);
    x->head = NULL;
    x->state = HTTPC_IDLE;
    x->conn = NULL;
    if (x->timer_ready)
        evtimer_del(&x->timer);
}

static void httpc_finish(struct httpc_xfer *x, CURLcode result)
{
    if (x->conn != NULL)
        httpc_conn_release(x->conn, result == CURLE_OK && x->keep &&
                           x->sent == x->head_len + x->body_len &&
                           x->conn->in_off == x->conn->in_len);
    httpc_reset(x);
    x->done(x, result);
}

/* Fails x with result and the message fmt; reported from the loop when
 * later is set or inside httpc_start, else at once. */
static void httpc_fail(struct httpc_xfer *x, CURLcode result, bool later,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void httpc_fail(struct httpc_xfer *x, CURLcode result, bool later,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->err, CURL_ERROR_SIZE, fmt, ap);
    va_end(ap);
    if (x->conn != NULL) {
        httpc_conn_close(x->conn);
        x->conn = NULL;
    }
    if (!later && !x->starting) {
        httpc_reset(x);
        x->done(x, result);
        return;
    }
    x->state = HTTPC_FAILING;
    x->failed = result;
    event_active(&x->timer, EV_TIMEOUT, 1);
}

/* The connection died before any byte of the answer: once more on a
 * fresh one when it was a kept-alive one (the server may have closed it
 * as we sent), else a failure. */
static void httpc_died(struct httpc_xfer *x, CURLcode result,
                       const char *what, int err)
{
    if (x->conn->reused && !x->retried && !x->answered) {
        httpc_conn_close(x->conn);
        x->conn = NULL;
        x->retried = true;
        httpc_connect(x);
        return;
    }
    if (err != 0)
        httpc_fail(x, result, false, "%s: %s", what, strerror(err));
    else
        httpc_fail(x, result, false, "%s", what);
}

static void httpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct httpc_xfer *x = arg;
    int64_t spent = util_now_ms() - x->start_ms;

    (void)fd;
    (void)what;
    if (x->state == HTTPC_FAILING) {
        httpc_reset(x);
        x->done(x, x->failed);
    } else if (x->state == HTTPC_CONNECTING) {
        httpc_fail(x, CURLE_OPERATION_TIMEDOUT, false, "Failed to connect "
                   "to %s after %lld ms: Connection timed out",
                   x->dest->label, (long long)spent);
    } else {
        httpc_fail(x, CURLE_OPERATION_TIMEDOUT, false, "Operation timed "
                   "out after %lld milliseconds with %llu bytes received",
                   (long long)spent, (unsigned long long)x->received);
    }
}

static void httpc_arm(struct httpc_xfer *x, int64_t at_ms)
{
    struct timeval tv = util_ms_to_tv(at_ms - util_now_ms());

    UTIL_MUST(evtimer_add(&x->timer, &tv), "a transfer's timer");
}

/* ---- the answer ---- */

/* Hands n body bytes at p to the write callback: 1 taken, 0 paused, -1
 * failed (reported). */
static int httpc_deliver(struct httpc_xfer *x, char *p, size_t n)
{
    size_t r;

    if (n == 0)
        return 1;
    r = x->write_cb(p, 1, n, x->cb_arg);
    if (r == n) {
        x->received += n;
        return 1;
    }
    if (r == CURL_WRITEFUNC_PAUSE) {
        httpc_pause(x, true);
        return 0;
    }
    httpc_fail(x, CURLE_WRITE_ERROR, false, "Failure writing output to "
               "destination");
    return -1;
}

/* Each line of the head at p (head_len bytes) to the header callback.
 * 0, or -1 when it refused one (reported). */
static int httpc_head_lines(struct httpc_xfer *x, char *p, size_t head_len)
{
    char *end = p + head_len;

    while (p < end) {
        char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(lf + 1 - p);

        if (x->header_cb(p, 1, n, x->cb_arg) != n) {
            httpc_fail(x, CURLE_WRITE_ERROR, false, "Failed writing "
                       "header");
            return -1;
        }
        p = lf + 1;
    }
    return 0;
}

enum httpc_step {
    HTTPC_WAIT,        /* more bytes (or a resume) needed */
    HTTPC_ENDED,       /* the transfer ended: x and k are not to be used */
    HTTPC_GO,          /* go on */
};

/* The response head at the start of k's buffer. */
static enum httpc_step httpc_head(struct httpc_xfer *x, struct httpc_conn *k)
{
    struct hp_response r;
    char *p = k->in + k->in_off;
    size_t avail = k->in_len - k->in_off;

    for (;;) {
        switch (hp_parse_response(p, avail, &httpc_limits, &r)) {
        case HP_NEED_MORE:
            if (avail < HTTPC_HEAD_MAX)
                return HTTPC_WAIT;
            httpc_fail(x, CURLE_WEIRD_SERVER_REPLY, false, "%s sent a "
                       "response head over %d bytes", x->dest->label,
                       HTTPC_HEAD_MAX);
            return HTTPC_ENDED;
        case HP_ERROR:
            httpc_fail(x, CURLE_WEIRD_SERVER_REPLY, false, "%s sent a "
                       "malformed response head: %s", x->dest->label,
                       r.error);
            return HTTPC_ENDED;
        case HP_DONE:
            break;
        }
        if (r.status >= 200)
            break;
        if (r.status == 101) {
            httpc_fail(x, CURLE_WEIRD_SERVER_REPLY, false, "%s switched "
                       "protocols", x->dest->label);
            return HTTPC_ENDED;
        }
        /* 100 Continue and other interim heads: the next one counts. */
        p += r.head_len;
        avail -= r.head_len;
        k->in_off += r.head_len;
    }
    x->status = r.status;
    if (httpc_head_lines(x, p, r.head_len) < 0)
        return HTTPC_ENDED;
    k->in_off += r.head_len;
    x->keep = r.keep_alive;
    x->state = HTTPC_BODY;
    if (r.no_body || r.content_length == 0) {
        httpc_finish(x, CURLE_OK);
        return HTTPC_ENDED;
    }
    if (r.chunked) {
        x->framing = HTTPC_CHUNKED;
        hp_chunked_init(&x->chunked);
    } else if (r.to_close) {
        x->framing = HTTPC_TO_CLOSE;
    } else {
        x->framing = HTTPC_LENGTH;
        x->left = r.content_length;
    }
    return HTTPC_GO;
}

/* Decoded bytes at p (made of the used bytes of coding there) to the
 * write callback; a pause keeps them for later. */
static enum httpc_step httpc_chunk_out(struct httpc_xfer *x,
                                       struct httpc_conn *k, char *p,
                                       size_t made, size_t used)
{
    int rc = httpc_deliver(x, p, made);

    if (rc < 0)
        return HTTPC_ENDED;
    if (rc == 0) {
        x->pend = made;
        x->skip = used - made;
        return HTTPC_WAIT;
    }
    k->in_off += used;
    return HTTPC_GO;
}

/* Body bytes in k's buffer to the write callback. */
static enum httpc_step httpc_body(struct httpc_xfer *x, struct httpc_conn *k)
{
    char *p = k->in + k->in_off;
    size_t avail = k->in_len - k->in_off, used, made;
    enum httpc_step st;
    int rc;

    if (x->pend > 0) {
        /* Decoded bytes a pause kept, then the coding around them. */
        if ((rc = httpc_deliver(x, p, x->pend)) <= 0)
            return rc < 0 ? HTTPC_ENDED : HTTPC_WAIT;
        k->in_off += x->pend + x->skip;
        x->pend = x->skip = 0;
        p = k->in + k->in_off;
        avail = k->in_len - k->in_off;
    }
    switch (x->framing) {
    case HTTPC_LENGTH:
        if ((int64_t)avail > x->left)
            avail = (size_t)x->left;
        if ((rc = httpc_deliver(x, p, avail)) <= 0)
            return rc < 0 ? HTTPC_ENDED : HTTPC_WAIT;
        k->in_off += avail;
        x->left -= (int64_t)avail;
        if (x->left > 0)
            return HTTPC_WAIT;
        break;
    case HTTPC_TO_CLOSE:
        if ((rc = httpc_deliver(x, p, avail)) <= 0)
            return rc < 0 ? HTTPC_ENDED : HTTPC_WAIT;
        k->in_off += avail;
        return HTTPC_WAIT;
    default:
        switch (hp_chunked_decode(&x->chunked, p, avail, p, &used, &made,
                                  UINT64_MAX)) {
        case HP_ERROR:
            httpc_fail(x, CURLE_RECV_ERROR, false, "%s sent a malformed "
                       "chunked body", x->dest->label);
            return HTTPC_ENDED;
        case HP_NEED_MORE:
            st = httpc_chunk_out(x, k, p, made, used);
            return st == HTTPC_GO ? HTTPC_WAIT : st;
        case HP_DONE:
            st = httpc_chunk_out(x, k, p, made, used);
            if (st != HTTPC_GO)
                return st;
            break;
        }
        break;
    }
    httpc_finish(x, CURLE_OK);
    return HTTPC_ENDED;
}

/* What k's buffer holds, as far as it goes. */
static enum httpc_step httpc_process(struct httpc_xfer *x,
                                     struct httpc_conn *k)
{
    if (x->state != HTTPC_BODY) {
        enum httpc_step st = httpc_head(x, k);

        if (st != HTTPC_GO)
            return st;
    }
    if (x->paused)
        return HTTPC_WAIT;
    return httpc_body(x, k);
}

/* k's buffer with room to read into: allocated, compacted or grown. */
static void httpc_room(struct httpc_conn *k)
{
    if (k->in_off == k->in_len)
        k->in_off = k->in_len = 0;
    if (k->in == NULL) {
        k->in = malloc(HTTPC_READ_BUF);
        if (k->in == NULL)
            util_oom("an upstream answer's buffer");
        k->in_cap = HTTPC_READ_BUF;
    }
    if (k->in_len < k->in_cap)
        return;
    if (k->in_off > 0) {
        memmove(k->in, k->in + k->in_off, k->in_len - k->in_off);
        k->in_len -= k->in_off;
        k->in_off = 0;
        return;
    }
    k->in_cap *= 2;
    k->in = realloc(k->in, k->in_cap);
    if (k->in == NULL)
        util_oom("an upstream answer's buffer");
}

/* The peer closed k while x was on it. */
static void httpc_eof(struct httpc_xfer *x, struct httpc_conn *k)
{
    if (x->state == HTTPC_BODY && x->framing == HTTPC_TO_CLOSE) {
        x->keep = false;
        httpc_finish(x, CURLE_OK);
    } else if (x->state == HTTPC_BODY && x->framing == HTTPC_LENGTH) {
        httpc_fail(x, CURLE_PARTIAL_FILE, false, "transfer closed with "
                   "%lld bytes remaining to read", (long long)x->left);
    } else if (x->state == HTTPC_BODY) {
        httpc_fail(x, CURLE_PARTIAL_FILE, false, "transfer closed with "
                   "outstanding read data remaining");
    } else if (k->in_len > 0) {
        httpc_fail(x, CURLE_RECV_ERROR, false, "%s closed the connection "
                   "in the middle of the response head", x->dest->label);
    } else {
        httpc_died(x, CURLE_GOT_NOTHING, "Empty reply from server", 0);
    }
}

static void httpc_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct httpc_conn *k = arg;
    struct httpc_xfer *x = k->x;
    ssize_t n;

    (void)what;
    if (x == NULL) {
        /* Idle: the server closed it, or sent what nobody asked for. */
        httpc_idle_unlink(k);
        httpc_conn_close(k);
        return;
    }
    if (x->state == HTTPC_CONNECTING)
        return;       /* the write event tells how the connect went */
    /* What a pause kept (a resume makes this event active), first. */
    if (k->in_len > k->in_off && x->state == HTTPC_BODY &&
        httpc_process(x, k) == HTTPC_ENDED)
        return;
    if (x->paused)
        return;
    httpc_room(k);
    n = read(fd, k->in + k->in_len, k->in_cap - k->in_len);
    if (n > 0) {
        k->in_len += (size_t)n;
        x->answered = true;
        httpc_process(x, k);
    } else if (n == 0) {
        httpc_eof(x, k);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        if (x->state == HTTPC_BODY)
            httpc_fail(x, CURLE_RECV_ERROR, false, "Recv failure: %s",
                       strerror(errno));
        else
            httpc_died(x, CURLE_RECV_ERROR, "Recv failure", errno);
    }
}

/* ---- the request ---- */

/* Writes what is left of the head and body; the write event waits for
 * room when the socket is full. */
static void httpc_send(struct httpc_xfer *x)
{
    struct httpc_conn *k = x->conn;
    size_t total = x->head_len + x->body_len;

    while (x->sent < total) {
        struct iovec iov[2];
        struct msghdr msg;
        int n = 0;
        ssize_t w;

        if (x->sent < x->head_len) {
            iov[n].iov_base = x->head + x->sent;
            iov[n++].iov_len = x->head_len - x->sent;
        }
        if (x->body_len > 0) {
            size_t at = x->sent > x->head_len ? x->sent - x->head_len : 0;

            iov[n].iov_base = (char *)x->body + at;
            iov[n++].iov_len = x->body_len - at;
        }
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
        w = sendmsg(k->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                httpc_want(&k->wev, &k->writing, true);
                return;
            }
            httpc_died(x, CURLE_SEND_ERROR, "Send failure", errno);
            return;
        }
        x->sent += (size_t)w;
    }
    httpc_want(&k->wev, &k->writing, false);
}

static void httpc_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct httpc_conn *k = arg;
    struct httpc_xfer *x = k->x;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)what;
    if (x == NULL) {
        httpc_want(&k->wev, &k->writing, false);
        return;
    }
    if (x->state == HTTPC_CONNECTING) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            httpc_fail(x, CURLE_COULDNT_CONNECT, false, "Failed to connect "
                       "to %s after %lld ms: %s", x->dest->label,
                       (long long)(util_now_ms() - x->start_ms),
                       strerror(err));
            return;
        }
        x->state = HTTPC_ASKING;
        httpc_arm(x, x->deadline_ms);
    }
    httpc_send(x);
}

/* x on a new connection to its destination. */
static void httpc_connect(struct httpc_xfer *x)
{
    struct httpc_conn *k = httpc_conn_new(x->hc, x->dest);
    int64_t connect_by;

    if (k == NULL) {
        httpc_fail(x, CURLE_COULDNT_CONNECT, true, "Failed to connect to "
                   "%s after 0 ms: %s", x->dest->label, strerror(errno));
        return;
    }
    k->x = x;
    x->conn = k;
    x->state = HTTPC_CONNECTING;
    x->sent = 0;
    connect_by = util_now_ms() + x->hc->connect_timeout_ms;
    httpc_arm(x, connect_by < x->deadline_ms ? connect_by : x->deadline_ms);
    httpc_want(&k->rev, &k->reading, true);
    httpc_want(&k->wev, &k->writing, true);
}

/* The head: the destination's request line and Host, then the caller's
 * lines by libcurl's rules, Accept unless one was given, the length. */
static void httpc_build_head(struct httpc_xfer *x)
{
    const struct httpc_dest *d = x->dest;
    size_t cap = d->line_len + HTTPC_LENGTH_LINE + sizeof("Accept: */*\r\n");
    bool accept = false;
    char *p;

    for (const struct curl_slist *h = x->headers; h != NULL; h = h->next)
        cap += strlen(h->data) + 2;
    x->head = malloc(cap);
    if (x->head == NULL)
        util_oom("an upstream request's head");
    memcpy(x->head, d->line, d->line_len);
    p = x->head + d->line_len;
    for (const struct curl_slist *h = x->headers; h != NULL; h = h->next) {
        size_t n = strlen(h->data);
        const char *colon = memchr(h->data, ':', n);
        const char *end = colon != NULL ? colon : memchr(h->data, ';', n);

        /* libcurl's rules: "Name:" and "Name:" with blanks only send
         * nothing (they take away a line libcurl would add: "Accept:"
         * its Accept), "Name;" sends "Name:" with an empty value, a
         * line with neither is not sent. */
        if (end == NULL)
            continue;
        if ((size_t)(end - h->data) == sizeof("accept") - 1 &&
            strncasecmp(h->data, "accept", sizeof("accept") - 1) == 0)
            accept = true;
        if (end[1 + strspn(end + 1, " \t")] == '\0') {
            if (colon != NULL)
                continue;
            n = (size_t)(end - h->data) + 1;
            memcpy(p, h->data, n);
            p[n - 1] = ':';
        } else if (colon == NULL) {
            continue;            /* "Name; value": libcurl sends nothing */
        } else {
            memcpy(p, h->data, n);
        }
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (!accept) {
        memcpy(p, "Accept: */*\r\n", sizeof("Accept: */*\r\n") - 1);
        p += sizeof("Accept: */*\r\n") - 1;
    }
    p += snprintf(p, HTTPC_LENGTH_LINE, "Content-Length: %zu\r\n\r\n",
                  x->body_len);
    x->head_len = (size_t)(p - x->head);
}

void httpc_start(struct httpc *hc, struct httpc_dest *dest,
                 struct httpc_xfer *x, int64_t timeout_ms)
{
    struct httpc_conn *k;

    x->hc = hc;
    x->dest = dest;
    x->conn = NULL;
    x->status = 0;
    x->received = 0;
    x->pend = x->skip = 0;
    x->keep = false;
    x->paused = false;
    x->retried = false;
    x->answered = false;
    x->err[0] = '\0';
    x->start_ms = util_now_ms();
    x->deadline_ms = x->start_ms + (timeout_ms > 0 ? timeout_ms : 1);
    if (!x->timer_ready) {
        UTIL_MUST(evtimer_assign(&x->timer, hc->base, httpc_timer_cb, x),
                  "a transfer's timer");
        x->timer_ready = true;
    }
    httpc_build_head(x);
    /* Failures from here on are told from the loop. */
    x->starting = true;
    k = httpc_conn_reuse(dest);
    if (k == NULL) {
        httpc_connect(x);
    } else {
        k->x = x;
        x->conn = k;
        x->state = HTTPC_ASKING;
        x->sent = 0;
        httpc_arm(x, x->deadline_ms);
        httpc_send(x);
    }
    x->starting = false;
}

void httpc_abort(struct httpc_xfer *x)
{
    if (x->state == HTTPC_IDLE)
        return;
    if (x->conn != NULL)
        httpc_conn_close(x->conn);
    httpc_reset(x);
}

void httpc_pause(struct httpc_xfer *x, bool pause)
{
    struct httpc_conn *k = x->conn;

    if (x->state == HTTPC_IDLE || x->paused == pause)
        return;
    x->paused = pause;
    if (k == NULL)
        return;
    httpc_want(&k->rev, &k->reading, !pause);
    /* Bytes already read are handed over from the loop, not from inside
     * the caller's call. */
    if (!pause && k->in_len > k->in_off)
        event_active(&k->rev, EV_READ, 1);
}

bool httpc_running(const struct httpc_xfer *x)
{
    return x->state != HTTPC_IDLE;
}

long httpc_status(const struct httpc_xfer *x)
{
    return x->status;
}

/* ---- destinations ---- */

struct httpc_dest *httpc_dest(struct httpc *hc, const char *url)
{
    struct httpaddr ha;
    struct httpc_dest *d;
    char line[HTTPC_LINE_MAX], port[sizeof(":65535")] = "";
    bool v6;
    int n;

    if (httpaddr_parse(url, &ha) < 0)
        return NULL;
    v6 = ha.addr.ss_family == AF_INET6;
    if (ha.port != HTTPADDR_DEFAULT_PORT)
        snprintf(port, sizeof(port), ":%d", ha.port);
    n = snprintf(line, sizeof(line),
                 "POST %s%s HTTP/1.1\r\nHost: %s%s%s%s\r\n",
                 *ha.path == '/' ? "" : "/", ha.path, v6 ? "[" : "",
                 ha.host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= sizeof(line))
        return NULL;           /* a path too long for us: libcurl's */
    d = calloc(1, sizeof(*d));
    if (d == NULL || (d->line = strdup(line)) == NULL)
        util_oom("an upstream destination");
    d->line_len = (size_t)n;
    memcpy(&d->addr, &ha.addr, sizeof(d->addr));
    d->addr_len = ha.addr_len;
    snprintf(d->label, sizeof(d->label), "%s port %d", ha.host, ha.port);
    d->next = hc->dests;
    hc->dests = d;
    return d;
}

/* ---- the client ---- */

struct httpc *httpc_new(struct event_base *base, int connect_timeout_ms)
{
    struct httpc *hc = calloc(1, sizeof(*hc));

    if (hc == NULL)
        return NULL;
    hc->base = base;
    hc->connect_timeout_ms = connect_timeout_ms;
    return hc;
}

void httpc_free(struct httpc *hc)
{
    if (hc == NULL)
        return;
    while (hc->dests != NULL) {
        struct httpc_dest *d = hc->dests;

        hc->dests = d->next;
        while (d->idle != NULL) {
            struct httpc_conn *k = d->idle;

            httpc_idle_unlink(k);
            httpc_conn_close(k);
        }
        free(d->line);
        free(d);
    }
    free(hc);
}
