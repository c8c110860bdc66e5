// Type declarations for paitient-secure-model: the client, its results and its errors.
// Results use camelCase; the wire format (docs/rest-api.md) is snake_case.

/** The values of `status` the contract names; typed open so a new one is not an error. */
export type DeploymentState =
  | 'pending'
  | 'progressing'
  | 'ready'
  | 'degraded'
  | 'failed'
  | 'scaled-to-zero'
  | (string & {});

export interface ClientOptions {
  /** Default: `process.env.PAITIENT_API_KEY`. */
  apiKey?: string;
  /** Default: `process.env.PAITIENT_CLIENT_ID`. */
  clientId?: string;
  /** Default: `process.env.PAITIENT_BASE_URL`, else `https://api.paitient.ai/v1`. */
  baseUrl?: string;
  /** Per-request timeout in milliseconds; 0 disables it. Default 60000. */
  timeout?: number;
  /** Retries of connection errors, 408, 429 and 5xx. Default 2. */
  maxRetries?: number;
  /** A fetch implementation. Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * Trust only these CAs for the server's certificate: the path of a PEM file, or PEM text.
   * Default: `process.env.PAITIENT_CA_BUNDLE`, else the system's CAs. Always verified.
   */
  caBundle?: string;
}

export interface RequestOptions {
  /** This call's timeout in milliseconds, overriding the client's. */
  timeout?: number;
}

export interface DeployOptions extends RequestOptions {
  modelName: string;
  /** Default: derived by the server from the model name plus a random suffix. */
  deploymentName?: string;
  /** Default true. */
  useGpu?: boolean;
  /** Default 1 (server side; only with useGpu). */
  gpuCount?: number;
  /** Default 1 (server side). */
  replicas?: number;
  maxModelLen?: number;
  gpuProduct?: string;
}

export interface UpdateDeploymentOptions extends RequestOptions {
  replicas?: number;
  maxModelLen?: number;
}

export interface WaitOptions {
  /** How long to wait in total, in milliseconds. Default 600000. */
  timeout?: number;
  /** Milliseconds between status polls. Default 2000. */
  pollInterval?: number;
  /** Called with every status polled. */
  onProgress?: (status: DeploymentStatus) => unknown;
}

export interface GenerateOptions extends RequestOptions {
  deploymentId: string;
  prompt: string;
  /** 1..32768, default 256. */
  maxTokens?: number;
  /** 0..2, default 1.0. */
  temperature?: number;
}

/** One message of a conversation. */
export interface ChatMessage {
  /** `system`, `user`, `assistant`, `tool` or `developer`. */
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer' | (string & {});
  content: string;
}

export interface ChatOptions extends RequestOptions {
  deploymentId: string;
  messages: ChatMessage[] | Array<Record<string, unknown>>;
  /** Default: the server's. */
  maxTokens?: number;
  /** 0..2; default: the model's. */
  temperature?: number;
  /** More request fields under their wire names, e.g. `{ top_p: 0.9, stop: ["\n"] }`. */
  extra?: Record<string, unknown>;
}

/** A model deployed into the caller's secure environment; `id` is its name. */
export interface Deployment {
  id: string;
  name: string;
  modelName: string;
  status: DeploymentState;
  useGpu: boolean;
  gpuCount: number;
  replicas: number;
  readyReplicas: number;
  endpoint: string | null;
  message: string;
  /** ISO 8601 timestamp, e.g. `2026-11-26T12:00:00Z`. */
  createdAt: string;
  maxModelLen?: number;
  [field: string]: unknown;
}

/** One Kubernetes-style condition of a deployment. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown' | (string & {});
  reason: string;
  message: string;
}

export interface DeploymentStatus {
  id: string;
  status: DeploymentState;
  readyReplicas: number;
  replicas: number;
  message: string;
  conditions: Condition[];
  [field: string]: unknown;
}

export interface DeletedDeployment {
  id: string;
  deleted: boolean;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface GenerationResult {
  id: string;
  deploymentId: string;
  text: string;
  finishReason: string;
  usage: Usage;
}

/** A piece of generated text. */
export interface TextChunk {
  text: string;
  finishReason?: undefined;
  usage?: undefined;
}

/** The last chunk of a stream. */
export interface FinalChunk {
  text?: undefined;
  finishReason: string;
  usage: Usage;
}

export type GenerationChunk = TextChunk | FinalChunk;

/** The answer of a non-streaming chat call (its first choice). */
export interface ChatResult {
  id: string;
  deploymentId: string;
  /** The model the deployment serves, e.g. `ZimaBlueAI/HuatuoGPT-o1-8B`. */
  model: string;
  message: ChatMessage;
  /** `stop`, `length`, ...; null if the server gave none. */
  finishReason: string | null;
  usage: Usage;
}

/** A piece of a chat answer's text. */
export interface ChatTextChunk {
  content: string;
  finishReason?: undefined;
  usage?: undefined;
}

/** The last chunk of a chat stream; `usage` is missing only if the server sent none. */
export interface ChatFinalChunk {
  content?: undefined;
  finishReason: string;
  usage?: Usage;
}

export type ChatChunk = ChatTextChunk | ChatFinalChunk;

export interface Subscription {
  tier: string;
  currentUsage: number;
  usageLimit: number;
  /** ISO 8601 timestamp. */
  periodStart: string;
  /** ISO 8601 timestamp. */
  periodEnd: string;
}

/**
 * The chunks of a streamed generation. Never retried once it exists; a mid-stream failure
 * throws from the loop. Leaving the loop early releases the connection.
 */
export declare class GenerationStream implements AsyncIterable<GenerationChunk> {
  constructor(response: Response, options?: { controller?: AbortController; redact?: (text: string) => string });
  /** The response's x-request-id. */
  readonly requestId: string | undefined;
  readonly response: Response;
  /** Stop the stream; a pending iteration throws APIConnectionError. */
  abort(): void;
  [Symbol.asyncIterator](): AsyncIterator<GenerationChunk>;
}

/**
 * The chunks of a streamed chat answer. Never retried once it exists; a mid-stream failure
 * throws from the loop. Leaving the loop early releases the connection.
 */
export declare class ChatStream implements AsyncIterable<ChatChunk> {
  constructor(response: Response, options?: { controller?: AbortController; redact?: (text: string) => string });
  /** The response's x-request-id. */
  readonly requestId: string | undefined;
  readonly response: Response;
  /** Stop the stream; a pending iteration throws APIConnectionError. */
  abort(): void;
  [Symbol.asyncIterator](): AsyncIterator<ChatChunk>;
}

export declare class SecureModelClient {
  /** @throws {ConfigurationError} when a credential, the base URL or an option is missing or invalid */
  constructor(options?: ClientOptions);
  readonly clientId: string;
  readonly baseUrl: string;
  readonly timeout: number;
  readonly maxRetries: number;

  /** Deploy a model; resolves at once with the deployment `pending`. */
  deploy(options: DeployOptions): Promise<Deployment>;
  listDeployments(options?: RequestOptions): Promise<Deployment[]>;
  getDeployment(deploymentId: string, options?: RequestOptions): Promise<Deployment>;
  getDeploymentStatus(deploymentId: string, options?: RequestOptions): Promise<DeploymentStatus>;
  updateDeployment(deploymentId: string, options: UpdateDeploymentOptions): Promise<Deployment>;
  deleteDeployment(deploymentId: string, options?: RequestOptions): Promise<DeletedDeployment>;
  /**
   * Poll until `ready`. Rejects with ResourceError when the deployment failed and with
   * WaitTimeoutError when `timeout` ms pass first.
   */
  waitUntilReady(deploymentId: string, options?: WaitOptions): Promise<DeploymentStatus>;

  generate(options: GenerateOptions & { stream?: false }): Promise<GenerationResult>;
  generate(options: GenerateOptions & { stream: true }): Promise<GenerationStream>;
  /** Resolves once the server answered 2xx (after any retries); `timeout` covers only that wait. */
  generateStream(options: GenerateOptions): Promise<GenerationStream>;

  /** Chat with a deployment over the OpenAI-compatible route (`POST /chat/completions`). */
  chat(options: ChatOptions & { stream?: false }): Promise<ChatResult>;
  chat(options: ChatOptions & { stream: true }): Promise<ChatStream>;
  /** Resolves once the server answered 2xx (after any retries); `timeout` covers only that wait. */
  chatStream(options: ChatOptions): Promise<ChatStream>;

  getSubscription(options?: RequestOptions): Promise<Subscription>;
}

// ------------------------------------------------------------------------------ errors

export interface ErrorFields {
  status?: number;
  type?: string;
  requestId?: string;
  body?: unknown;
  cause?: unknown;
}

/** Base class of every error thrown by the SDK. `message` is the server's message. */
export declare class PaitientError extends Error {
  constructor(message: string, fields?: ErrorFields);
  /** The HTTP status; undefined when there was no response. */
  readonly status: number | undefined;
  /** The contract's error type, e.g. `validation_error`. */
  readonly type: string | undefined;
  readonly requestId: string | undefined;
  /** The parsed response body (or its text). */
  readonly body: unknown;
}
/** Missing credentials, bad base URL or option. */
export declare class ConfigurationError extends PaitientError {}
/** waitUntilReady() ran out of time. */
export declare class WaitTimeoutError extends PaitientError {
  constructor(message: string, fields?: { deploymentId?: string; lastStatus?: DeploymentStatus });
  readonly deploymentId: string;
  readonly lastStatus: DeploymentStatus | undefined;
}
/** 401 */
export declare class AuthenticationError extends PaitientError {}
/** 403 */
export declare class PermissionDeniedError extends AuthenticationError {}
/** 400, 422 */
export declare class ValidationError extends PaitientError {}
/** A problem with the requested resource, such as a deployment that failed. */
export declare class ResourceError extends PaitientError {}
/** 404 */
export declare class NotFoundError extends ResourceError {}
/** 409 */
export declare class ConflictError extends ResourceError {}
/** 429 */
export declare class RateLimitError extends PaitientError {
  constructor(message: string, fields?: ErrorFields & { retryAfter?: number });
  /** Seconds from the Retry-After header, if sent. */
  readonly retryAfter: number | undefined;
}
/** >= 500 */
export declare class ServiceError extends PaitientError {}
/** No response at all, or the connection broke mid-stream. */
export declare class APIConnectionError extends ServiceError {}
/** No response within the timeout. */
export declare class APITimeoutError extends APIConnectionError {}

export declare const DEFAULT_BASE_URL: 'https://api.paitient.ai/v1';
export declare const VERSION: string;
