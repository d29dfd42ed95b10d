/* cfgcluster.c - the `cluster` group (cfgcluster.h). */
#include "cfgcluster.h"

#include <stdlib.h>
#include <string.h>

#include "clusterwire.h"
#include "util.h"

#define CFG_CLUSTER_UNIX     "unix:"
#define CFG_CLUSTER_PATH_MAX 107     /* sun_path, without its NUL */
#define CFG_CLUSTER_ENV_MAX  128     /* an environment variable's name */
#define CFG_CLUSTER_PORT_MAX 65535

static const char *const cfg_cluster_keys[] = {
    "redis", "key_prefix", "instance", "password_env", NULL
};

/* "HOST:PORT" (the host may be [v6]) or "unix:/absolute/path". */
static int cfg_cluster_address(struct cfg_loader *ld,
                               const config_setting_t *at,
                               struct cfg_cluster *c)
{
    const char *s = c->redis;
    size_t ulen = strlen(CFG_CLUSTER_UNIX);

    if (strncmp(s, CFG_CLUSTER_UNIX, ulen) == 0) {
        if (s[ulen] != '/' || strlen(s + ulen) > CFG_CLUSTER_PATH_MAX)
            return cfg_fail(ld, at, "'redis' must be unix:/absolute/path "
                            "(at most %d bytes), not \"%s\"",
                            CFG_CLUSTER_PATH_MAX, s);
        c->host = strdup(s + ulen);
        c->port = 0;
    } else {
        const char *colon = strrchr(s, ':'), *host = s;
        size_t host_len;
        long long port;

        if (colon == NULL || colon == s)
            return cfg_fail(ld, at, "'redis' must be HOST:PORT or "
                            "unix:/path, not \"%s\"", s);
        host_len = (size_t)(colon - s);
        if (s[0] == '[' && host_len >= 2 && colon[-1] == ']') {
            host = s + 1;
            host_len -= 2;
        }
        if (host_len == 0 ||
            util_parse_int(colon + 1, 1, CFG_CLUSTER_PORT_MAX, &port) < 0)
            return cfg_fail(ld, at, "'redis' has a bad host or port in "
                            "\"%s\"", s);
        c->host = strndup(host, host_len);
        c->port = (int)port;
    }
    if (c->host == NULL)
        return cfg_fail(ld, at, "out of memory");
    return 0;
}

static bool cfg_cluster_env_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CFG_CLUSTER_ENV_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

int cfg_load_cluster(struct cfg_loader *ld, const config_setting_t *root,
                     struct cfg_cluster *c)
{
    const config_setting_t *g;

    if (cfg_get_group(ld, root, "cluster", cfg_cluster_keys, &g) < 0)
        return -1;
    c->configured = g != NULL;
    if (g == NULL)
        return 0;
    if (cfg_get_str(ld, g, "redis", true, NULL, &c->redis) < 0 ||
        cfg_cluster_address(ld, cfg_member(g, "redis"), c) < 0 ||
        cfg_get_str(ld, g, "key_prefix", false, CFG_CLUSTER_PREFIX,
                    &c->key_prefix) < 0 ||
        cfg_get_str(ld, g, "instance", false, NULL, &c->instance) < 0 ||
        cfg_get_str(ld, g, "password_env", false, NULL,
                    &c->password_env) < 0)
        return -1;
    if (!cw_prefix_ok(c->key_prefix))
        return cfg_fail(ld, cfg_member(g, "key_prefix"), "'key_prefix' "
                        "must be at most %d printable bytes without spaces",
                        CW_PREFIX_MAX);
    if (c->instance != NULL && !cw_instance_ok(c->instance))
        return cfg_fail(ld, cfg_member(g, "instance"), "'instance' must be "
                        "1 to %d of A-Z a-z 0-9 . _ : -", CW_INSTANCE_MAX);
    if (c->password_env != NULL && !cfg_cluster_env_ok(c->password_env))
        return cfg_fail(ld, cfg_member(g, "password_env"), "'password_env' "
                        "must name an environment variable (A-Z a-z 0-9 _)");
    return 0;
}

void cfg_cluster_free(struct cfg_cluster *c)
{
    free(c->redis);
    free(c->host);
    free(c->key_prefix);
    free(c->instance);
    free(c->password_env);
    memset(c, 0, sizeof(*c));
}

static bool cfg_cluster_str_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

bool cfg_cluster_same(const struct cfg_cluster *a,
                      const struct cfg_cluster *b)
{
    return a->configured == b->configured &&
           cfg_cluster_str_same(a->redis, b->redis) &&
           cfg_cluster_str_same(a->key_prefix, b->key_prefix) &&
           cfg_cluster_str_same(a->instance, b->instance) &&
           cfg_cluster_str_same(a->password_env, b->password_env);
}
