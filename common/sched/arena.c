/* arena.c - first-fit block allocator over a bitmap. Bodies are placed
 * as low in the arena as they fit, so the pages a busy daemon touches
 * follow what is in flight, not the arena's size; the hint (every block
 * below it is used) lets the search skip the packed low end. */
#include "arena.h"

#include <string.h>

#define ARENA_WORD_BITS 64

static uint64_t arena_blocks_for(size_t len)
{
    return (len + ARENA_BLOCK - 1) / ARENA_BLOCK;
}

static int arena_bit(const struct arena_view *a, uint64_t b)
{
    return (int)((a->bitmap[b / ARENA_WORD_BITS] >> (b % ARENA_WORD_BITS)) &
                 1u);
}

static void arena_set_run(struct arena_view *a, uint64_t first, uint64_t n,
                          int used)
{
    for (uint64_t b = first; b < first + n; b++) {
        uint64_t mask = 1ULL << (b % ARENA_WORD_BITS);

        if (used)
            a->bitmap[b / ARENA_WORD_BITS] |= mask;
        else
            a->bitmap[b / ARENA_WORD_BITS] &= ~mask;
    }
}

size_t arena_bitmap_bytes(uint64_t blocks)
{
    return (size_t)((blocks + ARENA_WORD_BITS - 1) / ARENA_WORD_BITS) *
           sizeof(uint64_t);
}

void arena_init(struct arena_view *a, uint64_t blocks)
{
    a->hdr->blocks = blocks;
    a->hdr->used = 0;
    a->hdr->hint = 0;
    memset(a->bitmap, 0, arena_bitmap_bytes(blocks));
}

/* Searches [from, to) for n free blocks in a row; the first free block
 * seen (to when there is none) in *lowest_free. */
static int arena_search(const struct arena_view *a, uint64_t from,
                        uint64_t to, uint64_t n, uint64_t *first,
                        uint64_t *lowest_free)
{
    uint64_t run = 0;

    *lowest_free = to;
    for (uint64_t b = from; b < to; b++) {
        /* A full word cannot hold the start or middle of a run. */
        if (b % ARENA_WORD_BITS == 0 &&
            a->bitmap[b / ARENA_WORD_BITS] == UINT64_MAX) {
            run = 0;
            b += ARENA_WORD_BITS - 1;
            continue;
        }
        if (arena_bit(a, b)) {
            run = 0;
            continue;
        }
        if (*lowest_free == to)
            *lowest_free = b;
        if (++run == n) {
            *first = b + 1 - n;
            return 0;
        }
    }
    return -1;
}

int arena_alloc(struct arena_view *a, size_t len, uint64_t *off)
{
    uint64_t n = arena_blocks_for(len ? len : 1), first, lowest_free;
    uint64_t hint = a->hdr->hint < a->hdr->blocks ? a->hdr->hint : 0;

    if (n > a->hdr->blocks - a->hdr->used)
        return -1;
    if (arena_search(a, hint, a->hdr->blocks, n, &first, &lowest_free) < 0) {
        a->hdr->hint = lowest_free;
        return -1;
    }
    arena_set_run(a, first, n, 1);
    a->hdr->used += n;
    /* Every block below the hint stays used: the run just taken extends
     * the packed low end only when it starts at its first free block. */
    a->hdr->hint = first == lowest_free ? first + n : lowest_free;
    *off = first * ARENA_BLOCK;
    return 0;
}

void arena_free(struct arena_view *a, uint64_t off, size_t len)
{
    uint64_t n = arena_blocks_for(len ? len : 1);

    arena_set_run(a, off / ARENA_BLOCK, n, 0);
    a->hdr->used -= n;
    if (off / ARENA_BLOCK < a->hdr->hint)
        a->hdr->hint = off / ARENA_BLOCK;
}

void arena_mark(struct arena_view *a, uint64_t off, size_t len)
{
    uint64_t n = arena_blocks_for(len ? len : 1);

    arena_set_run(a, off / ARENA_BLOCK, n, 1);
    a->hdr->used += n;
}
