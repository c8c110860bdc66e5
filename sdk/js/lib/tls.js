'use strict';
/**
 * A custom CA bundle for the client: Node's built-in fetch cannot be given one, so with a
 * bundle the client sends through node:https with an Agent that trusts only that bundle
 * (host names still checked, TLS 1.2 or newer), answering with a standard fetch Response.
 */

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const { Readable } = require('node:stream');
const { ConfigurationError } = require('./errors');

const ENV_CA_BUNDLE = 'PAITIENT_CA_BUNDLE';
const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';

/** The PEM text of a bundle given as PEM text or as the path of a PEM file. */
function loadCaBundle(value) {
  const text = String(value);
  if (text.includes(PEM_CERTIFICATE)) return text;
  let pem;
  try {
    pem = fs.readFileSync(text, 'utf8');
  } catch (err) {
    throw new ConfigurationError(
      `Cannot read the CA bundle ${JSON.stringify(text)} (from { caBundle } or ${ENV_CA_BUNDLE}): ${err.message}`,
    );
  }
  if (!pem.includes(PEM_CERTIFICATE)) {
    throw new ConfigurationError(`The CA bundle ${JSON.stringify(text)} holds no PEM certificate.`);
  }
  return pem;
}

function responseHeaders(raw) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, String(value));
  }
  return headers;
}

/** A fetch-compatible function that trusts only the CAs in `ca` (PEM) for https URLs. */
function fetchTrusting(ca) {
  const agent = new https.Agent({ ca, keepAlive: true, minVersion: 'TLSv1.2' });
  return function fetchWithCaBundle(url, init = {}) {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      const request = (secure ? https : http).request(
        target,
        { method: init.method || 'GET', headers: init.headers, agent: secure ? agent : undefined, signal: init.signal },
        (res) => {
          const empty = res.statusCode === 204 || res.statusCode === 304 || init.method === 'HEAD';
          resolve(
            new Response(empty ? null : Readable.toWeb(res), {
              status: res.statusCode,
              statusText: res.statusMessage,
              headers: responseHeaders(res.headers),
            }),
          );
        },
      );
      // The same shape as undici's errors: the reason is the cause.
      request.on('error', (err) => reject(new TypeError('fetch failed', { cause: err })));
      if (init.body !== undefined && init.body !== null) request.write(init.body);
      request.end();
    });
  };
}

module.exports = { ENV_CA_BUNDLE, fetchTrusting, loadCaBundle };
