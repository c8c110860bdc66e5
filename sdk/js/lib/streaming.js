'use strict';
/**
 * Server-sent events over a fetch Response body: a line decoder, an SSE event decoder, and the
 * async iterables of chunks: GenerationStream (generateStream()) and ChatStream (chatStream()).
 */

const { APIConnectionError, ServiceError, streamErrorClassFor } = require('./errors');
const { chatEventFromWire, chunkFromWire } = require('./wire');

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

/** A generate stream's events are its chunks. */
class GenerationChunks {
  feed(payload) {
    return [chunkFromWire(payload)];
  }

  end() {
    return [];
  }
}

/**
 * OpenAI's chat events as chunks like a generate stream's: `{ content }` chunks, then one last
 * `{ finishReason, usage }`, which the wire sends as two events. A role-only event carries
 * nothing to show and is dropped.
 */
class ChatChunks {
  #final; // the finish reason, waiting for the usage

  feed(payload) {
    const event = chatEventFromWire(payload);
    const out = [];
    if (this.#final) {
      const final = this.#final;
      this.#final = undefined;
      if (event.usage && !event.content && event.finishReason === undefined) {
        return [{ ...final, usage: event.usage }];
      }
      out.push(final);
    }
    if (event.content) out.push({ content: event.content });
    if (event.finishReason !== undefined) {
      const final = { finishReason: event.finishReason };
      if (event.usage) out.push({ ...final, usage: event.usage });
      else this.#final = final;
    }
    return out;
  }

  end() {
    const final = this.#final;
    this.#final = undefined;
    return final ? [final] : [];
  }
}

/**
 * An async iterable of the chunks of one 2xx text/event-stream response. It is never retried:
 * a failure from here on throws (an `error` event's class, or APIConnectionError when the body
 * breaks). Leaving the loop early releases the connection.
 */
class EventStream {
  #response;
  #controller;
  #redact;
  #chunks;
  #iterated = false;

  constructor(response, { controller, redact = (s) => s } = {}, chunks) {
    this.#response = response;
    this.#controller = controller || new AbortController();
    this.#redact = redact;
    this.#chunks = chunks;
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
    if (this.#iterated) throw new Error(`A ${this.constructor.name} can only be iterated once`);
    this.#iterated = true;
    return this.#iterate();
  }

  async *#iterate() {
    const body = this.#response.body;
    if (!body) throw this.#endedEarly();
    const reader = body.getReader();
    const text = new TextDecoder();
    const lines = new LineDecoder();
    const sse = new SSEDecoder();
    const state = { done: false, finished: false }; // [DONE] arrived; the final chunk did
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
          yield* this.#seen(this.#event(event.data, state), state);
          if (state.done) break;
        }
        if (state.done) break;
        if (read.done) {
          drained = true;
          const event = sse.flush();
          if (event) yield* this.#seen(this.#event(event.data, state), state);
          if (!state.done) yield* this.#seen(this.#chunks.end(), state);
          break;
        }
      }
      if (!state.done && !state.finished) throw this.#endedEarly();
    } finally {
      if (!drained) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }

  /** The chunks one event's data makes; at [DONE], those still held back. */
  #event(data, state) {
    const payload = this.#parse(data);
    if (payload === null) {
      state.done = true;
      return this.#chunks.end();
    }
    return this.#chunks.feed(payload);
  }

  #seen(chunks, state) {
    if (chunks.some((chunk) => chunk.finishReason !== undefined)) state.finished = true;
    return chunks;
  }

  /** One event's data as a JSON object; null for the [DONE] sentinel; throws on an error event. */
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
    return payload;
  }

  #endedEarly() {
    return new APIConnectionError('The stream ended before the generation finished', {
      type: 'connection_error',
      requestId: this.requestId,
    });
  }
}

/**
 * The chunks of a streamed generation: `for await (const chunk of stream)`. Text chunks are
 * `{ text }`; the last is `{ finishReason, usage }`.
 */
class GenerationStream extends EventStream {
  /**
   * @param {Response} response a 2xx text/event-stream response
   * @param {{controller?: AbortController, redact?: (s: string) => string}} [options]
   */
  constructor(response, options = {}) {
    super(response, options, new GenerationChunks());
  }
}

/**
 * The chunks of a streamed chat answer: `{ content }` pieces, then one last
 * `{ finishReason, usage }` (usage missing only if the server sent none).
 */
class ChatStream extends EventStream {
  /**
   * @param {Response} response a 2xx text/event-stream response
   * @param {{controller?: AbortController, redact?: (s: string) => string}} [options]
   */
  constructor(response, options = {}) {
    super(response, options, new ChatChunks());
  }
}

module.exports = { LineDecoder, SSEDecoder, GenerationStream, ChatStream };
