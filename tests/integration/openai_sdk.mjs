// openai_sdk.mjs - the official openai SDK, unchanged, against the
// daemon's OpenAI door (test_openai_sdk.sh runs it with OPENAI_BASE_URL
// set to the daemon's /v1). One line per check, "ok NAME" or
// "FAIL NAME: why"; exit status 0 when every check passed.
import OpenAI from 'openai';

const client = new OpenAI({
    baseURL: process.env.OPENAI_BASE_URL,
    apiKey: process.env.OPENAI_API_KEY,
    maxRetries: 0,
    timeout: 20000,
});
const ANSWER = 'This is a mock answer from mock-small to: hello there';
const messages = [{ role: 'user', content: 'hello there' }];
let failed = 0;
function check(name, cond, why) {
    if (cond) console.log(`ok ${name}`);
    else { failed++; console.log(`FAIL ${name}: ${why}`); }
}
async function step(name, fn) {
    try { await fn(); } catch (e) { failed++; console.log(`FAIL ${name}: ${e}`); }
}
async function refused(name, fn, cls, status) {
    try {
        await fn();
        failed++;
        console.log(`FAIL ${name}: no error`);
    } catch (e) {
        check(name, e instanceof cls && e.status === status,
              `${e.constructor.name} ${e.status}: ${e.message}`);
    }
}

await step('chat.completions.create', async () => {
    const r = await client.chat.completions.create({ model: 'default',
                                                     messages });
    check('chat.completions.create', r.object === 'chat.completion' &&
          r.choices[0].message.content === ANSWER &&
          r.choices[0].finish_reason === 'stop' && r.usage.total_tokens > 0,
          JSON.stringify(r));
});
await step('create().withResponse() headers', async () => {
    const { response } = await client.chat.completions.create({
        model: 'default', messages }).withResponse();
    check('create().withResponse() headers',
          response.headers.get('x-request-id') !== null &&
          response.headers.get('x-pipeline-target') === 'local/mock-small',
          [...response.headers].join(' '));
});
await step('stream: true, chunks', async () => {
    const stream = await client.chat.completions.create({
        model: 'default', messages, stream: true,
        stream_options: { include_usage: true } });
    let text = '', finish = null, usage = null;
    for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        if (chunk.choices.length === 0) continue;
        text += chunk.choices[0].delta.content ?? '';
        finish = chunk.choices[0].finish_reason ?? finish;
    }
    check('stream: true, chunks', text === ANSWER && finish === 'stop' &&
          usage !== null && usage.completion_tokens > 0,
          `${text} / ${finish} / ${JSON.stringify(usage)}`);
});
await step('beta.chat.completions.stream().finalChatCompletion()', async () => {
    const r = await client.beta.chat.completions.stream({ model: 'default',
                                                     messages })
        .finalChatCompletion();
    check('beta.chat.completions.stream().finalChatCompletion()',
          r.choices[0].message.content === ANSWER, JSON.stringify(r));
});
await step('models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    check('models.list', ids.includes('default'), ids.join(','));
});
await refused('NotFoundError for an unknown model', () =>
    client.chat.completions.create({ model: 'no-such-model', messages }),
    OpenAI.NotFoundError, 404);
await refused('BadRequestError for a bad body', () =>
    client.chat.completions.create({ model: 'default', messages: 'x' }),
    OpenAI.BadRequestError, 400);
await refused('AuthenticationError for a wrong key', () =>
    new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: 'sk-wrong',
                 maxRetries: 0 })
        .chat.completions.create({ model: 'default', messages }),
    OpenAI.AuthenticationError, 401);
process.exit(failed ? 1 : 0);
