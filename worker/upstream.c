/* upstream.c - an attempt's transfer: made by the worker's own client
 * (httpc.c) when the upstream is plain HTTP at an address, else by
 * libcurl, whose multi interface it drives from the worker's libevent
 * loop (curl tells us which sockets and timeouts to watch; the loop
 * tells curl when they fire), so one worker runs many transfers at once
 * and reuses connections. Also keeps a small pool of easy handles. It
 * never names a provider; a transfer that ends is reported to the struct
 * upstream_xfer its CURLINFO_PRIVATE (or its call) points to.
 *
 * System calls: a kept-alive connection's socket stays registered with
 * the loop while curl does not watch it between two transfers (parked),
 * so reusing it costs no epoll_ctl; each socket's read and write events
 * are added and removed only when curl's wish for them changes. That is
 * safe because every socket curl opens for a connection is known
 * (CURLOPT_OPENSOCKETFUNCTION) and is taken out of the loop before it is
 * closed (CURLOPT_CLOSESOCKETFUNCTION); other sockets (the resolver's)
 * are never parked. A parked socket that turns readable (the server
 * closed it) leaves the loop; curl finds it dead when it next looks. */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event_struct.h>

#define UPSTREAM_MAX_CONNECTS 256
#define UPSTREAM_SOCKS_MIN    64      /* first size of the table by fd */

/* What we keep per socket curl asked us to watch, or opened. */
struct upstream_sock {
    struct worker *w;
    struct event rev, wev;         /* assigned once, added as curl wishes */
    bool reading, writing;         /* rev / wev added */
    bool conn;                     /* a connection's: may be parked */
    bool parked;                   /* curl does not watch it now */
};

static void upstream_check_done(struct worker *w)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        struct upstream_xfer *x = NULL;
        CURL *easy;
        CURLcode result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg is not to be read once its handle leaves the multi. */
        easy = msg->easy_handle;
        result = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        /* Take it out of the multi before the call reacts: the reaction
         * may start a new attempt with this very handle. */
        curl_multi_remove_handle(w->multi, easy);
        if (x != NULL && x->done != NULL)
            x->done(x, result);
    }
}

static void upstream_sock_drop(struct worker *w, curl_socket_t s);

static void upstream_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_sock *us = arg;
    struct worker *w = us->w;
    int flags = 0, running;

    if (us->parked) {
        /* Data or EOF on an idle connection: not for curl until it
         * reuses it (and checks it then). Out of the loop meanwhile. */
        upstream_sock_drop(w, fd);
        return;
    }
    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(w->multi, fd, flags, &running);
    upstream_check_done(w);
    worker_flush_first(w);
}

static void upstream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    upstream_check_done(w);
    worker_flush_first(w);
}

/* The entry of socket s, made when make and missing; NULL when none
 * (or out of memory). */
static struct upstream_sock *upstream_sock_at(struct worker *w,
                                              curl_socket_t s, bool make)
{
    struct upstream_sock *us;

    if (s < 0)
        return NULL;
    if (s >= w->socks_cap) {
        struct upstream_sock **t;
        int cap = w->socks_cap > 0 ? w->socks_cap : UPSTREAM_SOCKS_MIN;

        if (!make)
            return NULL;
        while (cap <= s)
            cap *= 2;
        t = realloc(w->socks, (size_t)cap * sizeof(*t));
        if (t == NULL)
            return NULL;
        memset(t + w->socks_cap, 0,
               (size_t)(cap - w->socks_cap) * sizeof(*t));
        w->socks = t;
        w->socks_cap = cap;
    }
    if (w->socks[s] != NULL || !make)
        return w->socks[s];
    us = calloc(1, sizeof(*us));
    if (us == NULL)
        return NULL;
    us->w = w;
    if (event_assign(&us->rev, w->base, s, EV_READ | EV_PERSIST,
                     upstream_event_cb, us) < 0 ||
        event_assign(&us->wev, w->base, s, EV_WRITE | EV_PERSIST,
                     upstream_event_cb, us) < 0) {
        free(us);
        return NULL;
    }
    w->socks[s] = us;
    return us;
}

/* Takes socket s out of the loop and forgets it (it may be closing). */
static void upstream_sock_drop(struct worker *w, curl_socket_t s)
{
    struct upstream_sock *us = upstream_sock_at(w, s, false);

    if (us == NULL)
        return;
    if (us->reading)
        event_del(&us->rev);
    if (us->writing)
        event_del(&us->wev);
    w->socks[s] = NULL;
    free(us);
}

/* Adds or removes ev so that it is added exactly when want. */
static int upstream_sock_want(struct event *ev, bool *on, bool want)
{
    if (*on == want)
        return 0;
    *on = want;
    return want ? event_add(ev, NULL) : event_del(ev);
}

static int upstream_sock_cb(CURL *easy, curl_socket_t s, int what,
                            void *userp, void *socketp)
{
    struct worker *w = userp;
    struct upstream_sock *us;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        us = upstream_sock_at(w, s, false);
        if (us != NULL && us->conn) {
            /* Kept, reading, for the connection's next transfer. */
            us->parked = true;
            return upstream_sock_want(&us->wev, &us->writing, false);
        }
        upstream_sock_drop(w, s);
        return 0;
    }
    us = upstream_sock_at(w, s, true);
    if (us == NULL)
        return -1;
    us->parked = false;
    if (upstream_sock_want(&us->rev, &us->reading,
                           (what & CURL_POLL_IN) != 0) < 0 ||
        upstream_sock_want(&us->wev, &us->writing,
                           (what & CURL_POLL_OUT) != 0) < 0)
        return -1;
    return 0;
}

/* Every connection's socket is opened here, so it may be parked. */
static curl_socket_t upstream_open_cb(void *clientp, curlsocktype purpose,
                                      struct curl_sockaddr *a)
{
    struct worker *w = clientp;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    struct upstream_sock *us;

    (void)purpose;
    if (s == CURL_SOCKET_BAD)
        return s;
    us = upstream_sock_at(w, s, true);
    if (us == NULL) {
        close(s);
        return CURL_SOCKET_BAD;
    }
    us->conn = true;
    return s;
}

/* Out of the loop before it is closed: its number may come back. */
static int upstream_close_cb(void *clientp, curl_socket_t s)
{
    upstream_sock_drop(clientp, s);
    return close(s);
}

/* On every handle: its connections' sockets are opened and closed
 * through us (see the top of this file). */
static void upstream_sock_options(struct worker *w, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, upstream_open_cb);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, w);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, upstream_close_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, w);
}

static int upstream_timerfn(CURLM *multi, long timeout_ms, void *userp)
{
    struct worker *w = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0)
        return evtimer_del(w->curl_timer);
    /* 0 means "as soon as possible": let the loop run it, not us now. */
    tv = util_ms_to_tv(timeout_ms);
    return evtimer_add(w->curl_timer, &tv);
}

static char *upstream_strdup(const char *v)
{
    char *copy = strdup(v);

    if (copy == NULL)
        util_oom("the proxy environment");
    return copy;
}

/* A variable as libcurl's curl_getenv reads it: an empty one is unset.
 * The copy is the caller's to free. */
static char *upstream_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? upstream_strdup(v) : NULL;
}

/* The first of two variables that is set (libcurl's order: lower case
 * first); the copy is the caller's to free. */
static char *upstream_env2(const char *lower, const char *upper)
{
    char *v = upstream_env(lower);

    return v != NULL || upper == NULL ? v : upstream_env(upper);
}

/* libcurl (7.88, url.c detect_proxy) looks for <scheme>_proxy (for http
 * only in lower case: HTTP_PROXY can be set by a CGI client), then
 * all_proxy / ALL_PROXY; no_proxy / NO_PROXY exempts hosts. */
static void upstream_read_proxy_env(struct worker *w)
{
    char *all = upstream_env2("all_proxy", "ALL_PROXY");

    w->proxy_http = upstream_env("http_proxy");
    w->proxy_https = upstream_env2("https_proxy", "HTTPS_PROXY");
    if (w->proxy_http == NULL && all != NULL)
        w->proxy_http = upstream_strdup(all);
    if (w->proxy_https == NULL && all != NULL)
        w->proxy_https = upstream_strdup(all);
    free(all);
    w->no_proxy = upstream_env2("no_proxy", "NO_PROXY");
}

/* Sets on c->easy what every attempt's transfer shares, whatever its
 * adapter: the body (c->req_body), write_cb and header_cb (their data
 * c), done, the error buffer, the timeout (left_ms to the deadline), and
 * the proxy for url's scheme (a pooled handle never keeps the last
 * attempt's). What never changes (protocols, keep-alive, the connect
 * timeout, HTTP version, no_proxy/NO_PROXY, the socket functions) was
 * set once when upstream_easy_get made the handle. */
static void upstream_attempt_options(struct call *c, const char *url,
                                     curl_write_callback write_cb,
                                     curl_write_callback header_cb,
                                     void (*done)(struct upstream_xfer *x,
                                                  CURLcode result),
                                     int64_t left_ms)
{
    struct worker *w = c->w;
    CURL *easy = c->easy;
    bool https = url != NULL && strncasecmp(url, "https:", 6) == 0;
    const char *proxy = https ? w->proxy_https : w->proxy_http;

    /* The options every attempt shares were set when the handle was
     * made (upstream_easy_get); these are the attempt's own. */
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, c->req_body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)c->req_len);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, c);
    c->xfer.done = done;
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     (long)(left_ms > 0 ? left_ms : 1));
    /* "" is "no proxy" to libcurl, and both set means no lookup. */
    curl_easy_setopt(easy, CURLOPT_PROXY, proxy != NULL ? proxy : "");
}

/* The options that are the same for every attempt of every call, set
 * once on a new pooled handle rather than on each transfer (curl parses
 * the protocol list, for one, each time it is set). */
static void upstream_easy_setup(struct worker *w, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                     (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)w->cfg->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY,
                     w->no_proxy != NULL ? w->no_proxy : "");
    upstream_sock_options(w, easy);
}

int upstream_init(struct worker *w)
{
    upstream_read_proxy_env(w);
    w->multi = curl_multi_init();
    w->curl_timer = evtimer_new(w->base, upstream_timer_cb, w);
    w->httpc = httpc_new(w->base, w->cfg->connect_timeout_ms);
    if (w->multi == NULL || w->curl_timer == NULL || w->httpc == NULL)
        return -1;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, upstream_sock_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, upstream_timerfn);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS,
                      (long)UPSTREAM_MAX_CONNECTS);
    return 0;
}

void upstream_free(struct worker *w)
{
    while (w->easy_pool_len > 0)
        curl_easy_cleanup(w->easy_pool[--w->easy_pool_len]);
    if (w->multi != NULL) {
        curl_multi_cleanup(w->multi);
        w->multi = NULL;
    }
    if (w->curl_timer != NULL) {
        event_free(w->curl_timer);
        w->curl_timer = NULL;
    }
    httpc_free(w->httpc);
    w->httpc = NULL;
    /* What curl_multi_cleanup did not close (the resolver's). */
    for (int s = 0; s < w->socks_cap; s++)
        upstream_sock_drop(w, s);
    free(w->socks);
    w->socks = NULL;
    w->socks_cap = 0;
    free(w->proxy_http);
    free(w->proxy_https);
    free(w->no_proxy);
    w->proxy_http = w->proxy_https = w->no_proxy = NULL;
}

CURL *upstream_easy_get(struct worker *w)
{
    CURL *easy;

    if (w->easy_pool_len > 0)
        return w->easy_pool[--w->easy_pool_len];
    easy = curl_easy_init();
    if (easy != NULL)
        upstream_easy_setup(w, easy);
    return easy;
}

void upstream_easy_put(struct worker *w, CURL **easy)
{
    if (*easy == NULL)
        return;
    if (w->easy_pool_len < WORKER_EASY_POOL) {
        /* Not reset: every call sets the options it depends on, and a
         * reset would throw away state curl reuses. */
        w->easy_pool[w->easy_pool_len++] = *easy;
    } else {
        curl_easy_cleanup(*easy);
    }
    *easy = NULL;
}

int upstream_add(struct worker *w, CURL *easy)
{
    upstream_sock_options(w, easy);
    return curl_multi_add_handle(w->multi, easy) == CURLM_OK ? 0 : -1;
}

void upstream_remove(struct worker *w, CURL *easy)
{
    if (easy != NULL)
        curl_multi_remove_handle(w->multi, easy);
}

struct httpc_dest *upstream_dest(struct worker *w, const char *url)
{
    /* A proxy may exempt the host (no_proxy): libcurl knows how. */
    if (w->proxy_http != NULL)
        return NULL;
    return httpc_dest(w->httpc, url);
}

/* httpc's end of a transfer, told to the call as libcurl's would be. */
static void upstream_httpc_done(struct httpc_xfer *x, CURLcode result)
{
    struct call *c = (struct call *)((char *)x - offsetof(struct call, hx));
    struct worker *w = c->w;

    c->xfer.done(&c->xfer, result);
    worker_flush_first(w);
}

int upstream_start(struct call *c, const struct upstream_req *r)
{
    struct worker *w = c->w;
    int64_t left = c->deadline_ms - util_now_ms();
    struct httpc_dest *d = r->url == NULL && w->dests != NULL ?
                           w->dests[r->provider] : NULL;
    const char *url;

    c->curl_err[0] = '\0';
    c->xfer.done = r->done;
    c->native = d != NULL;
    if (d != NULL) {
        struct httpc_xfer *x = &c->hx;

        x->body = c->req_body;
        x->body_len = c->req_len;
        x->headers = r->headers;
        x->header_cb = r->header_cb;
        x->write_cb = r->write_cb;
        x->cb_arg = c;
        x->done = upstream_httpc_done;
        x->err = c->curl_err;
        httpc_start(w->httpc, d, x, left);
        return 0;
    }
    if (c->easy == NULL)
        c->easy = upstream_easy_get(w);
    if (c->easy == NULL)
        return -1;
    if (r->url != NULL) {
        url = r->url;
        curl_easy_setopt(c->easy, CURLOPT_CURLU, (CURLU *)NULL);
        curl_easy_setopt(c->easy, CURLOPT_URL, url);
    } else {
        url = w->cfg->providers[r->provider].base_url;
        curl_easy_setopt(c->easy, CURLOPT_CURLU, w->urls[r->provider]);
    }
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, r->headers);
    upstream_attempt_options(c, url, r->write_cb, r->header_cb, r->done,
                             left);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, &c->xfer);
    /* A pooled handle: its socket functions were set when it was made. */
    return curl_multi_add_handle(w->multi, c->easy) == CURLM_OK ? 0 : -1;
}

long upstream_status(const struct call *c)
{
    long status = 0;

    if (c->native)
        return httpc_status(&c->hx);
    if (c->easy != NULL)
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

void upstream_pause(struct call *c, bool pause)
{
    if (c->native)
        httpc_pause(&c->hx, pause);
    else if (c->easy != NULL)
        curl_easy_pause(c->easy, pause ? CURLPAUSE_RECV : CURLPAUSE_CONT);
}

bool upstream_used(const struct call *c)
{
    return c->native || c->easy != NULL;
}

/* The call leaves whoever holds it parked. */
static void upstream_unpark(struct call *c)
{
    if (c->unpark != NULL)
        c->unpark(c);
}

void upstream_abort(struct worker *w, struct call *c)
{
    if (c->native)
        httpc_abort(&c->hx);
    else if (c->easy != NULL)
        curl_multi_remove_handle(w->multi, c->easy);
    upstream_unpark(c);
    if (c->timer != NULL)
        evtimer_del(c->timer);
    if (c->adapter_timer != NULL)
        evtimer_del(c->adapter_timer);
    if (c->idle_timer != NULL)
        evtimer_del(c->idle_timer);
}

void upstream_attempt_clear(struct call *c)
{
    /* No idle clock between attempts: a backoff is not the upstream's. */
    if (c->idle_timer != NULL)
        evtimer_del(c->idle_timer);
    upstream_unpark(c);
    curl_slist_free_all(c->auth_headers);
    c->auth_headers = NULL;
    free(c->req_body);
    c->req_body = NULL;
    free(c->door_state);
    c->door_state = NULL;
    c->req_len = 0;
    if (c->resp != NULL) {
        evbuffer_free(c->resp);
        c->resp = NULL;
    }
    sse_free(&c->sse);
    c->sse_done = false;
    c->sse_finished = false;
    c->too_large = false;
    c->http_status = 0;
    c->json_type = false;
    c->proto_error = NULL;
}
