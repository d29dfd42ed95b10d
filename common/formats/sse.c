/* sse.c - the SSE parser: accumulates one line at a time, interprets
 * field lines, dispatches on blank lines. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#define SSE_INITIAL_CAP 256

void sse_init(struct sse_parser *p, size_t max_event, sse_event_cb cb,
              void *arg)
{
    memset(p, 0, sizeof(*p));
    p->max_event = max_event;
    p->cb = cb;
    p->arg = arg;
}

void sse_free(struct sse_parser *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
    p->has_data = false;
}

bool sse_pending(const struct sse_parser *p)
{
    return p->line_len > 0 || p->has_data;
}

/* Makes room for need+1 bytes in *buf; -1 past max or out of memory. */
static int sse_reserve(char **buf, size_t *cap, size_t need, size_t max)
{
    size_t n = *cap ? *cap : SSE_INITIAL_CAP;
    char *nb;

    if (need > max)
        return -1;
    if (need + 1 <= *cap)
        return 0;
    while (n < need + 1)
        n *= 2;
    nb = realloc(*buf, n);
    if (nb == NULL)
        return -1;
    *buf = nb;
    *cap = n;
    return 0;
}

static int sse_dispatch(struct sse_parser *p)
{
    int rc = 0;

    if (p->has_data) {
        p->data[p->data_len] = '\0';
        rc = p->cb(p->arg, p->event, p->data, p->data_len);
    }
    p->has_data = false;
    p->data_len = 0;
    p->event[0] = '\0';
    return rc;
}

/* One whole line (without its end), from the caller's buffer when it came
 * in one piece, else from p->line. */
static int sse_line(struct sse_parser *p, const char *line, size_t len)
{
    const char *colon, *value;
    size_t name_len, value_len;

    p->line_len = 0;
    if (len == 0)
        return sse_dispatch(p);
    if (line[0] == ':')
        return 0;
    colon = memchr(line, ':', len);
    name_len = colon ? (size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    value_len = len - (size_t)(value - line);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        size_t need = p->data_len + (p->has_data ? 1 : 0) + value_len;

        if (sse_reserve(&p->data, &p->data_cap, need, p->max_event) < 0)
            return -1;
        if (p->has_data)
            p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, value, value_len);
        p->data_len += value_len;
        p->has_data = true;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < SSE_EVENT_NAME_MAX - 1 ? value_len
                                                      : SSE_EVENT_NAME_MAX - 1;

        memcpy(p->event, value, n);
        p->event[n] = '\0';
    }
    /* id: and retry: do not matter to a relay; unknown fields are
     * ignored as the rules say. */
    return 0;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t len)
{
    size_t i = 0;
    const char *next_lf = NULL;     /* found ahead, still ahead of us */
    bool no_lf = false;             /* none in the rest of buf */

    while (i < len) {
        const char *start = buf + i, *nl, *cr;
        size_t avail = len - i, n;
        int rc;

        if (p->skip_lf) {
            p->skip_lf = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        /* The line ends at the first CR or LF (memchr runs wide). An LF
         * found for an earlier CR-ended line is kept, so lines ended by CR
         * alone do not rescan the rest each time. */
        if (no_lf) {
            nl = NULL;
        } else if (next_lf != NULL && next_lf >= start) {
            nl = next_lf;
        } else {
            nl = memchr(start, '\n', avail);
            next_lf = nl;
            no_lf = nl == NULL;
        }
        n = nl ? (size_t)(nl - start) : avail;
        cr = memchr(start, '\r', n);
        if (cr != NULL)
            n = (size_t)(cr - start);
        if (p->line_len + n > p->max_event)
            return -1;
        if (nl == NULL && cr == NULL) {
            /* Unfinished: keep it for the next feed. */
            if (sse_reserve(&p->line, &p->line_cap, p->line_len + n,
                            p->max_event) < 0)
                return -1;
            memcpy(p->line + p->line_len, start, n);
            p->line_len += n;
            return 0;
        }
        if (p->line_len == 0) {
            rc = sse_line(p, start, n);   /* whole here: no copy */
        } else {
            if (sse_reserve(&p->line, &p->line_cap, p->line_len + n,
                            p->max_event) < 0)
                return -1;
            memcpy(p->line + p->line_len, start, n);
            rc = sse_line(p, p->line, p->line_len + n);
        }
        p->skip_lf = start[n] == '\r';
        i += n + 1;
        if (rc < 0)
            return -1;
    }
    return 0;
}
