/* fuzz_frame.c - libFuzzer target for the worker<->master frame codec.
 * The input is a byte stream as read from a worker's socket: frames are
 * decoded one after another until frame_decode() wants more bytes or
 * refuses the stream, and every payload is also decoded as a meta (and
 * its prefix found as the master does for ANSWER, frame_meta_prefix). Each
 * decoded header and meta is encoded again and must give back the same
 * bytes and decode to the same values; a frame cut one byte short must
 * ask for more. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"

static void fuzz_frame_same(const struct frame *a, const struct frame *b)
{
    FUZZ_CHECK(a->len == b->len && a->type == b->type &&
               a->flags == b->flags && a->status == b->status &&
               a->job == b->job && a->gen == b->gen,
               "header changed in a round trip");
}

static void fuzz_meta_same(const struct frame_meta *a,
                           const struct frame_meta *b)
{
    FUZZ_CHECK(a->attempts == b->attempts &&
               a->prompt_tokens == b->prompt_tokens &&
               a->completion_tokens == b->completion_tokens &&
               a->target_len == b->target_len &&
               a->rest_len == b->rest_len,
               "meta changed in a round trip");
    FUZZ_CHECK(memcmp(a->target, b->target, a->target_len) == 0 &&
               memcmp(a->rest, b->rest, a->rest_len) == 0,
               "meta target or rest bytes changed in a round trip");
}

/* Decodes payload as a meta; when it is one, re-encodes and re-decodes
 * it into exactly sized buffers. */
static void fuzz_frame_meta(const uint8_t *payload, size_t len)
{
    struct frame_meta m, again;
    uint8_t *out;
    size_t size;

    if (frame_meta_decode(payload, len, &m) < 0) {
        /* target_len is the fixed part's last u16 */
        FUZZ_CHECK(len < FRAME_META_FIXED ||
                   (payload[FRAME_META_FIXED - 2] |
                    payload[FRAME_META_FIXED - 1] << 8) >
                   (int)(len - FRAME_META_FIXED),
                   "refused a well-formed meta of %zu bytes", len);
        FUZZ_CHECK(frame_meta_prefix(payload, len, len) == -1,
                   "a prefix for a meta that does not decode");
        return;
    }
    FUZZ_CHECK(frame_meta_prefix(payload, len, len) ==
               (int)(FRAME_META_FIXED + m.target_len) &&
               frame_meta_prefix(payload, FRAME_META_FIXED - 1, len) == 0,
               "meta prefix differs from the decoded meta");
    FUZZ_CHECK(len >= FRAME_META_FIXED, "accepted a %zu-byte meta", len);
    FUZZ_CHECK((const uint8_t *)m.target == payload + FRAME_META_FIXED &&
               m.rest == payload + FRAME_META_FIXED + m.target_len,
               "meta pointers outside the payload");
    size = frame_meta_size(&m);
    FUZZ_CHECK(size == len, "meta of %zu bytes has size %zu", len, size);

    out = malloc(size);
    FUZZ_CHECK(out != NULL, "out of memory");
    FUZZ_CHECK(frame_meta_encode(out, size, &m) == (int)size,
               "meta re-encoding to a different size");
    FUZZ_CHECK(memcmp(out, payload, size) == 0,
               "meta re-encoded to different bytes");
    FUZZ_CHECK(frame_meta_decode(out, size, &again) == 0,
               "re-encoded meta refused");
    fuzz_meta_same(&m, &again);
    /* One byte short: refused, nothing written past the buffer. */
    FUZZ_CHECK(frame_meta_encode(out, size - 1, &m) == -1,
               "meta encoded into a buffer one byte short");
    free(out);
}

/* Re-encodes a decoded frame (header + its payload) and decodes it. */
static void fuzz_frame_round_trip(const struct frame *f,
                                  const uint8_t *wire)
{
    size_t total = FRAME_HDR_SIZE + f->len;
    uint8_t *buf = malloc(total);
    struct frame again;

    FUZZ_CHECK(buf != NULL, "out of memory");
    frame_encode_hdr(buf, f);
    FUZZ_CHECK(memcmp(buf, wire, FRAME_HDR_SIZE) == 0,
               "header re-encoded to different bytes");
    if (f->len > 0)
        memcpy(buf + FRAME_HDR_SIZE, f->payload, f->len);
    FUZZ_CHECK(frame_decode(buf, total, &again) == (int)total,
               "re-encoded frame not decoded whole");
    fuzz_frame_same(f, &again);
    FUZZ_CHECK(again.payload == buf + FRAME_HDR_SIZE,
               "payload pointer not after the header");
    FUZZ_CHECK(frame_decode(buf, total - 1, &again) == 0,
               "a frame one byte short was not asked to wait");
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    for (;;) {
        struct frame f;
        size_t left = size - off;
        int rc = frame_decode(data + off, left, &f);

        if (rc == 0) {
            FUZZ_CHECK(left < FRAME_HDR_SIZE ||
                       (f.type != 0 && f.type < FRAME_TYPE_MAX &&
                        f.len <= FRAME_MAX_PAYLOAD &&
                        left - FRAME_HDR_SIZE < f.len),
                       "asked for more with %zu bytes in hand", left);
            break;
        }
        if (rc < 0) {
            FUZZ_CHECK(rc == -1, "frame_decode returned %d", rc);
            FUZZ_CHECK(f.type == 0 || f.type >= FRAME_TYPE_MAX ||
                       f.len > FRAME_MAX_PAYLOAD,
                       "refused a frame of type %u, %u bytes", f.type,
                       f.len);
            break;
        }
        FUZZ_CHECK((size_t)rc == FRAME_HDR_SIZE + f.len &&
                   (size_t)rc <= left, "frame of %d bytes, %zu in hand", rc,
                   left);
        FUZZ_CHECK(f.payload == data + off + FRAME_HDR_SIZE,
                   "payload pointer not after the header");
        fuzz_frame_round_trip(&f, data + off);
        fuzz_frame_meta(f.payload, f.len);
        off += (size_t)rc;
    }
    return 0;
}
