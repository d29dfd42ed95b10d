/* master.c - the master's life cycle: builds the shared segment, the
 * event loop, the front end, the control socket and the workers; turns
 * signals into actions (libevent delivers them through its self-pipe, so
 * no work runs in a signal handler); drains and stops. */
#include "master.h"
#include "budgets.h"

#include "relay.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "frame.h"
#include "clbreaker.h"
#include "clbudget.h"
#include "cluster.h"
#include "mcap.h"
#include "notify.h"
#include "provhealth.h"

static void master_free_loop(struct master *m);
static void master_close_fds(int keep_a, int keep_b, int keep_c);


static void master_stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;

    (void)fd;
    (void)what;
    if (!m->stopping) {
        /* The grace period is over: answer whoever is still waiting. */
        log_msg(&m->log, LOG_WARN, NULL, "shutdown timeout: failing %u "
                "request(s) still in flight", m->active_reqs);
        for (uint32_t j = 0; j < m->shm.hdr->job_count; j++) {
            struct mreq *mr = &m->reqs[j];

            if (mr->state == MREQ_FREE)
                continue;
            mreq_fail(mr, 503, "shutting_down", "the server is shutting "
                      "down");
            mreq_cancel(mr);
        }
        master_begin_stop(m);
        return;
    }
    /* Workers did not exit in time. */
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0)
            kill(m->workers[i].pid, SIGKILL);
}

/* Every request is answered: tell the workers to exit; the loop ends
 * when the last one is reaped. */
void master_begin_stop(struct master *m)
{
    struct timeval tv = util_ms_to_tv(MASTER_STOP_GRACE_MS);

    if (m->stopping)
        return;
    supervisor_shutdown_workers(m);
    evtimer_add(m->stop_timer, &tv);
    supervisor_end_if_none(m);
}

/* SIGTERM / SIGINT: refuse new work, finish what is in flight. */
static void master_drain(struct master *m)
{
    struct timeval tv = util_ms_to_tv(m->cfg->shutdown_timeout_ms);

    if (m->draining)
        return;
    m->draining = true;
    notify_send("STOPPING=1");
    log_msg(&m->log, LOG_INFO, NULL, "shutting down: %u request(s) in "
            "flight", m->active_reqs);
    frontend_stop_accepting(m);
    if (m->active_reqs == 0) {
        master_begin_stop(m);
        return;
    }
    evtimer_add(m->stop_timer, &tv);
}

static void master_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;

    (void)what;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        master_drain(m);
        break;
    case SIGQUIT:
        log_msg(&m->log, LOG_INFO, NULL, "SIGQUIT: stopping now");
        for (int i = 0; i < CFG_MAX_WORKERS; i++)
            if (m->workers[i].pid > 0)
                kill(m->workers[i].pid, SIGKILL);
        m->stopping = true;
        m->draining = true;
        event_base_loopbreak(m->base);
        break;
    case SIGCHLD:
        supervisor_reap(m);
        break;
    case SIGTTIN:
        if (!m->draining)
            supervisor_scale(m, m->worker_target + 1);
        break;
    case SIGTTOU:
        if (!m->draining)
            supervisor_scale(m, m->worker_target - 1);
        break;
    case SIGUSR1:
        if (log_reopen(&m->log) < 0)
            log_msg(&m->log, LOG_ERROR, NULL, "cannot reopen %s: %s",
                    m->log.path, strerror(errno));
        else
            log_msg(&m->log, LOG_INFO, NULL, "log file reopened");
        break;
    case SIGHUP:
        if (!m->draining) {
            char err[CFG_ERR_MAX];

            master_reload(m, err, sizeof(err));
        }
        break;
    default:
        break;
    }
}

/* The log's level and file follow the configuration. */
static void master_apply_log(struct master *m, const struct cfg *old)
{
    const char *was = old->log_file, *now = m->cfg->log_file;

    m->log.level = m->cfg->log_level;
    if ((was == NULL && now == NULL) ||
        (was != NULL && now != NULL && strcmp(was, now) == 0))
        return;
    {
        struct log next;

        if (log_open(&next, now, m->cfg->log_level) < 0) {
            log_msg(&m->log, LOG_ERROR, NULL, "cannot open %s: %s; logging "
                    "where it did", now, strerror(errno));
            return;
        }
        log_close(&m->log);
        m->log = next;
    }
}

/* Places next's targets and virtual models in their slots of the
 * segment (names seen before keep theirs, and their state); the latency
 * histograms of slots taken afresh start empty. 0, or -1 with err. */
static int master_apply_slots(struct master *m, const struct cfg *old,
                              const struct cfg *next, char *err,
                              size_t errlen)
{
    uint64_t fresh[SLOTS_FRESH_WORDS];
    enum health_change changed[CFG_MAX_PROVIDERS] = { HEALTH_CHANGE_NONE };
    struct slots_map map;
    int rc;

    shm_lock(&m->shm);
    rc = slots_apply(&m->shm, old, old != NULL ? &m->slots : NULL, next,
                     supervisor_oldest_generation(m), &map, fresh, err,
                     errlen);
    if (rc == 0)
        budgets_place_targets(&m->shm, next, &map, fresh, util_now_ms());
    if (rc == 0 && provhealth_apply(&m->shm, next, &map, util_now_ms(),
                                    changed) < 0)
        /* Cannot happen (twice the providers' maximum); the targets
         * placed keep working, without health. */
        log_msg(&m->log, LOG_ERROR, NULL, "no room for the providers' "
                "health state");
    shm_unlock(&m->shm);
    if (rc < 0)
        return -1;
    for (int p = 0; p < next->provider_count; p++)
        if (changed[p] != HEALTH_CHANGE_NONE)
            log_msg(&m->log, LOG_INFO, NULL, "health of provider %s: %s "
                    "(health_check removed)", next->providers[p].name,
                    health_change_name(changed[p]));
    m->slots = map;
    for (int s = 0; s < SHM_TARGET_SLOTS; s++)
        if (slots_fresh(fresh, s)) {
            memset(&m->latency[s], 0, sizeof(m->latency[s]));
            memset(&m->tokens[s], 0, sizeof(m->tokens[s]));
            clbreaker_slot_fresh(m, s);
        }
    return 0;
}

/* `user` takes effect when the master runs as root (its workers drop
 * to it); otherwise there is nothing to drop, as with nginx: said at
 * start and at each reload, then ignored. */
static void master_check_user(const struct master *m)
{
    const struct cfg *cfg = m->cfg;

    if (cfg->user == NULL)
        return;
    if (geteuid() == 0) {
        log_msg(&m->log, LOG_INFO, NULL, "workers run as user %s (uid %ld, "
                "gid %ld)", cfg->user, (long)cfg->run_as.uid,
                (long)cfg->run_as.gid);
        return;
    }
    if (geteuid() != cfg->run_as.uid || getegid() != cfg->run_as.gid)
        log_msg(&m->log, LOG_WARN, NULL, "user \"%s\" ignored: not "
                "started as root, the workers run as uid %ld like the "
                "master", cfg->user, (long)geteuid());
}

/* Raises the soft RLIMIT_NOFILE to the hard limit (the workers, forked
 * later, inherit it) and keeps the result in m->fd_limit. */
static void master_raise_fd_limit(struct master *m)
{
    struct rlimit rl;
    rlim_t want, was;

    m->fd_limit = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > MASTER_FD_LIMIT_MAX ?
           MASTER_FD_LIMIT_MAX : rl.rlim_max;
    was = rl.rlim_cur;
    if (was != RLIM_INFINITY && was < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            log_msg(&m->log, LOG_INFO, NULL, "open file limit "
                    "(RLIMIT_NOFILE) raised from %llu to %llu",
                    (unsigned long long)was, (unsigned long long)want);
        } else {
            log_msg(&m->log, LOG_WARN, NULL, "cannot raise the open file "
                    "limit (RLIMIT_NOFILE) from %llu to %llu: %s",
                    (unsigned long long)was, (unsigned long long)want,
                    strerror(errno));
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY)
        m->fd_limit = (long long)rl.rlim_cur;
}

/* Caps cfg's clients.max_connections (cfg about to be used, at start or
 * by a reload) to the connections the open file limit leaves room for
 * beside the master's own descriptors, and says so: past the limit,
 * accept() fails instead of connections waiting their turn. */
static void master_cap_connections(struct master *m, struct cfg *cfg)
{
    long long fit;

    if (m->fd_limit <= 0)
        return;
    fit = m->fd_limit - MASTER_FD_RESERVE -
          (long long)MASTER_FD_PER_WORKER * cfg->workers;
    if (fit < MASTER_MIN_CONNECTIONS)
        fit = MASTER_MIN_CONNECTIONS;
    if (cfg->limits.max_connections <= fit)
        return;
    log_msg(&m->log, LOG_WARN, NULL, "clients.max_connections %d does not "
            "fit the open file limit (RLIMIT_NOFILE %lld): capped to %lld",
            cfg->limits.max_connections, m->fd_limit, fit);
    cfg->limits.max_connections = (int)fit;
}

int master_reload(struct master *m, char *err, size_t errlen)
{
    struct cfg *next, *old = m->cfg;

    notify_send("RELOADING=1");
    next = cfg_load(m->config_path, err, errlen, &m->log);
    if (next == NULL || cfg_reload_check(old, next, err, errlen) < 0 ||
        master_apply_slots(m, old, next, err, errlen) < 0) {
        cfg_free(&next);
        log_msg(&m->log, LOG_ERROR, NULL, "reload refused, keeping the "
                "running configuration: %s", err);
        notify_send("READY=1");
        return -1;
    }
    master_cap_connections(m, next);
    m->cfg = next;
    master_apply_log(m, old);
    master_check_user(m);
    if (frontend_reconfigure(m) < 0)
        log_msg(&m->log, LOG_ERROR, NULL, "reload: out of memory rebuilding "
                "the front end");
    mcap_reconfigure(m);
    /* Budgets placed anew: leased again (or split again) in a cluster. */
    clbudget_configured(m);
    m->worker_target = next->workers;
    cfg_free(&old);
    /* Old workers finish their calls on the old configuration; new ones,
     * forked now, take the queue: no request is dropped. */
    if (supervisor_renew(m) < 0)
        log_msg(&m->log, LOG_ERROR, NULL, "reload: no new worker could be "
                "started");
    log_msg(&m->log, LOG_INFO, NULL, "configuration reloaded from %s",
            m->config_path);
    notify_send("READY=1");
    return 0;
}

static const int master_signals[] = {
    SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGTTIN, SIGTTOU, SIGUSR1, SIGHUP
};

/* The pointers through which the modules below reach each other and
 * this one (master.h, struct master_hooks). */
static void master_set_hooks(struct master *m)
{
    m->hooks = (struct master_hooks){
        .worker_frames = relay_read_cb,
        .worker_lost = relay_worker_lost,
        .worker_send = relay_send,
        .free_in_child = master_free_in_child,
        .begin_stop = master_begin_stop,
        .reload = master_reload,
    };
}

int master_init(struct master *m, struct cfg *cfg, const char *config_path)
{
    size_t nsig = sizeof(master_signals) / sizeof(master_signals[0]);

    master_set_hooks(m);
    m->cfg = cfg;
    m->config_path = config_path;
    m->control_fd = -1;
    m->started_ms = util_now_ms();
    m->started_wall_ms = util_wall_ms();
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        m->workers[i].wake_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    log_route_libevent(&m->log);
    master_raise_fd_limit(m);
    master_cap_connections(m, cfg);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_msg(&m->log, LOG_ERROR, NULL, "libcurl initialisation failed");
        return -1;
    }
    if (shm_create(&m->shm, cfg) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "cannot map the shared segment: "
                "%s", strerror(errno));
        return -1;
    }
    m->reqs = calloc(m->shm.hdr->job_count, sizeof(*m->reqs));
    m->latency = calloc(SHM_TARGET_SLOTS, sizeof(*m->latency));
    m->tokens = calloc(SHM_TARGET_SLOTS, sizeof(*m->tokens));
    if (m->reqs == NULL || m->latency == NULL || m->tokens == NULL)
        util_oom("the master's request table");
    m->base = util_event_base_new();
    if (m->base == NULL)
        return -1;
    {
        char err[CFG_ERR_MAX];

        /* Cannot fail: every slot is free. */
        if (master_apply_slots(m, NULL, cfg, err, sizeof(err)) < 0) {
            log_msg(&m->log, LOG_ERROR, NULL, "%s", err);
            return -1;
        }
    }
    m->stop_timer = evtimer_new(m->base, master_stop_timeout_cb, m);
    if (m->stop_timer == NULL)
        return -1;
    for (size_t i = 0; i < nsig; i++) {
        m->signals[i] = evsignal_new(m->base, master_signals[i],
                                     master_signal_cb, m);
        if (m->signals[i] == NULL || event_add(m->signals[i], NULL) < 0)
            return -1;
    }
    if (mcap_init(m) < 0 || frontend_init(m) < 0 || control_init(m) < 0 ||
        cluster_init(m) < 0)
        return -1;
    master_check_user(m);
    if (supervisor_start(m) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "no worker could be started");
        return -1;
    }
    log_msg(&m->log, LOG_INFO, NULL, "serving on %s with %d worker(s); "
            "control socket %s", cfg->listen, cfg->workers,
            cfg->control_socket);
    {
        char ready[64];

        snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%ld",
                 (long)getpid());
        if (notify_send(ready) < 0)
            log_msg(&m->log, LOG_WARN, NULL, "cannot notify the service "
                    "manager (NOTIFY_SOCKET): %s", strerror(errno));
    }
    return 0;
}

void master_free_in_child(struct master *m, int keep_a, int keep_b)
{
    /* The master's sockets must not stay open in a worker: a connection
     * the master closes would stay open through it. Close the
     * descriptors first and free the structures after: freeing events
     * would otherwise unregister the master's descriptors from the epoll
     * instance the two processes share. Once closed, those calls only
     * fail with EBADF. */
    master_close_fds(keep_a, keep_b, m->log.fd);
    master_free_loop(m);
}

int master_run(struct master *m)
{
    event_base_dispatch(m->base);
    log_msg(&m->log, LOG_INFO, NULL, "stopped");
    return m->exit_code;
}

static void master_free_loop(struct master *m)
{
    size_t nsig = sizeof(master_signals) / sizeof(master_signals[0]);

    /* No request callbacks from here on: the server frees them. */
    mreq_free_all(m);
    control_free(m);
    cluster_free(m);
    frontend_free(m);
    for (int i = 0; i < CFG_MAX_WORKERS; i++) {
        supervisor_chan_free(&m->workers[i]);
        if (m->workers[i].wake_fd >= 0)
            close(m->workers[i].wake_fd);
        m->workers[i].wake_fd = -1;
    }
    for (size_t i = 0; i < nsig; i++)
        if (m->signals[i] != NULL)
            event_free(m->signals[i]);
    if (m->stop_timer != NULL)
        event_free(m->stop_timer);
    if (m->respawn_timer != NULL)
        event_free(m->respawn_timer);
    if (m->base != NULL)
        event_base_free(m->base);
    free(m->reqs);
    free(m->latency);
    free(m->tokens);
    budgets_free(m);
    m->reqs = NULL;
    m->latency = NULL;
    m->tokens = NULL;
    m->base = NULL;
}

static void master_close_fds(int keep_a, int keep_b, int keep_c)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int dfd = dir ? dirfd(dir) : -1;

    if (dir == NULL)
        return;
    while ((de = readdir(dir)) != NULL) {
        long long fd;

        if (util_parse_int(de->d_name, STDERR_FILENO + 1, INT32_MAX,
                           &fd) < 0)
            continue;
        if (fd != dfd && fd != keep_a && fd != keep_b && fd != keep_c)
            close((int)fd);
    }
    closedir(dir);
}

void master_free(struct master *m)
{
    if (m->control != NULL)
        unlink(m->cfg->control_socket);
    /* The files still being written, while the loop is there (not in a
     * worker: the thread is the master's alone). */
    mcap_free(m);
    master_free_loop(m);
    shm_destroy(&m->shm);
    cfg_free(&m->cfg);
    curl_global_cleanup();
    log_route_libevent(NULL);
}
