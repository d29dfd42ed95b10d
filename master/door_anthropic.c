/* door_anthropic.c - the Anthropic Messages door: POST /v1/messages and
 * POST /v1/messages/count_tokens. A Messages request is checked here
 * (anthropic_req.c, the same rules the worker translates it by) and
 * queued as it is, flagged SHM_JOB_ANTHROPIC: the worker's adapter
 * translates it for an OpenAI-format target (and the answer back, plain
 * or as a stream filter, see docs/ARCHITECTURE.md) or sends it as it is
 * to an Anthropic one. Every answer of this door carries request-id
 * beside X-Request-Id, and its errors are in Anthropic's shape
 * ({"type":"error","error":{"type":...,"message":...}}), mid-stream as
 * an event: error of type api_error. */
#include "door.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "anthropic_err.h"
#include "anthropic_req.h"
#include "http.h"
#include "master.h"
#include "util.h"

#define DOOR_ANTHROPIC_ID_HEADER  "request-id"
#define DOOR_ANTHROPIC_MSG_MAX    128   /* a refusal message made here */
/* A failure after a stream's first byte is an api_error whatever its
 * status was (Anthropic's own streams say so). */
#define DOOR_ANTHROPIC_STREAM_STATUS 500
#define DOOR_ANTHROPIC_COUNT_MAX  64     /* bytes of {"input_tokens":n} */
/* The one client header sent on to an Anthropic target: the betas the
 * client asks for (its keys, x-api-key and Authorization, never are). */
#define DOOR_ANTHROPIC_BETA       "anthropic-beta"

static size_t door_anthropic_error(char *out, size_t cap, int status,
                                   const char *code, const char *message,
                                   bool in_stream)
{
    (void)code;
    return anthropic_err_format(out, cap, in_stream ?
                                DOOR_ANTHROPIC_STREAM_STATUS : status,
                                message);
}

static int door_anthropic_validate(const char *body, size_t len,
                                   struct req_info *info, char *err,
                                   size_t err_cap)
{
    struct anthropic_req_info ai;
    char *out = NULL;
    size_t out_len = 0;

    /* The translation is the check: what it refuses, no target could
     * serve. The worker makes it again for an OpenAI-format target (an
     * Anthropic one takes the body as it is), off the master's loop. */
    if (anthropic_req_to_openai(body, len, &out, &out_len, &ai, err,
                                err_cap) < 0)
        return -1;
    free(out);
    util_strlcpy(info->model, ai.model, sizeof(info->model));
    info->stream = ai.stream;
    return 0;
}

/* Every answer of this door is in its shape, whatever path it takes. */
static void door_anthropic_dress(struct http_req *req)
{
    req->error_format = door_anthropic_error;
    req->id_alias = DOOR_ANTHROPIC_ID_HEADER;
}

/* A beta's name: letters, digits, '-', '_', '.' (a list: ',' and
 * blanks between them). */
static bool door_anthropic_beta_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
           ch == '.' || ch == ',' || ch == ' ' || ch == '\t';
}

/* The client's anthropic-beta headers as one line "anthropic-beta: a,b"
 * in out (every one of them, joined by commas); "" when it sent none.
 * -1 when a value holds anything but beta names or the line would not
 * fit in cap. */
static int door_anthropic_beta(const struct http_req *req, char *out,
                               size_t cap)
{
    const struct hp_request *hp = req->head;
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < hp->header_count; i++) {
        const struct hp_header *h = &hp->headers[i];
        int n;

        if (h->name_len != strlen(DOOR_ANTHROPIC_BETA) ||
            strncasecmp(h->name, DOOR_ANTHROPIC_BETA, h->name_len) != 0)
            continue;
        for (size_t k = 0; k < h->value_len; k++)
            if (!door_anthropic_beta_char(h->value[k]))
                return -1;
        if (h->value_len == 0)
            continue;
        n = snprintf(out + o, cap - o, "%s%.*s", o == 0 ?
                     DOOR_ANTHROPIC_BETA ": " : ",", (int)h->value_len,
                     h->value);
        if (n < 0 || (size_t)n >= cap - o)
            return -1;
        o += (size_t)n;
    }
    return 0;
}

static void door_anthropic_messages(struct master *m, struct http_req *req,
                                    const struct door_core *core)
{
    char beta[SHM_JOB_FWD_MAX];

    door_anthropic_dress(req);
    if (req->head->method != HP_POST) {
        core->method_not_allowed(m, req, "POST");
        return;
    }
    if (door_anthropic_beta(req, beta, sizeof(beta)) < 0) {
        char msg[DOOR_ANTHROPIC_MSG_MAX];

        snprintf(msg, sizeof(msg), "anthropic-beta must be a comma-separated "
                 "list of beta names, under %d bytes in all",
                 SHM_JOB_FWD_MAX);
        core->refuse(m, req, 400, "invalid_request", msg);
        return;
    }
    core->submit(m, req, door_anthropic_validate, SHM_JOB_ANTHROPIC,
                 beta[0] != '\0' ? beta : NULL);
}

/* The model a count_tokens body names must exist, as for a message. */
static bool door_anthropic_model_known(struct master *m, const char *body,
                                       size_t len, char *model, size_t cap)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root, *v;
    bool known = true;

    if (tok == NULL)
        util_oom("a count_tokens body's parser");
    root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    model[0] = '\0';
    if (root != NULL && json_object_object_get_ex(root, "model", &v) &&
        json_object_is_type(v, json_type_string)) {
        util_strlcpy(model, json_object_get_string(v), cap);
        known = cfg_find_vmodel(m->cfg, model) >= 0 ||
                cfg_find_target(m->cfg, model) >= 0;
    }
    json_object_put(root);
    return known;
}

static void door_anthropic_count(struct master *m, struct http_req *req,
                                 const struct door_core *core)
{
    char err[ANTHROPIC_REQ_ERR_MAX], model[ANTHROPIC_REQ_MODEL_MAX];
    char body[DOOR_ANTHROPIC_COUNT_MAX];
    long long tokens = 0;
    int n;

    door_anthropic_dress(req);
    if (req->head->method != HP_POST) {
        core->method_not_allowed(m, req, "POST");
        return;
    }
    if (!core->authorized(m, req)) {
        core->refuse(m, req, 401, "invalid_api_key",
                     "missing or invalid API key");
        return;
    }
    if (anthropic_req_count_tokens(req->body, req->body_len, &tokens, err,
                                   sizeof(err)) < 0) {
        core->refuse(m, req, 400, "invalid_request", err);
        return;
    }
    if (!door_anthropic_model_known(m, req->body, req->body_len, model,
                                    sizeof(model))) {
        char msg[ANTHROPIC_REQ_ERR_MAX + ANTHROPIC_REQ_MODEL_MAX];

        snprintf(msg, sizeof(msg), "the model '%s' does not exist", model);
        core->refuse(m, req, 404, "model_not_found", msg);
        return;
    }
    n = snprintf(body, sizeof(body), "{\"input_tokens\":%lld}", tokens);
    log_msg(&m->log, LOG_INFO, req->id, "POST %s status=200 model=%s "
            "input_tokens=%lld", req->path, model, tokens);
    http_send(req, 200, "application/json", NULL, 0, body, (size_t)n);
}

const struct door door_anthropic = {
    .name = "anthropic",
    .routes = {
        { "/v1/messages", door_anthropic_messages },
        { "/v1/messages/count_tokens", door_anthropic_count },
        { NULL, NULL },
    },
    .prefix = "/v1/messages",
    .dress = door_anthropic_dress,
};
