/* test_provkind.c - the provider kind descriptors (provkind.h): the
 * table is complete and consistent, every descriptor says what its auth
 * modes need, the Bearer signature and URL joining. */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "config.h"
#include "provkind.h"
#include "provsign.h"
#include "unit.h"

#define TPK_KINDS      5     /* enum cfg_provider_type's values */
#define TPK_LINES_MAX  8

static const enum cfg_provider_type tpk_types[TPK_KINDS] = {
    CFG_PROVIDER_MOCK, CFG_PROVIDER_OPENAI, CFG_PROVIDER_QWEN,
    CFG_PROVIDER_IFLOW, CFG_PROVIDER_ANTHROPIC
};

static void test_table(void)
{
    const char *const *names = provkind_names();
    size_t n = 0;

    for (; names[n] != NULL; n++) {
        const struct provkind *k = provkind_by_name(names[n]);

        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        CU_ASSERT_STRING_EQUAL(k->name, names[n]);
        CU_ASSERT_EQUAL((size_t)k->type, n);
        CU_ASSERT_PTR_EQUAL(provkind_of(k->type), k);
        CU_ASSERT_STRING_EQUAL(cfg_provider_type_name(k->type), k->name);
    }
    CU_ASSERT_EQUAL(n, TPK_KINDS);
    CU_ASSERT_PTR_NULL(provkind_by_name("claude"));
    for (size_t i = 0; i < TPK_KINDS; i++)
        CU_ASSERT_EQUAL(provkind_of(tpk_types[i])->type, tpk_types[i]);
}

/* What each descriptor promises is there. */
static void test_descriptors_complete(void)
{
    for (size_t i = 0; i < TPK_KINDS; i++) {
        const struct provkind *k = provkind_of(tpk_types[i]);
        size_t params = 0;

        CU_ASSERT_PTR_NOT_NULL(k->label);
        CU_ASSERT_PTR_NOT_NULL(k->sign);
        CU_ASSERT(k->chat_path != NULL && k->chat_path[0] == '/');
        CU_ASSERT(k->models_path != NULL && k->models_path[0] == '/');
        CU_ASSERT(provkind_takes(k, k->default_auth));
        CU_ASSERT_EQUAL(k->simulated, provkind_takes(k, CFG_AUTH_NONE));
        CU_ASSERT_EQUAL(provkind_takes(k, CFG_AUTH_OAUTH), k->oauth != NULL);
        for (const struct provkind_param *p = k->params; p && p->key; p++)
            params++;
        CU_ASSERT(params <= PROVKIND_COMPAT_MAX);
        if (k->oauth != NULL) {
            const struct provkind_oauth *o = k->oauth;

            CU_ASSERT(o->token_file != NULL && o->base_url != NULL &&
                      o->token_path != NULL);
            /* Logs in here (device flow), or says where else. */
            CU_ASSERT((o->device_path != NULL) != (o->login_elsewhere != NULL));
            if (o->device_path != NULL) {
                CU_ASSERT(o->scope != NULL && o->client_id != NULL);
            }
            /* A Bearer key from getUserInfo comes with a settings file
             * and a base of its own. */
            if (o->base_from_settings) {
                CU_ASSERT(o->settings_file != NULL &&
                          k->base_url_oauth != NULL);
            } else {
                CU_ASSERT(k->base_url_api_key != NULL);
            }
        }
    }
    CU_ASSERT(provkind_of(CFG_PROVIDER_OPENAI)->base_url_required);
    CU_ASSERT(provkind_of(CFG_PROVIDER_MOCK)->simulated);
}

static void test_params(void)
{
    const struct provkind_param *p = provkind_of(CFG_PROVIDER_QWEN)->params;
    bool renamed = false;

    for (; p->key != NULL; p++)
        if (strcmp(p->key, "max_completion_tokens") == 0)
            renamed = p->rename_to != NULL &&
                      strcmp(p->rename_to, "max_tokens") == 0;
    CU_ASSERT(renamed);
    CU_ASSERT_PTR_NULL(provkind_of(CFG_PROVIDER_OPENAI)->params);
}

struct tpk_lines {
    char line[TPK_LINES_MAX][PROVKIND_HEADER_MAX];
    int n;
    int fail_at;           /* the add that fails, -1 none */
};

static int tpk_add(void *arg, const char *line)
{
    struct tpk_lines *l = arg;

    if (l->n == l->fail_at || l->n == TPK_LINES_MAX)
        return -1;
    snprintf(l->line[l->n++], PROVKIND_HEADER_MAX, "%s", line);
    return 0;
}

static void test_sign_bearer(void)
{
    struct tpk_lines l = { .fail_at = -1 };

    CU_ASSERT_EQUAL(provsign_bearer("sk-1", true, tpk_add, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 4);
    CU_ASSERT_STRING_EQUAL(l.line[0], "Content-Type: application/json");
    CU_ASSERT_STRING_EQUAL(l.line[1], "Accept: text/event-stream");
    CU_ASSERT_STRING_EQUAL(l.line[2], "Expect:");
    CU_ASSERT_STRING_EQUAL(l.line[3], "Authorization: Bearer sk-1");
    memset(&l, 0, sizeof(l));
    l.fail_at = -1;
    CU_ASSERT_EQUAL(provsign_bearer(NULL, false, tpk_add, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 3);
    CU_ASSERT_STRING_EQUAL(l.line[1], "Accept: application/json");
    memset(&l, 0, sizeof(l));
    l.fail_at = 3;        /* the key's line fails: so does the signing */
    CU_ASSERT_EQUAL(provsign_bearer("sk-1", false, tpk_add, &l), -1);
}

/* The anthropic kind: x-api-key and anthropic-version, /messages,
 * Anthropic's own base URL by default, an API key only. */
static void test_anthropic_kind(void)
{
    const struct provkind *k = provkind_by_name("anthropic");
    struct tpk_lines l = { .fail_at = -1 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k->chat_path, "/messages");
    CU_ASSERT_STRING_EQUAL(k->models_path, "/models");
    CU_ASSERT_STRING_EQUAL(k->base_url_api_key, "https://api.anthropic.com/v1");
    CU_ASSERT_FALSE(k->base_url_required);
    CU_ASSERT(provkind_takes(k, CFG_AUTH_API_KEY));
    CU_ASSERT_FALSE(provkind_takes(k, CFG_AUTH_OAUTH));
    CU_ASSERT_EQUAL(k->sign("sk-ant-1", true, tpk_add, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 5);
    CU_ASSERT_STRING_EQUAL(l.line[0], "Content-Type: application/json");
    CU_ASSERT_STRING_EQUAL(l.line[1], "Accept: text/event-stream");
    CU_ASSERT_STRING_EQUAL(l.line[2], "anthropic-version: 2023-06-01");
    CU_ASSERT_STRING_EQUAL(l.line[4], "x-api-key: sk-ant-1");
    for (int i = 0; i < l.n; i++)
        CU_ASSERT_PTR_NULL(strstr(l.line[i], "Authorization"));
    memset(&l, 0, sizeof(l));
    l.fail_at = 4;        /* the key's line fails: so does the signing */
    CU_ASSERT_EQUAL(k->sign("sk-ant-1", false, tpk_add, &l), -1);
}

static void test_url(void)
{
    char out[32];

    CU_ASSERT_EQUAL(provkind_url("http://h/v1", "/chat/completions", out,
                                 sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "http://h/v1/chat/completions");
    CU_ASSERT_EQUAL(provkind_url("http://a-much-longer-host/v1",
                                 "/chat/completions", out, sizeof(out)), -1);
}

static const CU_TestInfo provkind_tests[] = {
    { "the table: one descriptor per kind, in enum order", test_table },
    { "each descriptor holds what its auth modes need",
      test_descriptors_complete },
    { "parameter rules: Qwen renames max_completion_tokens", test_params },
    { "Bearer signature: lines, no key, a failed add", test_sign_bearer },
    { "base URL + path, and one too long", test_url },
    { "anthropic: x-api-key, anthropic-version, /messages",
      test_anthropic_kind },
    CU_TEST_INFO_NULL
};

int register_provkind_tests(void)
{
    return unit_add_suite("provkind", provkind_tests);
}
