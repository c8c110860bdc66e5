'use strict';
// Credentials from options or the environment, option checks, and the API key kept hidden.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const util = require('node:util');
const { SecureModelClient, ConfigurationError, DEFAULT_BASE_URL } = require('paitient-secure-model');
const { startStandIn } = require('./support/stand-in');

const ENV_NAMES = ['PAITIENT_API_KEY', 'PAITIENT_CLIENT_ID', 'PAITIENT_BASE_URL'];
const saved = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]]));
let standIn;

before(async () => {
  standIn = await startStandIn();
});
after(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await standIn.close();
});
beforeEach(() => {
  for (const name of ENV_NAMES) delete process.env[name];
  standIn.reset();
});

test('credentials and base URL come from the environment', async () => {
  process.env.PAITIENT_API_KEY = 'sk-test-key';
  process.env.PAITIENT_CLIENT_ID = 'client-1';
  process.env.PAITIENT_BASE_URL = `${standIn.url}/`;
  const client = new SecureModelClient();
  assert.equal(client.baseUrl, standIn.url, 'trailing slash dropped');
  assert.equal((await client.getSubscription()).tier, 'standard');
  assert.equal(standIn.requests[0].headers.authorization, 'Bearer sk-test-key');
  assert.equal(standIn.requests[0].headers['x-client-id'], 'client-1');
});

test('options win over the environment', () => {
  process.env.PAITIENT_API_KEY = 'env-key';
  process.env.PAITIENT_CLIENT_ID = 'env-client';
  process.env.PAITIENT_BASE_URL = 'https://env.example/v1';
  const client = new SecureModelClient({ apiKey: 'k', clientId: 'c', baseUrl: 'https://opt.example/v1' });
  assert.equal(client.clientId, 'c');
  assert.equal(client.baseUrl, 'https://opt.example/v1');
});

test('defaults: the public base URL, 60 s timeout, 2 retries', () => {
  const client = new SecureModelClient({ apiKey: 'k', clientId: 'c' });
  assert.equal(client.baseUrl, 'https://api.paitient.ai/v1');
  assert.equal(DEFAULT_BASE_URL, 'https://api.paitient.ai/v1');
  assert.equal(client.timeout, 60000);
  assert.equal(client.maxRetries, 2);
});

test('missing credentials are a ConfigurationError naming the environment variable', () => {
  assert.throws(() => new SecureModelClient({ clientId: 'c' }), (err) => {
    assert.ok(err instanceof ConfigurationError);
    assert.equal(err.name, 'ConfigurationError');
    assert.match(err.message, /PAITIENT_API_KEY/);
    return true;
  });
  assert.throws(() => new SecureModelClient({ apiKey: 'k' }), /PAITIENT_CLIENT_ID/);
  assert.throws(() => new SecureModelClient(), /PAITIENT_API_KEY/);
  process.env.PAITIENT_API_KEY = '';
  assert.throws(() => new SecureModelClient({ clientId: 'c' }), ConfigurationError, 'empty is missing');
});

test('bad options are ConfigurationErrors', () => {
  const ok = { apiKey: 'k', clientId: 'c' };
  assert.throws(() => new SecureModelClient({ ...ok, baseUrl: 'ftp://x' }), ConfigurationError);
  assert.throws(() => new SecureModelClient({ ...ok, baseUrl: 'not a url' }), ConfigurationError);
  process.env.PAITIENT_BASE_URL = 'nope';
  assert.throws(() => new SecureModelClient(ok), /PAITIENT_BASE_URL/);
  delete process.env.PAITIENT_BASE_URL;
  assert.throws(() => new SecureModelClient({ ...ok, timeout: -1 }), ConfigurationError);
  assert.throws(() => new SecureModelClient({ ...ok, timeout: '5' }), ConfigurationError);
  assert.throws(() => new SecureModelClient({ ...ok, maxRetries: 1.5 }), ConfigurationError);
  assert.throws(() => new SecureModelClient({ ...ok, fetch: 'nope' }), ConfigurationError);
});

test('the API key is hidden from util.inspect, JSON and enumeration', () => {
  const client = new SecureModelClient({ apiKey: 'sk-very-secret', clientId: 'c' });
  assert.ok(!util.inspect(client, { showHidden: true, depth: 5 }).includes('sk-very-secret'));
  assert.ok(!JSON.stringify(client).includes('sk-very-secret'));
  assert.ok(!Object.values(client).includes('sk-very-secret'));
  assert.ok(!Object.getOwnPropertyNames(client).some((name) => client[name] === 'sk-very-secret'));
  assert.match(util.inspect(client), /clientId: 'c'/);
});

test('a custom fetch is used for every request', async () => {
  const calls = [];
  const client = new SecureModelClient({
    apiKey: 'k',
    clientId: 'c',
    baseUrl: 'https://custom.example/v1',
    fetch: async (url, init) => {
      calls.push([url, init.method]);
      return new Response('{"tier": "pro", "current_usage": 1}', { status: 200 });
    },
  });
  assert.deepEqual(await client.getSubscription(), { tier: 'pro', currentUsage: 1 });
  assert.deepEqual(calls, [['https://custom.example/v1/subscription', 'GET']]);
});
