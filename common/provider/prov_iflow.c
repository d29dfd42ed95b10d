/* prov_iflow.c - the iflow kind: iFlow's OpenAI-compatible API with an
 * API key, or with the iFlow CLI's tokens and settings (log in with the
 * iFlow CLI; the Bearer key is the tokens' apiKey, fetched from
 * getUserInfo after each refresh, which needs client_secret). */
#include "provkind.h"
#include "provsign.h"

#define PROV_IFLOW_URL "https://apis.iflow.cn/v1"

static const struct provkind_param prov_iflow_params[] = {
    { "max_completion_tokens", "max_tokens" },
    { "store", NULL },
    { "metadata", NULL },
    { "service_tier", NULL },
    { "prediction", NULL },
    { NULL, NULL }
};

static const struct provkind_oauth prov_iflow_oauth = {
    .token_file = "~/.iflow/oauth_creds.json",
    .base_url = "https://iflow.cn",
    .settings_file = "~/.iflow/settings.json",
    .token_path = "/oauth/token",
    .login_elsewhere = "log in with the iFlow CLI (run `iflow`)",
    .refresh_needs_secret = true,
    .userinfo_path = "/api/oauth/getUserInfo?accessToken=",
    .base_from_settings = true,
};

const struct provkind provkind_iflow = {
    .name = "iflow",
    .label = "an iFlow provider",
    .type = CFG_PROVIDER_IFLOW,
    .auth_modes = PROVKIND_AUTH(CFG_AUTH_API_KEY) |
                  PROVKIND_AUTH(CFG_AUTH_OAUTH),
    .default_auth = CFG_AUTH_API_KEY,
    .base_url_api_key = PROV_IFLOW_URL,
    .base_url_oauth = PROV_IFLOW_URL,
    .chat_path = "/chat/completions",
    .models_path = "/models",
    .sign = provsign_bearer,
    .params = prov_iflow_params,
    .oauth = &prov_iflow_oauth,
};
