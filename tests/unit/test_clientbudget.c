/* test_clientbudget.c - client keys to names and budgets
 * (clientbudget.h): plain and named keys, names shared by rotated keys,
 * refused shapes, the constant-time digest lookup, and random tables
 * against a naive restatement. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "clientbudget.h"
#include "unit.h"

#define CBT_RANDOM_SEED   0xD1B54A32D192ED03ULL
#define CBT_RANDOM_ROUNDS 300
#define CBT_RANDOM_KEYS   40
#define CBT_NAMES         5

static void test_build(void)
{
    static const struct clientbudget_entry e[] = {
        { NULL, 0, 0 },                 /* a plain key */
        { "team-a", 600, 100000 },
        { "team-b", 0, 0 },             /* named, unlimited */
        { "team-a", 600, 100000 },      /* team-a's next key */
        { NULL, 0, 0 },
    };
    struct clientbudget_map map;
    int bad = 0;

    CU_ASSERT_EQUAL(clientbudget_build(&map, e, 5, &bad), 0);
    CU_ASSERT_EQUAL(bad, -1);
    CU_ASSERT_EQUAL(map.budget_count, 2);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 0), CLIENTBUDGET_NONE);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 1), 0);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 2), 1);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 3), 0);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 4), CLIENTBUDGET_NONE);
    CU_ASSERT_EQUAL(clientbudget_of(&map, -1), CLIENTBUDGET_NONE);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 5), CLIENTBUDGET_NONE);
    CU_ASSERT_STRING_EQUAL(clientbudget_name(&map, e, 0),
                           CLIENTBUDGET_UNNAMED);
    CU_ASSERT_STRING_EQUAL(clientbudget_name(&map, e, 3), "team-a");
    CU_ASSERT_STRING_EQUAL(clientbudget_name(&map, e, 2), "team-b");
    CU_ASSERT_STRING_EQUAL(clientbudget_name(&map, e, -1),
                           CLIENTBUDGET_UNNAMED);
    CU_ASSERT_PTR_EQUAL(clientbudget_budget(&map, e, 0), &e[1]);
    CU_ASSERT_PTR_EQUAL(clientbudget_budget(&map, e, 1), &e[2]);
    CU_ASSERT_PTR_NULL(clientbudget_budget(&map, e, 2));
    CU_ASSERT_PTR_NULL(clientbudget_budget(&map, e, -1));
    CU_ASSERT_TRUE(clientbudget_limited(clientbudget_budget(&map, e, 0)));
    CU_ASSERT_FALSE(clientbudget_limited(clientbudget_budget(&map, e, 1)));
    CU_ASSERT_FALSE(clientbudget_limited(NULL));
    /* No keys at all. */
    CU_ASSERT_EQUAL(clientbudget_build(&map, NULL, 0, NULL), 0);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 0), CLIENTBUDGET_NONE);
}

static void test_refused(void)
{
    static const struct clientbudget_entry differ[] = {
        { "a", 10, 0 }, { "b", 1, 1 }, { "a", 10, 5 },
    };
    static const struct clientbudget_entry empty[] = {
        { "a", 1, 0 }, { "", 1, 0 },
    };
    struct clientbudget_map map;
    int bad = 0;

    CU_ASSERT_EQUAL(clientbudget_build(&map, differ, 3, &bad), -1);
    CU_ASSERT_EQUAL(bad, 2);
    CU_ASSERT_EQUAL(map.key_count, 0);
    CU_ASSERT_EQUAL(clientbudget_of(&map, 0), CLIENTBUDGET_NONE);
    CU_ASSERT_EQUAL(clientbudget_build(&map, empty, 2, &bad), -1);
    CU_ASSERT_EQUAL(bad, 1);
    CU_ASSERT_EQUAL(clientbudget_build(&map, differ, -1, &bad), -1);
    CU_ASSERT_EQUAL(bad, -1);
    CU_ASSERT_EQUAL(clientbudget_build(&map, differ,
                                       CLIENTBUDGET_MAX_KEYS + 1, NULL), -1);
    CU_ASSERT_EQUAL(clientbudget_build(&map, NULL, 1, NULL), -1);
}

/* The most keys, all one name: one budget. */
static void test_many_keys(void)
{
    static struct clientbudget_entry e[CLIENTBUDGET_MAX_KEYS];
    static struct clientbudget_map map;

    for (int i = 0; i < CLIENTBUDGET_MAX_KEYS; i++)
        e[i] = (struct clientbudget_entry){ "ops", 5, 50 };
    CU_ASSERT_EQUAL(clientbudget_build(&map, e, CLIENTBUDGET_MAX_KEYS,
                                       NULL), 0);
    CU_ASSERT_EQUAL(map.budget_count, 1);
    CU_ASSERT_EQUAL(clientbudget_of(&map, CLIENTBUDGET_MAX_KEYS - 1), 0);
}

static void test_match(void)
{
    uint8_t digests[4][CLIENTBUDGET_DIGEST_LEN];
    uint8_t probe[CLIENTBUDGET_DIGEST_LEN];

    for (int i = 0; i < 4; i++)
        memset(digests[i], 0x10 + i, sizeof(digests[i]));
    memcpy(digests[3], digests[1], sizeof(digests[1]));    /* repeated */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(clientbudget_match((const uint8_t (*)[
            CLIENTBUDGET_DIGEST_LEN])digests, 4, digests[i]), i);
    /* One bit off, in the last byte or the first: no. */
    memcpy(probe, digests[2], sizeof(probe));
    probe[CLIENTBUDGET_DIGEST_LEN - 1] ^= 0x80;
    CU_ASSERT_EQUAL(clientbudget_match((const uint8_t (*)[
        CLIENTBUDGET_DIGEST_LEN])digests, 4, probe), -1);
    memcpy(probe, digests[0], sizeof(probe));
    probe[0] ^= 0x01;
    CU_ASSERT_EQUAL(clientbudget_match((const uint8_t (*)[
        CLIENTBUDGET_DIGEST_LEN])digests, 4, probe), -1);
    CU_ASSERT_EQUAL(clientbudget_match((const uint8_t (*)[
        CLIENTBUDGET_DIGEST_LEN])digests, 0, digests[0]), -1);
}

/* Random tables: budgets numbered by first appearance of each name,
 * conflicts found at the first differing entry, and random digest
 * lookups against a plain search. */
static void test_random_against_naive(void)
{
    static const char *const names[CBT_NAMES] = { "a", "b", "c", "d", "e" };
    uint64_t rng = CBT_RANDOM_SEED;

    for (int round = 0; round < CBT_RANDOM_ROUNDS; round++) {
        struct clientbudget_entry e[CBT_RANDOM_KEYS];
        struct clientbudget_map map;
        uint8_t digests[CBT_RANDOM_KEYS][CLIENTBUDGET_DIGEST_LEN];
        int n = (int)unit_rand_below(&rng, CBT_RANDOM_KEYS + 1);
        int want_bad = -1, want_budget[CBT_RANDOM_KEYS], first[CBT_NAMES];
        int budgets = 0, bad = 0, rc;
        bool conflicts = unit_rand_below(&rng, 4) == 0;

        for (int k = 0; k < CBT_NAMES; k++)
            first[k] = -1;
        for (int i = 0; i < n; i++) {
            int k = (int)unit_rand_below(&rng, CBT_NAMES + 2);

            if (k >= CBT_NAMES) {
                e[i] = (struct clientbudget_entry){ NULL, 0, 0 };
                want_budget[i] = CLIENTBUDGET_NONE;
            } else {
                e[i] = (struct clientbudget_entry){
                    names[k], k * 10,
                    conflicts ? (int64_t)unit_rand_below(&rng, 2) : k };
                if (first[k] < 0) {
                    first[k] = i;
                    want_budget[i] = budgets++;
                } else {
                    want_budget[i] = want_budget[first[k]];
                    if (want_bad < 0 && e[first[k]].tpm != e[i].tpm)
                        want_bad = i;
                }
            }
            for (int b = 0; b < CLIENTBUDGET_DIGEST_LEN; b++)
                digests[i][b] = (uint8_t)unit_rand(&rng);
        }
        rc = clientbudget_build(&map, e, n, &bad);
        CU_ASSERT_EQUAL(rc, want_bad < 0 ? 0 : -1);
        CU_ASSERT_EQUAL(bad, want_bad);
        if (rc == 0) {
            CU_ASSERT_EQUAL(map.budget_count, budgets);
            for (int i = 0; i < n; i++) {
                CU_ASSERT_EQUAL(clientbudget_of(&map, i), want_budget[i]);
                CU_ASSERT_STRING_EQUAL(clientbudget_name(&map, e, i),
                    e[i].name != NULL ? e[i].name : CLIENTBUDGET_UNNAMED);
            }
        }
        if (n > 0) {
            int pick = (int)unit_rand_below(&rng, (uint64_t)n);
            int want = pick;

            for (int i = 0; i < pick; i++)
                if (memcmp(digests[i], digests[pick],
                           CLIENTBUDGET_DIGEST_LEN) == 0)
                    want = i;
            CU_ASSERT_EQUAL(clientbudget_match((const uint8_t (*)[
                CLIENTBUDGET_DIGEST_LEN])digests, n, digests[pick]), want);
        }
    }
}

static const CU_TestInfo clientbudget_tests[] = {
    { "names and budgets of keys", test_build },
    { "refused tables", test_refused },
    { "the most keys", test_many_keys },
    { "constant-time digest lookup", test_match },
    { "random tables against a naive map", test_random_against_naive },
    CU_TEST_INFO_NULL
};

int register_clientbudget_tests(void)
{
    return unit_add_suite("clientbudget", clientbudget_tests);
}
