/* log.c - the line logger. A line is formatted into a stack buffer and
 * written with one write(2), so lines from the master and the workers
 * sharing one file never interleave. Also owns the routing of
 * libevent's own messages into a log. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define LOG_LINE_MAX 2048
/* libevent's messages kept per second; a library error in a loop must
 * not turn into a flood of lines (and of CPU spent writing them). */
#define LOG_LIBEVENT_PER_SECOND 10

static const char *const log_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
        if (strcmp(name, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_open(struct log *log, const char *path, enum log_level level)
{
    log->level = level;
    log->fd = STDERR_FILENO;
    log->path = NULL;
    log->echo_fd = -1;
    if (path == NULL)
        return 0;
    log->path = strdup(path);
    if (log->path == NULL)
        return -1;
    return log_reopen(log);
}

int log_reopen(struct log *log)
{
    int fd;

    if (log->path == NULL)
        return 0;
    fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (log->fd != STDERR_FILENO)
        close(log->fd);
    log->fd = fd;
    return 0;
}

void log_close(struct log *log)
{
    if (log->fd != STDERR_FILENO && log->fd >= 0)
        close(log->fd);
    log->fd = STDERR_FILENO;
    free(log->path);
    log->path = NULL;
}

void log_msg(const struct log *log, enum log_level level, const char *req_id,
             const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;
    va_list ap;

    if (!log_enabled(log, level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s pid=%ld%s%s ",
                 (long)(tv.tv_usec / 1000), log_names[level], (long)getpid(),
                 req_id ? " req=" : "", req_id ? req_id : "");
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    /* Control characters from client input must not forge log lines. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = ' ';
    line[n++] = '\n';
    while (write(log->fd, line, n) < 0 && errno == EINTR)
        ;
    if (log->echo_fd >= 0 && log->echo_fd != log->fd && level >= LOG_WARN)
        while (write(log->echo_fd, line, n) < 0 && errno == EINTR)
            ;
}

/* Where libevent's messages go, and how many this second (its callback
 * has no argument to carry them). */
static struct {
    const struct log *log;
    time_t second;
    unsigned count;
    unsigned dropped;
} log_libevent;

static void log_libevent_cb(int severity, const char *msg)
{
    enum log_level level = severity >= EVENT_LOG_ERR  ? LOG_ERROR :
                           severity == EVENT_LOG_WARN ? LOG_WARN :
                           severity == EVENT_LOG_MSG  ? LOG_INFO : LOG_DEBUG;
    time_t now = time(NULL);

    if (log_libevent.log == NULL || !log_enabled(log_libevent.log, level))
        return;
    if (now != log_libevent.second) {
        if (log_libevent.dropped > 0)
            log_msg(log_libevent.log, LOG_WARN, NULL, "libevent: %u more "
                    "message(s) dropped", log_libevent.dropped);
        log_libevent.second = now;
        log_libevent.count = 0;
        log_libevent.dropped = 0;
    }
    if (log_libevent.count >= LOG_LIBEVENT_PER_SECOND) {
        log_libevent.dropped++;
        return;
    }
    log_libevent.count++;
    log_msg(log_libevent.log, level, NULL, "libevent: %s", msg);
}

void log_route_libevent(const struct log *log)
{
    memset(&log_libevent, 0, sizeof(log_libevent));
    log_libevent.log = log;
    event_set_log_callback(log != NULL ? log_libevent_cb : NULL);
}
