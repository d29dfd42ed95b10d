/* cfgread.h - reading libconfig settings for config.c and the provider
 * kinds' config readers (provkind.h): typed getters with ranges and
 * defaults, unknown-key checks, groups and lists, and one error format,
 * FILE:LINE: message, for the first problem found. Getters return 0 or
 * -1 after cfg_fail; strings they return are malloc'd and owned by the
 * struct cfg being built (cfg_free frees them). */
#ifndef RCC_CFGREAD_H
#define RCC_CFGREAD_H

#include <stdbool.h>
#include <stddef.h>

#include <libconfig.h>

#include "log.h"

/* State of one load: the file name for messages and the error buffer. */
struct cfg_loader {
    const char *path;
    char *err;
    size_t errlen;
    const struct log *warn_log;
};

/* Writes "FILE:LINE: message" into ld->err; returns -1. */
int cfg_fail(struct cfg_loader *ld, const config_setting_t *at,
             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A group's member; an absent group (NULL) has none. */
const config_setting_t *cfg_member(const config_setting_t *grp,
                                   const char *key);
const char *cfg_type_name(int type);
int cfg_check_keys(struct cfg_loader *ld, const config_setting_t *grp,
                   const char *what, const char *const *allowed);
int cfg_get_int(struct cfg_loader *ld, const config_setting_t *grp,
                const char *key, long long min, long long max,
                long long def, long long *out);
int cfg_get_i(struct cfg_loader *ld, const config_setting_t *grp,
              const char *key, long long min, long long max,
              long long def, int *out);
int cfg_get_float(struct cfg_loader *ld, const config_setting_t *grp,
                  const char *key, double min, double max, double def,
                  double *out);
int cfg_get_bool(struct cfg_loader *ld, const config_setting_t *grp,
                 const char *key, bool def, bool *out);
int cfg_get_str(struct cfg_loader *ld, const config_setting_t *grp,
                const char *key, bool required, const char *def,
                char **out);
int cfg_get_enum(struct cfg_loader *ld, const config_setting_t *grp,
                 const char *key, const char *const *names, int def,
                 int *out);
void cfg_trim_url(char *url);
int cfg_expand_home(struct cfg_loader *ld, const config_setting_t *grp,
                    const char *key, char **path);
int cfg_get_list(struct cfg_loader *ld, const config_setting_t *root,
                 const char *key, int max,
                 const config_setting_t **out);
int cfg_get_group(struct cfg_loader *ld, const config_setting_t *root,
                  const char *key, const char *const *allowed,
                  const config_setting_t **out);

#endif
