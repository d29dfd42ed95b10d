/* auth_state.c - one OAuth provider's tokens in a worker: read from its
 * token file when the file changes, checked and adopted (the Bearer key
 * and chat URL they give, by the kind's descriptor), why they are
 * unusable, the refresh lock beside the file and the mark of a refresh
 * token the server refused. See auth_state.h. */
#include "auth_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

const struct cfg_provider *auth_cfg(const struct auth_provider *ap)
{
    return &ap->w->cfg->providers[ap->provider];
}

const struct provkind_oauth *auth_kind(const struct auth_provider *ap)
{
    return ap->kind->oauth;
}

void auth_free_str(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}


/* Logs msg unless it is the one last kept in last (once per distinct
 * message, not once per call), and keeps it there. */
void auth_log_once(struct auth_provider *ap, enum log_level level,
                   char last[AUTH_REASON_MAX], const char *msg)
{
    if (strcmp(msg, last) != 0)
        log_msg(&ap->w->log, level, NULL, "%s", msg);
    snprintf(last, AUTH_REASON_MAX, "%s", msg);
}

void auth_warn_once(struct auth_provider *ap, const char *fmt,
                    const char *detail)
{
    char buf[AUTH_REASON_MAX];
    /* The name is shorter than CFG_NAME_MAX, well inside buf. */
    int n = snprintf(buf, sizeof(buf), "provider %s: ", auth_cfg(ap)->name);

    snprintf(buf + n, sizeof(buf) - (size_t)n, fmt, detail);
    auth_log_once(ap, LOG_WARN, ap->last_warn, buf);
}

/* ---- the lock ---- */

/* 1 when this process now holds the refresh lock, 0 when another one
 * does, -1 when there is no lock to take (then we refresh alone). */
int auth_lock(struct auth_provider *ap)
{
    if (ap->lock_fd < 0) {
        char err[OAUTH_ERR_MAX];

        ap->lock_fd = oauth_lock_open(auth_cfg(ap)->token_file, err,
                                      sizeof(err));
        if (ap->lock_fd < 0) {
            auth_warn_once(ap, "%s; refreshing without a lock", err);
            return -1;
        }
    }
    if (flock(ap->lock_fd, LOCK_EX | LOCK_NB) == 0)
        return 1;
    if (errno == EWOULDBLOCK)
        return 0;
    return -1;
}

/* Closing drops the flock. */
void auth_unlock(struct auth_provider *ap)
{
    if (ap->lock_fd >= 0) {
        close(ap->lock_fd);
        ap->lock_fd = -1;
    }
}

/* The lock file also remembers which version of the token file the
 * authorization server refused, so that every other process sees it is
 * dead without asking again. Both need the lock held. */
int auth_dead_mark(const struct auth_provider *ap, char *buf,
                   size_t cap)
{
    return snprintf(buf, cap, "dead %ju %ju %jd %jd\n",
                    (uintmax_t)ap->id.dev, (uintmax_t)ap->id.ino,
                    (intmax_t)ap->id.mtime_ns, (intmax_t)ap->id.size);
}

void auth_note_dead(struct auth_provider *ap, bool dead)
{
    char buf[AUTH_MARK_MAX];
    int n = auth_dead_mark(ap, buf, sizeof(buf));

    if (ap->lock_fd < 0 || ftruncate(ap->lock_fd, 0) < 0 || !dead)
        return;
    if (pwrite(ap->lock_fd, buf, (size_t)n, 0) != n)
        log_msg(&ap->w->log, LOG_DEBUG, NULL, "provider %s: lock file "
                "not written", auth_cfg(ap)->name);
}

bool auth_known_dead(const struct auth_provider *ap)
{
    char want[AUTH_MARK_MAX], have[AUTH_MARK_MAX];
    int n = auth_dead_mark(ap, want, sizeof(want));
    ssize_t got;

    if (ap->lock_fd < 0)
        return false;
    got = pread(ap->lock_fd, have, sizeof(have) - 1, 0);
    return got == n && memcmp(have, want, (size_t)n) == 0;
}

/* ---- the tokens ---- */

void auth_set_reason(struct auth_provider *ap, enum log_level level,
                     const char *fmt, const char *detail)
{
    char buf[AUTH_REASON_MAX];

    snprintf(buf, sizeof(buf), fmt, auth_cfg(ap)->name, detail,
             ap->w->cfg->path, auth_cfg(ap)->name);
    auth_log_once(ap, level, ap->reason, buf);
}

void auth_mark_dead(struct auth_provider *ap, const char *why)
{
    ap->dead = true;
    auth_set_reason(ap, LOG_ERROR, "provider %s: %s" AUTH_LOGIN_HINT, why);
}

/* The API base for tokens t: a base_url written in the config wins;
 * else, as the kind says, the settings file's baseUrl or the default
 * (iFlow), or the tokens' resource_url or the API-key base when they
 * have none (Qwen). *settings_key gets the settings file's apiKey
 * (malloc'd, the caller frees). 0 or -1. */
int auth_base_url(struct auth_provider *ap,
                  const struct oauth_tokens *t, char *out, size_t cap,
                  char **settings_key)
{
    const struct cfg_provider *p = auth_cfg(ap);
    char *base = NULL, err[OAUTH_ERR_MAX];
    int rc = 0;

    bool from_settings = auth_kind(ap)->base_from_settings;

    *settings_key = NULL;
    if (p->settings_file != NULL &&
        oauth_iflow_settings_load(p->settings_file, settings_key, &base,
                                  err, sizeof(err)) < 0 && errno != ENOENT)
        log_msg(&ap->w->log, LOG_DEBUG, NULL, "provider %s: %s", p->name,
                err);
    if (p->base_url_set || (from_settings && base == NULL))
        rc = util_strlcpy(out, p->base_url, cap);
    else if (from_settings)
        rc = util_strlcpy(out, base, cap);
    else if (t->resource_url != NULL)
        rc = oauth_api_base(t->resource_url, out, cap);
    else
        rc = util_strlcpy(out, ap->kind->base_url_api_key, cap);
    free(base);
    /* Trailing slashes would double up before the path. */
    for (size_t n = strlen(out); rc == 0 && n > 0 && out[n - 1] == '/'; n--)
        out[n - 1] = '\0';
    return rc;
}

/* Takes t (moved: *t is left empty) as the provider's tokens, read from
 * the file version id. */
void auth_adopt(struct auth_provider *ap, struct oauth_tokens *t,
                const struct oauth_file_id *id)
{
    char base[OAUTH_URL_MAX], *key = NULL, *signing = NULL, *url = NULL;
    const char *bearer;

    if (auth_base_url(ap, t, base, sizeof(base), &key) < 0) {
        auth_mark_dead(ap, "the API base URL of its tokens is not usable");
        goto out;
    }
    if (auth_kind(ap)->userinfo_path != NULL && t->api_key == NULL &&
        key != NULL) {
        t->api_key = key;
        key = NULL;
    }
    bearer = auth_kind(ap)->userinfo_path == NULL ? t->access_token
                                                   : t->api_key;
    if (bearer == NULL) {
        /* Tokens without their API key: fetching one is a refresh. */
        bearer = t->access_token;
        ap->stale = true;
    } else {
        ap->stale = false;
    }
    if ((signing = strdup(bearer)) == NULL ||
        asprintf(&url, "%s%s", base, ap->kind->chat_path) < 0) {
        url = NULL;
        auth_mark_dead(ap, "out of memory");
        goto out;
    }
    oauth_tokens_free(&ap->tok);
    ap->tok = *t;
    memset(t, 0, sizeof(*t));
    ap->id = *id;
    ap->loaded = true;
    ap->dead = false;
    ap->reason[0] = '\0';
    ap->last_warn[0] = '\0';
    ap->proven = false;
    ap->from_refusal = false;
    ap->gen++;
    auth_free_str(&ap->bearer);
    free(ap->chat_url);
    ap->bearer = signing;
    ap->chat_url = url;
    signing = NULL;
    url = NULL;
out:
    auth_free_str(&key);
    auth_free_str(&signing);
    free(url);
    oauth_tokens_free(t);
}

/* Reads the token file when it changed since we last read it (looked at
 * once per AUTH_STAT_INTERVAL_MS unless force). */
void auth_load(struct auth_provider *ap, bool force)
{
    const struct cfg_provider *p = auth_cfg(ap);
    struct oauth_tokens t;
    struct oauth_file_id id;
    char err[OAUTH_ERR_MAX];
    int64_t now = util_now_ms();

    if (!force && (ap->loaded || ap->dead) && now < ap->next_stat_ms)
        return;
    ap->next_stat_ms = now + AUTH_STAT_INTERVAL_MS;
    /* The version read before, or the one we could not use. */
    if ((ap->loaded || ap->dead) && oauth_file_stat(p->token_file, &id) == 0 &&
        oauth_file_same(&id, &ap->id))
        return;
    memset(&t, 0, sizeof(t));
    if (oauth_tokens_load(p->token_file, &t, &id, err, sizeof(err)) < 0) {
        if (ap->loaded) {
            /* Keep what we have: the file may be in the middle of being
             * rewritten by a tool that does not rename. */
            auth_warn_once(ap, "%s; keeping the tokens read before", err);
            return;
        }
        if (oauth_file_stat(p->token_file, &ap->id) < 0)
            memset(&ap->id, 0, sizeof(ap->id));
        auth_mark_dead(ap, err);
        return;
    }
    auth_adopt(ap, &t, &id);
}

bool auth_expiring(const struct auth_provider *ap, int64_t margin_ms)
{
    return ap->tok.expiry_ms != 0 &&
           util_wall_ms() + margin_ms >= ap->tok.expiry_ms;
}

/* Can these tokens be refreshed at all? */
bool auth_refreshable(const struct auth_provider *ap)
{
    const struct cfg_provider *p = auth_cfg(ap);

    if (ap->tok.refresh_token == NULL || p->client_id == NULL)
        return false;
    return !auth_kind(ap)->refresh_needs_secret || p->client_secret != NULL;
}
