/* anthropic_err.c - owns the mapping between our HTTP statuses and
 * Anthropic's error types, the door's error bodies, and the reading of an
 * Anthropic upstream's error answers. */
#include "anthropic_err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apierror.h"
#include "util.h"

#define AE_MS_PER_S           1000
#define AE_RETRY_AFTER_MAX_S  86400   /* a longer wait is not believed */
#define AE_JSON_DEPTH         16      /* error bodies are shallow */
#define AE_STATUS_TIMEOUT     408
#define AE_STATUS_CONFLICT    409
#define AE_STATUS_RATE_LIMIT  429
#define AE_STATUS_UNAVAILABLE 503
#define AE_STATUS_BAD_GATEWAY 502
#define AE_STATUS_UNAUTHORIZED 401
#define AE_STATUS_FORBIDDEN   403
#define AE_STATUS_NOT_FOUND   404
#define AE_STATUS_CLIENT_MIN  400    /* 4xx: the request's fault */
#define AE_STATUS_SERVER_MIN  500

const char *anthropic_err_type(int status)
{
    switch (status) {
    case AE_STATUS_UNAUTHORIZED:
        return "authentication_error";
    case AE_STATUS_FORBIDDEN:
        return "permission_error";
    case AE_STATUS_NOT_FOUND:
        return "not_found_error";
    case AE_STATUS_RATE_LIMIT:
        return "rate_limit_error";
    case AE_STATUS_UNAVAILABLE: case ANTHROPIC_ERR_STATUS_OVERLOADED:
        return "overloaded_error";
    default:
        return status >= AE_STATUS_SERVER_MIN ? "api_error" :
                                                "invalid_request_error";
    }
}

size_t anthropic_err_format(char *out, size_t cap, int status,
                            const char *message)
{
    static const char head[] = "{\"type\":\"error\",\"error\":{\"type\":\"";
    static const char mid[] = "\",\"message\":\"";
    static const char tail[] = "\"}}";
    const char *type = anthropic_err_type(status);
    size_t fixed = strlen(head) + strlen(type) + strlen(mid) + strlen(tail);
    size_t o, n;

    if (cap == 0)
        return 0;
    if (cap <= fixed) {
        out[0] = '\0';
        return 0;
    }
    o = (size_t)snprintf(out, cap, "%s%s%s", head, type, mid);
    n = apierr_escape(out + o, cap - o - strlen(tail),
                      message ? message : "",
                      message ? strlen(message) : 0);
    o += n;
    memcpy(out + o, tail, strlen(tail) + 1);
    return o + strlen(tail);
}

size_t anthropic_err_event(char *out, size_t cap, const char *message)
{
    static const char head[] = "event: error\ndata: ";
    static const char tail[] = "\n\n";
    size_t o, n;

    if (cap <= strlen(head) + strlen(tail)) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    memcpy(out, head, strlen(head));
    o = strlen(head);
    n = anthropic_err_format(out + o, cap - o - strlen(tail),
                             AE_STATUS_BAD_GATEWAY, message);
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    o += n;
    memcpy(out + o, tail, strlen(tail) + 1);
    return o + strlen(tail);
}

/* A printable, one-line snippet of body (for bodies that are not JSON). */
static void ae_snippet(const char *body, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)body[i];

        out[o++] = (c >= ' ' && c < 0x7f) ? (char)c : ' ';
    }
    out[o] = '\0';
}

static long long ae_retry_after(const char *v)
{
    char *end;
    double s;

    if (v == NULL)
        return -1;
    while (isspace((unsigned char)*v))
        v++;
    errno = 0;
    s = strtod(v, &end);
    if (end == v || errno != 0 || !isfinite(s) || s < 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0')
        return -1;             /* an HTTP date: not used by Anthropic */
    if (s > AE_RETRY_AFTER_MAX_S)
        s = AE_RETRY_AFTER_MAX_S;
    return (long long)(s * AE_MS_PER_S);
}

void anthropic_err_classify(int status, const char *body, size_t len,
                            const char *retry_after,
                            struct anthropic_err_info *info)
{
    json_tokener *tok;
    json_object *root = NULL, *err, *v;

    memset(info, 0, sizeof(*info));
    info->status = status;
    info->retry_after_ms = ae_retry_after(retry_after);
    tok = json_tokener_new_ex(AE_JSON_DEPTH);
    if (tok == NULL)
        util_oom("json tokener");
    if (len > 0)
        root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (root != NULL && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "error", &err) &&
        json_object_is_type(err, json_type_object)) {
        if (json_object_object_get_ex(err, "type", &v) &&
            json_object_is_type(v, json_type_string))
            util_strlcpy(info->type, json_object_get_string(v),
                         sizeof(info->type));
        if (json_object_object_get_ex(err, "message", &v) &&
            json_object_is_type(v, json_type_string))
            util_strlcpy(info->message, json_object_get_string(v),
                         sizeof(info->message));
    }
    json_object_put(root);
    if (info->message[0] == '\0')
        ae_snippet(body, len, info->message, sizeof(info->message));
    /* Printable messages only: they reach logs and other clients. */
    for (char *p = info->message; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    if (status == ANTHROPIC_ERR_STATUS_OVERLOADED ||
        strcmp(info->type, "overloaded_error") == 0)
        info->cls = ANTHROPIC_ERR_OVERLOADED;
    else if (status == AE_STATUS_RATE_LIMIT)
        info->cls = ANTHROPIC_ERR_RATE_LIMIT;
    else if (status >= AE_STATUS_SERVER_MIN || status == AE_STATUS_TIMEOUT ||
             status == AE_STATUS_CONFLICT || status < AE_STATUS_CLIENT_MIN)
        info->cls = ANTHROPIC_ERR_SERVER;
    else
        info->cls = ANTHROPIC_ERR_CLIENT;
}

int anthropic_err_openai_status(const struct anthropic_err_info *info)
{
    switch (info->cls) {
    case ANTHROPIC_ERR_CLIENT:
        return info->status;
    case ANTHROPIC_ERR_RATE_LIMIT:
        return AE_STATUS_RATE_LIMIT;
    case ANTHROPIC_ERR_OVERLOADED:
        return AE_STATUS_UNAVAILABLE;
    default:
        return AE_STATUS_BAD_GATEWAY;
    }
}
