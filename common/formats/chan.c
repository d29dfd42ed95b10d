/* chan.c - a socketpair end on a libevent loop: big reads in one readv,
 * writes at once with writev, a write event only while the socket is
 * full. The one module in common/ that does I/O besides the log: the
 * master and the workers both use it, and it knows nothing of either. */
#include "chan.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHAN_READ_VECS 2

enum chan_read_result {
    CHAN_EOF = 0,
    CHAN_ERROR = -1,
    CHAN_AGAIN = -2
};

void chan_stop(struct chan *c)
{
    c->closed = true;
    if (c->rev != NULL)
        event_del(c->rev);
    if (c->wev != NULL)
        event_del(c->wev);
    c->writing = false;
}

/* The peer is gone or the socket failed: stop all I/O, tell the owner
 * once. */
static void chan_fail(struct chan *c)
{
    if (c->closed)
        return;
    chan_stop(c);
    if (c->on_close != NULL)
        c->on_close(c, c->arg);
}

/* One readv of up to read_max bytes into c->in: bytes read, CHAN_EOF,
 * CHAN_ERROR or CHAN_AGAIN. */
static int chan_read(struct chan *c)
{
    struct evbuffer_iovec vec[CHAN_READ_VECS];
    int nvec;
    ssize_t n, got;

    if (c->closed)
        return CHAN_ERROR;
    nvec = evbuffer_reserve_space(c->in, (ev_ssize_t)c->read_max, vec,
                                  CHAN_READ_VECS);
    if (nvec <= 0)
        return CHAN_ERROR;
    do {
        n = readv(c->fd, (struct iovec *)vec, nvec);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? CHAN_AGAIN : CHAN_ERROR;
    if (n == 0)
        return CHAN_EOF;
    got = n;
    for (int i = 0; i < nvec; i++) {
        size_t take = (size_t)n < vec[i].iov_len ? (size_t)n
                                                  : vec[i].iov_len;

        vec[i].iov_len = take;
        n -= (ssize_t)take;
    }
    if (evbuffer_commit_space(c->in, vec, nvec) < 0)
        return CHAN_ERROR;
    return (int)got;
}

static void chan_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct chan *c = arg;
    int rc = chan_read(c);

    (void)fd;
    (void)what;
    if (rc == CHAN_AGAIN)
        return;
    if (rc <= 0) {
        chan_fail(c);
        return;
    }
    c->on_read(c, c->arg);
}

static void chan_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chan_flush(arg);
}

int chan_init(struct chan *c, struct event_base *base, evutil_socket_t fd,
              size_t read_max, chan_cb on_read, chan_cb on_close, void *arg)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->read_max = read_max;
    c->on_read = on_read;
    c->on_close = on_close;
    c->arg = arg;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, chan_read_cb, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, chan_write_cb, c);
    if (c->in == NULL || c->out == NULL || c->rev == NULL ||
        c->wev == NULL || event_add(c->rev, NULL) < 0)
        goto out_free;
    return 0;
out_free:
    c->fd = -1;            /* the caller still owns it */
    chan_free(c);
    return -1;
}

void chan_set_drain(struct chan *c, size_t low, chan_cb on_drain)
{
    c->drain_low = low;
    c->on_drain = on_drain;
}

int chan_flush(struct chan *c)
{
    if (c->closed)
        return -1;
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            chan_fail(c);
            return -1;
        }
    }
    if (evbuffer_get_length(c->out) > 0) {
        if (!c->writing && event_add(c->wev, NULL) == 0)
            c->writing = true;
    } else if (c->writing) {
        event_del(c->wev);
        c->writing = false;
    }
    if (c->on_drain != NULL && evbuffer_get_length(c->out) <= c->drain_low)
        c->on_drain(c, c->arg);
    return 0;
}

int chan_write_now(struct chan *c)
{
    int n;

    if (c->closed || evbuffer_get_length(c->out) == 0)
        return 0;
    do {
        n = evbuffer_write(c->out, c->fd);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    return n < 0 ? -1 : n;
}

int chan_read_once(struct chan *c)
{
    int rc = chan_read(c);

    if (rc == CHAN_EOF || rc == CHAN_AGAIN)
        return 0;
    return rc;
}

size_t chan_pending(const struct chan *c)
{
    return evbuffer_get_length(c->out);
}

void chan_free(struct chan *c)
{
    if (c == NULL)
        return;
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    if (c->fd >= 0)
        close(c->fd);
    c->rev = c->wev = NULL;
    c->in = c->out = NULL;
    c->fd = -1;
    c->closed = true;
}
