/* sse.h - an incremental server-sent-events parser (the WHATWG rules):
 * bytes arrive in arbitrary pieces; lines end in LF, CRLF or CR; lines
 * starting with ':' are comments; several data: lines join with '\n'; an
 * empty line dispatches the event. Bounded: an event larger than
 * max_event bytes is an error, never unbounded growth. */
#ifndef RCC_SSE_H
#define RCC_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_EVENT_NAME_MAX 64

/* Called once per dispatched event. data is NUL-terminated (len bytes);
 * event is "" when the event had no event: line. Return 0 to go on, -1 to
 * stop parsing (sse_feed then returns -1). */
typedef int (*sse_event_cb)(void *arg, const char *event, const char *data,
                            size_t len);

struct sse_parser {
    char *line;                /* the current, unfinished line; owned */
    size_t line_len, line_cap;
    char *data;                /* data of the event being built; owned */
    size_t data_len, data_cap;
    bool has_data;
    bool skip_lf;              /* the last byte was CR */
    char event[SSE_EVENT_NAME_MAX];
    size_t max_event;
    sse_event_cb cb;
    void *arg;
};

void sse_init(struct sse_parser *p, size_t max_event, sse_event_cb cb,
              void *arg);
/* Parses len more bytes. 0, or -1 when an event is too large, memory ran
 * out or the callback stopped. */
int sse_feed(struct sse_parser *p, const char *buf, size_t len);
/* True when bytes of an undispatched event are pending (a stream that
 * ended mid-event). */
bool sse_pending(const struct sse_parser *p);
/* Frees the buffers; the parser can be initialised again. */
void sse_free(struct sse_parser *p);

#endif
