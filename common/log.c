/* log.c - the line logger. A line is formatted into a stack buffer and
 * written with one write(2), so lines from the master and the workers
 * sharing one file never interleave. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

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
}
