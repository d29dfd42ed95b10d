/* frame.c - encodes and decodes worker<->master frames with explicit
 * little-endian fields, validating every length before use. */
#include "frame.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

void frame_encode_hdr(uint8_t out[FRAME_HDR_SIZE], const struct frame *f)
{
    put32(out, f->len);
    out[4] = f->type;
    out[5] = f->flags;
    put16(out + 6, f->status);
    put32(out + 8, f->job);
    put32(out + 12, f->gen);
}

int frame_decode(const uint8_t *buf, size_t len, struct frame *f)
{
    if (len < FRAME_HDR_SIZE)
        return 0;
    f->len = get32(buf);
    f->type = buf[4];
    f->flags = buf[5];
    f->status = get16(buf + 6);
    f->job = get32(buf + 8);
    f->gen = get32(buf + 12);
    if (f->type == 0 || f->type >= FRAME_TYPE_MAX ||
        f->len > FRAME_MAX_PAYLOAD)
        return -1;
    if (len - FRAME_HDR_SIZE < f->len)
        return 0;
    f->payload = buf + FRAME_HDR_SIZE;
    return (int)(FRAME_HDR_SIZE + f->len);
}

size_t frame_meta_size(const struct frame_meta *m)
{
    return FRAME_META_FIXED + m->target_len + m->rest_len;
}

int frame_meta_encode(uint8_t *out, size_t cap, const struct frame_meta *m)
{
    size_t n = frame_meta_size(m);

    if (n > cap)
        return -1;
    put16(out, m->attempts);
    put32(out + 2, m->prompt_tokens);
    put32(out + 6, m->completion_tokens);
    put16(out + 10, m->target_len);
    if (m->target_len > 0)
        memcpy(out + FRAME_META_FIXED, m->target, m->target_len);
    if (m->rest_len > 0)
        memcpy(out + FRAME_META_FIXED + m->target_len, m->rest, m->rest_len);
    return (int)n;
}

int frame_meta_decode(const uint8_t *p, size_t len, struct frame_meta *m)
{
    if (len < FRAME_META_FIXED)
        return -1;
    memset(m, 0, sizeof(*m));
    m->attempts = get16(p);
    m->prompt_tokens = get32(p + 2);
    m->completion_tokens = get32(p + 6);
    m->target_len = get16(p + 10);
    if (len - FRAME_META_FIXED < m->target_len)
        return -1;
    m->target = (const char *)p + FRAME_META_FIXED;
    m->rest = p + FRAME_META_FIXED + m->target_len;
    m->rest_len = len - FRAME_META_FIXED - m->target_len;
    return 0;
}

int frame_meta_prefix(const uint8_t *p, size_t avail, size_t len)
{
    size_t n;

    if (len < FRAME_META_FIXED)
        return -1;
    if (avail < FRAME_META_FIXED)
        return 0;
    n = FRAME_META_FIXED + (size_t)get16(p + 10);
    return n <= len ? (int)n : -1;
}
