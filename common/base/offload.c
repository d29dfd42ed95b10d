/* offload.c - one helper thread per offloader runs blocking jobs in
 * order; a pipe wakes the loop, which runs the done callbacks. See
 * offload.h. The queue and the done list are guarded by one mutex. */
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

struct offload_job {
    offload_fn fn;
    offload_done_fn done;
    void *arg;
    int rc;
    struct offload_job *next;
};

struct offload {
    struct event_base *base;
    struct event *wake_ev;
    int wake_rd, wake_wr;          /* the thread's word to the loop */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;
    bool stopping;
    struct offload_job *todo, **todo_tail;
    struct offload_job *done, **done_tail;
    int pending;                   /* queued or running, not yet reported */
};

static void *offload_main(void *arg)
{
    struct offload *o = arg;

    pthread_mutex_lock(&o->mu);
    for (;;) {
        struct offload_job *j;

        while (o->todo == NULL && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->todo == NULL)
            break;                 /* stopping, and nothing left */
        j = o->todo;
        o->todo = j->next;
        if (o->todo == NULL)
            o->todo_tail = &o->todo;
        pthread_mutex_unlock(&o->mu);
        j->rc = j->fn(j->arg);
        j->next = NULL;
        pthread_mutex_lock(&o->mu);
        *o->done_tail = j;
        o->done_tail = &j->next;
        /* A full pipe already says there is something to collect; were
         * the write to fail otherwise, offload_free still collects. */
        (void)!write(o->wake_wr, "", 1);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Runs the done callbacks of every finished job, in order. */
static void offload_collect(struct offload *o)
{
    struct offload_job *list;

    pthread_mutex_lock(&o->mu);
    list = o->done;
    o->done = NULL;
    o->done_tail = &o->done;
    pthread_mutex_unlock(&o->mu);
    while (list != NULL) {
        struct offload_job *j = list;

        list = j->next;
        o->pending--;
        if (j->done != NULL)
            j->done(j->arg, j->rc);
        free(j);
    }
}

static void offload_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];
    ssize_t got;

    (void)what;
    do
        got = read(fd, buf, sizeof(buf));
    while (got > 0);
    offload_collect(arg);
}

struct offload *offload_new(struct event_base *base)
{
    struct offload *o = calloc(1, sizeof(*o));
    int fds[2];

    if (o == NULL)
        return NULL;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(o);
        return NULL;
    }
    o->base = base;
    o->wake_rd = fds[0];
    o->wake_wr = fds[1];
    o->todo_tail = &o->todo;
    o->done_tail = &o->done;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->wake_ev = event_new(base, o->wake_rd, EV_READ | EV_PERSIST,
                           offload_wake_cb, o);
    if (o->wake_ev == NULL || event_add(o->wake_ev, NULL) < 0) {
        offload_free(o);
        return NULL;
    }
    return o;
}

int offload_run(struct offload *o, offload_fn fn, offload_done_fn done,
                void *arg)
{
    struct offload_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        util_oom("offload job");
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&o->mu);
    if (!o->started) {
        if (pthread_create(&o->thread, NULL, offload_main, o) != 0) {
            pthread_mutex_unlock(&o->mu);
            free(j);
            return -1;
        }
        o->started = true;
    }
    *o->todo_tail = j;
    o->todo_tail = &j->next;
    o->pending++;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

int offload_pending(const struct offload *o)
{
    return o->pending;
}

void offload_free(struct offload *o)
{
    if (o == NULL)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->mu);
        o->stopping = true;
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    offload_collect(o);
    if (o->wake_ev != NULL)
        event_free(o->wake_ev);
    close(o->wake_rd);
    close(o->wake_wr);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
