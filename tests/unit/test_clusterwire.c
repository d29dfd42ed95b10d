/* test_clusterwire.c - cluster mode's pure parts: key and channel names,
 * breaker messages (round trip, and the decoder refusing each kind of
 * damage), heartbeat records, the reconnect back-off, a breaker opened
 * by another instance (cb_open_remote), and the `cluster` group of the
 * configuration (defaults, addresses, refusals, the reload rule). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "breaker.h"
#include "clusterwire.h"
#include "config.h"
#include "unit.h"

#define CWT_T0        1000000
#define CWT_RECOVERY  30000
#define CWT_REMOTE    5000
#define CWT_TEMPLATE  "/tmp/rcc-unit-cluster-XXXXXX"
#define CWT_PATH_MAX  64
#define CWT_TEXT_MAX  1024
#define MINIMAL_CONF  "providers = ( { name = \"p\"; type = \"mock\"; } );\n" \
                      "virtual_models = ( { name = \"v\"; targets = " \
                      "( { provider = \"p\"; model = \"m\"; } ); } );\n"

static void test_keys(void)
{
    char key[CW_KEY_MAX], small[8];

    CU_ASSERT_EQUAL(cw_key(key, sizeof(key), "rcc:", "breaker",
                           "openai/gpt-4o"), 0);
    CU_ASSERT_STRING_EQUAL(key, "rcc:breaker:openai/gpt-4o");
    CU_ASSERT_EQUAL(cw_key(key, sizeof(key), "rcc:", "instance", "gw-a"), 0);
    CU_ASSERT_STRING_EQUAL(key, "rcc:instance:gw-a");
    CU_ASSERT_EQUAL(cw_channel(key, sizeof(key), "x/", "breakers"), 0);
    CU_ASSERT_STRING_EQUAL(key, "x/breakers");
    CU_ASSERT_EQUAL(cw_key(small, sizeof(small), "rcc:", "breaker", "a"), -1);
    CU_ASSERT_EQUAL(cw_channel(small, sizeof(small), "rcc:", "breakers"), -1);
}

static void test_names(void)
{
    char longest[CW_INSTANCE_MAX + 2];

    CU_ASSERT_TRUE(cw_instance_ok("gw-a"));
    CU_ASSERT_TRUE(cw_instance_ok("host.example:1234"));
    CU_ASSERT_TRUE(cw_instance_ok("A_b.9"));
    CU_ASSERT_FALSE(cw_instance_ok(""));
    CU_ASSERT_FALSE(cw_instance_ok("a b"));
    CU_ASSERT_FALSE(cw_instance_ok("a|b"));
    CU_ASSERT_FALSE(cw_instance_ok("é"));
    memset(longest, 'a', sizeof(longest));
    longest[CW_INSTANCE_MAX] = '\0';
    CU_ASSERT_TRUE(cw_instance_ok(longest));
    longest[CW_INSTANCE_MAX] = 'a';
    longest[CW_INSTANCE_MAX + 1] = '\0';
    CU_ASSERT_FALSE(cw_instance_ok(longest));
    CU_ASSERT_TRUE(cw_prefix_ok("rcc:"));
    CU_ASSERT_TRUE(cw_prefix_ok("{tenant}/"));
    CU_ASSERT_FALSE(cw_prefix_ok("a b"));
    CU_ASSERT_FALSE(cw_prefix_ok("a\n"));
}

static void test_message_round_trip(void)
{
    struct cw_msg in = { .kind = CW_OPEN, .remaining_ms = 599997 }, out;
    char text[CW_MSG_MAX];

    strcpy(in.origin, "gw-a");
    strcpy(in.name, "up/model with | and spaces");
    CU_ASSERT_EQUAL(cw_encode(text, sizeof(text), &in), 0);
    CU_ASSERT_STRING_EQUAL(text, "O|599997|gw-a|up/model with | and spaces");
    CU_ASSERT_EQUAL(cw_decode(text, strlen(text), &out), 0);
    CU_ASSERT_EQUAL(out.kind, CW_OPEN);
    CU_ASSERT_EQUAL(out.remaining_ms, 599997);
    CU_ASSERT_STRING_EQUAL(out.origin, "gw-a");
    CU_ASSERT_STRING_EQUAL(out.name, in.name);

    in.kind = CW_RESET;
    in.remaining_ms = 0;
    CU_ASSERT_EQUAL(cw_encode(text, sizeof(text), &in), 0);
    CU_ASSERT_EQUAL(cw_decode(text, strlen(text), &out), 0);
    CU_ASSERT_EQUAL(out.kind, CW_RESET);
    CU_ASSERT_EQUAL(out.remaining_ms, 0);

    in.kind = CW_CLOSE;
    CU_ASSERT_EQUAL(cw_encode(text, sizeof(text), &in), 0);
    CU_ASSERT_STRING_EQUAL(text, "C|0|gw-a|up/model with | and spaces");
    CU_ASSERT_EQUAL(cw_decode(text, strlen(text), &out), 0);
    CU_ASSERT_EQUAL(out.kind, CW_CLOSE);
    in.kind = CW_RESET;

    /* Invalid messages are not encoded. */
    in.remaining_ms = 5;
    CU_ASSERT_EQUAL(cw_encode(text, sizeof(text), &in), -1);
    in.kind = CW_OPEN;
    in.remaining_ms = 0;
    CU_ASSERT_EQUAL(cw_encode(text, sizeof(text), &in), -1);
    in.remaining_ms = 1;
    strcpy(in.origin, "bad origin");
    CU_ASSERT_EQUAL(cw_encode(text, sizeof(text), &in), -1);
    strcpy(in.origin, "gw");
    CU_ASSERT_EQUAL(cw_encode(text, 8, &in), -1);
}

static void test_message_refused(void)
{
    static const char *const bad[] = {
        "", "O", "O|", "O|12", "O|12|", "O|12|gw", "O|12|gw|", "X|12|gw|n",
        "O||gw|n", "O|-5|gw|n", "O|0|gw|n", "R|7|gw|n", "O|1x|gw|n",
        "O|12||n", "O|12|g w|n", "O|1234567890123456|gw|n",
        "O|604800001|gw|n", "o|12|gw|n", "O 12|gw|n", "O|012|gw|n",
        "R|00|gw|n", "C|3|gw|n", "C|00|gw|n",
    };
    struct cw_msg msg;
    char longname[CW_NAME_MAX + 16];
    char nul[] = "O|12|gw|a\0b";
    char nul_origin[] = "O|12|g0\0|n";     /* found by fuzz_clusterwire */

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cw_decode(bad[i], strlen(bad[i]), &msg) != -1)
            fprintf(stderr, "\n    accepted [%s]\n", bad[i]);
        CU_ASSERT_EQUAL(cw_decode(bad[i], strlen(bad[i]), &msg), -1);
    }
    CU_ASSERT_EQUAL(cw_decode(nul, sizeof(nul) - 1, &msg), -1);
    CU_ASSERT_EQUAL(cw_decode(nul_origin, sizeof(nul_origin) - 1, &msg), -1);
    CU_ASSERT_EQUAL(cw_decode("O|604800000|gw|n", 16, &msg), 0);
    snprintf(longname, sizeof(longname), "O|1|gw|");
    memset(longname + 7, 'n', CW_NAME_MAX);
    CU_ASSERT_EQUAL(cw_decode(longname, 7 + CW_NAME_MAX, &msg), -1);
    CU_ASSERT_EQUAL(cw_decode(longname, 7 + CW_NAME_MAX - 1, &msg), 0);
    /* Only len bytes are read: a longer buffer is cut where it says. */
    CU_ASSERT_EQUAL(cw_decode("R|0|gw|name-and-more", 11, &msg), 0);
    CU_ASSERT_STRING_EQUAL(msg.name, "name");
}

static void test_instance_record(void)
{
    struct cw_instance in = { .pid = 4242, .last_seen_ms = 1765000000123LL,
                              .requests = 17 }, out;
    char *s;

    strcpy(in.instance, "gw-a");
    strcpy(in.host, "box");
    strcpy(in.listen, "127.0.0.1:8080");
    s = cw_instance_encode(&in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "{\"instance\":\"gw-a\",\"pid\":4242,\"host\":"
                              "\"box\",\"listen\":\"127.0.0.1:8080\","
                              "\"last_seen_ms\":1765000000123,"
                              "\"requests\":17}");
    CU_ASSERT_EQUAL(cw_instance_decode(s, strlen(s), &out), 0);
    CU_ASSERT_STRING_EQUAL(out.instance, "gw-a");
    CU_ASSERT_STRING_EQUAL(out.listen, "127.0.0.1:8080");
    CU_ASSERT_EQUAL(out.pid, 4242);
    CU_ASSERT_EQUAL(out.last_seen_ms, 1765000000123LL);
    CU_ASSERT_EQUAL(out.requests, 17);
    free(s);
    CU_ASSERT_EQUAL(cw_instance_decode("[]", 2, &out), -1);
    CU_ASSERT_EQUAL(cw_instance_decode("{\"instance\":\"gw\"}", 17, &out),
                    -1);
    s = "{\"instance\":\"g w\",\"pid\":1,\"host\":\"h\",\"listen\":\"l\","
        "\"last_seen_ms\":1,\"requests\":1}";
    CU_ASSERT_EQUAL(cw_instance_decode(s, strlen(s), &out), -1);
    s = "{\"instance\":\"gw\",\"pid\":\"1\",\"host\":\"h\",\"listen\":\"l\","
        "\"last_seen_ms\":1,\"requests\":1}";
    CU_ASSERT_EQUAL(cw_instance_decode(s, strlen(s), &out), -1);
    s = "{\"instance\":\"gw\",\"pid\":1,\"host\":\"h\",\"listen\":\"l\","
        "\"last_seen_ms\":1,\"requests\":1}";
    CU_ASSERT_EQUAL(cw_instance_decode(s, strlen(s), &out), 0);
    CU_ASSERT_EQUAL(cw_instance_decode(s, strlen(s) - 1, &out), -1);
}

static void test_backoff(void)
{
    CU_ASSERT_EQUAL(cw_backoff_ms(0), CW_RETRY_BASE_MS);
    CU_ASSERT_EQUAL(cw_backoff_ms(1), 2 * CW_RETRY_BASE_MS);
    CU_ASSERT_EQUAL(cw_backoff_ms(2), 4 * CW_RETRY_BASE_MS);
    for (unsigned a = 0; a < 40; a++) {
        CU_ASSERT_TRUE(cw_backoff_ms(a) <= CW_RETRY_MAX_MS);
        CU_ASSERT_TRUE(cw_backoff_ms(a + 1) >= cw_backoff_ms(a));
    }
    CU_ASSERT_EQUAL(cw_backoff_ms(UINT32_MAX), CW_RETRY_MAX_MS);
}

static void test_open_remote(void)
{
    struct cfg_breaker cfg;
    struct cb_state b;
    bool probe;

    memset(&cfg, 0, sizeof(cfg));
    cfg.enabled = true;
    cfg.failure_threshold = 3;
    cfg.recovery_timeout_ms = CWT_RECOVERY;
    cfg.half_open_max_requests = 1;
    cb_init(&b);
    CU_ASSERT_TRUE(cb_open_remote(&b, &cfg, CWT_T0, CWT_T0 + CWT_REMOTE));
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    CU_ASSERT_EQUAL(b.open_cause, CB_CAUSE_REMOTE);
    CU_ASSERT_FALSE(cb_allow(&b, &cfg, CWT_T0 + CWT_REMOTE - 1, &probe,
                             NULL));
    /* A shorter or equal opening changes nothing; a longer one extends. */
    CU_ASSERT_FALSE(cb_open_remote(&b, &cfg, CWT_T0, CWT_T0 + CWT_REMOTE));
    CU_ASSERT_FALSE(cb_open_remote(&b, &cfg, CWT_T0, CWT_T0 + 1));
    CU_ASSERT_TRUE(cb_open_remote(&b, &cfg, CWT_T0, CWT_T0 + 2 * CWT_REMOTE));
    CU_ASSERT_EQUAL(b.open_until_ms, CWT_T0 + 2 * CWT_REMOTE);
    /* Then it behaves as any open breaker: half-open when it ends. */
    CU_ASSERT_TRUE(cb_allow(&b, &cfg, CWT_T0 + 2 * CWT_REMOTE, &probe, NULL));
    CU_ASSERT_TRUE(probe);
    CU_ASSERT_EQUAL(b.state, CB_HALF_OPEN);
    /* A remote opening over a half-open breaker forgets the probe. */
    CU_ASSERT_TRUE(cb_open_remote(&b, &cfg, CWT_T0 + 2 * CWT_REMOTE,
                                  CWT_T0 + 3 * CWT_REMOTE));
    CU_ASSERT_EQUAL(b.probes, 0);
    CU_ASSERT_EQUAL(cb_record(&b, &cfg, true, true, CWT_T0 + 2 * CWT_REMOTE),
                    CB_TRANSITION_NONE);
    CU_ASSERT_EQUAL(b.state, CB_OPEN);
    /* Past, or disabled: nothing. */
    cb_init(&b);
    CU_ASSERT_FALSE(cb_open_remote(&b, &cfg, CWT_T0, CWT_T0));
    cfg.enabled = false;
    CU_ASSERT_FALSE(cb_open_remote(&b, &cfg, CWT_T0, CWT_T0 + CWT_REMOTE));
    CU_ASSERT_EQUAL(b.state, CB_CLOSED);
    CU_ASSERT_FALSE(cb_repair(&b));
}

/* Loads MINIMAL_CONF plus extra; NULL with err when refused. */
static struct cfg *cwt_load(const char *extra, char *err, size_t errlen)
{
    char path[CWT_PATH_MAX], text[CWT_TEXT_MAX];
    struct cfg *cfg;
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "%s", CWT_TEMPLATE);
    snprintf(text, sizeof(text), "%s%s\n", MINIMAL_CONF, extra);
    fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(path);
        return NULL;
    }
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    cfg = cfg_load(path, err, errlen, NULL);
    unlink(path);
    return cfg;
}

static void test_config(void)
{
    char err[CFG_ERR_MAX];
    struct cfg *a, *b;

    a = cwt_load("", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_FALSE(a->cluster.configured);
    CU_ASSERT_PTR_NULL(a->cluster.redis);
    b = cwt_load("cluster = { redis = \"10.0.0.5:6380\"; };", err,
                 sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(b->cluster.configured);
    CU_ASSERT_STRING_EQUAL(b->cluster.host, "10.0.0.5");
    CU_ASSERT_EQUAL(b->cluster.port, 6380);
    CU_ASSERT_STRING_EQUAL(b->cluster.key_prefix, CFG_CLUSTER_PREFIX);
    CU_ASSERT_PTR_NULL(b->cluster.instance);
    CU_ASSERT_PTR_NULL(b->cluster.password_env);
    /* A reload cannot turn cluster mode on or off. */
    CU_ASSERT_EQUAL(cfg_reload_check(a, b, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'cluster'"));
    CU_ASSERT_EQUAL(cfg_reload_check(b, b, err, sizeof(err)), 0);
    cfg_free(&a);
    cfg_free(&b);

    a = cwt_load("cluster = { redis = \"unix:/run/redis.sock\"; key_prefix "
                 "= \"t:\"; instance = \"gw-1\"; password_env = \"RPW\"; };",
                 err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->cluster.host, "/run/redis.sock");
    CU_ASSERT_EQUAL(a->cluster.port, 0);
    CU_ASSERT_STRING_EQUAL(a->cluster.instance, "gw-1");
    CU_ASSERT_STRING_EQUAL(a->cluster.password_env, "RPW");
    cfg_free(&a);
    a = cwt_load("cluster = { redis = \"[::1]:6379\"; };", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->cluster.host, "::1");
    cfg_free(&a);

    static const char *const refused[] = {
        "cluster = { };",
        "cluster = { redis = \"host\"; };",
        "cluster = { redis = \":6379\"; };",
        "cluster = { redis = \"h:0\"; };",
        "cluster = { redis = \"h:65536\"; };",
        "cluster = { redis = \"unix:\"; };",
        "cluster = { redis = \"h:1\"; key_prefix = \"a b\"; };",
        "cluster = { redis = \"h:1\"; instance = \"a|b\"; };",
        "cluster = { redis = \"h:1\"; password_env = \"A-B\"; };",
        "cluster = { redis = \"h:1\"; other = 1; };",
        "cluster = \"h:1\";",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        a = cwt_load(refused[i], err, sizeof(err));
        if (a != NULL)
            fprintf(stderr, "\n    accepted [%s]\n", refused[i]);
        CU_ASSERT_PTR_NULL(a);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3: "));
        cfg_free(&a);
    }
}

static const CU_TestInfo clusterwire_tests[] = {
    { "key and channel names", test_keys },
    { "instance names and key prefixes", test_names },
    { "breaker message round trip", test_message_round_trip },
    { "breaker messages refused", test_message_refused },
    { "heartbeat record", test_instance_record },
    { "reconnect back-off", test_backoff },
    { "breaker opened by another instance", test_open_remote },
    { "the cluster group", test_config },
    CU_TEST_INFO_NULL
};

int register_clusterwire_tests(void)
{
    return unit_add_suite("clusterwire", clusterwire_tests);
}
