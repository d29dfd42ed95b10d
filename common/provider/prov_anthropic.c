/* prov_anthropic.c - the anthropic kind: Anthropic's Messages API (or
 * one that speaks it) at base_url, by default Anthropic's own, signed
 * with x-api-key and anthropic-version. Its wire format is not OpenAI's:
 * the worker's adapter is provider_anthropic.c. */
#include "provkind.h"

#include <stdio.h>
#include <string.h>

#include "anthropic_up.h"

static int prov_anthropic_sign(const char *secret, bool stream,
                               provkind_add_fn add, void *arg)
{
    char line[PROVKIND_HEADER_MAX];
    int rc;

    if (add(arg, "Content-Type: application/json") < 0 ||
        add(arg, stream ? "Accept: text/event-stream"
                        : "Accept: application/json") < 0 ||
        add(arg, "anthropic-version: " ANTHROPIC_UP_VERSION) < 0 ||
        add(arg, "Expect:") < 0)
        return -1;
    if (secret == NULL)
        return 0;
    snprintf(line, sizeof(line), "x-api-key: %s", secret);
    rc = add(arg, line);
    explicit_bzero(line, sizeof(line));
    return rc;
}

const struct provkind provkind_anthropic = {
    .name = "anthropic",
    .label = "an Anthropic provider",
    .type = CFG_PROVIDER_ANTHROPIC,
    .auth_modes = PROVKIND_AUTH(CFG_AUTH_API_KEY),
    .default_auth = CFG_AUTH_API_KEY,
    .base_url_required = false,
    .base_url_api_key = "https://api.anthropic.com/v1",
    .chat_path = "/messages",
    .models_path = "/models",
    .sign = prov_anthropic_sign,
};
