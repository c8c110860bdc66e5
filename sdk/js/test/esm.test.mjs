// `import` and `require` give the very same classes, so instanceof works across both.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from 'paitient-secure-model';
import sdkDefault from 'paitient-secure-model';

const require = createRequire(import.meta.url);
const cjs = require('paitient-secure-model');

test('the ESM entry re-exports every CommonJS export, identical', () => {
  const names = Object.keys(esm).filter((name) => name !== 'default').sort();
  assert.deepEqual(names, Object.keys(cjs).sort());
  for (const name of names) assert.equal(esm[name], cjs[name], name);
  assert.equal(sdkDefault, cjs);
});

test('an error made on one side is instanceof the other side', async () => {
  const client = new esm.SecureModelClient({
    apiKey: 'k',
    clientId: 'c',
    maxRetries: 0,
    fetch: async () =>
      new Response('{"error": {"type": "authentication_error", "message": "bad key"}}', { status: 401 }),
  });
  assert.ok(client instanceof cjs.SecureModelClient);
  await assert.rejects(client.getSubscription(), (err) => {
    assert.ok(err instanceof cjs.AuthenticationError);
    assert.ok(err instanceof esm.AuthenticationError);
    assert.ok(err instanceof esm.PaitientError);
    return true;
  });
});
