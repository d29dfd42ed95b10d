/* oauth.c - the OAuth token set: its strict JSON text (parse, format),
 * secret-safe free and copy. Secrets are wiped when this module frees
 * them, and never written into an error message. */
#include "oauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "jsonscan.h"
#include "oauth_json.h"
#include "privs.h"
#include "util.h"

#define OAUTH_FORMAT_FLAGS    (JSON_C_TO_STRING_PRETTY | \
                               JSON_C_TO_STRING_SPACED | \
                               JSON_C_TO_STRING_NOSLASHESCAPE)


/* The string members of a token file and of token answers, by the Qwen
 * and iFlow CLIs' names. */
struct oauth_member {
    const char *key;
    size_t offset;
};

static const struct oauth_member oauth_token_members[] = {
    { "access_token", offsetof(struct oauth_tokens, access_token) },
    { "refresh_token", offsetof(struct oauth_tokens, refresh_token) },
    { "token_type", offsetof(struct oauth_tokens, token_type) },
    { "resource_url", offsetof(struct oauth_tokens, resource_url) },
    { "scope", offsetof(struct oauth_tokens, scope) },
    { "apiKey", offsetof(struct oauth_tokens, api_key) },
};

#define OAUTH_TOKEN_MEMBER_COUNT \
    (sizeof(oauth_token_members) / sizeof(oauth_token_members[0]))

static char **oauth_member_ptr(struct oauth_tokens *t, size_t i)
{
    return (char **)((char *)t + oauth_token_members[i].offset);
}

static char *const *oauth_member_cptr(const struct oauth_tokens *t, size_t i)
{
    return (char *const *)((const char *)t + oauth_token_members[i].offset);
}

void oauth_secret_free(char **s)
{
    if (s == NULL || *s == NULL)
        return;
    explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

void oauth_tokens_free(struct oauth_tokens *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++)
        oauth_secret_free(oauth_member_ptr(t, i));
    t->expiry_ms = 0;
}

int oauth_tokens_copy(struct oauth_tokens *dst, const struct oauth_tokens *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++) {
        const char *s = *oauth_member_cptr(src, i);

        if (s == NULL)
            continue;
        *oauth_member_ptr(dst, i) = strdup(s);
        if (*oauth_member_ptr(dst, i) == NULL) {
            oauth_tokens_free(dst);
            return -1;
        }
    }
    dst->expiry_ms = src->expiry_ms;
    return 0;
}

void oauth_device_free(struct oauth_device *d)
{
    if (d == NULL)
        return;
    oauth_secret_free(&d->device_code);
    free(d->user_code);
    free(d->verification_uri);
    free(d->verification_uri_complete);
    memset(d, 0, sizeof(*d));
}


/* Reads the string members of a token text into t (already empty). */
int oauth_tokens_members(json_object *root, struct oauth_tokens *t,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++)
        if (oauth_json_str(root, oauth_token_members[i].key,
                           oauth_member_ptr(t, i), err, errlen) < 0)
            return -1;
    if (t->access_token == NULL) {
        oauth_fail(err, errlen, "no access_token");
        return -1;
    }
    if (t->access_token[0] == '\0') {
        oauth_fail(err, errlen, "'access_token' is empty");
        return -1;
    }
    return 0;
}

int oauth_tokens_parse(const char *text, size_t len, struct oauth_tokens *t,
                       char *err, size_t errlen)
{
    json_object *root;
    long long ms = 0;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    root = oauth_json_object(text, len, "token file", err, errlen);
    if (root == NULL)
        return -1;
    if (oauth_tokens_members(root, t, err, errlen) < 0)
        goto out;
    if (oauth_json_count(root, "expiry_date", false, INT64_MAX, false,
                         &ms) < 0) {
        oauth_fail(err, errlen, "'expiry_date' must be a number of "
                   "milliseconds since the epoch, not negative");
        goto out;
    }
    t->expiry_ms = ms;
    rc = 0;
out:
    if (rc < 0)
        oauth_tokens_free(t);
    oauth_json_wipe_put(root);
    return rc;
}

/* Adds member key = s to o unless s is NULL; -1 on ENOMEM. */
static int oauth_json_add_str(json_object *o, const char *key, const char *s)
{
    json_object *v;

    if (s == NULL)
        return 0;
    v = json_object_new_string(s);
    if (v == NULL)
        return -1;
    if (json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

char *oauth_tokens_format(const struct oauth_tokens *t)
{
    json_object *root = json_object_new_object();
    const char *json;
    char *text = NULL;
    size_t len;

    if (root == NULL)
        return NULL;
    for (size_t i = 0; i < OAUTH_TOKEN_MEMBER_COUNT; i++)
        if (oauth_json_add_str(root, oauth_token_members[i].key,
                               *oauth_member_cptr(t, i)) < 0)
            goto out;
    if (t->expiry_ms != 0) {
        json_object *v = json_object_new_int64(t->expiry_ms);

        if (v == NULL || json_object_object_add(root, "expiry_date", v) < 0) {
            json_object_put(v);
            goto out;
        }
    }
    json = json_object_to_json_string_ext(root, OAUTH_FORMAT_FLAGS);
    if (json == NULL)
        goto out;
    len = strlen(json);
    text = malloc(len + 2);
    if (text != NULL) {
        memcpy(text, json, len);
        text[len] = '\n';
        text[len + 1] = '\0';
    }
    /* json-c's serialization buffer belongs to root: wipe it too. */
    explicit_bzero((char *)json, len);
out:
    oauth_json_wipe_put(root);
    return text;
}
