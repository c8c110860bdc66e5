// Runs the JavaScript examples of the API reference (sdk/js/test/fixtures/seed/*.js.txt,
// byte-for-byte copies) against a running front door, as a user pasting them would: the first
// four in one async scope (they share `client`), the error-handling one on its own. The
// credentials of the first example are replaced by real ones (PAITIENT_SEED_API_KEY,
// PAITIENT_SEED_CLIENT_ID); the base URL comes from PAITIENT_BASE_URL. Prints what they print.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const seedDir = path.join(__dirname, '..', '..', 'sdk', 'js', 'test', 'fixtures', 'seed');
const sdk = require(path.join(__dirname, '..', '..', 'sdk', 'js'));
const requireSdk = (name) => {
  if (name !== 'paitient-secure-model') throw new Error(`unexpected require(${name})`);
  return sdk;
};
const seed = (name) => fs.readFileSync(path.join(seedDir, `${name}.js.txt`), 'utf8');
const AsyncFunction = (async () => {}).constructor;

async function main() {
  const scenario = ['authentication', 'deployments', 'generation', 'subscription'].map(seed).join('\n')
    .replace('apiKey: "your-api-key"', `apiKey: ${JSON.stringify(process.env.PAITIENT_SEED_API_KEY)}`)
    .replace('clientId: "your-client-id"', `clientId: ${JSON.stringify(process.env.PAITIENT_SEED_CLIENT_ID)}`);
  await new AsyncFunction('require', 'console', scenario)(requireSdk, console);
  await new AsyncFunction('require', 'console', seed('error-handling'))(requireSdk, console);
}

main().catch((err) => {
  console.error(`seed examples failed: ${err && err.stack}`);
  process.exit(1);
});
