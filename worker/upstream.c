/* upstream.c - drives libcurl's multi interface from the worker's
 * libevent loop (curl tells us which sockets and timeouts to watch; the
 * loop tells curl when they fire), so one worker runs many transfers at
 * once and reuses connections. Also keeps a small pool of easy handles. */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPSTREAM_MAX_CONNECTS 256
#define UPSTREAM_AUTH_MAX     4096
#define UPSTREAM_URL_MAX      2048

/* What we keep per socket curl asked us to watch. */
struct upstream_sock {
    struct event *ev;
};

static void upstream_check_done(struct worker *w)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        struct call *c = NULL;
        CURL *easy;
        CURLcode result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg is not to be read once its handle leaves the multi. */
        easy = msg->easy_handle;
        result = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        /* Take it out of the multi before the call reacts: the reaction
         * may start a new attempt with this very handle. */
        curl_multi_remove_handle(w->multi, easy);
        if (auth_transfer_done(w, easy, result))
            continue;
        if (c != NULL)
            openai_transfer_done(c, result);
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

/* Builds the header lists of every provider once: the same few lines
 * go out with each call. */
static int upstream_build_headers(struct worker *w)
{
    const struct cfg *cfg = w->cfg;

    w->headers = calloc((size_t)cfg->provider_count * 2,
                        sizeof(*w->headers));
    if (w->headers == NULL)
        return -1;
    for (int p = 0; p < cfg->provider_count; p++) {
        const struct cfg_provider *prov = &cfg->providers[p];

        for (int stream = 0; stream < 2; stream++) {
            struct curl_slist *h = NULL, *n;

            h = curl_slist_append(h, "Content-Type: application/json");
            n = h ? curl_slist_append(h, stream ? "Accept: text/event-stream"
                                                : "Accept: application/json")
                  : NULL;
            h = n ? curl_slist_append(n, "Expect:") : NULL;
            if (h != NULL && prov->api_key != NULL) {
                char auth[UPSTREAM_AUTH_MAX];

                snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                         prov->api_key);
                n = curl_slist_append(h, auth);
                explicit_bzero(auth, sizeof(auth));
                if (n == NULL)
                    curl_slist_free_all(h);
                h = n;
            }
            if (h == NULL)
                return -1;
            w->headers[2 * p + stream] = h;
        }
    }
    return 0;
}

/* Parses every provider's chat URL once; curl would parse the string
 * again on every transfer. */
static int upstream_build_urls(struct worker *w)
{
    const struct cfg *cfg = w->cfg;

    w->urls = calloc((size_t)cfg->provider_count, sizeof(*w->urls));
    if (w->urls == NULL)
        return -1;
    for (int p = 0; p < cfg->provider_count; p++) {
        char url[UPSTREAM_URL_MAX];

        if (cfg->providers[p].base_url == NULL)
            continue;
        snprintf(url, sizeof(url), "%s/chat/completions",
                 cfg->providers[p].base_url);
        w->urls[p] = curl_url();
        if (w->urls[p] == NULL ||
            curl_url_set(w->urls[p], CURLUPART_URL, url, 0) != CURLUE_OK)
            return -1;
    }
    return 0;
}

CURLU *upstream_url(const struct call *c)
{
    return c->w->urls[c->w->cfg->targets[c->target].provider];
}

struct curl_slist *upstream_headers(const struct call *c)
{
    int p = c->w->cfg->targets[c->target].provider;

    return c->w->headers[2 * p + (c->stream ? 1 : 0)];
}

int upstream_init(struct worker *w)
{
    if (upstream_build_headers(w) < 0 || upstream_build_urls(w) < 0)
        return -1;
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
    return auth_init(w);
}

void upstream_free(struct worker *w)
{
    auth_free(w);      /* its calls leave the multi before it goes */
    if (w->headers != NULL) {
        for (int i = 0; i < 2 * w->cfg->provider_count; i++)
            curl_slist_free_all(w->headers[i]);
        free(w->headers);
        w->headers = NULL;
    }
    while (w->easy_pool_len > 0)
        curl_easy_cleanup(w->easy_pool[--w->easy_pool_len]);
    if (w->urls != NULL) {
        for (int p = 0; p < w->cfg->provider_count; p++)
            curl_url_cleanup(w->urls[p]);
        free(w->urls);
        w->urls = NULL;
    }
    if (w->multi != NULL) {
        curl_multi_cleanup(w->multi);
        w->multi = NULL;
    }
    if (w->curl_timer != NULL) {
        event_free(w->curl_timer);
        w->curl_timer = NULL;
    }
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

int upstream_start(struct worker *w, struct call *c)
{
    return curl_multi_add_handle(w->multi, c->easy) == CURLM_OK ? 0 : -1;
}

void upstream_abort(struct worker *w, struct call *c)
{
    if (c->easy != NULL)
        curl_multi_remove_handle(w->multi, c->easy);
    auth_forget(c);
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
    auth_forget(c);
    curl_slist_free_all(c->auth_headers);
    c->auth_headers = NULL;
    free(c->req_body);
    c->req_body = NULL;
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
