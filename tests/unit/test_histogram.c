/* test_histogram.c - the log-linear latency histogram: bucket bounds
 * rise, every value lands in the bucket whose bounds hold it, quantiles
 * of known samples come out within one bucket (12.5%) of the true ones
 * and exact for a repeated value, sub-millisecond latencies keep their
 * size, an empty histogram gives 0, huge values land in the last bucket,
 * and bounds print as exact decimal seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "histogram.h"
#include "unit.h"

#define HT_DENSE_MAX    5000       /* every value up to here is checked */
#define HT_SAMPLES      20000
#define HT_SEED         0xA0761D6478BD642FULL
#define HT_BUCKET_ERR   1.125      /* one bucket: an eighth of an octave */
#define HT_TOP_SHIFT    32         /* values from 2^32 us: the last bucket */
#define HT_US_PER_MS    1000.0
#define HT_FRAC_DIGITS  6          /* microseconds in a second */

/* The bucket holding v: record it alone and see where it went. */
static int ht_bucket_of(uint64_t v)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    hist_record_us(&h, v);
    for (int i = 0; i < HIST_BUCKETS; i++)
        if (h.counts[i] == 1)
            return i;
    return -1;
}

static void test_bounds_increase(void)
{
    CU_ASSERT_EQUAL(hist_bucket_bound_us(0), 1);
    CU_ASSERT_EQUAL(hist_bucket_bound_us(HIST_BUCKETS - 1),
                    1ULL << HT_TOP_SHIFT);
    for (int i = 1; i < HIST_BUCKETS; i++) {
        CU_ASSERT(hist_bucket_bound_us(i) > hist_bucket_bound_us(i - 1));
        /* Never more than an eighth of an octave wider than the last
         * bound, past the first one-per-microsecond buckets. */
        if (hist_bucket_bound_us(i - 1) >= HIST_SUB_COUNT)
            CU_ASSERT((double)hist_bucket_bound_us(i) <=
                      (double)hist_bucket_bound_us(i - 1) * HT_BUCKET_ERR);
    }
}

/* v < bound(i) and v >= bound(i - 1): the bucket and its bounds agree. */
static int ht_consistent(uint64_t v)
{
    int i = ht_bucket_of(v);

    if (i < 0)
        return 0;
    if (v >= hist_bucket_bound_us(i))
        return 0;
    return i == 0 || v >= hist_bucket_bound_us(i - 1);
}

static void test_values_land_in_their_bucket(void)
{
    int bad = 0;

    for (uint64_t v = 0; v <= HT_DENSE_MAX; v++)
        if (!ht_consistent(v))
            bad++;
    for (int shift = 4; shift < HT_TOP_SHIFT; shift++) {
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
    hist_record_us(&h, 1000);
    hist_record_us(&h, 1ULL << 40);
    CU_ASSERT_EQUAL(h.counts[HIST_BUCKETS - 1], 1);
    /* The extremes are the values seen, not bucket bounds. */
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 1.0),
                           (double)(1ULL << 40) / HT_US_PER_MS, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.0), 1.0, 0.0);
}

static void test_empty(void)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.0), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.5), 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 1.0), 0.0, 0.0);
}

static void test_totals(void)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    hist_record_us(&h, 10);
    hist_record_us(&h, 0);
    hist_record_us(&h, 1000);
    CU_ASSERT_EQUAL(h.total, 3);
    CU_ASSERT_EQUAL(h.sum_us, 1010);
    CU_ASSERT_EQUAL(h.counts[0], 1);
    CU_ASSERT_EQUAL(h.min_us, 0);
    CU_ASSERT_EQUAL(h.max_us, 1000);
}

static int ht_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* For each q: the answer (ms) lies between the order statistics around
 * rank q*n, widened by one bucket (12.5%, or 1 us for the smallest
 * values). Returns how many q are off. */
static int ht_check_quantiles(uint64_t *samples, size_t n)
{
    static const double qs[] = { 0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                                 0.99, 0.999, 1.0 };
    struct histogram h;
    int bad = 0;

    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i < n; i++)
        hist_record_us(&h, samples[i]);
    qsort(samples, n, sizeof(*samples), ht_cmp);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        double rank = qs[k] * (double)n;
        size_t below = rank >= 1 ? (size_t)rank - (rank == (size_t)rank) :
                                   0;
        size_t above = (size_t)rank < n ? (size_t)rank : n - 1;
        double lo = (double)samples[below] / HT_BUCKET_ERR - 1;
        double hi = (double)samples[above] * HT_BUCKET_ERR + 1;
        double got = hist_quantile_ms(&h, qs[k]) * HT_US_PER_MS;

        if (!(got >= lo && got <= hi)) {
            fprintf(stderr, "\n    q=%g: %g us, not in [%g, %g]\n", qs[k],
                    got, lo, hi);
            bad++;
        }
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
    /* Log-uniform over 1 us .. 2^30 us: every octave gets samples. */
    for (size_t i = 0; i < HT_SAMPLES; i++) {
        int octave = (int)unit_rand_below(&rng, 30);
        uint64_t lo = 1ULL << octave;

        s[i] = lo + unit_rand_below(&rng, lo);
    }
    CU_ASSERT_EQUAL(ht_check_quantiles(s, HT_SAMPLES), 0);
    free(s);
}

/* Two clusters far apart: any value between them is a median. */
static void test_quantiles_bimodal(void)
{
    uint64_t s[100];

    for (size_t i = 0; i < 100; i++)
        s[i] = i < 50 ? 1000 + i : 100000 + i;
    CU_ASSERT_EQUAL(ht_check_quantiles(s, 100), 0);
}

static void test_quantile_single_value(void)
{
    struct histogram h;

    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 100; i++)
        hist_record_us(&h, 300000);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.0), 300.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.5), 300.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 1.0), 300.0, 0.0);
}

/* Issue 12: requests of 0.4-1.0 ms showed p50 = 2.0 ms, a bucket bound
 * of whole milliseconds. Microseconds and interpolation keep them. */
static void test_bug_sub_ms_percentiles(void)
{
    struct histogram h;
    uint64_t rng = HT_SEED;

    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 1000; i++)
        hist_record_us(&h, 500);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.5), 0.5, 0.0);
    memset(&h, 0, sizeof(h));
    for (int i = 0; i < HT_SAMPLES; i++)
        hist_record_us(&h, 400 + unit_rand_below(&rng, 601));
    /* Uniform over 0.4-1.0 ms: p50 0.7, p99 0.994; within 2%. */
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.5), 0.7, 0.014);
    CU_ASSERT_DOUBLE_EQUAL(hist_quantile_ms(&h, 0.99), 0.994, 0.02);
    CU_ASSERT(hist_quantile_ms(&h, 0.0) >= 0.4);
    CU_ASSERT(hist_quantile_ms(&h, 1.0) <= 1.0);
}

/* A mock upstream of latency_ms = 20: about 20.0-20.4 ms each. The old
 * answer was the bucket bound 24 (or 32 with coarser buckets). */
static void test_bug_mock_latency_p50(void)
{
    struct histogram h;
    uint64_t rng = HT_SEED;

    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 50; i++)
        hist_record_us(&h, 20000 + unit_rand_below(&rng, 400));
    CU_ASSERT(hist_quantile_ms(&h, 0.5) >= 20.0);
    CU_ASSERT(hist_quantile_ms(&h, 0.5) <= 20.4);
    CU_ASSERT(hist_quantile_ms(&h, 0.99) <= 20.4);
}

static void test_format_seconds(void)
{
    static const struct {
        uint64_t us;
        const char *text;
    } cases[] = {
        { 0, "0" }, { 1, "0.000001" }, { 8, "0.000008" },
        { 512, "0.000512" }, { 1000, "0.001" }, { 1000000, "1" },
        { 1048576, "1.048576" }, { 2500000, "2.5" },
        { 4294967296ULL, "4294.967296" },
    };
    char buf[HIST_SECONDS_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hist_format_seconds(buf, sizeof(buf), cases[i].us);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].text);
    }
}

static void test_format_ms(void)
{
    static const struct {
        double ms;
        const char *text;
    } cases[] = {
        { 0.0, "0.0" }, { 0.5, "0.5" }, { 67.916, "67.916" },
        { 67915.999999999997 / 1000, "67.916" }, { 200.0, "200.0" },
        { 20.05, "20.05" }, { 0.001, "0.001" },
    };
    char buf[HIST_MS_TEXT_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hist_format_ms(buf, sizeof(buf), cases[i].ms);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].text);
    }
}

/* Issue 12: /metrics printed le="1048.58" for a bound of 1048.576 s.
 * Every bound must read back as exactly its microseconds. */
static void test_bug_le_labels_exact(void)
{
    int bad = 0;

    for (int i = 0; i < HIST_BUCKETS; i++) {
        char buf[HIST_SECONDS_MAX], frac[HT_FRAC_DIGITS + 2] = "";
        unsigned long long whole = 0;
        uint64_t us = hist_bucket_bound_us(i);
        int n = hist_format_seconds(buf, sizeof(buf), us);
        size_t len;

        if (n <= 0 || (size_t)n >= sizeof(buf) ||
            sscanf(buf, "%llu.%7[0-9]", &whole, frac) < 1 ||
            (len = strlen(frac)) > HT_FRAC_DIGITS) {
            bad++;
            continue;
        }
        /* The fraction scaled to microseconds: pad it to six digits. */
        while (len < HT_FRAC_DIGITS)
            frac[len++] = '0';
        frac[len] = '\0';
        if (whole * HIST_US_PER_S + strtoull(frac, NULL, 10) != us) {
            fprintf(stderr, "\n    bound %llu us printed %s\n",
                    (unsigned long long)us, buf);
            bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static const CU_TestInfo histogram_tests[] = {
    { "bucket bounds increase", test_bounds_increase },
    { "values land in their bucket", test_values_land_in_their_bucket },
    { "huge values in the last bucket", test_huge_values },
    { "empty histogram gives 0", test_empty },
    { "total, sum, min and max", test_totals },
    { "quantiles of a uniform sample", test_quantiles_uniform },
    { "quantiles of a random sample", test_quantiles_random },
    { "quantiles of two far clusters", test_quantiles_bimodal },
    { "one repeated value is exact", test_quantile_single_value },
    { "seconds as exact decimals", test_format_seconds },
    { "ms to the microsecond", test_format_ms },
    { UNIT_BUG_PREFIX "sub-ms percentiles are not bucket bounds",
      test_bug_sub_ms_percentiles },
    { UNIT_BUG_PREFIX "mock 20 ms: p50 near 20, not a bound",
      test_bug_mock_latency_p50 },
    { UNIT_BUG_PREFIX "le labels are exact", test_bug_le_labels_exact },
    CU_TEST_INFO_NULL
};

int register_histogram_tests(void)
{
    return unit_add_suite("histogram", histogram_tests);
}
