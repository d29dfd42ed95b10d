/* fuzz_sse.c - libFuzzer target for the incremental SSE parser. The
 * first input byte says how the rest is cut and when the callback stops:
 *   bits 0-3  number of piece lengths that follow (0: one piece);
 *   bits 4-7  stop on that event (0: never).
 * The piece lengths (one byte each; 0 means an empty sse_feed call and
 * then a one-byte piece) are used in turn until the stream is consumed.
 * The stream is parsed three ways: cut as said, in one piece, and by a
 * small whole-buffer reference of the WHATWG rules; all three must see
 * the same events, and every event must keep the callback's contract.
 * (The reference, like the parser, does not strip a leading BOM.) */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "sse.h"

#define FUZZ_SSE_MAX_EVENT   4096     /* small, so the bound is reached */
#define FUZZ_SSE_SPLIT_MASK  0x0F
#define FUZZ_SSE_STOP_SHIFT  4
#define FUZZ_FNV_OFFSET      0xcbf29ce484222325ULL
#define FUZZ_FNV_PRIME       0x100000001b3ULL

/* What one parse saw: events counted and folded into a digest. */
struct fuzz_sse_log {
    uint64_t digest;
    unsigned count;
    unsigned stop_after;      /* return -1 on this event; 0: never */
    bool stopped;
};

static void fuzz_sse_fold(uint64_t *h, const void *p, size_t len)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < len; i++) {
        *h ^= b[i];
        *h *= FUZZ_FNV_PRIME;
    }
}

/* Records one event; shared by the parser's callback and the reference. */
static int fuzz_sse_record(struct fuzz_sse_log *log, const char *event,
                           size_t event_len, const char *data, size_t len)
{
    uint64_t len64 = len;

    fuzz_sse_fold(&log->digest, event, event_len);
    fuzz_sse_fold(&log->digest, "", 1);
    fuzz_sse_fold(&log->digest, &len64, sizeof(len64));
    fuzz_sse_fold(&log->digest, data, len);
    log->count++;
    if (log->stop_after != 0 && log->count == log->stop_after) {
        log->stopped = true;
        return -1;
    }
    return 0;
}

static int fuzz_sse_cb(void *arg, const char *event, const char *data,
                       size_t len)
{
    struct fuzz_sse_log *log = arg;
    size_t event_len;

    FUZZ_CHECK(event != NULL && data != NULL, "NULL event or data");
    FUZZ_CHECK(data[len] == '\0', "data of %zu bytes not NUL-terminated",
               len);
    FUZZ_CHECK(len <= FUZZ_SSE_MAX_EVENT, "event of %zu bytes passed "
               "max_event %d", len, FUZZ_SSE_MAX_EVENT);
    event_len = strnlen(event, SSE_EVENT_NAME_MAX);
    FUZZ_CHECK(event_len < SSE_EVENT_NAME_MAX,
               "event name not NUL-terminated within %d bytes",
               SSE_EVENT_NAME_MAX);
    FUZZ_CHECK(!log->stopped, "callback called after it stopped the parse");
    return fuzz_sse_record(log, event, event_len, data, len);
}

/* The reference: the same rules applied to the whole stream at once.
 * Returns 0, or -1 when the callback stopped; *pending as sse_pending().
 * Only compared when the parser met no size bound. */
struct fuzz_sse_ref {
    char event[SSE_EVENT_NAME_MAX];
    char *data;
    size_t data_len;
    bool has_data;
};

static int fuzz_sse_ref_line(struct fuzz_sse_ref *r, struct fuzz_sse_log *log,
                             const char *line, size_t len)
{
    const char *colon, *value;
    size_t name_len, value_len;

    if (len == 0) {
        int rc = 0;

        if (r->has_data) {
            /* The name is compared up to its first NUL, as C sees it. */
            r->data[r->data_len] = '\0';
            rc = fuzz_sse_record(log, r->event, strlen(r->event), r->data,
                                 r->data_len);
        }
        r->has_data = false;
        r->data_len = 0;
        r->event[0] = '\0';
        return rc;
    }
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
        if (r->has_data)
            r->data[r->data_len++] = '\n';
        memcpy(r->data + r->data_len, value, value_len);
        r->data_len += value_len;
        r->has_data = true;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < SSE_EVENT_NAME_MAX - 1 ?
                   value_len : SSE_EVENT_NAME_MAX - 1;

        memcpy(r->event, value, n);
        r->event[n] = '\0';
    }
    return 0;
}

static int fuzz_sse_ref(const char *s, size_t len, struct fuzz_sse_log *log,
                        bool *pending)
{
    struct fuzz_sse_ref r = { .data = malloc(len + 1) };
    size_t pos = 0;
    int rc = 0;

    FUZZ_CHECK(r.data != NULL, "out of memory");
    while (pos < len) {
        size_t end = pos;

        while (end < len && s[end] != '\n' && s[end] != '\r')
            end++;
        if (end == len)
            break;                    /* an unfinished last line */
        if (fuzz_sse_ref_line(&r, log, s + pos, end - pos) < 0) {
            rc = -1;
            break;
        }
        pos = end + 1;
        if (s[end] == '\r' && pos < len && s[pos] == '\n')
            pos++;
    }
    *pending = pos < len || r.has_data;
    free(r.data);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sse_parser split, whole;
    struct fuzz_sse_log split_log = { FUZZ_FNV_OFFSET, 0, 0, false };
    struct fuzz_sse_log whole_log, ref_log;
    const char *stream;
    const uint8_t *pieces;
    size_t npieces, stream_len, pos = 0, turn = 0;
    int split_rc = 0, whole_rc, ref_rc;
    bool ref_pending;

    if (size < 1)
        return 0;
    npieces = data[0] & FUZZ_SSE_SPLIT_MASK;
    split_log.stop_after = data[0] >> FUZZ_SSE_STOP_SHIFT;
    if (size < 1 + npieces)
        return 0;
    pieces = data + 1;
    stream = (const char *)data + 1 + npieces;
    stream_len = size - 1 - npieces;
    whole_log = ref_log = split_log;

    sse_init(&split, FUZZ_SSE_MAX_EVENT, fuzz_sse_cb, &split_log);
    while (split_rc == 0 && (pos < stream_len || turn == 0)) {
        size_t n = npieces ? pieces[turn % npieces] : stream_len;

        if (n == 0) {
            split_rc = sse_feed(&split, stream + pos, 0);
            n = 1;
        }
        if (n > stream_len - pos)
            n = stream_len - pos;
        if (split_rc == 0)
            split_rc = sse_feed(&split, stream + pos, n);
        FUZZ_CHECK(split_rc == 0 || split_rc == -1, "sse_feed returned %d",
                   split_rc);
        pos += n;
        turn++;
    }

    sse_init(&whole, FUZZ_SSE_MAX_EVENT, fuzz_sse_cb, &whole_log);
    whole_rc = sse_feed(&whole, stream, stream_len);
    FUZZ_CHECK(whole_rc == split_rc, "cut into pieces: %d, whole: %d",
               split_rc, whole_rc);
    FUZZ_CHECK(whole_log.count == split_log.count &&
               whole_log.digest == split_log.digest,
               "cut into pieces: %u events, whole: %u events (or their "
               "bytes differ)", split_log.count, whole_log.count);
    if (split_rc == 0)
        FUZZ_CHECK(sse_pending(&split) == sse_pending(&whole),
                   "pending differs: cut %d, whole %d", sse_pending(&split),
                   sse_pending(&whole));

    /* Without a size refusal the parser must follow the reference. */
    if (split_rc == 0 || split_log.stopped) {
        ref_rc = fuzz_sse_ref(stream, stream_len, &ref_log, &ref_pending);
        FUZZ_CHECK(ref_rc == split_rc, "reference: %d, parser: %d", ref_rc,
                   split_rc);
        FUZZ_CHECK(ref_log.count == split_log.count &&
                   ref_log.digest == split_log.digest,
                   "reference: %u events, parser: %u (or their bytes "
                   "differ)", ref_log.count, split_log.count);
        if (split_rc == 0)
            FUZZ_CHECK(ref_pending == sse_pending(&split),
                       "pending: reference %d, parser %d", ref_pending,
                       sse_pending(&split));
    }

    sse_free(&split);
    sse_free(&whole);
    FUZZ_CHECK(split.line == NULL && split.data == NULL &&
               !sse_pending(&split), "sse_free left state behind");
    /* Freed, the parser can be used again. */
    split_log.stop_after = 0;
    split_log.stopped = false;
    sse_init(&split, FUZZ_SSE_MAX_EVENT, fuzz_sse_cb, &split_log);
    FUZZ_CHECK(sse_feed(&split, "data: x\n\n", 9) == 0,
               "reused parser refused a small event");
    sse_free(&split);
    return 0;
}
