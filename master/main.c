/* main.c - pipelined's command line: check a configuration, or load it
 * and run the master in the foreground or detached. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIPELINED_VERSION      "0.1.0"
#define PIPELINED_DEFAULT_PID  "/run/pipelined/pipelined.pid"
#define PIPELINED_PID_MAX      32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pipelined [-c FILE] [-t] [-d] [-p PIDFILE] [-w WORKERS] "
            "[-h] [-V]\n"
            "  -c FILE     configuration (default %s)\n"
            "  -t          check the configuration and exit\n"
            "  -d          detach and write the pid file\n"
            "  -p PIDFILE  pid file (default with -d: %s)\n"
            "  -w WORKERS  override 'workers'\n"
            "  -h          this help\n"
            "  -V          version\n",
            CFG_DEFAULT_PATH, PIPELINED_DEFAULT_PID);
}

/* Refuses a pid file whose process is alive; writes ours. */
static int write_pid_file(const char *path)
{
    char buf[PIPELINED_PID_MAX];
    FILE *f = fopen(path, "r");
    int fd, n;

    if (f != NULL) {
        long pid = 0;

        if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid != getpid() &&
            (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            fclose(f);
            fprintf(stderr, "pipelined: %s: pid %ld is running\n", path, pid);
            return -1;
        }
        fclose(f);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "pipelined: %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Forks into the background. The parent waits until the child says it
 * is serving (a byte on a pipe) and exits 0, or exits 1 when the child
 * failed first, so `pipelined -d` reports a failed start. Returns the
 * write end the child signals on (detach_ready), or -1. */
static int detach(void)
{
    int pipefd[2], fd;
    pid_t pid;
    char ok;

    if (pipe(pipefd) < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(pipefd[1]);
        _exit(read(pipefd[0], &ok, 1) == 1 ? 0 : 1);
    }
    close(pipefd[0]);
    if (setsid() < 0)
        return -1;
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
    return pipefd[1];
}

/* Tells a waiting parent that the daemon is up, and lets go of stderr. */
static void detach_ready(int ready_fd)
{
    int fd;

    if (ready_fd < 0)
        return;
    if (write(ready_fd, "1", 1) < 0)
        return;
    close(ready_fd);
    fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    const char *path = CFG_DEFAULT_PATH, *pid_file = NULL;
    bool check = false, daemonize = false;
    long long workers = 0;
    char err[CFG_ERR_MAX];
    struct log boot_log;
    struct master m;
    struct cfg *cfg;
    int opt, rc = 1, ready_fd = -1;

    while ((opt = getopt(argc, argv, "c:tdp:w:hV")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': check = true; break;
        case 'd': daemonize = true; break;
        case 'p': pid_file = optarg; break;
        case 'w':
            if (util_parse_int(optarg, 1, CFG_MAX_WORKERS, &workers) < 0) {
                fprintf(stderr, "pipelined: -w must be 1..%d\n",
                        CFG_MAX_WORKERS);
                return 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("pipelined %s\n", PIPELINED_VERSION); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 1;
    }
    log_open(&boot_log, NULL, LOG_WARN);
    cfg = cfg_load(path, err, sizeof(err), &boot_log);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (workers > 0)
        cfg->workers = (int)workers;
    if (check) {
        printf("configuration ok\n");
        cfg_free(&cfg);
        return 0;
    }
    if (daemonize && pid_file == NULL)
        pid_file = PIPELINED_DEFAULT_PID;
    if (daemonize && cfg->log_file == NULL)
        fprintf(stderr, "pipelined: warning: detached without log_file; "
                "logs are discarded\n");
    if (daemonize && (ready_fd = detach()) < 0) {
        fprintf(stderr, "pipelined: cannot detach: %s\n", strerror(errno));
        cfg_free(&cfg);
        return 1;
    }
    if (pid_file != NULL && write_pid_file(pid_file) < 0) {
        cfg_free(&cfg);
        return 1;
    }
    memset(&m, 0, sizeof(m));
    if (log_open(&m.log, cfg->log_file, cfg->log_level) < 0) {
        fprintf(stderr, "pipelined: %s: %s\n", cfg->log_file,
                strerror(errno));
        goto out;
    }
    m.pid_file = pid_file;
    /* The master owns the configuration from here (a reload replaces
     * it) and frees it in master_free(). */
    if (master_init(&m, cfg, path) == 0) {
        detach_ready(ready_fd);
        rc = master_run(&m);
    }
    cfg = NULL;
    master_free(&m);
out:
    log_close(&m.log);
    cfg_free(&cfg);
    if (pid_file != NULL)
        unlink(pid_file);
    return rc;
}
