'use strict';
// chat(): the OpenAI-compatible chat route, its results, its stream, and the same errors and
// retries as generate().

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const {
  SecureModelClient,
  ChatStream,
  APIConnectionError,
  AuthenticationError,
  NotFoundError,
  RateLimitError,
  ServiceError,
  ValidationError,
} = require('paitient-secure-model');
const { startStandIn, recorded } = require('./support/stand-in');

const MESSAGES = [
  { role: 'system', content: 'You are a careful clinical assistant.' },
  { role: 'user', content: 'What is PHI?' },
];
const USAGE = { promptTokens: 9, completionTokens: 3, totalTokens: 12 };

let standIn;
let client;

before(async () => {
  standIn = await startStandIn();
  client = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url });
  client._sleep = async () => {};
});
after(() => standIn.close());
beforeEach(() => standIn.reset());

const last = () => standIn.requests[standIn.requests.length - 1];

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** A scripted SSE answer made of these data events. */
function sseAnswer(...events) {
  return {
    handler(req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of events) res.write(`data: ${typeof event === 'string' ? event : JSON.stringify(event)}\n\n`);
      res.end();
    },
  };
}

const chunk = (delta, finishReason = null, extra = {}) => ({
  object: 'chat.completion.chunk',
  choices: delta === null ? [] : [{ index: 0, delta, finish_reason: finishReason }],
  ...extra,
});

test('chat sends the deployment as model and maps the answer', async () => {
  const result = await client.chat({
    deploymentId: 'deployment-123',
    messages: MESSAGES,
    maxTokens: 64,
    temperature: 0.2,
    extra: { seed: 7 },
  });
  assert.equal(last().method, 'POST');
  assert.equal(last().path, '/v1/chat/completions');
  assert.deepEqual(last().body, {
    seed: 7,
    model: 'deployment-123',
    messages: MESSAGES,
    max_tokens: 64,
    temperature: 0.2,
    stream: false,
  });
  assert.ok(last().headers['idempotency-key']);
  assert.deepEqual(result, {
    id: 'chatcmpl-1',
    deploymentId: 'deployment-123',
    model: 'ZimaBlueAI/HuatuoGPT-o1-8B',
    message: { role: 'assistant', content: 'Protected health information.' },
    finishReason: 'stop',
    usage: USAGE,
  });
});

test('chat leaves unset options to the server', async () => {
  await client.chat({ deploymentId: 'deployment-123', messages: MESSAGES });
  assert.deepEqual(Object.keys(last().body).sort(), ['messages', 'model', 'stream']);
});

test('a chat stream yields { content } chunks then one { finishReason, usage }', async () => {
  const stream = await client.chat({ deploymentId: 'deployment-123', messages: MESSAGES, stream: true });
  assert.ok(stream instanceof ChatStream);
  assert.equal(last().headers.accept, 'text/event-stream');
  assert.deepEqual(last().body.stream_options, { include_usage: true });
  assert.deepEqual(await collect(stream), [
    { content: 'Protected' },
    { content: ' health' },
    { content: ' information.' },
    { finishReason: 'stop', usage: USAGE },
  ]);
});

test('a finish reason that comes with text is split from it; no usage chunk still ends the stream', async () => {
  const usage = { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 };
  standIn.enqueue(sseAnswer(chunk({ content: 'a ' }), chunk({ content: 'b' }, 'length'), chunk(null, null, { usage }), '[DONE]'));
  assert.deepEqual(await collect(await client.chatStream({ deploymentId: 'deployment-123', messages: MESSAGES })), [
    { content: 'a ' },
    { content: 'b' },
    { finishReason: 'length', usage: { promptTokens: 2, completionTokens: 2, totalTokens: 4 } },
  ]);
  standIn.enqueue(sseAnswer(chunk({ content: 'x' }), chunk({}, 'stop')));
  assert.deepEqual(await collect(await client.chatStream({ deploymentId: 'deployment-123', messages: MESSAGES })), [
    { content: 'x' },
    { finishReason: 'stop' },
  ]);
});

test('a chat stream cut before its finish throws APIConnectionError; an error event its class', async () => {
  standIn.enqueue(sseAnswer(chunk({ content: 'x' })));
  await assert.rejects(
    collect(await client.chatStream({ deploymentId: 'deployment-123', messages: MESSAGES })),
    APIConnectionError,
  );
  standIn.enqueue(sseAnswer(chunk({ content: 'x' }), { error: { type: 'service_error', message: 'the model server failed' } }));
  await assert.rejects(
    collect(await client.chatStream({ deploymentId: 'deployment-123', messages: MESSAGES })),
    (err) => err instanceof ServiceError && err.message === 'the model server failed',
  );
});

test('chat throws the same error classes as generate', async () => {
  const bad = new SecureModelClient({ apiKey: 'wrong', clientId: 'client-1', baseUrl: standIn.url, maxRetries: 0 });
  await assert.rejects(bad.chat({ deploymentId: 'deployment-123', messages: MESSAGES }), AuthenticationError);
  await assert.rejects(client.chat({ deploymentId: 'nope', messages: MESSAGES }), NotFoundError);
  standIn.enqueue({ path: '/v1/chat/completions', status: 400, body: { error: { type: 'validation_error', message: 'bad' } } });
  await assert.rejects(client.chat({ deploymentId: 'deployment-123', messages: MESSAGES }), ValidationError);
});

test('chat is retried like generate, with one Idempotency-Key, and a last 429 carries retryAfter', async () => {
  // The front door's recorded answers: the limiter's 429 (60 s), a loading model's 503 (5 s).
  const CHAT = '/v1/chat/completions';
  const delays = [];
  client._sleep = async (ms) => delays.push(ms);
  try {
    standIn.enqueue(recorded('rate_limited', CHAT), recorded('model_loading', CHAT));
    const result = await client.chat({ deploymentId: 'deployment-123', messages: MESSAGES });
    assert.equal(result.message.content, 'Protected health information.');
    assert.deepEqual(delays, [60000, 5000]);
    const keys = new Set(standIn.requests.map((r) => r.headers['idempotency-key']));
    assert.equal(standIn.requests.length, 3);
    assert.equal(keys.size, 1);
  } finally {
    client._sleep = async () => {};
  }
  const once = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url, maxRetries: 0 });
  standIn.enqueue(recorded('usage_limit_reached', CHAT));
  await assert.rejects(
    once.chat({ deploymentId: 'deployment-123', messages: MESSAGES }),
    (err) => err instanceof RateLimitError && err.retryAfter === 3600,
  );
});

test('chat checks its arguments before sending', async () => {
  for (const messages of [undefined, [], 'hello']) {
    await assert.rejects(client.chat({ deploymentId: 'deployment-123', messages }), TypeError);
  }
  await assert.rejects(client.chat({ messages: MESSAGES }), TypeError);
  await assert.rejects(client.chat({ deploymentId: 'deployment-123', messages: MESSAGES, extra: 'x' }), TypeError);
  assert.equal(standIn.requests.length, 0);
});

test('an answer without choices is an invalid response', async () => {
  standIn.enqueue({ path: '/v1/chat/completions', status: 200, body: { id: 'x', choices: [] } });
  await assert.rejects(
    client.chat({ deploymentId: 'deployment-123', messages: MESSAGES }),
    (err) => err.type === 'invalid_response',
  );
});
