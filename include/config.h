/* config.h - the daemon's configuration: the libconfig file of the
 * contract, loaded and validated into plain structs. Every refusal names
 * FILE:LINE. A struct cfg is immutable once loaded; a reload builds a new
 * one. */
#ifndef RCC_CONFIG_H
#define RCC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "privs.h"

#define CFG_ERR_MAX          512
#define CFG_MAX_WORKERS      64
#define CFG_MAX_PROVIDERS    64
#define CFG_MAX_TARGETS      256
#define CFG_MAX_VMODELS      128
#define CFG_NAME_MAX         128     /* provider, model, virtual model */
#define CFG_TARGET_NAME_MAX  (2 * CFG_NAME_MAX)
/* Rate budgets (bucket.h): the largest rpm and tpm a target or a client
 * may set; absent means no limit. Both fit an int: libconfig 1.5 wraps
 * larger integers written without an L suffix, silently. */
#define CFG_MAX_RPM          100000000LL
#define CFG_MAX_TPM          2000000000LL
#define CFG_DEFAULT_PATH     "/etc/pipelined/pipelined.conf"
/* Qwen's API-key service, also the base for OAuth tokens without a
 * resource_url (as the Qwen CLI does). */
#define CFG_DASHSCOPE_URL    "https://dashscope.aliyuncs.com/compatible-mode/v1"

enum cfg_provider_type {
    CFG_PROVIDER_MOCK,
    CFG_PROVIDER_OPENAI,
    CFG_PROVIDER_QWEN,
    CFG_PROVIDER_IFLOW,
    CFG_PROVIDER_ANTHROPIC
};

enum cfg_auth { CFG_AUTH_NONE, CFG_AUTH_API_KEY, CFG_AUTH_OAUTH };

enum cfg_strategy {
    CFG_LB_ROUND_ROBIN,
    CFG_LB_WEIGHTED,
    CFG_LB_LEAST_CONNECTIONS,
    CFG_LB_RANDOM
};

enum cfg_jitter {
    CFG_JITTER_NONE,
    CFG_JITTER_FULL,
    CFG_JITTER_EQUAL,
    CFG_JITTER_DECORRELATED
};

/* A provider's health_check group: active probes of GET {base_url}/models.
 * interval_ms 0: the group is absent, no probing. */
struct cfg_health {
    int interval_ms;
    int timeout_ms;          /* <= interval_ms */
    int unhealthy_after;     /* failed probes in a row to turn unhealthy */
    int healthy_after;       /* good probes in a row to come back */
};

struct cfg_provider {
    char *name;
    enum cfg_provider_type type;
    enum cfg_auth auth;
    char *base_url;          /* without a trailing slash */
    char *api_key;           /* resolved from api_key or api_key_env; secret */
    char *api_key_env;
    char *token_file;
    char *oauth_base_url;
    char *client_id;
    char *client_secret;     /* iFlow's token refresh; secret */
    char *settings_file;     /* iFlow: the CLI's settings.json */
    bool base_url_set;       /* base_url was written, not defaulted */
    int latency_ms;          /* mock only */
    struct cfg_health health;
    int line;
};

struct cfg_target {
    char name[CFG_TARGET_NAME_MAX];   /* "provider/model" */
    char *model;
    int provider;            /* index into providers */
    int vmodel;              /* index into vmodels */
    int weight;
    int max_concurrent;      /* 0: no per-target limit */
    long long rpm;           /* requests per minute; 0: no limit */
    long long tpm;           /* tokens per minute; 0: no limit */
};

/* What a client key stands for, beside the key (cfg.client_keys, same
 * index): a plain key has no name and no budget. */
struct cfg_client {
    char *name;              /* NULL: a plain key */
    long long rpm;           /* 0: no limit */
    long long tpm;
};

struct cfg_vmodel {
    char *name;
    enum cfg_strategy strategy;
    int first_target;        /* targets[first_target .. +target_count) */
    int target_count;
};

struct cfg_retry {
    int max_retries;
    int base_delay_ms;
    int max_delay_ms;
    double multiplier;
    enum cfg_jitter jitter;
};

struct cfg_breaker {
    bool enabled;
    int failure_threshold;
    int recovery_timeout_ms;
    int half_open_max_requests;
    double failure_rate_threshold;   /* 0: sliding-window rule off */
    int window_size;
    int minimum_calls;
};

/* `capture = { ... }`: one JSON file per request (master/capture.c).
 * configured: the group is there, so X-Pipeline-Capture: 1 captures
 * even when enabled is false. */
#define CFG_CAPTURE_DIR        "/var/lib/pipelined/capture"
#define CFG_CAPTURE_BODY       262144
#define CFG_CAPTURE_BODY_MAX   (16 * 1024 * 1024)
#define CFG_CAPTURE_FILES      10000
#define CFG_CAPTURE_FILES_MAX  1000000
#define CFG_CAPTURE_DIR_MAX    1024    /* bytes of its path */
struct cfg_capture {
    bool configured;
    bool enabled;
    char *dir;               /* absolute; made (0700) when missing */
    int max_body_bytes;
    int max_files;
};

/* `cluster = { ... }`: several instances share breakers and an instance
 * list through Redis (master/cluster.c, cfgcluster.c). Absent
 * (configured false): single-instance, no Redis code runs. */
#define CFG_CLUSTER_PREFIX     "rcc:"
struct cfg_cluster {
    bool configured;
    char *redis;             /* as written: "HOST:PORT" or "unix:/path" */
    char *host;              /* its host, or the socket's path */
    int port;                /* 0: a Unix socket */
    char *key_prefix;        /* before every key and the channel */
    char *instance;          /* NULL: HOST:PID, made at start */
    char *password_env;      /* NULL: no AUTH; else the variable holding
                                the password (never logged) */
};

struct cfg {
    char *path;
    char *listen;            /* as written, for messages */
    char *listen_host;
    int listen_port;
    char *control_socket;
    int workers;
    int max_concurrent_requests;
    int max_concurrent_per_worker;   /* one worker's share of the above */
    int queue_capacity;
    long long max_body_bytes;
    long long body_arena_bytes;
    int request_timeout_ms;
    int connect_timeout_ms;
    int idle_timeout_ms;     /* an attempt with no bytes for this long */
    struct cfg_limits {      /* what one client may do */
        int max_connections;
        int max_request_line;
        int max_header_bytes;
        int max_headers;
        int header_timeout_ms;     /* to send a whole request head */
        int body_timeout_ms;       /* then its whole body; else 408 */
        int keepalive_timeout_ms;  /* idle between requests */
        int keepalive_requests;    /* per connection; 0: no limit */
    } limits;
    int shutdown_timeout_ms;
    enum log_level log_level;
    char *log_file;
    /* `user` / `group`: started as root, the workers (and every token
     * file write) run as this identity; NULL user: they stay who the
     * master is. Resolved when loaded (a name unknown to the system is a
     * FILE:LINE error). */
    char *user;
    char *group;             /* NULL: the user's own group */
    struct privs_id run_as;  /* valid when user is set */
    struct cfg_retry retry;
    struct cfg_breaker breaker;
    char **client_keys;      /* secrets */
    struct cfg_client *clients;   /* per key: its name and budget */
    int client_key_count;
    struct cfg_provider *providers;
    int provider_count;
    struct cfg_target *targets;
    int target_count;
    struct cfg_vmodel *vmodels;
    int vmodel_count;
    struct cfg_capture capture;
    struct cfg_cluster cluster;
};

/* Loads and validates path. Returns a cfg the caller frees with
 * cfg_free(), or NULL with "FILE:LINE: message" in err. Warnings that do
 * not stop the load (an unset api_key_env) go to warn_log when not NULL. */
struct cfg *cfg_load(const char *path, char *err, size_t errlen,
                     const struct log *warn_log);

/* Frees cfg and nulls the caller's pointer; NULL-safe. */
void cfg_free(struct cfg **cfg);

/* Whether new can replace old without a restart: what sizes the shared
 * segment (queue_capacity, max_concurrent_requests, body_arena_bytes),
 * the listen address and the control socket must stay; targets and
 * virtual models may change freely. 0, or -1 with the first difference
 * in err. */
int cfg_reload_check(const struct cfg *old, const struct cfg *new_cfg,
                     char *err, size_t errlen);

/* Index of the virtual model or target named name, or -1. */
int cfg_find_vmodel(const struct cfg *cfg, const char *name);
int cfg_find_target(const struct cfg *cfg, const char *name);

const char *cfg_provider_type_name(enum cfg_provider_type type);
const char *cfg_strategy_name(enum cfg_strategy strategy);

#endif
