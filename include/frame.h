/* frame.h - the worker<->master frame protocol over each worker's
 * socketpair. A frame is a 16-byte header (payload length, type, flags,
 * HTTP status, job index, job generation; little-endian) and a payload.
 * HEAD, END and ERROR carry a "meta" payload: the attempts made, the
 * tokens the answer used (END: the request's log line and /metrics), the
 * target name and, for ERROR, the OpenAI-shaped error body. ANSWER is a
 * whole plain answer in one frame (HEAD + CHUNK + END): its meta's rest
 * is the answer's body, which the master relays to the client from its
 * input buffer (frame_meta_prefix: the meta without the body). CAPTURE
 * carries raw bytes (a captured attempt's JSON), no meta. Meta that
 * does not decode is as bad as a bad header: the master kills the
 * worker. Pure codec, no I/O. */
#ifndef RCC_FRAME_H
#define RCC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_SIZE     16
#define FRAME_MAX_PAYLOAD  (1u << 20)
/* Meta bytes before the target name: attempts (u16), prompt_tokens
 * (u32), completion_tokens (u32), target_len (u16). */
#define FRAME_META_FIXED   12

enum frame_type {
    /* worker -> master */
    FRAME_HEAD = 1,        /* status and target: the answer starts */
    FRAME_CHUNK,           /* answer bytes (SSE events when streaming) */
    FRAME_END,             /* answer complete; meta has the metrics */
    FRAME_ERROR,           /* failed; status + OpenAI error body in meta */
    FRAME_CAPTURE,         /* a captured job's attempt: JSON, in pieces
                              (FRAME_F_MORE on all but the last); sent
                              only for jobs with SHM_JOB_CAPTURE */
    FRAME_ANSWER,          /* a whole plain answer: status, meta and the
                              body as the meta's rest; ends the job */
    /* master -> worker */
    FRAME_CANCEL,          /* client gone or deadline passed: abort job */
    FRAME_SHUTDOWN,        /* finish in-flight jobs, take no more, exit */
    FRAME_PAUSE,           /* the client is slow: stop reading upstream */
    FRAME_RESUME,          /* it drained: read upstream again */
    /* both ways */
    FRAME_OAUTH,           /* cluster mode's OAuth refresh lock and
                              tokens: status is an enum frame_oauth_op,
                              job the provider's index */
    FRAME_TYPE_MAX
};

enum frame_flags {
    FRAME_F_STREAM = 1u << 0,   /* HEAD: the answer is an SSE stream */
    FRAME_F_MORE = 1u << 1      /* CAPTURE: more pieces of it follow */
};

/* FRAME_OAUTH's status. A worker asks before refreshing a provider's
 * tokens and says when it is done; the master answers each ask once. */
enum frame_oauth_op {
    FRAME_OAUTH_ASK = 1,       /* w->m: may I refresh? (no payload) */
    FRAME_OAUTH_RELEASE,       /* w->m: my refresh is over (no payload) */
    FRAME_OAUTH_GRANTED,       /* m->w: yes, the cluster's lock is ours */
    FRAME_OAUTH_BUSY,          /* m->w: another instance refreshes, or
                                  has newer tokens: wait for the file */
    FRAME_OAUTH_ALONE,         /* m->w: no Redis: go on with the flock */
    FRAME_OAUTH_TOKENS         /* m->w: newer tokens from the cluster,
                                  their file text as payload: save them */
};

struct frame {
    uint32_t len;              /* payload bytes */
    uint8_t type;
    uint8_t flags;
    uint16_t status;
    uint32_t job;
    uint32_t gen;
    const uint8_t *payload;    /* into the decoded buffer */
};

struct frame_meta {
    uint16_t attempts;
    uint32_t prompt_tokens;    /* END: the upstream's usage; 0: none */
    uint32_t completion_tokens;
    uint16_t target_len;
    const char *target;        /* not NUL-terminated */
    size_t rest_len;
    const uint8_t *rest;       /* ERROR: the error body */
};

/* Writes f's header (len, type, flags, status, job, gen) into out. */
void frame_encode_hdr(uint8_t out[FRAME_HDR_SIZE], const struct frame *f);

/* Decodes one frame from buf. Returns its total size (header + payload)
 * when whole, 0 when more bytes are needed, -1 when malformed (unknown
 * type, oversized payload): the stream cannot be trusted after that. */
int frame_decode(const uint8_t *buf, size_t len, struct frame *f);

/* Size of m encoded (fixed part, target, rest). */
size_t frame_meta_size(const struct frame_meta *m);
/* Encodes m into out[cap]; returns bytes written or -1 if cap is short. */
int frame_meta_encode(uint8_t *out, size_t cap, const struct frame_meta *m);
/* Decodes a meta payload; pointers refer into p. 0 or -1 if malformed. */
int frame_meta_decode(const uint8_t *p, size_t len, struct frame_meta *m);
/* Size of the meta at the start of a payload of len bytes, without its
 * rest (FRAME_META_FIXED + target), read from its first FRAME_META_FIXED
 * bytes at p (avail of them there): 0 when fewer than that are there, -1
 * when the payload is too short for it. */
int frame_meta_prefix(const uint8_t *p, size_t avail, size_t len);

#endif
