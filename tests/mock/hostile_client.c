/* hostile_client.c - clients that abuse the daemon on purpose, for the
 * limits tests. Two modes:
 *
 *   hostile_client flood PORT SECONDS REQUEST_FILE
 *     One connection that writes the requests in REQUEST_FILE again
 *     and again (pipelined) for SECONDS and never reads an answer.
 *     Prints how many bytes it sent, and how many times the file that is.
 *
 *   hostile_client trickle PORT CONNS INTERVAL_MS SECONDS
 *     CONNS connections, each sending a chat request head that announces
 *     a HOSTILE_TRICKLE_BODY-byte body, then one byte of that body per INTERVAL_MS
 *     on every connection still open, for SECONDS. A connection the
 *     server closes is closed here too (and not opened again). Prints
 *     "connected CONNS" once every head is sent, then at the end
 *     "answered408 N closed M": how many got a 408, how many were closed
 *     by the server. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOSTILE_REQ_MAX      8192     /* the flood's request file, at most */
#define HOSTILE_FLOOD_BUF    65536    /* the request repeated, one write */
#define HOSTILE_MAX_CONNS    1024
#define HOSTILE_READ_BUF     4096
#define HOSTILE_TRICKLE_BODY 100000   /* announced, never all sent */
#define HOSTILE_MS_PER_S     1000
#define HOSTILE_NS_PER_MS    1000000L

static long long hostile_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * HOSTILE_MS_PER_S +
           ts.tv_nsec / HOSTILE_NS_PER_MS;
}

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
static int hostile_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int hostile_flood(int port, long seconds, const char *path)
{
    static char req[HOSTILE_REQ_MAX], buf[HOSTILE_FLOOD_BUF];
    FILE *f = fopen(path, "rb");
    size_t len, fill = 0, off = 0;
    long long sent = 0, end;
    int fd;

    if (f == NULL) {
        perror(path);
        return 1;
    }
    len = fread(req, 1, sizeof(req), f);
    fclose(f);
    if (len == 0)
        return 2;
    while (fill + len <= sizeof(buf)) {
        memcpy(buf + fill, req, len);
        fill += len;
    }
    fd = hostile_connect(port);
    if (fd < 0) {
        perror("connect");
        return 1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    end = hostile_now_ms() + seconds * HOSTILE_MS_PER_S;
    for (long long now = hostile_now_ms(); now < end;
         now = hostile_now_ms()) {
        struct pollfd p = { fd, POLLOUT, 0 };
        ssize_t n;

        if (poll(&p, 1, (int)(end - now)) <= 0)
            continue;
        n = write(fd, buf + off, fill - off);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;                 /* the server closed it */
        sent += n;
        off = (off + (size_t)n) % fill;
    }
    printf("sent %lld bytes, %lld times the request file\n", sent,
           sent / (long long)len);
    close(fd);
    return 0;
}

static int hostile_trickle(int port, int conns, long interval_ms,
                           long seconds)
{
    static int fd[HOSTILE_MAX_CONNS];
    char head[HOSTILE_READ_BUF], buf[HOSTILE_READ_BUF];
    int open_conns = 0, answered = 0, closed = 0, n;
    long long end;

    n = snprintf(head, sizeof(head), "POST /v1/chat/completions HTTP/1.1\r\n"
                 "Host: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n", HOSTILE_TRICKLE_BODY);
    for (int i = 0; i < conns; i++) {
        fd[i] = hostile_connect(port);
        if (fd[i] < 0 || write(fd[i], head, (size_t)n) != n) {
            perror("trickle");
            return 1;
        }
        fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
        open_conns++;
    }
    printf("connected %d\n", conns);
    fflush(stdout);
    end = hostile_now_ms() + seconds * HOSTILE_MS_PER_S;
    while (open_conns > 0 && hostile_now_ms() < end) {
        struct timespec ts = { interval_ms / HOSTILE_MS_PER_S,
                               interval_ms % HOSTILE_MS_PER_S *
                               HOSTILE_NS_PER_MS };

        nanosleep(&ts, NULL);
        for (int i = 0; i < conns; i++) {
            ssize_t r;
            bool gone = false;

            if (fd[i] < 0)
                continue;
            while ((r = read(fd[i], buf, sizeof(buf) - 1)) > 0) {
                buf[r] = '\0';
                if (strstr(buf, "HTTP/1.1 408") != NULL)
                    answered++;
            }
            if (r == 0 || (errno != EAGAIN && errno != EINTR))
                gone = true;
            else if (write(fd[i], "x", 1) < 0 && errno != EAGAIN)
                gone = true;
            if (gone) {
                close(fd[i]);
                fd[i] = -1;
                open_conns--;
                closed++;
            }
        }
    }
    for (int i = 0; i < conns; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    printf("answered408 %d closed %d\n", answered, closed);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "flood") == 0)
        return hostile_flood(atoi(argv[2]), atol(argv[3]), argv[4]);
    if (argc == 6 && strcmp(argv[1], "trickle") == 0) {
        int conns = atoi(argv[3]);

        if (conns < 1 || conns > HOSTILE_MAX_CONNS)
            return 2;
        return hostile_trickle(atoi(argv[2]), conns, atol(argv[4]),
                               atol(argv[5]));
    }
    fprintf(stderr, "usage: hostile_client flood PORT SECONDS REQUEST_FILE\n"
            "       hostile_client trickle PORT CONNS INTERVAL_MS "
            "SECONDS\n");
    return 2;
}
