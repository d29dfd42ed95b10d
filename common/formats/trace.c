/* trace.c - recording a request's stages in its job (workers) and
 * formatting its one log line (master). See trace.h. */
#include "trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TRACE_US_PER_TENTH 100       /* µs in a tenth of a millisecond */
#define TRACE_NUM_MAX     24          /* an int64 in ms with a decimal */
#define TRACE_ELLIPSIS    "..."
#define TRACE_NONE        "-"
/* received, queued, two dispatches, the attempts, "+N_more", first
 * byte, client gone, the end */
#define TRACE_MAX_ITEMS   (TRACE_MAX_ATTEMPTS + 8)

static const char *const trace_outcome_names[TRACE_OUTCOME_COUNT] = {
    [TRACE_PENDING] = "lost",
    [TRACE_HTTP] = "http",
    [TRACE_UNREACHABLE] = "unreachable",
    [TRACE_TIMEOUT] = "timeout",
    [TRACE_IDLE] = "idle",
    [TRACE_BAD_RESPONSE] = "bad_response",
    [TRACE_CANCELLED] = "cancelled",
    [TRACE_ERROR] = "error",
};

void trace_reset(struct trace *t)
{
    t->dispatched_us = 0;
    t->redispatched_us = 0;
    t->dispatches = 0;
    t->attempts = 0;
}

void trace_dispatched(struct trace *t, int64_t now_us)
{
    if (t->dispatches++ == 0)
        t->dispatched_us = now_us;
    else
        t->redispatched_us = now_us;
}

void trace_attempt_begin(struct trace *t, int target, int64_t now_us)
{
    uint32_t n = ++t->attempts;
    struct trace_attempt *a = &t->attempt[n <= TRACE_MAX_ATTEMPTS ?
                                          n - 1 : TRACE_MAX_ATTEMPTS - 1];

    a->start_us = now_us;
    a->end_us = 0;
    a->target = target;
    a->number = n;
    a->status = 0;
    a->outcome = TRACE_PENDING;
}

void trace_attempt_end(struct trace *t, enum trace_outcome outcome,
                       int status, int64_t now_us)
{
    struct trace_attempt *a;

    if (t->attempts == 0)
        return;
    a = &t->attempt[t->attempts <= TRACE_MAX_ATTEMPTS ?
                    t->attempts - 1 : TRACE_MAX_ATTEMPTS - 1];
    if (a->outcome != TRACE_PENDING)
        return;
    a->end_us = now_us;
    a->status = (uint16_t)status;
    a->outcome = (uint8_t)outcome;
}

enum trace_outcome trace_outcome_of(const char *code, int upstream_status)
{
    static const struct {
        const char *code;
        enum trace_outcome outcome;
    } map[] = {
        { "upstream_error", TRACE_HTTP },
        { "upstream_rejected", TRACE_HTTP },
        { "upstream_auth_failed", TRACE_HTTP },
        { "upstream_unreachable", TRACE_UNREACHABLE },
        { "timeout", TRACE_TIMEOUT },
        { "upstream_idle", TRACE_IDLE },
        { "bad_upstream_response", TRACE_BAD_RESPONSE },
        { "incomplete_stream", TRACE_BAD_RESPONSE },
    };

    if (code == NULL)
        return TRACE_ERROR;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(code, map[i].code) != 0)
            continue;
        if (map[i].outcome == TRACE_HTTP && upstream_status <= 0)
            return TRACE_ERROR;
        return map[i].outcome;
    }
    return TRACE_ERROR;
}

/* ---- formatting ---- */

/* An output buffer that ends in "..." once something did not fit. */
struct trace_buf {
    char *p;
    size_t cap;
    size_t len;
    bool full;
};

static void trace_put(struct trace_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Accounts for n bytes just printed at the end of b (snprintf's return
 * value); what did not fit is cut and marked. */
static void trace_advance(struct trace_buf *b, int n)
{
    if (n >= 0 && (size_t)n < b->cap - b->len) {
        b->len += (size_t)n;
        return;
    }
    b->full = true;
    b->len = b->cap - sizeof(TRACE_ELLIPSIS);
    memcpy(b->p + b->len, TRACE_ELLIPSIS, sizeof(TRACE_ELLIPSIS));
    b->len += sizeof(TRACE_ELLIPSIS) - 1;
}

static void trace_put(struct trace_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    trace_advance(b, n);
}

/* A name as one log word into word[size]: what could split the line's
 * key=value pairs (a client's unknown model name can hold anything)
 * becomes '?'. Returns word. */
static const char *trace_word(char *word, size_t size, const char *s)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        s = TRACE_NONE;
    for (; n < size - 1 && s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];

        word[n] = c > ' ' && c < 0x7f && c != '=' && c != ',' &&
                  c != '"' ? (char)c : '?';
    }
    word[n] = '\0';
    return word;
}

/* to_us - from_us in ms with one decimal, cut not rounded, into
 * buf[TRACE_NUM_MAX]; by hand, not printf's %f, since every request's
 * line has two. Returns buf. */
static const char *trace_ms(char *buf, int64_t from_us, int64_t to_us)
{
    char rev[TRACE_NUM_MAX];
    /* Clocks do not go back; a torn record might. */
    uint64_t v = to_us > from_us ?
                 (uint64_t)(to_us - from_us) / TRACE_US_PER_TENTH : 0;
    size_t n = 0, k = 0;

    rev[n++] = (char)('0' + v % 10);
    rev[n++] = '.';
    v /= 10;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        buf[k++] = rev[--n];
    buf[k] = '\0';
    return buf;
}

static const char *trace_target_name(const struct cfg *cfg, int32_t t)
{
    if (cfg == NULL || t < 0 || t >= cfg->target_count)
        return NULL;
    return cfg->targets[t].name;
}

/* How many attempt slots hold a record. */
static uint32_t trace_kept(const struct trace *t)
{
    return t->attempts > TRACE_MAX_ATTEMPTS ? TRACE_MAX_ATTEMPTS
                                            : t->attempts;
}

/* The slot of the last attempt recorded, or NULL. */
static const struct trace_attempt *trace_last(const struct trace *t)
{
    uint32_t n = t != NULL ? trace_kept(t) : 0;

    return n > 0 ? &t->attempt[n - 1] : NULL;
}

enum trace_item_kind {
    TRACE_ITEM_RECEIVED,
    TRACE_ITEM_QUEUED,
    TRACE_ITEM_DISPATCHED,
    TRACE_ITEM_REDISPATCHED,
    TRACE_ITEM_ATTEMPT,
    TRACE_ITEM_SKIPPED,
    TRACE_ITEM_FIRST_BYTE,
    TRACE_ITEM_GONE,
    TRACE_ITEM_END
};

struct trace_item {
    int64_t at_us;
    enum trace_item_kind kind;
    const struct trace_attempt *attempt;
};

static void trace_put_attempt(struct trace_buf *b, const struct trace_req *r,
                              const struct trace_attempt *a,
                              const struct cfg *cfg)
{
    char name[CFG_TARGET_NAME_MAX], ms[TRACE_NUM_MAX];

    trace_put(b, "attempt%u:%s@%s->", a->number,
              trace_word(name, sizeof(name),
                         trace_target_name(cfg, a->target)),
              trace_ms(ms, r->received_us, a->start_us));
    if (a->outcome == TRACE_HTTP)
        trace_put(b, "%u", a->status);
    else
        trace_put(b, "%s", a->outcome < TRACE_OUTCOME_COUNT ?
                           trace_outcome_names[a->outcome] : TRACE_NONE);
    if (a->outcome != TRACE_PENDING)
        trace_put(b, "@%s", trace_ms(ms, r->received_us, a->end_us));
}

/* Gathers every stage that happened, then sorts them by time (stable:
 * equal times keep the order they were gathered in). */
static size_t trace_items(const struct trace_req *r, const struct trace *t,
                          struct trace_item *items)
{
    size_t n = 0;

    items[n++] = (struct trace_item){ r->received_us, TRACE_ITEM_RECEIVED,
                                      NULL };
    if (r->queued_us != 0)
        items[n++] = (struct trace_item){ r->queued_us, TRACE_ITEM_QUEUED,
                                          NULL };
    if (t != NULL && t->dispatches > 0)
        items[n++] = (struct trace_item){ t->dispatched_us,
                                          TRACE_ITEM_DISPATCHED, NULL };
    if (t != NULL && t->dispatches > 1)
        items[n++] = (struct trace_item){ t->redispatched_us,
                                          TRACE_ITEM_REDISPATCHED, NULL };
    if (t != NULL) {
        uint32_t kept = trace_kept(t);

        for (uint32_t i = 0; i < kept; i++) {
            const struct trace_attempt *a = &t->attempt[i];

            if (i == TRACE_MAX_ATTEMPTS - 1 &&
                t->attempts > TRACE_MAX_ATTEMPTS)
                items[n++] = (struct trace_item){ a->start_us,
                                                  TRACE_ITEM_SKIPPED, NULL };
            items[n++] = (struct trace_item){ a->start_us,
                                              TRACE_ITEM_ATTEMPT, a };
        }
    }
    if (r->first_byte_us != 0)
        items[n++] = (struct trace_item){ r->first_byte_us,
                                          TRACE_ITEM_FIRST_BYTE, NULL };
    if (r->gone_us != 0)
        items[n++] = (struct trace_item){ r->gone_us, TRACE_ITEM_GONE,
                                          NULL };
    items[n++] = (struct trace_item){ r->end_us, TRACE_ITEM_END, NULL };
    for (size_t i = 1; i < n; i++) {
        struct trace_item it = items[i];
        size_t k = i;

        for (; k > 0 && items[k - 1].at_us > it.at_us; k--)
            items[k] = items[k - 1];
        items[k] = it;
    }
    return n;
}

static void trace_put_stages(struct trace_buf *b, const struct trace_req *r,
                             const struct trace *t, const struct cfg *cfg)
{
    struct trace_item items[TRACE_MAX_ITEMS];
    size_t n = trace_items(r, t, items);

    trace_put(b, " stages=");
    for (size_t i = 0; i < n; i++) {
        const struct trace_item *it = &items[i];
        char ms[TRACE_NUM_MAX];

        trace_ms(ms, r->received_us, it->at_us);

        if (i > 0)
            trace_put(b, ",");
        switch (it->kind) {
        case TRACE_ITEM_RECEIVED:
            trace_put(b, "received:0");
            break;
        case TRACE_ITEM_QUEUED:
            trace_put(b, "queued:%s", ms);
            break;
        case TRACE_ITEM_DISPATCHED:
            trace_put(b, "dispatched:%s", ms);
            break;
        case TRACE_ITEM_REDISPATCHED:
            trace_put(b, "dispatched%u:%s", t->dispatches, ms);
            break;
        case TRACE_ITEM_ATTEMPT:
            trace_put_attempt(b, r, it->attempt, cfg);
            break;
        case TRACE_ITEM_SKIPPED:
            trace_put(b, "+%u_more", t->attempts - TRACE_MAX_ATTEMPTS);
            break;
        case TRACE_ITEM_FIRST_BYTE:
            trace_put(b, "first_byte:%s", ms);
            break;
        case TRACE_ITEM_GONE:
            trace_put(b, "client_gone:%s", ms);
            break;
        case TRACE_ITEM_END:
            /* A stream cut by an error event keeps its 200: failed. */
            trace_put(b, "%s:%s", r->status >= 200 && r->status < 300 &&
                                  r->error == NULL ? "done" : "failed", ms);
            break;
        }
    }
}

size_t trace_format(char *out, size_t cap, const struct trace_req *r,
                    const struct trace *t, const struct cfg *cfg,
                    bool stages)
{
    struct trace_buf b = { out, cap, 0, false };
    const struct trace_attempt *last = trace_last(t);
    const char *target = r->target;
    char model[CFG_TARGET_NAME_MAX], tname[CFG_TARGET_NAME_MAX];
    char ms[TRACE_NUM_MAX], fb[TRACE_NUM_MAX];

    if ((target == NULL || *target == '\0') && last != NULL)
        target = trace_target_name(cfg, last->target);
    /* The part every request has, in one call. */
    trace_advance(&b, snprintf(out, cap, "model=%s target=%s status=%d "
                               "attempts=%u ms=%s first_byte_ms=%s",
        trace_word(model, sizeof(model), r->model),
        trace_word(tname, sizeof(tname), target), r->status,
        t != NULL ? t->attempts : 0,
        trace_ms(ms, r->received_us, r->end_us),
        r->first_byte_us != 0 ? trace_ms(fb, r->received_us,
                                         r->first_byte_us) : TRACE_NONE));
    if (r->client != NULL) {
        char client[CFG_NAME_MAX];

        trace_put(&b, " client=%s", trace_word(client, sizeof(client),
                                               r->client));
    }
    if (r->usage)
        trace_put(&b, " prompt_tokens=%u completion_tokens=%u",
                  r->prompt_tokens, r->completion_tokens);
    if (r->error != NULL) {
        char error[CFG_TARGET_NAME_MAX];

        trace_put(&b, " error=%s", trace_word(error, sizeof(error),
                                              r->error));
    }
    if (r->client_gone)
        trace_put(&b, " client_gone=1");
    if (stages)
        trace_put_stages(&b, r, t, cfg);
    return b.len;
}
