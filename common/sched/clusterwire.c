/* clusterwire.c - key names, breaker messages, heartbeat records and the
 * reconnect back-off of cluster mode (clusterwire.h). */
#include "clusterwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define CW_SEP '|'
#define CW_MS_DIGITS_MAX 15       /* CW_OPEN_MAX_MS fits in this */

bool cw_instance_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CW_INSTANCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return false;
    }
    return true;
}

bool cw_prefix_ok(const char *s)
{
    size_t n = strlen(s);

    if (n > CW_PREFIX_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

int cw_key(char *out, size_t outlen, const char *prefix, const char *kind,
           const char *name)
{
    int n = snprintf(out, outlen, "%s%s:%s", prefix, kind, name);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int cw_channel(char *out, size_t outlen, const char *prefix,
               const char *part)
{
    int n = snprintf(out, outlen, "%s%s", prefix, part);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static bool cw_msg_ok(const struct cw_msg *msg)
{
    size_t name_len = strnlen(msg->name, CW_NAME_MAX);

    if (msg->kind == CW_OPEN) {
        if (msg->remaining_ms < 1 || msg->remaining_ms > CW_OPEN_MAX_MS)
            return false;
    } else if ((msg->kind != CW_RESET && msg->kind != CW_CLOSE) ||
               msg->remaining_ms != 0) {
        return false;
    }
    return cw_instance_ok(msg->origin) && name_len > 0 &&
           name_len < CW_NAME_MAX;
}

int cw_encode(char *out, size_t outlen, const struct cw_msg *msg)
{
    int n;

    if (!cw_msg_ok(msg))
        return -1;
    n = snprintf(out, outlen, "%c%c%lld%c%s%c%s", msg->kind, CW_SEP,
                 (long long)msg->remaining_ms, CW_SEP, msg->origin, CW_SEP,
                 msg->name);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int cw_decode(const char *buf, size_t len, struct cw_msg *msg)
{
    const char *p = buf, *end = buf + len, *sep;
    size_t n;
    int digits = 0;

    memset(msg, 0, sizeof(*msg));
    if (len < 2 || p[1] != CW_SEP)
        return -1;
    msg->kind = p[0];
    p += 2;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (++digits > CW_MS_DIGITS_MAX)
            return -1;
        msg->remaining_ms = msg->remaining_ms * 10 + (*p - '0');
    }
    /* One spelling per number (no leading zeros): a message reads back
     * to the very bytes it came in. */
    if (digits == 0 || (digits > 1 && buf[2] == '0') || p >= end ||
        *p != CW_SEP)
        return -1;
    p++;
    sep = memchr(p, CW_SEP, (size_t)(end - p));
    if (sep == NULL || (size_t)(sep - p) > CW_INSTANCE_MAX ||
        memchr(p, '\0', (size_t)(sep - p)) != NULL)
        return -1;
    memcpy(msg->origin, p, (size_t)(sep - p));
    p = sep + 1;
    n = (size_t)(end - p);
    if (n == 0 || n >= CW_NAME_MAX || memchr(p, '\0', n) != NULL)
        return -1;
    memcpy(msg->name, p, n);
    return cw_msg_ok(msg) ? 0 : -1;
}

char *cw_instance_encode(const struct cw_instance *in)
{
    json_object *o = json_object_new_object();
    char *s;

    if (o == NULL)
        return NULL;
    json_object_object_add(o, "instance", json_object_new_string(
        in->instance));
    json_object_object_add(o, "pid", json_object_new_int64(in->pid));
    json_object_object_add(o, "host", json_object_new_string(in->host));
    json_object_object_add(o, "listen", json_object_new_string(in->listen));
    json_object_object_add(o, "last_seen_ms", json_object_new_int64(
        in->last_seen_ms));
    json_object_object_add(o, "requests", json_object_new_int64(
        in->requests));
    s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static int cw_get_str(json_object *o, const char *key, char *out,
                      size_t outlen)
{
    json_object *v;
    const char *s;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return -1;
    s = json_object_get_string(v);
    if (strlen(s) >= outlen)
        return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int cw_get_int(json_object *o, const char *key, int64_t *out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_int64(v);
    return 0;
}

int cw_instance_decode(const char *buf, size_t len, struct cw_instance *in)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    int rc = -1;

    memset(in, 0, sizeof(*in));
    if (tok == NULL || len > (size_t)INT32_MAX) {
        json_tokener_free(tok);
        return -1;
    }
    o = json_tokener_parse_ex(tok, buf, (int)len);
    if (o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
        json_object_is_type(o, json_type_object) &&
        cw_get_str(o, "instance", in->instance, sizeof(in->instance)) == 0 &&
        cw_instance_ok(in->instance) &&
        cw_get_str(o, "host", in->host, sizeof(in->host)) == 0 &&
        cw_get_str(o, "listen", in->listen, sizeof(in->listen)) == 0 &&
        cw_get_int(o, "pid", &in->pid) == 0 &&
        cw_get_int(o, "last_seen_ms", &in->last_seen_ms) == 0 &&
        cw_get_int(o, "requests", &in->requests) == 0)
        rc = 0;
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}

int64_t cw_backoff_ms(unsigned attempt)
{
    int64_t ms = CW_RETRY_BASE_MS;

    for (unsigned i = 0; i < attempt && ms < CW_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms > CW_RETRY_MAX_MS ? CW_RETRY_MAX_MS : ms;
}
