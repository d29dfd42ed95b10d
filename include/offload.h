/* offload.h - blocking work off an event loop: jobs (file writes that
 * fsync: token saves, later capture files) run one at a time, in the
 * order queued, on one helper thread, and each job's end is reported
 * back on the loop that queued it. The thread starts with the first job,
 * so a process that never offloads has none. The job function must not
 * touch the loop's state; the done callback runs on the loop and owns
 * what arg points to again. */
#ifndef RCC_OFFLOAD_H
#define RCC_OFFLOAD_H

#include <event2/event.h>

struct offload;

/* Runs on the helper thread; its return value goes to done. */
typedef int (*offload_fn)(void *arg);
/* Runs on the loop once fn(arg) has returned rc. */
typedef void (*offload_done_fn)(void *arg, int rc);

/* An offloader reporting on base; NULL when out of memory or pipes. */
struct offload *offload_new(struct event_base *base);
/* Queues fn(arg), then done(arg, rc) on the loop. 0, or -1 (nothing
 * queued: the caller still owns arg) when the thread cannot start. */
int offload_run(struct offload *o, offload_fn fn, offload_done_fn done,
                void *arg);
/* Jobs queued or running. */
int offload_pending(const struct offload *o);
/* Waits for every queued job, runs their done callbacks here, stops the
 * thread and frees o (NULL-safe). */
void offload_free(struct offload *o);

#endif
