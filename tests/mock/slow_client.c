/* slow_client.c - a deliberately slow HTTP client for backpressure tests:
 * connects with a small receive buffer, sends one request read from a
 * file, then reads the answer at a fixed rate for a fixed time and
 * reports how many bytes it got. Usage:
 *   slow_client PORT REQUEST_FILE BYTES_PER_SECOND SECONDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOW_RCVBUF      4096
#define SLOW_TICK_NS     100000000L      /* 10 reads a second */
#define SLOW_TICKS_PER_S 10
#define SLOW_REQ_MAX     65536

static int slow_send_file(int fd, const char *path)
{
    char buf[SLOW_REQ_MAX];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return write(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    int fd, rcvbuf = SLOW_RCVBUF;
    long rate, seconds, total = 0;
    char *buf;

    if (argc != 5) {
        fprintf(stderr, "usage: slow_client PORT REQUEST_FILE BYTES_PER_S "
                "SECONDS\n");
        return 2;
    }
    rate = atol(argv[3]);
    seconds = atol(argv[4]);
    if (rate <= 0 || seconds <= 0)
        return 2;
    buf = malloc((size_t)(rate / SLOW_TICKS_PER_S + 1));
    if (buf == NULL)
        return 1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        free(buf);
        return 1;
    }
    /* Before connect, so the window the peer sees starts small. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        slow_send_file(fd, argv[2]) < 0) {
        perror("slow_client");
        close(fd);
        free(buf);
        return 1;
    }
    for (long tick = 0; tick < seconds * SLOW_TICKS_PER_S; tick++) {
        struct timespec ts = { 0, SLOW_TICK_NS };
        ssize_t n = recv(fd, buf, (size_t)(rate / SLOW_TICKS_PER_S),
                         MSG_DONTWAIT);

        if (n == 0)
            break;
        if (n > 0)
            total += n;
        nanosleep(&ts, NULL);
    }
    printf("%ld\n", total);
    close(fd);
    free(buf);
    return 0;
}
