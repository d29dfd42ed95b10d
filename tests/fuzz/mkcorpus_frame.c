/* mkcorpus_frame.c - writes the seed inputs of fuzz_frame into the
 * directory named by argv[1], encoded with the real codec: each kind of
 * frame alone, a worker's whole answer as one stream, and streams that
 * end cut or run into a bad header. Run by mkcorpus.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define MK_BUF_MAX   4096
#define MK_PATH_MAX  512

struct mk_stream {
    uint8_t buf[MK_BUF_MAX];
    size_t len;
};

/* Appends one frame: header, then payload (may be NULL when len is 0). */
static void mk_frame(struct mk_stream *s, uint8_t type, uint8_t flags,
                     uint16_t status, uint32_t job, uint32_t gen,
                     const void *payload, size_t len)
{
    struct frame f = { (uint32_t)len, type, flags, status, job, gen, NULL };

    if (s->len + FRAME_HDR_SIZE + len > sizeof(s->buf)) {
        fprintf(stderr, "mkcorpus_frame: stream too long\n");
        exit(1);
    }
    frame_encode_hdr(s->buf + s->len, &f);
    if (len > 0)
        memcpy(s->buf + s->len + FRAME_HDR_SIZE, payload, len);
    s->len += FRAME_HDR_SIZE + len;
}

/* Appends a frame whose payload is the meta m. */
static void mk_meta_frame(struct mk_stream *s, uint8_t type, uint8_t flags,
                          uint16_t status, uint32_t job,
                          const struct frame_meta *m)
{
    uint8_t meta[MK_BUF_MAX];
    int n = frame_meta_encode(meta, sizeof(meta), m);

    if (n < 0) {
        fprintf(stderr, "mkcorpus_frame: meta too long\n");
        exit(1);
    }
    mk_frame(s, type, flags, status, job, 1, meta, (size_t)n);
}

static void mk_write(const char *dir, const char *name, const void *p,
                     size_t len)
{
    char path[MK_PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static struct frame_meta mk_meta(const char *target, const char *rest)
{
    struct frame_meta m = {
        .attempts = 1, .prompt_tokens = 12, .completion_tokens = 34,
        .target_len = (uint16_t)strlen(target),
        .target = target, .rest_len = rest ? strlen(rest) : 0,
        .rest = (const uint8_t *)rest
    };

    return m;
}

int main(int argc, char **argv)
{
    static const char chunk[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    static const char error_body[] =
        "{\"error\":{\"message\":\"upstream timed out\",\"type\":"
        "\"timeout_error\",\"code\":\"timeout\"}}";
    static const char plain_body[] =
        "{\"object\":\"chat.completion\",\"choices\":[{\"message\":"
        "{\"role\":\"assistant\",\"content\":\"Hi\"}}]}";
    struct frame_meta head = mk_meta("local/mock-small", NULL);
    struct frame_meta end = mk_meta("local/mock-small", NULL);
    struct frame_meta err = mk_meta("openai/gpt-4o-mini", error_body);
    struct frame_meta empty = mk_meta("", NULL);
    struct frame_meta answer = mk_meta("local/mock-small", plain_body);
    struct mk_stream s;
    const char *dir;

    if (argc != 2) {
        fprintf(stderr, "usage: mkcorpus_frame DIR\n");
        return 2;
    }
    dir = argv[1];
    err.attempts = 4;

    memset(&s, 0, sizeof(s));
    mk_meta_frame(&s, FRAME_HEAD, FRAME_F_STREAM, 200, 3, &head);
    mk_write(dir, "head_stream", s.buf, s.len);

    memset(&s, 0, sizeof(s));
    mk_frame(&s, FRAME_CHUNK, 0, 0, 3, 1, chunk, sizeof(chunk) - 1);
    mk_write(dir, "chunk_sse", s.buf, s.len);

    memset(&s, 0, sizeof(s));
    mk_meta_frame(&s, FRAME_END, 0, 200, 3, &end);
    mk_write(dir, "end_meta", s.buf, s.len);

    memset(&s, 0, sizeof(s));
    mk_meta_frame(&s, FRAME_ERROR, 0, 504, 9, &err);
    mk_write(dir, "error_body", s.buf, s.len);

    memset(&s, 0, sizeof(s));
    mk_meta_frame(&s, FRAME_ANSWER, 0, 200, 3, &answer);
    mk_write(dir, "answer_plain", s.buf, s.len);

    memset(&s, 0, sizeof(s));
    mk_meta_frame(&s, FRAME_END, 0, 200, 0, &empty);
    mk_write(dir, "end_empty_target", s.buf, s.len);

    memset(&s, 0, sizeof(s));
    mk_frame(&s, FRAME_CANCEL, 0, 0, 5, 2, NULL, 0);
    mk_frame(&s, FRAME_SHUTDOWN, 0, 0, 0, 0, NULL, 0);
    mk_write(dir, "cancel_shutdown", s.buf, s.len);

    /* A whole streamed answer, as the master reads it. */
    memset(&s, 0, sizeof(s));
    mk_meta_frame(&s, FRAME_HEAD, FRAME_F_STREAM, 200, 3, &head);
    mk_frame(&s, FRAME_CHUNK, 0, 0, 3, 1, chunk, sizeof(chunk) - 1);
    mk_frame(&s, FRAME_CHUNK, 0, 0, 3, 1, "data: [DONE]\n\n", 14);
    mk_meta_frame(&s, FRAME_END, 0, 200, 3, &end);
    mk_write(dir, "stream_answer", s.buf, s.len);
    /* The same stream cut inside its last frame: wait for more. */
    mk_write(dir, "stream_cut", s.buf, s.len - 5);

    /* A good frame, then one of an unknown type. */
    memset(&s, 0, sizeof(s));
    mk_frame(&s, FRAME_CHUNK, 0, 0, 1, 1, "x", 1);
    mk_frame(&s, FRAME_TYPE_MAX, 0, 0, 1, 1, NULL, 0);
    mk_write(dir, "bad_type", s.buf, s.len);

    /* A header announcing more than FRAME_MAX_PAYLOAD. */
    memset(&s, 0, sizeof(s));
    mk_frame(&s, FRAME_CHUNK, 0, 0, 1, 1, NULL, 0);
    s.buf[2] = 0x20;           /* len = 0x00200000 > 1 MiB */
    mk_write(dir, "oversized", s.buf, s.len);
    return 0;
}
