/* histogram.c - log-linear bucketing: values below 2^HIST_SUB_BITS ms
 * get a bucket each; above, each power of two is cut in equal quarters. */
#include "histogram.h"

#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)

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

double hist_bucket_bound(int i)
{
    int octave = i >> HIST_SUB_BITS, sub = i & (HIST_SUB_COUNT - 1);

    if (octave == 0)
        return (double)sub + 1;
    /* Bucket covers [(4+sub) << (octave-1), (5+sub) << (octave-1)). */
    return (double)((uint64_t)(HIST_SUB_COUNT + (unsigned)sub + 1)
                    << (octave - 1));
}

void hist_record(struct histogram *h, uint64_t ms)
{
    h->counts[hist_index(ms)]++;
    h->total++;
    h->sum_ms += ms;
}

double hist_quantile(const struct histogram *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->total == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen > rank)
            return hist_bucket_bound(i);
    }
    return hist_bucket_bound(HIST_BUCKETS - 1);
}
