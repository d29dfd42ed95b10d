/* histogram.c - log-linear bucketing: values below HIST_SUB_COUNT us get
 * a bucket each; above, each power of two is cut in HIST_SUB_COUNT equal
 * parts. Quantiles interpolate within a bucket, the way Prometheus's
 * histogram_quantile() does, with the bucket narrowed to the smallest and
 * largest value seen so a histogram of one repeated value answers that
 * value. */
#include "histogram.h"

#include <math.h>
#include <stdio.h>

#define HIST_S_DECIMALS 6            /* HIST_US_PER_S is 10^6 */

static int hist_index(uint64_t v)
{
    int msb, idx;

    if (v < HIST_SUB_COUNT)
        return (int)v;
    msb = 63 - __builtin_clzll(v);
    idx = ((msb - HIST_SUB_BITS + 1) << HIST_SUB_BITS) +
          (int)((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB_COUNT - 1));
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

uint64_t hist_bucket_bound_us(int i)
{
    int octave = i >> HIST_SUB_BITS, sub = i & (HIST_SUB_COUNT - 1);

    if (octave == 0)
        return (uint64_t)sub + 1;
    /* Bucket covers [(8+sub) << (octave-1), (9+sub) << (octave-1)). */
    return (uint64_t)(HIST_SUB_COUNT + sub + 1) << (octave - 1);
}

/* The lower bound (inclusive) of bucket i, in us. */
static uint64_t hist_bucket_low_us(int i)
{
    return i == 0 ? 0 : hist_bucket_bound_us(i - 1);
}

void hist_record_us(struct histogram *h, uint64_t us)
{
    if (h->total == 0 || us < h->min_us)
        h->min_us = us;
    if (h->total == 0 || us > h->max_us)
        h->max_us = us;
    h->counts[hist_index(us)]++;
    h->total++;
    h->sum_us += us;
}

double hist_quantile_ms(const struct histogram *h, double q)
{
    double rank, before = 0;

    if (h->total == 0)
        return 0;
    q = q < 0 ? 0 : q > 1 ? 1 : q;
    rank = q * (double)h->total;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        double count = (double)h->counts[i], lo, hi, v;

        if (h->counts[i] == 0)
            continue;
        if (before + count < rank) {
            before += count;
            continue;
        }
        /* The first bucket whose cumulative count reaches the rank; its
         * values spread evenly over [lo, hi] for the interpolation. The
         * last bucket has no upper bound but the largest value. */
        lo = (double)hist_bucket_low_us(i);
        hi = (double)hist_bucket_bound_us(i);
        if (lo < (double)h->min_us)
            lo = (double)h->min_us;
        if (i == HIST_BUCKETS - 1 || hi > (double)h->max_us)
            hi = (double)h->max_us;
        v = lo + (hi - lo) * (rank - before) / count;
        return round(v) / HIST_US_PER_MS;
    }
    return (double)h->max_us / HIST_US_PER_MS;
}

int hist_format_seconds(char *buf, size_t size, uint64_t us)
{
    unsigned long long whole = us / HIST_US_PER_S;
    unsigned long long frac = us % HIST_US_PER_S;
    int digits = HIST_S_DECIMALS;

    if (frac == 0)
        return snprintf(buf, size, "%llu", whole);
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    return snprintf(buf, size, "%llu.%0*llu", whole, digits, frac);
}

int hist_format_ms(char *buf, size_t size, double ms)
{
    int n = snprintf(buf, size, "%.3f", ms);

    /* "%.3f" always writes a '.' and three digits after it. */
    while (n > 0 && (size_t)n < size && buf[n - 1] == '0' &&
           buf[n - 2] != '.')
        buf[--n] = '\0';
    return n;
}
