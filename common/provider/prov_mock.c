/* prov_mock.c - the mock kind: answered inside the worker (its runtime
 * part is worker/provider_mock.c), no upstream, no auth. */
#include "provkind.h"
#include "provsign.h"

const struct provkind provkind_mock = {
    .name = "mock",
    .label = "a mock provider",
    .type = CFG_PROVIDER_MOCK,
    .auth_modes = PROVKIND_AUTH(CFG_AUTH_NONE),
    .default_auth = CFG_AUTH_NONE,
    .simulated = true,
    .chat_path = "/chat/completions",
    .models_path = "/models",
    .sign = provsign_bearer,
};
