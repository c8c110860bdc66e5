'use strict';
// SSE parsing and GenerationStream over fetch response bodies.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const {
  SecureModelClient,
  GenerationStream,
  APIConnectionError,
  RateLimitError,
  ServiceError,
  NotFoundError,
} = require('paitient-secure-model');
const { LineDecoder, SSEDecoder } = require('../lib/streaming');
const { startStandIn } = require('./support/stand-in');

let standIn;
let client;

before(async () => {
  standIn = await startStandIn();
  client = new SecureModelClient({ apiKey: 'sk-test-key', clientId: 'client-1', baseUrl: standIn.url });
  client._sleep = async () => {};
});
after(() => standIn.close());
beforeEach(() => standIn.reset());

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** A stream over a body written as the given pieces of text. */
function streamOf(...pieces) {
  const body = new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(new TextEncoder().encode(piece));
      controller.close();
    },
  });
  return new GenerationStream(new Response(body, { headers: { 'x-request-id': 'req-s' } }));
}

test('LineDecoder splits on \\n, \\r\\n and \\r, also across reads', () => {
  const lines = new LineDecoder();
  assert.deepEqual(lines.decode('a\nb\r'), ['a']);
  assert.deepEqual(lines.decode('\nc\rd'), ['b', 'c']);
  assert.deepEqual(lines.decode(''), []);
  assert.deepEqual(lines.flush(), ['d']);
  assert.deepEqual(lines.flush(), []);
});

test('SSEDecoder handles comments, multi-line data, event names and a missing space', () => {
  const sse = new SSEDecoder();
  const events = [': keep-alive', 'event: delta', 'data:one', 'data: two', 'id: 7', '', '', 'data: x']
    .map((line) => sse.decode(line))
    .filter(Boolean);
  assert.deepEqual(events, [{ data: 'one\ntwo', event: 'delta', id: '7' }]);
  assert.deepEqual(sse.flush(), { data: 'x', event: 'message', id: '7' });
});

test('generateStream yields { text } chunks then { finishReason, usage }', async () => {
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'Hi', maxTokens: 20, temperature: 0.2 });
  const request = standIn.requests[0];
  assert.equal(request.headers.accept, 'text/event-stream');
  assert.deepEqual(request.body, { deployment_id: 'deployment-123', prompt: 'Hi', max_tokens: 20, temperature: 0.2, stream: true });
  assert.match(stream.requestId, /^req_/);
  assert.deepEqual(await collect(stream), [
    { text: 'HIPAA ' },
    { text: 'compliance ' },
    { text: 'matters.' },
    { finishReason: 'stop', usage: { promptTokens: 12, completionTokens: 3, totalTokens: 15 } },
  ]);
  assert.throws(() => stream[Symbol.asyncIterator](), /only be iterated once/);
});

test('generate({ stream: true }) is generateStream', async () => {
  const stream = await client.generate({ deploymentId: 'deployment-123', prompt: 'Hi', stream: true });
  assert.ok(stream instanceof GenerationStream);
  assert.equal((await collect(stream)).length, 4);
});

test('an error event mid-stream throws its class after the chunks before it', async () => {
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'fail midway' });
  const chunks = [];
  await assert.rejects(
    async () => {
      for await (const chunk of stream) chunks.push(chunk);
    },
    (err) => {
      assert.ok(err instanceof ServiceError);
      assert.equal(err.message, 'the stream from the deployment was interrupted');
      assert.equal(err.type, 'service_error');
      assert.match(err.requestId, /^req_/);
      assert.equal(err.status, undefined);
      return true;
    },
  );
  assert.deepEqual(chunks, [{ text: 'HIPAA ' }]);
  assert.equal(standIn.requests.length, 1, 'never retried after bytes arrived');
});

test('a typed error event maps by type', async () => {
  const stream = streamOf(
    'data: {"text": "a"}\n\n',
    'data: {"error": {"type": "rate_limit_error", "message": "usage cap reached"}}\n\n',
  );
  await assert.rejects(collect(stream), (err) => {
    assert.ok(err instanceof RateLimitError);
    assert.equal(err.requestId, 'req-s');
    assert.equal(err.message, 'usage cap reached');
    return true;
  });
});

test('events split across reads and CRLF line endings parse the same', async () => {
  const stream = streamOf('data: {"te', 'xt": "a"}\r', '\n\r\ndata: {"finish_reason": "length", "usage": {"total_tokens": 1}}\r\n\r\nda', 'ta: [DONE]\r\n\r\n');
  assert.deepEqual(await collect(stream), [{ text: 'a' }, { finishReason: 'length', usage: { totalTokens: 1 } }]);
});

test('a body that ends before the final chunk is an APIConnectionError', async () => {
  await assert.rejects(collect(streamOf('data: {"text": "a"}\n\n')), (err) => {
    assert.ok(err instanceof APIConnectionError);
    assert.equal(err.message, 'The stream ended before the generation finished');
    return true;
  });
  // The final chunk without [DONE] (and without its blank line) is complete.
  assert.deepEqual(await collect(streamOf('data: {"finish_reason": "stop", "usage": {}}')), [
    { finishReason: 'stop', usage: {} },
  ]);
});

test('an event that is not JSON is a ServiceError', async () => {
  await assert.rejects(collect(streamOf('data: <html>\n\n')), (err) => err instanceof ServiceError && err.type === 'invalid_response');
});

test('an HTTP error before the stream starts rejects generateStream itself', async () => {
  await assert.rejects(client.generateStream({ deploymentId: 'nope', prompt: 'Hi' }), NotFoundError);
});

test('leaving the loop early releases the connection', async () => {
  let closed;
  const socketClosed = new Promise((resolve) => (closed = resolve));
  standIn.enqueue({
    path: '/v1/generate',
    handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"text": "one"}\n\n');
      const timer = setInterval(() => res.write(': ping\n\n'), 20);
      res.on('close', () => {
        clearInterval(timer);
        closed();
      });
    },
  });
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'Hi' });
  for await (const chunk of stream) {
    assert.deepEqual(chunk, { text: 'one' });
    break;
  }
  await socketClosed;
});

test('abort() stops a stream in flight with APIConnectionError', async () => {
  standIn.enqueue({
    path: '/v1/generate',
    handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"text": "one"}\n\n');
    },
  });
  const stream = await client.generateStream({ deploymentId: 'deployment-123', prompt: 'Hi' });
  const chunks = [];
  await assert.rejects(async () => {
    for await (const chunk of stream) {
      chunks.push(chunk);
      stream.abort();
    }
  }, APIConnectionError);
  assert.deepEqual(chunks, [{ text: 'one' }]);
});
