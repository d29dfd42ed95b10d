/* fuzz_anthropic_sse.c - libFuzzer target for the two stream
 * translators: the input is an SSE byte stream, parsed by the real SSE
 * parser (in pieces), each event fed to one translator, and what it
 * writes parsed back. Byte 0 says how:
 *   bit 0    0: the door's filter (OpenAI chunks → Anthropic events),
 *            1: the provider's (Anthropic events → OpenAI chunks);
 *   bit 1    call the end-of-stream function after the last event;
 *   bits 2-7 piece length of the stream fed to the parser (0: whole).
 * Checks, beyond memory safety: every output event is whole, its data
 * JSON of the right shape; the door's events keep Anthropic's grammar
 * (message_start first; blocks started with indexes 0, 1, 2...; deltas
 * and stops only for open blocks; message_delta then message_stop last;
 * an error event last; nothing after either; DONE ⇔ message_stop,
 * FAILED ⇔ error); the provider's chunks are chat.completion.chunk
 * objects and "[DONE]" comes last exactly when the status says DONE; an
 * ended stream is never left MORE. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "anthropic_stream.h"
#include "anthropic_upsse.h"
#include "fuzz.h"
#include "sse.h"

#define FUZZ_AS_MAX_EVENT   65536
#define FUZZ_AS_UP          0x01
#define FUZZ_AS_END         0x02
#define FUZZ_AS_PIECE_SHIFT 2
#define FUZZ_AS_DEPTH       128
#define FUZZ_AS_BLOCKS_MAX  4096      /* more than either bound */

struct fuzz_as {
    bool up;
    struct anthropic_stream door;
    struct anthropic_upsse prov;
    struct evbuffer *out;
};

static int fuzz_as_in(void *arg, const char *event, const char *data,
                      size_t len)
{
    struct fuzz_as *f = arg;

    if (f->up)
        anthropic_upsse_feed(&f->prov, event, data, len, f->out);
    else
        anthropic_stream_feed(&f->door, data, len, f->out);
    return 0;
}

/* The state of the output check. */
struct fuzz_as_check {
    bool up;
    unsigned events;
    bool started, delta_seen, ended;    /* ended: a last event came */
    bool errored, done;
    int blocks;                         /* started so far */
    bool open[FUZZ_AS_BLOCKS_MAX];
};

static long long fuzz_as_int(json_object *o, const char *key)
{
    json_object *v = NULL;

    FUZZ_CHECK(json_object_object_get_ex(o, key, &v) &&
               json_object_is_type(v, json_type_int), "no integer %s", key);
    return json_object_get_int64(v);
}

static void fuzz_as_door_event(struct fuzz_as_check *c, const char *event,
                               json_object *o)
{
    json_object *t = NULL;
    long long idx;

    FUZZ_CHECK(json_object_object_get_ex(o, "type", &t) &&
               strcmp(json_object_get_string(t), event) == 0,
               "event %s carries another type", event);
    if (strcmp(event, "error") == 0) {
        c->errored = c->ended = true;
        return;
    }
    if (strcmp(event, "message_start") == 0) {
        FUZZ_CHECK(c->events == 1, "message_start not first");
        c->started = true;
        return;
    }
    FUZZ_CHECK(c->started, "%s before message_start", event);
    FUZZ_CHECK(!c->delta_seen || strcmp(event, "message_stop") == 0,
               "%s after message_delta", event);
    if (strcmp(event, "content_block_start") == 0) {
        idx = fuzz_as_int(o, "index");
        FUZZ_CHECK(idx == c->blocks && idx < FUZZ_AS_BLOCKS_MAX,
                   "block %lld started, %d expected", idx, c->blocks);
        c->open[c->blocks++] = true;
    } else if (strcmp(event, "content_block_delta") == 0 ||
               strcmp(event, "content_block_stop") == 0) {
        idx = fuzz_as_int(o, "index");
        FUZZ_CHECK(idx >= 0 && idx < c->blocks && c->open[idx],
                   "%s for block %lld, not open", event, idx);
        if (event[strlen("content_block_")] == 's')
            c->open[idx] = false;
    } else if (strcmp(event, "message_delta") == 0) {
        for (int i = 0; i < c->blocks; i++)
            FUZZ_CHECK(!c->open[i], "message_delta with block %d open", i);
        c->delta_seen = true;
    } else if (strcmp(event, "message_stop") == 0) {
        FUZZ_CHECK(c->delta_seen, "message_stop without message_delta");
        c->done = c->ended = true;
    } else {
        FUZZ_CHECK(false, "unknown event %s", event);
    }
}

static int fuzz_as_out(void *arg, const char *event, const char *data,
                       size_t len)
{
    struct fuzz_as_check *c = arg;
    json_object *o, *v = NULL;
    bool ok;

    FUZZ_CHECK(!c->ended, "an event after the last one");
    c->events++;
    if (c->up) {
        FUZZ_CHECK(event[0] == '\0', "a named OpenAI chunk");
        if (len == strlen("[DONE]") && memcmp(data, "[DONE]", len) == 0) {
            c->done = c->ended = true;
            return 0;
        }
    }
    o = fuzz_json_parse(data, len, FUZZ_AS_DEPTH, JSON_TOKENER_STRICT, &ok);
    FUZZ_CHECK(ok && json_object_is_type(o, json_type_object),
               "event data is not a JSON object: %s", data);
    if (c->up) {
        FUZZ_CHECK(json_object_object_get_ex(o, "object", &v) &&
                   strcmp(json_object_get_string(v),
                          "chat.completion.chunk") == 0, "not a chunk");
        FUZZ_CHECK(json_object_object_get_ex(o, "choices", &v) &&
                   json_object_array_length(v) == 1, "not one choice");
    } else {
        fuzz_as_door_event(c, event, o);
    }
    json_object_put(o);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_as f = { 0 };
    struct fuzz_as_check c = { 0 };
    struct sse_parser in, out;
    const char *stream;
    size_t len, piece, n;
    char *bytes;
    int status;

    if (size < 1)
        return 0;
    f.up = c.up = (data[0] & FUZZ_AS_UP) != 0;
    piece = data[0] >> FUZZ_AS_PIECE_SHIFT;
    stream = (const char *)data + 1;
    len = size - 1;
    f.out = evbuffer_new();
    FUZZ_CHECK(f.out != NULL, "out of memory");
    anthropic_stream_init(&f.door, "req-fuzz", "model");
    anthropic_upsse_init(&f.prov, "model", 1);
    sse_init(&in, FUZZ_AS_MAX_EVENT, fuzz_as_in, &f);
    for (size_t pos = 0; pos < len; pos += n) {
        n = piece == 0 || piece > len - pos ? len - pos : piece;
        if (sse_feed(&in, stream + pos, n) < 0)
            break;
    }
    sse_free(&in);
    if (data[0] & FUZZ_AS_END) {
        status = f.up ? (int)anthropic_upsse_end(&f.prov) :
                        (int)anthropic_stream_end(&f.door, f.out);
        FUZZ_CHECK(status != 0, "an ended stream is still open");
    }
    status = f.up ? (int)f.prov.status : (int)f.door.status;

    n = evbuffer_get_length(f.out);
    bytes = malloc(n + 1);
    FUZZ_CHECK(bytes != NULL, "out of memory");
    evbuffer_remove(f.out, bytes, n);
    sse_init(&out, n + 1, fuzz_as_out, &c);
    FUZZ_CHECK(sse_feed(&out, bytes, n) == 0 && !sse_pending(&out),
               "output is not whole SSE events");
    sse_free(&out);
    free(bytes);

    if (f.up) {
        FUZZ_CHECK(c.done == (status == ANTHROPIC_UPSSE_DONE),
                   "[DONE] %d, status %d", c.done, status);
        FUZZ_CHECK(status != ANTHROPIC_UPSSE_FAILED ||
                   f.prov.error_type[0] != '\0', "failed without a type");
    } else {
        FUZZ_CHECK(c.done == (status == ANTHROPIC_STREAM_DONE),
                   "message_stop %d, status %d", c.done, status);
        FUZZ_CHECK(c.errored == (status == ANTHROPIC_STREAM_FAILED),
                   "error event %d, status %d", c.errored, status);
        FUZZ_CHECK(status != ANTHROPIC_STREAM_MORE || !c.ended,
                   "a last event while open");
    }
    evbuffer_free(f.out);
    return 0;
}
