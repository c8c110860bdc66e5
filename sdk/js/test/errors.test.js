'use strict';
// Each status of the contract's error table maps to its class, with the contract's fields.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const sdk = require('paitient-secure-model');
const { startStandIn } = require('./support/stand-in');

const {
  SecureModelClient,
  PaitientError,
  AuthenticationError,
  PermissionDeniedError,
  ValidationError,
  ResourceError,
  NotFoundError,
  ConflictError,
  RateLimitError,
  ServiceError,
  APIConnectionError,
  APITimeoutError,
  ConfigurationError,
  WaitTimeoutError,
} = sdk;

let standIn;
let client;

before(async () => {
  standIn = await startStandIn();
  client = new SecureModelClient({
    apiKey: 'sk-test-key',
    clientId: 'client-1',
    baseUrl: standIn.url,
    maxRetries: 0,
  });
});
after(() => standIn.close());
beforeEach(() => standIn.reset());

test('the hierarchy is the documented tree', () => {
  const parent = (cls) => Object.getPrototypeOf(cls);
  assert.equal(parent(PaitientError), Error);
  for (const cls of [ConfigurationError, WaitTimeoutError, AuthenticationError, ValidationError, ResourceError, RateLimitError, ServiceError]) {
    assert.equal(parent(cls), PaitientError, cls.name);
  }
  assert.equal(parent(PermissionDeniedError), AuthenticationError);
  assert.equal(parent(NotFoundError), ResourceError);
  assert.equal(parent(ConflictError), ResourceError);
  assert.equal(parent(APIConnectionError), ServiceError);
  assert.equal(parent(APITimeoutError), APIConnectionError);
});

const table = [
  [400, 'validation_error', ValidationError],
  [401, 'authentication_error', AuthenticationError],
  [403, 'permission_error', PermissionDeniedError],
  [404, 'not_found_error', NotFoundError],
  [409, 'conflict_error', ConflictError],
  [422, 'validation_error', ValidationError],
  [429, 'rate_limit_error', RateLimitError],
  [500, 'service_error', ServiceError],
  [503, 'service_error', ServiceError],
];

for (const [status, type, cls] of table) {
  test(`HTTP ${status} is a ${cls.name} carrying status, type, requestId, body and the server's message`, async () => {
    const body = { error: { type, message: `boom ${status}`, request_id: `req-${status}` } };
    standIn.enqueue({ path: '/v1/subscription', status, body, headers: { 'retry-after': '7' } });
    await assert.rejects(client.getSubscription(), (err) => {
      assert.ok(err instanceof cls);
      assert.ok(err instanceof PaitientError);
      assert.ok(err instanceof Error);
      assert.equal(err.constructor, cls);
      assert.equal(err.name, cls.name);
      assert.equal(err.message, `boom ${status}`);
      assert.equal(err.status, status);
      assert.equal(err.type, type);
      assert.equal(err.requestId, `req-${status}`);
      assert.deepEqual(err.body, body);
      if (cls === RateLimitError) assert.equal(err.retryAfter, 7);
      return true;
    });
  });
}

test('the contract stand-in answers 401, 404, 409 and 422 itself, as the service words them', async () => {
  const stranger = new SecureModelClient({ apiKey: 'nope', clientId: 'client-1', baseUrl: standIn.url });
  await assert.rejects(stranger.listDeployments(), AuthenticationError);
  await assert.rejects(client.getDeployment('missing'), (err) => {
    assert.ok(err instanceof NotFoundError && err instanceof ResourceError);
    assert.equal(err.message, 'deployment not found');
    assert.match(err.requestId, /^req_/);
    return true;
  });
  await client.deploy({ modelName: 'a/b', deploymentName: 'taken' });
  await assert.rejects(client.deploy({ modelName: 'a/b', deploymentName: 'taken' }), ConflictError);
  await assert.rejects(
    client.generate({ deploymentId: 'deployment-123', prompt: 'x', maxTokens: 0 }),
    ValidationError,
  );
});

test('an error without the JSON shape still maps by status, with the x-request-id header', async () => {
  standIn.enqueue({ path: '/v1/subscription', status: 502, body: 'Bad Gateway from the proxy' });
  await assert.rejects(client.getSubscription(), (err) => {
    assert.ok(err instanceof ServiceError);
    assert.equal(err.message, 'HTTP 502 Bad Gateway: Bad Gateway from the proxy');
    assert.equal(err.body, 'Bad Gateway from the proxy');
    assert.match(err.requestId, /^req_/);
    assert.equal(err.type, undefined);
    return true;
  });
});

test('an unlisted 4xx falls back to the body type, else PaitientError', async () => {
  standIn.enqueue({ path: '/v1/subscription', status: 402, body: { error: { type: 'rate_limit_error', message: 'cap' } } });
  await assert.rejects(client.getSubscription(), RateLimitError);
  standIn.enqueue({ path: '/v1/subscription', status: 418, body: { error: { type: 'teapot', message: 'short and stout' } } });
  await assert.rejects(client.getSubscription(), (err) => err.constructor === PaitientError && err.status === 418);
});

test('the API key never appears in an error message', async () => {
  standIn.enqueue({
    path: '/v1/subscription',
    status: 401,
    body: { error: { type: 'authentication_error', message: 'key sk-test-key is revoked' } },
  });
  await assert.rejects(client.getSubscription(), (err) => {
    assert.equal(err.message, 'key [redacted] is revoked');
    assert.ok(!err.stack.includes('sk-test-key'));
    return true;
  });
});

test('no response is an APIConnectionError; too late is an APITimeoutError', async () => {
  const refused = new SecureModelClient({ apiKey: 'k', clientId: 'c', baseUrl: 'http://127.0.0.1:1/v1', maxRetries: 0 });
  await assert.rejects(refused.getSubscription(), (err) => {
    assert.ok(err instanceof APIConnectionError && !(err instanceof APITimeoutError));
    assert.ok(err instanceof ServiceError);
    assert.match(err.message, /^Connection error: /);
    assert.equal(err.status, undefined);
    return true;
  });

  standIn.enqueue({ path: '/v1/subscription', handler: () => {} }); // never answered
  await assert.rejects(client.getSubscription({ timeout: 50 }), (err) => {
    assert.ok(err instanceof APITimeoutError);
    assert.equal(err.message, 'Request timed out after 50 ms');
    return true;
  });
});
