'use strict';
/**
 * A stand-in for the /v1 API of docs/rest-api.md (and the OpenAI-compatible chat route of
 * docs/openai.md) on 127.0.0.1 (a free port), for tests.
 *
 * It keeps deployments in memory, records every request, and can be scripted: `enqueue()`
 * queues one-off answers (a status and body, or a raw handler) that win over the contract
 * routes, to provoke errors, retries and broken streams.
 *
 * Its own error answers are the front door's, recorded in sdk/testdata/errors.json (generated
 * from the service's code and kept in sync by the service's tests), so they cannot drift from
 * what the service says.
 */

const http = require('node:http');
const https = require('node:https');
const path = require('node:path');

const SERVICE_ERRORS = require(path.join(__dirname, '..', '..', '..', 'testdata', 'errors.json')).errors;

const CREDENTIALS = new Map([
  ['your-api-key', 'your-client-id'],
  ['sk-test-key', 'client-1'],
]);

let requestCounter = 0;

function deployment(fields) {
  return {
    id: fields.name,
    name: fields.name,
    model_name: fields.model_name,
    status: 'pending',
    use_gpu: fields.use_gpu,
    gpu_count: fields.use_gpu ? fields.gpu_count : 0,
    replicas: fields.replicas,
    ready_replicas: 0,
    endpoint: null,
    message: '',
    created_at: '2026-11-26T12:00:00Z',
  };
}

/** `tls`: `{ cert, key }` (PEM) to serve HTTPS instead of HTTP. */
async function startStandIn({ tls } = {}) {
  const deployments = new Map();
  const requests = [];
  const queue = [];
  const sockets = new Set();
  // Statuses each deployment moves through, one per status poll; the last one sticks.
  const progress = new Map();

  deployments.set('deployment-123', {
    ...deployment({ name: 'deployment-123', model_name: 'ZimaBlueAI/HuatuoGPT-o1-8B', use_gpu: true, gpu_count: 1, replicas: 1 }),
    status: 'ready',
    ready_replicas: 1,
    endpoint: 'http://deployment-123.tenant.svc:8000',
  });

  const server = (tls ? https : http).createServer(tls || {}, async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const url = new URL(req.url, 'http://stand-in');
    const record = { method: req.method, path: url.pathname, headers: req.headers, body };
    requests.push(record);
    const requestId = `req_${++requestCounter}`;
    res.setHeader('x-request-id', requestId);

    const scripted = takeScripted(req.method, url.pathname);
    if (scripted) {
      if (scripted.handler) return scripted.handler(req, res, record);
      for (const [name, value] of Object.entries(scripted.headers || {})) res.setHeader(name, value);
      return send(res, scripted.status, scripted.body);
    }

    const fail = (name) => {
      const { status, headers, body } = SERVICE_ERRORS[name];
      for (const [header, value] of Object.entries(headers)) res.setHeader(header, value);
      return send(res, status, { error: { ...body.error, request_id: requestId } });
    };

    const auth = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    if (!auth || CREDENTIALS.get(auth[1]) !== req.headers['x-client-id']) {
      return fail('authentication');
    }

    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== 'v1') return fail('no_such_route');
    const [, resource, id, sub] = parts;
    const route = `${req.method} ${resource}${id === undefined ? '' : '/:id'}${sub ? `/${sub}` : ''}`;

    switch (route) {
      case 'POST deployments': {
        if (!body || typeof body.model_name !== 'string' || !body.model_name) {
          return fail('model_name_missing');
        }
        const name =
          body.deployment_name ||
          `${body.model_name.split('/').pop().toLowerCase().replace(/[^a-z0-9-]/g, '-')}-x1y2z`;
        if (deployments.has(name)) return fail('deployment_exists');
        const created = deployment({
          name,
          model_name: body.model_name,
          use_gpu: body.use_gpu ?? true,
          gpu_count: body.gpu_count ?? 1,
          replicas: body.replicas ?? 1,
        });
        deployments.set(name, created);
        return send(res, 202, created);
      }
      case 'GET deployments':
        return send(res, 200, { data: [...deployments.values()] });
      case 'GET deployments/:id':
      case 'PATCH deployments/:id':
      case 'DELETE deployments/:id':
      case 'GET deployments/:id/status':
      case 'POST deployments/:id/generate': {
        const found = deployments.get(id);
        if (!found) return fail('deployment_not_found');
        if (req.method === 'GET' && !sub) return send(res, 200, found);
        if (req.method === 'PATCH') {
          if (body.replicas !== undefined) found.replicas = body.replicas;
          if (body.max_model_len !== undefined) found.max_model_len = body.max_model_len;
          return send(res, 200, found);
        }
        if (req.method === 'DELETE') {
          deployments.delete(id);
          return send(res, 202, { id, deleted: true });
        }
        if (sub === 'status') {
          const steps = progress.get(id);
          if (steps && steps.length) Object.assign(found, steps.length > 1 ? steps.shift() : steps[0]);
          return send(res, 200, {
            id,
            status: found.status,
            ready_replicas: found.ready_replicas,
            replicas: found.replicas,
            message: found.message,
            conditions: [
              {
                type: 'Ready',
                status: found.status === 'ready' ? 'True' : 'False',
                reason: found.status === 'ready' ? 'Ready' : 'Progressing',
                message: found.conditionMessage || '',
              },
            ],
          });
        }
        return generate(res, { ...body, deployment_id: id }, requestId, fail);
      }
      case 'POST generate':
        return generate(res, body, requestId, fail);
      case 'POST chat/:id':
        if (id === 'completions') return chat(res, body, fail);
        return fail('no_such_route');
      case 'GET subscription':
        return send(res, 200, {
          tier: 'standard',
          current_usage: 1234,
          usage_limit: 10000000,
          period_start: '2026-11-01T00:00:00Z',
          period_end: '2026-12-01T00:00:00Z',
        });
      default:
        return fail('no_such_route');
    }
  });

  function generate(res, body, requestId, fail) {
    if (!body || typeof body.prompt !== 'string' || !body.prompt) return fail('prompt_empty');
    const maxTokens = body.max_tokens ?? 256;
    if (!Number.isInteger(maxTokens)) return fail('max_tokens_not_an_integer');
    if (maxTokens < 1) return fail('max_tokens_too_small');
    if (maxTokens > 32768) return fail('max_tokens_too_large');
    const temperature = body.temperature ?? 1.0;
    if (temperature < 0) return fail('temperature_too_low');
    if (temperature > 2) return fail('temperature_too_high');
    if (!deployments.has(body.deployment_id)) return fail('generate_deployment_not_found');
    const pieces = ['HIPAA ', 'compliance ', 'matters.'];
    const usage = { prompt_tokens: 12, completion_tokens: pieces.length, total_tokens: 12 + pieces.length };
    if (!body.stream) {
      return send(res, 200, {
        id: 'gen-1',
        deployment_id: body.deployment_id,
        text: pieces.join(''),
        finish_reason: 'stop',
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (body.prompt === 'fail midway') {
      res.write(`data: ${JSON.stringify({ text: pieces[0] })}\n\n`);
      const { error } = SERVICE_ERRORS.stream_interrupted.event;
      res.write(`data: ${JSON.stringify({ error: { ...error, request_id: requestId } })}\n\n`);
      return res.end();
    }
    for (const text of pieces) res.write(`data: ${JSON.stringify({ text })}\n\n`);
    res.write(`data: ${JSON.stringify({ finish_reason: 'stop', usage })}\n\n`);
    res.write('data: [DONE]\n\n');
    return res.end();
  }

  /** Chat as vLLM streams it: a role-only chunk, text chunks, the finish reason with an empty
   * delta, then (when asked) the usage chunk without choices. */
  function chat(res, body, fail) {
    if (!body || !Array.isArray(body.messages) || body.messages.length === 0) {
      return fail('chat_messages_empty');
    }
    const found = deployments.get(body.model);
    if (!found) return fail('chat_model_unknown');
    const pieces = ['Protected', ' health', ' information.'];
    const usage = { prompt_tokens: 9, completion_tokens: pieces.length, total_tokens: 9 + pieces.length };
    const base = { id: 'chatcmpl-1', created: 1795694400, model: found.model_name };
    if (!body.stream) {
      return send(res, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, finish_reason: 'stop' }],
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (choices, extra = {}) =>
      res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`);
    event([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    for (const content of pieces) event([{ index: 0, delta: { content }, finish_reason: null }]);
    event([{ index: 0, delta: { content: '' }, finish_reason: 'stop' }]);
    if (body.stream_options && body.stream_options.include_usage) event([], { usage });
    res.write('data: [DONE]\n\n');
    return res.end();
  }

  function takeScripted(method, path) {
    const index = queue.findIndex(
      (item) => (!item.method || item.method === method) && (!item.path || item.path === path),
    );
    return index === -1 ? undefined : queue.splice(index, 1)[0];
  }

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/v1`,
    deployments,
    requests,
    progress,
    /** Queue a one-off answer: `{ method?, path?, status, body, headers }` or `{ method?, path?, handler }`. */
    enqueue(...items) {
      queue.push(...items);
    },
    reset() {
      requests.length = 0;
      queue.length = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res, status, body) {
  if (body === undefined) {
    res.writeHead(status);
    return res.end();
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  return res.end(text);
}

/**
 * The front door's recorded answer `name` (sdk/testdata/errors.json) as a one-off answer for
 * `enqueue()`, on `path` (and `method`).
 */
function recorded(name, path, method) {
  const { status, headers, body } = SERVICE_ERRORS[name];
  return { path, method, status, headers, body };
}

module.exports = { startStandIn, recorded, CREDENTIALS, SERVICE_ERRORS };
