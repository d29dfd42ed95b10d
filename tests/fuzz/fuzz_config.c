/* fuzz_config.c - libFuzzer target for cfg_load(): the input is a
 * configuration file. It is written to one temporary file per process
 * (made once with mkstemp, rewritten each run) and loaded with no warning
 * log. A refusal must read "FILE:LINE: message"; an accepted
 * configuration must hold the invariants the daemon relies on (indices
 * in range, names within bounds, lookups finding what was loaded), and
 * cfg_free() must release all of it (LeakSanitizer checks). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define FUZZ_CFG_TEMPLATE "/tmp/rcc-fuzz-config.XXXXXX"
#define FUZZ_CFG_MAX_PORT 65535

/* libconfig opens any file an @include names, relative to the working
 * directory: a fuzzer could make it read /dev/zero or the host's files,
 * which is neither deterministic nor this parser's code. */
#define FUZZ_CFG_INCLUDE "@include"

/* libconfig 1.5 (Debian's libconfig9 1.5-0.4) leaks in its scanner on
 * some syntax errors: a string token where the grammar wants a name (the
 * 2-byte file 22 22 leaks 1 byte), or a quoted string holding a NUL byte
 * before its closing quote (22 00 22 leaks 64). Those are the library's
 * leaks, not ours; LeakSanitizer reads this hook at start-up. Settings
 * the parser builds are not covered, so a missing config_destroy() would
 * still be reported. */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig_yylex\nleak:strbuf_append\n";
}

static char fuzz_cfg_path[] = FUZZ_CFG_TEMPLATE;
static int fuzz_cfg_fd = -1;

static void fuzz_cfg_cleanup(void)
{
    if (fuzz_cfg_fd >= 0) {
        close(fuzz_cfg_fd);
        unlink(fuzz_cfg_path);
        fuzz_cfg_fd = -1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_cfg_fd = mkstemp(fuzz_cfg_path);
    FUZZ_CHECK(fuzz_cfg_fd >= 0, "mkstemp %s failed", fuzz_cfg_path);
    atexit(fuzz_cfg_cleanup);
    return 0;
}

static void fuzz_cfg_write(const uint8_t *data, size_t size)
{
    size_t done = 0;

    FUZZ_CHECK(ftruncate(fuzz_cfg_fd, 0) == 0, "ftruncate failed");
    while (done < size) {
        ssize_t n = pwrite(fuzz_cfg_fd, data + done, size - done,
                           (off_t)done);

        FUZZ_CHECK(n > 0, "pwrite failed");
        done += (size_t)n;
    }
}

/* "FILE:LINE: message", FILE being the path given to cfg_load() and
 * LINE one of the input's lines (an empty input has line 1). */
static void fuzz_cfg_check_error(const char *err, const uint8_t *data,
                                 size_t size)
{
    size_t plen = strlen(fuzz_cfg_path);
    const char *p = err + plen;
    long line = 0, lines = size > 0 && data[size - 1] != '\n';

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';

    FUZZ_CHECK(strncmp(err, fuzz_cfg_path, plen) == 0 && *p == ':',
               "error does not start with the file name: \"%s\"", err);
    p++;
    FUZZ_CHECK(isdigit((unsigned char)*p), "no line number: \"%s\"", err);
    while (isdigit((unsigned char)*p))
        line = line * 10 + (*p++ - '0');
    FUZZ_CHECK(line >= 1 && line <= (lines > 0 ? lines : 1),
               "line %ld of a %ld-line file: \"%s\"", line, lines, err);
    FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0',
               "not FILE:LINE: message: \"%s\"", err);
}

static void fuzz_cfg_check_loaded(const struct cfg *cfg)
{
    FUZZ_CHECK(strcmp(cfg->path, fuzz_cfg_path) == 0, "path not kept");
    FUZZ_CHECK(cfg->listen != NULL && cfg->listen_host != NULL &&
               cfg->listen_host[0] != '\0' && cfg->listen_port >= 1 &&
               cfg->listen_port <= FUZZ_CFG_MAX_PORT, "bad listen address");
    FUZZ_CHECK(cfg->workers >= 1 && cfg->workers <= CFG_MAX_WORKERS,
               "workers %d", cfg->workers);
    FUZZ_CHECK(cfg->max_body_bytes <= cfg->body_arena_bytes,
               "arena smaller than a body");
    FUZZ_CHECK(cfg->retry.base_delay_ms <= cfg->retry.max_delay_ms,
               "retry delays out of order");
    FUZZ_CHECK(cfg->capture.dir != NULL && cfg->capture.dir[0] == '/' &&
               strlen(cfg->capture.dir) <= CFG_CAPTURE_DIR_MAX &&
               cfg->capture.max_body_bytes >= 0 &&
               cfg->capture.max_body_bytes <= CFG_CAPTURE_BODY_MAX &&
               cfg->capture.max_files >= 1 &&
               cfg->capture.max_files <= CFG_CAPTURE_FILES_MAX &&
               (cfg->capture.configured || !cfg->capture.enabled),
               "bad capture group");
    FUZZ_CHECK(cfg->provider_count >= 1 &&
               cfg->provider_count <= CFG_MAX_PROVIDERS,
               "%d providers", cfg->provider_count);
    FUZZ_CHECK(cfg->vmodel_count >= 1 && cfg->vmodel_count <= CFG_MAX_VMODELS,
               "%d virtual models", cfg->vmodel_count);
    FUZZ_CHECK(cfg->target_count >= cfg->vmodel_count &&
               cfg->target_count <= CFG_MAX_TARGETS,
               "%d targets", cfg->target_count);
    for (int i = 0; i < cfg->client_key_count; i++) {
        const struct cfg_client *cc = &cfg->clients[i];

        FUZZ_CHECK(cfg->client_keys[i] != NULL &&
                   cfg->client_keys[i][0] != '\0', "empty client key");
        /* A name labels logs and metrics: never empty, never "-", no
         * byte that needs quoting; limits in range; one name, one
         * budget. */
        FUZZ_CHECK(cc->name == NULL ||
                   (cc->name[0] != '\0' && strcmp(cc->name, "-") != 0 &&
                    strspn(cc->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
                           "KLMNOPQRSTUVWXYZ0123456789-_.") ==
                    strlen(cc->name)), "bad client name");
        FUZZ_CHECK(cc->rpm >= 0 && cc->rpm <= CFG_MAX_RPM && cc->tpm >= 0 &&
                   cc->tpm <= CFG_MAX_TPM, "client limits out of range");
        FUZZ_CHECK(cc->name != NULL || (cc->rpm == 0 && cc->tpm == 0),
                   "a plain key with limits");
        for (int j = 0; cc->name != NULL && j < i; j++)
            FUZZ_CHECK(cfg->clients[j].name == NULL ||
                       strcmp(cfg->clients[j].name, cc->name) != 0 ||
                       (cfg->clients[j].rpm == cc->rpm &&
                        cfg->clients[j].tpm == cc->tpm),
                       "one client name with two budgets");
    }
    for (int t = 0; t < cfg->target_count; t++)
        FUZZ_CHECK(cfg->targets[t].rpm >= 0 &&
                   cfg->targets[t].rpm <= CFG_MAX_RPM &&
                   cfg->targets[t].tpm >= 0 &&
                   cfg->targets[t].tpm <= CFG_MAX_TPM,
                   "target limits out of range");
    for (int i = 0; i < cfg->provider_count; i++) {
        const struct cfg_provider *p = &cfg->providers[i];

        FUZZ_CHECK(p->name != NULL && p->name[0] != '\0' &&
                   strlen(p->name) < CFG_NAME_MAX &&
                   strchr(p->name, '/') == NULL, "bad provider name");
        FUZZ_CHECK(cfg_provider_type_name(p->type) != NULL,
                   "provider type %d has no name", p->type);
        FUZZ_CHECK(p->health.interval_ms == 0 ||
                   (p->health.timeout_ms > 0 &&
                    p->health.timeout_ms <= p->health.interval_ms &&
                    p->health.unhealthy_after >= 1 &&
                    p->health.healthy_after >= 1),
                   "provider \"%s\": health_check out of range", p->name);
        FUZZ_CHECK(p->type == CFG_PROVIDER_MOCK || p->base_url != NULL ||
                   p->auth == CFG_AUTH_OAUTH,
                   "provider \"%s\" has no base_url", p->name);
        if (p->base_url != NULL) {
            size_t n = strlen(p->base_url);

            FUZZ_CHECK(n == 0 || p->base_url[n - 1] != '/',
                       "base_url keeps a trailing slash");
        }
    }
    for (int v = 0; v < cfg->vmodel_count; v++) {
        const struct cfg_vmodel *vm = &cfg->vmodels[v];

        FUZZ_CHECK(vm->name != NULL && strlen(vm->name) < CFG_NAME_MAX &&
                   strchr(vm->name, '/') == NULL, "bad virtual model name");
        FUZZ_CHECK(cfg_strategy_name(vm->strategy) != NULL,
                   "strategy %d has no name", vm->strategy);
        FUZZ_CHECK(cfg_find_vmodel(cfg, vm->name) == v,
                   "virtual model \"%s\" not found at %d", vm->name, v);
        FUZZ_CHECK(vm->target_count >= 1 && vm->first_target >= 0 &&
                   vm->first_target + vm->target_count <= cfg->target_count,
                   "virtual model \"%s\" targets out of range", vm->name);
        for (int t = vm->first_target;
             t < vm->first_target + vm->target_count; t++) {
            const struct cfg_target *tg = &cfg->targets[t];

            FUZZ_CHECK(tg->vmodel == v, "target %d in the wrong model", t);
            FUZZ_CHECK(tg->provider >= 0 &&
                       tg->provider < cfg->provider_count,
                       "target %d names provider %d", t, tg->provider);
            FUZZ_CHECK(memchr(tg->name, '\0', sizeof(tg->name)) != NULL &&
                       tg->model != NULL && strlen(tg->model) < CFG_NAME_MAX,
                       "bad target name");
            FUZZ_CHECK(cfg_find_target(cfg, tg->name) >= 0,
                       "target \"%s\" not found", tg->name);
            FUZZ_CHECK(tg->weight >= 1, "target weight %d", tg->weight);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CFG_ERR_MAX];
    struct cfg *cfg;

    if (memmem(data, size, FUZZ_CFG_INCLUDE, strlen(FUZZ_CFG_INCLUDE)))
        return 0;
    fuzz_cfg_write(data, size);
    err[0] = '\0';
    cfg = cfg_load(fuzz_cfg_path, err, sizeof(err), NULL);
    if (cfg == NULL) {
        fuzz_cfg_check_error(err, data, size);
        return 0;
    }
    fuzz_cfg_check_loaded(cfg);
    cfg_free(&cfg);
    FUZZ_CHECK(cfg == NULL, "cfg_free did not null the pointer");
    return 0;
}
