/* cfgprov.c - one provider of the config, read and checked by its kind's
 * descriptor; see cfgprov.h. Nothing here names a kind. */
#include "cfgprov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provkind.h"

static const char *const cfgprov_auth_names[] = {
    "none", "api_key", "oauth", NULL
};
static const char *const cfgprov_oauth_only[] = {
    "token_file", "oauth_base_url", "client_id", "client_secret",
    "settings_file", NULL
};

static bool cfgprov_http_url(const char *url)
{
    return strncmp(url, "http://", strlen("http://")) == 0 ||
           strncmp(url, "https://", strlen("https://")) == 0;
}

/* The name, unique and usable in "provider/model". */
static int cfgprov_name(struct cfg_loader *ld, const config_setting_t *s,
                        const struct cfg *cfg, struct cfg_provider *p)
{
    if (cfg_get_str(ld, s, "name", true, NULL, &p->name) < 0)
        return -1;
    if (strlen(p->name) >= CFG_NAME_MAX || strchr(p->name, '/') != NULL)
        return cfg_fail(ld, s, "provider name \"%s\" must be shorter than "
                        "%d bytes and hold no '/'", p->name, CFG_NAME_MAX);
    for (int i = 0; i < cfg->provider_count; i++)
        if (strcmp(cfg->providers[i].name, p->name) == 0)
            return cfg_fail(ld, s, "duplicate provider name \"%s\" (first at "
                            "line %d)", p->name, cfg->providers[i].line);
    return 0;
}

/* The auth mode against what the kind takes. */
static int cfgprov_auth(struct cfg_loader *ld, const config_setting_t *s,
                        const struct provkind *k, const struct cfg_provider *p)
{
    if (k->simulated && p->auth != CFG_AUTH_NONE)
        return cfg_fail(ld, s, "provider \"%s\": a %s provider takes "
                        "no 'auth'", p->name, k->name);
    if (p->auth != CFG_AUTH_NONE && !provkind_takes(k, p->auth))
        return cfg_fail(ld, s, "provider \"%s\": type \"%s\" "
                        "supports auth = \"api_key\" only", p->name, k->name);
    if (k->base_url_required && config_setting_get_member(s, "base_url") == NULL)
        return cfg_fail(ld, s, "provider \"%s\": type \"%s\" needs "
                        "'base_url'", p->name, k->name);
    if (!k->simulated && p->auth == CFG_AUTH_NONE)
        return cfg_fail(ld, s, "provider \"%s\": auth must be \"api_key\" "
                        "or \"oauth\"", p->name);
    return 0;
}

/* The name of a kind that reads a settings file (for the message). */
static const char *cfgprov_settings_kind(void)
{
    for (const char *const *n = provkind_names(); *n != NULL; n++) {
        const struct provkind *k = provkind_by_name(*n);

        if (k->oauth != NULL && k->oauth->settings_file != NULL)
            return k->name;
    }
    return "?";
}

static int cfgprov_oauth(struct cfg_loader *ld, const config_setting_t *s,
                         const struct provkind *k, struct cfg_provider *p)
{
    const struct provkind_oauth *o = k->oauth;

    if (p->api_key != NULL || p->api_key_env != NULL)
        return cfg_fail(ld, s, "provider \"%s\": 'api_key' and "
                        "'api_key_env' go with auth = \"api_key\"; "
                        "OAuth takes its key from 'token_file'", p->name);
    if (cfg_get_str(ld, s, "token_file", false, o->token_file,
                    &p->token_file) < 0 ||
        cfg_get_str(ld, s, "oauth_base_url", false, o->base_url,
                    &p->oauth_base_url) < 0 ||
        cfg_get_str(ld, s, "client_id", false, o->client_id,
                    &p->client_id) < 0)
        return -1;
    if (cfg_get_str(ld, s, "client_secret", false, NULL,
                    &p->client_secret) < 0 ||
        cfg_get_str(ld, s, "settings_file", false, o->settings_file,
                    &p->settings_file) < 0)
        return -1;
    if (o->settings_file == NULL &&
        config_setting_get_member(s, "settings_file") != NULL)
        return cfg_fail(ld, config_setting_get_member(s, "settings_file"),
                        "provider \"%s\": 'settings_file' is for type "
                        "\"%s\" only", p->name, cfgprov_settings_kind());
    cfg_trim_url(p->oauth_base_url);
    if (cfg_expand_home(ld, s, "token_file", &p->token_file) < 0 ||
        cfg_expand_home(ld, s, "settings_file", &p->settings_file) < 0)
        return -1;
    if (!cfgprov_http_url(p->oauth_base_url))
        return cfg_fail(ld, config_setting_get_member(s,
                        "oauth_base_url"), "provider \"%s\": "
                        "'oauth_base_url' must start with http:// or "
                        "https://", p->name);
    return 0;
}

/* auth = "api_key": the key itself, or from the environment (a warning
 * when that is unset: its calls will fail). */
static int cfgprov_api_key(struct cfg_loader *ld, const config_setting_t *s,
                           struct cfg_provider *p)
{
    const char *v;

    if (p->api_key != NULL)
        return 0;
    if (p->api_key_env == NULL)
        return cfg_fail(ld, s, "provider \"%s\" needs 'api_key' or "
                        "'api_key_env'", p->name);
    v = getenv(p->api_key_env);
    if (v != NULL && v[0] != '\0') {
        p->api_key = strdup(v);
        if (p->api_key == NULL)
            return cfg_fail(ld, s, "out of memory");
    } else if (ld->warn_log != NULL) {
        log_msg(ld->warn_log, LOG_WARN, NULL, "%s:%d: provider \"%s\": "
                "environment variable %s is not set; its calls will fail",
                ld->path, p->line, p->name, p->api_key_env);
    }
    return 0;
}

static const char *const cfgprov_health_keys[] = {
    "interval_ms", "timeout_ms", "unhealthy_after", "healthy_after", NULL
};

/* health_check = { ... }: absent, no probing (interval_ms stays 0). A
 * probe may not outlast its interval, or rounds would overlap. */
static int cfgprov_health(struct cfg_loader *ld, const config_setting_t *s,
                          struct cfg_provider *p)
{
    const config_setting_t *g;
    struct cfg_health *h = &p->health;

    if (cfg_get_group(ld, s, "health_check", cfgprov_health_keys, &g) < 0)
        return -1;
    if (g == NULL)
        return 0;
    if (cfg_get_i(ld, g, "interval_ms", CFGPROV_HEALTH_MIN_MS,
                  CFGPROV_HEALTH_MAX_MS, CFGPROV_HEALTH_INTERVAL_MS,
                  &h->interval_ms) < 0 ||
        cfg_get_i(ld, g, "timeout_ms", CFGPROV_HEALTH_MIN_MS,
                  CFGPROV_HEALTH_MAX_MS, CFGPROV_HEALTH_TIMEOUT_MS,
                  &h->timeout_ms) < 0 ||
        cfg_get_i(ld, g, "unhealthy_after", 1, CFGPROV_HEALTH_MAX_COUNT,
                  CFGPROV_HEALTH_UNHEALTHY_AFTER, &h->unhealthy_after) < 0 ||
        cfg_get_i(ld, g, "healthy_after", 1, CFGPROV_HEALTH_MAX_COUNT,
                  CFGPROV_HEALTH_HEALTHY_AFTER, &h->healthy_after) < 0)
        return -1;
    if (h->timeout_ms > h->interval_ms)
        return cfg_fail(ld, g, "provider \"%s\": health_check timeout_ms "
                        "(%d) must not exceed interval_ms (%d)", p->name,
                        h->timeout_ms, h->interval_ms);
    return 0;
}

int cfgprov_load(struct cfg_loader *ld, const config_setting_t *s,
                 const char *const *keys, struct cfg *cfg,
                 struct cfg_provider *p)
{
    const struct provkind *k;
    const char *def_url;
    int type, auth;

    p->line = config_setting_source_line(s);
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfg_fail(ld, s, "each provider must be a group { ... }");
    if (cfg_check_keys(ld, s, "a provider", keys) < 0 ||
        cfgprov_name(ld, s, cfg, p) < 0)
        return -1;
    if (config_setting_get_member(s, "type") == NULL)
        return cfg_fail(ld, s, "provider \"%s\" has no 'type'", p->name);
    if (cfg_get_enum(ld, s, "type", provkind_names(), 0, &type) < 0)
        return -1;
    p->type = (enum cfg_provider_type)type;
    k = provkind_of(p->type);
    if (cfg_get_enum(ld, s, "auth", cfgprov_auth_names, k->default_auth,
                     &auth) < 0)
        return -1;
    p->auth = (enum cfg_auth)auth;
    if (cfg_get_str(ld, s, "api_key", false, NULL, &p->api_key) < 0 ||
        cfg_get_str(ld, s, "api_key_env", false, NULL, &p->api_key_env) < 0 ||
        cfg_get_i(ld, s, "latency_ms", 0, CFGPROV_MAX_LATENCY_MS, 0,
                  &p->latency_ms) < 0)
        return -1;
    if (p->api_key && p->api_key_env)
        return cfg_fail(ld, s, "provider \"%s\": set 'api_key' or "
                        "'api_key_env', not both", p->name);
    if (cfgprov_auth(ld, s, k, p) < 0 || cfgprov_health(ld, s, p) < 0)
        return -1;
    def_url = p->auth == CFG_AUTH_API_KEY ? k->base_url_api_key
                                          : k->base_url_oauth;
    p->base_url_set = config_setting_get_member(s, "base_url") != NULL;
    if (cfg_get_str(ld, s, "base_url", false, def_url, &p->base_url) < 0)
        return -1;
    cfg_trim_url(p->base_url);
    if (p->base_url && !cfgprov_http_url(p->base_url))
        return cfg_fail(ld, config_setting_get_member(s, "base_url"),
                        "provider \"%s\": 'base_url' must start with "
                        "http:// or https://", p->name);
    if (p->auth == CFG_AUTH_OAUTH) {
        if (cfgprov_oauth(ld, s, k, p) < 0)
            return -1;
    } else {
        for (const char *const *key = cfgprov_oauth_only; *key; key++)
            if (config_setting_get_member(s, *key) != NULL)
                return cfg_fail(ld, config_setting_get_member(s, *key),
                                "provider \"%s\": '%s' goes with auth = "
                                "\"oauth\" only", p->name, *key);
    }
    if (p->auth == CFG_AUTH_API_KEY)
        return cfgprov_api_key(ld, s, p);
    return 0;
}
