/* cfgread.c - typed, range-checked reading of libconfig settings with
 * FILE:LINE errors; see cfgread.h. */
#include "cfgread.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int cfg_fail(struct cfg_loader *ld, const config_setting_t *at,
             const char *fmt, ...)
{
    char msg[CFG_ERR_MAX];
    /* The root setting has line 0: a rule about the whole file is
     * reported at its first line, so FILE:LINE always names a line. */
    int line = at && config_setting_source_line(at) > 0 ?
               config_setting_source_line(at) : 1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path, line, msg);
    return -1;
}

/* A group's member; an absent group (NULL) has none, so every key of it
 * takes its default. */
const config_setting_t *cfg_member(const config_setting_t *grp,
                                   const char *key)
{
    return grp ? config_setting_get_member(grp, key) : NULL;
}

const char *cfg_type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:  return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:  return "an integer";
    case CONFIG_TYPE_FLOAT:  return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL:   return "a boolean";
    case CONFIG_TYPE_ARRAY:  return "an array";
    case CONFIG_TYPE_LIST:   return "a list";
    default:                 return "a value";
    }
}

/* Every child of group must be named in allowed (NULL-terminated). */
int cfg_check_keys(struct cfg_loader *ld, const config_setting_t *grp,
                   const char *what, const char *const *allowed)
{
    int n = config_setting_length(grp);

    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(grp, i);
        const char *name = config_setting_name(s);
        bool known = false;

        for (const char *const *a = allowed; *a != NULL; a++)
            if (name != NULL && strcmp(name, *a) == 0)
                known = true;
        if (!known)
            return cfg_fail(ld, s, "unknown key '%s' in %s",
                            name ? name : "?", what);
    }
    return 0;
}

int cfg_get_int(struct cfg_loader *ld, const config_setting_t *grp,
                const char *key, long long min, long long max,
                long long def, long long *out)
{
    const config_setting_t *s = cfg_member(grp, key);
    long long v;

    if (s == NULL) {
        *out = def;
        return 0;
    }
    if (config_setting_type(s) == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    else if (config_setting_type(s) == CONFIG_TYPE_INT64)
        v = config_setting_get_int64(s);
    else
        return cfg_fail(ld, s, "'%s' must be an integer, not %s", key,
                        cfg_type_name(config_setting_type(s)));
    if (v < min || v > max)
        return cfg_fail(ld, s, "'%s' must be between %lld and %lld, not %lld",
                        key, min, max, v);
    *out = v;
    return 0;
}

/* cfg_get_int for int-sized fields. */
int cfg_get_i(struct cfg_loader *ld, const config_setting_t *grp,
              const char *key, long long min, long long max,
              long long def, int *out)
{
    long long v;

    if (cfg_get_int(ld, grp, key, min, max, def, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cfg_get_float(struct cfg_loader *ld, const config_setting_t *grp,
                  const char *key, double min, double max, double def,
                  double *out)
{
    const config_setting_t *s = cfg_member(grp, key);
    double v;

    if (s == NULL) {
        *out = def;
        return 0;
    }
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_FLOAT: v = config_setting_get_float(s); break;
    case CONFIG_TYPE_INT:   v = config_setting_get_int(s); break;
    case CONFIG_TYPE_INT64: v = (double)config_setting_get_int64(s); break;
    default:
        return cfg_fail(ld, s, "'%s' must be a number, not %s", key,
                        cfg_type_name(config_setting_type(s)));
    }
    if (!(v >= min && v <= max))
        return cfg_fail(ld, s, "'%s' must be between %g and %g, not %g",
                        key, min, max, v);
    *out = v;
    return 0;
}

int cfg_get_bool(struct cfg_loader *ld, const config_setting_t *grp,
                 const char *key, bool def, bool *out)
{
    const config_setting_t *s = cfg_member(grp, key);

    if (s == NULL) {
        *out = def;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return cfg_fail(ld, s, "'%s' must be true or false, not %s", key,
                        cfg_type_name(config_setting_type(s)));
    *out = config_setting_get_bool(s) != 0;
    return 0;
}

/* Reads a string into *out (strdup; freed by cfg_free). A missing key
 * yields def (which may be NULL) unless required. */
int cfg_get_str(struct cfg_loader *ld, const config_setting_t *grp,
                const char *key, bool required, const char *def,
                char **out)
{
    const config_setting_t *s = cfg_member(grp, key);
    const char *v;

    if (s == NULL) {
        if (required)
            return cfg_fail(ld, grp, "missing required key '%s'", key);
        v = def;
    } else {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return cfg_fail(ld, s, "'%s' must be a string, not %s", key,
                            cfg_type_name(config_setting_type(s)));
        v = config_setting_get_string(s);
        if (v[0] == '\0')
            return cfg_fail(ld, s, "'%s' must not be empty", key);
    }
    if (v == NULL) {
        *out = NULL;
        return 0;
    }
    *out = strdup(v);
    if (*out == NULL)
        return cfg_fail(ld, grp, "out of memory");
    return 0;
}

/* Maps a string key onto one of names[]; the index goes to *out. */
int cfg_get_enum(struct cfg_loader *ld, const config_setting_t *grp,
                 const char *key, const char *const *names, int def,
                 int *out)
{
    const config_setting_t *s = cfg_member(grp, key);
    const char *v;
    char choices[CFG_ERR_MAX / 2] = "";

    if (s == NULL) {
        *out = def;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return cfg_fail(ld, s, "'%s' must be a string, not %s", key,
                        cfg_type_name(config_setting_type(s)));
    v = config_setting_get_string(s);
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
        if (i > 0)
            strncat(choices, " | ", sizeof(choices) - strlen(choices) - 1);
        strncat(choices, names[i], sizeof(choices) - strlen(choices) - 1);
    }
    return cfg_fail(ld, s, "'%s' must be one of %s, not \"%s\"", key,
                    choices, v);
}
/* Drops trailing slashes so paths can be appended with one '/'. */
void cfg_trim_url(char *url)
{
    size_t n = url ? strlen(url) : 0;

    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

/* A path starting with "~/" is taken from $HOME (the daemon's user's
 * home, as the Qwen and iFlow CLIs write there). */
int cfg_expand_home(struct cfg_loader *ld, const config_setting_t *grp,
                    const char *key, char **path)
{
    const char *home;
    char *full;

    if (*path == NULL || strncmp(*path, "~/", 2) != 0)
        return 0;
    home = getenv("HOME");
    if (home == NULL || home[0] != '/')
        return cfg_fail(ld, cfg_member(grp, key) ? cfg_member(grp, key) : grp,
                        "'%s' starts with '~' but HOME is not set to an "
                        "absolute path", key);
    if (asprintf(&full, "%s%s", home, *path + 1) < 0)
        return cfg_fail(ld, grp, "out of memory");
    free(*path);
    *path = full;
    return 0;
}


/* A list setting at root: NULL when absent; -1 when present but wrong. */
int cfg_get_list(struct cfg_loader *ld, const config_setting_t *root,
                 const char *key, int max,
                 const config_setting_t **out)
{
    const config_setting_t *s = config_setting_get_member(root, key);

    *out = NULL;
    if (s == NULL)
        return cfg_fail(ld, root, "missing required list '%s'", key);
    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return cfg_fail(ld, s, "'%s' must be a list ( ... ), not %s", key,
                        cfg_type_name(config_setting_type(s)));
    if (config_setting_length(s) == 0)
        return cfg_fail(ld, s, "'%s' must not be empty", key);
    if (config_setting_length(s) > max)
        return cfg_fail(ld, s, "'%s' holds more than %d entries", key, max);
    *out = s;
    return 0;
}

/* Reads an optional group; *out is NULL when absent. */
int cfg_get_group(struct cfg_loader *ld, const config_setting_t *root,
                  const char *key, const char *const *allowed,
                  const config_setting_t **out)
{
    const config_setting_t *s = config_setting_get_member(root, key);

    *out = s;
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfg_fail(ld, s, "'%s' must be a group { ... }, not %s", key,
                        cfg_type_name(config_setting_type(s)));
    return cfg_check_keys(ld, s, key, allowed);
}
