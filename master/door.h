/* door.h - an API door of the front end: the paths of one client API
 * (OpenAI's chat completions, Anthropic's Messages) and how each is
 * served. A door is one file (master/door_<api>.c) and one line in
 * frontend.c's table. A door knows its own wire format; what every door
 * shares (client keys, limits, the queue, priorities, deadlines,
 * breakers, the log line) is the front end's, reached through the
 * struct door_core it is handed, so a door never calls frontend.c. */
#ifndef RCC_DOOR_H
#define RCC_DOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

struct master;
struct http_req;

#define DOOR_ROUTES_MAX 4

/* A door's request checker: 0 with info filled (model, stream), or -1
 * with a message for a 400 in err. */
typedef int (*door_validate_fn)(const char *body, size_t len,
                                struct req_info *info, char *err,
                                size_t err_cap);

/* What the front end offers every door. */
struct door_core {
    /* Whether the request carries a valid client key (Authorization:
     * Bearer or x-api-key), or no keys are configured. */
    bool (*authorized)(struct master *m, const struct http_req *req);
    /* A chat-like request from its receipt to its queueing: key, limits,
     * validate, X-Priority, X-Request-Timeout-Ms, model, breakers, queue;
     * job_flags go on its job (SHM_JOB_*), and fwd_header (a "name:
     * value" line under SHM_JOB_FWD_MAX bytes, or NULL) too, for the
     * worker to send to a target of the door's own format. Answers every refusal itself
     * (in the request's error_format) with its log line. */
    void (*submit)(struct master *m, struct http_req *req,
                   door_validate_fn validate, uint32_t job_flags,
                   const char *fwd_header);
    /* A refusal of a request that is not queued, with its log line. */
    void (*refuse)(struct master *m, struct http_req *req, int status,
                   const char *code, const char *message);
    /* 405 with Allow: allow. */
    void (*method_not_allowed)(struct master *m, struct http_req *req,
                               const char *allow);
};

struct door_route {
    const char *path;                       /* exact; NULL ends the list */
    /* Serves any method on path (a door refuses what it does not take). */
    void (*serve)(struct master *m, struct http_req *req,
                  const struct door_core *core);
};

struct door {
    const char *name;
    struct door_route routes[DOOR_ROUTES_MAX];
    /* Every path that is prefix or under it (prefix + "/...") is this
     * door's: dress is called on its requests as soon as their path is
     * known, before any answer (the HTTP server's own refusals, 404 for
     * a path under it that no route has), to set the request's
     * error_format and id_alias. NULL: none. */
    const char *prefix;
    void (*dress)(struct http_req *req);
};

extern const struct door door_anthropic;

#endif
