/* anthropic_check.h - what the two Anthropic translation suites share:
 * comparing JSON texts by meaning (json-c's json_object_equal: member
 * order free, numbers by value), and reading a stream the translators
 * wrote back through the real SSE parser into one JSON array
 * [[event, data], ...] (data parsed; "[DONE]" kept as a string), so a
 * recorded exchange is written as one JSON text. Header-only, test
 * code. */
#ifndef RCC_ANTHROPIC_CHECK_H
#define RCC_ANTHROPIC_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "sse.h"

#define AC_SSE_EVENT_MAX (1 << 20)

/* True when got and want are the same JSON; says the difference. */
static inline bool ac_json_eq(const char *got, size_t got_len,
                              const char *want)
{
    json_tokener *tok = json_tokener_new();
    json_object *g, *w = json_tokener_parse(want);
    bool eq;

    g = got ? json_tokener_parse_ex(tok, got, (int)got_len) : NULL;
    json_tokener_free(tok);
    if (w == NULL)
        fprintf(stderr, "\nexpected JSON does not parse: %s\n", want);
    eq = g != NULL && w != NULL && json_object_equal(g, w);
    if (!eq)
        fprintf(stderr, "\n got: %.*s\nwant: %s\n", (int)got_len,
                got ? got : "(null)", want);
    json_object_put(g);
    json_object_put(w);
    return eq;
}

static inline int ac_sse_cb(void *arg, const char *event, const char *data,
                            size_t len)
{
    json_object *arr = arg, *pair = json_object_new_array(), *d;

    d = json_tokener_parse(data);
    if (d == NULL)
        d = json_object_new_string_len(data, (int)len);
    json_object_array_add(pair, json_object_new_string(event));
    json_object_array_add(pair, d);
    json_object_array_add(arr, pair);
    return 0;
}

/* The events in out (drained) as [[event, data], ...]; the caller puts
 * it. *whole says every byte belonged to a finished event. */
static inline json_object *ac_events(struct evbuffer *out, bool *whole)
{
    json_object *arr = json_object_new_array();
    struct sse_parser p;
    size_t n = evbuffer_get_length(out);
    char *bytes = malloc(n + 1);

    evbuffer_remove(out, bytes, n);
    sse_init(&p, AC_SSE_EVENT_MAX, ac_sse_cb, arr);
    *whole = sse_feed(&p, bytes, n) == 0 && !sse_pending(&p);
    sse_free(&p);
    free(bytes);
    return arr;
}

/* The events in out equal want (a JSON array of [event, data]). */
static inline bool ac_events_eq(struct evbuffer *out, const char *want)
{
    bool whole, eq;
    json_object *got = ac_events(out, &whole);
    size_t n;
    const char *s = json_object_to_json_string_length(
        got, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

    eq = whole && ac_json_eq(s, n, want);
    if (!whole)
        fprintf(stderr, "\nthe stream ends inside an event\n");
    json_object_put(got);
    return eq;
}

#endif
