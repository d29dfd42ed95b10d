/* stream_bench.c - many concurrent streamed chat requests against one
 * HTTP endpoint: opens N connections at once, each POSTs a "stream": true
 * request whose last message has W words (the mock upstream answers one
 * SSE chunk per word), and measures each stream's time to its first
 * "data:" line and whether it ended with [DONE]. Prints
 *   streams=N done=D ttfb_p50_ms=X ttfb_p99_ms=Y total_s=T
 * Usage: stream_bench PORT MODEL STREAMS WORDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SB_BODY_MAX     65536
#define SB_REQ_MAX      (SB_BODY_MAX + 512)
#define SB_READ_CHUNK   65536
#define SB_TIMEOUT_MS   60000
#define SB_MS_PER_S     1000.0
#define SB_NS_PER_MS    1000000.0
#define SB_TAIL         32        /* bytes kept to find markers across reads */

struct sb_stream {
    int fd;
    double start_ms;
    double ttfb_ms;               /* -1 until the first data: line */
    int done;                     /* saw [DONE] */
    int open;
    char tail[SB_TAIL + 1];       /* last bytes of the previous read */
};

static double sb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * SB_MS_PER_S + (double)ts.tv_nsec / SB_NS_PER_MS;
}

static int sb_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Looks for marker in tail + buf (a marker may span two reads). */
static int sb_seen(struct sb_stream *s, const char *buf, size_t n,
                   const char *marker)
{
    char joined[SB_TAIL + SB_READ_CHUNK + 1];
    size_t t = strlen(s->tail);

    memcpy(joined, s->tail, t);
    memcpy(joined + t, buf, n);
    joined[t + n] = '\0';
    return memmem(joined, t + n, marker, strlen(marker)) != NULL;
}

/* One poll over the first n streams and a read from each ready one;
 * returns how many closed. */
static int sb_pass(struct sb_stream *st, struct pollfd *pfd, int n,
                   char *buf, size_t cap, int timeout_ms)
{
    int closed = 0;

    for (int i = 0; i < n; i++) {
        pfd[i].fd = st[i].open ? st[i].fd : -1;
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
    }
    if (n <= 0 || poll(pfd, (nfds_t)(unsigned)n, timeout_ms) <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        ssize_t r;

        if (!st[i].open || !(pfd[i].revents & (POLLIN | POLLHUP)))
            continue;
        r = read(st[i].fd, buf, cap - 1);
        if (r <= 0) {
            close(st[i].fd);
            st[i].open = 0;
            closed++;
            continue;
        }
        if (st[i].ttfb_ms < 0 && sb_seen(&st[i], buf, (size_t)r, "data:"))
            st[i].ttfb_ms = sb_now() - st[i].start_ms;
        if (!st[i].done && sb_seen(&st[i], buf, (size_t)r, "[DONE]"))
            st[i].done = 1;
        {
            size_t keep = (size_t)r < SB_TAIL ? (size_t)r : SB_TAIL;

            memcpy(st[i].tail, buf + r - keep, keep);
            st[i].tail[keep] = '\0';
        }
    }
    return closed;
}

int main(int argc, char **argv)
{
    char body[SB_BODY_MAX], req[SB_REQ_MAX], buf[SB_READ_CHUNK];
    struct sockaddr_in sa;
    struct sb_stream *st;
    struct pollfd *pfd;
    double *ttfb, t0;
    int n, words, open_count, done = 0, got = 0;
    size_t blen = 0, rlen;

    if (argc != 5)
        return 2;
    n = atoi(argv[3]);
    words = atoi(argv[4]);
    if (n <= 0 || words <= 0)
        return 2;
    blen = (size_t)snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\""
                            ":true,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"", argv[2]);
    for (int w = 0; w < words && blen + 16 < sizeof(body); w++)
        blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "%sw%d",
                                 w ? " " : "", w);
    blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "\"}]}");
    rlen = (size_t)snprintf(req, sizeof(req), "POST /v1/chat/completions "
                            "HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                            "application/json\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n%s", blen, body);
    st = calloc((size_t)n, sizeof(*st));
    pfd = calloc((size_t)n, sizeof(*pfd));
    ttfb = calloc((size_t)n, sizeof(*ttfb));
    if (st == NULL || pfd == NULL || ttfb == NULL)
        return 1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t0 = sb_now();
    open_count = 0;
    for (int i = 0; i < n; i++) {
        /* Read what has come while connecting the rest, so the early
         * streams are not held up by our own loop. */
        open_count -= sb_pass(st, pfd, i, buf, sizeof(buf), 0);
        st[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        st[i].ttfb_ms = -1;
        st[i].start_ms = sb_now();
        if (st[i].fd < 0 ||
            connect(st[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            write(st[i].fd, req, rlen) != (ssize_t)rlen) {
            perror("stream_bench");
            return 1;
        }
        st[i].open = 1;
        open_count++;
    }
    while (open_count > 0 && sb_now() - t0 < SB_TIMEOUT_MS)
        open_count -= sb_pass(st, pfd, n, buf, sizeof(buf), (int)SB_MS_PER_S);
    for (int i = 0; i < n; i++) {
        if (st[i].open)
            close(st[i].fd);
        done += st[i].done;
        if (st[i].ttfb_ms >= 0)
            ttfb[got++] = st[i].ttfb_ms;
    }
    qsort(ttfb, (size_t)got, sizeof(*ttfb), sb_cmp);
    printf("streams=%d done=%d ttfb_p50_ms=%.2f ttfb_p99_ms=%.2f "
           "total_s=%.2f\n", n, done, got ? ttfb[got / 2] : -1.0,
           got ? ttfb[(got * 99) / 100 < got ? (got * 99) / 100 : got - 1]
               : -1.0,
           (sb_now() - t0) / SB_MS_PER_S);
    free(st);
    free(pfd);
    free(ttfb);
    return done == n ? 0 : 1;
}
