/* config.c - loads the libconfig file and validates every key: known
 * names only, right types, values in range, references that resolve,
 * no duplicates. The first problem found is reported as FILE:LINE. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

#include "cfgclient.h"
#include "cfgcluster.h"
#include "cfgprov.h"
#include "cfgread.h"
#include "provkind.h"
#include "util.h"

#define CFG_DEFAULT_LISTEN           "127.0.0.1:8080"
#define CFG_DEFAULT_CONTROL_SOCKET   "/run/pipelined/control.sock"
#define CFG_DEFAULT_WORKERS          2
#define CFG_DEFAULT_MAX_CONCURRENT   256
#define CFG_DEFAULT_QUEUE_CAPACITY   4096
#define CFG_MAX_QUEUE_CAPACITY       1000000
#define CFG_MAX_CONCURRENT_LIMIT     100000
#define CFG_DEFAULT_MAX_BODY         (4LL * 1024 * 1024)
#define CFG_MIN_MAX_BODY             1024LL
#define CFG_MAX_MAX_BODY             (256LL * 1024 * 1024)
#define CFG_DEFAULT_ARENA            (64LL * 1024 * 1024)
#define CFG_MAX_ARENA                (16LL * 1024 * 1024 * 1024)
#define CFG_DEFAULT_REQUEST_TIMEOUT  30000
#define CFG_DEFAULT_CONNECT_TIMEOUT  5000
#define CFG_DEFAULT_IDLE_TIMEOUT     60000
#define CFG_MIN_IDLE_TIMEOUT         1000
#define CFG_DEFAULT_MAX_CONNECTIONS  10000
#define CFG_MAX_CONNECTIONS          1000000
#define CFG_DEFAULT_REQUEST_LINE     8192
#define CFG_DEFAULT_HEADER_BYTES     32768
#define CFG_MAX_HEADER_BYTES         (1024 * 1024)
#define CFG_DEFAULT_HEADERS          100
#define CFG_MAX_HEADERS              100      /* the parser's array */
#define CFG_DEFAULT_HEADER_TIMEOUT   10000
#define CFG_DEFAULT_BODY_TIMEOUT     30000
#define CFG_DEFAULT_KEEPALIVE        60000
#define CFG_MAX_KEEPALIVE_REQUESTS   100000000
#define CFG_DEFAULT_SHUTDOWN_TIMEOUT 10000
#define CFG_MAX_TIMEOUT_MS           86400000     /* one day */
#define CFG_DEFAULT_MAX_RETRIES      3
#define CFG_MAX_RETRIES_LIMIT        100
#define CFG_DEFAULT_BASE_DELAY       200
#define CFG_DEFAULT_MAX_DELAY        10000
#define CFG_DEFAULT_MULTIPLIER       2.0
#define CFG_MAX_MULTIPLIER           100.0
#define CFG_DEFAULT_FAIL_THRESHOLD   5
#define CFG_MAX_FAIL_THRESHOLD       100000
#define CFG_DEFAULT_RECOVERY         60000
#define CFG_DEFAULT_HALF_OPEN        1
#define CFG_MAX_HALF_OPEN            10000
#define CFG_DEFAULT_WINDOW           20
#define CFG_MAX_WINDOW               1000
#define CFG_DEFAULT_MIN_CALLS        10
#define CFG_MAX_WEIGHT               1000000
#define CFG_MAX_CLIENT_KEYS          1024
#define CFG_MAX_PORT                 65535



static const char *const cfg_strategies[] = {
    "round-robin", "weighted", "least-connections", "random", NULL
};
static const char *const cfg_jitters[] = {
    "none", "full", "equal", "decorrelated", NULL
};
static const char *const cfg_log_levels[] = {
    "debug", "info", "warn", "error", NULL
};

const char *cfg_provider_type_name(enum cfg_provider_type type)
{
    return provkind_of(type)->name;
}

const char *cfg_strategy_name(enum cfg_strategy strategy)
{
    return cfg_strategies[strategy];
}

/* "host:port" or "[v6]:port" into host and port. */
static int cfg_parse_listen(struct cfg_loader *ld, const config_setting_t *at,
                            struct cfg *cfg)
{
    const char *s = cfg->listen;
    const char *colon;
    const char *host_start = s;
    size_t host_len;
    long long port;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            return cfg_fail(ld, at, "'listen' must be HOST:PORT, not \"%s\"",
                            s);
        host_start = s + 1;
        host_len = (size_t)(close - host_start);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return cfg_fail(ld, at, "'listen' must be HOST:PORT, not \"%s\"",
                            s);
        host_len = (size_t)(colon - s);
    }
    if (host_len == 0)
        return cfg_fail(ld, at, "'listen' has no host in \"%s\"", s);
    if (util_parse_int(colon + 1, 1, CFG_MAX_PORT, &port) < 0)
        return cfg_fail(ld, at, "'listen' has a bad port in \"%s\"", s);
    cfg->listen_host = strndup(host_start, host_len);
    if (cfg->listen_host == NULL)
        return cfg_fail(ld, at, "out of memory");
    cfg->listen_port = (int)port;
    return 0;
}

/* A provider's keys (cfgprov.c reads them by its kind's rules). */
static const char *const cfg_provider_keys[] = {
    "name", "type", "auth", "base_url", "api_key", "api_key_env",
    "token_file", "oauth_base_url", "client_id", "client_secret",
    "settings_file", "latency_ms", "health_check", NULL
};

static const char *const cfg_target_keys[] = {
    "provider", "model", "weight", "max_concurrent", "rpm", "tpm", NULL
};

static int cfg_load_target(struct cfg_loader *ld, const config_setting_t *s,
                           struct cfg *cfg, int vmodel, struct cfg_target *t)
{
    char *provider = NULL;
    int rc = -1;

    t->vmodel = vmodel;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfg_fail(ld, s, "each target must be a group { ... }");
    if (cfg_check_keys(ld, s, "a target", cfg_target_keys) < 0 ||
        cfg_get_str(ld, s, "provider", true, NULL, &provider) < 0 ||
        cfg_get_str(ld, s, "model", true, NULL, &t->model) < 0 ||
        cfg_get_i(ld, s, "weight", 1, CFG_MAX_WEIGHT, 1, &t->weight) < 0 ||
        cfg_get_i(ld, s, "max_concurrent", 0, CFG_MAX_CONCURRENT_LIMIT, 0,
                  &t->max_concurrent) < 0 ||
        cfg_get_int(ld, s, "rpm", 1, CFG_MAX_RPM, 0, &t->rpm) < 0 ||
        cfg_get_int(ld, s, "tpm", 1, CFG_MAX_TPM, 0, &t->tpm) < 0)
        goto out;
    t->provider = -1;
    for (int i = 0; i < cfg->provider_count; i++)
        if (strcmp(cfg->providers[i].name, provider) == 0)
            t->provider = i;
    if (t->provider < 0) {
        cfg_fail(ld, s, "target names unknown provider \"%s\"", provider);
        goto out;
    }
    if (strlen(t->model) >= CFG_NAME_MAX) {
        cfg_fail(ld, s, "model name must be shorter than %d bytes",
                 CFG_NAME_MAX);
        goto out;
    }
    snprintf(t->name, sizeof(t->name), "%s/%s", provider, t->model);
    for (int i = cfg->vmodels[vmodel].first_target; i < cfg->target_count;
         i++) {
        if (strcmp(cfg->targets[i].name, t->name) == 0) {
            cfg_fail(ld, s, "duplicate target \"%s\" in virtual model \"%s\"",
                     t->name, cfg->vmodels[vmodel].name);
            goto out;
        }
    }
    rc = 0;
out:
    free(provider);
    return rc;
}

static const char *const cfg_vmodel_keys[] = {
    "name", "strategy", "targets", NULL
};

static int cfg_load_vmodel(struct cfg_loader *ld, const config_setting_t *s,
                           struct cfg *cfg, int index)
{
    struct cfg_vmodel *vm = &cfg->vmodels[index];
    const config_setting_t *targets;
    int strategy, n;

    vm->first_target = cfg->target_count;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfg_fail(ld, s, "each virtual model must be a group { ... }");
    if (cfg_check_keys(ld, s, "a virtual model", cfg_vmodel_keys) < 0 ||
        cfg_get_str(ld, s, "name", true, NULL, &vm->name) < 0 ||
        cfg_get_enum(ld, s, "strategy", cfg_strategies, CFG_LB_ROUND_ROBIN,
                     &strategy) < 0)
        return -1;
    vm->strategy = (enum cfg_strategy)strategy;
    if (strlen(vm->name) >= CFG_NAME_MAX)
        return cfg_fail(ld, s, "virtual model name must be shorter than %d "
                        "bytes", CFG_NAME_MAX);
    if (strchr(vm->name, '/') != NULL)
        return cfg_fail(ld, s, "virtual model name \"%s\" must not hold '/' "
                        "(that form addresses one target)", vm->name);
    for (int i = 0; i < index; i++)
        if (strcmp(cfg->vmodels[i].name, vm->name) == 0)
            return cfg_fail(ld, s, "duplicate virtual model \"%s\"",
                            vm->name);
    targets = config_setting_get_member(s, "targets");
    if (targets == NULL)
        return cfg_fail(ld, s, "virtual model \"%s\" has no 'targets'",
                        vm->name);
    if (config_setting_type(targets) != CONFIG_TYPE_LIST)
        return cfg_fail(ld, targets, "'targets' must be a list ( ... ), not "
                        "%s", cfg_type_name(config_setting_type(targets)));
    n = config_setting_length(targets);
    if (n == 0)
        return cfg_fail(ld, targets, "virtual model \"%s\" has no targets",
                        vm->name);
    for (int i = 0; i < n; i++) {
        if (cfg->target_count >= CFG_MAX_TARGETS)
            return cfg_fail(ld, targets, "more than %d targets in all",
                            CFG_MAX_TARGETS);
        if (cfg_load_target(ld, config_setting_get_elem(targets, i), cfg,
                            index, &cfg->targets[cfg->target_count]) < 0) {
            cfg->target_count++;     /* so cfg_free sees its strings */
            return -1;
        }
        cfg->target_count++;
        vm->target_count++;
    }
    return 0;
}

static const char *const cfg_retry_keys[] = {
    "max_retries", "base_delay_ms", "max_delay_ms", "multiplier", "jitter",
    NULL
};
static const char *const cfg_breaker_keys[] = {
    "enabled", "failure_threshold", "recovery_timeout_ms",
    "half_open_max_requests", "failure_rate_threshold", "window_size",
    "minimum_calls", NULL
};
static const char *const cfg_clients_keys[] = {
    "api_keys", "max_connections", "max_request_line", "max_header_bytes",
    "max_headers", "header_timeout_ms", "body_timeout_ms",
    "keepalive_timeout_ms", "keepalive_requests", NULL
};

static int cfg_load_retry(struct cfg_loader *ld, const config_setting_t *root,
                          struct cfg_retry *r)
{
    const config_setting_t *g;
    int jitter;

    if (cfg_get_group(ld, root, "retry", cfg_retry_keys, &g) < 0)
        return -1;
    if (cfg_get_i(ld, g, "max_retries", 0, CFG_MAX_RETRIES_LIMIT,
                  CFG_DEFAULT_MAX_RETRIES, &r->max_retries) < 0 ||
        cfg_get_i(ld, g, "base_delay_ms", 0, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_BASE_DELAY, &r->base_delay_ms) < 0 ||
        cfg_get_i(ld, g, "max_delay_ms", 0, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_MAX_DELAY, &r->max_delay_ms) < 0 ||
        cfg_get_float(ld, g, "multiplier", 1.0, CFG_MAX_MULTIPLIER,
                      CFG_DEFAULT_MULTIPLIER, &r->multiplier) < 0 ||
        cfg_get_enum(ld, g, "jitter", cfg_jitters, CFG_JITTER_FULL,
                     &jitter) < 0)
        return -1;
    r->jitter = (enum cfg_jitter)jitter;
    if (r->max_delay_ms < r->base_delay_ms)
        return cfg_fail(ld, cfg_member(g, "max_delay_ms") ?
                        cfg_member(g, "max_delay_ms") : g,
                        "'max_delay_ms' must not be below 'base_delay_ms'");
    return 0;
}

static int cfg_load_breaker(struct cfg_loader *ld,
                            const config_setting_t *root,
                            struct cfg_breaker *b)
{
    const config_setting_t *g;

    if (cfg_get_group(ld, root, "circuit_breaker", cfg_breaker_keys, &g) < 0)
        return -1;
    if (cfg_get_bool(ld, g, "enabled", true, &b->enabled) < 0)
        return -1;
    if (cfg_get_i(ld, g, "failure_threshold", 1, CFG_MAX_FAIL_THRESHOLD,
                  CFG_DEFAULT_FAIL_THRESHOLD, &b->failure_threshold) < 0 ||
        cfg_get_i(ld, g, "recovery_timeout_ms", 1, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_RECOVERY, &b->recovery_timeout_ms) < 0 ||
        cfg_get_i(ld, g, "half_open_max_requests", 1, CFG_MAX_HALF_OPEN,
                  CFG_DEFAULT_HALF_OPEN, &b->half_open_max_requests) < 0 ||
        cfg_get_float(ld, g, "failure_rate_threshold", 0.0, 1.0, 0.0,
                      &b->failure_rate_threshold) < 0 ||
        cfg_get_i(ld, g, "window_size", 1, CFG_MAX_WINDOW,
                  CFG_DEFAULT_WINDOW, &b->window_size) < 0 ||
        cfg_get_i(ld, g, "minimum_calls", 1, CFG_MAX_WINDOW,
                  b->window_size < CFG_DEFAULT_MIN_CALLS ? b->window_size
                                                         : CFG_DEFAULT_MIN_CALLS,
                  &b->minimum_calls) < 0)
        return -1;
    if (b->minimum_calls > b->window_size)
        return cfg_fail(ld, cfg_member(g, "minimum_calls"),
                        "'minimum_calls' must not exceed 'window_size'");
    return 0;
}

static int cfg_load_limits(struct cfg_loader *ld, const config_setting_t *g,
                           struct cfg_limits *l)
{
    if (cfg_get_i(ld, g, "max_connections", 1, CFG_MAX_CONNECTIONS,
                  CFG_DEFAULT_MAX_CONNECTIONS, &l->max_connections) < 0 ||
        cfg_get_i(ld, g, "max_request_line", 64, CFG_MAX_HEADER_BYTES,
                  CFG_DEFAULT_REQUEST_LINE, &l->max_request_line) < 0 ||
        cfg_get_i(ld, g, "max_header_bytes", 256, CFG_MAX_HEADER_BYTES,
                  CFG_DEFAULT_HEADER_BYTES, &l->max_header_bytes) < 0 ||
        cfg_get_i(ld, g, "max_headers", 1, CFG_MAX_HEADERS,
                  CFG_DEFAULT_HEADERS, &l->max_headers) < 0 ||
        cfg_get_i(ld, g, "header_timeout_ms", 1, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_HEADER_TIMEOUT, &l->header_timeout_ms) < 0 ||
        cfg_get_i(ld, g, "body_timeout_ms", 1, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_BODY_TIMEOUT, &l->body_timeout_ms) < 0 ||
        cfg_get_i(ld, g, "keepalive_timeout_ms", 1, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_KEEPALIVE, &l->keepalive_timeout_ms) < 0 ||
        cfg_get_i(ld, g, "keepalive_requests", 0, CFG_MAX_KEEPALIVE_REQUESTS,
                  0, &l->keepalive_requests) < 0)
        return -1;
    if (l->max_request_line > l->max_header_bytes) {
        const config_setting_t *at = cfg_member(g, "max_request_line");

        return cfg_fail(ld, at ? at : g, "'max_request_line' must not "
                        "exceed 'max_header_bytes'");
    }
    return 0;
}

static int cfg_load_clients(struct cfg_loader *ld,
                            const config_setting_t *root, struct cfg *cfg)
{
    const config_setting_t *g, *keys;
    int n;

    if (cfg_get_group(ld, root, "clients", cfg_clients_keys, &g) < 0)
        return -1;
    if (cfg_load_limits(ld, g, &cfg->limits) < 0)
        return -1;
    keys = cfg_member(g, "api_keys");
    if (keys == NULL)
        return 0;      /* limits only: no client authentication */
    if (config_setting_type(keys) != CONFIG_TYPE_LIST &&
        config_setting_type(keys) != CONFIG_TYPE_ARRAY)
        return cfg_fail(ld, keys, "'api_keys' must be a list of strings");
    n = config_setting_length(keys);
    if (n == 0 || n > CFG_MAX_CLIENT_KEYS)
        return cfg_fail(ld, keys, "'api_keys' must hold 1 to %d keys",
                        CFG_MAX_CLIENT_KEYS);
    cfg->client_keys = calloc((size_t)n, sizeof(char *));
    cfg->clients = calloc((size_t)n, sizeof(*cfg->clients));
    if (cfg->client_keys == NULL || cfg->clients == NULL)
        return cfg_fail(ld, keys, "out of memory");
    for (int i = 0; i < n; i++) {
        const config_setting_t *k = config_setting_get_elem(keys, i);
        const char *v;

        if (config_setting_type(k) == CONFIG_TYPE_GROUP) {
            /* { key; name; rpm; tpm; }: cfgclient.c */
            if (cfg_load_client_key(ld, k, cfg, i) < 0)
                return -1;
            continue;
        }
        if (config_setting_type(k) != CONFIG_TYPE_STRING)
            return cfg_fail(ld, k, "each client key must be a string or "
                            "a group { key; name; rpm; tpm; }");
        v = config_setting_get_string(k);
        if (v[0] == '\0')
            return cfg_fail(ld, k, "a client key must not be empty");
        cfg->client_keys[i] = strdup(v);
        if (cfg->client_keys[i] == NULL)
            return cfg_fail(ld, k, "out of memory");
        cfg->client_key_count++;
    }
    return cfg_check_client_names(ld, keys, cfg);
}

/* `user` and `group`: names the system knows, resolved now so that a
 * typo is a FILE:LINE error and not a worker that cannot start. */
static int cfg_load_user(struct cfg_loader *ld, const config_setting_t *root,
                         struct cfg *cfg)
{
    char reason[CFG_ERR_MAX];
    enum privs_lookup rc;

    if (cfg_get_str(ld, root, "user", false, NULL, &cfg->user) < 0 ||
        cfg_get_str(ld, root, "group", false, NULL, &cfg->group) < 0)
        return -1;
    if (cfg->user == NULL) {
        if (cfg->group != NULL)
            return cfg_fail(ld, cfg_member(root, "group"), "'group' needs "
                            "'user'");
        return 0;
    }
    rc = privs_resolve(cfg->user, cfg->group, &cfg->run_as, reason,
                       sizeof(reason));
    if (rc == PRIVS_NO_GROUP)
        return cfg_fail(ld, cfg_member(root, "group"), "'group': %s",
                        reason);
    if (rc != PRIVS_OK)
        return cfg_fail(ld, cfg_member(root, "user"), "'user': %s", reason);
    return 0;
}

/* ---- capture ---- */

static const char *const cfg_capture_keys[] = {
    "dir", "max_body_bytes", "max_files", "enabled", NULL
};

/* The `capture` group. The directory is only checked to be absolute
 * here: it is made when the first capture is written, by the user the
 * daemon runs as, and a failure then is logged, never fatal. */
static int cfg_load_capture(struct cfg_loader *ld,
                            const config_setting_t *root,
                            struct cfg_capture *c)
{
    const config_setting_t *g;

    if (cfg_get_group(ld, root, "capture", cfg_capture_keys, &g) < 0)
        return -1;
    c->configured = g != NULL;
    if (cfg_get_bool(ld, g, "enabled", false, &c->enabled) < 0 ||
        cfg_get_str(ld, g, "dir", false, CFG_CAPTURE_DIR, &c->dir) < 0 ||
        cfg_get_i(ld, g, "max_body_bytes", 0, CFG_CAPTURE_BODY_MAX,
                  CFG_CAPTURE_BODY, &c->max_body_bytes) < 0 ||
        cfg_get_i(ld, g, "max_files", 1, CFG_CAPTURE_FILES_MAX,
                  CFG_CAPTURE_FILES, &c->max_files) < 0)
        return -1;
    if (c->dir[0] != '/')
        return cfg_fail(ld, cfg_member(g, "dir"), "'dir' must be an "
                        "absolute path");
    if (strlen(c->dir) > CFG_CAPTURE_DIR_MAX)
        return cfg_fail(ld, cfg_member(g, "dir"), "'dir' is longer than "
                        "%d bytes", CFG_CAPTURE_DIR_MAX);
    return 0;
}

static const char *const cfg_root_keys[] = {
    "listen", "control_socket", "workers", "max_concurrent_requests",
    "max_concurrent_per_worker",
    "queue_capacity", "max_body_bytes", "body_arena_bytes",
    "request_timeout_ms", "connect_timeout_ms", "upstream_idle_timeout_ms",
    "shutdown_timeout_ms",
    "log_level", "log_file", "user", "group", "retry", "circuit_breaker",
    "clients", "providers", "virtual_models", "capture", "cluster", NULL
};

static int cfg_load_root(struct cfg_loader *ld, const config_setting_t *root,
                         struct cfg *cfg)
{
    const config_setting_t *providers, *vmodels, *at;
    int level;

    if (cfg_check_keys(ld, root, "the configuration", cfg_root_keys) < 0 ||
        cfg_get_str(ld, root, "listen", false, CFG_DEFAULT_LISTEN,
                    &cfg->listen) < 0)
        return -1;
    at = config_setting_get_member(root, "listen");
    if (cfg_parse_listen(ld, at ? at : root, cfg) < 0 ||
        cfg_get_str(ld, root, "control_socket", false,
                    CFG_DEFAULT_CONTROL_SOCKET, &cfg->control_socket) < 0 ||
        cfg_get_i(ld, root, "workers", 1, CFG_MAX_WORKERS,
                  CFG_DEFAULT_WORKERS, &cfg->workers) < 0 ||
        cfg_get_i(ld, root, "max_concurrent_requests", 1,
                  CFG_MAX_CONCURRENT_LIMIT, CFG_DEFAULT_MAX_CONCURRENT,
                  &cfg->max_concurrent_requests) < 0 ||
        cfg_get_i(ld, root, "max_concurrent_per_worker", 1,
                  CFG_MAX_CONCURRENT_LIMIT, cfg->max_concurrent_requests,
                  &cfg->max_concurrent_per_worker) < 0 ||
        cfg_get_i(ld, root, "queue_capacity", 1, CFG_MAX_QUEUE_CAPACITY,
                  CFG_DEFAULT_QUEUE_CAPACITY, &cfg->queue_capacity) < 0 ||
        cfg_get_int(ld, root, "max_body_bytes", CFG_MIN_MAX_BODY,
                    CFG_MAX_MAX_BODY, CFG_DEFAULT_MAX_BODY,
                    &cfg->max_body_bytes) < 0 ||
        cfg_get_int(ld, root, "body_arena_bytes", CFG_MIN_MAX_BODY,
                    CFG_MAX_ARENA, CFG_DEFAULT_ARENA,
                    &cfg->body_arena_bytes) < 0 ||
        cfg_get_i(ld, root, "request_timeout_ms", 1, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_REQUEST_TIMEOUT, &cfg->request_timeout_ms) < 0 ||
        cfg_get_i(ld, root, "connect_timeout_ms", 1, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_CONNECT_TIMEOUT, &cfg->connect_timeout_ms) < 0 ||
        cfg_get_i(ld, root, "upstream_idle_timeout_ms", CFG_MIN_IDLE_TIMEOUT,
                  CFG_MAX_TIMEOUT_MS, CFG_DEFAULT_IDLE_TIMEOUT,
                  &cfg->idle_timeout_ms) < 0 ||
        cfg_get_i(ld, root, "shutdown_timeout_ms", 0, CFG_MAX_TIMEOUT_MS,
                  CFG_DEFAULT_SHUTDOWN_TIMEOUT,
                  &cfg->shutdown_timeout_ms) < 0 ||
        cfg_get_enum(ld, root, "log_level", cfg_log_levels, LOG_INFO,
                     &level) < 0 ||
        cfg_get_str(ld, root, "log_file", false, NULL, &cfg->log_file) < 0 ||
        cfg_load_user(ld, root, cfg) < 0 ||
        cfg_load_retry(ld, root, &cfg->retry) < 0 ||
        cfg_load_breaker(ld, root, &cfg->breaker) < 0 ||
        cfg_load_clients(ld, root, cfg) < 0 ||
        cfg_load_capture(ld, root, &cfg->capture) < 0 ||
        cfg_load_cluster(ld, root, &cfg->cluster) < 0)
        return -1;
    cfg->log_level = (enum log_level)level;
    if (cfg->body_arena_bytes < cfg->max_body_bytes) {
        at = config_setting_get_member(root, "body_arena_bytes");
        return cfg_fail(ld, at ? at : root, "'body_arena_bytes' must be at "
                        "least 'max_body_bytes' (%lld)", cfg->max_body_bytes);
    }

    if (cfg_get_list(ld, root, "providers", CFG_MAX_PROVIDERS,
                     &providers) < 0)
        return -1;
    cfg->providers = calloc(CFG_MAX_PROVIDERS, sizeof(*cfg->providers));
    if (cfg->providers == NULL)
        return cfg_fail(ld, root, "out of memory");
    for (int i = 0; i < config_setting_length(providers); i++) {
        int rc = cfgprov_load(ld, config_setting_get_elem(providers, i),
                              cfg_provider_keys, cfg, &cfg->providers[i]);

        cfg->provider_count++;
        if (rc < 0)
            return -1;
    }

    if (cfg_get_list(ld, root, "virtual_models", CFG_MAX_VMODELS,
                     &vmodels) < 0)
        return -1;
    cfg->vmodels = calloc(CFG_MAX_VMODELS, sizeof(*cfg->vmodels));
    cfg->targets = calloc(CFG_MAX_TARGETS, sizeof(*cfg->targets));
    if (cfg->vmodels == NULL || cfg->targets == NULL)
        return cfg_fail(ld, root, "out of memory");
    for (int i = 0; i < config_setting_length(vmodels); i++) {
        int rc = cfg_load_vmodel(ld, config_setting_get_elem(vmodels, i),
                                 cfg, i);

        cfg->vmodel_count++;
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A file that holds keys in clear must not be readable by others. */
static void cfg_check_secret_mode(struct cfg_loader *ld, const struct cfg *cfg)
{
    bool secrets = false;
    struct stat st;

    for (int i = 0; i < cfg->client_key_count; i++)
        secrets |= strncmp(cfg->client_keys[i], "sha256:", 7) != 0;
    for (int i = 0; i < cfg->provider_count; i++)
        secrets |= (cfg->providers[i].api_key != NULL &&
                    cfg->providers[i].api_key_env == NULL) ||
                   cfg->providers[i].client_secret != NULL;
    if (!secrets || ld->warn_log == NULL || stat(ld->path, &st) < 0)
        return;
    if (st.st_mode & (S_IRGRP | S_IROTH))
        log_msg(ld->warn_log, LOG_WARN, NULL, "%s holds API keys and is "
                "readable by %s (mode %03o): chmod 600 it, or use "
                "api_key_env and sha256: client keys", ld->path,
                (st.st_mode & S_IROTH) ? "everyone" : "its group",
                (unsigned)(st.st_mode & 0777));
}

/* ---- where a syntax error is ---------------------------------------- */

/* libconfig reports the line where its scanner gave up. A string left
 * open runs on (strings may span lines) to the next '"', so the error
 * surfaces lines later, or past the end of the file. cfg_scan_file()
 * reads the file the way libconfig's scanner does (comments, strings and
 * their \" and \\ escapes) to find the line such a string opened on. */
struct cfg_scan {
    int lines;          /* lines in the file (a last unended one counts) */
    int open_line;      /* the first string running over a line end, or
                         * never closed, opened here; 0: none */
};

static void cfg_scan_file(FILE *f, struct cfg_scan *scan)
{
    enum { CODE, STRING, LINE_COMMENT, BLOCK_COMMENT } state = CODE;
    int c, prev = 0, last = '\n', line = 1, string_line = 0;

    scan->open_line = 0;
    while ((c = getc(f)) != EOF) {
        last = c;
        switch (state) {
        case CODE:
            if (c == '"') {
                state = STRING;
                string_line = line;
            } else if (c == '#' || (prev == '/' && c == '/')) {
                state = LINE_COMMENT;
            } else if (prev == '/' && c == '*') {
                state = BLOCK_COMMENT;
                c = 0;                  /* its '*' closes nothing */
            }
            break;
        case STRING:
            if (c == '"') {
                state = CODE;
            } else if (c == '\\') {
                int next = getc(f);

                if (next != '"' && next != '\\' && next != EOF)
                    ungetc(next, f);
            } else if (c == '\n' && scan->open_line == 0) {
                scan->open_line = string_line;
            }
            break;
        case LINE_COMMENT:
            if (c == '\n')
                state = CODE;
            break;
        case BLOCK_COMMENT:
            if (prev == '*' && c == '/') {
                state = CODE;
                c = 0;                  /* its '/' opens nothing */
            }
            break;
        }
        if (last == '\n')
            line++;
        prev = c;
    }
    if (state == STRING && scan->open_line == 0)
        scan->open_line = string_line;
    scan->lines = last == '\n' ? line - 1 : line;
}

/* libconfig's parse error in file at line, as FILE:LINE: message in err,
 * moved to the line a string left open starts on, or to the last line
 * when libconfig names one past it. */
static void cfg_parse_error(const char *file, int line, const char *text,
                            char *err, size_t errlen)
{
    struct cfg_scan scan = { 0, 0 };
    FILE *f = fopen(file, "r");

    if (f != NULL) {
        cfg_scan_file(f, &scan);
        fclose(f);
    }
    if (scan.open_line > 0 && scan.open_line <= line)
        snprintf(err, errlen, "%s:%d: %s: a string opened on this line is "
                 "not closed on it", file, scan.open_line, text);
    else if (scan.lines > 0 && line > scan.lines)
        snprintf(err, errlen, "%s:%d: %s at the end of the file (is a "
                 "'}' or ')' missing?)", file, scan.lines, text);
    else
        snprintf(err, errlen, "%s:%d: %s", file, line, text);
}

struct cfg *cfg_load(const char *path, char *err, size_t errlen,
                     const struct log *warn_log)
{
    struct cfg_loader ld = { path, err, errlen, warn_log };
    struct cfg *cfg = NULL;
    config_t lc;

    config_init(&lc);
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s:0: cannot read file: %s", path,
                     strerror(errno ? errno : ENOENT));
        else
            cfg_parse_error(config_error_file(&lc) ? config_error_file(&lc) :
                            path, config_error_line(&lc),
                            config_error_text(&lc), err, errlen);
        goto fail;
    }
    if (config_setting_length(config_root_setting(&lc)) == 0) {
        snprintf(err, errlen, "%s:1: empty configuration: no settings "
                 "(at least 'providers' and 'virtual_models' are needed)",
                 path);
        goto fail;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s:0: out of memory", path);
        goto fail;
    }
    if (cfg_load_root(&ld, config_root_setting(&lc), cfg) < 0)
        goto fail;
    cfg_check_secret_mode(&ld, cfg);
    config_destroy(&lc);
    return cfg;
fail:
    cfg_free(&cfg);
    config_destroy(&lc);
    return NULL;
}

void cfg_free(struct cfg **cfgp)
{
    struct cfg *cfg = cfgp ? *cfgp : NULL;

    if (cfg == NULL)
        return;
    for (int i = 0; i < cfg->provider_count; i++) {
        struct cfg_provider *p = &cfg->providers[i];

        free(p->name);
        free(p->base_url);
        if (p->api_key != NULL)
            explicit_bzero(p->api_key, strlen(p->api_key));
        free(p->api_key);
        free(p->api_key_env);
        free(p->token_file);
        free(p->oauth_base_url);
        free(p->client_id);
        if (p->client_secret != NULL)
            explicit_bzero(p->client_secret, strlen(p->client_secret));
        free(p->client_secret);
        free(p->settings_file);
    }
    for (int i = 0; i < cfg->target_count; i++)
        free(cfg->targets[i].model);
    for (int i = 0; i < cfg->vmodel_count; i++)
        free(cfg->vmodels[i].name);
    for (int i = 0; i < cfg->client_key_count; i++) {
        explicit_bzero(cfg->client_keys[i], strlen(cfg->client_keys[i]));
        free(cfg->client_keys[i]);
    }
    free(cfg->client_keys);
    for (int i = 0; cfg->clients != NULL && i < cfg->client_key_count; i++)
        free(cfg->clients[i].name);
    free(cfg->clients);
    free(cfg->providers);
    free(cfg->targets);
    free(cfg->vmodels);
    free(cfg->path);
    free(cfg->listen);
    free(cfg->listen_host);
    free(cfg->control_socket);
    free(cfg->log_file);
    free(cfg->user);
    free(cfg->group);
    free(cfg->capture.dir);
    cfg_cluster_free(&cfg->cluster);
    privs_id_free(&cfg->run_as);
    free(cfg);
    *cfgp = NULL;
}

static int cfg_changed(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "reload cannot change %s; restart the daemon "
             "for that", what);
    return -1;
}

int cfg_reload_check(const struct cfg *old, const struct cfg *new_cfg,
                     char *err, size_t errlen)
{
    if (strcmp(old->listen_host, new_cfg->listen_host) != 0 ||
        old->listen_port != new_cfg->listen_port)
        return cfg_changed(err, errlen, "'listen'");
    if (strcmp(old->control_socket, new_cfg->control_socket) != 0)
        return cfg_changed(err, errlen, "'control_socket'");
    if (old->queue_capacity != new_cfg->queue_capacity)
        return cfg_changed(err, errlen, "'queue_capacity'");
    if (old->max_concurrent_requests != new_cfg->max_concurrent_requests)
        return cfg_changed(err, errlen, "'max_concurrent_requests'");
    if (old->body_arena_bytes != new_cfg->body_arena_bytes)
        return cfg_changed(err, errlen, "'body_arena_bytes'");
    if (!cfg_cluster_same(&old->cluster, &new_cfg->cluster))
        return cfg_changed(err, errlen, "'cluster'");
    /* Targets and virtual models may come and go: they live in slots of
     * the segment found by name (slots.c), not by position. */
    return 0;
}

int cfg_find_vmodel(const struct cfg *cfg, const char *name)
{
    for (int i = 0; i < cfg->vmodel_count; i++)
        if (strcmp(cfg->vmodels[i].name, name) == 0)
            return i;
    return -1;
}

int cfg_find_target(const struct cfg *cfg, const char *name)
{
    for (int i = 0; i < cfg->target_count; i++)
        if (strcmp(cfg->targets[i].name, name) == 0)
            return i;
    return -1;
}
