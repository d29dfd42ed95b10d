/* cfgclient.h - the client keys written as groups in clients.api_keys,
 * { key = "..."; name = "team-a"; rpm = 600; tpm = 100000; }, beside
 * plain strings: read and checked for config.c, with FILE:LINE errors.
 * The key goes to cfg->client_keys[i] (a secret, like a plain key), the
 * name and limits to cfg->clients[i]. */
#ifndef RCC_CFGCLIENT_H
#define RCC_CFGCLIENT_H

#include <libconfig.h>

#include "cfgread.h"
#include "config.h"

/* The longest client name (it labels log lines and metrics). */
#define CFG_CLIENT_NAME_MAX 64

/* Reads group k as client key i of cfg (cfg->client_keys and
 * cfg->clients are allocated); counts it in cfg->client_key_count. 0, or
 * -1 after cfg_fail. */
int cfg_load_client_key(struct cfg_loader *ld, const config_setting_t *k,
                        struct cfg *cfg, int i);

/* After every key is read: keys that share a name are one client and
 * must carry the same limits. 0, or -1 after cfg_fail at keys' entry. */
int cfg_check_client_names(struct cfg_loader *ld,
                           const config_setting_t *keys,
                           const struct cfg *cfg);

#endif
