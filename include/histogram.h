/* histogram.h - a latency histogram in bounded memory: log-linear
 * buckets (4 per power of two of milliseconds; the last bucket ends at
 * 2^22 ms, about 70 minutes, and holds everything longer),
 * so a percentile is off by at most one bucket (25%) and no sample list is kept. Pure. */
#ifndef RCC_HISTOGRAM_H
#define RCC_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS   2                       /* 4 buckets per octave */
#define HIST_OCTAVES    20
#define HIST_BUCKETS    ((HIST_OCTAVES + 1) << HIST_SUB_BITS)

struct histogram {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t sum_ms;
};

void hist_record(struct histogram *h, uint64_t ms);
/* The upper bound (ms) of the bucket holding quantile q in [0,1]; 0 when
 * empty. */
double hist_quantile(const struct histogram *h, double q);
/* The upper bound in ms of bucket i (for Prometheus le labels). */
double hist_bucket_bound(int i);

#endif
