/* histogram.h - a latency histogram in bounded memory: log-linear
 * buckets over microseconds (8 per power of two; the last bucket ends at
 * 2^32 us, about 72 minutes, and holds everything longer), plus the
 * smallest and largest value seen. A quantile is interpolated linearly
 * within its bucket, narrowed to [min, max]: it is within one bucket
 * (12.5%) of the true one, exact when every value is the same, and no
 * sample list is kept. About 2 KB per histogram. Pure. */
#ifndef RCC_HISTOGRAM_H
#define RCC_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS   3                       /* 8 buckets per octave */
#define HIST_SUB_COUNT  (1 << HIST_SUB_BITS)
#define HIST_OCTAVES    29                      /* up to 2^32 us */
#define HIST_BUCKETS    ((HIST_OCTAVES + 1) << HIST_SUB_BITS)
#define HIST_US_PER_MS  1000
#define HIST_US_PER_S   1000000
/* Room for hist_format_seconds() of any bound ("4294.967296") and for
 * hist_format_ms() of any quantile. */
#define HIST_SECONDS_MAX 32
#define HIST_MS_TEXT_MAX 32

struct histogram {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t sum_us;
    uint64_t min_us;                            /* both valid when */
    uint64_t max_us;                            /* total > 0 */
};

void hist_record_us(struct histogram *h, uint64_t us);
/* The q-quantile (q in [0,1]) in ms, to the microsecond; 0 when empty. */
double hist_quantile_ms(const struct histogram *h, double q);
/* The upper bound (exclusive) of bucket i, in us: an integer, so exact
 * in seconds too (Prometheus le labels). */
uint64_t hist_bucket_bound_us(int i);
/* us written as seconds, the shortest exact decimal ("0.000512", "1",
 * "4294.967296"), NUL-terminated in buf; returns snprintf's count. */
int hist_format_seconds(char *buf, size_t size, uint64_t us);
/* A quantile in ms as JSON shows it: to the microsecond, no trailing
 * zeros but one ("0.0", "20.5", "67.916"), NUL-terminated in buf;
 * returns snprintf's count. */
int hist_format_ms(char *buf, size_t size, double ms);

#endif
