/* auth_state.h - what worker/auth.c (parking calls, the refresh, the
 * adapter's questions) and worker/auth_state.c (one OAuth provider's
 * tokens: read from the token file, checked, adopted; why they are
 * unusable; the refresh lock and the dead-token mark) share: the state
 * of one OAuth provider in a worker. auth_state.c calls nothing of
 * auth.c. Every char * here is owned by the struct; secrets are wiped
 * (auth_free_str). */
#ifndef RCC_AUTH_STATE_H
#define RCC_AUTH_STATE_H

#include "worker_int.h"

#include "oauth.h"
#include "provkind.h"

struct offload;

#define AUTH_STAT_INTERVAL_MS   1000   /* look at the token file this often */
#define AUTH_POLL_MS            50     /* parked calls: deadline checks, and
                                          the lock held by another process */
#define AUTH_REFRESH_TIMEOUT_MS 15000  /* one authorization server call */
#define AUTH_WAIT_MAX_MS        (2 * AUTH_REFRESH_TIMEOUT_MS)
#define AUTH_RETRY_MS           2000   /* no new refresh after a failed one */
#define AUTH_FRESH_MS           10000  /* after a refresh that did not cure a
                                          refusal, refusals refresh nothing
                                          for this long */
#define AUTH_REASON_MAX         512
#define AUTH_ANSWER_MAX         (64 * 1024)
#define AUTH_MARK_MAX           128
#define AUTH_CLUSTER_ASK_MS     500    /* cluster mode: asks the master for
                                          the cluster's lock this often
                                          while another instance has it */
#define AUTH_CLUSTER_ANSWER_MS  5000   /* an ask unanswered this long is
                                          sent again */

enum auth_phase {
    AUTH_IDLE,
    AUTH_REFRESHING,        /* our refresh call is in flight */
    AUTH_USERINFO,          /* iFlow: fetching the API key of new tokens */
    AUTH_WAITING,           /* another process holds the lock */
    AUTH_SAVING,            /* the new tokens are being saved (offload) */
    AUTH_CLUSTER            /* cluster mode, the flock held: the master
                               was asked for the cluster's lock */
};

struct auth_provider {
    struct worker *w;
    int provider;
    const struct provkind *kind;
    int (*restart)(struct call *c); /* starts a parked call's attempt */
    struct upstream_xfer xfer;  /* the refresh call's CURLINFO_PRIVATE */
    bool oauth;
    struct oauth_tokens tok;
    struct oauth_file_id id;
    bool loaded;
    uint32_t gen;              /* bumped whenever the tokens change */
    char *bearer;              /* the key requests are signed with; secret */
    char *chat_url;
    int64_t next_stat_ms;      /* monotonic */
    int64_t next_refresh_ms;   /* monotonic; after a failed refresh */
    int64_t next_ahead_ms;     /* monotonic; no refresh ahead of expiry
                                  before this (after a good one) */
    bool stale;                /* the API refused the current tokens */
    bool dead;                 /* unusable until the file changes */
    char reason[AUTH_REASON_MAX];
    char last_warn[AUTH_REASON_MAX];
    bool proven;               /* the API has taken these tokens */
    bool for_refusal;          /* the refresh under way is for a refusal */
    bool from_refusal;         /* the tokens came from such a refresh */
    int64_t refusal_quiet_ms;  /* monotonic: refusals refresh nothing
                                  before this */
    enum auth_phase phase;
    int64_t phase_start_ms;
    int lock_fd;
    /* cluster mode (FRAME_OAUTH) */
    bool cluster_ok;           /* the master said GRANTED or ALONE */
    bool cluster_granted;      /* GRANTED: RELEASE it when settled */
    bool cluster_busy;         /* the last ask was answered BUSY */
    int64_t cluster_asked_ms;  /* monotonic: the last ask */
    /* the refresh call in flight */
    CURL *easy;
    struct curl_slist *hdrs;
    char *form;                /* secret */
    char *url;                 /* secret (iFlow puts the token in it) */
    struct evbuffer *resp;
    bool resp_too_large;
    struct oauth_tokens fresh; /* iFlow: new tokens awaiting their key */
    struct offload *offload;   /* token saves, off the event loop */
    bool closing;              /* auth_free: saves that end do no more */
    struct event *timer;
    struct call *waiters;      /* parked, linked by auth_next */
};

#define AUTH_LOGIN_HINT "; run `pipelinectl -c %s login %s`"

const struct cfg_provider *auth_cfg(const struct auth_provider *ap);
const struct provkind_oauth *auth_kind(const struct auth_provider *ap);
void auth_free_str(char **s);
void auth_log_once(struct auth_provider *ap, enum log_level level,
                   char last[AUTH_REASON_MAX], const char *msg);
void auth_warn_once(struct auth_provider *ap, const char *fmt,
                    const char *detail);
int auth_lock(struct auth_provider *ap);
void auth_unlock(struct auth_provider *ap);
int auth_dead_mark(const struct auth_provider *ap, char *buf,
                   size_t cap);
void auth_note_dead(struct auth_provider *ap, bool dead);
bool auth_known_dead(const struct auth_provider *ap);
void auth_set_reason(struct auth_provider *ap, enum log_level level,
                     const char *fmt, const char *detail);
void auth_mark_dead(struct auth_provider *ap, const char *why);
int auth_base_url(struct auth_provider *ap,
                  const struct oauth_tokens *t, char *out, size_t cap,
                  char **settings_key);
void auth_adopt(struct auth_provider *ap, struct oauth_tokens *t,
                const struct oauth_file_id *id);
void auth_load(struct auth_provider *ap, bool force);
bool auth_expiring(const struct auth_provider *ap, int64_t margin_ms);
bool auth_refreshable(const struct auth_provider *ap);

#endif
