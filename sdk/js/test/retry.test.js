'use strict';
// The one retry policy: what is retried, how long it waits, and what stays the same. The
// failures are the front door's own answers, recorded from its code in sdk/testdata/errors.json
// (`recorded(name, path)`); only 408, which the front door never sends (a proxy may), is
// written here.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { SecureModelClient, APIConnectionError, RateLimitError, ServiceError, ConflictError, ValidationError } =
  require('paitient-secure-model');
const retry = require('../lib/retry');
const { startStandIn, recorded } = require('./support/stand-in');

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

const SUBSCRIPTION = '/v1/subscription';

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
  const loading = recorded('model_loading', SUBSCRIPTION); // the gateway's: back in 5 s
  assert.equal(loading.headers['Retry-After'], '5');
  standIn.enqueue(loading);
  const subscription = await client.getSubscription();
  assert.equal(subscription.tier, 'standard');
  assert.deepEqual(sleeps, [5000]);
  assert.equal(standIn.requests.length, 2);
});

test("every retryable answer the front door gives is retried, after its Retry-After or backoff", async () => {
  const cases = [
    ['deployment_not_ready', 503, [500, 1000]],
    ['model_loading', 503, [5000, 5000]],
    ['rate_limited', 429, [60000, 60000]],
    ['usage_limit_reached', 429, [60000, 60000]],
    ['internal_error', 500, [500, 1000]],
    ['model_failed', 502, [500, 1000]],
    ['gateway_unreachable', 502, [500, 1000]],
    ['model_timeout', 504, [500, 1000]],
  ];
  for (const [name, status, waits] of cases) {
    standIn.reset();
    const { client, sleeps } = makeClient({}, 1);
    const answer = recorded(name, SUBSCRIPTION);
    assert.equal(answer.status, status, name);
    standIn.enqueue(answer, recorded(name, SUBSCRIPTION));
    assert.equal((await client.getSubscription()).tier, 'standard', name);
    assert.deepEqual(sleeps, waits, name);
    assert.equal(standIn.requests.length, 3, name);
  }
});

test('a 429 with an HTTP-date Retry-After is honoured; a huge one is capped at 60 s', async () => {
  // Dates whose answer does not depend on the clock or the machine's speed: one already past
  // waits nothing (not the backoff's 250 ms), one a day away is capped. The arithmetic in
  // between is the pure test above, on a fixed clock. (The front door sends delta-seconds; a
  // proxy may send a date: the recorded 429 with its Retry-After as a date.)
  const { client, sleeps } = makeClient();
  const limited = (retryAfter) => ({
    ...recorded('rate_limited', SUBSCRIPTION),
    headers: { 'retry-after': retryAfter },
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
  const notReady = () => recorded('deployment_not_ready', SUBSCRIPTION);
  standIn.enqueue(notReady(), notReady(), notReady(), notReady());
  await assert.rejects(
    client.getSubscription(),
    (err) => err instanceof ServiceError && err.status === 503 && /not ready/.test(err.message),
  );
  assert.deepEqual(sleeps, [500, 1000, 2000]);
  assert.equal(standIn.requests.length, 4, 'maxRetries + 1 sends');
});

test("408 (a proxy's) is retried; the front door's 400, 409 and 422 are not", async () => {
  const { client, sleeps } = makeClient();
  standIn.enqueue({ path: SUBSCRIPTION, status: 408, body: { error: { type: 'timeout', message: 'slow' } } });
  await client.getSubscription();
  assert.equal(sleeps.length, 1);

  for (const [name, cls] of [['chat_messages_empty', ValidationError], ['deployment_exists', ConflictError], ['prompt_empty', ValidationError]]) {
    standIn.reset();
    standIn.enqueue(recorded(name, SUBSCRIPTION));
    await assert.rejects(client.getSubscription(), cls);
    assert.equal(standIn.requests.length, 1, `${name} is not retried`);
  }
});

test('maxRetries: 0 sends once; a RateLimitError keeps retryAfter', async () => {
  const { client, sleeps } = makeClient({ maxRetries: 0 });
  standIn.enqueue(recorded('usage_limit_reached', SUBSCRIPTION));
  await assert.rejects(client.getSubscription(), (err) => err instanceof RateLimitError && err.retryAfter === 3600);
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
    recorded('internal_error', '/v1/deployments', 'POST'),
    { path: '/v1/deployments', method: 'POST', handler: (req, res) => res.socket.destroy() },
  );
  await client.deploy({ modelName: 'a/b', deploymentName: 'idem-retry' });
  const keys = standIn.requests.map((r) => r.headers['idempotency-key']);
  assert.equal(keys.length, 3);
  assert.ok(keys[0]);
  assert.deepEqual(new Set(keys).size, 1);
});

test('each attempt gets the whole timeout; a timed-out attempt is retried', async (t) => {
  // The client's timers run on a clock the test moves, so nothing here depends on the
  // machine's speed: the first attempt is never answered and times out when the clock passes
  // its 1 s; the retry is held while the clock moves 999 ms more (were the timeout the whole
  // call's, it would be over), then answered.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { client, sleeps } = makeClient({ timeout: 1000 });
  let retry;
  standIn.enqueue(
    { path: '/v1/subscription', handler: () => {} },
    { path: '/v1/subscription', handler: (req, res) => { retry = res; } },
  );
  const answer = client.getSubscription();
  const turns = async (check) => {
    while (!check()) await new Promise((resolve) => setImmediate(resolve));
  };
  await turns(() => standIn.requests.length === 1);
  t.mock.timers.tick(999);
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(standIn.requests.length, 1, 'not timed out before its second');
  t.mock.timers.tick(1);
  await turns(() => retry !== undefined);
  t.mock.timers.tick(999);
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  const body = { tier: 'standard', current_usage: 1, usage_limit: 10, period_start: '2026-11-01T00:00:00Z', period_end: '2026-12-01T00:00:00Z' };
  retry.writeHead(200, { 'content-type': 'application/json' });
  retry.end(JSON.stringify(body));
  assert.equal((await answer).tier, 'standard');
  assert.equal(sleeps.length, 1);
  assert.equal(standIn.requests.length, 2);
});

test('a stream is retried before its response starts', async () => {
  const { client, sleeps } = makeClient();
  standIn.enqueue(recorded('model_loading', '/v1/generate'));
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'Hi' });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 4);
  assert.deepEqual(sleeps, [5000]);
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
