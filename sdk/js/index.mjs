// The ESM entry point: re-exports the CommonJS classes themselves, so `instanceof` holds
// whether a value came from `import` or `require`.
import sdk from './lib/index.js';

export const {
  SecureModelClient,
  GenerationStream,
  ChatStream,
  PaitientError,
  ConfigurationError,
  WaitTimeoutError,
  AuthenticationError,
  PermissionDeniedError,
  ValidationError,
  ResourceError,
  NotFoundError,
  ConflictError,
  RateLimitError,
  ServiceError,
  APIConnectionError,
  APITimeoutError,
  DEFAULT_BASE_URL,
  VERSION,
} = sdk;

export default sdk;
