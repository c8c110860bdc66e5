'use strict';
// A custom CA bundle: where it comes from, what is refused, and the node:https transport it
// selects answering exactly like fetch (here over the plain-HTTP stand-in; the TLS handshake
// against a real front door is tested by tests/integration/test_tls.py).

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SecureModelClient, ConfigurationError, NotFoundError } = require('paitient-secure-model');
const { loadCaBundle } = require('../lib/tls');
const { startStandIn } = require('./support/stand-in');

// A self-signed CA certificate, valid until 2126 (public material: trusting needs no key).
const A_CA = fs.readFileSync(path.join(__dirname, 'fixtures', 'test-ca.pem'), 'utf8');

const saved = process.env.PAITIENT_CA_BUNDLE;
let standIn;
let dir;

before(async () => {
  standIn = await startStandIn();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paitient-ca-'));
});
after(async () => {
  if (saved === undefined) delete process.env.PAITIENT_CA_BUNDLE;
  else process.env.PAITIENT_CA_BUNDLE = saved;
  fs.rmSync(dir, { recursive: true, force: true });
  await standIn.close();
});
beforeEach(() => {
  delete process.env.PAITIENT_CA_BUNDLE;
  standIn.reset();
});

function client(options = {}) {
  const c = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url, ...options });
  c._sleep = async () => {};
  return c;
}

test('a bundle is PEM text or the path of a PEM file, from the option or PAITIENT_CA_BUNDLE', () => {
  const file = path.join(dir, 'ca.pem');
  fs.writeFileSync(file, A_CA);
  assert.equal(loadCaBundle(A_CA), A_CA);
  assert.equal(loadCaBundle(file), A_CA);
  process.env.PAITIENT_CA_BUNDLE = path.join(dir, 'missing.pem');
  assert.throws(() => client(), (err) => err instanceof ConfigurationError && /PAITIENT_CA_BUNDLE/.test(err.message));
  const junk = path.join(dir, 'junk.pem');
  fs.writeFileSync(junk, 'not a certificate');
  assert.throws(() => client({ caBundle: junk }), /holds no PEM certificate/);
  assert.throws(() => client({ caBundle: A_CA, fetch: globalThis.fetch }), /not both/);
  // Your own fetch decides whom it trusts: the environment's bundle is not forced on it.
  assert.doesNotThrow(() => client({ fetch: globalThis.fetch }));
});

test('with a bundle, answers, errors and streams arrive as they do through fetch', async () => {
  const c = client({ caBundle: A_CA });
  assert.equal((await c.getSubscription()).tier, 'standard');
  const deployment = await c.deploy({ modelName: 'ZimaBlueAI/HuatuoGPT-o1-8B', deploymentName: 'tls-one' });
  assert.equal(deployment.id, 'tls-one');
  assert.equal(standIn.requests.at(-1).headers['content-type'], 'application/json');
  await assert.rejects(c.getDeployment('nope'), NotFoundError);
  const chunks = [];
  for await (const chunk of await c.generateStream({ deploymentId: 'tls-one', prompt: 'hi', maxTokens: 3 })) {
    chunks.push(chunk);
  }
  assert.ok(chunks.length > 0);
});
