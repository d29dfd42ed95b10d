/* test_oauthwire.c - OAuth tokens shared in cluster mode, the pure
 * parts (oauthwire.c): fingerprints (known digests, which token counts),
 * stored records (round trip, and the decoder refusing each kind of
 * damage, a record whose tokens do not match its fingerprint among
 * them) and change notices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "oauthwire.h"
#include "unit.h"

/* The first 32 hex digits of sha256("at-9\0rt-0\0"), of
 * sha256("at-9\0\0") and of sha256("at-9\0rt-0\0ik-1"). */
#define OWT_FP_RT0   "0442a1e98cd8d5e79e56784b6cf7ad3a"
#define OWT_FP_AT9   "6dabaa8b97000200e8ab9768511c565b"
#define OWT_FP_IK1   "542f76e4b1e94a6921aa1a1c0c22c172"
#define OWT_STAMP    1796625229059LL
#define OWT_EXPIRY   1796628808973LL
#define OWT_TEXT_MAX 1024

static struct oauth_tokens owt_tokens(const char *access, const char *refresh)
{
    struct oauth_tokens t = { 0 };

    t.access_token = access != NULL ? strdup(access) : NULL;
    t.refresh_token = refresh != NULL ? strdup(refresh) : NULL;
    t.token_type = strdup("Bearer");
    t.resource_url = strdup("portal.qwen.ai");
    t.expiry_ms = OWT_EXPIRY;
    return t;
}

static void test_fingerprint(void)
{
    struct oauth_tokens t = owt_tokens("at-9", "rt-0");
    struct oauth_tokens no_refresh = owt_tokens("at-9", NULL);
    struct oauth_tokens none = owt_tokens(NULL, "rt-0");
    char fp[OW_FP_LEN + 1];

    CU_ASSERT_EQUAL(ow_fingerprint(&t, fp), 0);
    CU_ASSERT_STRING_EQUAL(fp, OWT_FP_RT0);
    CU_ASSERT_TRUE(ow_fp_ok(fp));
    t.expiry_ms++;                     /* the expiry is not part of it */
    CU_ASSERT_EQUAL(ow_fingerprint(&t, fp), 0);
    CU_ASSERT_STRING_EQUAL(fp, OWT_FP_RT0);
    t.api_key = strdup("ik-1");        /* a new API key is a new version */
    CU_ASSERT_EQUAL(ow_fingerprint(&t, fp), 0);
    CU_ASSERT_STRING_EQUAL(fp, OWT_FP_IK1);
    CU_ASSERT_EQUAL(ow_fingerprint(&no_refresh, fp), 0);
    CU_ASSERT_STRING_EQUAL(fp, OWT_FP_AT9);
    CU_ASSERT_EQUAL(ow_fingerprint(&none, fp), -1);  /* no access token */
    CU_ASSERT_STRING_EQUAL(fp, "");
    CU_ASSERT_FALSE(ow_fp_ok(""));
    CU_ASSERT_FALSE(ow_fp_ok("0442A1E98CD8D5E79E56784B6CF7AD3A"));
    CU_ASSERT_FALSE(ow_fp_ok(OWT_FP_RT0 "0"));
    CU_ASSERT_FALSE(ow_fp_ok("0442a1e98cd8d5e79e56784b6cf7ad3"));
    CU_ASSERT_FALSE(ow_fp_ok("g442a1e98cd8d5e79e56784b6cf7ad3a"));
    oauth_tokens_free(&t);
    oauth_tokens_free(&no_refresh);
    oauth_tokens_free(&none);
}

/* A valid record of tokens at-9/rt-0, replacing prev. */
static struct ow_record owt_record(const char *prev)
{
    struct ow_record r = { .stamp_ms = OWT_STAMP };

    snprintf(r.origin, sizeof(r.origin), "gw-a");
    snprintf(r.fp, sizeof(r.fp), OWT_FP_RT0);
    snprintf(r.prev, sizeof(r.prev), "%s", prev);
    r.tok = owt_tokens("at-9", "rt-0");
    return r;
}

static void test_record_round_trip(void)
{
    static const char *const prevs[] = { OW_FP_NONE, OWT_FP_AT9 };

    for (size_t i = 0; i < sizeof(prevs) / sizeof(prevs[0]); i++) {
        struct ow_record r = owt_record(prevs[i]), back;
        char *text = ow_record_encode(&r);

        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_EQUAL(strncmp(text, "gw-a|" OWT_FP_RT0 "|", 38), 0);
        CU_ASSERT_EQUAL(ow_record_decode(text, strlen(text), &back), 0);
        CU_ASSERT_STRING_EQUAL(back.origin, "gw-a");
        CU_ASSERT_STRING_EQUAL(back.fp, OWT_FP_RT0);
        CU_ASSERT_STRING_EQUAL(back.prev, prevs[i]);
        CU_ASSERT_EQUAL(back.stamp_ms, OWT_STAMP);
        CU_ASSERT_STRING_EQUAL(back.tok.access_token, "at-9");
        CU_ASSERT_STRING_EQUAL(back.tok.refresh_token, "rt-0");
        CU_ASSERT_STRING_EQUAL(back.tok.resource_url, "portal.qwen.ai");
        CU_ASSERT_EQUAL(back.tok.expiry_ms, OWT_EXPIRY);
        oauth_tokens_free(&back.tok);
        oauth_secret_free(&text);
        oauth_tokens_free(&r.tok);
    }
}

static void test_record_encode_refused(void)
{
    struct ow_record r = owt_record(OW_FP_NONE);

    snprintf(r.fp, sizeof(r.fp), OWT_FP_AT9);   /* not its tokens' */
    CU_ASSERT_PTR_NULL(ow_record_encode(&r));
    snprintf(r.fp, sizeof(r.fp), OWT_FP_RT0);
    snprintf(r.origin, sizeof(r.origin), "gw a");
    CU_ASSERT_PTR_NULL(ow_record_encode(&r));
    snprintf(r.origin, sizeof(r.origin), "gw-a");
    snprintf(r.prev, sizeof(r.prev), "x");
    CU_ASSERT_PTR_NULL(ow_record_encode(&r));
    snprintf(r.prev, sizeof(r.prev), OW_FP_NONE);
    r.stamp_ms = 0;
    CU_ASSERT_PTR_NULL(ow_record_encode(&r));
    oauth_tokens_free(&r.tok);
}

static void test_record_refused(void)
{
    static const char tokens[] =
        "{\"access_token\":\"at-9\",\"refresh_token\":\"rt-0\"}";
    static const char *const heads[] = {
        "gw-a|" OWT_FP_AT9 "|-|1796625229059\n",   /* fp not of tokens */
        "gw a|" OWT_FP_RT0 "|-|1796625229059\n",   /* origin */
        "|" OWT_FP_RT0 "|-|1796625229059\n",
        "gw-a|" OWT_FP_RT0 "|x|1796625229059\n",   /* prev */
        "gw-a|" OWT_FP_RT0 "||1796625229059\n",
        "gw-a|0442A1E98CD8D5E79E56784B6CF7AD3A|-|1796625229059\n",
        "gw-a|" OWT_FP_RT0 "|-|01796625229059\n",  /* leading zero */
        "gw-a|" OWT_FP_RT0 "|-|0\n",
        "gw-a|" OWT_FP_RT0 "|-|\n",
        "gw-a|" OWT_FP_RT0 "|-|1234567890123456\n", /* 16 digits */
        "gw-a|" OWT_FP_RT0 "|-|17966x5229059\n",
        "gw-a|" OWT_FP_RT0 "|-|1796625229059",      /* no newline */
        "gw-a|" OWT_FP_RT0 "|-1796625229059\n",     /* a field short */
    };
    char text[OWT_TEXT_MAX];
    struct ow_record r;

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        int n = snprintf(text, sizeof(text), "%s%s", heads[i], tokens);
        int rc = ow_record_decode(text, (size_t)n, &r);

        if (rc == 0)
            fprintf(stderr, "\n    accepted [%s]\n", heads[i]);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(r.tok.access_token);
    }
    /* Tokens that are not a token file's text. */
    snprintf(text, sizeof(text), "gw-a|%s|-|1\n{\"refresh_token\":\"rt-0\"}",
             OWT_FP_RT0);
    CU_ASSERT_EQUAL(ow_record_decode(text, strlen(text), &r), -1);
    snprintf(text, sizeof(text), "gw-a|%s|-|1\n%s trailing", OWT_FP_RT0,
             tokens);
    CU_ASSERT_EQUAL(ow_record_decode(text, strlen(text), &r), -1);
    /* A NUL inside the header. */
    memcpy(text, "gw-a\0|", 6);
    CU_ASSERT_EQUAL(ow_record_decode(text, strlen(text) + 6, &r), -1);
    /* The smallest valid one, for contrast. */
    snprintf(text, sizeof(text), "gw-a|%s|-|1\n%s", OWT_FP_RT0, tokens);
    CU_ASSERT_EQUAL_FATAL(ow_record_decode(text, strlen(text), &r), 0);
    CU_ASSERT_EQUAL(r.stamp_ms, 1);
    oauth_tokens_free(&r.tok);
}

static void test_message(void)
{
    struct ow_msg msg = { 0 }, back;
    char text[OW_MSG_MAX], small[16];

    snprintf(msg.origin, sizeof(msg.origin), "gw-b");
    snprintf(msg.fp, sizeof(msg.fp), OWT_FP_RT0);
    snprintf(msg.provider, sizeof(msg.provider), "qwen|2");
    CU_ASSERT_EQUAL(ow_msg_encode(text, sizeof(text), &msg), 0);
    CU_ASSERT_STRING_EQUAL(text, "gw-b|" OWT_FP_RT0 "|qwen|2");
    CU_ASSERT_EQUAL(ow_msg_decode(text, strlen(text), &back), 0);
    CU_ASSERT_STRING_EQUAL(back.origin, "gw-b");
    CU_ASSERT_STRING_EQUAL(back.fp, OWT_FP_RT0);
    CU_ASSERT_STRING_EQUAL(back.provider, "qwen|2");
    CU_ASSERT_EQUAL(ow_msg_encode(small, sizeof(small), &msg), -1);
    msg.provider[0] = '\0';
    CU_ASSERT_EQUAL(ow_msg_encode(text, sizeof(text), &msg), -1);

    static const char *const refused[] = {
        "gw-b|" OWT_FP_RT0 "|",          /* no provider */
        "gw-b|" OWT_FP_RT0,
        "gw b|" OWT_FP_RT0 "|qwen",
        "|" OWT_FP_RT0 "|qwen",
        "gw-b|0442|qwen",
        "gw-b||qwen",
        "",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CU_ASSERT_EQUAL(ow_msg_decode(refused[i], strlen(refused[i]),
                                      &back), -1);
    CU_ASSERT_EQUAL(ow_msg_decode("gw-b|" OWT_FP_RT0 "|q\0x", 40, &back), -1);
}

static const CU_TestInfo oauthwire_tests[] = {
    { "fingerprints", test_fingerprint },
    { "record round trip", test_record_round_trip },
    { "records not encoded", test_record_encode_refused },
    { "records refused", test_record_refused },
    { "change notices", test_message },
    CU_TEST_INFO_NULL
};

int register_oauthwire_tests(void)
{
    return unit_add_suite("oauthwire", oauthwire_tests);
}
