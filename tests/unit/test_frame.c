/* test_frame.c - the worker<->master frame codec: header round trip and
 * byte layout, "need more" for every prefix, rejection of bad types and
 * oversized payloads, the meta payload with its bounds checks, and the
 * ANSWER frame (meta + body; frame_meta_prefix finds where the body
 * starts without the body in hand). */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "frame.h"
#include "unit.h"

#define FT_PAYLOAD     "data: {\"x\":1}\n\n"
#define FT_TARGET      "openai/gpt-4o"
#define FT_REST        "{\"error\":{\"message\":\"boom\"}}"
#define FT_BUF_MAX     256
#define FT_GUARD       0xAA
#define FT_TARGET_LEN_AT (FRAME_META_FIXED - 2)   /* its u16 field */

static void ft_sample(struct frame *f, uint8_t type, uint32_t len)
{
    memset(f, 0, sizeof(*f));
    f->len = len;
    f->type = type;
    f->flags = FRAME_F_STREAM;
    f->status = 503;
    f->job = 0x01020304u;
    f->gen = 0xA1B2C3D4u;
}

/* Header and payload into buf; the total size. */
static size_t ft_build(uint8_t *buf, const struct frame *f,
                       const void *payload)
{
    frame_encode_hdr(buf, f);
    memcpy(buf + FRAME_HDR_SIZE, payload, f->len);
    return FRAME_HDR_SIZE + f->len;
}

static void test_hdr_round_trip(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame in, out;
    size_t total;

    ft_sample(&in, FRAME_CHUNK, sizeof(FT_PAYLOAD) - 1);
    total = ft_build(buf, &in, FT_PAYLOAD);
    memset(&out, 0, sizeof(out));
    CU_ASSERT_EQUAL(frame_decode(buf, total, &out), (int)total);
    CU_ASSERT_EQUAL(out.len, in.len);
    CU_ASSERT_EQUAL(out.type, FRAME_CHUNK);
    CU_ASSERT_EQUAL(out.flags, FRAME_F_STREAM);
    CU_ASSERT_EQUAL(out.status, 503);
    CU_ASSERT_EQUAL(out.job, in.job);
    CU_ASSERT_EQUAL(out.gen, in.gen);
    CU_ASSERT_PTR_EQUAL(out.payload, buf + FRAME_HDR_SIZE);
    CU_ASSERT_EQUAL(memcmp(out.payload, FT_PAYLOAD, out.len), 0);
    /* Extra bytes after the frame are left for the next decode. */
    CU_ASSERT_EQUAL(frame_decode(buf, total + 5, &out), (int)total);
}

/* The wire layout is little-endian whatever the host. */
static void test_hdr_byte_layout(void)
{
    static const uint8_t want[FRAME_HDR_SIZE] = {
        0x0C, 0x0B, 0x0A, 0x00,     /* len */
        FRAME_ERROR, 0x01,          /* type, flags */
        0xF7, 0x01,                 /* status 503 */
        0x04, 0x03, 0x02, 0x01,     /* job */
        0xD4, 0xC3, 0xB2, 0xA1,     /* gen */
    };
    uint8_t buf[FRAME_HDR_SIZE];
    struct frame f;

    ft_sample(&f, FRAME_ERROR, 0x000A0B0Cu);
    frame_encode_hdr(buf, &f);
    CU_ASSERT_EQUAL(memcmp(buf, want, FRAME_HDR_SIZE), 0);
}

static void test_every_type(void)
{
    uint8_t buf[FRAME_HDR_SIZE];
    struct frame in, out;

    for (int t = FRAME_HEAD; t < FRAME_TYPE_MAX; t++) {
        ft_sample(&in, (uint8_t)t, 0);
        frame_encode_hdr(buf, &in);
        CU_ASSERT_EQUAL(frame_decode(buf, sizeof(buf), &out),
                        FRAME_HDR_SIZE);
        CU_ASSERT_EQUAL(out.type, t);
        CU_ASSERT_EQUAL(out.len, 0);
    }
}

static void test_needs_more(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame in, out;
    size_t total;

    ft_sample(&in, FRAME_CHUNK, sizeof(FT_PAYLOAD) - 1);
    total = ft_build(buf, &in, FT_PAYLOAD);
    for (size_t len = 0; len < total; len++)
        CU_ASSERT_EQUAL(frame_decode(buf, len, &out), 0);
    CU_ASSERT_EQUAL(frame_decode(buf, total, &out), (int)total);
}

static void test_bad_type(void)
{
    static const uint8_t bad[] = { 0, FRAME_TYPE_MAX, FRAME_TYPE_MAX + 1,
                                   0xFF };
    uint8_t buf[FRAME_HDR_SIZE];
    struct frame in, out;

    for (size_t i = 0; i < sizeof(bad); i++) {
        ft_sample(&in, bad[i], 0);
        frame_encode_hdr(buf, &in);
        CU_ASSERT_EQUAL(frame_decode(buf, sizeof(buf), &out), -1);
    }
}

static void test_payload_limit(void)
{
    uint8_t hdr[FRAME_HDR_SIZE];
    uint8_t *big;
    struct frame in, out;

    ft_sample(&in, FRAME_CHUNK, FRAME_MAX_PAYLOAD + 1);
    frame_encode_hdr(hdr, &in);
    CU_ASSERT_EQUAL(frame_decode(hdr, sizeof(hdr), &out), -1);
    ft_sample(&in, FRAME_CHUNK, UINT32_MAX);
    frame_encode_hdr(hdr, &in);
    CU_ASSERT_EQUAL(frame_decode(hdr, sizeof(hdr), &out), -1);

    /* Exactly the limit is fine: more needed, then whole. */
    ft_sample(&in, FRAME_CHUNK, FRAME_MAX_PAYLOAD);
    frame_encode_hdr(hdr, &in);
    CU_ASSERT_EQUAL(frame_decode(hdr, sizeof(hdr), &out), 0);
    big = calloc(1, FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memcpy(big, hdr, FRAME_HDR_SIZE);
    CU_ASSERT_EQUAL(frame_decode(big, FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD,
                                 &out), (int)(FRAME_HDR_SIZE +
                                              FRAME_MAX_PAYLOAD));
    CU_ASSERT_EQUAL(frame_decode(big, FRAME_HDR_SIZE + FRAME_MAX_PAYLOAD - 1,
                                 &out), 0);
    free(big);
}

/* Two frames back to back decode one after the other. */
static void test_stream_of_frames(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame a, b, out;
    size_t first, second;
    int n;

    ft_sample(&a, FRAME_HEAD, 3);
    ft_sample(&b, FRAME_END, sizeof(FT_PAYLOAD) - 1);
    b.job = 9;
    first = ft_build(buf, &a, "abc");
    second = ft_build(buf + first, &b, FT_PAYLOAD);
    n = frame_decode(buf, first + second, &out);
    CU_ASSERT_EQUAL_FATAL(n, (int)first);
    CU_ASSERT_EQUAL(out.type, FRAME_HEAD);
    n = frame_decode(buf + n, first + second - (size_t)n, &out);
    CU_ASSERT_EQUAL(n, (int)second);
    CU_ASSERT_EQUAL(out.type, FRAME_END);
    CU_ASSERT_EQUAL(out.job, 9);
}

static void ft_meta_sample(struct frame_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->attempts = UINT16_MAX;
    m->prompt_tokens = 0x01020304u;
    m->completion_tokens = 7;
    m->target = FT_TARGET;
    m->target_len = (uint16_t)(sizeof(FT_TARGET) - 1);
    m->rest = (const uint8_t *)FT_REST;
    m->rest_len = sizeof(FT_REST) - 1;
}

static void test_meta_round_trip(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame_meta in, out;
    size_t size;

    ft_meta_sample(&in);
    size = frame_meta_size(&in);
    CU_ASSERT_EQUAL(size, FRAME_META_FIXED + in.target_len + in.rest_len);
    CU_ASSERT_EQUAL(frame_meta_encode(buf, size, &in), (int)size);
    memset(&out, 0, sizeof(out));
    CU_ASSERT_EQUAL_FATAL(frame_meta_decode(buf, size, &out), 0);
    CU_ASSERT_EQUAL(out.attempts, in.attempts);
    CU_ASSERT_EQUAL(out.prompt_tokens, in.prompt_tokens);
    CU_ASSERT_EQUAL(out.completion_tokens, in.completion_tokens);
    CU_ASSERT_EQUAL_FATAL(out.target_len, in.target_len);
    CU_ASSERT_PTR_EQUAL(out.target, (const char *)buf + FRAME_META_FIXED);
    CU_ASSERT_EQUAL(memcmp(out.target, FT_TARGET, out.target_len), 0);
    CU_ASSERT_EQUAL_FATAL(out.rest_len, in.rest_len);
    CU_ASSERT_EQUAL(memcmp(out.rest, FT_REST, out.rest_len), 0);
}

static void test_meta_empty(void)
{
    uint8_t buf[FRAME_META_FIXED];
    struct frame_meta in, out;

    memset(&in, 0, sizeof(in));
    in.completion_tokens = 5;
    CU_ASSERT_EQUAL(frame_meta_size(&in), FRAME_META_FIXED);
    CU_ASSERT_EQUAL(frame_meta_encode(buf, sizeof(buf), &in),
                    FRAME_META_FIXED);
    CU_ASSERT_EQUAL_FATAL(frame_meta_decode(buf, sizeof(buf), &out), 0);
    CU_ASSERT_EQUAL(out.completion_tokens, 5);
    CU_ASSERT_EQUAL(out.target_len, 0);
    CU_ASSERT_EQUAL(out.rest_len, 0);
}

static void test_meta_decode_short(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame_meta in, out;
    int size;

    ft_meta_sample(&in);
    size = frame_meta_encode(buf, sizeof(buf), &in);
    CU_ASSERT_FATAL(size > 0);
    for (size_t len = 0; len < FRAME_META_FIXED; len++)
        CU_ASSERT_EQUAL(frame_meta_decode(buf, len, &out), -1);
    /* Cut inside the target: its length now runs past the payload. */
    for (size_t len = FRAME_META_FIXED;
         len < FRAME_META_FIXED + (size_t)in.target_len; len++)
        CU_ASSERT_EQUAL(frame_meta_decode(buf, len, &out), -1);
    /* Cut inside rest: still well formed, with a shorter rest. */
    CU_ASSERT_EQUAL(frame_meta_decode(buf, (size_t)size - 1, &out), 0);
    CU_ASSERT_EQUAL(out.rest_len, in.rest_len - 1);
}

static void test_meta_target_len_lies(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame_meta in, out;
    int size;

    ft_meta_sample(&in);
    size = frame_meta_encode(buf, sizeof(buf), &in);
    CU_ASSERT_FATAL(size > 0);
    buf[FT_TARGET_LEN_AT] = 0xFF;       /* target_len = 0xFFFF */
    buf[FT_TARGET_LEN_AT + 1] = 0xFF;
    CU_ASSERT_EQUAL(frame_meta_decode(buf, (size_t)size, &out), -1);
    /* One more than the bytes after the fixed part. */
    buf[FT_TARGET_LEN_AT] = (uint8_t)(size - FRAME_META_FIXED + 1);
    buf[FT_TARGET_LEN_AT + 1] = 0;
    CU_ASSERT_EQUAL(frame_meta_decode(buf, (size_t)size, &out), -1);
    /* Exactly all of them: a target and no rest. */
    buf[FT_TARGET_LEN_AT] = (uint8_t)(size - FRAME_META_FIXED);
    CU_ASSERT_EQUAL(frame_meta_decode(buf, (size_t)size, &out), 0);
    CU_ASSERT_EQUAL(out.rest_len, 0);
}

static void test_meta_encode_short_cap(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame_meta in;
    size_t size;

    ft_meta_sample(&in);
    size = frame_meta_size(&in);
    memset(buf, FT_GUARD, sizeof(buf));
    CU_ASSERT_EQUAL(frame_meta_encode(buf, size - 1, &in), -1);
    CU_ASSERT_EQUAL(frame_meta_encode(buf, 0, &in), -1);
    CU_ASSERT_EQUAL(frame_meta_encode(buf, FRAME_META_FIXED, &in), -1);
    for (size_t i = 0; i < sizeof(buf); i++)
        CU_ASSERT_EQUAL(buf[i], FT_GUARD);
}

/* The meta's fixed part, little-endian: attempts, prompt_tokens,
 * completion_tokens, target_len; then the target and the rest. */
static void test_meta_byte_layout(void)
{
    static const uint8_t want[FRAME_META_FIXED + 2] = {
        0x03, 0x00,                 /* attempts 3 */
        0x04, 0x03, 0x02, 0x01,     /* prompt_tokens */
        0x07, 0x00, 0x00, 0x00,     /* completion_tokens 7 */
        0x02, 0x00,                 /* target_len 2 */
        'a', 'b',
    };
    uint8_t buf[FT_BUF_MAX];
    struct frame_meta in;

    memset(&in, 0, sizeof(in));
    in.attempts = 3;
    in.prompt_tokens = 0x01020304u;
    in.completion_tokens = 7;
    in.target = "ab";
    in.target_len = 2;
    CU_ASSERT_EQUAL(frame_meta_encode(buf, sizeof(buf), &in),
                    (int)sizeof(want));
    CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
}

/* What the master treats as a broken worker: meta shorter than its fixed
 * part (an END or ERROR with an empty payload) or a target running past
 * it; a HEAD/END/ERROR header alone decodes (its meta is checked next). */
static void test_meta_malformed_end(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame f, out;
    struct frame_meta meta;

    ft_sample(&f, FRAME_END, 0);
    frame_encode_hdr(buf, &f);
    CU_ASSERT_EQUAL_FATAL(frame_decode(buf, FRAME_HDR_SIZE, &out),
                          FRAME_HDR_SIZE);
    CU_ASSERT_EQUAL(frame_meta_decode(out.payload, out.len, &meta), -1);
    memset(buf + FRAME_HDR_SIZE, 0, FRAME_META_FIXED);
    buf[FRAME_HDR_SIZE + FT_TARGET_LEN_AT] = 1;   /* one byte, none there */
    ft_sample(&f, FRAME_ERROR, FRAME_META_FIXED);
    frame_encode_hdr(buf, &f);
    CU_ASSERT_EQUAL_FATAL(frame_decode(buf, FRAME_HDR_SIZE + FRAME_META_FIXED,
                                       &out),
                          FRAME_HDR_SIZE + FRAME_META_FIXED);
    CU_ASSERT_EQUAL(frame_meta_decode(out.payload, out.len, &meta), -1);
}

/* An ANSWER frame: its meta, then the body as the meta's rest; the
 * prefix size is read from the meta's fixed part alone. */
static void test_answer_frame(void)
{
    uint8_t buf[FT_BUF_MAX];
    struct frame_meta m = { 2, 7, 9, (uint16_t)strlen(FT_TARGET), FT_TARGET,
                            strlen(FT_PAYLOAD), (const uint8_t *)FT_PAYLOAD };
    struct frame f, out;
    struct frame_meta got;
    int n = frame_meta_encode(buf + FRAME_HDR_SIZE,
                              sizeof(buf) - FRAME_HDR_SIZE, &m);

    CU_ASSERT_FATAL(n > 0);
    ft_sample(&f, FRAME_ANSWER, (uint32_t)n);
    f.flags = 0;
    f.status = 200;
    frame_encode_hdr(buf, &f);
    CU_ASSERT_EQUAL_FATAL(frame_decode(buf, FRAME_HDR_SIZE + (size_t)n, &out),
                          FRAME_HDR_SIZE + n);
    CU_ASSERT_EQUAL(out.type, FRAME_ANSWER);
    CU_ASSERT_EQUAL(out.status, 200);
    /* Only the fixed part in hand: the prefix is fixed part + target. */
    CU_ASSERT_EQUAL(frame_meta_prefix(out.payload, FRAME_META_FIXED, out.len),
                    (int)(FRAME_META_FIXED + strlen(FT_TARGET)));
    CU_ASSERT_EQUAL(frame_meta_prefix(out.payload, FRAME_META_FIXED - 1,
                                      out.len), 0);
    CU_ASSERT_EQUAL_FATAL(frame_meta_decode(out.payload, out.len, &got), 0);
    CU_ASSERT_EQUAL(got.attempts, 2);
    CU_ASSERT_EQUAL(got.prompt_tokens, 7);
    CU_ASSERT_EQUAL(got.completion_tokens, 9);
    CU_ASSERT_EQUAL(got.rest_len, strlen(FT_PAYLOAD));
    CU_ASSERT_EQUAL(memcmp(got.rest, FT_PAYLOAD, got.rest_len), 0);
    /* The meta prefix alone decodes too, with no rest. */
    CU_ASSERT_EQUAL_FATAL(frame_meta_decode(out.payload, FRAME_META_FIXED +
                                            strlen(FT_TARGET), &got), 0);
    CU_ASSERT_EQUAL(got.rest_len, 0);
    CU_ASSERT_EQUAL(got.target_len, strlen(FT_TARGET));
}

/* A payload shorter than the fixed part, or a target running past the
 * payload: no prefix (the master kills the worker). */
static void test_answer_prefix_bad(void)
{
    uint8_t meta[FRAME_META_FIXED] = { 0 };

    CU_ASSERT_EQUAL(frame_meta_prefix(meta, sizeof(meta),
                                      FRAME_META_FIXED - 1), -1);
    CU_ASSERT_EQUAL(frame_meta_prefix(meta, sizeof(meta), FRAME_META_FIXED),
                    FRAME_META_FIXED);
    meta[FT_TARGET_LEN_AT] = 5;
    CU_ASSERT_EQUAL(frame_meta_prefix(meta, sizeof(meta),
                                      FRAME_META_FIXED + 4), -1);
    CU_ASSERT_EQUAL(frame_meta_prefix(meta, sizeof(meta),
                                      FRAME_META_FIXED + 5),
                    FRAME_META_FIXED + 5);
}

static const CU_TestInfo frame_tests[] = {
    { "header round trip", test_hdr_round_trip },
    { "header byte layout", test_hdr_byte_layout },
    { "every valid type decodes", test_every_type },
    { "needs more for every prefix", test_needs_more },
    { "bad types rejected", test_bad_type },
    { "payload length limit", test_payload_limit },
    { "frames back to back", test_stream_of_frames },
    { "meta round trip", test_meta_round_trip },
    { "meta without target or rest", test_meta_empty },
    { "meta decode short input", test_meta_decode_short },
    { "meta target_len beyond payload", test_meta_target_len_lies },
    { "meta encode with short cap", test_meta_encode_short_cap },
    { "meta byte layout", test_meta_byte_layout },
    { "malformed END/ERROR meta", test_meta_malformed_end },
    { "ANSWER frame: meta prefix and body", test_answer_frame },
    { "ANSWER frame: bad meta prefix", test_answer_prefix_bad },
    CU_TEST_INFO_NULL
};

int register_frame_tests(void)
{
    return unit_add_suite("frame", frame_tests);
}
