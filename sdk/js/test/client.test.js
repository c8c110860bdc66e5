'use strict';
// Every method's request (path, snake_case body, headers) and response (camelCase) mapping.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const {
  SecureModelClient,
  ResourceError,
  WaitTimeoutError,
  VERSION,
} = require('paitient-secure-model');
const { startStandIn } = require('./support/stand-in');

let standIn;
let client;

before(async () => {
  standIn = await startStandIn();
  client = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url });
});
after(() => standIn.close());
beforeEach(() => standIn.reset());

const last = () => standIn.requests[standIn.requests.length - 1];

test('deploy sends the snake_case body and maps the Deployment back to camelCase', async () => {
  const deployment = await client.deploy({
    modelName: 'ZimaBlueAI/HuatuoGPT-o1-8B',
    deploymentName: 'map-deploy',
    useGpu: true,
    gpuCount: 2,
    replicas: 3,
  });
  assert.equal(last().method, 'POST');
  assert.equal(last().path, '/v1/deployments');
  assert.deepEqual(last().body, {
    model_name: 'ZimaBlueAI/HuatuoGPT-o1-8B',
    deployment_name: 'map-deploy',
    use_gpu: true,
    gpu_count: 2,
    replicas: 3,
  });
  assert.deepEqual(deployment, {
    id: 'map-deploy',
    name: 'map-deploy',
    modelName: 'ZimaBlueAI/HuatuoGPT-o1-8B',
    status: 'pending',
    useGpu: true,
    gpuCount: 2,
    replicas: 3,
    readyReplicas: 0,
    endpoint: null,
    message: '',
    createdAt: '2026-11-26T12:00:00Z',
  });
});

test('deploy leaves unset options to the server and defaults useGpu to true', async () => {
  const deployment = await client.deploy({ modelName: 'org/Some_Model', maxModelLen: 4096 });
  assert.deepEqual(last().body, { model_name: 'org/Some_Model', use_gpu: true, max_model_len: 4096 });
  assert.match(deployment.id, /^some-model-/);
  await assert.rejects(client.deploy({}), TypeError);
});

test('every request carries the auth, client, user-agent and accept headers', async () => {
  await client.listDeployments();
  const { headers } = last();
  assert.equal(headers.authorization, 'Bearer sk-test-key');
  assert.equal(headers['x-client-id'], 'client-1');
  assert.equal(headers['user-agent'], `paitient-secure-model-js/${VERSION}`);
  assert.equal(headers.accept, 'application/json');
  assert.equal(headers['idempotency-key'], undefined, 'GET needs no idempotency key');
});

test('writes carry a fresh Idempotency-Key per call', async () => {
  await client.deploy({ modelName: 'a/b', deploymentName: 'idem-1' });
  await client.deploy({ modelName: 'a/b', deploymentName: 'idem-2' });
  const [first, second] = standIn.requests.map((r) => r.headers['idempotency-key']);
  assert.match(first, /^[0-9a-f-]{36}$/);
  assert.notEqual(first, second);
});

test('getDeployment, listDeployments, updateDeployment and deleteDeployment', async () => {
  await client.deploy({ modelName: 'a/b', deploymentName: 'crud' });

  const got = await client.getDeployment('crud');
  assert.equal(last().path, '/v1/deployments/crud');
  assert.equal(got.modelName, 'a/b');
  assert.equal(got.readyReplicas, 0);

  const list = await client.listDeployments();
  assert.ok(Array.isArray(list));
  assert.ok(list.some((d) => d.id === 'crud' && d.modelName === 'a/b'));

  const updated = await client.updateDeployment('crud', { replicas: 4, maxModelLen: 8192 });
  assert.equal(last().method, 'PATCH');
  assert.deepEqual(last().body, { replicas: 4, max_model_len: 8192 });
  assert.equal(updated.replicas, 4);
  assert.equal(updated.maxModelLen, 8192);
  await assert.rejects(client.updateDeployment('crud', {}), TypeError);

  const deleted = await client.deleteDeployment('crud');
  assert.equal(last().method, 'DELETE');
  assert.deepEqual(deleted, { id: 'crud', deleted: true });
});

test('ids are quoted into one path segment', async () => {
  await assert.rejects(client.getDeployment('../subscription'), { name: 'NotFoundError' });
  assert.equal(last().path, '/v1/deployments/..%2Fsubscription');
  await assert.rejects(client.getDeployment(''), TypeError);
});

test('getDeploymentStatus maps replicas and conditions', async () => {
  const status = await client.getDeploymentStatus('deployment-123');
  assert.equal(last().path, '/v1/deployments/deployment-123/status');
  assert.deepEqual(status, {
    id: 'deployment-123',
    status: 'ready',
    readyReplicas: 1,
    replicas: 1,
    message: '',
    conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: '' }],
  });
});

test('generate sends defaults and maps the result', async () => {
  const result = await client.generate({ deploymentId: 'deployment-123', prompt: 'Hi' });
  assert.equal(last().path, '/v1/generate');
  assert.deepEqual(last().body, {
    deployment_id: 'deployment-123',
    prompt: 'Hi',
    max_tokens: 256,
    temperature: 1.0,
    stream: false,
  });
  assert.deepEqual(result, {
    id: 'gen-1',
    deploymentId: 'deployment-123',
    text: 'HIPAA compliance matters.',
    finishReason: 'stop',
    usage: { promptTokens: 12, completionTokens: 3, totalTokens: 15 },
  });
  await client.generate({ deploymentId: 'deployment-123', prompt: 'Hi', maxTokens: 500, temperature: 0.7 });
  assert.equal(last().body.max_tokens, 500);
  assert.equal(last().body.temperature, 0.7);
});

test('getSubscription maps usage and period', async () => {
  assert.deepEqual(await client.getSubscription(), {
    tier: 'standard',
    currentUsage: 1234,
    usageLimit: 10000000,
    periodStart: '2026-11-01T00:00:00Z',
    periodEnd: '2026-12-01T00:00:00Z',
  });
  assert.equal(last().path, '/v1/subscription');
});

test('an answer that is not the contract is a PaitientError, not a crash', async () => {
  standIn.enqueue({ path: '/v1/subscription', status: 200, body: 'not json' });
  await assert.rejects(client.getSubscription(), { name: 'PaitientError', type: 'invalid_response' });
  standIn.enqueue({ path: '/v1/deployments', status: 200, body: { items: [] } });
  await assert.rejects(client.listDeployments(), { name: 'PaitientError', type: 'invalid_response' });
});

// ---------------------------------------------------------------------------- waitUntilReady

function fakeTime(c) {
  let now = 0;
  const sleeps = [];
  c._now = () => now;
  c._sleep = async (ms) => {
    sleeps.push(ms);
    now += ms;
  };
  return sleeps;
}

test('waitUntilReady polls until ready and reports every status', async () => {
  const c = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url });
  const sleeps = fakeTime(c);
  await c.deploy({ modelName: 'a/b', deploymentName: 'wait-ready' });
  standIn.progress.set('wait-ready', [
    { status: 'progressing' },
    { status: 'ready', ready_replicas: 1 },
  ]);
  const seen = [];
  const status = await c.waitUntilReady('wait-ready', { pollInterval: 50, onProgress: (s) => seen.push(s.status) });
  assert.equal(status.status, 'ready');
  assert.equal(status.readyReplicas, 1);
  assert.deepEqual(seen, ['progressing', 'ready']);
  assert.deepEqual(sleeps, [50]);
});

test('waitUntilReady rejects with ResourceError when the deployment failed', async () => {
  const c = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url });
  fakeTime(c);
  await c.deploy({ modelName: 'a/b', deploymentName: 'wait-failed' });
  standIn.progress.set('wait-failed', [{ status: 'failed', message: 'ImagePullBackOff' }]);
  await assert.rejects(c.waitUntilReady('wait-failed'), (err) => {
    assert.ok(err instanceof ResourceError);
    assert.equal(err.message, 'ImagePullBackOff');
    assert.equal(err.type, 'deployment_failed');
    return true;
  });
});

test('waitUntilReady gives up with WaitTimeoutError at the deadline', async () => {
  const c = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url });
  const sleeps = fakeTime(c);
  await c.deploy({ modelName: 'a/b', deploymentName: 'wait-timeout' });
  await assert.rejects(c.waitUntilReady('wait-timeout', { timeout: 5000, pollInterval: 2000 }), (err) => {
    assert.ok(err instanceof WaitTimeoutError);
    assert.equal(err.deploymentId, 'wait-timeout');
    assert.equal(err.lastStatus.status, 'pending');
    return true;
  });
  // The last sleep is cut short so the final poll lands on the deadline.
  assert.deepEqual(sleeps, [2000, 2000, 1000]);
});
