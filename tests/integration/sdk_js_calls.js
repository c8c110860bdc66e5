// Calls the JavaScript SDK on request, for tests that drive both SDKs through the same steps:
// one JSON request per line on stdin, one JSON answer per line on stdout. Retries are off
// (maxRetries 0), so every error the front door answers is seen. The base URL comes from
// PAITIENT_BASE_URL.
//
//   {"op": "subscription", "apiKey", "clientId"}
//   {"op": "generate", "apiKey", "clientId", "deploymentId"}
//   {"op": "seed", "apiKey", "clientId", "deploymentName"}   deploy -> wait until ready -> generate -> delete
//
// Answer: {"ok": true, ...} or {"ok": false, "error": "<error class>", "message", "step"}.
'use strict';
const path = require('node:path');
const readline = require('node:readline');

const sdk = require(path.join(__dirname, '..', '..', 'sdk', 'js'));

async function seed(client, name) {
  const deployment = await client.deploy({
    modelName: 'ZimaBlueAI/HuatuoGPT-o1-8B', deploymentName: name, useGpu: true,
  });
  const status = await client.waitUntilReady(deployment.id, { timeout: 180000, pollInterval: 250 });
  // No pause between "ready" and generate: the point of the test.
  const result = await client.generate({ deploymentId: deployment.id, prompt: 'ping', maxTokens: 2 });
  await client.deleteDeployment(deployment.id);
  return { status: status.status, text: result.text };
}

async function handle(request) {
  const client = new sdk.SecureModelClient({
    apiKey: request.apiKey, clientId: request.clientId, maxRetries: 0,
  });
  if (request.op === 'subscription') return { tier: (await client.getSubscription()).tier };
  if (request.op === 'generate') {
    const result = await client.generate({ deploymentId: request.deploymentId, prompt: 'ping', maxTokens: 2 });
    return { text: result.text };
  }
  if (request.op === 'seed') return seed(client, request.deploymentName);
  throw new Error(`unknown op ${request.op}`);
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  const request = JSON.parse(line);
  let answer;
  try {
    answer = { ok: true, ...(await handle(request)) };
  } catch (error) {
    answer = { ok: false, error: error.constructor.name, message: String(error.message) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
});
