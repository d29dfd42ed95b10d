/* pipelinectl.c - the control client: sends one command line to the
 * daemon's control socket and prints the JSON answer as a table, or as
 * received with --json. Exit 0 on success, 1 when the daemon reports an
 * error, 2 when it cannot be reached. `login` runs without the daemon
 * (login.c). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "ctlcli.h"
#include "login.h"
#include "util.h"

#define CTL_DEFAULT_SOCKET "/run/pipelined/control.sock"
#define CTL_LINE_MAX       4096
#define CTL_ANSWER_MAX     (16 * 1024 * 1024)
#define CTL_TIMEOUT_MS     10000
#define CTL_READ_CHUNK     65536

/* A usage error exits like a missing daemon: nothing was asked. */
enum { CTL_OK = 0, CTL_DAEMON_ERROR = 1, CTL_NO_DAEMON = 2,
       CTL_USAGE = CTL_NO_DAEMON };

static void ctl_usage(FILE *out)
{
    fprintf(out,
            "usage: pipelinectl [-s SOCKET] [-c CONFIG] [--json] COMMAND ...\n"
            "       (options may also follow the command; after -- none is"
            " read)\n"
            "       pipelinectl -c CONFIG login PROVIDER\n"
            "commands: stats | workers | scale N|+N|-N | breaker reset NAME"
            " | capture on|off | cluster | reload"
            " | help\n"
            "  -s SOCKET  control socket (default %s)\n"
            "  -c CONFIG  take the socket path from this configuration\n"
            "  --json     print the answer as received\n"
            "login runs the OAuth device flow for PROVIDER of CONFIG without"
            " the daemon\nand writes the provider's token file.\n",
            CTL_DEFAULT_SOCKET);
}

/* Sends line, reads the whole answer; malloc'd into *out. */
static int ctl_exchange(const char *path, const char *line, char **out)
{
    struct sockaddr_un sun;
    size_t len = 0, cap = CTL_READ_CHUNK;
    char *buf = NULL;
    int fd, rc = -1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (util_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) < 0) {
        fprintf(stderr, "pipelinectl: socket path too long: %s\n", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "pipelinectl: cannot connect to %s: %s (is "
                "pipelined running?)\n", path, strerror(errno));
        goto out;
    }
    if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
        fprintf(stderr, "pipelinectl: write: %s\n", strerror(errno));
        goto out;
    }
    buf = malloc(cap);
    if (buf == NULL)
        goto out;
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t n;

        if (poll(&p, 1, CTL_TIMEOUT_MS) <= 0) {
            fprintf(stderr, "pipelinectl: no answer from %s\n", path);
            goto out;
        }
        if (len + CTL_READ_CHUNK + 1 > cap) {
            char *nb;

            if (cap >= CTL_ANSWER_MAX)
                goto out;
            nb = realloc(buf, cap * 2);
            if (nb == NULL)
                goto out;
            buf = nb;
            cap *= 2;
        }
        n = read(fd, buf + len, CTL_READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

static const char *ctl_str(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return "-";
    return json_object_get_string(v);
}

static json_object *ctl_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    json_object_object_get_ex(o, key, &v);
    return v;
}

/* memory   PSS 23456 KB: master 9000, worker 7000, worker 7456 */
static void ctl_print_memory(json_object *mem)
{
    json_object *list = ctl_get(mem, "processes");
    size_t n = list ? json_object_array_length(list) : 0;

    if (mem == NULL)
        return;
    printf("memory    PSS %s KB:", ctl_str(mem, "pss_kb"));
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);

        printf("%s %s %s (pid %s)", i ? "," : "", ctl_str(o, "role"),
               ctl_str(o, "pss_kb"), ctl_str(o, "pid"));
    }
    printf("\n");
}

static void ctl_print_stats(json_object *root)
{
    json_object *w = ctl_get(root, "workers"), *q = ctl_get(root, "queue");
    json_object *r = ctl_get(root, "requests"), *t = ctl_get(root, "targets");
    size_t n = t ? json_object_array_length(t) : 0;
    int width = 6;

    printf("pid %s, up %s s\n", ctl_str(root, "pid"),
           ctl_str(root, "uptime_s"));
    printf("workers   %s of %s  pids %s\n", ctl_str(w, "count"),
           ctl_str(w, "target"), ctl_str(w, "pids"));
    printf("restarts  %s  crashes %s  crash streak %s  respawn back-off "
           "%s ms\n", ctl_str(w, "restarts"), ctl_str(w, "crashes"),
           ctl_str(w, "crash_streak"), ctl_str(w, "respawn_backoff_ms"));
    printf("queue     %s waiting, capacity %s\n", ctl_str(q, "depth"),
           ctl_str(q, "capacity"));
    printf("requests  total %s  succeeded %s  failed %s  retried %s  "
           "active %s\n", ctl_str(r, "total"), ctl_str(r, "succeeded"),
           ctl_str(r, "failed"), ctl_str(r, "retried"), ctl_str(r, "active"));
    if (ctl_get(root, "capture") != NULL)
        printf("capture   %s\n", json_object_get_boolean(
            ctl_get(root, "capture")) ? "on" : "off");
    ctl_print_memory(ctl_get(root, "memory"));
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(ctl_str(json_object_array_get_idx(t, i),
                                    "name"));

        if (l > width)
            width = l;
    }
    printf("\n%-*s  %-14s  %-9s  %6s  %9s  %8s  %8s  %8s  %8s\n", width,
           "TARGET", "VIRTUAL MODEL", "STATE", "ACTIVE", "REQUESTS",
           "FAILURES", "P50 MS", "P95 MS", "P99 MS");
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(t, i);
        json_object *lat = ctl_get(o, "latency_ms");

        printf("%-*s  %-14s  %-9s  %6s  %9s  %8s  %8s  %8s  %8s\n", width,
               ctl_str(o, "name"), ctl_str(o, "virtual_model"),
               ctl_str(o, "state"), ctl_str(o, "active"),
               ctl_str(o, "requests"), ctl_str(o, "failures"),
               ctl_str(lat, "p50"), ctl_str(lat, "p95"), ctl_str(lat, "p99"));
    }
}

/* UP: how long ago the worker started (--json keeps the Unix time). */
static void ctl_print_workers(json_object *root)
{
    json_object *list = ctl_get(root, "workers");
    size_t n = list ? json_object_array_length(list) : 0;
    int64_t now = (int64_t)time(NULL);

    printf("%-8s  %-4s  %6s  %10s  %-8s  %s\n", "PID", "SLOT", "ACTIVE",
           "JOBS DONE", "UP", "RETIRING");
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        json_object *started = ctl_get(o, "started_at");
        char age[CTLCLI_AGE_MAX] = "-";

        if (started != NULL)
            ctlcli_format_age(json_object_get_int64(started), now, age,
                              sizeof(age));
        printf("%-8s  %-4s  %6s  %10s  %-8s  %s\n", ctl_str(o, "pid"),
               ctl_str(o, "slot"), ctl_str(o, "active"),
               ctl_str(o, "jobs_done"), age, ctl_str(o, "retiring"));
    }
}

/* Cluster mode: one line per instance; SEEN is how long ago its last
 * heartbeat was (--json keeps the Unix time in ms). */
static void ctl_print_cluster(json_object *root)
{
    json_object *list = ctl_get(root, "instances");
    size_t n = list ? json_object_array_length(list) : 0;
    int64_t now = (int64_t)time(NULL);

    printf("%-24s  %-8s  %-20s  %-22s  %-8s  %s\n", "INSTANCE", "PID",
           "HOST", "LISTEN", "SEEN", "REQUESTS");
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        json_object *seen = ctl_get(o, "last_seen_ms");
        char age[CTLCLI_AGE_MAX] = "-";

        if (seen != NULL)
            ctlcli_format_age(json_object_get_int64(seen) / 1000, now, age,
                              sizeof(age));
        printf("%-24s  %-8s  %-20s  %-22s  %-8s  %s\n",
               ctl_str(o, "instance"), ctl_str(o, "pid"), ctl_str(o, "host"),
               ctl_str(o, "listen"), age, ctl_str(o, "requests"));
    }
}

static void ctl_print(const char *cmd, json_object *root)
{
    json_object *ok = ctl_get(root, "ok"), *cmds = ctl_get(root, "commands");

    if (strcmp(cmd, "stats") == 0) {
        ctl_print_stats(root);
    } else if (strcmp(cmd, "workers") == 0) {
        ctl_print_workers(root);
    } else if (strcmp(cmd, "cluster") == 0 &&
               ctl_get(root, "instances") != NULL) {
        ctl_print_cluster(root);
    } else if (cmds != NULL) {
        for (size_t i = 0; i < json_object_array_length(cmds); i++)
            printf("%s\n", json_object_get_string(
                json_object_array_get_idx(cmds, i)));
    } else if (ok != NULL && json_object_get_boolean(ok)) {
        json_object *w = ctl_get(root, "workers");

        json_object *cap = ctl_get(root, "capture");

        if (w != NULL)
            printf("ok: %s workers\n", json_object_get_string(w));
        else if (cap != NULL)
            printf("ok: capture %s\n",
                   json_object_get_boolean(cap) ? "on" : "off");
        else
            printf("ok\n");
    }
}

int main(int argc, char **argv)
{
    const char *sock = CTL_DEFAULT_SOCKET;
    const char **words;
    char line[CTL_LINE_MAX] = "", *answer = NULL, err[CTLCLI_ERR_MAX];
    struct ctlcli_args args;
    struct cfg *cfg = NULL;
    json_object *root, *ok;
    int rc;

    words = calloc((size_t)argc, sizeof(*words));
    if (words == NULL)
        return CTL_DAEMON_ERROR;
    if (ctlcli_parse(argc, argv, words, &args, err, sizeof(err)) < 0) {
        fprintf(stderr, "pipelinectl: %s\n", err);
        ctl_usage(stderr);
        free(words);
        return CTL_USAGE;
    }
    if (args.help) {
        ctl_usage(stdout);
        free(words);
        return CTL_OK;
    }
    if (args.word_count == 0) {
        ctl_usage(stderr);
        free(words);
        return CTL_USAGE;
    }
    if (strcmp(words[0], "login") == 0) {
        if (args.config == NULL || args.word_count != 2) {
            fprintf(stderr, "usage: pipelinectl -c CONFIG login PROVIDER\n");
            free(words);
            return LOGIN_EXIT_FAILED;
        }
        rc = login_run(args.config, words[1]);
        free(words);
        return rc;
    }
    if (args.socket != NULL)
        sock = args.socket;
    if (args.config != NULL) {
        char cerr[CFG_ERR_MAX];

        cfg = cfg_load(args.config, cerr, sizeof(cerr), NULL);
        if (cfg == NULL) {
            fprintf(stderr, "%s\n", cerr);
            free(words);
            return CTL_DAEMON_ERROR;
        }
        sock = cfg->control_socket;
    }
    for (int i = 0; i < args.word_count; i++) {
        if (strlen(line) + strlen(words[i]) + 2 >= sizeof(line)) {
            fprintf(stderr, "pipelinectl: command too long\n");
            cfg_free(&cfg);
            free(words);
            return CTL_DAEMON_ERROR;
        }
        if (i > 0)
            strcat(line, " ");
        strcat(line, words[i]);
    }
    if (ctl_exchange(sock, line, &answer) < 0) {
        cfg_free(&cfg);
        free(words);
        return CTL_NO_DAEMON;
    }
    cfg_free(&cfg);
    root = json_tokener_parse(answer);
    if (root == NULL) {
        fprintf(stderr, "pipelinectl: the daemon's answer is not JSON\n");
        free(answer);
        free(words);
        return CTL_DAEMON_ERROR;
    }
    ok = ctl_get(root, "ok");
    rc = ok != NULL && !json_object_get_boolean(ok) ? CTL_DAEMON_ERROR
                                                    : CTL_OK;
    if (args.json)
        fputs(answer, stdout);
    else if (rc != CTL_OK)
        fprintf(stderr, "pipelinectl: %s\n", ctl_str(root, "error"));
    else
        ctl_print(words[0], root);
    json_object_put(root);
    free(answer);
    free(words);
    return rc;
}
