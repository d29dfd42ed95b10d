/* upstream.c - drives libcurl's multi interface from the worker's
 * libevent loop (curl tells us which sockets and timeouts to watch; the
 * loop tells curl when they fire), so one worker runs many transfers at
 * once and reuses connections. Also keeps a small pool of easy handles.
 * Curl glue only: it never names a provider; a transfer that ends is
 * reported to the struct upstream_xfer its CURLINFO_PRIVATE points to. */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPSTREAM_MAX_CONNECTS 256

/* What we keep per socket curl asked us to watch. */
struct upstream_sock {
    struct event *ev;
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

static void upstream_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    int flags = 0, running;

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

static int upstream_sock_cb(CURL *easy, curl_socket_t s, int what,
                            void *userp, void *socketp)
{
    struct worker *w = userp;
    struct upstream_sock *us = socketp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (us != NULL) {
            event_free(us->ev);
            free(us);
        }
        curl_multi_assign(w->multi, s, NULL);
        return 0;
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (us == NULL) {
        us = calloc(1, sizeof(*us));
        if (us == NULL)
            return -1;
        curl_multi_assign(w->multi, s, us);
    } else {
        event_free(us->ev);
    }
    us->ev = event_new(w->base, s, kind, upstream_event_cb, w);
    if (us->ev == NULL)
        return -1;
    return event_add(us->ev, NULL);
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

void upstream_set_proxy(struct worker *w, CURL *easy, bool https)
{
    const char *proxy = https ? w->proxy_https : w->proxy_http;

    /* "" is "no proxy" to libcurl, and both set means no lookup. */
    curl_easy_setopt(easy, CURLOPT_PROXY, proxy != NULL ? proxy : "");
    curl_easy_setopt(easy, CURLOPT_NOPROXY,
                     w->no_proxy != NULL ? w->no_proxy : "");
}

int upstream_init(struct worker *w)
{
    upstream_read_proxy_env(w);
    w->multi = curl_multi_init();
    w->curl_timer = evtimer_new(w->base, upstream_timer_cb, w);
    if (w->multi == NULL || w->curl_timer == NULL)
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
    free(w->proxy_http);
    free(w->proxy_https);
    free(w->no_proxy);
    w->proxy_http = w->proxy_https = w->no_proxy = NULL;
}

CURL *upstream_easy_get(struct worker *w)
{
    if (w->easy_pool_len > 0)
        return w->easy_pool[--w->easy_pool_len];
    return curl_easy_init();
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
    return curl_multi_add_handle(w->multi, easy) == CURLM_OK ? 0 : -1;
}

void upstream_remove(struct worker *w, CURL *easy)
{
    if (easy != NULL)
        curl_multi_remove_handle(w->multi, easy);
}

int upstream_start(struct worker *w, struct call *c)
{
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, &c->xfer);
    return upstream_add(w, c->easy);
}

/* The call leaves whoever holds it parked. */
static void upstream_unpark(struct call *c)
{
    if (c->unpark != NULL)
        c->unpark(c);
}

void upstream_abort(struct worker *w, struct call *c)
{
    if (c->easy != NULL)
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
