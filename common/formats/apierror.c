/* apierror.c - builds the error bodies every failure path returns. */
#include "apierror.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonscan.h"
#include "util.h"

#define APIERR_ESCAPE_MAX 6    /* longest escape: \u00XX */

const char *apierr_type(int status)
{
    switch (status) {
    case 400: case 404: case 405: case 413: case 414: case 431:
        return "invalid_request_error";
    case 401: case 403:
        return "authentication_error";
    case 429:
        return "rate_limit_error";
    case 502:
        return "upstream_error";
    case 503:
        return "service_unavailable";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

size_t apierr_escape(char *out, size_t cap, const char *src, size_t len)
{
    size_t o = 0;
    int cut = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        char esc[APIERR_ESCAPE_MAX + 1];
        size_t n;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (o + n >= cap) {
            cut = 1;
            break;
        }
        memcpy(out + o, esc, n);
        o += n;
    }
    /* A cut message must not end inside a UTF-8 sequence: drop a last
     * sequence that is incomplete, keep one that is whole. */
    if (cut && o > 0) {
        size_t lead = o;

        while (lead > 0 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80 &&
               o - lead < 3)
            lead--;
        if (lead > 0) {
            unsigned char c = (unsigned char)out[lead - 1];
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;

            if (need > 1 && o - lead + 1 < need)
                o = lead - 1;
        }
    }
    if (cap > 0)
        out[o] = '\0';
    return o;
}

size_t apierr_format(char *out, size_t cap, int status, const char *code,
                     const char *message)
{
    static const char head[] = "{\"error\":{\"message\":\"";
    char tail[APIERR_BODY_MAX / 4];
    size_t n, room, tail_len;
    int t;

    if (cap == 0)
        return 0;
    /* The envelope first, so the message is cut, never the JSON. */
    if (code != NULL)
        t = snprintf(tail, sizeof(tail), "\",\"type\":\"%s\",\"code\":"
                     "\"%.64s\"}}", apierr_type(status), code);
    else
        t = snprintf(tail, sizeof(tail), "\",\"type\":\"%s\",\"code\":"
                     "null}}", apierr_type(status));
    tail_len = t > 0 ? (size_t)t : 0;
    if (sizeof(head) - 1 + tail_len + 1 > cap) {
        out[0] = '\0';
        return 0;
    }
    memcpy(out, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    room = cap - n - tail_len;     /* includes the final NUL */
    n += apierr_escape(out + n, room, message, strlen(message));
    memcpy(out + n, tail, tail_len + 1);
    return n + tail_len;
}

void apierr_keep(struct apierr_kept *k, int status, const char *code,
                 const char *message)
{
    k->status = status;
    util_strlcpy(k->code, code != NULL ? code : "", sizeof(k->code));
    util_strlcpy(k->message, message != NULL ? message : "",
                 sizeof(k->message));
}

const struct apierr_kept *apierr_final(const struct apierr_kept *last,
                                       const struct apierr_kept *untried)
{
    return last != NULL && last->status != 0 ? last : untried;
}

int apierr_code(const char *body, size_t len, char *out, size_t cap)
{
    size_t es, ee, cs, ce, n = 0;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    if (js_find_member(body, len, "error", &es, &ee) != 1 ||
        body[es] != '{' ||
        js_find_member(body + es, ee - es, "code", &cs, &ce) != 1)
        return -1;
    cs += es;
    ce += es;
    /* A string: its bytes between the quotes, none needing an escape. */
    if (ce - cs < 3 || body[cs] != '"' || body[ce - 1] != '"')
        return -1;
    for (size_t i = cs + 1; i < ce - 1; i++) {
        unsigned char c = (unsigned char)body[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
            out[0] = '\0';
            return -1;
        }
        if (n + 1 >= cap)
            break;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

int apierr_message(const char *body, size_t len, char *out, size_t cap)
{
    struct json_tokener *tok;
    struct json_object *root, *err, *msg;
    int rc = -1;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    tok = json_tokener_new();
    if (tok == NULL)
        util_oom("an error body's parser");
    root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (root != NULL && json_object_object_get_ex(root, "error", &err) &&
        json_object_object_get_ex(err, "message", &msg) &&
        json_object_is_type(msg, json_type_string)) {
        util_strlcpy(out, json_object_get_string(msg), cap);
        rc = 0;
    }
    json_object_put(root);
    return rc;
}
