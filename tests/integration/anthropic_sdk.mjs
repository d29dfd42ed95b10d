// anthropic_sdk.mjs - the official @anthropic-ai/sdk, unchanged, against
// the daemon's Anthropic door (test_anthropic.sh runs it with
// ANTHROPIC_BASE_URL set to the daemon). One line per check, "ok NAME"
// or "FAIL NAME: why"; exit status 0 when every check passed.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({
    baseURL: process.env.ANTHROPIC_BASE_URL,
    apiKey: process.env.ANTHROPIC_API_KEY,
    maxRetries: 0,
    timeout: 20000,
});
let failed = 0;
function check(name, cond, why) {
    if (cond) console.log(`ok ${name}`);
    else { failed++; console.log(`FAIL ${name}: ${why}`); }
}
async function step(name, fn) {
    try { await fn(); } catch (e) { failed++; console.log(`FAIL ${name}: ${e}`); }
}
const tools = [{
    name: 'get_weather', description: 'the weather in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } },
                    required: ['city'] },
}];
const user = [{ role: 'user', content: 'hello there' }];

for (const model of ['oa', 'claude']) {
    await step(`${model}: messages.create`, async () => {
        const m = await client.messages.create({ model, max_tokens: 64,
                                                 messages: user });
        check(`${model}: messages.create`, m.type === 'message' &&
              m.content[0].type === 'text' &&
              m.content[0].text === 'echo: hello there' &&
              m.stop_reason === 'end_turn', JSON.stringify(m));
    });
    await step(`${model}: messages.stream().finalMessage()`, async () => {
        let text = '';
        const stream = client.messages.stream({ model, max_tokens: 64,
                                                messages: user });
        stream.on('text', (t) => { text += t; });
        const m = await stream.finalMessage();
        check(`${model}: messages.stream().finalMessage()`,
              m.content[0].text === 'echo: hello there' &&
              text === 'echo: hello there' && m.stop_reason === 'end_turn' &&
              m.usage.output_tokens > 0, JSON.stringify(m));
    });
}
await step('tool use over two turns', async () => {
    const first = await client.messages.create({
        model: 'claude-tools', max_tokens: 64, tools,
        messages: [{ role: 'user', content: 'Paris' }] });
    const use = first.content.find((b) => b.type === 'tool_use');
    check('tool use: turn 1 asks for the tool', first.stop_reason ===
          'tool_use' && use && use.name === 'get_weather' &&
          use.input.city === 'Paris', JSON.stringify(first));
    const second = await client.messages.create({
        model: 'claude-tools', max_tokens: 64, tools, messages: [
            { role: 'user', content: 'Paris' },
            { role: 'assistant', content: first.content },
            { role: 'user', content: [{ type: 'tool_result',
                                        tool_use_id: use.id,
                                        content: 'sunny' }] }] });
    check('tool use: turn 2 answers with the result',
          second.content[0].text === 'tool result: sunny',
          JSON.stringify(second));
});
await step('tool use streamed', async () => {
    const m = await client.messages.stream({
        model: 'claude-tools', max_tokens: 64, tools,
        messages: [{ role: 'user', content: 'Paris' }] }).finalMessage();
    const use = m.content.find((b) => b.type === 'tool_use');
    check('tool use streamed: input assembled', use &&
          use.input.city === 'Paris', JSON.stringify(m));
});
await step('countTokens', async () => {
    const r = await client.messages.countTokens({ model: 'claude',
                                                  messages: user });
    check('countTokens', Number.isInteger(r.input_tokens) &&
          r.input_tokens > 0, JSON.stringify(r));
});
try {
    await client.messages.create({ model: 'no-such-model', max_tokens: 8,
                                   messages: user });
    check('NotFoundError for an unknown model', false, 'no error');
} catch (e) {
    check('NotFoundError for an unknown model',
          e instanceof Anthropic.NotFoundError && e.status === 404 &&
          e.error?.error?.type === 'not_found_error', String(e));
}
try {
    await client.messages.create({ model: 'claude', max_tokens: 8,
                                   messages: [] });
    check('BadRequestError for a bad body', false, 'no error');
} catch (e) {
    check('BadRequestError for a bad body',
          e instanceof Anthropic.BadRequestError && e.status === 400 &&
          e.error?.error?.type === 'invalid_request_error', String(e));
}
process.exit(failed === 0 ? 0 : 1);
