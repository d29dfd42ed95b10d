/* provider.c - the table of adapters (the runtime part of the provider
 * kinds, one line each) and what maps a configured provider onto its
 * adapter: a simulated kind (provkind.h) onto the mock, the anthropic
 * kind onto its own, every other onto the OpenAI-compatible adapter.
 * The worker's loop hands the adapters to the call logic; nothing below
 * it names this table. */
#include "worker_int.h"

#include "provkind.h"

static const struct provider_ops *const provider_table[] = {
    &provider_mock_ops,
    &provider_openai_ops,
    &provider_anthropic_ops,
};

#define PROVIDER_COUNT (sizeof(provider_table) / sizeof(provider_table[0]))

const struct provider_ops *provider_for(const struct cfg_provider *p)
{
    if (provkind_of(p->type)->simulated)
        return &provider_mock_ops;
    if (p->type == CFG_PROVIDER_ANTHROPIC)
        return &provider_anthropic_ops;
    return &provider_openai_ops;
}

int provider_init(struct worker *w)
{
    w->door_out = evbuffer_new();
    if (w->door_out == NULL)
        return -1;
    for (size_t i = 0; i < PROVIDER_COUNT; i++)
        if (provider_table[i]->init != NULL && provider_table[i]->init(w) < 0)
            return -1;
    return 0;
}

void provider_free(struct worker *w)
{
    for (size_t i = PROVIDER_COUNT; i-- > 0;)
        if (provider_table[i]->free != NULL)
            provider_table[i]->free(w);
    if (w->door_out != NULL)
        evbuffer_free(w->door_out);
    w->door_out = NULL;
}
