/* door_anthropic.c - the worker's side of the Anthropic door for an
 * OpenAI-format target: see door_anthropic.h. The stream filter runs
 * here, in the worker, as each event arrives (not in the master): the
 * master stays a relay of bytes for both doors, its one loop spends the
 * same per chunk whichever door a client came in by, and the
 * translation's cost spreads over the workers like the rest of the
 * answer's handling. Owns the call's door_state (an anthropic_stream). */
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>

#include "anthropic_msg.h"
#include "anthropic_req.h"
#include "anthropic_stream.h"
#include "door_anthropic.h"

bool wdoor_anthropic(const struct call *c)
{
    return (c->sj->flags & SHM_JOB_ANTHROPIC) != 0;
}

int wdoor_anthropic_request(struct call *c, char **out, size_t *out_len,
                            char *err, size_t err_cap)
{
    struct anthropic_req_info info;
    struct anthropic_stream *s;
    size_t len;
    const char *body = (const char *)call_body(c, &len);

    if (anthropic_req_to_openai(body, len, out, out_len, &info, err,
                                err_cap) < 0)
        return -1;
    s = malloc(sizeof(*s));
    if (s == NULL)
        util_oom("an Anthropic stream's state");
    /* The message id is the request's; the model the client's. */
    anthropic_stream_init(s, c->sj->request_id, info.model);
    free(c->door_state);
    c->door_state = s;
    return 0;
}

/* Sends what the filter wrote; its status as wdoor_anthropic_event's. */
static int wdoor_anthropic_send(struct call *c,
                                enum anthropic_stream_status st)
{
    struct evbuffer *out = c->w->door_out;
    size_t n = evbuffer_get_length(out);

    if (st == ANTHROPIC_STREAM_FAILED) {
        /* Its error event is the master's to write (the one path). */
        evbuffer_drain(out, n);
        return -1;
    }
    if (n > 0) {
        call_send_head(c);
        call_send_chunk(c, evbuffer_pullup(out, -1), n);
        evbuffer_drain(out, n);
    }
    return st == ANTHROPIC_STREAM_DONE ? 1 : 0;
}

int wdoor_anthropic_event(struct call *c, const char *data, size_t len)
{
    struct anthropic_stream *s = c->door_state;

    return wdoor_anthropic_send(c, anthropic_stream_feed(s, data, len,
                                                         c->w->door_out));
}

int wdoor_anthropic_end(struct call *c)
{
    struct anthropic_stream *s = c->door_state;

    if (s->status == ANTHROPIC_STREAM_DONE)
        return 1;
    return wdoor_anthropic_send(c, anthropic_stream_end(s, c->w->door_out))
           == 1 ? 1 : -1;
}

int wdoor_anthropic_plain(struct call *c, const char *body, size_t len)
{
    const struct anthropic_stream *s = c->door_state;
    char *out = NULL;
    size_t out_len = 0;

    if (anthropic_msg_from_openai(body, len, s->model, s->id +
                                  strlen(ANTHROPIC_MSG_ID_PREFIX), &out,
                                  &out_len) < 0)
        return -1;
    call_answered(c, out, out_len);
    free(out);
    return 0;
}
