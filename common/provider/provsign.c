/* provsign.c - the ways provider kinds sign a request, shared by their
 * descriptors (a kind with a way of its own keeps it in its prov_ file).
 * See provsign.h. */
#include "provsign.h"

#include <stdio.h>
#include <string.h>

int provsign_bearer(const char *secret, bool stream, provkind_add_fn add,
                    void *arg)
{
    char line[PROVKIND_HEADER_MAX];
    int rc;

    if (add(arg, "Content-Type: application/json") < 0 ||
        add(arg, stream ? "Accept: text/event-stream"
                        : "Accept: application/json") < 0 ||
        add(arg, "Expect:") < 0)
        return -1;
    if (secret == NULL)
        return 0;
    snprintf(line, sizeof(line), "Authorization: Bearer %s", secret);
    rc = add(arg, line);
    explicit_bzero(line, sizeof(line));
    return rc;
}
