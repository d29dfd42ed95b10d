/* test_histogram.c - the log-linear latency histogram: bucket bounds
 * rise, every value lands in the bucket whose bounds hold it, quantiles
 * of known samples come out within one bucket (25%), an empty histogram
 * gives 0 and huge values land in the last bucket. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "histogram.h"
#include "unit.h"

#define HT_DENSE_MAX    5000       /* every value up to here is checked */
#define HT_SAMPLES      20000
#define HT_SEED         0xA0761D6478BD642FULL
#define HT_BUCKET_ERR   1.25       /* one bucket: a quarter octave */
#define HT_TOP_SHIFT    22         /* values from 2^22 ms: the last bucket */

/* The bucket holding v: record it alone and see where it went. */
static int ht_bucket_of(uint64_t v)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    hist_record(&h, v);
    for (int i = 0; i < HIST_BUCKETS; i++)
        if (h.counts[i] == 1)
            return i;
    return -1;
}

static void test_bounds_increase(void)
{
    CU_ASSERT_DOUBLE_EQUAL(hist_bucket_bound(0), 1.0, 0.0);
    for (int i = 1; i < HIST_BUCKETS; i++) {
        CU_ASSERT(hist_bucket_bound(i) > hist_bucket_bound(i - 1));
        /* Never more than a quarter octave wider than the last bound,
         * past the first one-per-millisecond buckets. */
        if (hist_bucket_bound(i - 1) >= 4)
            CU_ASSERT(hist_bucket_bound(i) <=
                      hist_bucket_bound(i - 1) * HT_BUCKET_ERR);
    }
}

/* v < bound(i) and v >= bound(i - 1): the bucket and its bounds agree. */
static int ht_consistent(uint64_t v)
{
    int i = ht_bucket_of(v);

    if (i < 0)
        return 0;
    if ((double)v >= hist_bucket_bound(i))
        return 0;
    return i == 0 || (double)v >= hist_bucket_bound(i - 1);
}

static void test_values_land_in_their_bucket(void)
{
    int bad = 0;

    for (uint64_t v = 0; v <= HT_DENSE_MAX; v++)
        if (!ht_consistent(v))
            bad++;
    for (int shift = 3; shift < HT_TOP_SHIFT; shift++) {
        uint64_t p = 1ULL << shift;

        if (!ht_consistent(p - 1) || !ht_consistent(p) ||
            !ht_consistent(p + 1) || !ht_consistent(p + p / 2))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_huge_values(void)
{
    static const uint64_t huge[] = {
        1ULL << HT_TOP_SHIFT, (1ULL << 40) + 3, UINT64_MAX / 2, UINT64_MAX
    };
    struct histogram h;

    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++)
        CU_ASSERT_EQUAL(ht_bucket_of(huge[i]), HIST_BUCKETS - 1);
    CU_ASSERT_EQUAL(ht_bucket_of((1ULL << HT_TOP_SHIFT) - 1),
                    HIST_BUCKETS - 1);
    memset(&h, 0, sizeof(h));
    hist_record(&h, 1);
    hist_record(&h, UINT64_MAX / 4);
    CU_ASSERT_EQUAL(h.counts[HIST_BUCKETS - 1], 1);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile(&h, 1.0),
                           hist_bucket_bound(HIST_BUCKETS - 1), 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile(&h, 0.0), 2.0, 0.0);
}

static void test_empty(void)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile(&h, 0.0), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile(&h, 0.5), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile(&h, 1.0), 0.0, 0.0);
}

static void test_totals(void)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    hist_record(&h, 0);
    hist_record(&h, 10);
    hist_record(&h, 1000);
    CU_ASSERT_EQUAL(h.total, 3);
    CU_ASSERT_EQUAL(h.sum_ms, 1010);
    CU_ASSERT_EQUAL(h.counts[0], 1);
}

static int ht_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* For each q: the answer is above the true quantile and at most one
 * bucket (25%, or 1 ms for the smallest values) beyond it. 0 if so. */
static int ht_check_quantiles(uint64_t *samples, size_t n)
{
    static const double qs[] = { 0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                                 0.99, 0.999, 1.0 };
    struct histogram h;
    int bad = 0;

    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i < n; i++)
        hist_record(&h, samples[i]);
    qsort(samples, n, sizeof(*samples), ht_cmp);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        size_t rank = (size_t)(qs[k] * (double)n);
        double truth, got = hist_quantile(&h, qs[k]);

        if (rank >= n)
            rank = n - 1;
        truth = (double)samples[rank];
        if (!(got > truth && got <= truth * HT_BUCKET_ERR + 1))
            bad++;
    }
    return bad;
}

static void test_quantiles_uniform(void)
{
    uint64_t *s = malloc(HT_SAMPLES * sizeof(*s));

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < HT_SAMPLES; i++)
        s[i] = 1 + i % 1000;
    CU_ASSERT_EQUAL(ht_check_quantiles(s, HT_SAMPLES), 0);
    free(s);
}

static void test_quantiles_random(void)
{
    uint64_t *s = malloc(HT_SAMPLES * sizeof(*s));
    uint64_t rng = HT_SEED;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* Log-uniform over 1 ms .. 2^20 ms: every octave gets samples. */
    for (size_t i = 0; i < HT_SAMPLES; i++) {
        int octave = (int)unit_rand_below(&rng, 20);
        uint64_t lo = 1ULL << octave;

        s[i] = lo + unit_rand_below(&rng, lo);
    }
    CU_ASSERT_EQUAL(ht_check_quantiles(s, HT_SAMPLES), 0);
    free(s);
}

static void test_quantile_single_value(void)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 100; i++)
        hist_record(&h, 300);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile(&h, 0.0), hist_quantile(&h, 1.0),
                           0.0);
    CU_ASSERT(hist_quantile(&h, 0.5) > 300);
    CU_ASSERT(hist_quantile(&h, 0.5) <= 300 * HT_BUCKET_ERR);
}

static const CU_TestInfo histogram_tests[] = {
    { "bucket bounds increase", test_bounds_increase },
    { "values land in their bucket", test_values_land_in_their_bucket },
    { "huge values in the last bucket", test_huge_values },
    { "empty histogram gives 0", test_empty },
    { "total and sum", test_totals },
    { "quantiles of a uniform sample", test_quantiles_uniform },
    { "quantiles of a random sample", test_quantiles_random },
    { "one repeated value", test_quantile_single_value },
    CU_TEST_INFO_NULL
};

int register_histogram_tests(void)
{
    return unit_add_suite("histogram", histogram_tests);
}
