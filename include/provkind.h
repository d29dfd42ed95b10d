/* provkind.h - what a provider kind is, as data and pure functions: one
 * descriptor per kind (mock, openai, qwen, iflow), each in a file of its
 * own (common/provider/prov_<kind>.c), gathered in one table
 * (common/provider/provkind.c).
 * A descriptor says how the kind's config is read and checked (auth
 * modes, defaults, required keys), the URL paths of its API (chat,
 * models), how a request is signed (its header lines), which request
 * parameters it does not take (compat.c applies them), and how it logs
 * in and refreshes (OAuth endpoints, what the Bearer key is). Everything
 * here is static and linkable everywhere: config.c, compat.c, the
 * worker (which adds the runtime part: curl glue, the mock's in-process
 * answers) and pipelinectl's login. Adding a kind: a prov_<kind>.c file,
 * its line in provkind.c's table and its value in enum
 * cfg_provider_type. */
#ifndef RCC_PROVKIND_H
#define RCC_PROVKIND_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define PROVKIND_HEADER_MAX  4096   /* one signed header line */
#define PROVKIND_COMPAT_MAX  16     /* parameter rules of one kind */

/* A bit per enum cfg_auth a kind accepts. */
#define PROVKIND_AUTH(a)     (1u << (a))

/* A request parameter a kind does not take: dropped, or renamed to what
 * it takes instead (dropped too when the client also sent that). */
struct provkind_param {
    const char *key;
    const char *rename_to;          /* NULL: drop */
};

/* How a kind logs in and refreshes with OAuth. */
struct provkind_oauth {
    const char *token_file;         /* default token_file ("~/..." ok) */
    const char *base_url;           /* default oauth_base_url */
    const char *client_id;          /* default client_id; NULL: none */
    const char *settings_file;      /* default settings_file; NULL: the
                                       kind takes no settings_file */
    const char *token_path;         /* token endpoint (refresh, poll) */
    const char *device_path;        /* device authorization; NULL: no
                                       login with pipelinectl */
    const char *scope;              /* the device login's scope */
    const char *login_elsewhere;    /* how to log in when device_path is
                                       NULL: another tool writes the files */
    /* The refresh form carries client_secret, which the kind needs to
     * refresh at all. */
    bool refresh_needs_secret;
    /* The Bearer key is the tokens' apiKey, fetched from this path (the
     * access token appended, URL-encoded) after a refresh; NULL: the
     * Bearer key is the access token. */
    const char *userinfo_path;
    /* Without base_url the API base comes from the settings file's
     * baseUrl and then base_url_api_key (true), or from the tokens'
     * resource_url (false: oauth_api_base). */
    bool base_from_settings;
};

/* Adds one header line to what a request carries; 0 or -1 (ENOMEM). */
typedef int (*provkind_add_fn)(void *arg, const char *line);

struct provkind {
    const char *name;               /* config's "type" */
    const char *label;              /* in messages: "an iFlow provider" */
    enum cfg_provider_type type;
    unsigned auth_modes;            /* PROVKIND_AUTH bits */
    enum cfg_auth default_auth;
    /* base_url must be written (with auth = "api_key"). */
    bool base_url_required;
    const char *base_url_api_key;   /* default base_url with an API key */
    const char *base_url_oauth;     /* default with OAuth; NULL: see
                                       provkind_oauth.base_from_settings */
    bool simulated;                 /* answered inside the worker: no
                                       base_url, no upstream */
    const char *chat_path;          /* appended to the base URL */
    const char *models_path;
    /* The header lines of a request, secret (an API key or a Bearer
     * token; NULL when the kind needs none) included. 0 or -1. */
    int (*sign)(const char *secret, bool stream, provkind_add_fn add,
                void *arg);
    const struct provkind_param *params;   /* NULL-key terminated */
    const struct provkind_oauth *oauth;    /* NULL: no OAuth */
};

extern const struct provkind provkind_mock;
extern const struct provkind provkind_openai;
extern const struct provkind provkind_qwen;
extern const struct provkind provkind_iflow;
extern const struct provkind provkind_anthropic;

/* The descriptor of type (never NULL for a value of the enum). */
const struct provkind *provkind_of(enum cfg_provider_type type);
/* By config name; NULL when unknown. */
const struct provkind *provkind_by_name(const char *name);
/* The kinds' names in enum order, NULL-terminated (config's "type"). */
const char *const *provkind_names(void);
bool provkind_takes(const struct provkind *k, enum cfg_auth auth);
/* base + path into out[cap]; -1 when it does not fit. */
int provkind_url(const char *base, const char *path, char *out, size_t cap);

#endif
