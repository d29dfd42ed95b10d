/* control.c - the control socket: a Unix stream socket (mode 0600) on
 * which a client writes one command line and reads one JSON answer.
 * Owns each control connection from accept to close: at most
 * CONTROL_CONNS_MAX at a time, each closed after CONTROL_TIMEOUT_S
 * without its command or with its answer unread, and whenever the client
 * leaves, so a client can hold neither descriptors nor memory for long. */
#include "master.h"
#include "budgets.h"
#include "provhealth.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clbreaker.h"
#include "cluster.h"
#include "mcap.h"

#define CONTROL_LINE_MAX 4096
#define CONTROL_BACKLOG  16
/* Time to send the command line, and again to read the answer, however
 * slowly the bytes trickle: pipelinectl needs milliseconds. */
#define CONTROL_TIMEOUT_S 5
/* Open control connections at a time; more are refused with an error
 * answer, so a flood cannot take the descriptors the HTTP side needs. */
#define CONTROL_CONNS_MAX 32
#define CONTROL_MSG_MAX   160     /* an error message built here */
#define CONTROL_PROC_PATH_MAX 64  /* "/proc/PID/smaps_rollup" */
#define CONTROL_PROC_LINE_MAX 256 /* a line of it */

static const char control_busy[] =
    "{\"ok\":false,\"error\":\"too many control connections; "
    "try again\"}\n";
#define CONTROL_ACCEPT_RETRY_MS 250    /* out of descriptors: retry after */
#define CONTROL_ACCEPT_LOG_MS   60000  /* ... and say so at most this often */

/* An open control connection; kept on a list so every one can be freed
 * at exit and in a new worker. */
struct control_conn {
    struct master *m;
    struct bufferevent *bev;
    struct event *deadline;     /* closes it after CONTROL_TIMEOUT_S */
    struct control_conn *prev, *next;
};

static void control_conn_free(struct control_conn *cc)
{
    struct master *m = cc->m;

    if (cc->prev != NULL)
        cc->prev->next = cc->next;
    else
        m->control_conns = cc->next;
    if (cc->next != NULL)
        cc->next->prev = cc->prev;
    if (cc->deadline != NULL)
        event_free(cc->deadline);
    bufferevent_free(cc->bev);
    free(cc);
    /* A descriptor is back: accept again if we ran out. */
    if (m->control_starved && m->control != NULL) {
        m->control_starved = false;
        evconnlistener_enable(m->control);
    }
}

/* Arms (or re-arms) the connection's deadline; -1 if it cannot. */
static int control_arm_deadline(struct control_conn *cc)
{
    struct timeval tv = { CONTROL_TIMEOUT_S, 0 };

    return evtimer_add(cc->deadline, &tv);
}

static void control_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct control_conn *cc = arg;

    (void)fd;
    (void)what;
    control_conn_free(cc);
}

static int control_conn_count(const struct master *m)
{
    int n = 0;

    for (const struct control_conn *cc = m->control_conns; cc != NULL;
         cc = cc->next)
        n++;
    return n;
}


/* One percentile in ms, written to the microsecond (json-c's own
 * "%.17g" would show 67.915999999999997). */
static json_object *control_ms(const struct histogram *h, double q)
{
    double ms = hist_quantile_ms(h, q);
    char text[HIST_MS_TEXT_MAX];

    hist_format_ms(text, sizeof(text), ms);
    return json_object_new_double_s(ms, text);
}

static json_object *control_latency(const struct histogram *h)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "p50", control_ms(h, 0.50));
    json_object_object_add(o, "p95", control_ms(h, 0.95));
    json_object_object_add(o, "p99", control_ms(h, 0.99));
    return o;
}

static char *control_finish(json_object *root)
{
    char *s = strdup(json_object_to_json_string_ext(root,
                                                    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(root);
    return s;
}

/* A process's proportional set size (shared pages divided among the
 * processes that map them, the shared segment included) from
 * /proc/PID/smaps_rollup, in KB; -1 when it cannot be read. */
static int64_t control_pss_kb(pid_t pid)
{
    char path[CONTROL_PROC_PATH_MAX], line[CONTROL_PROC_LINE_MAX];
    int64_t kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        long long v;

        if (sscanf(line, "Pss: %lld kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    fclose(f);
    return kb;
}

static void control_memory_add(json_object *list, int64_t *total, pid_t pid,
                               const char *role)
{
    json_object *o = json_object_new_object();
    int64_t kb = control_pss_kb(pid);

    json_object_object_add(o, "pid", json_object_new_int(pid));
    json_object_object_add(o, "role", json_object_new_string(role));
    json_object_object_add(o, "pss_kb",
                           kb >= 0 ? json_object_new_int64(kb) : NULL);
    json_object_array_add(list, o);
    if (kb >= 0)
        *total += kb;
}

/* "memory": PSS of the master and each worker (stats). */
static json_object *control_memory(struct master *m)
{
    json_object *mem = json_object_new_object();
    json_object *list = json_object_new_array();
    int64_t total = 0;

    control_memory_add(list, &total, getpid(), "master");
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0)
            control_memory_add(list, &total, m->workers[i].pid, "worker");
    json_object_object_add(mem, "pss_kb", json_object_new_int64(total));
    json_object_object_add(mem, "processes", list);
    return mem;
}

char *control_stats_json(struct master *m)
{
    const struct shm_counters *c = &m->shm.hdr->counters;
    json_object *root = json_object_new_object();
    json_object *workers = json_object_new_object();
    json_object *pids = json_object_new_array();
    json_object *queue = json_object_new_object();
    json_object *reqs = json_object_new_object();
    json_object *targets = json_object_new_array();

    json_object_object_add(root, "pid", json_object_new_int(getpid()));
    json_object_object_add(root, "uptime_s", json_object_new_int64(
        (util_now_ms() - m->started_ms) / 1000));
    for (int i = 0; i < CFG_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0 && !m->workers[i].retiring)
            json_object_array_add(pids,
                                  json_object_new_int(m->workers[i].pid));
    json_object_object_add(workers, "count",
                           json_object_new_int(supervisor_alive(m)));
    json_object_object_add(workers, "target",
                           json_object_new_int(m->worker_target));
    json_object_object_add(workers, "pids", pids);
    /* Beyond the contract: replacements and the crash back-off. */
    json_object_object_add(workers, "restarts", json_object_new_int64(
        (int64_t)m->worker_restarts));
    json_object_object_add(workers, "crashes", json_object_new_int64(
        (int64_t)m->worker_crashes));
    json_object_object_add(workers, "crash_streak",
                           json_object_new_int(m->crash_streak));
    json_object_object_add(workers, "respawn_backoff_ms",
                           json_object_new_int64(m->respawn_delay_ms));
    json_object_object_add(root, "workers", workers);
    json_object_object_add(queue, "depth",
                           json_object_new_int64(pq_size(&m->shm.pq)));
    json_object_object_add(queue, "capacity",
                           json_object_new_int64(m->shm.pq.hdr->capacity));
    json_object_object_add(root, "queue", queue);
    json_object_object_add(reqs, "total", json_object_new_int64(
        (int64_t)atomic_load(&c->total)));
    json_object_object_add(reqs, "succeeded", json_object_new_int64(
        (int64_t)atomic_load(&c->succeeded)));
    json_object_object_add(reqs, "failed", json_object_new_int64(
        (int64_t)atomic_load(&c->failed)));
    json_object_object_add(reqs, "retried", json_object_new_int64(
        (int64_t)atomic_load(&c->retried)));
    json_object_object_add(reqs, "active",
                           json_object_new_int64(m->active_reqs));
    json_object_object_add(root, "requests", reqs);
    json_object_object_add(root, "capture",
                           json_object_new_boolean(mcap_enabled(m)));
    for (int t = 0; t < m->cfg->target_count; t++) {
        const struct cfg_target *ct = &m->cfg->targets[t];
        const struct shm_target *st = master_target(m, t);
        json_object *o = json_object_new_object();
        uint32_t state, health;

        json_object_object_add(o, "name", json_object_new_string(ct->name));
        json_object_object_add(o, "virtual_model", json_object_new_string(
            m->cfg->vmodels[ct->vmodel].name));
        /* Open turns half-open lazily, when a call asks: show what a
         * call would find now. */
        shm_lock(&m->shm);
        state = st->cb.state;
        if (state == SHM_BREAKER_OPEN &&
            cb_usable(&st->cb, &m->cfg->breaker, util_now_ms()))
            state = SHM_BREAKER_HALF_OPEN;
        health = provhealth_target_state(&m->shm, m->slots.target_slot[t]);
        shm_unlock(&m->shm);
        json_object_object_add(o, "state", json_object_new_string(
            cb_state_name(state)));
        json_object_object_add(o, "active",
                               json_object_new_int(atomic_load(&st->active)));
        json_object_object_add(o, "requests", json_object_new_int64(
            (int64_t)atomic_load(&st->requests)));
        json_object_object_add(o, "failures", json_object_new_int64(
            (int64_t)atomic_load(&st->failures)));
        json_object_object_add(o, "health", json_object_new_string(
            health_kind_name(health)));
        json_object_object_add(o, "latency_ms",
                               control_latency(
                                   &m->latency[m->slots.target_slot[t]]));
        budgets_target_stats(m, t, o);
        json_object_array_add(targets, o);
    }
    json_object_object_add(root, "targets", targets);
    json_object_object_add(root, "memory", control_memory(m));
    if (cluster_configured(m))
        json_object_object_add(root, "cluster", cluster_stats(m));
    return control_finish(root);
}

static char *control_workers_json(struct master *m)
{
    json_object *root = json_object_new_object();
    json_object *list = json_object_new_array();

    for (int i = 0; i < CFG_MAX_WORKERS; i++) {
        const struct shm_worker *sw = &m->shm.hdr->workers[i];
        json_object *o;

        if (m->workers[i].pid <= 0)
            continue;
        o = json_object_new_object();
        json_object_object_add(o, "pid",
                               json_object_new_int(m->workers[i].pid));
        json_object_object_add(o, "slot", json_object_new_int(i));
        json_object_object_add(o, "active",
                               json_object_new_int(atomic_load(&sw->active)));
        json_object_object_add(o, "jobs_done", json_object_new_int64(
            (int64_t)atomic_load(&sw->jobs_done)));
        json_object_object_add(o, "started_at", json_object_new_int64(
            atomic_load(&sw->started_ms) / 1000));
        json_object_object_add(o, "retiring", json_object_new_boolean(
            m->workers[i].retiring));
        json_object_array_add(list, o);
    }
    json_object_object_add(root, "workers", list);
    return control_finish(root);
}

static char *control_error(const char *msg)
{
    json_object *root = json_object_new_object();

    json_object_object_add(root, "ok", json_object_new_boolean(0));
    json_object_object_add(root, "error", json_object_new_string(msg));
    return control_finish(root);
}

/* scale N | +N | -N: an absolute count or a change of the target; the
 * result must lie in 1..CFG_MAX_WORKERS, and a refusal says so. */
static char *control_scale(struct master *m, const char *arg)
{
    const char *digits = arg;
    bool relative;
    long long n, target;
    char msg[CONTROL_MSG_MAX];
    json_object *root;

    if (arg == NULL || *arg == '\0')
        return control_error("usage: scale N | +N | -N");
    relative = *arg == '+' || *arg == '-';
    if (relative)
        digits++;
    if (!isdigit((unsigned char)*digits) ||
        util_parse_int(digits, 0, INT_MAX, &n) < 0) {
        snprintf(msg, sizeof(msg), "scale: N must be a whole number: "
                 "workers must stay between 1 and %d (now %d)",
                 CFG_MAX_WORKERS, m->worker_target);
        return control_error(msg);
    }
    if (*arg == '-')
        n = -n;
    target = relative ? m->worker_target + n : n;
    if (target < 1 || target > CFG_MAX_WORKERS) {
        if (relative)
            snprintf(msg, sizeof(msg), "scale: %+lld would make %lld workers: "
                     "they must stay between 1 and %d (now %d)", n,
                     target, CFG_MAX_WORKERS, m->worker_target);
        else
            snprintf(msg, sizeof(msg), "scale: %lld workers is out of "
                     "range: they must stay between 1 and %d (now %d)",
                     target, CFG_MAX_WORKERS, m->worker_target);
        return control_error(msg);
    }
    target = supervisor_scale(m, (int)target);
    root = json_object_new_object();
    json_object_object_add(root, "ok", json_object_new_boolean(1));
    json_object_object_add(root, "workers",
                           json_object_new_int((int)target));
    return control_finish(root);
}

static char *control_breaker_reset(struct master *m, const char *name)
{
    bool found = false;
    json_object *root;

    if (name == NULL || *name == '\0')
        return control_error("usage: breaker reset NAME");
    for (int t = 0; t < m->cfg->target_count; t++) {
        if (strcmp(m->cfg->targets[t].name, name) == 0) {
            struct shm_target *st = master_target(m, t);

            shm_lock(&m->shm);
            cb_reset(&st->cb);
            atomic_store(&st->state, SHM_BREAKER_CLOSED);
            shm_unlock(&m->shm);
            found = true;
        }
    }
    if (!found)
        return control_error("breaker reset: no such target");
    log_msg(&m->log, LOG_INFO, NULL, "breaker of %s reset by operator", name);
    clbreaker_reset(m, name);
    root = json_object_new_object();
    json_object_object_add(root, "ok", json_object_new_boolean(1));
    return control_finish(root);
}

static char *control_capture(struct master *m, const char *arg)
{
    json_object *root;
    bool on;

    if (arg != NULL && strcmp(arg, "on") == 0)
        on = true;
    else if (arg != NULL && strcmp(arg, "off") == 0)
        on = false;
    else
        return control_error("usage: capture on|off");
    if (mcap_switch(m, on) < 0)
        return control_error("capture is not configured (no 'capture' "
                             "group in the configuration)");
    root = json_object_new_object();
    json_object_object_add(root, "ok", json_object_new_boolean(1));
    json_object_object_add(root, "capture", json_object_new_boolean(on));
    return control_finish(root);
}

static const char control_help[] =
    "{\"commands\":["
    "\"stats\",\"workers\",\"scale N | +N | -N\",\"breaker reset NAME\","
    "\"capture on|off\",\"cluster\",\"reload\",\"help\"]}";

static char *control_reload(struct master *m)
{
    char err[CFG_ERR_MAX];
    json_object *root;

    if (m->draining)
        return control_error("shutting down");
    if (m->hooks.reload(m, err, sizeof(err)) < 0)
        return control_error(err);
    root = json_object_new_object();
    json_object_object_add(root, "ok", json_object_new_boolean(1));
    return control_finish(root);
}

/* Runs one command line; returns the malloc'd JSON answer. */
static char *control_run(struct master *m, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r", &save);
    char *arg = strtok_r(NULL, " \t\r", &save);

    if (cmd == NULL)
        return control_error("empty command; try help");
    if (strcmp(cmd, "stats") == 0)
        return control_stats_json(m);
    if (strcmp(cmd, "workers") == 0)
        return control_workers_json(m);
    if (strcmp(cmd, "scale") == 0)
        return control_scale(m, arg);
    if (strcmp(cmd, "breaker") == 0 && arg != NULL &&
        strcmp(arg, "reset") == 0)
        return control_breaker_reset(m, strtok_r(NULL, " \t\r", &save));
    if (strcmp(cmd, "reload") == 0)
        return control_reload(m);
    if (strcmp(cmd, "capture") == 0)
        return control_capture(m, arg);
    if (strcmp(cmd, "cluster") == 0)
        return cluster_configured(m)
                   ? cluster_instances_json(m)
                   : control_error("cluster mode is not configured (no "
                                   "'cluster' group in the configuration)");
    if (strcmp(cmd, "help") == 0)
        return strdup(control_help);
    return control_error("unknown command; try help");
}

static void control_written_cb(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        control_conn_free(arg);
}

/* While the answer goes out: the client left (EPIPE, reset) or anything
 * else went wrong. Nothing more can reach it. */
static void control_reply_event_cb(struct bufferevent *bev, short what,
                                   void *arg)
{
    (void)bev;
    (void)what;
    control_conn_free(arg);
}

/* Sends answer (malloc'd; freed here) and closes once it is written, or
 * when the client leaves or lets CONTROL_TIMEOUT_S pass without reading
 * it. May free cc. */
static void control_reply(struct control_conn *cc, char *answer)
{
    struct bufferevent *bev = cc->bev;

    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, control_written_cb, control_reply_event_cb,
                      cc);
    if (answer == NULL)
        answer = strdup("{\"ok\":false,\"error\":\"out of memory\"}");
    if (answer == NULL || bufferevent_write(bev, answer, strlen(answer)) < 0 ||
        bufferevent_write(bev, "\n", 1) < 0 ||
        control_arm_deadline(cc) < 0) {
        free(answer);
        control_conn_free(cc);
        return;
    }
    free(answer);
}

static void control_answer(struct control_conn *cc, char *line)
{
    control_reply(cc, control_run(cc->m, line));
}

static void control_read_cb(struct bufferevent *bev, void *arg)
{
    struct control_conn *cc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);

    if (line == NULL) {
        if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
            evbuffer_drain(in, evbuffer_get_length(in));
            control_reply(cc, control_error("command line too long"));
        }
        return;
    }
    control_answer(cc, line);
    free(line);
}

/* While the command comes in: EOF (perhaps after a command without its
 * newline), a reset or an error. */
static void control_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct control_conn *cc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if ((what & BEV_EVENT_EOF) && evbuffer_get_length(in) > 0 &&
        evbuffer_get_length(in) <= CONTROL_LINE_MAX) {
        /* A command without its newline, then a half-close: the client
         * may still read. If it closed altogether, writing the answer
         * fails and control_reply_event_cb frees the connection. */
        size_t n = evbuffer_get_length(in);
        char *line = malloc(n + 1);

        if (line != NULL) {
            evbuffer_remove(in, line, n);
            line[n] = '\0';
            control_answer(cc, line);
            free(line);
            return;
        }
    }
    control_conn_free(cc);
}

/* Over CONTROL_CONNS_MAX: a short error instead of a connection. It fits
 * any socket buffer, so it is sent without waiting, or not at all. */
static void control_refuse(struct master *m, evutil_socket_t fd)
{
    if (send(fd, control_busy, sizeof(control_busy) - 1,
             MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_msg(&m->log, LOG_DEBUG, NULL, "refusing a control connection: "
                "%s", strerror(errno));
    close(fd);
}

static void control_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                              struct sockaddr *sa, int len, void *arg)
{
    struct master *m = arg;
    struct event_base *base = evconnlistener_get_base(l);
    struct control_conn *cc;

    (void)sa;
    (void)len;
    if (control_conn_count(m) >= CONTROL_CONNS_MAX) {
        log_msg(&m->log, LOG_WARN, NULL, "%d control connections open: "
                "refusing another", CONTROL_CONNS_MAX);
        control_refuse(m, fd);
        return;
    }
    cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        close(fd);
        return;
    }
    cc->m = m;
    cc->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (cc->bev == NULL) {
        free(cc);
        close(fd);
        return;
    }
    cc->next = m->control_conns;
    if (cc->next != NULL)
        cc->next->prev = cc;
    m->control_conns = cc;
    cc->deadline = evtimer_new(base, control_deadline_cb, cc);
    if (cc->deadline == NULL || control_arm_deadline(cc) < 0) {
        control_conn_free(cc);
        return;
    }
    bufferevent_setcb(cc->bev, control_read_cb, NULL, control_event_cb, cc);
    /* Reading stops at one byte over the limit: a line longer than that
     * is refused, so more is never needed. */
    bufferevent_setwatermark(cc->bev, EV_READ, 0, CONTROL_LINE_MAX + 1);
    bufferevent_enable(cc->bev, EV_READ);
}

/* accept() failed for want of a descriptor (or worse): the client stays
 * in the backlog, so pause the listener rather than fail again at once,
 * at full CPU, and say so once in a while. */
static void control_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct master *m = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = util_ms_to_tv(CONTROL_ACCEPT_RETRY_MS);
    int64_t now = util_now_ms();

    evconnlistener_disable(l);
    m->control_starved = true;
    evtimer_add(m->control_retry, &tv);
    if (m->control_error_logged_ms != 0 &&
        now - m->control_error_logged_ms < CONTROL_ACCEPT_LOG_MS)
        return;
    m->control_error_logged_ms = now;
    log_msg(&m->log, LOG_ERROR, NULL, "control socket: accept: %s: new "
            "connections wait until a descriptor is free", strerror(err));
}

static void control_accept_retry_cb(evutil_socket_t fd, short what,
                                    void *arg)
{
    struct master *m = arg;

    (void)fd;
    (void)what;
    m->control_starved = false;
    if (m->control != NULL)
        evconnlistener_enable(m->control);
}

int control_init(struct master *m)
{
    const char *path = m->cfg->control_socket;
    struct sockaddr_un sun;
    char dir[sizeof(sun.sun_path)];
    char *slash;
    mode_t old;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (util_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) < 0) {
        log_msg(&m->log, LOG_ERROR, NULL, "control_socket path too long: %s",
                path);
        return -1;
    }
    util_strlcpy(dir, path, sizeof(dir));
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            log_msg(&m->log, LOG_ERROR, NULL, "cannot create %s: %s", dir,
                    strerror(errno));
            return -1;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    /* A socket file left by a crash would block the bind. Only a file
     * nobody answers on is stale: refuse to steal a live daemon's. */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
        errno == EAGAIN) {
        log_msg(&m->log, LOG_ERROR, NULL, "%s: another daemon is "
                "listening there", path);
        close(fd);
        return -1;
    }
    close(fd);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    old = umask(0177);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        umask(old);
        log_msg(&m->log, LOG_ERROR, NULL, "cannot bind %s: %s", path,
                strerror(errno));
        close(fd);
        return -1;
    }
    umask(old);
    chmod(path, 0600);
    m->control_retry = evtimer_new(m->base, control_accept_retry_cb, m);
    if (m->control_retry == NULL) {
        close(fd);
        unlink(path);
        return -1;
    }
    m->control = evconnlistener_new(m->base, control_accept_cb, m,
                                    LEV_OPT_CLOSE_ON_FREE, CONTROL_BACKLOG,
                                    fd);
    if (m->control == NULL) {
        close(fd);
        unlink(path);
        return -1;
    }
    evconnlistener_set_error_cb(m->control, control_accept_error_cb);
    return 0;
}

void control_free(struct master *m)
{
    m->control_starved = false;    /* no resuming while tearing down */
    while (m->control_conns != NULL)
        control_conn_free(m->control_conns);
    if (m->control_retry != NULL)
        event_free(m->control_retry);
    m->control_retry = NULL;
    if (m->control == NULL)
        return;
    evconnlistener_free(m->control);
    m->control = NULL;
}
