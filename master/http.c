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
#include "http_out.h"
#include "util.h"


static void http_conn_process(struct http_conn *c);
static void http_listener_resume(struct http_server *s);


/* ---- connection life ---- */

static void http_conn_free(struct http_conn *c, bool lost)
{
    struct http_server *s = c->srv;
    bool was_full = s->conn_count >= s->limits.max_connections;

    if (lost && c->state == HTTP_BUSY && s->on_lost != NULL)
        s->on_lost(&c->req, s->arg);
    http_out_unqueue(c);
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

/* An error answered by the server itself (bad framing, limits): in the
 * shape of the door whose path the request is for (on_head), else
 * OpenAI's, and the connection closes after it. */
static void http_refuse(struct http_conn *c, int status, const char *why)
{
    if (c->req.id[0] == '\0')
        http_out_take_id(c, NULL);     /* no head to take one from */
    if (c->srv->log != NULL)
        log_msg(c->srv->log, LOG_INFO, c->req.id, "refused a request: %d "
                "%s", status, why);
    c->state = HTTP_BUSY;
    c->close_after = true;
    c->req.conn = c;
    http_send_error(&c->req, status, status == 413 ? "request_too_large"
                                                   : "invalid_request",
                    why, NULL, 0);
}

/* ---- reading requests ---- */

/* Tells the front end whose path the request is for (target as sent,
 * its query cut off), before the server answers anything of it. */
static void http_dress(struct http_conn *c, const char *target, size_t n)
{
    const char *q;

    if (c->srv->on_head == NULL || target == NULL)
        return;
    q = memchr(target, '?', n);
    if (q != NULL)
        n = (size_t)(q - target);
    c->srv->on_head(&c->req, target, n, c->srv->arg);
}

#define HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

static void http_dispatch(struct http_conn *c, const struct hp_request *hp,
                          const char *body, size_t body_len)
{
    char path[HTTP_PATH_MAX];
    size_t n = hp->target_len;
    const char *q = memchr(hp->target, '?', n);

    if (q != NULL)
        n = (size_t)(q - hp->target);
    if (n >= sizeof(path)) {
        http_refuse(c, 414, "request target too long");
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
            c->req.error_format = NULL;    /* the shape of a door's */
            c->req.id_alias = NULL;
            c->head_only = false;
            c->http10 = false;
            c->keep_alive = true;
        }
        buf = (const char *)evbuffer_pullup(c->in, -1);
        r = hp_parse_head(buf, avail, &c->srv->limits.head, &hp);
        if (r == HP_NEED_MORE)
            return;
        if (r == HP_ERROR) {
            const char *target;
            size_t n = hp_peek_target(buf, avail, &target);

            http_dress(c, target, n);
            http_refuse(c, hp.error_status, hp.error);
            return;
        }
        if (!c->head_done) {
            /* The head just arrived: answer what can be decided now. The
             * whole body must follow within body_timeout_ms, however it
             * trickles in (dispatching stops the clock; a body that is
             * here already needs none). */
            c->head_done = true;
            http_out_take_id(c, &hp);
            http_dress(c, hp.target, hp.target_len);
            if (hp.chunked || (uint64_t)avail < (uint64_t)hp.head_len +
                    (uint64_t)(hp.content_length > 0 ? hp.content_length : 0))
                http_out_arm(c, c->srv->limits.body_timeout_ms);
            c->http10 = hp.minor == 0;
            c->keep_alive = hp.keep_alive;
            c->head_only = hp.method == HP_HEAD;
            if (hp.content_length >= 0 &&
                (uint64_t)hp.content_length > c->srv->limits.read_limit) {
                char why[64];

                snprintf(why, sizeof(why), "request body exceeds %llu bytes",
                         (unsigned long long)c->srv->limits.read_limit);
                http_refuse(c, 413, why);
                return;
            }
            if (hp.expect_continue && !c->continue_sent &&
                avail == hp.head_len) {
                UTIL_MUST(evbuffer_add(c->out, HTTP_CONTINUE,
                                       sizeof(HTTP_CONTINUE) - 1),
                          "an answer's output");
                c->continue_sent = true;
                http_out_flush(c);
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
                http_refuse(c, 503, "out of memory");
                return;
            }
            tmp = malloc(have ? have : 1);
            if (tmp == NULL) {
                http_refuse(c, 503, "out of memory");
                return;
            }
            r = hp_chunked_decode(&c->chunk, buf + hp.head_len, have, tmp,
                                  &consumed, &produced,
                                  c->srv->limits.read_limit);
            UTIL_MUST(evbuffer_add(c->body, tmp, produced),
                      "a request's body");
            free(tmp);
            if (r == HP_ERROR) {
                http_refuse(c, c->chunk.total + c->chunk.remaining >
                               c->srv->limits.read_limit ? 413 : 400,
                            "bad chunked body");
                return;
            }
            /* Keep the head, drop the decoded encoding after it. */
            {
                struct evbuffer *rest = evbuffer_new();

                if (rest == NULL) {
                    http_refuse(c, 503, "out of memory");
                    return;
                }
                if (evbuffer_remove_buffer(c->in, rest, hp.head_len) !=
                    (int)hp.head_len)
                    util_oom("a request's head");
                evbuffer_drain(c->in, consumed);
                UTIL_MUST(evbuffer_prepend_buffer(c->in, rest),
                          "a request's head");
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
                !http_out_await_request(c))
                return;
            continue;
        }
        need = (uint64_t)hp.head_len +
               (uint64_t)(hp.content_length > 0 ? hp.content_length : 0);
        if ((uint64_t)avail < need)
            return;
        http_dispatch(c, &hp, buf + hp.head_len, (size_t)(need - hp.head_len));
        /* The callback may have answered and freed nothing: the
         * connection stays until http_out_finish decides; its input is ours. */
        evbuffer_drain(c->in, (size_t)need);
        c->head_done = false;
        c->continue_sent = false;
        /* Answered at once: the next request, if the client keeps up. */
        if (c->state != HTTP_READING || c->doomed || !http_out_await_request(c))
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
        http_out_read_on(c, false);
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
            http_out_arm(c, c->srv->limits.header_timeout_ms);
        c->req_started = true;
        http_conn_process(c);
    }
}

static void http_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    http_out_flush(c);
    /* The client caught up with its answers: on with what it sent. */
    if (!c->doomed && c->out_blocked && c->state == HTTP_READING &&
        http_out_await_request(c))
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
        http_refuse(c, 408, "request body not received in time");
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
    http_out_read_on(c, true);
    http_out_arm(c, s->limits.header_timeout_ms);
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
    s->process = http_conn_process;
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
    s->flush_ev = event_new(base, -1, 0, http_out_flush_list_cb, s);
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
