/* test_oauth.c - the OAuth module without a network: PKCE against RFC
 * 7636 appendix B and base64url at every tail length; the resource_url
 * rule; the token file's strict parse (the Qwen and iFlow CLIs' files,
 * wrong types, trailing data, nesting, size), format and round trip; the
 * atomic save (mode 0600 exactly, no temporary left, directories made,
 * errors) and load with the identity that notices a replace; iFlow's
 * settings file; form encoding; and each answer parser's classification
 * table. Files go to a fresh directory under /tmp, removed afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "oauth.h"
#include "unit.h"

#define OT_DIR_TEMPLATE   "/tmp/rcc-unit-oauth-XXXXXX"
#define OT_PATH_MAX       512
#define OT_NOW_MS         1700000000000LL
#define OT_NFTW_FDS       16
#define OT_BIG_TOKEN      (40 * 1024)      /* fits in OAUTH_FILE_MAX */
#define OT_MODE_MASK      07777
#define OT_OTHER_ID       4242             /* an owner that is not us */
#define OT_SECRET         "SECRET-TOKEN-VALUE"

/* RFC 7636 appendix B. */
static const uint8_t ot_rfc_octets[] = {
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187,
    186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141,
    121
};
#define OT_RFC_VERIFIER   "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define OT_RFC_CHALLENGE  "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

/* What the Qwen CLI writes to ~/.qwen/oauth_creds.json. */
static const char ot_qwen_file[] =
    "{\n"
    "  \"access_token\": \"qwen-access\",\n"
    "  \"token_type\": \"Bearer\",\n"
    "  \"refresh_token\": \"qwen-refresh\",\n"
    "  \"resource_url\": \"portal.qwen.ai\",\n"
    "  \"expiry_date\": 1760000000000\n"
    "}\n";

/* What the iFlow CLI writes to ~/.iflow/oauth_creds.json. */
static const char ot_iflow_file[] =
    "{\"access_token\":\"iflow-access\",\"refresh_token\":\"iflow-refresh\","
    "\"expiry_date\":1760000000000.75,\"token_type\":\"bearer\","
    "\"scope\":\"read write\",\"apiKey\":\"sk-iflow\","
    "\"userId\":\"u1\",\"userName\":\"someone\"}";

static char ot_dir[sizeof(OT_DIR_TEMPLATE)];

static int ot_rm(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh directory for the file tests; ot_dir_done removes it. */
static void ot_dir_new(void)
{
    snprintf(ot_dir, sizeof(ot_dir), "%s", OT_DIR_TEMPLATE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(ot_dir));
}

static void ot_dir_done(void)
{
    /* Give back write permission the tests may have taken away. */
    chmod(ot_dir, 0700);
    nftw(ot_dir, ot_rm, OT_NFTW_FDS, FTW_DEPTH | FTW_PHYS);
}

static void ot_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", ot_dir, name);
}

static void ot_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    CU_ASSERT_EQUAL(fchmod(fd, mode), 0);
    close(fd);
}

/* Entries in dir whose name holds ".tmp." */
static int ot_temp_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") != NULL)
            n++;
    closedir(d);
    return n;
}

static mode_t ot_mode(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return (mode_t)-1;
    return st.st_mode & OT_MODE_MASK;
}

/* ---- PKCE ---------------------------------------------------------- */

static void test_rfc7636_vector(void)
{
    char b64[OAUTH_VERIFIER_LEN + 1], challenge[OAUTH_CHALLENGE_LEN + 1];

    CU_ASSERT_EQUAL(sizeof(ot_rfc_octets), OAUTH_VERIFIER_BYTES);
    CU_ASSERT_EQUAL(oauth_base64url(ot_rfc_octets, sizeof(ot_rfc_octets),
                                    b64), OAUTH_VERIFIER_LEN);
    CU_ASSERT_STRING_EQUAL(b64, OT_RFC_VERIFIER);
    CU_ASSERT_EQUAL(oauth_pkce_challenge(OT_RFC_VERIFIER, challenge), 0);
    CU_ASSERT_STRING_EQUAL(challenge, OT_RFC_CHALLENGE);
}

static void test_base64url_lengths(void)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        { "", 0, "" },
        { "f", 1, "Zg" },
        { "fo", 2, "Zm8" },
        { "foo", 3, "Zm9v" },
        { "foob", 4, "Zm9vYg" },
        { "fooba", 5, "Zm9vYmE" },
        { "foobar", 6, "Zm9vYmFy" },
        { "\xfb\xff", 2, "-_8" },          /* the two url-safe letters */
        { "\xff\xfe\xfd", 3, "__79" },
        { "\0", 1, "AA" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Exactly the documented size, with a guard byte after it. */
        size_t need = (cases[i].n * 4 + 2) / 3 + 1;
        char out[16];

        memset(out, '#', sizeof(out));
        CU_ASSERT_EQUAL(oauth_base64url((const uint8_t *)cases[i].in,
                                        cases[i].n, out),
                        strlen(cases[i].out));
        CU_ASSERT_STRING_EQUAL(out, cases[i].out);
        CU_ASSERT_EQUAL(strlen(out) + 1, need);
        CU_ASSERT_EQUAL(out[need], '#');
    }
}

static void test_verifier(void)
{
    char a[OAUTH_VERIFIER_LEN + 1], b[OAUTH_VERIFIER_LEN + 1];
    char challenge[OAUTH_CHALLENGE_LEN + 1];

    CU_ASSERT_EQUAL(oauth_pkce_verifier(a), 0);
    CU_ASSERT_EQUAL(oauth_pkce_verifier(b), 0);
    CU_ASSERT_EQUAL(strlen(a), OAUTH_VERIFIER_LEN);
    CU_ASSERT_EQUAL(strlen(b), OAUTH_VERIFIER_LEN);
    CU_ASSERT_EQUAL(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789-_"),
                    OAUTH_VERIFIER_LEN);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(oauth_pkce_challenge(a, challenge), 0);
    CU_ASSERT_EQUAL(strlen(challenge), OAUTH_CHALLENGE_LEN);
}

static void test_challenge_refuses(void)
{
    char challenge[OAUTH_CHALLENGE_LEN + 1], longv[200];

    CU_ASSERT_EQUAL(oauth_pkce_challenge(NULL, challenge), -1);
    CU_ASSERT_EQUAL(oauth_pkce_challenge("short", challenge), -1);
    CU_ASSERT_EQUAL(oauth_pkce_challenge(
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+", challenge), -1);
    memset(longv, 'a', 129);
    longv[129] = '\0';
    CU_ASSERT_EQUAL(oauth_pkce_challenge(longv, challenge), -1);
    longv[128] = '\0';
    CU_ASSERT_EQUAL(oauth_pkce_challenge(longv, challenge), 0);
}

/* ---- resource_url -------------------------------------------------- */

static void test_api_base(void)
{
    static const struct {
        const char *in;
        const char *out;           /* NULL: -1 */
    } cases[] = {
        { "portal.qwen.ai", "https://portal.qwen.ai/v1" },
        { "https://x.y/", "https://x.y/v1" },
        { "http://127.0.0.1:8080", "http://127.0.0.1:8080/v1" },
        { "https://x.y/v1", "https://x.y/v1" },
        { "https://x.y/v1/", "https://x.y/v1" },
        { "https://x/api", "https://x/api/v1" },
        { "  dashscope.aliyuncs.com/compatible-mode/v1 \n",
          "https://dashscope.aliyuncs.com/compatible-mode/v1" },
        { "x.y///", "https://x.y/v1" },
        { "https://v1", "https://v1/v1" },          /* a host, not a path */
        { "https://x/av1", "https://x/av1/v1" },
        { "https://x/v1v1", "https://x/v1v1/v1" },
        { "HTTPS://X.Y", "HTTPS://X.Y/v1" },
        { "", NULL },
        { "   ", NULL },
        { "https://", NULL },
        { "https:///", NULL },
        { "a b.c", NULL },
        { "x.y/\x01", NULL },
        /* The token must not cross a network in clear. */
        { "http://x.y", NULL },
        { "http://127.0.0.1.x.y/v1", NULL },
        { "http://127.0.0.1@x.y", NULL },
        { "http://localhost.x.y", NULL },
        { "ftp://x.y", NULL },
        { "file:///etc", NULL },
        { "HTTP://LOCALHOST:9/x", "HTTP://LOCALHOST:9/x/v1" },
        { "http://[::1]:80/", "http://[::1]:80/v1" },
        { "http://127.1", "http://127.1/v1" },
        { "http://[::1]x", NULL },
    };
    char out[OAUTH_URL_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = oauth_api_base(cases[i].in, out, sizeof(out));

        if (cases[i].out == NULL) {
            CU_ASSERT_EQUAL(rc, -1);
        } else {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_STRING_EQUAL(out, cases[i].out);
        }
    }
    CU_ASSERT_EQUAL(oauth_api_base(NULL, out, sizeof(out)), -1);
    /* "https://a.b/v1" needs 15 bytes. */
    CU_ASSERT_EQUAL(oauth_api_base("a.b", out, 14), -1);
    CU_ASSERT_EQUAL(oauth_api_base("a.b", out, 15), 0);
    CU_ASSERT_STRING_EQUAL(out, "https://a.b/v1");
}

/* ---- token file ---------------------------------------------------- */

static int ot_parse(const char *text, struct oauth_tokens *t, char *err,
                    size_t errlen)
{
    return oauth_tokens_parse(text, strlen(text), t, err, errlen);
}

static void test_parse_qwen_file(void)
{
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    CU_ASSERT_EQUAL_FATAL(ot_parse(ot_qwen_file, &t, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(t.access_token, "qwen-access");
    CU_ASSERT_STRING_EQUAL(t.refresh_token, "qwen-refresh");
    CU_ASSERT_STRING_EQUAL(t.token_type, "Bearer");
    CU_ASSERT_STRING_EQUAL(t.resource_url, "portal.qwen.ai");
    CU_ASSERT_PTR_NULL(t.scope);
    CU_ASSERT_PTR_NULL(t.api_key);
    CU_ASSERT_EQUAL(t.expiry_ms, 1760000000000LL);
    oauth_tokens_free(&t);
    CU_ASSERT_PTR_NULL(t.access_token);
}

static void test_parse_iflow_file(void)
{
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    CU_ASSERT_EQUAL_FATAL(ot_parse(ot_iflow_file, &t, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(t.access_token, "iflow-access");
    CU_ASSERT_STRING_EQUAL(t.scope, "read write");
    CU_ASSERT_STRING_EQUAL(t.api_key, "sk-iflow");
    CU_ASSERT_STRING_EQUAL(t.token_type, "bearer");
    CU_ASSERT_EQUAL(t.expiry_ms, 1760000000000LL);     /* truncated */
    oauth_tokens_free(&t);
}

static void test_parse_optional_members(void)
{
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    CU_ASSERT_EQUAL_FATAL(ot_parse(
        " {\"access_token\":\"a\",\"refresh_token\":null,\"scope\":null,"
        "\"expiry_date\":null,\"x\":{\"y\":[1,{\"z\":[true,null]}]},"
        "\"w\":[[[]]]}\r\n\t ", &t, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(t.access_token, "a");
    CU_ASSERT_PTR_NULL(t.refresh_token);
    CU_ASSERT_PTR_NULL(t.scope);
    CU_ASSERT_EQUAL(t.expiry_ms, 0);
    oauth_tokens_free(&t);
    /* The last of duplicate members wins, as in JavaScript. */
    CU_ASSERT_EQUAL_FATAL(ot_parse("{\"access_token\":\"a\","
                                   "\"access_token\":\"b\"}", &t, err,
                                   sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(t.access_token, "b");
    oauth_tokens_free(&t);
    CU_ASSERT_EQUAL_FATAL(ot_parse("{\"access_token\":\"a\\/b\\u0041\","
                                   "\"expiry_date\":1e3}", &t, err,
                                   sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(t.access_token, "a/bA");
    CU_ASSERT_EQUAL(t.expiry_ms, 1000);
    oauth_tokens_free(&t);
}

/* A token goes into a request header: a CR, LF, blank, control or
 * non-ASCII byte in one (from a file or an answer) is refused, so no
 * header can be injected; a scope or URL may hold blanks. */
static void test_credential_bytes(void)
{
    static const char *const bad[] = {
        "{\"access_token\":\"at-0\\r\\nX-Injected: yes\"}",
        "{\"access_token\":\"a b\"}",
        "{\"access_token\":\"a\\u00e9\"}",
        "{\"access_token\":\"a\",\"refresh_token\":\"r\\n\"}",
        "{\"access_token\":\"a\",\"apiKey\":\"k\\t\"}",
        "{\"access_token\":\"a\",\"token_type\":\"Bearer\\r\"}",
        "{\"access_token\":\"a\",\"resource_url\":\"x\\ny\"}",
    };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];
    char *key = NULL;
    const char *info = "{\"success\":true,\"data\":{\"apiKey\":\"k\\r\\nX: y\"}}";

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CU_ASSERT_EQUAL(ot_parse(bad[i], &t, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(t.access_token);
    }
    CU_ASSERT_EQUAL_FATAL(ot_parse("{\"access_token\":\"a\",\"scope\":"
                                   "\"openid profile\"}", &t, err,
                                   sizeof(err)), 0);
    oauth_tokens_free(&t);
    CU_ASSERT_EQUAL(oauth_parse_iflow_userinfo(200, info, strlen(info), &key,
                                               err, sizeof(err)), -1);
    CU_ASSERT_PTR_NULL(key);
}

static void test_parse_refusals(void)
{
    static const struct {
        const char *text;
        const char *reason;        /* a part of err */
    } cases[] = {
        { "", "empty" },
        { "{}", "access_token" },
        { "{\"refresh_token\":\"r\"}", "access_token" },
        { "{\"access_token\":null}", "access_token" },
        { "{\"access_token\":\"\"}", "empty" },
        { "{\"access_token\":42}", "'access_token' must be a string" },
        { "{\"access_token\":\"a\",\"refresh_token\":{}}", "refresh_token" },
        { "{\"access_token\":\"a\",\"apiKey\":true}", "apiKey" },
        { "{\"access_token\":\"a\",\"scope\":[\"x\"]}", "scope" },
        { "{\"access_token\":\"a\",\"expiry_date\":\"1760000000000\"}",
          "expiry_date" },
        { "{\"access_token\":\"a\",\"expiry_date\":-1}", "expiry_date" },
        { "{\"access_token\":\"a\",\"expiry_date\":-0.5}", "expiry_date" },
        { "{\"access_token\":\"a\",\"expiry_date\":1e300}", "expiry_date" },
        { "{\"access_token\":\"a\",\"expiry_date\":true}", "expiry_date" },
        { "{\"access_token\":\"a\\u0000b\"}", "NUL" },
        { "{\"access_token\":\"a\"} x", "trailing" },
        { "{\"access_token\":\"a\"}{}", "trailing" },
        { "{\"access_token\":\"a\",}", "JSON" },
        { "{\"access_token\":\"a\" /* c */}", "JSON" },
        { "{'access_token':'a'}", "JSON" },
        { "{\"access_token\":\"a\"", "JSON" },
        { "[{\"access_token\":\"a\"}]", "not a JSON object" },
        { "\"access_token\"", "not a JSON object" },
        { "42", "not a JSON object" },
        { "{\"access_token\":\"a\",\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}",
          "JSON" },
        { "{\"access_token\":\"a\",\"x\":NaN}", "JSON" },
    };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(ot_parse(cases[i].text, &t, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(t.access_token);
        if (strstr(err, cases[i].reason) == NULL)
            fprintf(stderr, "\n  case %zu: err \"%s\" lacks \"%s\"\n", i, err,
                    cases[i].reason);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].reason));
    }
    /* A NUL byte in the text itself. */
    CU_ASSERT_EQUAL(oauth_tokens_parse("{\"access_token\":\"a\"}\0", 21, &t,
                                       err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(oauth_tokens_parse(NULL, 0, &t, err, sizeof(err)), -1);
}

static void test_parse_err_has_no_token(void)
{
    static const char *const texts[] = {
        "{\"access_token\":\"" OT_SECRET "\",\"expiry_date\":\"x\"}",
        "{\"access_token\":\"" OT_SECRET "\"} " OT_SECRET,
        "{\"access_token\":\"" OT_SECRET "\",\"refresh_token\":1}",
        "{\"refresh_token\":\"" OT_SECRET "\"}",
    };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        CU_ASSERT_EQUAL(ot_parse(texts[i], &t, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(strstr(err, "SECRET"));
    }
}

static void test_parse_sizes(void)
{
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];
    size_t n = OAUTH_FILE_MAX + 64;
    char *text = malloc(n + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    /* A large token that fits. */
    memcpy(text, "{\"access_token\":\"", 17);
    memset(text + 17, 'a', OT_BIG_TOKEN);
    memcpy(text + 17 + OT_BIG_TOKEN, "\"}", 3);
    CU_ASSERT_EQUAL_FATAL(ot_parse(text, &t, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(strlen(t.access_token), OT_BIG_TOKEN);
    oauth_tokens_free(&t);
    /* One past the limit. */
    memset(text + 17, 'a', n - 19);
    memcpy(text + n - 2, "\"}", 3);
    CU_ASSERT_EQUAL(ot_parse(text, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger"));
    free(text);
}

static void test_format_round_trip(void)
{
    struct oauth_tokens in = {
        .access_token = "acc/ess\"\\x~",
        .refresh_token = "ref",
        .token_type = "Bearer",
        .resource_url = "https://portal.qwen.ai/",
        .scope = "openid profile",
        .api_key = "sk-1",
        .expiry_ms = 1760000000123LL,
    };
    struct oauth_tokens out, copy;
    char err[OAUTH_ERR_MAX];
    char *text = oauth_tokens_format(&in);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(text[strlen(text) - 1], '\n');
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"resource_url\": "
                                        "\"https://portal.qwen.ai/\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"apiKey\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"expiry_date\": 1760000000123"));
    CU_ASSERT_EQUAL_FATAL(ot_parse(text, &out, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(out.access_token, in.access_token);
    CU_ASSERT_STRING_EQUAL(out.refresh_token, in.refresh_token);
    CU_ASSERT_STRING_EQUAL(out.token_type, in.token_type);
    CU_ASSERT_STRING_EQUAL(out.resource_url, in.resource_url);
    CU_ASSERT_STRING_EQUAL(out.scope, in.scope);
    CU_ASSERT_STRING_EQUAL(out.api_key, in.api_key);
    CU_ASSERT_EQUAL(out.expiry_ms, in.expiry_ms);
    oauth_secret_free(&text);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_copy(&copy, &out), 0);
    CU_ASSERT_PTR_NOT_EQUAL(copy.access_token, out.access_token);
    CU_ASSERT_STRING_EQUAL(copy.access_token, out.access_token);
    CU_ASSERT_STRING_EQUAL(copy.api_key, out.api_key);
    CU_ASSERT_EQUAL(copy.expiry_ms, out.expiry_ms);
    oauth_tokens_free(&copy);
    oauth_tokens_free(&out);
    oauth_tokens_free(NULL);
    oauth_secret_free(NULL);
}

static void test_format_minimal(void)
{
    struct oauth_tokens in = { .access_token = "only" };
    char *text = oauth_tokens_format(&in);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NULL(strstr(text, "expiry_date"));
    CU_ASSERT_PTR_NULL(strstr(text, "refresh_token"));
    CU_ASSERT_PTR_NULL(strstr(text, "null"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"access_token\": \"only\""));
    oauth_secret_free(&text);
}

/* ---- save and load ------------------------------------------------- */

static void test_save_mode_and_atomic(void)
{
    struct oauth_tokens a = { .access_token = "first", .expiry_ms = 1 };
    struct oauth_tokens b = { .access_token = "second",
                              .refresh_token = "r2" };
    struct oauth_tokens got;
    char path[OT_PATH_MAX], err[OAUTH_ERR_MAX];

    ot_dir_new();
    ot_path(path, sizeof(path), "creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &a, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ot_mode(path), 0600);
    CU_ASSERT_EQUAL(ot_temp_count(ot_dir), 0);
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &b, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ot_mode(path), 0600);
    CU_ASSERT_EQUAL(ot_temp_count(ot_dir), 0);
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_load(path, &got, NULL, err,
                                            sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(got.access_token, "second");
    CU_ASSERT_STRING_EQUAL(got.refresh_token, "r2");
    CU_ASSERT_EQUAL(got.expiry_ms, 0);
    oauth_tokens_free(&got);
    /* A file that was there with a looser mode ends 0600. */
    ot_write(path, "old", 0644);
    CU_ASSERT_EQUAL(ot_mode(path), 0644);
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &a, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ot_mode(path), 0600);
    CU_ASSERT_EQUAL(oauth_tokens_load(path, &got, NULL, err, sizeof(err)),
                    0);
    CU_ASSERT_STRING_EQUAL(got.access_token, "first");
    oauth_tokens_free(&got);
    /* Under a restrictive umask too. */
    {
        mode_t old = umask(0277);

        CU_ASSERT_EQUAL(oauth_tokens_save(path, &b, err, sizeof(err)), 0);
        umask(old);
        CU_ASSERT_EQUAL(ot_mode(path), 0600);
    }
    ot_dir_done();
}

/* A token file that is a symlink stays one (link and file ours, in a
 * directory of ours); as root, in a directory of root's, the replaced
 * file's owner and group are kept. */
static void test_save_keeps_link_and_owner(void)
{
    struct oauth_tokens t = { .access_token = "linked" }, got;
    char real[OT_PATH_MAX], link[OT_PATH_MAX], err[OAUTH_ERR_MAX];
    struct stat st;

    ot_dir_new();
    ot_path(real, sizeof(real), "sub/real.json");
    ot_path(link, sizeof(link), "link.json");
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_save(real, &t, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(symlink("sub/real.json", link), 0);
    t.access_token = "second";
    CU_ASSERT_EQUAL(oauth_tokens_save(link, &t, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_load(real, &got, NULL, err,
                                            sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(got.access_token, "second");
    oauth_tokens_free(&got);
    CU_ASSERT_EQUAL(ot_mode(real), 0600);
    CU_ASSERT_EQUAL(ot_temp_count(ot_dir), 0);
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(chown(real, OT_OTHER_ID, OT_OTHER_ID), 0);
        CU_ASSERT_EQUAL(oauth_tokens_save(real, &t, err, sizeof(err)), 0);
        CU_ASSERT_TRUE(stat(real, &st) == 0);
        CU_ASSERT_EQUAL(st.st_uid, OT_OTHER_ID);
        CU_ASSERT_EQUAL(st.st_gid, OT_OTHER_ID);
    }
    ot_path(real, sizeof(real), "sub");
    CU_ASSERT_EQUAL(ot_temp_count(real), 0);
    /* A dangling link is replaced by the file itself. */
    CU_ASSERT_EQUAL(unlink(link), 0);
    CU_ASSERT_EQUAL(symlink("nowhere/x.json", link), 0);
    CU_ASSERT_EQUAL(oauth_tokens_save(link, &t, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(lstat(link, &st) == 0 && S_ISREG(st.st_mode));
    ot_dir_done();
}

/* The rule for writing through a link as root, case by case. */
static void test_save_check_rule(void)
{
    const uid_t user = OT_OTHER_ID;
    struct oauth_save_facts plain = { .dir_owner = user };
    struct oauth_save_facts own = {
        .dir_owner = user, .link = true, .link_owner = user,
        .target_exists = true, .target_owner = user,
        .target_dir_owner = user,
    };
    struct oauth_save_facts f;
    char err[OAUTH_ERR_MAX];

    CU_ASSERT_EQUAL(oauth_save_check(&plain, "p", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(oauth_save_check(&own, "p", err, sizeof(err)), 0);
    /* Root's link to root's file in root's directory. */
    memset(&f, 0, sizeof(f));
    f.link = f.target_exists = true;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), 0);
    /* The user's link to a root file: the attack. */
    f = own;
    f.target_owner = 0;
    f.target_dir_owner = 0;
    err[0] = '\0';
    CU_ASSERT_EQUAL(oauth_save_check(&f, "/d/p", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "refusing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/d/p"));
    /* A file of the user's, in a directory the user does not own. */
    f = own;
    f.target_dir_owner = 0;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), -1);
    /* Another user's file. */
    f = own;
    f.target_owner = user + 1;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), -1);
    /* A link someone else put in the directory (a sticky /tmp). */
    f = own;
    f.dir_owner = 0;
    f.target_owner = f.target_dir_owner = 0;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), -1);
    /* A link to a link. */
    f = own;
    f.target_link = true;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), -1);
    /* A dangling link of the owner's: the link itself is replaced. */
    f = own;
    f.target_exists = false;
    f.target_owner = f.target_dir_owner = 0;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), 0);
    /* Directories to make inside /tmp: not by root; as a user, yes. */
    f = plain;
    f.dir_owner = 0;
    f.dir_open_gap = true;
    err[0] = '\0';
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "world-writable"));
    f.dir_owner = user;
    CU_ASSERT_EQUAL(oauth_save_check(&f, "p", err, sizeof(err)), 0);
}

static void ot_lchown_other(const char *path)
{
    CU_ASSERT_EQUAL(lchown(path, OT_OTHER_ID, OT_OTHER_ID), 0);
}

/* Root writing in a user's directory (as root only): as that user, so a
 * planted link or directory link never makes root write elsewhere;
 * the user's own link is still written through. */
static void test_save_as_root_in_user_dir(void)
{
    struct oauth_tokens t = { .access_token = "user-tokens" }, got;
    char ud[OT_PATH_MAX], victim[OT_PATH_MAX], path[OT_PATH_MAX];
    char real[OT_PATH_MAX], rootdir[OT_PATH_MAX], err[OAUTH_ERR_MAX];
    struct stat before, st;

    if (geteuid() != 0)
        return;
    ot_dir_new();
    /* The user must reach its directory: ours is 0700. */
    CU_ASSERT_EQUAL(chmod(ot_dir, 0711), 0);
    ot_path(ud, sizeof(ud), "home");
    CU_ASSERT_EQUAL_FATAL(mkdir(ud, 0700), 0);
    ot_lchown_other(ud);
    ot_path(victim, sizeof(victim), "victim");
    ot_write(victim, "precious\n", 0644);
    CU_ASSERT_EQUAL_FATAL(stat(victim, &before), 0);
    ot_path(rootdir, sizeof(rootdir), "rootdir");
    CU_ASSERT_EQUAL_FATAL(mkdir(rootdir, 0755), 0);

    /* A new file and its directories: the user's. */
    ot_path(path, sizeof(path), "home/one/creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(stat(path, &st) == 0 && st.st_uid == OT_OTHER_ID);
    CU_ASSERT_EQUAL(ot_mode(path), 0600);
    ot_path(path, sizeof(path), "home/one");
    CU_ASSERT_TRUE(stat(path, &st) == 0 && st.st_uid == OT_OTHER_ID);

    /* The user's link to the user's file: written through, kept. */
    ot_path(real, sizeof(real), "home/one/creds.json");
    ot_path(path, sizeof(path), "home/link.json");
    CU_ASSERT_EQUAL_FATAL(symlink("one/creds.json", path), 0);
    ot_lchown_other(path);
    t.access_token = "through-the-link";
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_load(real, &got, NULL, err,
                                            sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(got.access_token, "through-the-link");
    oauth_tokens_free(&got);
    CU_ASSERT_TRUE(stat(real, &st) == 0 && st.st_uid == OT_OTHER_ID);

    /* The token file replaced by a link to a root file: refused, the
     * root file untouched. */
    ot_path(path, sizeof(path), "home/planted.json");
    CU_ASSERT_EQUAL_FATAL(symlink(victim, path), 0);
    ot_lchown_other(path);
    err[0] = '\0';
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "refusing"));
    CU_ASSERT_EQUAL_FATAL(stat(victim, &st), 0);
    CU_ASSERT_EQUAL(st.st_ino, before.st_ino);
    CU_ASSERT_EQUAL(st.st_size, before.st_size);
    CU_ASSERT_EQUAL(st.st_mode, before.st_mode);
    CU_ASSERT_EQUAL(st.st_uid, 0);
    CU_ASSERT_EQUAL(ot_temp_count(ot_dir), 0);

    /* A directory on the path replaced by a link into root's: the write
     * runs as the user, who may not write there. */
    ot_path(path, sizeof(path), "home/dirlink");
    CU_ASSERT_EQUAL_FATAL(symlink(rootdir, path), 0);
    ot_lchown_other(path);
    ot_path(path, sizeof(path), "home/dirlink/creds.json");
    err[0] = '\0';
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(EACCES)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "written as uid"));
    ot_path(path, sizeof(path), "rootdir/creds.json");
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    CU_ASSERT_EQUAL(ot_temp_count(rootdir), 0);

    /* A sticky world-writable directory of root's (a /tmp): a file in
     * it is written, directories to make in it are refused. */
    ot_path(path, sizeof(path), "sticky");
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
    CU_ASSERT_EQUAL(chmod(path, 01777), 0);
    ot_path(path, sizeof(path), "sticky/creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(stat(path, &st) == 0 && st.st_uid == 0);
    ot_path(path, sizeof(path), "sticky/new/creds.json");
    err[0] = '\0';
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "world-writable"));
    ot_path(path, sizeof(path), "sticky/new");
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    ot_dir_done();
}

static void test_save_makes_directories(void)
{
    struct oauth_tokens t = { .access_token = "a" };
    char path[OT_PATH_MAX], dir[OT_PATH_MAX], err[OAUTH_ERR_MAX];

    ot_dir_new();
    ot_path(path, sizeof(path), "one/two/creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ot_mode(path), 0600);
    ot_path(dir, sizeof(dir), "one");
    CU_ASSERT_EQUAL(ot_mode(dir), 0700);
    ot_path(dir, sizeof(dir), "one/two");
    CU_ASSERT_EQUAL(ot_mode(dir), 0700);
    CU_ASSERT_EQUAL(ot_temp_count(dir), 0);
    ot_dir_done();
}

static void test_save_errors(void)
{
    struct oauth_tokens t = { .access_token = "a" };
    struct oauth_tokens none = { .refresh_token = "r" };
    char path[OT_PATH_MAX], file[OT_PATH_MAX], err[OAUTH_ERR_MAX];

    ot_dir_new();
    /* The "directory" is a regular file. */
    ot_path(file, sizeof(file), "plain");
    ot_write(file, "x", 0600);
    ot_path(path, sizeof(path), "plain/creds.json");
    err[0] = '\0';
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOTDIR)));
    ot_path(path, sizeof(path), "plain/sub/creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot create directory"));
    /* A directory we may not write (root may write anywhere). */
    if (geteuid() != 0) {
        char ro[OT_PATH_MAX];

        ot_path(ro, sizeof(ro), "ro");
        CU_ASSERT_EQUAL_FATAL(mkdir(ro, 0500), 0);
        ot_path(path, sizeof(path), "ro/creds.json");
        CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(EACCES)));
        CU_ASSERT_EQUAL(ot_temp_count(ro), 0);
        chmod(ro, 0700);
    }
    /* The target is a directory: rename fails, the temporary goes. */
    ot_path(path, sizeof(path), "adir");
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
    ot_path(file, sizeof(file), "adir/x");
    ot_write(file, "x", 0600);
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "rename"));
    CU_ASSERT_EQUAL(ot_temp_count(ot_dir), 0);
    ot_path(path, sizeof(path), "creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &none, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(oauth_tokens_save("", &t, err, sizeof(err)), -1);
    ot_path(path, sizeof(path), "dir/");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), -1);
    ot_dir_done();
}

static void test_load_identity(void)
{
    struct oauth_tokens t = { .access_token = "a" }, got;
    struct oauth_file_id id1, id2, now;
    char path[OT_PATH_MAX], err[OAUTH_ERR_MAX];

    ot_dir_new();
    ot_path(path, sizeof(path), "creds.json");
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_load(path, &got, &id1, err,
                                            sizeof(err)), 0);
    oauth_tokens_free(&got);
    CU_ASSERT_EQUAL(oauth_file_stat(path, &now), 0);
    CU_ASSERT_TRUE(oauth_file_same(&id1, &now));
    CU_ASSERT_TRUE(id1.size > 0);
    /* Same contents written again: a new inode, so a different id. */
    CU_ASSERT_EQUAL(oauth_tokens_save(path, &t, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(oauth_file_stat(path, &now), 0);
    CU_ASSERT_FALSE(oauth_file_same(&id1, &now));
    CU_ASSERT_EQUAL_FATAL(oauth_tokens_load(path, &got, &id2, err,
                                            sizeof(err)), 0);
    oauth_tokens_free(&got);
    CU_ASSERT_TRUE(oauth_file_same(&id2, &now));
    ot_dir_done();
    errno = 0;
    CU_ASSERT_EQUAL(oauth_file_stat(path, &now), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
}

static void test_load_errors(void)
{
    struct oauth_tokens got;
    char path[OT_PATH_MAX], err[OAUTH_ERR_MAX];
    char *big;
    int fd;

    ot_dir_new();
    ot_path(path, sizeof(path), "missing.json");
    CU_ASSERT_EQUAL(oauth_tokens_load(path, &got, NULL, err, sizeof(err)),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOENT)));
    ot_path(path, sizeof(path), "bad.json");
    ot_write(path, "{\"access_token\":\"" OT_SECRET "\"} x", 0600);
    CU_ASSERT_EQUAL(oauth_tokens_load(path, &got, NULL, err, sizeof(err)),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "trailing"));
    CU_ASSERT_PTR_NULL(strstr(err, "SECRET"));
    ot_path(path, sizeof(path), "big.json");
    big = calloc(1, OAUTH_FILE_MAX + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, big, OAUTH_FILE_MAX + 1), OAUTH_FILE_MAX + 1);
    close(fd);
    free(big);
    CU_ASSERT_EQUAL(oauth_tokens_load(path, &got, NULL, err, sizeof(err)),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger"));
    CU_ASSERT_EQUAL(oauth_tokens_load(ot_dir, &got, NULL, err, sizeof(err)),
                    -1);
    ot_dir_done();
}

static void test_iflow_settings(void)
{
    char path[OT_PATH_MAX], err[OAUTH_ERR_MAX];
    char *key = NULL, *url = NULL;

    ot_dir_new();
    ot_path(path, sizeof(path), "settings.json");
    ot_write(path, "{\"theme\":\"Default\",\"selectedAuthType\":"
             "\"oauth-iflow\",\"apiKey\":\"sk-abc\",\"baseUrl\":"
             "\"https://apis.iflow.cn/v1\",\"modelName\":\"qwen3\"}", 0600);
    CU_ASSERT_EQUAL_FATAL(oauth_iflow_settings_load(path, &key, &url, err,
                                                    sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(key, "sk-abc");
    CU_ASSERT_STRING_EQUAL(url, "https://apis.iflow.cn/v1");
    oauth_secret_free(&key);
    free(url);
    ot_write(path, "{\"apiKey\":\"\",\"other\":1}", 0600);
    CU_ASSERT_EQUAL(oauth_iflow_settings_load(path, &key, &url, err,
                                              sizeof(err)), 0);
    CU_ASSERT_PTR_NULL(key);
    CU_ASSERT_PTR_NULL(url);
    ot_write(path, "{\"apiKey\":\"sk\",\"baseUrl\":7}", 0600);
    CU_ASSERT_EQUAL(oauth_iflow_settings_load(path, &key, &url, err,
                                              sizeof(err)), -1);
    CU_ASSERT_PTR_NULL(key);
    CU_ASSERT_PTR_NULL(url);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "baseUrl"));
    ot_write(path, "[]", 0600);
    CU_ASSERT_EQUAL(oauth_iflow_settings_load(path, &key, &url, err,
                                              sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a JSON object"));
    ot_path(path, sizeof(path), "none.json");
    CU_ASSERT_EQUAL(oauth_iflow_settings_load(path, &key, &url, err,
                                              sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOENT)));
    ot_dir_done();
}

/* ---- forms --------------------------------------------------------- */

static void test_urlencode(void)
{
    char *s = oauth_urlencode("aZ09-._~ !\"#$%&'()*+,/:;=?@[]\n\xc3\xa9");

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "aZ09-._~%20%21%22%23%24%25%26%27%28%29%2A%2B"
                              "%2C%2F%3A%3B%3D%3F%40%5B%5D%0A%C3%A9");
    free(s);
    s = oauth_urlencode("");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
}

static void test_forms(void)
{
    char *f;

    f = oauth_form_device_code("cid", OAUTH_QWEN_SCOPE, OT_RFC_CHALLENGE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(f, "client_id=cid&scope=openid%20profile%20email"
                              "%20model.completion&code_challenge="
                              OT_RFC_CHALLENGE "&code_challenge_method=S256");
    oauth_secret_free(&f);
    f = oauth_form_device_poll("cid", "dev&code=x", OT_RFC_VERIFIER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(f, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                              "grant-type%3Adevice_code&client_id=cid&"
                              "device_code=dev%26code%3Dx&code_verifier="
                              OT_RFC_VERIFIER);
    oauth_secret_free(&f);
    f = oauth_form_refresh("cid", NULL, "r+t/=");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(f, "grant_type=refresh_token&refresh_token="
                              "r%2Bt%2F%3D&client_id=cid");
    oauth_secret_free(&f);
    f = oauth_form_refresh("cid", "s e", "rt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(f, "grant_type=refresh_token&refresh_token=rt&"
                              "client_id=cid&client_secret=s%20e");
    oauth_secret_free(&f);
}

/* ---- answers ------------------------------------------------------- */

struct ot_answer {
    long status;
    const char *body;
    enum oauth_result result;
    const char *reason;            /* a part of err when not OK, or NULL */
};

static void test_parse_poll(void)
{
    static const struct ot_answer cases[] = {
        { 400, "{\"error\":\"authorization_pending\"}", OAUTH_PENDING,
          "authorization_pending" },
        { 428, "{\"error\":\"authorization_pending\",\"error_description\":"
               "\"wait\"}", OAUTH_PENDING, "wait" },
        { 429, "{\"error\":\"slow_down\"}", OAUTH_SLOW_DOWN, "slow_down" },
        { 400, "{\"error\":\"slow_down\"}", OAUTH_SLOW_DOWN, NULL },
        { 400, "{\"error\":\"expired_token\"}", OAUTH_EXPIRED, "expired" },
        { 403, "{\"error\":\"access_denied\"}", OAUTH_DENIED, "denied" },
        { 200, "{\"error\":\"authorization_pending\"}", OAUTH_PENDING, NULL },
        { 400, "{\"error\":\"invalid_grant\",\"error_description\":"
               "\"bad \\u001b[31mcode\\n\"}", OAUTH_FAILED,
          "HTTP 400: invalid_grant: bad ?[31mcode?" },
        { 400, "{\"error\":7}", OAUTH_FAILED, "no error code" },
        { 500, "{}", OAUTH_FAILED, "HTTP 500" },
        { 502, "<html>bad gateway</html>", OAUTH_FAILED,
          "HTTP 502: not JSON" },
        { 200, "", OAUTH_FAILED, "HTTP 200: not JSON" },
        { 200, "{\"token_type\":\"Bearer\"}", OAUTH_FAILED, "access_token" },
        { 200, "{\"access_token\":5}", OAUTH_FAILED, "access_token" },
        { 200, "{\"access_token\":\"a\",\"expires_in\":-5}", OAUTH_FAILED,
          "expires_in" },
        { 200, "{\"access_token\":\"a\",\"expires_in\":{}}", OAUTH_FAILED,
          "expires_in" },
        { 200, "{\"access_token\":\"a\"} junk", OAUTH_FAILED, "not JSON" },
    };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum oauth_result r;

        err[0] = '\0';
        r = oauth_parse_poll(cases[i].status, cases[i].body,
                             strlen(cases[i].body), OT_NOW_MS, &t, err,
                             sizeof(err));
        if (r != cases[i].result)
            fprintf(stderr, "\n  poll case %zu: %d, err \"%s\"\n", i, r, err);
        CU_ASSERT_EQUAL(r, cases[i].result);
        CU_ASSERT_PTR_NULL(t.access_token);
        if (cases[i].reason != NULL) {
            if (strstr(err, cases[i].reason) == NULL)
                fprintf(stderr, "\n  poll case %zu: err \"%s\" lacks "
                        "\"%s\"\n", i, err, cases[i].reason);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].reason));
        }
    }
}

static enum oauth_result ot_poll(long status, const char *body,
                                 struct oauth_tokens *t, char *err,
                                 size_t errlen)
{
    return oauth_parse_poll(status, body, strlen(body), OT_NOW_MS, t, err,
                            errlen);
}

static void test_parse_poll_ok(void)
{
    static const char body[] =
        "{\"access_token\":\"acc\",\"refresh_token\":\"ref\","
        "\"token_type\":\"Bearer\",\"expires_in\":3600,"
        "\"resource_url\":\"portal.qwen.ai\",\"scope\":\"openid\"}";
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    CU_ASSERT_EQUAL_FATAL(oauth_parse_poll(200, body, strlen(body),
                                           OT_NOW_MS, &t, err, sizeof(err)),
                          OAUTH_OK);
    CU_ASSERT_STRING_EQUAL(t.access_token, "acc");
    CU_ASSERT_STRING_EQUAL(t.refresh_token, "ref");
    CU_ASSERT_STRING_EQUAL(t.resource_url, "portal.qwen.ai");
    CU_ASSERT_STRING_EQUAL(t.scope, "openid");
    CU_ASSERT_EQUAL(t.expiry_ms, OT_NOW_MS + 3600 * 1000LL);
    oauth_tokens_free(&t);
    /* expires_in as a fraction and as a string; token_type defaulted. */
    CU_ASSERT_EQUAL_FATAL(ot_poll(200, "{\"access_token\":\"a\","
                                  "\"expires_in\":1.9}", &t, err,
                                  sizeof(err)), OAUTH_OK);
    CU_ASSERT_EQUAL(t.expiry_ms, OT_NOW_MS + 1000);
    CU_ASSERT_STRING_EQUAL(t.token_type, "Bearer");
    oauth_tokens_free(&t);
    CU_ASSERT_EQUAL_FATAL(ot_poll(201, "{\"access_token\":\"a\","
                                  "\"expires_in\":\"60\"}", &t, err,
                                  sizeof(err)), OAUTH_OK);
    CU_ASSERT_EQUAL(t.expiry_ms, OT_NOW_MS + 60000);
    oauth_tokens_free(&t);
    CU_ASSERT_EQUAL_FATAL(ot_poll(200, "{\"access_token\":\"a\"}", &t, err,
                                  sizeof(err)), OAUTH_OK);
    CU_ASSERT_EQUAL(t.expiry_ms, 0);
    oauth_tokens_free(&t);
}

static void test_parse_refresh(void)
{
    static const struct ot_answer cases[] = {
        { 400, "{\"error\":\"invalid_grant\"}", OAUTH_REVOKED,
          "invalid_grant" },
        { 401, "{\"error\":\"invalid_client\"}", OAUTH_REVOKED,
          "HTTP 401" },
        { 401, "Unauthorized", OAUTH_FAILED, "not JSON" },
        { 403, "{\"error\":\"forbidden\"}", OAUTH_FAILED, "forbidden" },
        { 429, "{\"error\":\"rate_limited\"}", OAUTH_FAILED, "HTTP 429" },
        { 500, "oops", OAUTH_FAILED, "HTTP 500: not JSON" },
        { 200, "{\"error\":\"invalid_grant\"}", OAUTH_FAILED,
          "invalid_grant" },
        { 200, "{\"refresh_token\":\"r\"}", OAUTH_FAILED, "access_token" },
        { 200, "{\"access_token\":[]}", OAUTH_FAILED, "access_token" },
        { 200, "not json", OAUTH_FAILED, "not JSON" },
    };
    struct oauth_tokens old = { .access_token = "old-a",
                                .refresh_token = "old-r" };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum oauth_result r;

        err[0] = '\0';
        r = oauth_parse_refresh(cases[i].status, cases[i].body,
                                strlen(cases[i].body), OT_NOW_MS, &old, &t,
                                err, sizeof(err));
        if (r != cases[i].result)
            fprintf(stderr, "\n  refresh case %zu: %d, err \"%s\"\n", i, r,
                    err);
        CU_ASSERT_EQUAL(r, cases[i].result);
        CU_ASSERT_PTR_NULL(t.access_token);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].reason));
    }
}

static void test_parse_refresh_keeps_old(void)
{
    struct oauth_tokens old = {
        .access_token = "old-a", .refresh_token = "old-r",
        .resource_url = "portal.qwen.ai", .scope = "s", .api_key = "k",
        .token_type = "Bearer", .expiry_ms = 5,
    };
    struct oauth_tokens t;
    char err[OAUTH_ERR_MAX];
    static const char partial[] = "{\"access_token\":\"new-a\","
                                  "\"expires_in\":7200}";
    static const char full[] = "{\"access_token\":\"new-a\","
                               "\"refresh_token\":\"new-r\","
                               "\"token_type\":\"bearer\","
                               "\"resource_url\":\"other.host\"}";

    CU_ASSERT_EQUAL_FATAL(oauth_parse_refresh(200, partial, strlen(partial),
                                              OT_NOW_MS, &old, &t, err,
                                              sizeof(err)), OAUTH_OK);
    CU_ASSERT_STRING_EQUAL(t.access_token, "new-a");
    CU_ASSERT_STRING_EQUAL(t.refresh_token, "old-r");
    CU_ASSERT_STRING_EQUAL(t.resource_url, "portal.qwen.ai");
    CU_ASSERT_STRING_EQUAL(t.scope, "s");
    CU_ASSERT_STRING_EQUAL(t.api_key, "k");
    CU_ASSERT_STRING_EQUAL(t.token_type, "Bearer");
    CU_ASSERT_EQUAL(t.expiry_ms, OT_NOW_MS + 7200 * 1000LL);
    CU_ASSERT_PTR_NOT_EQUAL(t.refresh_token, old.refresh_token);
    oauth_tokens_free(&t);
    CU_ASSERT_EQUAL_FATAL(oauth_parse_refresh(200, full, strlen(full),
                                              OT_NOW_MS, &old, &t, err,
                                              sizeof(err)), OAUTH_OK);
    CU_ASSERT_STRING_EQUAL(t.refresh_token, "new-r");
    CU_ASSERT_STRING_EQUAL(t.resource_url, "other.host");
    CU_ASSERT_STRING_EQUAL(t.token_type, "bearer");
    CU_ASSERT_EQUAL(t.expiry_ms, 0);
    oauth_tokens_free(&t);
    CU_ASSERT_EQUAL_FATAL(oauth_parse_refresh(200, partial, strlen(partial),
                                              OT_NOW_MS, NULL, &t, err,
                                              sizeof(err)), OAUTH_OK);
    CU_ASSERT_PTR_NULL(t.refresh_token);
    oauth_tokens_free(&t);
}

static void test_parse_device(void)
{
    static const char qwen[] =
        "{\"device_code\":\"dc\",\"user_code\":\"ABCD-EFGH\","
        "\"verification_uri\":\"https://chat.qwen.ai/authorize\","
        "\"verification_uri_complete\":"
        "\"https://chat.qwen.ai/authorize?user_code=ABCD-EFGH&client=qwen-code\","
        "\"expires_in\":900}";
    static const char zero[] =
        "{\"device_code\":\"d\",\"user_code\":\"u\",\"verification_uri\":"
        "\"v\",\"interval\":0}";
    static const struct {
        long status;
        const char *body;
        const char *reason;
    } bad[] = {
        { 400, "{\"error\":\"invalid_client\"}", "HTTP 400: invalid_client" },
        { 500, "down", "HTTP 500: not JSON" },
        { 200, "{\"user_code\":\"u\",\"verification_uri\":\"v\"}",
          "device_code" },
        { 200, "{\"device_code\":\"d\",\"verification_uri\":\"v\"}",
          "user_code" },
        { 200, "{\"device_code\":\"d\",\"user_code\":\"u\"}",
          "verification_uri" },
        { 200, "{\"device_code\":\"d\",\"user_code\":\"u\\u001b]0;x\","
               "\"verification_uri\":\"v\"}", "printable" },
        { 200, "{\"device_code\":\"d\",\"user_code\":\"u\","
               "\"verification_uri\":\"v\",\"interval\":-1}", "interval" },
        { 200, "{\"device_code\":\"d\",\"user_code\":\"u\","
               "\"verification_uri\":\"v\",\"expires_in\":true}",
          "expires_in" },
    };
    struct oauth_device d;
    char err[OAUTH_ERR_MAX];

    CU_ASSERT_EQUAL_FATAL(oauth_parse_device(200, qwen, strlen(qwen), &d,
                                             err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(d.device_code, "dc");
    CU_ASSERT_STRING_EQUAL(d.user_code, "ABCD-EFGH");
    CU_ASSERT_STRING_EQUAL(d.verification_uri,
                           "https://chat.qwen.ai/authorize");
    CU_ASSERT_PTR_NOT_NULL(d.verification_uri_complete);
    CU_ASSERT_EQUAL(d.expires_in_s, 900);
    CU_ASSERT_EQUAL(d.interval_s, OAUTH_DEFAULT_INTERVAL_S);
    oauth_device_free(&d);
    CU_ASSERT_PTR_NULL(d.device_code);
    CU_ASSERT_EQUAL_FATAL(oauth_parse_device(200, zero, strlen(zero), &d, err,
                                             sizeof(err)), 0);
    CU_ASSERT_EQUAL(d.interval_s, 0);
    CU_ASSERT_EQUAL(d.expires_in_s, OAUTH_DEFAULT_EXPIRES_S);
    CU_ASSERT_PTR_NULL(d.verification_uri_complete);
    oauth_device_free(&d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(oauth_parse_device(bad[i].status, bad[i].body,
                                           strlen(bad[i].body), &d, err,
                                           sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(d.device_code);
        CU_ASSERT_PTR_NULL(d.user_code);
        if (strstr(err, bad[i].reason) == NULL)
            fprintf(stderr, "\n  device case %zu: err \"%s\"\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].reason));
    }
    oauth_device_free(NULL);
}

static void test_parse_userinfo(void)
{
    static const struct {
        long status;
        const char *body;
        const char *reason;
    } bad[] = {
        { 200, "{\"success\":false,\"message\":\"token invalid\"}",
          "token invalid" },
        { 200, "{\"success\":false,\"message\":\"bad\\u0007bell\"}",
          "refused" },
        { 200, "{\"data\":{\"apiKey\":\"k\"}}", "refused" },
        { 200, "{\"success\":\"true\",\"data\":{\"apiKey\":\"k\"}}",
          "refused" },
        { 401, "{\"success\":true,\"data\":{\"apiKey\":\"k\"}}", "HTTP 401" },
        { 200, "{\"success\":true}", "data" },
        { 200, "{\"success\":true,\"data\":[]}", "data" },
        { 200, "{\"success\":true,\"data\":{}}", "apiKey" },
        { 200, "{\"success\":true,\"data\":{\"apiKey\":\"\"}}", "apiKey" },
        { 200, "{\"success\":true,\"data\":{\"apiKey\":1}}", "apiKey" },
        { 200, "<html>", "not JSON" },
    };
    static const char good[] = "{\"success\":true,\"code\":\"200\","
                               "\"message\":\"ok\",\"data\":{\"apiKey\":"
                               "\"sk-123\",\"userName\":\"x\"}}";
    char err[OAUTH_ERR_MAX], *key = NULL;

    CU_ASSERT_EQUAL_FATAL(oauth_parse_iflow_userinfo(200, good, strlen(good),
                                                     &key, err, sizeof(err)),
                          0);
    CU_ASSERT_STRING_EQUAL(key, "sk-123");
    oauth_secret_free(&key);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(oauth_parse_iflow_userinfo(bad[i].status, bad[i].body,
                                                   strlen(bad[i].body), &key,
                                                   err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(key);
        if (strstr(err, bad[i].reason) == NULL)
            fprintf(stderr, "\n  userinfo case %zu: err \"%s\"\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].reason));
        CU_ASSERT_PTR_NULL(strchr(err, '\a'));
    }
}

static const CU_TestInfo oauth_tests[] = {
    { "RFC 7636 appendix B", test_rfc7636_vector },
    { "base64url at every tail length", test_base64url_lengths },
    { "verifier: length, alphabet, fresh", test_verifier },
    { "challenge refuses bad verifiers", test_challenge_refuses },
    { "resource_url to API base", test_api_base },
    { "Qwen CLI token file", test_parse_qwen_file },
    { "iFlow CLI token file", test_parse_iflow_file },
    { "null, unknown and nested members", test_parse_optional_members },
    { "credentials: no CR, LF, blank or non-ASCII", test_credential_bytes },
    { "token file refusals", test_parse_refusals },
    { "errors never hold a token", test_parse_err_has_no_token },
    { "large token, too large a file", test_parse_sizes },
    { "format, parse, copy round trip", test_format_round_trip },
    { "format leaves out absent members", test_format_minimal },
    { "save: 0600, atomic, replaces", test_save_mode_and_atomic },
    { "save: a symlink stays one; the owner is kept",
      test_save_keeps_link_and_owner },
    { "save as root: the rule for links", test_save_check_rule },
    { "save as root in a user's directory: as the user",
      test_save_as_root_in_user_dir },
    { "save makes directories 0700", test_save_makes_directories },
    { "save errors leave no temporary", test_save_errors },
    { "load identity notices a replace", test_load_identity },
    { "load errors", test_load_errors },
    { "iFlow settings file", test_iflow_settings },
    { "urlencode", test_urlencode },
    { "form bodies", test_forms },
    { "poll answers classified", test_parse_poll },
    { "poll answer with tokens", test_parse_poll_ok },
    { "refresh answers classified", test_parse_refresh },
    { "refresh keeps old members", test_parse_refresh_keeps_old },
    { "device authorization answer", test_parse_device },
    { "iFlow user info", test_parse_userinfo },
    CU_TEST_INFO_NULL
};

int register_oauth_tests(void)
{
    return unit_add_suite("oauth", oauth_tests);
}
