/* supervisor.c - forks and keeps the workers: one socketpair and one
 * eventfd per worker, wake-ups on enqueue, scaling up and down, reaping
 * the dead (reported through the master's worker_lost hook: the relay
 * and the requests re-queue or fail their jobs) and re-forking them with
 * a crash-loop backoff. Processes only: it reads and writes no frame
 * itself (the channel's callback and control frames are hooks too). */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "frame.h"
#include "worker.h"

/* The crash back-off doubles up to MASTER_RESPAWN_MAX_MS; the shift is
 * bounded first so that it cannot overflow. */
#define SUPERVISOR_MAX_SHIFT 8

int supervisor_alive(const struct master *m)
{
    int n = 0;

    for (int i = 0; i < m->worker_slots_end; i++)
        if (m->workers[i].pid > 0 && !m->workers[i].retiring)
            n++;
    return n;
}

uint32_t supervisor_oldest_generation(const struct master *m)
{
    uint32_t oldest = m->slots.generation;

    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0 && m->workers[i].generation < oldest)
            oldest = m->workers[i].generation;
    return oldest;
}

void supervisor_end_if_none(struct master *m)
{
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0)
            return;
    event_base_loopbreak(m->base);
}

void supervisor_chan_free(struct mworker *mw)
{
    if (mw->chan == NULL)
        return;
    chan_free(mw->chan);
    free(mw->chan);
    mw->chan = NULL;
}

void supervisor_wake(struct master *m)
{
    int best = -1, best_active = 0;
    uint64_t one = 1;

    /* The least busy worker; ties rotate so idle workers share. */
    for (int k = 0; k < m->worker_slots_end; k++) {
        int i = (int)((m->next_wake + (uint32_t)k) %
                      (uint32_t)m->worker_slots_end);
        int active;

        if (m->workers[i].pid <= 0 || m->workers[i].retiring)
            continue;
        active = atomic_load(&m->shm.hdr->workers[i].active);
        if (best < 0 || active < best_active) {
            best = i;
            best_active = active;
        }
    }
    if (best < 0)
        return;
    m->next_wake = (uint32_t)best + 1;
    /* A wake-up it has not read yet covers this job too: it pulls all it
     * can when it wakes. Saves a system call per request under load. */
    if (atomic_exchange(&m->shm.hdr->workers[best].wake_pending, 1))
        return;
    if (write(m->workers[best].wake_fd, &one, sizeof(one)) < 0 &&
        errno != EAGAIN)
        log_msg(&m->log, LOG_WARN, NULL, "waking worker %d: %s", best,
                strerror(errno));
}

/* In a worker just forked: becomes the configuration's user for good
 * when the master runs as root (the sockets, the log file and the
 * segment are open already). Not root: nothing to drop (master_init
 * said so once). 0, or 1 (the worker's exit status) when it failed. */
static int supervisor_drop_privileges(const struct master *m)
{
    char err[CFG_ERR_MAX];

    if (m->cfg->user == NULL || geteuid() != 0)
        return 0;
    if (privs_become(&m->cfg->run_as, err, sizeof(err)) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "worker: user \"%s\": %s",
                m->cfg->user, err);
        return 1;
    }
    return 0;
}

static int supervisor_spawn(struct master *m, int slot)
{
    struct mworker *mw = &m->workers[slot];
    int sv[2], efd;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    shm_worker_reset(&m->shm.hdr->workers[slot], util_wall_ms());
    pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        close(efd);
        return -1;
    }
    if (pid == 0) {
        struct worker_args a = {
            .cfg = m->cfg, .slots = &m->slots, .shm = m->shm,
            .slot = slot, .sock_fd = sv[1],
            .wake_fd = efd, .log = m->log,
        };
        int rc;

        /* The report of a start is the master's to make (and its pipe
         * is closed here). */
        a.log.echo_fd = -1;
        m->hooks.free_in_child(m, sv[1], efd);
        evutil_make_socket_nonblocking(sv[1]);
        rc = supervisor_drop_privileges(m);
        if (rc == 0) {
            log_route_libevent(&a.log);
            rc = worker_main(&a);
            log_route_libevent(NULL);
        }
        cfg_free(&m->cfg);
        shm_detach(&m->shm);
        log_close(&m->log);
        curl_global_cleanup();
        /* exit(), not _exit(): leak checkers run at exit. */
        exit(rc);
    }
    close(sv[1]);
    evutil_make_socket_nonblocking(sv[0]);
    /* EOF on it means the worker exited or died: the channel stops by
     * itself and SIGCHLD does the rest, so no close callback. */
    mw->chan = calloc(1, sizeof(*mw->chan));
    if (mw->chan == NULL)
        util_oom("a worker's channel");
    if (chan_init(mw->chan, m->base, sv[0], MASTER_WORKER_READ_MAX,
                  m->hooks.worker_frames, NULL, m) < 0) {
        free(mw->chan);
        mw->chan = NULL;
        close(sv[0]);
        close(efd);
        kill(pid, SIGKILL);
        return -1;
    }
    mw->pid = pid;
    if (slot >= m->worker_slots_end)
        m->worker_slots_end = slot + 1;
    mw->wake_fd = efd;
    mw->started_ms = util_now_ms();
    mw->generation = m->slots.generation;
    mw->retiring = false;
    mw->broken = false;
    atomic_store(&m->shm.hdr->workers[slot].pid, (int32_t)pid);
    log_msg(&m->log, LOG_INFO, NULL, "worker %d started (pid %ld)", slot,
            (long)pid);
    return 0;
}

/* Forks workers into free slots until worker_target of them are not
 * retiring. Retiring ones keep their slots until they exit, so a reload
 * or a scale-down can overlap old and new workers. */
static void supervisor_fill(struct master *m)
{
    int alive = supervisor_alive(m);

    for (int i = 0; i < CFG_MAX_WORKERS && alive < m->worker_target; i++) {
        if (m->workers[i].pid != 0)
            continue;
        if (supervisor_spawn(m, i) < 0) {
            log_msg(&m->log, LOG_ERROR, NULL, "cannot start worker %d: %s",
                    i, strerror(errno));
            break;
        }
        alive++;
        if (m->respawn_owed > 0) {
            m->respawn_owed--;
            m->worker_restarts++;
        }
    }
    /* A scale-down may have made a replacement unnecessary. */
    if (alive >= m->worker_target)
        m->respawn_owed = 0;
    /* Jobs may have queued while no worker was there to take them. */
    for (int i = 0; i < alive; i++)
        supervisor_wake(m);
}

int supervisor_start(struct master *m)
{
    m->worker_target = m->cfg->workers;
    supervisor_fill(m);
    return supervisor_alive(m) > 0 ? 0 : -1;
}

/* Worker slot is gone: reported through the worker_lost hook (its
 * frames and jobs are the relay's and the requests' business), then its
 * channel, eventfd and segment entry are freed. */
static void supervisor_lost(struct master *m, int slot)
{
    struct mworker *mw = &m->workers[slot];

    /* Reaped: no signal may reach its pid (another process's now). */
    mw->pid = 0;
    m->hooks.worker_lost(m, slot);
    supervisor_chan_free(mw);
    close(mw->wake_fd);
    memset(mw, 0, sizeof(*mw));
    mw->wake_fd = -1;
    atomic_store(&m->shm.hdr->workers[slot].pid, 0);
    atomic_store(&m->shm.hdr->workers[slot].active, 0);
    atomic_store(&m->shm.hdr->workers[slot].wake_pending, 0);
}

static void supervisor_respawn_cb(evutil_socket_t fd, short what,
                                  void *arg);

static void supervisor_arm_respawn(struct master *m, int64_t ms)
{
    struct timeval tv = util_ms_to_tv(ms);

    if (m->respawn_timer == NULL)
        m->respawn_timer = evtimer_new(m->base, supervisor_respawn_cb, m);
    if (m->respawn_timer == NULL)
        util_oom("the respawn timer");
    UTIL_MUST(evtimer_add(m->respawn_timer, &tv), "the respawn timer");
}

/* The back-off is over: replace the dead workers, then watch them for a
 * crash window. If none of them dies young in it, the streak is over. */
static void supervisor_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;

    (void)fd;
    (void)what;
    if (m->stopping)
        return;
    if (m->respawn_settling) {
        m->respawn_settling = false;
        log_msg(&m->log, LOG_INFO, NULL, "workers stay up again; crash "
                "back-off (%lld ms after %d early deaths) cleared",
                (long long)m->respawn_delay_ms, m->crash_streak);
        m->crash_streak = 0;
        m->respawn_delay_ms = 0;
        return;
    }
    supervisor_fill(m);
    m->respawn_settling = true;
    supervisor_arm_respawn(m, MASTER_CRASH_WINDOW_MS);
}

/* Counts a worker that died without being told to. True when it died
 * young, which lengthens the crash streak; a worker that had run for a
 * while ends it. */
static bool supervisor_crashed(struct master *m, int slot)
{
    bool young = util_now_ms() - m->workers[slot].started_ms <
                 MASTER_CRASH_WINDOW_MS;

    m->worker_crashes++;
    m->respawn_owed++;
    if (young) {
        m->crash_streak++;
        return true;
    }
    m->crash_streak = 0;
    m->respawn_delay_ms = 0;
    m->respawn_settling = false;
    if (m->respawn_timer != NULL)
        evtimer_del(m->respawn_timer);
    return false;
}

/* Workers keep dying at start: the next start waits, twice as long for
 * each early death in a row. Logged once per decision. */
static void supervisor_back_off(struct master *m)
{
    int shift = m->crash_streak < SUPERVISOR_MAX_SHIFT ? m->crash_streak
                                                       : SUPERVISOR_MAX_SHIFT;
    int64_t ms = (int64_t)MASTER_RESPAWN_BASE_MS << shift;

    if (ms > MASTER_RESPAWN_MAX_MS)
        ms = MASTER_RESPAWN_MAX_MS;
    m->respawn_delay_ms = ms;
    m->respawn_settling = false;
    log_msg(&m->log, LOG_WARN, NULL, "workers keep dying at start (%d in a "
            "row); next start in %lld ms", m->crash_streak, (long long)ms);
    supervisor_arm_respawn(m, ms);
}

void supervisor_reap(struct master *m)
{
    bool crashed_young = false;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int slot = -1;

        for (int i = 0; i < CFG_MAX_WORKERS; i++)
            if (m->workers[i].pid == pid)
                slot = i;
        if (slot < 0)
            continue;
        if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0 ||
            (!m->workers[slot].retiring && !m->stopping)) {
            log_msg(&m->log, m->stopping ? LOG_INFO : LOG_WARN, NULL,
                    "worker %d (pid %ld) %s %d", slot, (long)pid,
                    WIFSIGNALED(status) ? "killed by signal" : "exited with",
                    WIFSIGNALED(status) ? WTERMSIG(status)
                                        : WEXITSTATUS(status));
            if (!m->stopping && !m->workers[slot].retiring &&
                supervisor_crashed(m, slot))
                crashed_young = true;
        } else {
            log_msg(&m->log, LOG_INFO, NULL, "worker %d (pid %ld) exited",
                    slot, (long)pid);
        }
        supervisor_lost(m, slot);
    }
    if (m->stopping) {
        supervisor_end_if_none(m);
        return;
    }
    /* (An older worker dying in the same round ends the streak.) */
    if (crashed_young && m->crash_streak > 0) {
        supervisor_back_off(m);
        return;
    }
    /* A start is pending after a back-off: it fills every free slot. */
    if (m->respawn_timer != NULL && !m->respawn_settling &&
        evtimer_pending(m->respawn_timer, NULL))
        return;
    supervisor_fill(m);
}

/* Tells worker slot i to finish what it runs, take nothing new, exit. */
static void supervisor_retire(struct master *m, int i)
{
    m->workers[i].retiring = true;
    m->hooks.worker_send(m, i, FRAME_SHUTDOWN, 0, 0);
}

int supervisor_scale(struct master *m, int target)
{
    int alive;

    if (target < 1)
        target = 1;
    if (target > CFG_MAX_WORKERS)
        target = CFG_MAX_WORKERS;
    m->worker_target = target;
    alive = supervisor_alive(m);
    /* The newest (highest) slots go first. */
    for (int i = CFG_MAX_WORKERS - 1; i >= 0 && alive > target; i--) {
        if (m->workers[i].pid > 0 && !m->workers[i].retiring) {
            supervisor_retire(m, i);
            alive--;
        }
    }
    if (!m->stopping)
        supervisor_fill(m);
    log_msg(&m->log, LOG_INFO, NULL, "workers: target %d", target);
    return target;
}

int supervisor_renew(struct master *m)
{
    int started = 0;

    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0 && !m->workers[i].retiring)
            supervisor_retire(m, i);
    supervisor_fill(m);
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        started += m->workers[i].pid > 0 && !m->workers[i].retiring;
    return started > 0 ? 0 : -1;
}

void supervisor_shutdown_workers(struct master *m)
{
    m->stopping = true;
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0)
            supervisor_retire(m, i);
}
