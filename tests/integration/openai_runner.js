// Calls a running front door's OpenAI routes from JavaScript the way users do: with the
// official `openai` package (a devDependency of sdk/js, resolved from there) and with our SDK's
// chat(). Prints one JSON object of what it saw, for tests/integration/test_openai_compat.py.
//
//   node openai_runner.js calls    every call once: chat and completions, JSON and streaming, models
//   node openai_runner.js refused  one chat call by each client, reporting the error it threw
//
// Environment: PAITIENT_BASE_URL, PAITIENT_API_KEY, PAITIENT_CLIENT_ID, OPENAI_RUNNER_MODEL.
'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');

const sdkDir = path.join(__dirname, '..', '..', 'sdk', 'js');
const { OpenAI } = createRequire(path.join(sdkDir, 'package.json'))('openai');
const sdk = require(sdkDir);

const env = (name) => {
  if (!process.env[name]) throw new Error(`${name} is not set`);
  return process.env[name];
};
const model = env('OPENAI_RUNNER_MODEL');
const messages = [{ role: 'user', content: 'alpha beta gamma' }];
const openai = new OpenAI({
  apiKey: env('PAITIENT_API_KEY'),
  baseURL: env('PAITIENT_BASE_URL'),
  defaultHeaders: { 'X-Client-ID': env('PAITIENT_CLIENT_ID') },
  maxRetries: 0,
});
const ours = new sdk.SecureModelClient({ maxRetries: 0 }); // credentials from the environment

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

async function calls() {
  const chat = await openai.chat.completions.create({ model, messages, max_tokens: 4 });
  const chatStream = await collect(
    await openai.chat.completions.create({ model, messages, max_tokens: 4, stream: true }),
  );
  const chatUsage = await collect(
    await openai.chat.completions.create({
      model, messages, max_tokens: 4, stream: true, stream_options: { include_usage: true },
    }),
  );
  const completion = await openai.completions.create({ model, prompt: 'one two three', max_tokens: 5 });
  const completionStream = await collect(
    await openai.completions.create({ model, prompt: 'one two three', max_tokens: 5, stream: true }),
  );
  const models = [];
  for await (const card of openai.models.list()) models.push(card.id);
  const sdkChat = await ours.chat({ deploymentId: model, messages, maxTokens: 4 });
  const sdkStream = await collect(await ours.chat({ deploymentId: model, messages, maxTokens: 4, stream: true }));
  return {
    chat: {
      content: chat.choices[0].message.content,
      finishReason: chat.choices[0].finish_reason,
      usage: chat.usage,
      requestId: chat._request_id,
    },
    chatStream: {
      content: chatStream.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join(''),
      finishReason: chatStream.map((c) => c.choices[0] && c.choices[0].finish_reason).filter(Boolean),
      usage: chatStream.filter((c) => c.usage).length,
    },
    chatUsage: { last: chatUsage[chatUsage.length - 1] },
    completion: { text: completion.choices[0].text, usage: completion.usage },
    completionStream: { text: completionStream.map((c) => c.choices[0] ? c.choices[0].text : '').join('') },
    models,
    sdkChat,
    sdkStream,
  };
}

function describe(err) {
  return {
    name: err && err.constructor && err.constructor.name,
    status: err.status,
    code: err.code === undefined ? null : err.code,
    retryAfter: err.headers && typeof err.headers.get === 'function' ? err.headers.get('retry-after') : err.retryAfter,
    openaiAuthentication: err instanceof OpenAI.AuthenticationError,
    openaiRateLimit: err instanceof OpenAI.RateLimitError,
    sdkAuthentication: err instanceof sdk.AuthenticationError,
    sdkRateLimit: err instanceof sdk.RateLimitError,
  };
}

async function refused() {
  const outcome = {};
  for (const [name, call] of [
    ['openai', () => openai.chat.completions.create({ model, messages, max_tokens: 4 })],
    ['sdk', () => ours.chat({ deploymentId: model, messages, maxTokens: 4 })],
  ]) {
    try {
      await call();
      outcome[name] = { name: 'no error' };
    } catch (err) {
      outcome[name] = describe(err);
    }
  }
  return outcome;
}

const scenarios = { calls, refused };
const scenario = scenarios[process.argv[2]];
if (!scenario) {
  console.error(`usage: node openai_runner.js ${Object.keys(scenarios).join('|')}`);
  process.exit(2);
}
scenario().then(
  (result) => console.log(JSON.stringify(result)),
  (err) => {
    console.error(`openai runner failed: ${err && err.stack}`);
    process.exit(1);
  },
);
