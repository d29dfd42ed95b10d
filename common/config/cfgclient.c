/* cfgclient.c - client key groups { key; name; rpm; tpm; } of
 * clients.api_keys (cfgclient.h). A name labels log lines and metrics,
 * so it is kept to characters that need no quoting anywhere. */
#include "cfgclient.h"

#include <stdlib.h>
#include <string.h>

#include "clientbudget.h"

static const char *const cfg_client_keys[] = {
    "key", "name", "rpm", "tpm", NULL
};

static bool cfg_client_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > CFG_CLIENT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    /* "-" is what a client without a name is logged as. */
    return strcmp(name, CLIENTBUDGET_UNNAMED) != 0;
}

int cfg_load_client_key(struct cfg_loader *ld, const config_setting_t *k,
                        struct cfg *cfg, int i)
{
    struct cfg_client *c = &cfg->clients[i];

    if (cfg_check_keys(ld, k, "a client key", cfg_client_keys) < 0 ||
        cfg_get_str(ld, k, "key", true, NULL, &cfg->client_keys[i]) < 0)
        return -1;
    cfg->client_key_count++;
    if (cfg_get_str(ld, k, "name", true, NULL, &c->name) < 0 ||
        cfg_get_int(ld, k, "rpm", 1, CFG_MAX_RPM, 0, &c->rpm) < 0 ||
        cfg_get_int(ld, k, "tpm", 1, CFG_MAX_TPM, 0, &c->tpm) < 0)
        return -1;
    if (!cfg_client_name_ok(c->name))
        return cfg_fail(ld, cfg_member(k, "name"), "'name' must be 1 to "
                        "%d letters, digits, '-', '_' or '.' (not \"-\")",
                        CFG_CLIENT_NAME_MAX);
    return 0;
}

int cfg_check_client_names(struct cfg_loader *ld,
                           const config_setting_t *keys,
                           const struct cfg *cfg)
{
    struct clientbudget_entry *e;
    struct clientbudget_map *map;
    int bad = -1, rc;

    e = calloc((size_t)cfg->client_key_count + 1, sizeof(*e));
    map = malloc(sizeof(*map));
    if (e == NULL || map == NULL) {
        free(e);
        free(map);
        return cfg_fail(ld, keys, "out of memory");
    }
    for (int i = 0; i < cfg->client_key_count; i++)
        e[i] = (struct clientbudget_entry){ cfg->clients[i].name,
                                            cfg->clients[i].rpm,
                                            cfg->clients[i].tpm };
    rc = clientbudget_build(map, e, cfg->client_key_count, &bad);
    free(e);
    free(map);
    if (rc == 0)
        return 0;
    if (bad >= 0)
        return cfg_fail(ld, config_setting_get_elem(keys, (unsigned)bad),
                        "client \"%s\" is named before with other limits "
                        "(keys of one name share one budget)",
                        cfg->clients[bad].name);
    return cfg_fail(ld, keys, "bad client keys");
}
