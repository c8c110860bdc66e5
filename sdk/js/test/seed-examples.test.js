'use strict';
// The seed API reference's JavaScript examples, run verbatim against the stand-in.
// test/fixtures/seed/*.js.txt are byte-for-byte copies of the seed's snippets; each runs as
// the body of an async function (the seed uses top-level await) with the package's own
// `require` and a console that records what it prints.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startStandIn } = require('./support/stand-in');

const AsyncFunction = (async () => {}).constructor;
const SEED_DIR = path.join(__dirname, 'fixtures', 'seed');
const seed = (name) => fs.readFileSync(path.join(SEED_DIR, `${name}.js.txt`), 'utf8');

let standIn;
const savedBaseUrl = process.env.PAITIENT_BASE_URL;

before(async () => {
  standIn = await startStandIn();
  // The examples pass no base URL: point the environment at the stand-in.
  process.env.PAITIENT_BASE_URL = standIn.url;
});
after(async () => {
  if (savedBaseUrl === undefined) delete process.env.PAITIENT_BASE_URL;
  else process.env.PAITIENT_BASE_URL = savedBaseUrl;
  await standIn.close();
});

/** Run snippets as one async function body; resolve with what they printed. */
async function run(...names) {
  const printed = { log: [], error: [] };
  const recordingConsole = {
    log: (...args) => printed.log.push(args),
    error: (...args) => printed.error.push(args),
  };
  const body = names.map(seed).join('\n');
  await new AsyncFunction('require', 'console', body)(require, recordingConsole);
  return printed;
}

test('authentication, deployments, generation and subscription examples run in sequence', async () => {
  const printed = await run('authentication', 'deployments', 'generation', 'subscription');
  assert.deepEqual(printed.log, [
    ['HIPAA compliance matters.'],
    ['Tier: standard'],
    ['Usage: 1234/10000000'],
  ]);
  assert.deepEqual(printed.error, []);

  const [deploy, status, generate] = standIn.requests;
  assert.equal(deploy.method, 'POST');
  assert.equal(deploy.path, '/v1/deployments');
  assert.deepEqual(deploy.body, {
    model_name: 'ZimaBlueAI/HuatuoGPT-o1-8B',
    deployment_name: 'my-secure-model',
    use_gpu: true,
  });
  assert.equal(deploy.headers.authorization, 'Bearer your-api-key');
  assert.equal(deploy.headers['x-client-id'], 'your-client-id');
  assert.equal(status.path, '/v1/deployments/my-secure-model/status');
  assert.deepEqual(generate.body, {
    deployment_id: 'deployment-123',
    prompt: 'Explain the importance of HIPAA compliance in healthcare AI',
    max_tokens: 500,
    temperature: 0.7,
    stream: false,
  });
});

test('the error-handling example logs "Authentication error:" on a 401', async () => {
  standIn.reset();
  const printed = await run('error-handling');
  assert.deepEqual(printed.error, [['Authentication error:', 'invalid API key or client ID']]);
  assert.equal(standIn.requests.length, 1, 'a 401 is not retried');
  assert.equal(standIn.requests[0].headers.authorization, 'Bearer invalid-key');
});

test('the error-handling example takes its ValidationError branch on a 422', async () => {
  standIn.reset();
  standIn.enqueue({
    path: '/v1/deployments',
    status: 422,
    body: { error: { type: 'validation_error', message: 'model_name is not allowed', request_id: 'r' } },
  });
  const printed = await run('error-handling');
  assert.deepEqual(printed.error, [['Validation error:', 'model_name is not allowed']]);
});

test('the README shows every seed example verbatim', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  for (const name of ['authentication', 'deployments', 'generation', 'subscription', 'error-handling']) {
    assert.ok(readme.includes(seed(name)), `README.md lacks the ${name} example`);
  }
});
