/* arena.h - the body arena: request bodies live in the shared segment in
 * runs of fixed-size blocks tracked by a bitmap, so any process can read
 * a body by offset. Pure: the caller holds the segment lock. */
#ifndef RCC_ARENA_H
#define RCC_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define ARENA_BLOCK 1024       /* bytes per block */

/* The part stored in the segment. */
struct arena {
    uint64_t blocks;           /* total */
    uint64_t used;             /* allocated */
    uint64_t hint;             /* every block below it is used */
};

struct arena_view {
    struct arena *hdr;
    uint64_t *bitmap;          /* one bit per block, 1 = used */
    uint8_t *data;             /* blocks * ARENA_BLOCK bytes */
};

/* Bytes of bitmap needed for a data area of data_bytes. */
size_t arena_bitmap_bytes(uint64_t blocks);
void arena_init(struct arena_view *a, uint64_t blocks);
/* Reserves room for len bytes (len > 0) in the lowest free run that
 * holds it; its offset in *off. -1: no such run. */
int arena_alloc(struct arena_view *a, size_t len, uint64_t *off);
/* Releases what arena_alloc(len) returned at off. */
void arena_free(struct arena_view *a, uint64_t off, size_t len);
/* Marks a run used without searching (rebuilding after a crash). */
void arena_mark(struct arena_view *a, uint64_t off, size_t len);

#endif
