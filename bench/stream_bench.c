/* stream_bench.c - many concurrent streamed chat requests against one
 * HTTP endpoint. Each stream POSTs a "stream": true request whose last
 * message has W words (the mock upstream answers one SSE chunk per
 * word) and is timed from its connect() to its first "data:" line; it
 * counts as done when [DONE] arrives.
 *
 * Two ways to start the streams:
 *   burst      (no RAMP_MS): all N are opened at once, back to back, and
 *              each runs once: the thundering-herd case.
 *   sustained  (RAMP_MS given): stream i is opened at i * RAMP_MS / N, and
 *              every stream that ends is opened again at once, until
 *              DURATION_S has passed. Once the ramp is over N streams are
 *              always in flight, started at staggered times; only streams
 *              opened after the ramp are timed. With a paced upstream
 *              (mock model drip-MS) and RAMP_MS about one stream's length
 *              this is a steady N concurrent streams.
 *
 * Prints
 *   streams=N done=D ttfb_p50_ms=X ttfb_p99_ms=Y total_s=T chunks=C
 * (in sustained mode N and D count the timed streams, and failed=F counts
 * the timed streams that closed before [DONE]; C counts the "data:"
 * lines of every stream, timed or not, for a gateway's CPU per chunk).
 * Exit 0 when every timed stream ended with [DONE].
 * With SB_DOOR=anthropic in the environment the streams go to the
 * Anthropic door (POST /v1/messages, max_tokens set) and are done at
 * message_stop: the same upstream, for comparing the doors' first-event
 * latency.
 * Usage: stream_bench PORT MODEL STREAMS WORDS [RAMP_MS DURATION_S] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
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
#define SB_SAMPLES_MAX  1000000   /* timed streams kept in sustained mode */
#define SB_PERCENT      100

struct sb_stream {
    int fd;
    double start_ms;
    double ttfb_ms;               /* -1 until the first data: line */
    int done;                     /* saw [DONE] */
    int open;
    int timed;                    /* counts in the result */
    char tail[SB_TAIL + 1];       /* last bytes of the previous read */
};

struct sb_run {
    struct sb_stream *st;
    struct pollfd *pfd;
    int n;
    const char *req;
    size_t rlen;
    const char *done_marker;      /* what ends a stream */
    struct sockaddr_in sa;
    double *ttfb;                 /* ttfb of finished timed streams */
    int got, cap;
    int timed_done, timed_failed, timed_closed;
    long long chunks;             /* data: lines read, all streams */
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

/* The previous read's tail and this read's n bytes, joined (a marker
 * may span two reads); *t: where this read starts in it. */
static const char *sb_join(const struct sb_stream *s, const char *buf,
                           size_t n, size_t *t)
{
    static char joined[SB_TAIL + SB_READ_CHUNK];

    *t = strlen(s->tail);
    memcpy(joined, s->tail, *t);
    memcpy(joined + *t, buf, n);
    return joined;
}

/* The markers in joined (len bytes) that end past t: those wholly in the
 * tail were found at the read before. */
static long long sb_count(const char *joined, size_t len, size_t t,
                          const char *marker)
{
    size_t mlen = strlen(marker), at = 0;
    long long count = 0;
    const char *hit;

    while ((hit = memmem(joined + at, len - at, marker, mlen)) != NULL) {
        at = (size_t)(hit - joined) + mlen;
        if (at > t)
            count++;
    }
    return count;
}

/* Opens stream i and sends its request; -1 on failure. */
static int sb_open(struct sb_run *run, int i, int timed)
{
    struct sb_stream *s = &run->st[i];

    memset(s, 0, sizeof(*s));
    s->ttfb_ms = -1;
    s->timed = timed;
    s->start_ms = sb_now();
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 ||
        connect(s->fd, (const struct sockaddr *)&run->sa, sizeof(run->sa)) < 0 ||
        write(s->fd, run->req, run->rlen) != (ssize_t)run->rlen) {
        perror("stream_bench");
        if (s->fd >= 0)
            close(s->fd);
        return -1;
    }
    s->open = 1;
    return 0;
}

/* Closes stream i and records it if it is timed. */
static void sb_close(struct sb_run *run, int i)
{
    struct sb_stream *s = &run->st[i];

    close(s->fd);
    s->open = 0;
    if (!s->timed)
        return;
    run->timed_closed++;
    if (s->done)
        run->timed_done++;
    else
        run->timed_failed++;
    if (s->ttfb_ms >= 0 && run->got < run->cap)
        run->ttfb[run->got++] = s->ttfb_ms;
}

/* One poll over the first n streams and a read from each ready one;
 * returns the indexes that closed in closed[] and their count. */
static int sb_pass(struct sb_run *run, int n, char *buf, size_t cap,
                   int timeout_ms, int *closed)
{
    int nclosed = 0;

    for (int i = 0; i < n; i++) {
        run->pfd[i].fd = run->st[i].open ? run->st[i].fd : -1;
        run->pfd[i].events = POLLIN;
        run->pfd[i].revents = 0;
    }
    if (n <= 0 || poll(run->pfd, (nfds_t)(unsigned)n, timeout_ms) <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        struct sb_stream *s = &run->st[i];
        const char *joined;
        long long lines;
        ssize_t r;
        size_t t;

        if (!s->open || !(run->pfd[i].revents & (POLLIN | POLLHUP)))
            continue;
        r = read(s->fd, buf, cap - 1);
        if (r <= 0) {
            sb_close(run, i);
            closed[nclosed++] = i;
            continue;
        }
        joined = sb_join(s, buf, (size_t)r, &t);
        lines = sb_count(joined, t + (size_t)r, t, "data:");
        run->chunks += lines;
        if (s->ttfb_ms < 0 && lines > 0)
            s->ttfb_ms = sb_now() - s->start_ms;
        if (!s->done &&
            sb_count(joined, t + (size_t)r, t, run->done_marker) > 0)
            s->done = 1;
        {
            size_t keep = (size_t)r < SB_TAIL ? (size_t)r : SB_TAIL;

            memcpy(s->tail, buf + r - keep, keep);
            s->tail[keep] = '\0';
        }
    }
    return nclosed;
}

/* Reads until the open streams end or the deadline passes, then closes
 * what is left. */
static void sb_drain(struct sb_run *run, char *buf, int *closed,
                     int open_count, double deadline_ms)
{
    while (open_count > 0 && sb_now() < deadline_ms)
        open_count -= sb_pass(run, run->n, buf, SB_READ_CHUNK,
                              (int)SB_MS_PER_S, closed);
    for (int i = 0; i < run->n; i++)
        if (run->st[i].open)
            sb_close(run, i);
}

static int sb_burst(struct sb_run *run, char *buf, int *closed)
{
    double t0 = sb_now();
    int open_count = 0;

    for (int i = 0; i < run->n; i++) {
        /* Read what has come while connecting the rest, so the early
         * streams are not held up by our own loop. */
        open_count -= sb_pass(run, i, buf, SB_READ_CHUNK, 0, closed);
        if (sb_open(run, i, 1) < 0)
            return -1;
        open_count++;
    }
    sb_drain(run, buf, closed, open_count, t0 + SB_TIMEOUT_MS);
    return 0;
}

static int sb_sustained(struct sb_run *run, char *buf, int *closed,
                        double ramp_ms, double duration_ms)
{
    double t0 = sb_now(), now;
    int opened = 0, open_count = 0;

    for (now = t0; now - t0 < duration_ms; now = sb_now()) {
        double next = t0 + ramp_ms * opened / run->n;
        int wait_ms = (int)SB_MS_PER_S, c;

        while (opened < run->n && now >= next) {
            if (sb_open(run, opened, 0) < 0)
                return -1;
            opened++;
            open_count++;
            next = t0 + ramp_ms * opened / run->n;
        }
        if (opened < run->n)
            wait_ms = (int)(next - now) + 1;
        c = sb_pass(run, opened, buf, SB_READ_CHUNK, wait_ms, closed);
        open_count -= c;
        /* A stream that ended is replaced at once; only replacements
         * opened after the ramp, with N streams in flight, are timed. */
        for (int k = 0; k < c; k++) {
            if (sb_now() - t0 >= duration_ms)
                break;
            if (sb_open(run, closed[k], opened == run->n &&
                        sb_now() - t0 >= ramp_ms) < 0)
                return -1;
            open_count++;
        }
    }
    /* Let the timed streams in flight finish; untimed ones are cut. */
    for (int i = 0; i < run->n; i++)
        if (run->st[i].open && !run->st[i].timed) {
            close(run->st[i].fd);
            run->st[i].open = 0;
            open_count--;
        }
    sb_drain(run, buf, closed, open_count,
             t0 + duration_ms + SB_TIMEOUT_MS);
    return 0;
}

int main(int argc, char **argv)
{
    static char body[SB_BODY_MAX], req[SB_REQ_MAX], buf[SB_READ_CHUNK];
    struct sb_run run;
    int *closed = NULL, words, rc = 1;
    bool anthropic;
    double t0, ramp_ms = 0, duration_ms = 0;
    size_t blen = 0;

    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: stream_bench PORT MODEL STREAMS WORDS "
                "[RAMP_MS DURATION_S]\n");
        return 2;
    }
    memset(&run, 0, sizeof(run));
    run.n = atoi(argv[3]);
    words = atoi(argv[4]);
    if (argc == 7) {
        ramp_ms = atof(argv[5]);
        duration_ms = atof(argv[6]) * SB_MS_PER_S;
        if (ramp_ms <= 0 || duration_ms <= ramp_ms) {
            fprintf(stderr, "stream_bench: need 0 < RAMP_MS < DURATION_S\n");
            return 2;
        }
    }
    if (run.n <= 0 || words <= 0)
        return 2;
    anthropic = getenv("SB_DOOR") != NULL &&
                strcmp(getenv("SB_DOOR"), "anthropic") == 0;
    run.done_marker = anthropic ? "message_stop" : "[DONE]";
    blen = (size_t)snprintf(body, sizeof(body), "{\"model\":\"%s\",%s"
                            "\"stream\":true,\"messages\":[{\"role\":"
                            "\"user\",\"content\":\"", argv[2],
                            anthropic ? "\"max_tokens\":1024," : "");
    for (int w = 0; w < words && blen + 16 < sizeof(body); w++)
        blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "%sw%d",
                                 w ? " " : "", w);
    blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "\"}]}");
    run.rlen = (size_t)snprintf(req, sizeof(req), "POST %s "
                                "HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                                "application/json\r\nContent-Length: %zu\r\n"
                                "Connection: close\r\n\r\n%s",
                                anthropic ? "/v1/messages" :
                                "/v1/chat/completions", blen, body);
    run.req = req;
    run.cap = argc == 7 ? SB_SAMPLES_MAX : run.n;
    run.st = calloc((size_t)run.n, sizeof(*run.st));
    run.pfd = calloc((size_t)run.n, sizeof(*run.pfd));
    run.ttfb = calloc((size_t)run.cap, sizeof(*run.ttfb));
    closed = calloc((size_t)run.n, sizeof(*closed));
    if (run.st == NULL || run.pfd == NULL || run.ttfb == NULL ||
        closed == NULL)
        goto out;
    run.sa.sin_family = AF_INET;
    run.sa.sin_port = htons((unsigned short)atoi(argv[1]));
    run.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t0 = sb_now();
    if ((argc == 7 ? sb_sustained(&run, buf, closed, ramp_ms, duration_ms)
                   : sb_burst(&run, buf, closed)) < 0)
        goto out;
    qsort(run.ttfb, (size_t)run.got, sizeof(*run.ttfb), sb_cmp);
    printf("streams=%d done=%d ", run.timed_closed, run.timed_done);
    if (argc == 7)
        printf("failed=%d ", run.timed_failed);
    printf("ttfb_p50_ms=%.2f ttfb_p99_ms=%.2f total_s=%.2f chunks=%lld\n",
           run.got ? run.ttfb[run.got / 2] : -1.0,
           run.got ? run.ttfb[(run.got * 99) / SB_PERCENT] : -1.0,
           (sb_now() - t0) / SB_MS_PER_S, run.chunks);
    rc = run.timed_closed > 0 && run.timed_done == run.timed_closed ? 0 : 1;
out:
    free(run.st);
    free(run.pfd);
    free(run.ttfb);
    free(closed);
    return rc;
}
