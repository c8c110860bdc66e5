'use strict';
/**
 * Server-sent events over a fetch Response body: a line decoder, an SSE event decoder and
 * GenerationStream, the async iterable of generation chunks returned by generateStream().
 */

const { APIConnectionError, ServiceError, streamErrorClassFor } = require('./errors');
const { chunkFromWire } = require('./wire');

/** Splits decoded text into lines on \n, \r\n or \r, also when a \r\n straddles two reads. */
class LineDecoder {
  #buffer = '';

  /** @returns {string[]} the complete lines (without their endings) this text finishes */
  decode(text) {
    this.#buffer += text;
    const lines = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (!match) break;
      // A trailing \r may be the first half of \r\n: wait for the next read.
      if (match[0] === '\r' && match.index === this.#buffer.length - 1) break;
      lines.push(this.#buffer.slice(0, match.index));
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
    }
    return lines;
  }

  /** The last line when the body ended without a line ending. */
  flush() {
    const rest = this.#buffer;
    this.#buffer = '';
    if (!rest) return [];
    return [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
  }
}

/**
 * Feed lines; get an event back at each blank line. Follows the WHATWG rules the contract
 * needs: comments, `field: value` with one optional space, multi-line `data`.
 */
class SSEDecoder {
  #data = [];
  #event = '';
  #id = undefined;

  /** @returns {{data: string, event: string, id?: string} | undefined} */
  decode(line) {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
    return undefined;
  }

  /** The event still pending when the stream ended without its blank line. */
  flush() {
    return this.#dispatch();
  }

  #dispatch() {
    if (this.#data.length === 0) {
      this.#event = '';
      return undefined;
    }
    const event = { data: this.#data.join('\n'), event: this.#event || 'message', id: this.#id };
    this.#data = [];
    this.#event = '';
    return event;
  }
}

/**
 * The chunks of a streamed generation: `for await (const chunk of stream)`. Text chunks are
 * `{ text }`; the last is `{ finishReason, usage }`.
 *
 * The response was 2xx before this object exists, so it is never retried: a failure from
 * here on throws (an `error` event's class, or APIConnectionError when the body breaks).
 * Leaving the loop early releases the connection.
 */
class GenerationStream {
  #response;
  #controller;
  #redact;
  #iterated = false;

  /**
   * @param {Response} response a 2xx text/event-stream response
   * @param {{controller?: AbortController, redact?: (s: string) => string}} [options]
   */
  constructor(response, { controller, redact = (s) => s } = {}) {
    this.#response = response;
    this.#controller = controller || new AbortController();
    this.#redact = redact;
    /** The x-request-id of the response. */
    this.requestId = response.headers.get('x-request-id') || undefined;
  }

  /** The underlying fetch Response (its body is consumed by iterating the stream). */
  get response() {
    return this.#response;
  }

  /** Stop the stream and release the connection; a pending iteration throws APIConnectionError. */
  abort() {
    this.#controller.abort();
  }

  [Symbol.asyncIterator]() {
    if (this.#iterated) throw new Error('A GenerationStream can only be iterated once');
    this.#iterated = true;
    return this.#chunks();
  }

  async *#chunks() {
    const body = this.#response.body;
    if (!body) throw this.#endedEarly();
    const reader = body.getReader();
    const text = new TextDecoder();
    const lines = new LineDecoder();
    const sse = new SSEDecoder();
    let done = false; // [DONE] arrived
    let finished = false; // the chunk with finish_reason arrived
    let drained = false;
    try {
      for (;;) {
        let read;
        try {
          read = await reader.read();
        } catch (err) {
          throw new APIConnectionError(
            this.#redact(`Connection error while streaming: ${err && err.message ? err.message : err}`),
            { type: 'connection_error', requestId: this.requestId, cause: err },
          );
        }
        const pending = read.done
          ? [...lines.decode(text.decode()), ...lines.flush()]
          : lines.decode(text.decode(read.value, { stream: true }));
        for (const line of pending) {
          const event = sse.decode(line);
          if (!event) continue;
          const chunk = this.#parse(event.data);
          if (chunk === null) {
            done = true;
            break;
          }
          if (chunk.finishReason !== undefined) finished = true;
          yield chunk;
        }
        if (done) break;
        if (read.done) {
          drained = true;
          const event = sse.flush();
          if (event) {
            const chunk = this.#parse(event.data);
            if (chunk === null) done = true;
            else {
              if (chunk.finishReason !== undefined) finished = true;
              yield chunk;
            }
          }
          break;
        }
      }
      if (!done && !finished) throw this.#endedEarly();
    } finally {
      if (!drained) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }

  /** One event's data as a chunk; null for the [DONE] sentinel; throws on an error event. */
  #parse(data) {
    if (data.trim() === '[DONE]') return null;
    let payload;
    try {
      payload = JSON.parse(data);
    } catch {
      throw new ServiceError('Unexpected stream event from the API: not JSON', {
        type: 'invalid_response',
        requestId: this.requestId,
        body: data,
      });
    }
    if (payload && typeof payload === 'object' && payload.error && typeof payload.error === 'object') {
      const error = payload.error;
      const type = typeof error.type === 'string' ? error.type : undefined;
      const message =
        typeof error.message === 'string' && error.message
          ? error.message
          : 'The generation failed after the stream started';
      const Cls = streamErrorClassFor(type);
      throw new Cls(this.#redact(message), {
        type,
        requestId: typeof error.request_id === 'string' ? error.request_id : this.requestId,
        body: payload,
      });
    }
    return chunkFromWire(payload);
  }

  #endedEarly() {
    return new APIConnectionError('The stream ended before the generation finished', {
      type: 'connection_error',
      requestId: this.requestId,
    });
  }
}

module.exports = { LineDecoder, SSEDecoder, GenerationStream };
