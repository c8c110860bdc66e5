'use strict';
// The package's shape: manifest, version, and declarations for every public export.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const sdk = require('paitient-secure-model');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

test('package.json: name, engines, entry points, no dependencies', () => {
  assert.equal(pkg.name, 'paitient-secure-model');
  assert.equal(pkg.engines.node, '>=18');
  assert.equal(pkg.types, 'index.d.ts');
  assert.equal(pkg.scripts.test, 'node --test test/');
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.exports['.'].require.default, './lib/index.js');
  assert.equal(pkg.exports['.'].import.default, './index.mjs');
  for (const file of [pkg.types, pkg.exports['.'].import.types, pkg.exports['.'].require.types]) {
    assert.ok(fs.existsSync(path.join(root, file)), file);
  }
});

test('the User-Agent version is the package version', () => {
  assert.equal(sdk.VERSION, pkg.version);
});

test('the public surface is exactly the documented one', () => {
  assert.deepEqual(Object.keys(sdk).sort(), [
    'APIConnectionError',
    'APITimeoutError',
    'AuthenticationError',
    'ChatStream',
    'ConfigurationError',
    'ConflictError',
    'DEFAULT_BASE_URL',
    'GenerationStream',
    'NotFoundError',
    'PaitientError',
    'PermissionDeniedError',
    'RateLimitError',
    'ResourceError',
    'SecureModelClient',
    'ServiceError',
    'VERSION',
    'ValidationError',
    'WaitTimeoutError',
  ]);
});

test('index.d.ts declares every export and every client method', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');
  for (const name of Object.keys(sdk)) {
    assert.match(dts, new RegExp(`export declare (class|const) ${name}\\b`), name);
  }
  const methods = Object.getOwnPropertyNames(sdk.SecureModelClient.prototype).filter((m) => m !== 'constructor');
  for (const method of methods) assert.match(dts, new RegExp(`\\n  ${method}\\(`), method);
});
