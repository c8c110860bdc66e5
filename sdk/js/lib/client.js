'use strict';
/**
 * SecureModelClient: credentials and configuration, one request loop with the shared retry
 * policy and error mapping, and one method per /v1 endpoint of docs/rest-api.md (plus chat, the
 * OpenAI-compatible route of docs/openai.md).
 */

const { randomUUID } = require('node:crypto');
const {
  APIConnectionError,
  APITimeoutError,
  ConfigurationError,
  PaitientError,
  RateLimitError,
  ResourceError,
  WaitTimeoutError,
  errorClassFor,
} = require('./errors');
const { isRetryableStatus, parseRetryAfter, retryDelay, sleep } = require('./retry');
const { ChatStream, GenerationStream } = require('./streaming');
const { ENV_CA_BUNDLE, fetchTrusting, loadCaBundle } = require('./tls');
const wire = require('./wire');
const { VERSION } = require('./version');

const DEFAULT_BASE_URL = 'https://api.paitient.ai/v1';
const DEFAULT_TIMEOUT_MS = 60000;
// A call a model answers may first wait while its deployment starts from zero replicas (the
// front door holds it for up to 300 s): with the client's default timeout it gets this long.
const MODEL_TIMEOUT_MS = 420000;
const DEFAULT_MAX_RETRIES = 2;
const ENV_API_KEY = 'PAITIENT_API_KEY';
const ENV_CLIENT_ID = 'PAITIENT_CLIENT_ID';
const ENV_BASE_URL = 'PAITIENT_BASE_URL';
const USER_AGENT = `paitient-secure-model-js/${VERSION}`;

function env(name) {
  const value = typeof process !== 'undefined' && process.env ? process.env[name] : undefined;
  return value || undefined;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

class SecureModelClient {
  // Private fields: never enumerated, serialised or shown by util.inspect.
  #apiKey;
  #fetch;

  /**
   * @param {object} [options]
   * @param {string} [options.apiKey] default: process.env.PAITIENT_API_KEY
   * @param {string} [options.clientId] default: process.env.PAITIENT_CLIENT_ID
   * @param {string} [options.baseUrl] default: process.env.PAITIENT_BASE_URL, else https://api.paitient.ai/v1
   * @param {number} [options.timeout=60000] per-request timeout in ms
   * @param {number} [options.maxRetries=2]
   * @param {typeof fetch} [options.fetch] default: globalThis.fetch
   * @param {string} [options.caBundle] trust only these CAs (a PEM file's path, or PEM text);
   *   default: process.env.PAITIENT_CA_BUNDLE, else the system's CAs. Always verified.
   */
  constructor({
    apiKey,
    clientId,
    baseUrl,
    timeout = DEFAULT_TIMEOUT_MS,
    maxRetries = DEFAULT_MAX_RETRIES,
    fetch,
    caBundle,
  } = {}) {
    apiKey = apiKey || env(ENV_API_KEY);
    if (!apiKey) {
      throw new ConfigurationError(
        `No API key given: pass { apiKey } or set the ${ENV_API_KEY} environment variable.`,
      );
    }
    clientId = clientId || env(ENV_CLIENT_ID);
    if (!clientId) {
      throw new ConfigurationError(
        `No client ID given: pass { clientId } or set the ${ENV_CLIENT_ID} environment variable.`,
      );
    }
    baseUrl = String(baseUrl || env(ENV_BASE_URL) || DEFAULT_BASE_URL).replace(/\/+$/, '');
    let url;
    try {
      url = new URL(baseUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigurationError(
        `Invalid base URL ${JSON.stringify(baseUrl)}: expected http(s)://host[/path] (from { baseUrl } or ${ENV_BASE_URL}).`,
      );
    }
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      throw new ConfigurationError(`timeout must be a number of milliseconds >= 0, not ${timeout}`);
    }
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new ConfigurationError(`maxRetries must be an integer >= 0, not ${maxRetries}`);
    }
    if (caBundle && fetch) {
      throw new ConfigurationError('Pass { caBundle } or { fetch }, not both: your fetch decides whom it trusts.');
    }
    const bundle = caBundle || (fetch ? undefined : env(ENV_CA_BUNDLE));
    const fetchImpl = bundle ? fetchTrusting(loadCaBundle(bundle)) : fetch || globalThis.fetch;
    if (typeof fetchImpl !== 'function') {
      throw new ConfigurationError('No fetch available: use Node.js >= 18 or pass { fetch }.');
    }
    this.#apiKey = String(apiKey);
    this.#fetch = fetchImpl;
    /** The client ID sent as X-Client-ID. */
    this.clientId = String(clientId);
    /** The API root every path is appended to, e.g. https://api.paitient.ai/v1. */
    this.baseUrl = baseUrl;
    /** Default per-request timeout in milliseconds; most methods take { timeout } to override. */
    this.timeout = timeout;
    /** How many times a failed request is retried (so at most maxRetries + 1 sends). */
    this.maxRetries = maxRetries;
    // Seams for tests, like the Python SDK's: the sleep, the jitter and the clock.
    Object.defineProperties(this, {
      _sleep: { value: sleep, writable: true },
      _random: { value: Math.random, writable: true },
      _now: { value: () => performance.now(), writable: true },
    });
  }

  // ------------------------------------------------------------------------ deployments

  /**
   * Deploy a model; resolves at once with the deployment `pending`.
   * @returns {Promise<import('../index').Deployment>}
   */
  async deploy(options = {}) {
    const body = wire.deployBody(options);
    return wire.deploymentFromWire(await this.#json('POST', '/deployments', body, options.timeout));
  }

  /** Every deployment of this client. */
  async listDeployments({ timeout } = {}) {
    return wire.deploymentListFromWire(await this.#json('GET', '/deployments', undefined, timeout));
  }

  /** One deployment by id (its name). */
  async getDeployment(deploymentId, { timeout } = {}) {
    const path = `/deployments/${wire.idPath(deploymentId, 'deploymentId')}`;
    return wire.deploymentFromWire(await this.#json('GET', path, undefined, timeout));
  }

  /** Where a deployment stands: status, replica counts and conditions. */
  async getDeploymentStatus(deploymentId, { timeout } = {}) {
    const path = `/deployments/${wire.idPath(deploymentId, 'deploymentId')}/status`;
    return wire.deploymentStatusFromWire(await this.#json('GET', path, undefined, timeout));
  }

  /** Change replicas and/or maxModelLen. */
  async updateDeployment(deploymentId, options = {}) {
    const path = `/deployments/${wire.idPath(deploymentId, 'deploymentId')}`;
    const body = wire.updateBody(options);
    return wire.deploymentFromWire(await this.#json('PATCH', path, body, options.timeout));
  }

  /** Delete a deployment; resolves with `{ id, deleted: true }`. */
  async deleteDeployment(deploymentId, { timeout } = {}) {
    const path = `/deployments/${wire.idPath(deploymentId, 'deploymentId')}`;
    return wire.deletedFromWire(await this.#json('DELETE', path, undefined, timeout));
  }

  /**
   * Poll the status until it is `ready` and resolve with it. Rejects with ResourceError when
   * the deployment is `failed`, and WaitTimeoutError when `timeout` ms pass first.
   */
  async waitUntilReady(deploymentId, { timeout = 600000, pollInterval = 2000, onProgress } = {}) {
    wire.idPath(deploymentId, 'deploymentId');
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      throw new TypeError(`timeout must be a number of milliseconds >= 0, not ${timeout}`);
    }
    if (typeof pollInterval !== 'number' || !(pollInterval > 0)) {
      throw new TypeError(`pollInterval must be a number of milliseconds > 0, not ${pollInterval}`);
    }
    const deadline = this._now() + timeout;
    for (;;) {
      const status = await this.getDeploymentStatus(deploymentId);
      if (onProgress) await onProgress(status);
      // A deployment at zero replicas answers too: generate waits while it starts.
      if (status.status === 'ready' || status.status === 'scaled-to-zero') return status;
      if (status.status === 'failed') {
        const failed = (status.conditions || []).find((c) => c.status !== 'True' && c.message);
        throw new ResourceError(
          status.message || (failed && failed.message) || `Deployment '${deploymentId}' failed`,
          { type: 'deployment_failed', body: status },
        );
      }
      const remaining = deadline - this._now();
      if (remaining <= 0) {
        throw new WaitTimeoutError(
          `Deployment '${deploymentId}' was not ready after ${timeout} ms (last status: ${status.status}` +
            (status.message ? `, ${status.message}` : '') +
            ')',
          { deploymentId, lastStatus: status },
        );
      }
      // The last sleep is cut short so the final poll lands on the deadline.
      await this._sleep(Math.min(pollInterval, remaining));
    }
  }

  // ------------------------------------------------------------------------ generation

  /**
   * Generate text with a deployed model. With `stream: true` resolves to a GenerationStream,
   * like generateStream().
   */
  async generate(options = {}) {
    if (options.stream) return this.generateStream(options);
    const body = wire.generateBody(options, false);
    const timeout = this.#modelTimeout(options.timeout);
    return wire.generationFromWire(await this.#json('POST', '/generate', body, timeout));
  }

  /**
   * Stream a generation: resolves (after any retries) once the server answered 2xx, to an
   * async iterable of `{ text }` chunks and a final `{ finishReason, usage }`.
   * The timeout covers the wait for the response to start, not the whole stream.
   */
  async generateStream(options = {}) {
    const body = wire.generateBody(options, true);
    const timeout = this.#modelTimeout(options.timeout);
    const { response, controller } = await this.#send('POST', '/generate', body, timeout, true);
    return new GenerationStream(response, { controller, redact: (s) => this.#redact(s) });
  }

  // ------------------------------------------------------------------------ chat

  /**
   * Answer a conversation with a deployed model (the model's chat template applies), over the
   * OpenAI-compatible route. `maxTokens` and `temperature` left unset take the server's
   * defaults. With `stream: true` resolves to a ChatStream, like chatStream().
   */
  async chat(options = {}) {
    if (options.stream) return this.chatStream(options);
    const body = wire.chatBody(options, false);
    const data = await this.#json('POST', '/chat/completions', body, this.#modelTimeout(options.timeout));
    return wire.chatFromWire(data, options.deploymentId);
  }

  /**
   * Stream a chat answer: resolves (after any retries) once the server answered 2xx, to an
   * async iterable of `{ content }` chunks and a final `{ finishReason, usage }`.
   * The timeout covers the wait for the response to start, not the whole stream.
   */
  async chatStream(options = {}) {
    const body = wire.chatBody(options, true);
    const timeout = this.#modelTimeout(options.timeout);
    const { response, controller } = await this.#send('POST', '/chat/completions', body, timeout, true);
    return new ChatStream(response, { controller, redact: (s) => this.#redact(s) });
  }

  // ------------------------------------------------------------------------ subscription

  /** The subscription's tier, usage and period. */
  async getSubscription({ timeout } = {}) {
    return wire.subscriptionFromWire(await this.#json('GET', '/subscription', undefined, timeout));
  }

  // ------------------------------------------------------------------------ requests

  /** A call's own timeout; else the client's, or MODEL_TIMEOUT_MS when that is the default. */
  #modelTimeout(timeout) {
    if (timeout !== undefined) return timeout;
    return this.timeout === DEFAULT_TIMEOUT_MS ? MODEL_TIMEOUT_MS : this.timeout;
  }

  async #json(method, path, body, timeout) {
    return this.#send(method, path, body, timeout, false);
  }

  /**
   * Send with the retry policy; resolve with the parsed JSON of a 2xx answer (or, for a
   * stream, the unread response) and reject with the mapped error otherwise.
   */
  async #send(method, path, body, timeout, stream) {
    const ms = timeout === undefined ? this.timeout : timeout;
    const headers = {
      Authorization: `Bearer ${this.#apiKey}`,
      'X-Client-ID': this.clientId,
      'User-Agent': USER_AGENT,
      Accept: stream ? 'text/event-stream' : 'application/json',
    };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') {
      // One key per call, the same on every retry, so a server that saw the first attempt
      // answers the retry from its record instead of deploying or generating twice.
      headers['Idempotency-Key'] = randomUUID();
    }
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    const url = this.baseUrl + path;
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#attempt(url, init, ms, stream);
      if (!outcome.error) return outcome.value;
      if (!outcome.retryable || attempt >= this.maxRetries) throw outcome.error;
      await this._sleep(retryDelay(attempt, outcome.headers, this._random));
    }
  }

  /** One send: `{ value }`, or `{ error, retryable, headers }`; throws only what is never retried. */
  async #attempt(url, init, ms, stream) {
    const controller = new AbortController();
    let timedOut = false;
    let timer =
      ms > 0 && Number.isFinite(ms)
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, ms)
        : undefined;
    try {
      let response;
      try {
        response = await this.#fetch(url, { ...init, signal: controller.signal });
      } catch (err) {
        return { error: this.#connectionError(err, timedOut, ms), retryable: true };
      }
      if (!response.ok) {
        let text = '';
        try {
          text = await response.text();
        } catch {
          // The status alone decides the error class.
        }
        return {
          error: this.#statusError(response, text),
          retryable: isRetryableStatus(response.status),
          headers: response.headers,
        };
      }
      if (stream) {
        clearTimeout(timer);
        timer = undefined;
        return { value: { response, controller } };
      }
      let text;
      try {
        text = await response.text();
      } catch (err) {
        return { error: this.#connectionError(err, timedOut, ms), retryable: true };
      }
      return { value: this.#parseJson(response, text) };
    } finally {
      clearTimeout(timer);
    }
  }

  #connectionError(err, timedOut, ms) {
    if (timedOut) {
      return new APITimeoutError(`Request timed out after ${ms} ms`, { type: 'timeout_error', cause: err });
    }
    const detail = (err && err.cause && err.cause.message) || (err && err.message) || String(err);
    return new APIConnectionError(this.#redact(`Connection error: ${detail}`), {
      type: 'connection_error',
      cause: err,
    });
  }

  #statusError(response, text) {
    const status = response.status;
    let body = text || undefined;
    let parsed = false;
    try {
      body = JSON.parse(text);
      parsed = true;
    } catch {
      // Not JSON: keep the text as the body.
    }
    const payload = isObject(body) && isObject(body.error) ? body.error : {};
    let message = typeof payload.message === 'string' && payload.message ? payload.message : undefined;
    if (!message) {
      message = `HTTP ${status} ${response.statusText || ''}`.trim();
      if (!parsed && text && text.trim()) message += `: ${text.trim().slice(0, 200)}`;
    }
    const type = typeof payload.type === 'string' ? payload.type : undefined;
    const requestId =
      typeof payload.request_id === 'string'
        ? payload.request_id
        : response.headers.get('x-request-id') || undefined;
    const Cls = errorClassFor(status, type);
    const fields = { status, type, requestId, body };
    if (Cls === RateLimitError) fields.retryAfter = parseRetryAfter(response.headers.get('retry-after'));
    return new Cls(this.#redact(message), fields);
  }

  #parseJson(response, text) {
    try {
      return JSON.parse(text);
    } catch {
      throw new PaitientError(`Unexpected response from the API: HTTP ${response.status} is not JSON`, {
        status: response.status,
        type: 'invalid_response',
        requestId: response.headers.get('x-request-id') || undefined,
        body: text,
      });
    }
  }

  /** Remove the API key from text that may end up in an error. */
  #redact(text) {
    return this.#apiKey && text.includes(this.#apiKey) ? text.split(this.#apiKey).join('[redacted]') : text;
  }
}

module.exports = {
  SecureModelClient,
  DEFAULT_BASE_URL,
  DEFAULT_TIMEOUT_MS,
  MODEL_TIMEOUT_MS,
  DEFAULT_MAX_RETRIES,
  USER_AGENT,
};
