/* auth.c - OAuth credentials in the worker. Owns, per OAuth provider, the
 * tokens read from its token file (read again when the file changes on
 * disk, e.g. after `pipelinectl login`), the Authorization header and
 * chat URL they give, and their refresh: shortly before expiry or after
 * the API refused them. One refresh at a time across every process: the
 * refresher holds an flock on "<token_file>.lock" (released by the kernel
 * if it dies), re-reads the file under it (another process may have just
 * refreshed) and only then calls the authorization server, on the
 * worker's curl multi. Calls that need the new tokens wait parked here,
 * their deadlines still watched; the new tokens go to the token file
 * (atomically, 0600), where every other worker finds them, written on a
 * helper thread (offload.h) so no fsync stalls the worker's streams.
 * The tokens' own state (reading, adopting, why they are unusable, the
 * lock) is auth_state.c's; what a kind does differently is its
 * descriptor's (provkind.h). */
#include "auth_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "frame.h"
#include "oauth.h"
#include "offload.h"
#include "outq.h"
#include "provkind.h"

static void auth_timer_arm(struct auth_provider *ap, int ms);

/* ---- parking calls ---- */

static void auth_forget(struct call *c);

static void auth_park(struct auth_provider *ap, struct call *c)
{
    c->auth_next = ap->waiters;
    ap->waiters = c;
    c->auth_parked = true;
    c->unpark = auth_forget;
    /* One tick for all: re-arming per call would keep pushing it out. */
    if (!evtimer_pending(ap->timer, NULL))
        auth_timer_arm(ap, AUTH_POLL_MS);
}

/* Takes c off the parked list, if it is there (c->unpark). */
static void auth_forget(struct call *c)
{
    struct auth_provider *ap;
    struct call **pp;

    if (!c->auth_parked)
        return;
    ap = &c->w->auth[c->w->cfg->targets[c->target].provider];
    for (pp = &ap->waiters; *pp != NULL; pp = &(*pp)->auth_next) {
        if (*pp == c) {
            *pp = c->auth_next;
            break;
        }
    }
    c->auth_next = NULL;
    c->auth_parked = false;
    c->unpark = NULL;
}

/* Takes every parked call off the list and starts its attempt again
 * (the adapter asks auth_prepare once more, which now answers). */
static void auth_resume_all(struct auth_provider *ap)
{
    struct call *c = ap->waiters, *next;

    ap->waiters = NULL;
    for (; c != NULL; c = next) {
        next = c->auth_next;
        c->auth_next = NULL;
        c->auth_parked = false;
        c->unpark = NULL;
        ap->restart(c);
    }
}

/* Parked calls whose deadline passed fail with 504. */
static void auth_expire_waiters(struct auth_provider *ap)
{
    int64_t now = util_now_ms();
    struct call **pp = &ap->waiters;

    while (*pp != NULL) {
        struct call *c = *pp;

        if (now < c->deadline_ms) {
            pp = &c->auth_next;
            continue;
        }
        *pp = c->auth_next;
        c->auth_next = NULL;
        c->auth_parked = false;
        c->unpark = NULL;
        call_attempt_failed(c, 504, "timeout", "request timed out waiting "
                            "for the provider's credentials", false, false);
        /* The list may have changed under us (the failure pulled new
         * work); start over. */
        pp = &ap->waiters;
    }
}

/* ---- the refresh call ---- */

static void auth_call_clear(struct auth_provider *ap)
{
    if (ap->easy != NULL) {
        upstream_remove(ap->w, ap->easy);
        curl_easy_cleanup(ap->easy);
        ap->easy = NULL;
    }
    curl_slist_free_all(ap->hdrs);
    ap->hdrs = NULL;
    auth_free_str(&ap->form);
    auth_free_str(&ap->url);
    if (ap->resp != NULL) {
        evbuffer_free(ap->resp);
        ap->resp = NULL;
    }
    ap->resp_too_large = false;
}

static size_t auth_write_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct auth_provider *ap = arg;
    size_t len = size * n;

    if (evbuffer_get_length(ap->resp) + len > AUTH_ANSWER_MAX) {
        ap->resp_too_large = true;
        return 0;
    }
    return evbuffer_add(ap->resp, buf, len) == 0 ? len : 0;
}

/* Starts a call to the authorization server: a POST of ap->form, or a
 * GET when there is none. 0 or -1. */
static int auth_call_start(struct auth_provider *ap)
{
    const struct cfg_provider *p = auth_cfg(ap);

    ap->easy = curl_easy_init();
    ap->resp = evbuffer_new();
    if (ap->easy == NULL || ap->resp == NULL)
        return -1;
    ap->hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (ap->hdrs == NULL)
        return -1;
    curl_easy_setopt(ap->easy, CURLOPT_URL, ap->url);
    curl_easy_setopt(ap->easy, CURLOPT_HTTPHEADER, ap->hdrs);
    if (ap->form != NULL) {
        curl_easy_setopt(ap->easy, CURLOPT_POSTFIELDS, ap->form);
        curl_easy_setopt(ap->easy, CURLOPT_POSTFIELDSIZE,
                         (long)strlen(ap->form));
    }
    if (ap->phase == AUTH_REFRESHING && auth_kind(ap)->refresh_needs_secret) {
        /* The client credentials go as Basic auth too (iFlow). */
        curl_easy_setopt(ap->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(ap->easy, CURLOPT_USERNAME, p->client_id);
        curl_easy_setopt(ap->easy, CURLOPT_PASSWORD, p->client_secret);
    }
    curl_easy_setopt(ap->easy, CURLOPT_WRITEFUNCTION, auth_write_cb);
    curl_easy_setopt(ap->easy, CURLOPT_WRITEDATA, ap);
    curl_easy_setopt(ap->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(ap->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)ap->w->cfg->connect_timeout_ms);
    curl_easy_setopt(ap->easy, CURLOPT_TIMEOUT_MS,
                     (long)AUTH_REFRESH_TIMEOUT_MS);
    curl_easy_setopt(ap->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(ap->easy, CURLOPT_PRIVATE, &ap->xfer);
    return upstream_add(ap->w, ap->easy);
}

/* The refresh is over (whatever its outcome): drop the lock and let the
 * parked calls go on; they see the outcome in ap's state. */
static void auth_settle(struct auth_provider *ap)
{
    auth_call_clear(ap);
    oauth_tokens_free(&ap->fresh);
    /* The master shares the new tokens (if any) and frees the cluster's
     * lock: after the file is written, before our flock goes. */
    if (ap->cluster_granted)
        outq_send_control(ap->w, FRAME_OAUTH, FRAME_OAUTH_RELEASE,
                          (uint32_t)ap->provider);
    ap->cluster_ok = false;
    ap->cluster_granted = false;
    auth_unlock(ap);
    ap->phase = AUTH_IDLE;
    auth_timer_arm(ap, 0);
}

static void auth_refresh_failed(struct auth_provider *ap, const char *why)
{
    ap->next_refresh_ms = util_now_ms() + AUTH_RETRY_MS;
    auth_set_reason(ap, LOG_WARN, "provider %s: token refresh failed: %s"
                    " (if it persists" AUTH_LOGIN_HINT ")", why);
    auth_settle(ap);
}

/* A token save, run on the offload thread (an fsync'd file and
 * directory would stall every stream of the worker): path and tokens
 * are the job's own. */
struct auth_save {
    struct auth_provider *ap;
    char *path;
    struct oauth_tokens tok;
    bool final;                /* the refresh ends when they are saved */
    char err[OAUTH_ERR_MAX];
};

static void auth_refreshed_saved(struct auth_provider *ap,
                                 struct oauth_tokens *t);

static int auth_save_run(void *arg)
{
    struct auth_save *sv = arg;

    return oauth_tokens_save(sv->path, &sv->tok, sv->err, sizeof(sv->err));
}

static void auth_save_done(void *arg, int rc)
{
    struct auth_save *sv = arg;
    struct auth_provider *ap = sv->ap;
    const struct cfg_provider *p = auth_cfg(ap);

    if (rc < 0 && sv->final)
        log_msg(&ap->w->log, LOG_ERROR, NULL, "provider %s: new tokens not "
                "saved: %s; this worker keeps them, but other processes "
                "will not see them until the file can be written",
                p->name, sv->err);
    else if (rc < 0)
        log_msg(&ap->w->log, LOG_ERROR, NULL, "provider %s: new tokens "
                "not saved: %s", p->name, sv->err);
    if (sv->final && !ap->closing)
        auth_refreshed_saved(ap, &sv->tok);
    oauth_tokens_free(&sv->tok);
    free(sv->path);
    free(sv);
}

/* Saves t (moved into the job: *t is left empty) off the loop; final:
 * the refresh goes on in auth_refreshed_saved when it is written. When
 * no thread can run it, the save is made here. */
static void auth_save(struct auth_provider *ap, struct oauth_tokens *t,
                      bool final)
{
    struct auth_save *sv = calloc(1, sizeof(*sv));

    if (sv == NULL || (sv->path = strdup(auth_cfg(ap)->token_file)) == NULL)
        util_oom("token save");
    sv->ap = ap;
    sv->tok = *t;
    memset(t, 0, sizeof(*t));
    sv->final = final;
    if (final)
        ap->phase = AUTH_SAVING;
    if (offload_run(ap->offload, auth_save_run, auth_save_done, sv) < 0)
        auth_save_done(sv, auth_save_run(sv));
}

/* New tokens: to the file for every other process, then ours. */
static void auth_refreshed(struct auth_provider *ap, struct oauth_tokens *t)
{
    auth_note_dead(ap, false);
    auth_save(ap, t, true);
}

/* The new tokens t are on disk (or could not be written, which was
 * logged): now they are ours. */
static void auth_refreshed_saved(struct auth_provider *ap,
                                 struct oauth_tokens *t)
{
    const struct cfg_provider *p = auth_cfg(ap);
    struct oauth_file_id id;

    /* The version on disk now, ours or (when the save failed) the old
     * one: either way it is not read back over the new tokens. */
    if (oauth_file_stat(p->token_file, &id) < 0)
        memset(&id, 0, sizeof(id));
    log_msg(&ap->w->log, LOG_INFO, NULL, "provider %s: tokens refreshed%s",
            p->name, t->expiry_ms ? "" : " (no expiry given)");
    /* Tokens that come already close to expiry (a short life, or a clock
     * ahead of the server's) are not refreshed again at once for that. */
    ap->next_refresh_ms = 0;
    ap->next_ahead_ms = util_now_ms() + AUTH_RETRY_MS;
    auth_adopt(ap, t, &id);
    ap->from_refusal = ap->for_refusal;
    ap->next_stat_ms = util_now_ms() + AUTH_STAT_INTERVAL_MS;
    auth_settle(ap);
}

static void auth_start_userinfo(struct auth_provider *ap)
{
    const struct cfg_provider *p = auth_cfg(ap);
    char *tok = oauth_urlencode(ap->fresh.access_token);

    auth_call_clear(ap);
    ap->phase = AUTH_USERINFO;
    if (tok == NULL || asprintf(&ap->url, "%s%s%s", p->oauth_base_url,
                                auth_kind(ap)->userinfo_path, tok) < 0) {
        ap->url = NULL;
        auth_free_str(&tok);
        auth_refresh_failed(ap, "out of memory");
        return;
    }
    auth_free_str(&tok);
    if (auth_call_start(ap) < 0)
        auth_refresh_failed(ap, "cannot start the getUserInfo call");
}

static void auth_refresh_done(struct auth_provider *ap, CURLcode result)
{
    char err[OAUTH_ERR_MAX], why[AUTH_REASON_MAX];
    long status = 0;
    size_t len = evbuffer_get_length(ap->resp);
    const char *body = len ? (const char *)evbuffer_pullup(ap->resp, -1) : "";
    struct oauth_tokens t;
    enum oauth_result r;

    curl_easy_getinfo(ap->easy, CURLINFO_RESPONSE_CODE, &status);
    if (ap->phase == AUTH_USERINFO) {
        char *key = NULL;

        why[0] = '\0';
        if (result != CURLE_OK)
            snprintf(why, sizeof(why), "%s", ap->resp_too_large ?
                     "answer too large" : curl_easy_strerror(result));
        else if (oauth_parse_iflow_userinfo(status, body, len, &key, err,
                                            sizeof(err)) < 0)
            snprintf(why, sizeof(why), "%s", err);
        if (why[0] != '\0') {
            /* The new tokens are saved already; they stay, with the key
             * we had (the next refresh asks for a new one again). */
            auth_warn_once(ap, "getUserInfo failed after a refresh (%s); "
                           "keeping the previous API key", why);
        } else {
            auth_free_str(&ap->fresh.api_key);
            ap->fresh.api_key = key;
        }
        t = ap->fresh;
        memset(&ap->fresh, 0, sizeof(ap->fresh));
        auth_refreshed(ap, &t);
        return;
    }
    if (result != CURLE_OK) {
        snprintf(why, sizeof(why), "token endpoint: %s",
                 ap->resp_too_large ? "answer too large"
                                    : curl_easy_strerror(result));
        auth_refresh_failed(ap, why);
        return;
    }
    memset(&t, 0, sizeof(t));
    r = oauth_parse_refresh(status, body, len, util_wall_ms(), &ap->tok, &t,
                            err, sizeof(err));
    if (r == OAUTH_REVOKED) {
        snprintf(why, sizeof(why), "the authorization server refused the "
                 "refresh token (%s)", err);
        auth_mark_dead(ap, why);
        auth_note_dead(ap, true);
        auth_settle(ap);
        return;
    }
    if (r != OAUTH_OK) {
        auth_refresh_failed(ap, err);
        return;
    }
    if (auth_kind(ap)->userinfo_path != NULL) {
        /* The Bearer key comes with the new access token (iFlow). Save the
         * tokens first: the old refresh token may be dead already, and a
         * failed getUserInfo must not lose the new one. */
        struct oauth_tokens copy;

        auth_note_dead(ap, false);
        if (oauth_tokens_copy(&copy, &t) < 0)
            util_oom("token copy");
        auth_save(ap, &copy, false);
        oauth_tokens_free(&ap->fresh);
        ap->fresh = t;
        auth_start_userinfo(ap);
        return;
    }
    auth_refreshed(ap, &t);
}

static void auth_xfer_done(struct upstream_xfer *x, CURLcode result)
{
    auth_refresh_done((struct auth_provider *)((char *)x -
                      offsetof(struct auth_provider, xfer)), result);
}

/* Cluster mode, the flock held: asks the master for the cluster's lock
 * (auth_cluster_frame has the answer; the timer asks again while another
 * instance holds it). */
static void auth_cluster_ask(struct auth_provider *ap)
{
    if (ap->phase != AUTH_CLUSTER) {
        ap->phase = AUTH_CLUSTER;
        ap->phase_start_ms = util_now_ms();
    }
    ap->cluster_asked_ms = util_now_ms();
    ap->cluster_busy = false;
    outq_send_control(ap->w, FRAME_OAUTH, FRAME_OAUTH_ASK,
                      (uint32_t)ap->provider);
    if (!evtimer_pending(ap->timer, NULL))
        auth_timer_arm(ap, AUTH_POLL_MS);
}

/* With the lock held: someone else may have refreshed already (the file
 * changed); else call the authorization server. */
static void auth_refresh_locked(struct auth_provider *ap)
{
    const struct cfg_provider *p = auth_cfg(ap);
    const char *path = auth_kind(ap)->token_path;

    auth_load(ap, true);
    if (ap->dead || (!ap->stale && !auth_expiring(ap,
                                                  OAUTH_REFRESH_MARGIN_MS))) {
        auth_settle(ap);
        return;
    }
    if (!auth_refreshable(ap)) {
        auth_settle(ap);   /* auth_prepare explains it to each call */
        return;
    }
    if (auth_known_dead(ap)) {
        auth_mark_dead(ap, "the authorization server refused the refresh "
                       "token of this token file");
        auth_settle(ap);
        return;
    }
    if (ap->w->cfg->cluster.configured && !ap->cluster_ok) {
        auth_cluster_ask(ap);
        return;
    }
    ap->phase = AUTH_REFRESHING;
    ap->phase_start_ms = util_now_ms();
    ap->form = oauth_form_refresh(p->client_id,
                                  auth_kind(ap)->refresh_needs_secret ?
                                  p->client_secret : NULL,
                                  ap->tok.refresh_token);
    if (ap->form == NULL ||
        asprintf(&ap->url, "%s%s", p->oauth_base_url, path) < 0) {
        ap->url = NULL;
        auth_refresh_failed(ap, "out of memory");
        return;
    }
    log_msg(&ap->w->log, LOG_INFO, NULL, "provider %s: refreshing its "
            "tokens (%s)", p->name, ap->stale ? "the API refused them"
                                              : "they expire soon");
    ap->for_refusal = ap->stale;
    if (auth_call_start(ap) < 0)
        auth_refresh_failed(ap, "cannot start the token endpoint call");
}

static void auth_refresh_begin(struct auth_provider *ap)
{
    int rc = auth_lock(ap);

    if (rc == 0) {
        ap->phase = AUTH_WAITING;
        ap->phase_start_ms = util_now_ms();
        auth_timer_arm(ap, AUTH_POLL_MS);
        return;
    }
    auth_refresh_locked(ap);
}

static void auth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct auth_provider *ap = arg;

    (void)fd;
    (void)what;
    auth_expire_waiters(ap);
    switch (ap->phase) {
    case AUTH_IDLE:
        auth_resume_all(ap);
        return;
    case AUTH_WAITING:
        if (auth_lock(ap) != 0) {
            auth_refresh_locked(ap);
        } else if (util_now_ms() - ap->phase_start_ms > AUTH_WAIT_MAX_MS) {
            ap->phase = AUTH_IDLE;
            auth_refresh_failed(ap, "another process has held the refresh "
                                "lock for too long");
        } else {
            auth_timer_arm(ap, AUTH_POLL_MS);
        }
        return;
    case AUTH_CLUSTER:
        /* Another instance refreshes: its tokens reach our file. */
        auth_load(ap, true);
        if (ap->dead || (!ap->stale &&
                         !auth_expiring(ap, OAUTH_REFRESH_MARGIN_MS))) {
            auth_settle(ap);
        } else if (util_now_ms() - ap->phase_start_ms > AUTH_WAIT_MAX_MS) {
            auth_refresh_failed(ap, "another instance of the cluster has "
                                "held the refresh lock for too long");
        } else {
            int64_t since = util_now_ms() - ap->cluster_asked_ms;

            /* Again once told BUSY, not while the answer is on its way
             * (unless it got lost). */
            if ((ap->cluster_busy && since >= AUTH_CLUSTER_ASK_MS) ||
                since >= AUTH_CLUSTER_ANSWER_MS)
                auth_cluster_ask(ap);
            auth_timer_arm(ap, AUTH_POLL_MS);
        }
        return;
    case AUTH_REFRESHING:
    case AUTH_USERINFO:
    case AUTH_SAVING:
        if (ap->waiters != NULL)
            auth_timer_arm(ap, AUTH_POLL_MS);
        return;
    }
}

static void auth_timer_arm(struct auth_provider *ap, int ms)
{
    struct timeval tv = util_ms_to_tv(ms);

    UTIL_MUST(evtimer_add(ap->timer, &tv), "OAuth timer");
}

/* ---- cluster mode ---- */

void auth_cluster_frame(struct worker *w, unsigned op, uint32_t provider,
                        const uint8_t *payload, size_t len)
{
    struct auth_provider *ap;

    if (w->auth == NULL || provider >= (uint32_t)w->cfg->provider_count ||
        !w->auth[provider].oauth)
        return;
    ap = &w->auth[provider];
    if (op == FRAME_OAUTH_TOKENS) {
        struct oauth_tokens t;
        char err[OAUTH_ERR_MAX];

        /* Newer tokens of another instance's refresh: to the file, where
         * every process here finds them. */
        memset(&t, 0, sizeof(t));
        if (oauth_tokens_parse((const char *)payload, len, &t, err,
                               sizeof(err)) < 0) {
            log_msg(&w->log, LOG_WARN, NULL, "provider %s: tokens from the "
                    "cluster not usable: %s", auth_cfg(ap)->name, err);
            return;
        }
        auth_save(ap, &t, false);
        return;
    }
    if (ap->phase == AUTH_CLUSTER && !ap->cluster_ok) {
        if (op == FRAME_OAUTH_BUSY) {
            ap->cluster_busy = true;   /* the timer watches the file */
            return;
        }
        ap->cluster_ok = true;
        ap->cluster_granted = op == FRAME_OAUTH_GRANTED;
        auth_refresh_locked(ap);
        return;
    }
    /* The answer to an ask answered already or given up (the tokens came
     * meanwhile). A lock granted for it is this instance's: kept for the
     * refresh under way, else given back at once. */
    if (op != FRAME_OAUTH_GRANTED)
        return;
    if (ap->phase == AUTH_REFRESHING || ap->phase == AUTH_USERINFO ||
        ap->phase == AUTH_SAVING)
        ap->cluster_granted = true;
    else
        outq_send_control(w, FRAME_OAUTH, FRAME_OAUTH_RELEASE, provider);
}

/* ---- what the adapter asks ---- */

int auth_prepare(struct call *c, int (*restart)(struct call *c))
{
    struct worker *w = c->w;
    const char *name = w->cfg->providers[w->cfg->targets[c->target].provider]
                           .name;
    struct auth_provider *ap = &w->auth[w->cfg->targets[c->target].provider];
    char msg[AUTH_REASON_MAX];

    ap->restart = restart;
    if (ap->phase == AUTH_IDLE) {
        auth_load(ap, false);
        if (ap->dead)
            goto fail;
    }
    if (ap->loaded && !ap->dead && !ap->stale && !auth_expiring(ap, 0)) {
        /* Usable. Close to expiry, it is refreshed in the background
         * while calls go on with it. */
        if (ap->phase == AUTH_IDLE &&
            auth_expiring(ap, OAUTH_REFRESH_MARGIN_MS) &&
            util_now_ms() >= ap->next_refresh_ms &&
            util_now_ms() >= ap->next_ahead_ms && auth_refreshable(ap))
            auth_refresh_begin(ap);
        goto ready;
    }
    if (ap->phase != AUTH_IDLE) {
        auth_park(ap, c);           /* the refresh under way serves it */
        return 0;
    }
    if (util_now_ms() < ap->next_refresh_ms || !auth_refreshable(ap)) {
        if (!auth_refreshable(ap))
            auth_set_reason(ap, LOG_ERROR, "provider %s: %s" AUTH_LOGIN_HINT,
                            ap->stale ? "its tokens were refused and cannot "
                            "be refreshed" : "its tokens expired and cannot "
                            "be refreshed");
        goto fail;
    }
    auth_park(ap, c);
    auth_refresh_begin(ap);
    return 0;
ready:
    c->auth_gen = ap->gen;
    return 1;
fail:
    /* The client learns what to do, not our paths (they are logged). */
    snprintf(msg, sizeof(msg), "the OAuth credentials of provider %s are "
             "not usable (expired, refused or unreadable); the operator "
             "must run `pipelinectl login %s`", name, name);
    /* Not the upstream's fault: its breaker stays as it is, and the call
     * may still fail over to another target. */
    call_attempt_failed(c, 502, "upstream_auth_failed", msg, true, false);
    return -1;
}

int auth_probe_credentials(struct worker *w, int provider,
                           const char **bearer, const char **chat_url,
                           uint32_t *gen)
{
    struct auth_provider *ap;
    int64_t now = util_now_ms();

    if (w->auth == NULL || !w->auth[provider].oauth)
        return -1;
    ap = &w->auth[provider];
    if (ap->phase == AUTH_IDLE) {
        auth_load(ap, false);
        if (ap->dead)
            return -1;
    }
    if (ap->loaded && !ap->dead && !ap->stale && !auth_expiring(ap, 0)) {
        /* As for a call: close to expiry, refreshed in the background. */
        if (ap->phase == AUTH_IDLE &&
            auth_expiring(ap, OAUTH_REFRESH_MARGIN_MS) &&
            now >= ap->next_refresh_ms && now >= ap->next_ahead_ms &&
            auth_refreshable(ap))
            auth_refresh_begin(ap);
        *bearer = ap->bearer;
        *chat_url = ap->chat_url;
        *gen = ap->gen;
        return 1;
    }
    if (ap->phase != AUTH_IDLE)
        return 0;                   /* a refresh is under way */
    if (now < ap->next_refresh_ms || !auth_refreshable(ap))
        return -1;
    auth_refresh_begin(ap);
    return 0;
}

void auth_probe_refused(struct worker *w, int provider, uint32_t gen)
{
    struct auth_provider *ap;

    if (w->auth == NULL || !w->auth[provider].oauth)
        return;
    ap = &w->auth[provider];
    if (gen != ap->gen)
        return;            /* newer tokens were read since */
    /* As auth_rejected: tokens a refusal's refresh brought, refused
     * before they were ever taken, are not refreshed again for a while. */
    if (ap->from_refusal && !ap->proven)
        ap->refusal_quiet_ms = util_now_ms() + AUTH_FRESH_MS;
    if (util_now_ms() < ap->refusal_quiet_ms)
        return;
    ap->stale = true;      /* the next probe or call refreshes them */
}

const char *auth_secret(const struct call *c)
{
    return c->w->auth[c->w->cfg->targets[c->target].provider].bearer;
}

const char *auth_chat_url(const struct call *c)
{
    return c->w->auth[c->w->cfg->targets[c->target].provider].chat_url;
}

bool auth_rejected(struct call *c)
{
    struct auth_provider *ap =
        &c->w->auth[c->w->cfg->targets[c->target].provider];

    if (c->auth_gen != ap->gen)
        return true;       /* newer tokens were read since: try those */
    /* Tokens from a refresh made because the API refused the previous
     * ones, refused in turn before it took them even once: refreshing did
     * not help (the 401/403 is about something else). For a while no
     * refusal refreshes again, or every such call would hammer the
     * authorization server. */
    if (ap->from_refusal && !ap->proven)
        ap->refusal_quiet_ms = util_now_ms() + AUTH_FRESH_MS;
    if (util_now_ms() < ap->refusal_quiet_ms)
        return false;
    ap->stale = true;
    return true;
}

void auth_accepted(const struct call *c)
{
    struct auth_provider *ap =
        &c->w->auth[c->w->cfg->targets[c->target].provider];

    if (c->auth_gen == ap->gen)
        ap->proven = true;
}

/* ---- life ---- */

int auth_init(struct worker *w)
{
    const struct cfg *cfg = w->cfg;

    w->auth = calloc((size_t)cfg->provider_count, sizeof(*w->auth));
    if (w->auth == NULL)
        return -1;
    for (int p = 0; p < cfg->provider_count; p++) {
        struct auth_provider *ap = &w->auth[p];

        ap->w = w;
        ap->provider = p;
        ap->lock_fd = -1;
        ap->kind = provkind_of(cfg->providers[p].type);
        ap->xfer.done = auth_xfer_done;
        ap->oauth = cfg->providers[p].auth == CFG_AUTH_OAUTH &&
                    ap->kind->oauth != NULL;
        if (!ap->oauth)
            continue;
        ap->timer = evtimer_new(w->base, auth_timer_cb, ap);
        ap->offload = offload_new(w->base);
        if (ap->timer == NULL || ap->offload == NULL)
            return -1;
    }
    return 0;
}

void auth_free(struct worker *w)
{
    if (w->auth == NULL)
        return;
    for (int p = 0; p < w->cfg->provider_count; p++) {
        struct auth_provider *ap = &w->auth[p];

        /* Saves under way finish (the tokens reach the disk) first. */
        ap->closing = true;
        offload_free(ap->offload);
        auth_call_clear(ap);
        auth_unlock(ap);
        oauth_tokens_free(&ap->tok);
        oauth_tokens_free(&ap->fresh);
        auth_free_str(&ap->bearer);
        free(ap->chat_url);
        if (ap->timer != NULL)
            event_free(ap->timer);
    }
    free(w->auth);
    w->auth = NULL;
}
