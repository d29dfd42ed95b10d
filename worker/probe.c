/* probe.c - active health probes, run by the workers: each worker keeps a
 * timer per provider with a health_check; when it fires, the worker
 * tries to claim the provider's lease in the segment (health_claim: a
 * compare-and-set, so exactly one process wins each round however many
 * workers run), and the winner probes GET {base_url}/models signed as
 * the provider's kind says, with its API key or its OAuth tokens
 * (refreshed as for calls; tokens a probe finds refused are marked for a
 * refresh, as a refused call's are, so that an unhealthy provider no
 * call reaches can still recover). The outcome is counted under the segment
 * lock (health_record), and a change of health is logged once, by the
 * worker whose probe made it. A mock provider is answered in-process:
 * every round counts as a good probe. Workers of an older configuration
 * (a reload in progress) probe nothing. */
#include "worker_int.h"

#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provhealth.h"
#include "provkind.h"
#include "util.h"

#define PROBE_URL_MAX   2048
#define PROBE_MIN_ARM_MS 1   /* a timer is never armed in the past */
/* Nor, in cluster mode, further than this: the master may bring a
 * deferred deadline back (master/clhealth.c), which a timer armed for
 * the later one would miss. */
#define PROBE_MAX_ARM_MS 250

struct probe {
    struct worker *w;
    int provider;
    struct event *timer;
    struct upstream_xfer xfer;     /* CURLINFO_PRIVATE of easy */
    CURL *easy;                    /* the probe in flight, or NULL */
    struct curl_slist *hdrs;       /* its signed header lines; secret */
    int64_t round;                 /* its round (health_claim) */
    uint32_t auth_gen;             /* OAuth: the tokens it was signed with */
    char err[CURL_ERROR_SIZE];
};

/* The worker's probes, one per provider of its configuration (the ones
 * without a health_check have no timer). */
struct probe_set {
    struct probe *p;
    int n;
};

static const struct cfg_provider *probe_cfg(const struct probe *pr)
{
    return &pr->w->cfg->providers[pr->provider];
}

static struct health_state *probe_state(const struct probe *pr)
{
    return provhealth_at(&pr->w->shm,
                         pr->w->slots->health_slot[pr->provider]);
}

/* Whether this worker's configuration is still the one applied last:
 * a worker of an older one leaves probing to the new workers (and its
 * provider's entry may have gone). With the lock held. */
static bool probe_current(const struct worker *w)
{
    return w->shm.hdr->config_gen == w->slots->generation;
}

static void probe_arm(struct probe *pr)
{
    int64_t wait = health_due_ms(probe_state(pr)) - util_now_ms();
    struct timeval tv;

    if (wait < PROBE_MIN_ARM_MS)
        wait = PROBE_MIN_ARM_MS;
    else if (wait > PROBE_MAX_ARM_MS && pr->w->cfg->cluster.configured)
        wait = PROBE_MAX_ARM_MS;
    tv = util_ms_to_tv(wait);

    UTIL_MUST(evtimer_add(pr->timer, &tv), "health probe timer");
}

/* Counts the outcome of round and logs a change of health once. */
static void probe_record(struct probe *pr, int64_t round,
                         enum health_outcome outcome, const char *detail)
{
    struct worker *w = pr->w;
    struct health_params hp = provhealth_params(&probe_cfg(pr)->health);
    enum health_change change = HEALTH_CHANGE_NONE;
    bool current;

    shm_lock(&w->shm);
    current = probe_current(w);
    if (current)
        change = health_record(probe_state(pr), &hp, round, outcome,
                               util_now_ms());
    shm_unlock(&w->shm);
    if (!current)
        return;
    log_msg(&w->log, LOG_DEBUG, NULL, "health probe of provider %s: %s "
            "(%s)", probe_cfg(pr)->name, health_outcome_name(outcome),
            detail);
    if (change != HEALTH_CHANGE_NONE)
        log_msg(&w->log, change == HEALTH_CHANGE_UNHEALTHY ? LOG_WARN
                                                           : LOG_INFO,
                NULL, "health of provider %s: %s (last probe: %s)",
                probe_cfg(pr)->name, health_change_name(change), detail);
}

static void probe_clear(struct probe *pr)
{
    if (pr->easy != NULL) {
        upstream_remove(pr->w, pr->easy);
        curl_easy_cleanup(pr->easy);
        pr->easy = NULL;
    }
    curl_slist_free_all(pr->hdrs);
    pr->hdrs = NULL;
}

static void probe_done(struct upstream_xfer *x, CURLcode result)
{
    struct probe *pr = (struct probe *)((char *)x -
                                        offsetof(struct probe, xfer));
    long status = 0;
    char detail[CURL_ERROR_SIZE + 32];

    curl_easy_getinfo(pr->easy, CURLINFO_RESPONSE_CODE, &status);
    if (result != CURLE_OK)
        snprintf(detail, sizeof(detail), "%s", pr->err[0] ? pr->err
                 : curl_easy_strerror(result));
    else
        snprintf(detail, sizeof(detail), "HTTP %ld", status);
    if (result == CURLE_OK && probe_cfg(pr)->auth == CFG_AUTH_OAUTH &&
        (status == HEALTH_STATUS_UNAUTHORIZED ||
         status == HEALTH_STATUS_FORBIDDEN))
        auth_probe_refused(pr->w, pr->provider, pr->auth_gen);
    /* Already off the multi (upstream.c): only the handle goes. */
    curl_easy_cleanup(pr->easy);
    pr->easy = NULL;
    curl_slist_free_all(pr->hdrs);
    pr->hdrs = NULL;
    probe_record(pr, pr->round, health_classify(result == CURLE_OK, status),
                 detail);
}

static size_t probe_discard(char *buf, size_t size, size_t n, void *arg)
{
    (void)buf;
    (void)arg;
    return size * n;
}

static int probe_add_header(void *arg, const char *line)
{
    struct curl_slist **h = arg;
    struct curl_slist *n = curl_slist_append(*h, line);

    if (n == NULL)
        return -1;
    *h = n;
    return 0;
}

/* The models URL: the base the chat URL of the tokens was built on (for
 * OAuth) or base_url, then the kind's models path. */
static int probe_url(const struct probe *pr, const char *chat_url,
                     char *out, size_t cap)
{
    const struct provkind *k = provkind_of(probe_cfg(pr)->type);
    char base[PROBE_URL_MAX];

    if (chat_url != NULL) {
        size_t len = strlen(chat_url), tail = strlen(k->chat_path);

        if (len < tail || len - tail >= sizeof(base) ||
            strcmp(chat_url + len - tail, k->chat_path) != 0)
            return -1;
        memcpy(base, chat_url, len - tail);
        base[len - tail] = '\0';
    } else if (probe_cfg(pr)->base_url == NULL ||
               util_strlcpy(base, probe_cfg(pr)->base_url, sizeof(base)) < 0) {
        return -1;
    }
    return provkind_url(base, k->models_path, out, cap);
}

/* Sends the probe of round; its outcome arrives in probe_done, or is
 * counted here when it cannot be sent. */
static void probe_start(struct probe *pr, int64_t round)
{
    const struct cfg_provider *p = probe_cfg(pr);
    const struct provkind *k = provkind_of(p->type);
    struct worker *w = pr->w;
    const char *secret = p->api_key, *chat_url = NULL;
    char url[PROBE_URL_MAX];
    long timeout = p->health.timeout_ms;

    if (k->simulated) {
        probe_record(pr, round, HEALTH_OK, "simulated");
        return;
    }
    if (p->auth == CFG_AUTH_OAUTH) {
        int rc = auth_probe_credentials(w, pr->provider, &secret, &chat_url,
                                        &pr->auth_gen);

        if (rc == 0)
            return;      /* a refresh is under way: this round is skipped */
        if (rc < 0) {
            probe_record(pr, round, HEALTH_FAIL, "OAuth tokens not usable");
            return;
        }
    } else if (secret == NULL) {
        probe_record(pr, round, HEALTH_FAIL, "no API key");
        return;
    }
    if (probe_url(pr, chat_url, url, sizeof(url)) < 0 ||
        k->sign(secret, false, probe_add_header, &pr->hdrs) < 0 ||
        (pr->easy = curl_easy_init()) == NULL)
        goto fail;
    pr->round = round;
    pr->err[0] = '\0';
    curl_easy_setopt(pr->easy, CURLOPT_URL, url);
    curl_easy_setopt(pr->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(pr->easy, CURLOPT_HTTPHEADER, pr->hdrs);
    curl_easy_setopt(pr->easy, CURLOPT_WRITEFUNCTION, probe_discard);
    curl_easy_setopt(pr->easy, CURLOPT_ERRORBUFFER, pr->err);
    curl_easy_setopt(pr->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(pr->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(w->cfg->connect_timeout_ms < timeout ?
                            w->cfg->connect_timeout_ms : timeout));
    curl_easy_setopt(pr->easy, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(pr->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(pr->easy, CURLOPT_PRIVATE, &pr->xfer);
    if (upstream_add(w, pr->easy) < 0)
        goto fail;
    return;
fail:
    probe_clear(pr);
    log_msg(&w->log, LOG_ERROR, NULL, "health probe of provider %s: cannot "
            "start it", p->name);
}

static void probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct probe *pr = arg;
    struct worker *w = pr->w;
    struct health_params hp = provhealth_params(&probe_cfg(pr)->health);
    int64_t round;
    bool current;

    (void)fd;
    (void)what;
    if (w->stopping)
        return;
    shm_lock(&w->shm);
    current = probe_current(w);
    shm_unlock(&w->shm);
    if (!current)
        return;        /* the new configuration's workers probe */
    /* One probe at a time per worker and provider; the lease decides
     * which process probes this round. */
    if (pr->easy == NULL &&
        health_claim(probe_state(pr), &hp, w->slot, util_now_ms(), &round))
        probe_start(pr, round);
    probe_arm(pr);
}

int probe_init(struct worker *w)
{
    struct probe_set *set = calloc(1, sizeof(*set));

    if (set == NULL)
        return -1;
    w->probes = set;
    set->n = w->cfg->provider_count;
    set->p = calloc((size_t)set->n + 1, sizeof(*set->p));
    if (set->p == NULL)
        return -1;
    for (int i = 0; i < set->n; i++) {
        struct probe *pr = &set->p[i];

        pr->w = w;
        pr->provider = i;
        pr->xfer.done = probe_done;
        if (w->cfg->providers[i].health.interval_ms <= 0)
            continue;
        pr->timer = evtimer_new(w->base, probe_timer_cb, pr);
        if (pr->timer == NULL)
            return -1;
        probe_arm(pr);
    }
    return 0;
}

void probe_free(struct worker *w)
{
    struct probe_set *set = w->probes;

    if (set == NULL)
        return;
    for (int i = 0; set->p != NULL && i < set->n; i++) {
        probe_clear(&set->p[i]);
        if (set->p[i].timer != NULL)
            event_free(set->p[i].timer);
    }
    free(set->p);
    free(set);
    w->probes = NULL;
}
