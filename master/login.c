/* login.c - the device login behind `pipelinectl -c CONFIG login NAME`:
 * checks that the provider can log in this way (auth "oauth" and a kind
 * whose descriptor, provkind.h, has a device login: "qwen"), asks the authorization server for a device code with a PKCE
 * S256 challenge, shows the user where to confirm it, polls the token
 * endpoint at the pace the server sets, and saves the tokens atomically
 * with mode 0600 (as the configuration's `user` when run as root). One
 * blocking libcurl handle; the waits between polls are the ones RFC 8628
 * requires, nothing else sleeps. */
#include "login.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "oauth.h"
#include "provkind.h"
#include "util.h"

#define LOGIN_CONNECT_TIMEOUT_MS 10000L
#define LOGIN_REQUEST_TIMEOUT_MS 30000L
#define LOGIN_MIN_POLL_MS      200       /* a server interval of 0 */
#define LOGIN_POLL_TRIES       3         /* network errors in a row */
#define LOGIN_LOCK_WAIT_MS     30000     /* for a refresh in flight */
#define LOGIN_SLOW_DOWN_NUM    3         /* slow_down: interval x 3/2 */
#define LOGIN_SLOW_DOWN_DEN    2
#define LOGIN_MS_PER_S         1000LL
#define LOGIN_NS_PER_MS        1000000LL
#define LOGIN_USER_AGENT       "rcc-pipeline-login"

/* One answer's body, bounded: answers are small JSON objects. */
struct login_body {
    char data[OAUTH_FILE_MAX + 1];
    size_t len;
    bool overflow;
};

/* One login's state; on the heap, as the body buffer is 64 KiB. */
struct login {
    const struct cfg_provider *provider;
    CURL *curl;
    struct curl_slist *headers;
    char device_url[OAUTH_URL_MAX];
    char token_url[OAUTH_URL_MAX];
    char verifier[OAUTH_VERIFIER_LEN + 1];
    char challenge[OAUTH_CHALLENGE_LEN + 1];
    char curl_err[CURL_ERROR_SIZE];
    struct oauth_device device;
    struct login_body body;
    long status;
};

static size_t login_write_cb(char *data, size_t size, size_t n, void *arg)
{
    struct login_body *b = arg;
    size_t len = size * n;

    if (len > sizeof(b->data) - 1 - b->len) {
        b->overflow = true;
        return 0;                   /* curl stops with CURLE_WRITE_ERROR */
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* The answer holds tokens and codes: wipe it once read. */
static void login_body_clear(struct login_body *b)
{
    explicit_bzero(b->data, b->len);
    b->len = 0;
    b->overflow = false;
}

/* POSTs form to url. 0 with l->status and l->body, or -1 when no HTTP
 * answer came (the reason in l->curl_err). An answer too large for the
 * buffer is an answer: status 0, the body empty. */
static int login_post(struct login *l, const char *url, const char *form)
{
    CURLcode rc;

    login_body_clear(&l->body);
    l->status = 0;
    l->curl_err[0] = '\0';
    curl_easy_setopt(l->curl, CURLOPT_URL, url);
    curl_easy_setopt(l->curl, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(l->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
    rc = curl_easy_perform(l->curl);
    if (rc == CURLE_WRITE_ERROR && l->body.overflow) {
        login_body_clear(&l->body);
        return 0;
    }
    if (rc != CURLE_OK) {
        if (l->curl_err[0] == '\0')
            util_strlcpy(l->curl_err, curl_easy_strerror(rc),
                         sizeof(l->curl_err));
        return -1;
    }
    curl_easy_getinfo(l->curl, CURLINFO_RESPONSE_CODE, &l->status);
    return 0;
}

static int login_curl_init(struct login *l)
{
    l->curl = curl_easy_init();
    if (l->curl == NULL)
        return -1;
    l->headers = curl_slist_append(NULL, "Content-Type: "
                                   "application/x-www-form-urlencoded");
    if (l->headers != NULL) {
        struct curl_slist *h = curl_slist_append(l->headers,
                                                 "Accept: application/json");

        if (h == NULL) {
            curl_slist_free_all(l->headers);
            l->headers = NULL;
        } else {
            l->headers = h;
        }
    }
    if (l->headers == NULL)
        return -1;
    curl_easy_setopt(l->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(l->curl, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(l->curl, CURLOPT_WRITEFUNCTION, login_write_cb);
    curl_easy_setopt(l->curl, CURLOPT_WRITEDATA, &l->body);
    curl_easy_setopt(l->curl, CURLOPT_ERRORBUFFER, l->curl_err);
    curl_easy_setopt(l->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(l->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     LOGIN_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(l->curl, CURLOPT_TIMEOUT_MS, LOGIN_REQUEST_TIMEOUT_MS);
    curl_easy_setopt(l->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(l->curl, CURLOPT_USERAGENT, LOGIN_USER_AGENT);
    return 0;
}

/* The monotonic clock in milliseconds rounded up, so a wait that ends
 * interval ms after it lasts at least the interval. */
static int64_t login_now_ms_up(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * LOGIN_MS_PER_S +
           (ts.tv_nsec + LOGIN_NS_PER_MS - 1) / LOGIN_NS_PER_MS;
}

/* Blocks until the monotonic clock reads at_ms: the wait between polls
 * that RFC 8628 asks of a client (a foreground command, no event loop). */
static void login_sleep_until(int64_t at_ms)
{
    struct timespec ts = {
        .tv_sec = (time_t)(at_ms / LOGIN_MS_PER_S),
        .tv_nsec = (long)(at_ms % LOGIN_MS_PER_S * LOGIN_NS_PER_MS),
    };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

/* The name of a kind with a device login (for the message). */
static const char *login_device_kind(void)
{
    for (const char *const *n = provkind_names(); *n != NULL; n++) {
        const struct provkind *k = provkind_by_name(*n);

        if (k->oauth != NULL && k->oauth->device_path != NULL)
            return k->name;
    }
    return "?";
}

/* The provider named name, when it can log in here; NULL after saying
 * why on stderr. */
static const struct cfg_provider *login_provider(const struct cfg *cfg,
                                                 const char *name)
{
    const struct cfg_provider *p = NULL;
    const struct provkind *k;

    for (int i = 0; i < cfg->provider_count; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            p = &cfg->providers[i];
    if (p == NULL) {
        fprintf(stderr, "pipelinectl: %s has no provider named \"%s\"\n",
                cfg->path, name);
        return NULL;
    }
    k = provkind_of(p->type);
    if (k->oauth != NULL && k->oauth->login_elsewhere != NULL) {
        if (p->auth == CFG_AUTH_OAUTH)
            fprintf(stderr, "pipelinectl: provider \"%s\" is %s: %s; "
                    "pipelined reuses the files it writes (%s, %s)\n", name,
                    k->label, k->oauth->login_elsewhere, p->token_file,
                    p->settings_file);
        else
            fprintf(stderr, "pipelinectl: provider \"%s\" is %s with an "
                    "API key: nothing to log in\n", name, k->label);
        return NULL;
    }
    if (p->auth != CFG_AUTH_OAUTH) {
        fprintf(stderr, "pipelinectl: provider \"%s\" (type \"%s\") does "
                "not use OAuth: nothing to log in (login needs auth = "
                "\"oauth\")\n", name, cfg_provider_type_name(p->type));
        return NULL;
    }
    if (k->oauth == NULL || k->oauth->device_path == NULL) {
        fprintf(stderr, "pipelinectl: provider \"%s\": login supports type "
                "\"%s\" only\n", name, login_device_kind());
        return NULL;
    }
    return p;
}

/* Asks for a device code and shows it. A login_exit. */
static int login_device(struct login *l)
{
    char err[OAUTH_ERR_MAX];
    char *form;
    int rc;

    form = oauth_form_device_code(l->provider->client_id,
                                  provkind_of(l->provider->type)->oauth->scope,
                                  l->challenge);
    if (form == NULL) {
        fprintf(stderr, "pipelinectl: out of memory\n");
        return LOGIN_EXIT_FAILED;
    }
    rc = login_post(l, l->device_url, form);
    oauth_secret_free(&form);
    if (rc < 0) {
        fprintf(stderr, "pipelinectl: cannot reach the authorization server "
                "at %s: %s (check oauth_base_url)\n", l->device_url,
                l->curl_err);
        return LOGIN_EXIT_UNREACHABLE;
    }
    rc = oauth_parse_device(l->status, l->body.data, l->body.len, &l->device,
                            err, sizeof(err));
    login_body_clear(&l->body);
    if (rc < 0) {
        fprintf(stderr, "pipelinectl: the device authorization request to %s "
                "failed: %s\n", l->device_url, err);
        return LOGIN_EXIT_FAILED;
    }
    printf("To log in provider \"%s\", open this URL in a browser:\n\n"
           "    %s\n\n"
           "and confirm the code %s there.\n"
           "Waiting for the confirmation (the code is valid for %d s)...\n",
           l->provider->name,
           l->device.verification_uri_complete != NULL
               ? l->device.verification_uri_complete
               : l->device.verification_uri,
           l->device.user_code, l->device.expires_in_s);
    fflush(stdout);
    return LOGIN_EXIT_OK;
}

/* The interval after a slow_down: 1.5 times longer, up to the cap
 * (never shorter than it was). */
static int64_t login_slow_down(int64_t interval_ms)
{
    int64_t next = interval_ms * LOGIN_SLOW_DOWN_NUM / LOGIN_SLOW_DOWN_DEN;

    if (next > OAUTH_MAX_INTERVAL_MS)
        next = OAUTH_MAX_INTERVAL_MS;
    return next > interval_ms ? next : interval_ms;
}

static int login_save(struct login *l, const struct oauth_tokens *t)
{
    char err[OAUTH_ERR_MAX];
    int lock, rc = LOGIN_EXIT_OK;

    /* Under the daemon's refresh lock: a refresh in flight must not write
     * its (older) tokens over ours after we saved. No file yet (a first
     * login): nobody refreshes it either. */
    lock = oauth_lock_open(l->provider->token_file, err, sizeof(err));
    if (lock < 0 && errno != ENOENT)
        fprintf(stderr, "pipelinectl: warning: %s; saving without it\n",
                err);
    if (lock >= 0 && oauth_lock_wait(lock, LOGIN_LOCK_WAIT_MS) < 0)
        fprintf(stderr, "pipelinectl: warning: the token file's lock is "
                "still held after %d s; saving anyway\n",
                (int)(LOGIN_LOCK_WAIT_MS / LOGIN_MS_PER_S));
    if (oauth_tokens_save(l->provider->token_file, t, err, sizeof(err)) < 0) {
        fprintf(stderr, "pipelinectl: logged in, but the token file cannot "
                "be written: %s\n", err);
        rc = LOGIN_EXIT_FAILED;
    } else {
        printf("logged in: tokens written to %s\n", l->provider->token_file);
    }
    if (lock >= 0)
        close(lock);            /* drops the lock */
    return rc;
}

/* Polls the token endpoint until the user confirms, refuses, or the code
 * expires. A login_exit. */
static int login_poll(struct login *l)
{
    int64_t interval_ms = (int64_t)l->device.interval_s * LOGIN_MS_PER_S;
    int64_t deadline = util_now_ms() +
                       (int64_t)l->device.expires_in_s * LOGIN_MS_PER_S;
    int64_t next = login_now_ms_up();
    char err[OAUTH_ERR_MAX];
    int net_errors = 0, exit_code = LOGIN_EXIT_FAILED;
    char *form;

    if (interval_ms < LOGIN_MIN_POLL_MS)
        interval_ms = LOGIN_MIN_POLL_MS;
    form = oauth_form_device_poll(l->provider->client_id,
                                  l->device.device_code, l->verifier);
    if (form == NULL) {
        fprintf(stderr, "pipelinectl: out of memory\n");
        return LOGIN_EXIT_FAILED;
    }
    for (;;) {
        struct oauth_tokens tokens;
        enum oauth_result r;

        next += interval_ms;
        if (next >= deadline) {
            login_sleep_until(deadline);
            fprintf(stderr, "pipelinectl: login failed: the code expired "
                    "after %d s without a confirmation; run the login "
                    "again\n", l->device.expires_in_s);
            goto out;
        }
        login_sleep_until(next);
        if (login_post(l, l->token_url, form) < 0) {
            if (++net_errors >= LOGIN_POLL_TRIES) {
                fprintf(stderr, "pipelinectl: cannot reach the authorization "
                        "server at %s: %s\n", l->token_url, l->curl_err);
                exit_code = LOGIN_EXIT_UNREACHABLE;
                goto out;
            }
            next = login_now_ms_up();
            continue;
        }
        net_errors = 0;
        /* The next wait starts when this answer came. */
        next = login_now_ms_up();
        r = oauth_parse_poll(l->status, l->body.data, l->body.len,
                             util_wall_ms(), &tokens, err, sizeof(err));
        login_body_clear(&l->body);
        switch (r) {
        case OAUTH_PENDING:
            continue;
        case OAUTH_SLOW_DOWN:
            interval_ms = login_slow_down(interval_ms);
            continue;
        case OAUTH_OK:
            exit_code = login_save(l, &tokens);
            oauth_tokens_free(&tokens);
            goto out;
        case OAUTH_EXPIRED:
            fprintf(stderr, "pipelinectl: login failed: the device code "
                    "expired before it was confirmed (%s); run the login "
                    "again\n", err);
            break;
        case OAUTH_DENIED:
            fprintf(stderr, "pipelinectl: login failed: the authorization "
                    "was denied (%s)\n", err);
            break;
        case OAUTH_REVOKED:
        case OAUTH_FAILED:
            fprintf(stderr, "pipelinectl: login failed: %s answered %s\n",
                    l->token_url, err);
            break;
        }
        goto out;
    }
out:
    oauth_secret_free(&form);
    return exit_code;
}

/* Fills l for provider p: endpoints and a fresh PKCE pair. */
static int login_prepare(struct login *l, const struct cfg_provider *p)
{
    const struct provkind_oauth *o = provkind_of(p->type)->oauth;

    l->provider = p;
    if (provkind_url(p->oauth_base_url, o->device_path, l->device_url,
                     sizeof(l->device_url)) < 0 ||
        provkind_url(p->oauth_base_url, o->token_path, l->token_url,
                     sizeof(l->token_url)) < 0) {
        fprintf(stderr, "pipelinectl: provider \"%s\": oauth_base_url is "
                "too long\n", p->name);
        return -1;
    }
    if (oauth_pkce_verifier(l->verifier) < 0 ||
        oauth_pkce_challenge(l->verifier, l->challenge) < 0) {
        fprintf(stderr, "pipelinectl: cannot make a PKCE verifier (no "
                "randomness?)\n");
        return -1;
    }
    if (login_curl_init(l) < 0) {
        fprintf(stderr, "pipelinectl: cannot set up libcurl\n");
        return -1;
    }
    return 0;
}

/* Run as root for a configuration with `user`: the login becomes that
 * user, as the daemon's workers do, so the token file (and its lock) are
 * theirs to read and rewrite. 0, or -1 with a message. */
static int login_become_user(const struct cfg *cfg)
{
    char err[CFG_ERR_MAX];

    if (cfg->user == NULL || geteuid() != 0)
        return 0;
    if (privs_become(&cfg->run_as, err, sizeof(err)) < 0) {
        fprintf(stderr, "pipelinectl: user \"%s\": %s\n", cfg->user, err);
        return -1;
    }
    return 0;
}

int login_run(const char *config_path, const char *provider)
{
    char cfg_err[CFG_ERR_MAX];
    const struct cfg_provider *p;
    struct cfg *cfg;
    struct login *l = NULL;
    int exit_code = LOGIN_EXIT_FAILED;

    cfg = cfg_load(config_path, cfg_err, sizeof(cfg_err), NULL);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", cfg_err);
        return LOGIN_EXIT_FAILED;
    }
    p = login_provider(cfg, provider);
    if (p == NULL || login_become_user(cfg) < 0)
        goto out_cfg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "pipelinectl: cannot initialize libcurl\n");
        goto out_cfg;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        fprintf(stderr, "pipelinectl: out of memory\n");
        goto out_curl;
    }
    if (login_prepare(l, p) < 0)
        goto out_login;
    exit_code = login_device(l);
    if (exit_code == LOGIN_EXIT_OK)
        exit_code = login_poll(l);
out_login:
    oauth_device_free(&l->device);
    if (l->curl != NULL)
        curl_easy_cleanup(l->curl);
    curl_slist_free_all(l->headers);
    explicit_bzero(l, sizeof(*l));
    free(l);
out_curl:
    curl_global_cleanup();
out_cfg:
    cfg_free(&cfg);
    return exit_code;
}
