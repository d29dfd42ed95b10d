/* budgetlease.c - slices, shares and the lease plan of budgetlease.h.
 * Every result is a whole number of tokens; the arithmetic stays far
 * from overflow for any capacity bucket.h accepts (BUCKET_CAPACITY_MAX).
 */
#include "budgetlease.h"

#include "bucket.h"

#define BUDGETLEASE_PERCENT 100

int64_t budgetlease_slack(int64_t capacity)
{
    int64_t slack;

    if (capacity <= 0)
        return 0;
    /* ceil(capacity * 5 / 100) without forming capacity * 5. */
    slack = capacity / BUDGETLEASE_PERCENT * BUDGETLEASE_SLACK_PERCENT +
            (capacity % BUDGETLEASE_PERCENT * BUDGETLEASE_SLACK_PERCENT +
             BUDGETLEASE_PERCENT - 1) / BUDGETLEASE_PERCENT;
    return slack > BUDGETLEASE_SLACK_MIN ? slack : BUDGETLEASE_SLACK_MIN;
}

int64_t budgetlease_slice(int64_t capacity, int instances)
{
    int64_t slice;

    if (capacity <= 0)
        return 0;
    slice = budgetlease_slack(capacity) / (instances > 1 ? instances : 1);
    if (slice < 1)
        slice = 1;
    return slice > capacity ? capacity : slice;
}

int64_t budgetlease_share(int64_t capacity, int instances)
{
    int64_t share;

    if (capacity <= 0)
        return 0;
    share = capacity / (instances > 1 ? instances : 1);
    return share < 1 ? 1 : share;
}

int64_t budgetlease_owed(int64_t share, int64_t lack_then,
                         int64_t elapsed_ms, int64_t lack_now)
{
    int64_t unspent = 0, owed;

    /* What it lacked then, less the refill since (share * elapsed_ms
     * formed only when below lack_then). */
    if (share > 0 && lack_then > 0 && elapsed_ms >= 0 &&
        elapsed_ms < lack_then / share)
        unspent = lack_then - share * elapsed_ms;
    owed = lack_now - unspent;
    if (owed <= 0)
        return 0;
    return owed / BUCKET_SCALE + (owed % BUCKET_SCALE != 0);
}

bool budgetlease_plan(int64_t capacity, int instances, int64_t level,
                      struct budgetlease_ask *ask)
{
    int64_t slice = budgetlease_slice(capacity, instances);

    ask->debt = ask->want = 0;
    if (slice == 0 || level > slice / 2)
        return false;
    if (level < 0) {
        ask->debt = -level;
        level = 0;
    }
    ask->want = slice - level;
    return true;
}
