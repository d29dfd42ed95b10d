/* provkind.c - the table of provider kinds (one line per kind, in enum
 * cfg_provider_type order) and the look-ups over it. See provkind.h. */
#include "provkind.h"

#include <stdio.h>
#include <string.h>

static const struct provkind *const provkind_table[] = {
    [CFG_PROVIDER_MOCK] = &provkind_mock,
    [CFG_PROVIDER_OPENAI] = &provkind_openai,
    [CFG_PROVIDER_QWEN] = &provkind_qwen,
    [CFG_PROVIDER_IFLOW] = &provkind_iflow,
    [CFG_PROVIDER_ANTHROPIC] = &provkind_anthropic,
};

#define PROVKIND_COUNT (sizeof(provkind_table) / sizeof(provkind_table[0]))

static const char *provkind_name_list[PROVKIND_COUNT + 1] = {
    "mock", "openai", "qwen", "iflow", "anthropic", NULL
};

const struct provkind *provkind_of(enum cfg_provider_type type)
{
    return (size_t)type < PROVKIND_COUNT ? provkind_table[type]
                                         : &provkind_openai;
}

const struct provkind *provkind_by_name(const char *name)
{
    for (size_t i = 0; i < PROVKIND_COUNT; i++)
        if (strcmp(provkind_table[i]->name, name) == 0)
            return provkind_table[i];
    return NULL;
}

const char *const *provkind_names(void)
{
    return provkind_name_list;
}

bool provkind_takes(const struct provkind *k, enum cfg_auth auth)
{
    return (k->auth_modes & PROVKIND_AUTH(auth)) != 0;
}

int provkind_url(const char *base, const char *path, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", base, path);

    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
