/* test_arena.c - the body arena: block rounding, full and fragmented
 * arenas, runs across 64-bit bitmap words, arena_mark, and a long random
 * run of allocations and frees checked against a block-by-block model:
 * no overlap, all in bounds, and "full" only when no free run of the
 * needed length exists. Each live allocation is filled with its own byte
 * so an overlap would also show as corrupted data. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "arena.h"
#include "unit.h"

#define ART_BLOCKS        200      /* not a multiple of 64 on purpose */
#define ART_WORD_BITS     64
#define ART_BITMAP_WORDS  ((ART_BLOCKS + ART_WORD_BITS - 1) / ART_WORD_BITS)
#define ART_RANDOM_OPS    6000
#define ART_RANDOM_SEED   0x2545F4914F6CDD1DULL
#define ART_MAX_LIVE      64
#define ART_MAX_ALLOC     (12 * ARENA_BLOCK + 7)
#define ART_LOW_LIVE      4
#define ART_LOW_ROUNDS    1000

struct art {
    struct arena hdr;
    uint64_t bitmap[ART_BITMAP_WORDS];
    uint8_t *data;
    struct arena_view view;
};

static int art_init(struct art *t, uint64_t blocks)
{
    memset(t->bitmap, 0xFF, sizeof(t->bitmap));   /* arena_init clears */
    t->data = calloc(ART_BLOCKS, ARENA_BLOCK);
    if (t->data == NULL)
        return -1;
    t->view.hdr = &t->hdr;
    t->view.bitmap = t->bitmap;
    t->view.data = t->data;
    arena_init(&t->view, blocks);
    return 0;
}

static void art_free(struct art *t)
{
    free(t->data);
    t->data = NULL;
}

static int art_bit(const struct art *t, uint64_t block)
{
    return (int)((t->bitmap[block / ART_WORD_BITS] >>
                  (block % ART_WORD_BITS)) & 1u);
}

static void test_bitmap_bytes(void)
{
    CU_ASSERT_EQUAL(arena_bitmap_bytes(0), 0);
    CU_ASSERT_EQUAL(arena_bitmap_bytes(1), 8);
    CU_ASSERT_EQUAL(arena_bitmap_bytes(64), 8);
    CU_ASSERT_EQUAL(arena_bitmap_bytes(65), 16);
    CU_ASSERT_EQUAL(arena_bitmap_bytes(ART_BLOCKS),
                    ART_BITMAP_WORDS * sizeof(uint64_t));
}

static void test_init(void)
{
    struct art t;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(t.hdr.blocks, ART_BLOCKS);
    CU_ASSERT_EQUAL(t.hdr.used, 0);
    for (uint64_t b = 0; b < ART_BLOCKS; b++)
        CU_ASSERT_EQUAL(art_bit(&t, b), 0);
    art_free(&t);
}

static void test_block_rounding(void)
{
    static const struct { size_t len; uint64_t blocks; } cases[] = {
        { 1, 1 }, { ARENA_BLOCK - 1, 1 }, { ARENA_BLOCK, 1 },
        { ARENA_BLOCK + 1, 2 }, { 3 * ARENA_BLOCK, 3 },
        { 0, 1 },          /* not a valid request; still one block */
    };
    struct art t;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t off, used = t.hdr.used;

        CU_ASSERT_EQUAL_FATAL(arena_alloc(&t.view, cases[i].len, &off), 0);
        CU_ASSERT_EQUAL(off % ARENA_BLOCK, 0);
        CU_ASSERT_EQUAL(t.hdr.used, used + cases[i].blocks);
        arena_free(&t.view, off, cases[i].len);
        CU_ASSERT_EQUAL(t.hdr.used, used);
        for (uint64_t b = 0; b < ART_BLOCKS; b++)
            CU_ASSERT_EQUAL(art_bit(&t, b), 0);
    }
    art_free(&t);
}

static void test_full(void)
{
    struct art t;
    uint64_t off, freed = 17 * ARENA_BLOCK;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    for (uint64_t b = 0; b < ART_BLOCKS; b++) {
        CU_ASSERT_EQUAL_FATAL(arena_alloc(&t.view, ARENA_BLOCK, &off), 0);
        CU_ASSERT_EQUAL(off, b * ARENA_BLOCK);
    }
    CU_ASSERT_EQUAL(t.hdr.used, ART_BLOCKS);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), -1);
    arena_free(&t.view, freed, ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 2 * ARENA_BLOCK, &off), -1);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 100, &off), 0);
    CU_ASSERT_EQUAL(off, freed);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), -1);
    art_free(&t);
}

static void test_too_large(void)
{
    struct art t;
    uint64_t off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, ART_BLOCKS * ARENA_BLOCK + 1, &off),
                    -1);
    CU_ASSERT_EQUAL(t.hdr.used, 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, ART_BLOCKS * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(t.hdr.used, ART_BLOCKS);
    arena_free(&t.view, off, ART_BLOCKS * ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.hdr.used, 0);

    /* Lengths whose block count would wrap around are refused. */
    CU_ASSERT_EQUAL(arena_alloc(&t.view, SIZE_MAX, &off), -1);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, SIZE_MAX - ARENA_BLOCK, &off), -1);
    CU_ASSERT_EQUAL(t.hdr.used, 0);

    /* A large run after a small one, then one block too many. */
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 150 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 50 * ARENA_BLOCK, &off), -1);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 49 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 151 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.hdr.used, ART_BLOCKS);
    art_free(&t);
}

/* Every other block free: half the arena is free, yet no two blocks in a
 * row are. */
static void test_fragmentation(void)
{
    struct art t;
    uint64_t off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    for (uint64_t b = 0; b < ART_BLOCKS; b++)
        CU_ASSERT_EQUAL_FATAL(arena_alloc(&t.view, ARENA_BLOCK, &off), 0);
    for (uint64_t b = 0; b < ART_BLOCKS; b += 2)
        arena_free(&t.view, b * ARENA_BLOCK, ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.hdr.used, ART_BLOCKS / 2);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, ARENA_BLOCK + 1, &off), -1);
    CU_ASSERT_EQUAL(t.hdr.used, ART_BLOCKS / 2);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off % (2 * ARENA_BLOCK), 0);
    CU_ASSERT_EQUAL(art_bit(&t, off / ARENA_BLOCK), 1);
    /* Freeing the used block at 101 joins 100..102 into one free run. */
    arena_free(&t.view, 101 * ARENA_BLOCK, ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 3 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 100 * ARENA_BLOCK);
    art_free(&t);
}

/* Runs crossing the boundary between bitmap words set and clear the
 * bits of both words. */
static void test_word_boundary(void)
{
    struct art t;
    uint64_t off, head;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 60 * ARENA_BLOCK, &head), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 8 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 60 * ARENA_BLOCK);
    for (uint64_t b = 60; b < 68; b++)
        CU_ASSERT_EQUAL(art_bit(&t, b), 1);
    CU_ASSERT_EQUAL(art_bit(&t, 68), 0);
    CU_ASSERT_EQUAL(t.bitmap[0], UINT64_MAX);
    CU_ASSERT_EQUAL(t.bitmap[1], 0xFULL);
    arena_free(&t.view, off, 8 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.bitmap[0], (1ULL << 60) - 1);
    CU_ASSERT_EQUAL(t.bitmap[1], 0);

    /* With blocks [0, 68) taken, 130 blocks span the rest of word 1,
     * all of word 2 and the start of word 3. */
    arena_free(&t.view, head, 60 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.hdr.used, 0);
    arena_mark(&t.view, 0, 68 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 130 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 68 * ARENA_BLOCK);
    arena_free(&t.view, 0, 68 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.bitmap[0], 0);
    CU_ASSERT_EQUAL(t.bitmap[1], ~0xFULL);
    CU_ASSERT_EQUAL(t.bitmap[2], UINT64_MAX);
    CU_ASSERT_EQUAL(t.bitmap[3], 0x3FULL);
    CU_ASSERT_EQUAL(t.hdr.used, 130);
    arena_free(&t.view, off, 130 * ARENA_BLOCK);
    for (int w = 0; w < ART_BITMAP_WORDS; w++)
        CU_ASSERT_EQUAL(t.bitmap[w], 0);
    art_free(&t);
}

/* Full words are skipped whole; a run may not start inside one. */
static void test_full_word_skip(void)
{
    struct art t;
    uint64_t w0, w1, off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 64 * ARENA_BLOCK, &w0), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 64 * ARENA_BLOCK, &w1), 0);
    CU_ASSERT_EQUAL(w1, 64 * ARENA_BLOCK);
    arena_free(&t.view, w0, 64 * ARENA_BLOCK);
    /* Free: [0, 64) and [128, 200): 64 and 72 blocks. */
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 100 * ARENA_BLOCK, &off), -1);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 72 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 128 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 65 * ARENA_BLOCK, &off), -1);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 64 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(t.hdr.used, ART_BLOCKS);
    art_free(&t);
}

/* The lowest run that fits is taken, wherever the last one went. */
static void test_lowest_run_first(void)
{
    struct art t;
    uint64_t a, b, off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 10 * ARENA_BLOCK, &a), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 185 * ARENA_BLOCK, &b), 0);
    arena_free(&t.view, a, 10 * ARENA_BLOCK);
    /* 5 free at the end, 10 at the start: 8 must come from the start. */
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 8 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 5 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 195 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 2 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 8 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), -1);
    art_free(&t);
}

/* A free run straddling the last allocation's end is found. */
static void test_run_across_hint(void)
{
    struct art t;
    uint64_t a, b, c, off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 50 * ARENA_BLOCK, &a), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 50 * ARENA_BLOCK, &b), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 100 * ARENA_BLOCK, &c), 0);
    arena_free(&t.view, b, 50 * ARENA_BLOCK);
    arena_free(&t.view, c, 100 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 120 * ARENA_BLOCK, &c), 0);
    CU_ASSERT_EQUAL(c, 50 * ARENA_BLOCK);
    arena_free(&t.view, a, 50 * ARENA_BLOCK);
    arena_free(&t.view, c, 120 * ARENA_BLOCK);
    /* Everything is free again: the whole arena is one run. */
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 200 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    art_free(&t);
}

/* Allocation and release in turn with a few bodies in flight stays in
 * the first blocks: the pages touched follow the load, not the arena's
 * size (next fit walked the whole arena). */
static void test_low_end_reused(void)
{
    struct art t;
    uint64_t live[ART_LOW_LIVE] = { 0 }, top = 0;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    for (int i = 0; i < ART_LOW_LIVE; i++)
        CU_ASSERT_EQUAL(arena_alloc(&t.view, 2 * ARENA_BLOCK, &live[i]), 0);
    for (int round = 0; round < ART_LOW_ROUNDS; round++) {
        int i = round % ART_LOW_LIVE;

        arena_free(&t.view, live[i], 2 * ARENA_BLOCK);
        CU_ASSERT_EQUAL(arena_alloc(&t.view, 2 * ARENA_BLOCK, &live[i]), 0);
        if (live[i] > top)
            top = live[i];
    }
    CU_ASSERT(top < 2 * ART_LOW_LIVE * ARENA_BLOCK);
    for (int i = 0; i < ART_LOW_LIVE; i++)
        arena_free(&t.view, live[i], 2 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(t.hdr.used, 0);
    CU_ASSERT_EQUAL(t.hdr.hint, 0);
    art_free(&t);
}

/* A failed search leaves the hint valid, and a free below it lowers it. */
static void test_hint_after_full(void)
{
    struct art t;
    uint64_t a, b, off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 100 * ARENA_BLOCK, &a), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 99 * ARENA_BLOCK, &b), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 2 * ARENA_BLOCK, &off), -1);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), 0);
    CU_ASSERT_EQUAL(off, 199 * ARENA_BLOCK);
    arena_free(&t.view, b, 99 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), 0);
    CU_ASSERT_EQUAL(off, 100 * ARENA_BLOCK);
    arena_free(&t.view, a, 100 * ARENA_BLOCK);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    art_free(&t);
}

static void test_mark(void)
{
    struct art t;
    uint64_t off;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    arena_mark(&t.view, 62 * ARENA_BLOCK, 3 * ARENA_BLOCK - 10);
    CU_ASSERT_EQUAL(t.hdr.used, 3);
    CU_ASSERT_EQUAL(art_bit(&t, 61), 0);
    CU_ASSERT_EQUAL(art_bit(&t, 62), 1);
    CU_ASSERT_EQUAL(art_bit(&t, 64), 1);
    CU_ASSERT_EQUAL(art_bit(&t, 65), 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 62 * ARENA_BLOCK, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(arena_alloc(&t.view, 1, &off), 0);
    CU_ASSERT_EQUAL(off, 65 * ARENA_BLOCK);
    arena_free(&t.view, 62 * ARENA_BLOCK, 3 * ARENA_BLOCK - 10);
    CU_ASSERT_EQUAL(t.hdr.used, 63);
    for (uint64_t b = 62; b < 65; b++)
        CU_ASSERT_EQUAL(art_bit(&t, b), 0);
    art_free(&t);
}

/* The model: owner of each block (0 free, else the allocation id). */
struct art_model {
    uint8_t owner[ART_BLOCKS];
    uint64_t off[ART_MAX_LIVE];
    size_t len[ART_MAX_LIVE];      /* 0: slot unused */
    uint64_t used;
};

static uint64_t art_blocks_for(size_t len)
{
    return (len + ARENA_BLOCK - 1) / ARENA_BLOCK;
}

/* The first block of the lowest free run of n blocks; -1: none. */
static int64_t art_model_first_run(const struct art_model *m, uint64_t n)
{
    uint64_t run = 0;

    for (uint64_t b = 0; b < ART_BLOCKS; b++) {
        run = m->owner[b] ? 0 : run + 1;
        if (run >= n)
            return (int64_t)(b + 1 - n);
    }
    return -1;
}

/* Allocates into live slot i; 0 when the arena and the model agree. */
static int art_random_alloc(struct art *t, struct art_model *m, int i,
                            size_t len)
{
    uint64_t n = art_blocks_for(len), off, first;
    int rc = arena_alloc(&t->view, len, &off);

    if (rc < 0)
        return art_model_first_run(m, n) >= 0 ? -1 : 0;
    first = off / ARENA_BLOCK;
    if (off % ARENA_BLOCK != 0 || first + n > ART_BLOCKS ||
        (int64_t)first != art_model_first_run(m, n))
        return -1;
    for (uint64_t b = first; b < first + n; b++) {
        if (m->owner[b] != 0)
            return -1;
        m->owner[b] = (uint8_t)(i + 1);
    }
    memset(t->data + off, i + 1, len);
    m->off[i] = off;
    m->len[i] = len;
    m->used += n;
    return 0;
}

/* Frees live slot i after checking its bytes were not overwritten. */
static int art_random_free(struct art *t, struct art_model *m, int i)
{
    uint64_t first = m->off[i] / ARENA_BLOCK, n = art_blocks_for(m->len[i]);
    int rc = 0;

    for (size_t k = 0; k < m->len[i]; k++)
        if (t->data[m->off[i] + k] != (uint8_t)(i + 1))
            rc = -1;
    arena_free(&t->view, m->off[i], m->len[i]);
    for (uint64_t b = first; b < first + n; b++)
        m->owner[b] = 0;
    m->used -= n;
    m->len[i] = 0;
    return rc;
}

static void test_random_against_model(void)
{
    struct art t;
    struct art_model m;
    uint64_t rng = ART_RANDOM_SEED;
    int failed_at = -1;

    CU_ASSERT_EQUAL_FATAL(art_init(&t, ART_BLOCKS), 0);
    memset(&m, 0, sizeof(m));
    for (int op = 0; op < ART_RANDOM_OPS && failed_at < 0; op++) {
        int i = (int)unit_rand_below(&rng, ART_MAX_LIVE);
        int rc;

        if (m.len[i] == 0)
            rc = art_random_alloc(&t, &m, i, 1 + (size_t)unit_rand_below(
                                      &rng, ART_MAX_ALLOC));
        else
            rc = art_random_free(&t, &m, i);
        if (rc < 0 || t.hdr.used != m.used)
            failed_at = op;
        for (uint64_t b = 0; b < ART_BLOCKS && failed_at < 0; b++)
            if (art_bit(&t, b) != (m.owner[b] != 0))
                failed_at = op;
    }
    CU_ASSERT_EQUAL(failed_at, -1);
    for (int i = 0; i < ART_MAX_LIVE; i++)
        if (m.len[i] != 0)
            CU_ASSERT_EQUAL(art_random_free(&t, &m, i), 0);
    CU_ASSERT_EQUAL(t.hdr.used, 0);
    art_free(&t);
}

static const CU_TestInfo arena_tests[] = {
    { "bitmap bytes", test_bitmap_bytes },
    { "init clears", test_init },
    { "lengths round up to blocks", test_block_rounding },
    { "full arena returns -1", test_full },
    { "too large, then large runs", test_too_large },
    { "fragmentation and reuse", test_fragmentation },
    { "runs across 64-bit words", test_word_boundary },
    { "full words skipped", test_full_word_skip },
    { "lowest run first", test_lowest_run_first },
    { "free run across the last end", test_run_across_hint },
    { "low end reused under churn", test_low_end_reused },
    { "hint after a full search", test_hint_after_full },
    { "arena_mark", test_mark },
    { "random alloc/free against a model", test_random_against_model },
    CU_TEST_INFO_NULL
};

int register_arena_tests(void)
{
    return unit_add_suite("arena", arena_tests);
}
