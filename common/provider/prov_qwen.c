/* prov_qwen.c - the qwen kind: DashScope's OpenAI-compatible mode with an
 * API key, or the Qwen OAuth API with the Qwen CLI's tokens (device
 * login with PKCE: `pipelinectl login`; the API base from the tokens'
 * resource_url). */
#include "provkind.h"
#include "provsign.h"

#include "oauth.h"

static const struct provkind_param prov_qwen_params[] = {
    { "max_completion_tokens", "max_tokens" },
    { "store", NULL },
    { "metadata", NULL },
    { "service_tier", NULL },
    { "prediction", NULL },
    { "reasoning_effort", NULL },
    { NULL, NULL }
};

static const struct provkind_oauth prov_qwen_oauth = {
    .token_file = "~/.qwen/oauth_creds.json",
    .base_url = "https://chat.qwen.ai",
    .client_id = "f0304373b74a44d2b584a3fb70ca9e56",
    .token_path = "/api/v1/oauth2/token",
    .device_path = "/api/v1/oauth2/device/code",
    .scope = OAUTH_QWEN_SCOPE,
};

const struct provkind provkind_qwen = {
    .name = "qwen",
    .label = "a Qwen provider",
    .type = CFG_PROVIDER_QWEN,
    .auth_modes = PROVKIND_AUTH(CFG_AUTH_API_KEY) |
                  PROVKIND_AUTH(CFG_AUTH_OAUTH),
    .default_auth = CFG_AUTH_API_KEY,
    .base_url_api_key = CFG_DASHSCOPE_URL,
    .chat_path = "/chat/completions",
    .models_path = "/models",
    .sign = provsign_bearer,
    .params = prov_qwen_params,
    .oauth = &prov_qwen_oauth,
};
