/* prov_openai.c - the openai kind: any OpenAI-compatible API at a
 * base_url that must be written, signed with an API key. */
#include "provkind.h"
#include "provsign.h"

const struct provkind provkind_openai = {
    .name = "openai",
    .label = "an OpenAI-compatible provider",
    .type = CFG_PROVIDER_OPENAI,
    .auth_modes = PROVKIND_AUTH(CFG_AUTH_API_KEY),
    .default_auth = CFG_AUTH_API_KEY,
    .base_url_required = true,
    .chat_path = "/chat/completions",
    .models_path = "/models",
    .sign = provsign_bearer,
};
