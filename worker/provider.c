/* provider.c - maps a configured provider onto its adapter. Qwen and
 * iFlow speak the OpenAI-compatible protocol, with API keys or OAuth. */
#include "worker_int.h"

const struct provider_ops *provider_for(const struct cfg_provider *p)
{
    if (p->type == CFG_PROVIDER_MOCK)
        return &provider_mock_ops;
    return &provider_openai_ops;
}
