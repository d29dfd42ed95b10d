/* provsign.h - request signatures the provider kinds share (a
 * descriptor's sign, provkind.h). */
#ifndef RCC_PROVSIGN_H
#define RCC_PROVSIGN_H

#include "provkind.h"

/* The OpenAI-compatible signature: JSON in, JSON or SSE accepted,
 * "Expect:" off, "Authorization: Bearer <secret>" when secret is set. */
int provsign_bearer(const char *secret, bool stream, provkind_add_fn add,
                    void *arg);

#endif
