'use strict';
/**
 * The snake_case wire format of docs/rest-api.md, mapped both ways: request bodies are built
 * from camelCase options, responses come back with every key camelCased. Fields the server
 * adds later come through camelCased too, so an older SDK keeps working against a newer server.
 */

const { PaitientError } = require('./errors');

function toCamel(key) {
  return key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Deep copy of a JSON value with every object key camelCased. */
function camelize(value) {
  if (Array.isArray(value)) return value.map(camelize);
  if (!isPlainObject(value)) return value;
  const out = {};
  for (const [key, item] of Object.entries(value)) out[toCamel(key)] = camelize(item);
  return out;
}

/** Drop options left undefined: the server applies its documented defaults. */
function compact(body) {
  const out = {};
  for (const [key, value] of Object.entries(body)) if (value !== undefined) out[key] = value;
  return out;
}

function invalid(what, data) {
  return new PaitientError(`Unexpected response from the API: ${what}`, {
    type: 'invalid_response',
    body: data,
  });
}

function objectFromWire(data, what, requiredKey) {
  if (!isPlainObject(data)) throw invalid(`${what} is not a JSON object`, data);
  if (requiredKey && typeof data[requiredKey] !== 'string') {
    throw invalid(`${what} has no valid '${requiredKey}'`, data);
  }
  return camelize(data);
}

// ---------------------------------------------------------------------------- requests

function deployBody({ modelName, deploymentName, useGpu = true, gpuCount, replicas, maxModelLen, gpuProduct }) {
  if (typeof modelName !== 'string' || !modelName) {
    throw new TypeError('deploy() needs modelName, e.g. { modelName: "ZimaBlueAI/HuatuoGPT-o1-8B" }');
  }
  return compact({
    model_name: modelName,
    deployment_name: deploymentName,
    use_gpu: useGpu,
    gpu_count: gpuCount,
    replicas,
    max_model_len: maxModelLen,
    gpu_product: gpuProduct,
  });
}

function updateBody({ replicas, maxModelLen } = {}) {
  const body = compact({ replicas, max_model_len: maxModelLen });
  if (Object.keys(body).length === 0) {
    throw new TypeError('updateDeployment() needs at least one field to change, e.g. { replicas: 2 }');
  }
  return body;
}

function generateBody({ deploymentId, prompt, maxTokens = 256, temperature = 1.0 }, stream) {
  checkId(deploymentId, 'deploymentId');
  if (typeof prompt !== 'string') throw new TypeError('generate() needs prompt, a string');
  return { deployment_id: deploymentId, prompt, max_tokens: maxTokens, temperature, stream };
}

/**
 * The OpenAI-compatible chat body; `model` is the deployment id. A stream asks for the usage
 * chunk, so its last chunk carries the usage. `extra` fields (wire names: `top_p`, `stop`,
 * `seed`, ...) go into the body as they are.
 */
function chatBody({ deploymentId, messages, maxTokens, temperature, extra = {} }, stream) {
  checkId(deploymentId, 'deploymentId');
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new TypeError('chat() needs messages, a non-empty array like [{ role: "user", content: "Hello" }]');
  }
  if (!isPlainObject(extra)) throw new TypeError('extra must be an object of request fields');
  const body = compact({
    ...extra,
    model: deploymentId,
    messages,
    max_tokens: maxTokens,
    temperature,
    stream,
  });
  if (stream) body.stream_options = { include_usage: true };
  return body;
}

/** A deployment id as one path segment; quoting everything means it can never escape it. */
function idPath(id, name = 'id') {
  checkId(id, name);
  return encodeURIComponent(id);
}

function checkId(id, name) {
  if (typeof id !== 'string' || !id) {
    throw new TypeError(`${name} must be a non-empty string, not ${JSON.stringify(id)}`);
  }
}

// ---------------------------------------------------------------------------- responses

const deploymentFromWire = (data) => objectFromWire(data, 'deployment', 'id');
const deploymentStatusFromWire = (data) => objectFromWire(data, 'deployment status', 'status');
const deletedFromWire = (data) => objectFromWire(data, 'deletion', 'id');
const generationFromWire = (data) => objectFromWire(data, 'generation', 'text');
const subscriptionFromWire = (data) => objectFromWire(data, 'subscription', 'tier');
const chunkFromWire = (data) => objectFromWire(data, 'stream event');

/** A chat answer (its first choice): `{ id, deploymentId, model, message, finishReason, usage }`. */
function chatFromWire(data, deploymentId) {
  if (!isPlainObject(data)) throw invalid('chat completion is not a JSON object', data);
  const choice = Array.isArray(data.choices) ? data.choices[0] : undefined;
  if (!isPlainObject(choice)) throw invalid("chat completion has no valid 'choices'", data);
  const message = isPlainObject(choice.message) ? choice.message : {};
  return {
    id: typeof data.id === 'string' ? data.id : '',
    deploymentId,
    model: typeof data.model === 'string' ? data.model : '',
    message: {
      role: typeof message.role === 'string' ? message.role : 'assistant',
      content: typeof message.content === 'string' ? message.content : '',
    },
    finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null,
    usage: camelize(isPlainObject(data.usage) ? data.usage : { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }),
  };
}

/**
 * One `chat.completion.chunk` event as it is on the wire (its first choice):
 * `{ content, finishReason?, usage? }`.
 */
function chatEventFromWire(data) {
  const choice = Array.isArray(data.choices) && isPlainObject(data.choices[0]) ? data.choices[0] : {};
  const delta = isPlainObject(choice.delta) ? choice.delta : {};
  const event = { content: typeof delta.content === 'string' ? delta.content : '' };
  if (typeof choice.finish_reason === 'string') event.finishReason = choice.finish_reason;
  if (isPlainObject(data.usage)) event.usage = camelize(data.usage);
  return event;
}

function deploymentListFromWire(data) {
  if (!isPlainObject(data) || !Array.isArray(data.data)) {
    throw invalid("the deployment list has no 'data' array", data);
  }
  return data.data.map(deploymentFromWire);
}

module.exports = {
  camelize,
  compact,
  deployBody,
  updateBody,
  generateBody,
  chatBody,
  idPath,
  deploymentFromWire,
  deploymentStatusFromWire,
  deploymentListFromWire,
  deletedFromWire,
  generationFromWire,
  subscriptionFromWire,
  chunkFromWire,
  chatFromWire,
  chatEventFromWire,
};
