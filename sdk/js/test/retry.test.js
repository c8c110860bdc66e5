'use strict';
// The one retry policy: what is retried, how long it waits, and what stays the same.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { SecureModelClient, APIConnectionError, RateLimitError, ServiceError, ConflictError, ValidationError } =
  require('paitient-secure-model');
const retry = require('../lib/retry');
const { startStandIn } = require('./support/stand-in');

let standIn;

before(async () => {
  standIn = await startStandIn();
});
after(() => standIn.close());
beforeEach(() => standIn.reset());

/** A client whose sleeps are recorded instead of slept, with jitter fixed at `random`. */
function makeClient(options = {}, random = 0.5) {
  const client = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url, ...options });
  const sleeps = [];
  client._sleep = async (ms) => {
    sleeps.push(ms);
  };
  client._random = () => random;
  return { client, sleeps };
}

const unavailable = (headers = {}) => ({
  path: '/v1/subscription',
  status: 503,
  headers,
  body: { error: { type: 'service_error', message: 'try later' } },
});

// ---------------------------------------------------------------------------- pure policy

test('parseRetryAfter reads delta-seconds and HTTP dates', () => {
  const now = () => Date.parse('Wed, 26 Nov 2026 12:00:00 GMT');
  assert.equal(retry.parseRetryAfter('3'), 3);
  assert.equal(retry.parseRetryAfter(' 1.5 '), 1.5);
  assert.equal(retry.parseRetryAfter('Wed, 26 Nov 2026 12:00:10 GMT', now), 10);
  assert.equal(retry.parseRetryAfter('Wed, 26 Nov 2026 11:00:00 GMT', now), 0);
  assert.equal(retry.parseRetryAfter('-4'), 0);
  assert.equal(retry.parseRetryAfter('soon'), undefined);
  assert.equal(retry.parseRetryAfter(''), undefined);
  assert.equal(retry.parseRetryAfter(null), undefined);
});

test('backoff is full jitter over 500 ms * 2^attempt, capped at 8 s', () => {
  assert.equal(retry.backoffDelay(0, () => 1), 500);
  assert.equal(retry.backoffDelay(1, () => 1), 1000);
  assert.equal(retry.backoffDelay(3, () => 1), 4000);
  assert.equal(retry.backoffDelay(10, () => 1), 8000);
  assert.equal(retry.backoffDelay(2, () => 0), 0);
  assert.equal(retry.backoffDelay(2, () => 0.5), 1000);
});

test('Retry-After wins over backoff and is capped at 60 s', () => {
  const headers = (value) => new Headers(value === undefined ? {} : { 'retry-after': value });
  assert.equal(retry.retryDelay(0, headers('2'), () => 1), 2000);
  assert.equal(retry.retryDelay(0, headers('3600'), () => 1), 60000);
  assert.equal(retry.retryDelay(1, headers(), () => 1), 1000);
  assert.equal(retry.retryDelay(1, undefined, () => 1), 1000);
});

test('the retryable statuses are 408, 429 and 5xx', () => {
  for (const status of [408, 429, 500, 502, 503, 504, 599]) assert.ok(retry.isRetryableStatus(status), status);
  for (const status of [400, 401, 403, 404, 409, 422]) assert.ok(!retry.isRetryableStatus(status), status);
});

// ---------------------------------------------------------------------------- against the stand-in

test('a 503 with Retry-After is retried after exactly that long', async () => {
  const { client, sleeps } = makeClient();
  standIn.enqueue(unavailable({ 'retry-after': '2' }));
  const subscription = await client.getSubscription();
  assert.equal(subscription.tier, 'standard');
  assert.deepEqual(sleeps, [2000]);
  assert.equal(standIn.requests.length, 2);
});

test('a 429 with an HTTP-date Retry-After is honoured; a huge one is capped at 60 s', async () => {
  // Dates whose answer does not depend on the clock or the machine's speed: one already past
  // waits nothing (not the backoff's 250 ms), one a day away is capped. The arithmetic in
  // between is the pure test above, on a fixed clock.
  const { client, sleeps } = makeClient();
  const limited = (retryAfter) => ({
    path: '/v1/subscription',
    status: 429,
    headers: { 'retry-after': retryAfter },
    body: { error: { type: 'rate_limit_error', message: 'slow down' } },
  });
  standIn.enqueue(
    limited(new Date(Date.now() - 60000).toUTCString()),
    limited(new Date(Date.now() + 86400000).toUTCString()),
  );
  await client.getSubscription();
  assert.deepEqual(sleeps, [0, 60000]);
});

test('without Retry-After the waits back off exponentially, then the last error is thrown', async () => {
  const { client, sleeps } = makeClient({ maxRetries: 3 }, 1);
  standIn.enqueue(unavailable(), unavailable(), unavailable(), unavailable());
  await assert.rejects(client.getSubscription(), (err) => err instanceof ServiceError && err.status === 503);
  assert.deepEqual(sleeps, [500, 1000, 2000]);
  assert.equal(standIn.requests.length, 4, 'maxRetries + 1 sends');
});

test('408 is retried; 400, 409 and 422 are not', async () => {
  const { client, sleeps } = makeClient();
  standIn.enqueue({ path: '/v1/subscription', status: 408, body: { error: { type: 'timeout', message: 'slow' } } });
  await client.getSubscription();
  assert.equal(sleeps.length, 1);

  for (const [status, cls] of [[400, ValidationError], [409, ConflictError], [422, ValidationError]]) {
    standIn.reset();
    standIn.enqueue({ path: '/v1/subscription', status, body: { error: { type: 'x', message: 'no' } } });
    await assert.rejects(client.getSubscription(), cls);
    assert.equal(standIn.requests.length, 1, `${status} is not retried`);
  }
});

test('maxRetries: 0 sends once; a RateLimitError keeps retryAfter', async () => {
  const { client, sleeps } = makeClient({ maxRetries: 0 });
  standIn.enqueue({ path: '/v1/subscription', status: 429, headers: { 'retry-after': '12' }, body: { error: { type: 'rate_limit_error', message: 'cap' } } });
  await assert.rejects(client.getSubscription(), (err) => err instanceof RateLimitError && err.retryAfter === 12);
  assert.deepEqual(sleeps, []);
  assert.equal(standIn.requests.length, 1);
});

test('connection errors are retried, then thrown as APIConnectionError', async () => {
  const { client, sleeps } = makeClient({ baseUrl: 'http://127.0.0.1:1/v1' }, 1);
  await assert.rejects(client.getSubscription(), APIConnectionError);
  assert.deepEqual(sleeps, [500, 1000]);
});

test('a dropped connection is retried and the retry succeeds', async () => {
  const { client, sleeps } = makeClient();
  standIn.enqueue({ path: '/v1/subscription', handler: (req, res) => res.socket.destroy() });
  assert.equal((await client.getSubscription()).tier, 'standard');
  assert.equal(sleeps.length, 1);
});

test('the Idempotency-Key is the same on every retry of one call', async () => {
  const { client } = makeClient();
  standIn.enqueue(
    { path: '/v1/deployments', method: 'POST', status: 500, body: { error: { type: 'service_error', message: 'oops' } } },
    { path: '/v1/deployments', method: 'POST', handler: (req, res) => res.socket.destroy() },
  );
  await client.deploy({ modelName: 'a/b', deploymentName: 'idem-retry' });
  const keys = standIn.requests.map((r) => r.headers['idempotency-key']);
  assert.equal(keys.length, 3);
  assert.ok(keys[0]);
  assert.deepEqual(new Set(keys).size, 1);
});

test('each attempt gets the whole timeout; a timed-out attempt is retried', async () => {
  // The first attempt is never answered (the stand-in closes it at the end); the retry has
  // the whole second of its own to be served.
  const { client, sleeps } = makeClient({ timeout: 1000 });
  standIn.enqueue({ path: '/v1/subscription', handler: () => {} });
  assert.equal((await client.getSubscription()).tier, 'standard');
  assert.equal(sleeps.length, 1);
});

test('a stream is retried before its response starts', async () => {
  const { client, sleeps } = makeClient();
  standIn.enqueue({ path: '/v1/generate', status: 503, headers: { 'retry-after': '0' }, body: { error: { type: 'service_error', message: 'warming up' } } });
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'Hi' });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 4);
  assert.deepEqual(sleeps, [0]);
});

test('a stream is never retried once bytes arrived', async () => {
  const { client, sleeps } = makeClient();
  let held;
  standIn.enqueue({
    path: '/v1/generate',
    handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"text": "partial"}\n\n');
      held = res;
    },
  });
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'Hi' });
  const chunks = [];
  await assert.rejects(async () => {
    for await (const chunk of stream) {
      chunks.push(chunk);
      held.socket.destroy(); // the connection drops once the first chunk has reached the client
    }
  }, APIConnectionError);
  assert.deepEqual(chunks, [{ text: 'partial' }]);
  assert.equal(standIn.requests.length, 1);
  assert.deepEqual(sleeps, []);
});

test('with the default timeout a model call waits long enough for a start from zero', async (t) => {
  // The front door holds a request up to 300 s while a deployment starts from zero replicas.
  const armed = [];
  const original = globalThis.setTimeout;
  t.mock.method(globalThis, 'setTimeout', (fn, ms, ...rest) => {
    armed.push(ms);
    return original(fn, ms, ...rest);
  });
  const { client } = makeClient();
  await client.getSubscription();
  await client.generate({ deploymentId: 'deployment-123', prompt: 'Hi' });
  const chosen = makeClient({ timeout: 30000 }).client;
  await chosen.generate({ deploymentId: 'deployment-123', prompt: 'Hi' });
  // (Other timers, a few seconds long, belong to the HTTP stack.)
  assert.deepEqual(armed.filter((ms) => ms >= 10000), [60000, 420000, 30000]);
});
