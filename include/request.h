/* request.h - validation of a client's chat-completion body: JSON object,
 * a model name, a non-empty messages array of role-bearing objects, an
 * optional boolean stream. Pure: no I/O. */
#ifndef RCC_REQUEST_H
#define RCC_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define REQ_MAX_DEPTH 64       /* JSON nesting a body may use */

struct req_info {
    char model[CFG_TARGET_NAME_MAX];
    bool stream;
};

/* 0 and *out filled, or -1 with a message for the client in err. */
int req_validate(const char *body, size_t len, struct req_info *out,
                 char *err, size_t errlen);

#endif
