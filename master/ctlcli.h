/* ctlcli.h - the pure parts of pipelinectl (pipelinectl.c): reading its
 * command line, with options accepted before or after the command, and
 * writing a worker's age for the tables. No I/O; unit-tested
 * (tests/unit/test_ctlcli.c). */
#ifndef RCC_CTLCLI_H
#define RCC_CTLCLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTLCLI_ERR_MAX 128
/* "99d23h", "23h59m", "59m59s", "59s", plus room to spare. */
#define CTLCLI_AGE_MAX 24

struct ctlcli_args {
    const char *socket;     /* -s SOCKET; NULL when not given */
    const char *config;     /* -c CONFIG; NULL when not given */
    bool json;              /* --json */
    bool help;              /* -h, --help */
    int word_count;         /* the command and its arguments, in order */
    const char **words;     /* argv's strings (not copied); argc slots */
};

/* Splits argv[1..argc-1] into options and words. Options may come
 * anywhere: -s SOCKET (or -sSOCKET), -c CONFIG (or -cCONFIG), --json,
 * -h, --help. A '-' followed by a digit is a word (scale -2), as is
 * everything after "--". words must have room for argc pointers.
 * 0, or -1 with the reason in err (an unknown option, a missing value). */
int ctlcli_parse(int argc, char **argv, const char **words,
                 struct ctlcli_args *out, char *err, size_t err_len);

/* Writes the age of something started at started_s (Unix seconds) as seen
 * at now_s: "45s", "3m12s", "2h05m", "4d07h"; "0s" for a start in the
 * future (clocks apart). Returns buf. */
char *ctlcli_format_age(int64_t started_s, int64_t now_s, char *buf,
                        size_t len);

#endif
