/* provider.c - maps a configured provider onto its adapter. Qwen and
 * iFlow with API keys speak the OpenAI-compatible protocol. */
#include "worker_int.h"

const struct provider_ops *provider_for(const struct cfg_provider *p)
{
    if (p->type == CFG_PROVIDER_MOCK)
        return &provider_mock_ops;
    return &provider_openai_ops;
}
