/* log.h - one line per event: time, level, pid, request id, message.
 * Each process owns one struct log in its context; the only global is
 * where libevent's own messages go (log_route_libevent). */
#ifndef RCC_LOG_H
#define RCC_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log {
    enum log_level level;
    int fd;                 /* stderr or the opened log_file */
    char *path;             /* NULL for stderr; owned */
    int echo_fd;            /* while starting: warnings and errors are
                               copied here for whoever started us (the
                               terminal, or the waiting parent of -d);
                               -1: none. Not owned. */
};

/* Parses "debug|info|warn|error"; -1 when unknown. */
int log_level_parse(const char *name, enum log_level *out);

/* Opens path (NULL: stderr) for appending. 0 or -1 with errno. */
int log_open(struct log *log, const char *path, enum log_level level);
/* Reopens the file after rotation (SIGUSR1); stderr is left alone. */
int log_reopen(struct log *log);
void log_close(struct log *log);

/* Sends libevent's own messages (accept errors and the like) to log,
 * at the matching level, instead of straight to stderr; NULL restores
 * libevent's default. log must outlive the routing: route to NULL
 * before it goes. libevent's callback takes no argument, so this is the
 * one process-wide setting of the module. */
void log_route_libevent(const struct log *log);

/* Writes one line; req_id may be NULL. */
void log_msg(const struct log *log, enum log_level level, const char *req_id,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_enabled(log, lvl) ((lvl) >= (log)->level)

#endif
