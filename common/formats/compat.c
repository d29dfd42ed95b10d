/* compat.c - applies a provider kind's request rules (the parameters its
 * descriptor says it does not take, provkind.h) and reads OpenAI-shaped
 * answers; see compat.h. Pure: no I/O, no global state. */
#include "compat.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apierror.h"
#include "jsonscan.h"
#include "provkind.h"
#include "request.h"

#define COMPAT_SNIPPET_MAX 120
#define COMPAT_SNIPPET_SCAN (COMPAT_SNIPPET_MAX + 8192)  /* what a secret
                                        straddling the snippet's end spans */
#define COMPAT_NAME_MAX    (6 * CFG_NAME_MAX + 3)   /* \u00XX per byte */
#define COMPAT_REDACTED    "***"
#define COMPAT_SECRET_MIN  4


/* Can the fast path take body as it is, with only its model's value
 * replaced? Not when a rule of type applies, when "model" is absent or
 * written more than once, or "stream" more than once (an upstream that
 * reads the first of duplicates would see the client's model or stream
 * flag, not ours), or when the scanner cannot tell (an escaped key).
 * *start, *end: the model's value. One pass over the body. */
static bool compat_splice_ok(enum cfg_provider_type type, const char *body,
                             size_t len, size_t *start, size_t *end)
{
    const struct provkind_param *r = provkind_of(type)->params;
    const char *keys[PROVKIND_COMPAT_MAX + 2];
    size_t st[PROVKIND_COMPAT_MAX + 2], en[PROVKIND_COMPAT_MAX + 2], n = 2;
    unsigned counts[PROVKIND_COMPAT_MAX + 2];

    keys[0] = "model";
    keys[1] = "stream";
    for (; r != NULL && r->key != NULL && n < PROVKIND_COMPAT_MAX + 2; r++)
        keys[n++] = r->key;
    if (js_count_members(body, len, keys, n, st, en, counts) < 0 ||
        counts[0] != 1 || counts[1] > 1)
        return false;
    for (size_t k = 2; k < n; k++)
        if (counts[k] != 0)
            return false;
    *start = st[0];
    *end = en[0];
    return true;
}

/* The slow path: a json-c tree, the rules applied, model set. */
static int compat_request_tree(enum cfg_provider_type type, const char *body,
                               size_t len, const char *model, char **out,
                               size_t *out_len)
{
    /* As deep as the front end lets a body be. */
    json_tokener *tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    json_object *root = NULL, *v;
    const char *s;
    size_t n;
    int rc = -1;

    if (tok == NULL)
        return -1;
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || !json_object_is_type(root, json_type_object))
        goto out;
    for (const struct provkind_param *r = provkind_of(type)->params;
         r != NULL && r->key != NULL; r++) {
        if (!json_object_object_get_ex(root, r->key, &v))
            continue;
        if (r->rename_to != NULL &&
            !json_object_object_get_ex(root, r->rename_to, NULL))
            json_object_object_add(root, r->rename_to, json_object_get(v));
        json_object_object_del(root, r->key);
    }
    json_object_object_add(root, "model", json_object_new_string(model));
    s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN |
                                          JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (s == NULL)
        goto out;
    *out = malloc(n + 1);
    if (*out == NULL)
        goto out;
    memcpy(*out, s, n + 1);
    *out_len = n;
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

int compat_request(enum cfg_provider_type type, const char *body, size_t len,
                   const char *model, char **out, size_t *out_len)
{
    char name[COMPAT_NAME_MAX];
    size_t start, end, name_len, n;

    *out = NULL;
    /* The common case: no rule applies and the body names a model;
     * splice the target's name in place of the client's. */
    if (!compat_splice_ok(type, body, len, &start, &end))
        return compat_request_tree(type, body, len, model, out, out_len);
    name[0] = '"';
    name_len = 1 + apierr_escape(name + 1, sizeof(name) - 2, model,
                                 strlen(model));
    name[name_len++] = '"';
    n = start + name_len + (len - end);
    *out = malloc(n + 1);
    if (*out == NULL)
        return -1;
    memcpy(*out, body, start);
    memcpy(*out + start, name, name_len);
    memcpy(*out + start + name_len, body + end, len - end);
    (*out)[n] = '\0';
    *out_len = n;
    return 0;
}

/* The common case of compat_ask_usage: a body without stream_options
 * gets the member spliced in before its closing brace, no tree. 1, or 0
 * when the scanner cannot tell (then the tree decides). */
static int compat_ask_usage_splice(const char *body, size_t len, char **out,
                                   size_t *out_len)
{
    static const char member[] = "\"stream_options\":{\"include_usage\":"
                                 "true}";
    static const char *const keys[] = { "stream_options" };
    size_t st, en, close, first, n;
    unsigned count;
    bool empty;

    if (js_count_members(body, len, keys, 1, &st, &en, &count) < 0 ||
        count != 0)
        return 0;
    /* A valid object: its last non-space byte is its closing brace. */
    close = len;
    while (close > 0 && isspace((unsigned char)body[close - 1]))
        close--;
    if (close == 0 || body[close - 1] != '}')
        return 0;
    close--;
    first = strspn(body, " \t\r\n") + 1;      /* after the '{' */
    while (first < close && isspace((unsigned char)body[first]))
        first++;
    empty = first == close;
    n = close + !empty + sizeof(member) - 1 + (len - close);
    *out = malloc(n + 1);
    if (*out == NULL)
        return -1;
    memcpy(*out, body, close);
    if (!empty)
        (*out)[close] = ',';
    memcpy(*out + close + !empty, member, sizeof(member) - 1);
    memcpy(*out + close + !empty + sizeof(member) - 1, body + close,
           len - close);
    (*out)[n] = '\0';
    *out_len = n;
    return 1;
}

int compat_ask_usage(const char *body, size_t len, char **out,
                     size_t *out_len)
{
    json_tokener *tok;
    json_object *root = NULL, *opts, *v;
    const char *s;
    size_t n;
    int rc;

    *out = NULL;
    rc = compat_ask_usage_splice(body, len, out, out_len);
    if (rc != 0)
        return rc;
    rc = -1;
    tok = json_tokener_new_ex(REQ_MAX_DEPTH);
    if (tok == NULL)
        return -1;
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || !json_object_is_type(root, json_type_object))
        goto out;
    if (!json_object_object_get_ex(root, "stream_options", &opts) ||
        !json_object_is_type(opts, json_type_object)) {
        opts = json_object_new_object();
        if (opts == NULL)
            goto out;
        json_object_object_add(root, "stream_options", opts);
    } else if (json_object_object_get_ex(opts, "include_usage", &v) &&
               json_object_is_type(v, json_type_boolean) &&
               json_object_get_boolean(v)) {
        rc = 0;
        goto out;
    }
    json_object_object_add(opts, "include_usage",
                           json_object_new_boolean(1));
    s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN |
                                          JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (s == NULL || (*out = malloc(n + 1)) == NULL)
        goto out;
    memcpy(*out, s, n + 1);
    *out_len = n;
    rc = 1;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

bool compat_usage_chunk(const char *data, size_t len)
{
    static const char *const keys[] = { "usage", "choices" };
    size_t st[2], en[2], i;

    if (js_find_members(data, len, keys, 2, st, en) < 0 || en[0] == 0 ||
        data[st[0]] != '{' || en[1] == 0 || data[st[1]] != '[')
        return false;
    for (i = st[1] + 1; i < en[1] && isspace((unsigned char)data[i]); i++)
        ;
    return i < en[1] && data[i] == ']';
}

/* The value at obj[s..e) (e == 0: absent) as an unsigned count; *found
 * says it was one. */
static uint32_t compat_count(const char *obj, size_t s, size_t e,
                             bool *found)
{
    long long v;

    *found = false;
    if (e == 0)
        return 0;
    v = js_int(obj + s, e - s, -1);
    if (v < 0)
        return 0;
    *found = true;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void compat_usage(const char *obj, size_t len, struct compat_usage *u)
{
    /* OpenAI's names, then Anthropic's where OpenAI's are missing; all
     * four found in one scan of the object. */
    enum { PROMPT, COMPLETION, INPUT, OUTPUT, KEYS };
    static const char *const keys[KEYS] = {
        "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"
    };
    size_t st[KEYS], en[KEYS];
    bool p, c, unused;

    u->prompt_tokens = u->completion_tokens = 0;
    if (js_find_members(obj, len, keys, KEYS, st, en) < 0)
        return;
    u->prompt_tokens = compat_count(obj, st[PROMPT], en[PROMPT], &p);
    u->completion_tokens = compat_count(obj, st[COMPLETION], en[COMPLETION],
                                        &c);
    if (!p)
        u->prompt_tokens = compat_count(obj, st[INPUT], en[INPUT], &unused);
    if (!c)
        u->completion_tokens = compat_count(obj, st[OUTPUT], en[OUTPUT],
                                            &unused);
}

const char *compat_check_answer(const char *body, size_t len,
                                struct compat_usage *u)
{
    /* One scan checks the body and finds both members. */
    enum { CHOICES, USAGE, KEYS };
    static const char *const keys[KEYS] = { "choices", "usage" };
    size_t st[KEYS], en[KEYS];

    if (len == 0)
        return "upstream answered with invalid JSON";
    if (js_find_members(body, len, keys, KEYS, st, en) < 0) {
        /* Bad JSON, another value, or a top-level key with an escape. */
        if (js_validate(body, len, JS_MAX_DEPTH) < 0)
            return "upstream answered with invalid JSON";
        return "upstream answer is not a JSON object";
    }
    if (en[CHOICES] == 0 || body[st[CHOICES]] != '[')
        return "upstream answer has no choices";
    if (en[USAGE] != 0 && body[st[USAGE]] == '{')
        compat_usage(body + st[USAGE], en[USAGE] - st[USAGE], u);
    return NULL;
}

/* A string member of obj, or NULL. */
static const char *compat_str(json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Copies s into out, printable bytes only. */
static void compat_printable(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return;
    for (size_t i = 0; i < len && n + 1 < cap; i++)
        out[n++] = isprint((unsigned char)s[i]) ? s[i] : ' ';
    out[n] = '\0';
}

/* Redacts secrets in a copy of s[0..n), then copies its printable bytes
 * into out[cap], cut to at most max bytes. Redacting before cutting: a
 * secret that straddles the cut would otherwise leave its first half. */
static void compat_shown(const char *s, size_t n, size_t max,
                         const char *const *secrets, size_t nsecrets,
                         char *out, size_t cap)
{
    char *copy = malloc(n + 1);

    if (copy == NULL) {
        out[0] = '\0';
        return;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    for (size_t i = 0; i < nsecrets; i++)
        compat_redact(copy, secrets[i]);
    n = strlen(copy);                /* a NUL in s ends the text */
    compat_printable(copy, n < max ? n : max, out, cap);
    explicit_bzero(copy, n);
    free(copy);
}

void compat_error_message(const char *body, size_t len,
                          const char *const *secrets, size_t nsecrets,
                          char *out, size_t cap)
{
    json_tokener *tok = len ? json_tokener_new_ex(REQ_MAX_DEPTH) : NULL;
    json_object *root = NULL, *err = NULL;
    const char *m = NULL;

    if (cap == 0)
        return;
    if (tok != NULL) {
        root = json_tokener_parse_ex(tok, body, (int)len);
        json_tokener_free(tok);
    }
    if (root != NULL && json_object_is_type(root, json_type_object)) {
        if (json_object_object_get_ex(root, "error", &err) && err != NULL) {
            m = json_object_is_type(err, json_type_string)
                    ? json_object_get_string(err) : compat_str(err, "message");
            if (m == NULL)
                m = json_object_get_string(err);
        } else {
            m = compat_str(root, "message");     /* DashScope, bare */
        }
    }
    if (m != NULL)
        compat_shown(m, strlen(m), cap - 1, secrets, nsecrets, out, cap);
    else
        compat_shown(body, len < COMPAT_SNIPPET_SCAN ? len
                                                     : COMPAT_SNIPPET_SCAN,
                     COMPAT_SNIPPET_MAX, secrets, nsecrets, out, cap);
    json_object_put(root);
}

void compat_redact(char *s, const char *secret)
{
    size_t n, r = strlen(COMPAT_REDACTED);
    char *p;

    if (s == NULL || secret == NULL)
        return;
    n = strlen(secret);
    if (n < COMPAT_SECRET_MIN)
        return;
    while ((p = strstr(s, secret)) != NULL) {
        memcpy(p, COMPAT_REDACTED, r);
        memmove(p + r, p + n, strlen(p + n) + 1);
        s = p + r;
    }
}
