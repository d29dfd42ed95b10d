/* ctl_clients.c - control socket clients that misbehave, for the tests
 * of the control socket's limits. Usage: ctl_clients SOCKET MODE COUNT
 * [WAIT_S]
 *   full    COUNT times, one after the other: connect, send "stats\n",
 *           close without reading the answer
 *   half    the same with half a command ("sta") and no newline
 *   idle    COUNT connections at once that send nothing
 *   drip    COUNT connections at once that send one byte of a command
 *           every DRIP_INTERVAL_MS and never its newline
 * idle and drip then wait, at most WAIT_S seconds (default 30), until the
 * daemon has closed every connection, and print
 *   "answered=A closed=C open=O ms=T"
 * A: closed after an answer (a refusal), C: closed without one, O: still
 * open at the end, T: ms from the last connect to the last close. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTLC_MAX_CONNS     1024
#define CTLC_WAIT_S        30
#define DRIP_INTERVAL_MS   200
#define CTLC_MS_PER_S      1000
#define CTLC_NS_PER_MS     1000000L
#define CTLC_BUF           4096

struct ctlc_conn {
    int fd;
    size_t got;       /* answer bytes read */
    int done;         /* the daemon closed it */
};

static long long ctlc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * CTLC_MS_PER_S + ts.tv_nsec / CTLC_NS_PER_MS;
}

static int ctlc_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* full and half: connect, send, close; 0, or 1 on a failed connect. */
static int ctlc_send_and_leave(const char *path, const char *what, int count)
{
    for (int i = 0; i < count; i++) {
        int fd = ctlc_connect(path);

        if (fd < 0) {
            fprintf(stderr, "ctl_clients: connect: %s\n", strerror(errno));
            return 1;
        }
        if (write(fd, what, strlen(what)) < 0)
            fprintf(stderr, "ctl_clients: write: %s\n", strerror(errno));
        close(fd);
    }
    printf("sent %d\n", count);
    return 0;
}

/* Reads what the daemon sent; marks the connection done at its close. */
static void ctlc_drain(struct ctlc_conn *c)
{
    char buf[CTLC_BUF];
    ssize_t n = read(c->fd, buf, sizeof(buf));

    if (n > 0) {
        c->got += (size_t)n;
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    c->done = 1;
    close(c->fd);
    c->fd = -1;
}

/* idle and drip: hold count connections until the daemon closes them. */
static int ctlc_hold(const char *path, int drip, int count, int wait_s)
{
    static struct ctlc_conn conns[CTLC_MAX_CONNS];
    static struct pollfd pfd[CTLC_MAX_CONNS];
    static const char command[] = "stats";
    long long start, deadline, next_drip, last_close = 0;
    size_t dripped = 0;
    int answered = 0, closed = 0, open = 0;

    for (int i = 0; i < count; i++) {
        conns[i].fd = ctlc_connect(path);
        if (conns[i].fd < 0) {
            fprintf(stderr, "ctl_clients: connect: %s\n", strerror(errno));
            return 1;
        }
    }
    start = ctlc_now_ms();
    deadline = start + (long long)wait_s * CTLC_MS_PER_S;
    next_drip = start;
    for (;;) {
        int n = 0;
        long long now = ctlc_now_ms();

        if (drip && now >= next_drip) {
            for (int i = 0; i < count; i++)
                if (!conns[i].done)
                    (void)send(conns[i].fd, &command[dripped % 5], 1,
                               MSG_NOSIGNAL);
            dripped++;
            next_drip = now + DRIP_INTERVAL_MS;
        }
        for (int i = 0; i < count; i++) {
            if (conns[i].done)
                continue;
            pfd[n].fd = conns[i].fd;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }
        if (n == 0 || now >= deadline)
            break;
        if (poll(pfd, (nfds_t)n, DRIP_INTERVAL_MS) < 0 && errno != EINTR)
            return 1;
        for (int i = 0, k = 0; i < count; i++) {
            if (conns[i].done)
                continue;
            if (pfd[k++].revents != 0)
                ctlc_drain(&conns[i]);
            if (conns[i].done)
                last_close = ctlc_now_ms();
        }
    }
    for (int i = 0; i < count; i++) {
        if (!conns[i].done)
            open++;
        else if (conns[i].got > 0)
            answered++;
        else
            closed++;
    }
    printf("answered=%d closed=%d open=%d ms=%lld\n", answered, closed, open,
           last_close > 0 ? last_close - start : 0);
    return 0;
}

int main(int argc, char **argv)
{
    int count, wait_s;

    if (argc < 4) {
        fprintf(stderr, "usage: ctl_clients SOCKET full|half|idle|drip "
                "COUNT [WAIT_S]\n");
        return 2;
    }
    count = atoi(argv[3]);
    wait_s = argc > 4 ? atoi(argv[4]) : CTLC_WAIT_S;
    if (count < 1 || count > CTLC_MAX_CONNS || wait_s < 1) {
        fprintf(stderr, "ctl_clients: COUNT 1..%d, WAIT_S >= 1\n",
                CTLC_MAX_CONNS);
        return 2;
    }
    if (strcmp(argv[2], "full") == 0)
        return ctlc_send_and_leave(argv[1], "stats\n", count);
    if (strcmp(argv[2], "half") == 0)
        return ctlc_send_and_leave(argv[1], "sta", count);
    if (strcmp(argv[2], "idle") == 0 || strcmp(argv[2], "drip") == 0)
        return ctlc_hold(argv[1], strcmp(argv[2], "drip") == 0, count,
                         wait_s);
    fprintf(stderr, "ctl_clients: unknown mode %s\n", argv[2]);
    return 2;
}
