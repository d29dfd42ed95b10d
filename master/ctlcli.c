/* ctlcli.c - pipelinectl's command line and the age of a worker as the
 * tables show it; see ctlcli.h. */
#include "ctlcli.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define CTLCLI_MINUTE_S 60
#define CTLCLI_HOUR_S   (60 * CTLCLI_MINUTE_S)
#define CTLCLI_DAY_S    (24 * CTLCLI_HOUR_S)

/* -s and -c: the value is the rest of the word or the next word. */
static int ctlcli_value(int argc, char **argv, int *i, const char **out,
                        char *err, size_t err_len)
{
    const char *arg = argv[*i];

    if (arg[2] != '\0') {
        *out = arg + 2;
        return 0;
    }
    if (*i + 1 >= argc) {
        snprintf(err, err_len, "option %s needs a value", arg);
        return -1;
    }
    *out = argv[++*i];
    return 0;
}

int ctlcli_parse(int argc, char **argv, const char **words,
                 struct ctlcli_args *out, char *err, size_t err_len)
{
    bool options_end = false;

    memset(out, 0, sizeof(*out));
    out->words = words;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (options_end || arg[0] != '-' || arg[1] == '\0' ||
            isdigit((unsigned char)arg[1])) {
            words[out->word_count++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_end = true;
        } else if (strcmp(arg, "--json") == 0) {
            out->json = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            out->help = true;
        } else if (arg[1] == 's') {
            if (ctlcli_value(argc, argv, &i, &out->socket, err, err_len) < 0)
                return -1;
        } else if (arg[1] == 'c') {
            if (ctlcli_value(argc, argv, &i, &out->config, err, err_len) < 0)
                return -1;
        } else {
            snprintf(err, err_len, "unknown option %s", arg);
            return -1;
        }
    }
    return 0;
}

char *ctlcli_format_age(int64_t started_s, int64_t now_s, char *buf,
                        size_t len)
{
    int64_t age = now_s > started_s ? now_s - started_s : 0;

    if (age >= CTLCLI_DAY_S)
        snprintf(buf, len, "%lldd%02lldh", (long long)(age / CTLCLI_DAY_S),
                 (long long)(age % CTLCLI_DAY_S / CTLCLI_HOUR_S));
    else if (age >= CTLCLI_HOUR_S)
        snprintf(buf, len, "%lldh%02lldm", (long long)(age / CTLCLI_HOUR_S),
                 (long long)(age % CTLCLI_HOUR_S / CTLCLI_MINUTE_S));
    else if (age >= CTLCLI_MINUTE_S)
        snprintf(buf, len, "%lldm%02llds",
                 (long long)(age / CTLCLI_MINUTE_S),
                 (long long)(age % CTLCLI_MINUTE_S));
    else
        snprintf(buf, len, "%llds", (long long)age);
    return buf;
}
