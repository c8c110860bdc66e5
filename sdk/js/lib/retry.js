'use strict';
/**
 * The one retry policy, identical to the Python SDK's: connection errors, 408, 429 and >= 500
 * are retried up to `maxRetries` times, after the server's Retry-After (capped) or else an
 * exponential backoff with full jitter. Pure functions; the client owns the loop.
 */

const INITIAL_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8000;
const MAX_RETRY_AFTER_MS = 60000;

/** 408, 429 and 5xx are worth another try; 409 is not (the state will not change by itself). */
function isRetryableStatus(status) {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Seconds to wait from a Retry-After header value: delta-seconds or an HTTP date.
 * @returns {number | undefined} undefined when absent or unparseable
 */
function parseRetryAfter(value, now = Date.now) {
  if (value === null || value === undefined) return undefined;
  const text = String(value).trim();
  if (!text) return undefined;
  let seconds;
  if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) {
    seconds = Number(text);
  } else {
    const when = Date.parse(text);
    if (Number.isNaN(when)) return undefined;
    seconds = (when - now()) / 1000;
  }
  if (!Number.isFinite(seconds)) return undefined;
  return Math.max(0, seconds);
}

/** Full jitter: uniform in [0, min(cap, base * 2**attempt)] ms, `attempt` counting from 0. */
function backoffDelay(attempt, random = Math.random) {
  return random() * Math.min(MAX_RETRY_DELAY_MS, INITIAL_RETRY_DELAY_MS * 2 ** attempt);
}

/**
 * Milliseconds to wait before retry number `attempt + 1`: the server's Retry-After when it
 * sent one (capped at 60 s), else exponential backoff.
 * @param {number} attempt
 * @param {Headers | undefined} headers the failed response's headers; undefined after a connection error
 */
function retryDelay(attempt, headers, random = Math.random, now = Date.now) {
  const after = headers ? parseRetryAfter(headers.get('retry-after'), now) : undefined;
  if (after !== undefined) return Math.min(after * 1000, MAX_RETRY_AFTER_MS);
  return backoffDelay(attempt, random);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = {
  INITIAL_RETRY_DELAY_MS,
  MAX_RETRY_DELAY_MS,
  MAX_RETRY_AFTER_MS,
  isRetryableStatus,
  parseRetryAfter,
  backoffDelay,
  retryDelay,
  sleep,
};
