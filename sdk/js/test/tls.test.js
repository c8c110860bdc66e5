'use strict';
// A custom CA bundle: where it comes from, what is refused, and the node:https transport it
// selects: against the stand-in serving HTTPS with a certificate from the test CA, the client
// with that bundle verifies the handshake and gets every answer as through fetch; without it,
// or with another CA's, the certificate is refused. (A real front door: tests/integration.)
//
// The fixtures were made once with the operator's own X.509 code
// (paitient_operator.certificates.x509, ECDSA P-256, valid until 2126): test-ca.pem signed
// stand-in-cert.pem (localhost, 127.0.0.1; its key stand-in-key.pem is test material only);
// other-ca.pem signed nothing here.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SecureModelClient, ConfigurationError, NotFoundError, APIConnectionError } = require('paitient-secure-model');
const { loadCaBundle } = require('../lib/tls');
const { startStandIn } = require('./support/stand-in');

const fixture = (name) => fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8');
const A_CA = fixture('test-ca.pem');
const OTHER_CA = fixture('other-ca.pem');

const saved = process.env.PAITIENT_CA_BUNDLE;
let standIn;
let dir;

before(async () => {
  standIn = await startStandIn({ tls: { cert: fixture('stand-in-cert.pem'), key: fixture('stand-in-key.pem') } });
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

test('the stand-in speaks TLS only: the tests below are handshakes', () => {
  assert.ok(standIn.url.startsWith('https://127.0.0.1:'), standIn.url);
});

test('without a bundle, or with another CA, the certificate is refused', async () => {
  for (const options of [{}, { caBundle: OTHER_CA }]) {
    const c = client({ maxRetries: 0, ...options });
    await assert.rejects(
      c.getSubscription(),
      (err) => err instanceof APIConnectionError && /certificate/i.test(err.message),
    );
  }
  assert.equal(standIn.requests.length, 0); // nothing got through the handshake
});

test('the bundle from PAITIENT_CA_BUNDLE (a path) is the one trusted', async () => {
  const file = path.join(dir, 'env-ca.pem');
  fs.writeFileSync(file, A_CA);
  process.env.PAITIENT_CA_BUNDLE = file;
  assert.equal((await client().getSubscription()).tier, 'standard');
  process.env.PAITIENT_CA_BUNDLE = path.join(dir, 'other.pem');
  fs.writeFileSync(process.env.PAITIENT_CA_BUNDLE, OTHER_CA);
  await assert.rejects(client({ maxRetries: 0 }).getSubscription(), APIConnectionError);
});

test('with the bundle, answers, errors and streams arrive as they do through fetch', async () => {
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
