/* main.c - pipelined's command line: check a configuration, or load it
 * and run the master in the foreground or detached. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PIPELINED_VERSION      "0.1.0"
#define PIPELINED_DEFAULT_PID  "/run/pipelined/pipelined.pid"
#define PIPELINED_PID_MAX      32

/* Ends the start-up report on the pipe of -d: the daemon serves. Log
 * lines never hold a NUL byte (control characters become spaces). */
#define PIPELINED_READY_BYTE   '\0'
#define PIPELINED_REPORT_CHUNK 4096

static const struct option long_options[] = {
    { "help",    no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 }
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pipelined [-c FILE] [-t] [-d] [-p PIDFILE] [-w WORKERS] "
            "[-h] [-V]\n"
            "  -c FILE       configuration (default %s)\n"
            "  -t            check the configuration and exit\n"
            "  -d            detach and write the pid file\n"
            "  -p PIDFILE    pid file (default with -d: %s)\n"
            "  -w WORKERS    override 'workers'\n"
            "  -h, --help    this help\n"
            "  -V, --version version\n",
            CFG_DEFAULT_PATH, PIPELINED_DEFAULT_PID);
}

/* Writes all of buf to fd; a reader that went away is not our problem. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* "pipelined: ..." to fd: stderr, or the start-up report of -d. */
static void __attribute__((format(printf, 2, 3)))
report(int fd, const char *fmt, ...)
{
    char line[CFG_ERR_MAX];
    va_list ap;
    int n = snprintf(line, sizeof(line), "pipelined: ");

    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    write_all(fd, line, (size_t)n);
}

/* Refuses a pid file whose process is alive; writes ours. Errors go to
 * report_fd. */
static int write_pid_file(const char *path, int report_fd)
{
    char buf[PIPELINED_PID_MAX];
    FILE *f = fopen(path, "r");
    int fd, n;

    if (f != NULL) {
        long pid = 0;

        if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid != getpid() &&
            (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            fclose(f);
            report(report_fd, "%s: pid %ld is running", path, pid);
            return -1;
        }
        fclose(f);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        report(report_fd, "%s: %s", path, strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        report(report_fd, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Whether descriptors a and b are open on the same file. */
static bool same_file(int a, int b)
{
    struct stat sa, sb;

    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The parent of -d: copies the child's start-up report to stderr until
 * the ready byte (0: the daemon serves) or the end of the pipe without
 * it (1: the child failed and exited). */
static int detach_wait(int fd, pid_t child)
{
    char buf[PIPELINED_REPORT_CHUNK];
    bool said = false;
    int status;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        const char *ready;
        size_t len;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        ready = memchr(buf, PIPELINED_READY_BYTE, (size_t)n);
        len = ready != NULL ? (size_t)(ready - buf) : (size_t)n;
        write_all(STDERR_FILENO, buf, len);
        said = said || len > 0;
        if (ready != NULL)
            return 0;
    }
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (!said)
        report(STDERR_FILENO, "the daemon exited while starting");
    return 1;
}

/* Forks into the background. The child's stdio is /dev/null from here
 * on, before it forks any worker: a worker must not keep the caller's
 * stdout or stderr open, or a caller that reads them to the end
 * ($(...), an ssh command, a supervisor) would wait for as long as the
 * daemon runs. The child reports on a pipe instead: its warnings and
 * errors while starting, then the ready byte (detach_ready); the parent
 * passes them on and exits 0 once it is ready, or 1 if it fails first.
 * Returns, in the child, the pipe's end to report on. */
static int detach(void)
{
    int pipefd[2], fd;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid > 0) {
        close(pipefd[1]);
        _exit(detach_wait(pipefd[0], pid));
    }
    close(pipefd[0]);
    /* A parent gone (killed while waiting) must not kill us on a report. */
    signal(SIGPIPE, SIG_IGN);
    if (setsid() < 0 || (fd = open("/dev/null", O_RDWR)) < 0) {
        report(pipefd[1], "cannot detach: %s", strerror(errno));
        _exit(1);
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
    return pipefd[1];
}

/* Tells the waiting parent that the daemon serves; the report ends. */
static void detach_ready(int *ready_fd)
{
    char ready = PIPELINED_READY_BYTE;

    if (*ready_fd < 0)
        return;
    write_all(*ready_fd, &ready, 1);
    close(*ready_fd);
    *ready_fd = -1;
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
    int opt, rc = 1, ready_fd = -1, report_fd = STDERR_FILENO;

    while ((opt = getopt_long(argc, argv, "c:tdp:w:hV", long_options,
                              NULL)) != -1) {
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
    if (daemonize) {
        fflush(NULL);        /* or the child would print it again */
        if ((ready_fd = detach()) < 0) {
            fprintf(stderr, "pipelined: cannot detach: %s\n",
                    strerror(errno));
            cfg_free(&cfg);
            return 1;
        }
        report_fd = ready_fd;
    }
    if (pid_file != NULL && write_pid_file(pid_file, report_fd) < 0) {
        cfg_free(&cfg);
        return 1;
    }
    memset(&m, 0, sizeof(m));
    if (log_open(&m.log, cfg->log_file, cfg->log_level) < 0) {
        report(report_fd, "%s: %s", cfg->log_file, strerror(errno));
        goto out;
    }
    /* Whoever started us hears why a start fails (and what it warns
     * about), even when the log goes to a file. */
    if (daemonize || (cfg->log_file != NULL &&
                      !same_file(m.log.fd, STDERR_FILENO)))
        m.log.echo_fd = report_fd;
    m.pid_file = pid_file;
    /* The master owns the configuration from here (a reload replaces
     * it) and frees it in master_free(). */
    if (master_init(&m, cfg, path) == 0) {
        m.log.echo_fd = -1;
        detach_ready(&ready_fd);
        rc = master_run(&m);
    } else {
        log_msg(&m.log, LOG_ERROR, NULL, "start-up failed");
    }
    m.log.echo_fd = -1;
    cfg = NULL;
    master_free(&m);
out:
    log_close(&m.log);
    cfg_free(&cfg);
    if (pid_file != NULL)
        unlink(pid_file);
    return rc;
}
