/* chan.h - one end of the master<->worker socketpair on a libevent loop:
 * an input and an output buffer, a persistent read event and a write
 * event armed only while the socket is full. Unlike a bufferevent, a
 * read takes up to read_max bytes in one readv (libevent's evbuffer_read
 * stops at 4 KiB), and chan_flush writes at once with writev, so frames
 * leave in the loop turn that made them. The frame format is frame.h's;
 * this module only moves bytes. */
#ifndef RCC_CHAN_H
#define RCC_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct chan;

/* on_read: new bytes are in c->in (consume what is whole, leave the
 * rest). on_drain: a write took the output down to drain_low. on_close:
 * the peer closed or the socket failed; the channel does no more I/O
 * (chan_free is still the owner's to call). */
typedef void (*chan_cb)(struct chan *c, void *arg);

struct chan {
    evutil_socket_t fd;            /* owned: closed by chan_free */
    struct event *rev, *wev;
    struct evbuffer *in, *out;     /* owned */
    size_t read_max;               /* bytes per read callback */
    size_t drain_low;              /* on_drain when out gets this low */
    chan_cb on_read, on_drain, on_close;
    void *arg;
    bool closed;                   /* EOF or error seen: no more I/O */
    bool writing;                  /* wev is added */
};

/* Sets c up on fd (made non-blocking by the caller) and starts reading;
 * read_max must fit an int. 0, or -1 when out of memory: then fd is
 * still the caller's to close. */
int chan_init(struct chan *c, struct event_base *base, evutil_socket_t fd,
              size_t read_max, chan_cb on_read, chan_cb on_close, void *arg);

/* Asks for on_drain once a write leaves at most low bytes in c->out. */
void chan_set_drain(struct chan *c, size_t low, chan_cb on_drain);

/* Writes what c->out holds now; arms the write event for what the
 * socket does not take. 0, or -1 when the socket failed (on_close has
 * been called then). */
int chan_flush(struct chan *c);
/* Writes what the socket takes now and nothing else: no write event, no
 * callbacks, so a caller inside another library's callback may use it.
 * A failure is left for the next chan_flush or read to find. Bytes
 * written (0 when the socket is full or the channel closed), or -1. */
int chan_write_now(struct chan *c);

/* Reads once, up to read_max bytes, into c->in without calling on_read:
 * bytes read, 0 at EOF or when nothing is there, -1 on error. For a peer
 * known to be gone (reaping a dead worker). */
int chan_read_once(struct chan *c);

/* Stops all I/O on c without calling on_close (a peer that can no
 * longer be trusted); c->in keeps what it holds. */
void chan_stop(struct chan *c);

/* Bytes waiting in c->out. */
size_t chan_pending(const struct chan *c);

/* Frees the events and buffers and closes the socket; NULL-safe. The
 * struct itself is the caller's. */
void chan_free(struct chan *c);

#endif
