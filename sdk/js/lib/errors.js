'use strict';
/**
 * Every error the SDK throws, one class per row of the REST contract's error table
 * (docs/rest-api.md). The names and the tree are the Python SDK's.
 *
 *   PaitientError
 *   ├── ConfigurationError          missing credentials, bad base URL or option
 *   ├── WaitTimeoutError            waitUntilReady() gave up
 *   ├── AuthenticationError         401
 *   │   └── PermissionDeniedError   403
 *   ├── ValidationError             400, 422
 *   ├── ResourceError               (a deployment that failed)
 *   │   ├── NotFoundError           404
 *   │   └── ConflictError           409
 *   ├── RateLimitError              429 (retryAfter in seconds)
 *   └── ServiceError                >= 500
 *       └── APIConnectionError      no response at all
 *           └── APITimeoutError     no response in time
 *
 * Every error carries `status`, `type`, `requestId` and `body`; `message` is the server's
 * message. The API key never appears in any of them.
 */

/** Base class of every error thrown by the PaiTIENT SDK. */
class PaitientError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, type?: string, requestId?: string, body?: unknown, cause?: unknown}} [fields]
   */
  constructor(message, { status, type, requestId, body, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.body = body;
  }
}

/** The client cannot be built: a credential, the base URL or an option is missing or invalid. */
class ConfigurationError extends PaitientError {}

/** waitUntilReady() ran out of time before the deployment became ready. */
class WaitTimeoutError extends PaitientError {
  constructor(message, { deploymentId, lastStatus } = {}) {
    super(message, { type: 'wait_timeout' });
    this.deploymentId = deploymentId;
    this.lastStatus = lastStatus;
  }
}

/** 401: the API key or client ID was not accepted. */
class AuthenticationError extends PaitientError {}

/** 403: the credentials are valid but may not perform this call. */
class PermissionDeniedError extends AuthenticationError {}

/** 400 or 422: the request's parameters were rejected. */
class ValidationError extends PaitientError {}

/** A problem with the requested resource, such as a deployment that failed. */
class ResourceError extends PaitientError {}

/** 404: no such deployment (or other resource) for this client. */
class NotFoundError extends ResourceError {}

/** 409: the request conflicts with the resource's state, e.g. a name already taken. */
class ConflictError extends ResourceError {}

/** 429: too many requests or the usage cap was reached; see `retryAfter` (seconds). */
class RateLimitError extends PaitientError {
  constructor(message, fields = {}) {
    super(message, fields);
    this.retryAfter = fields.retryAfter;
  }
}

/** 5xx: the service failed to answer the request. */
class ServiceError extends PaitientError {}

/** The request got no response: connection refused, reset or broken mid-stream. */
class APIConnectionError extends ServiceError {}

/** The request got no response within the timeout. */
class APITimeoutError extends APIConnectionError {}

const ERROR_CLASSES = {
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
};

// `name` on the prototype (not the instance) survives minifiers and stays out of inspect output.
for (const [name, cls] of Object.entries(ERROR_CLASSES)) {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
}

const STATUS_ERRORS = {
  400: ValidationError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  422: ValidationError,
  429: RateLimitError,
};

const TYPE_ERRORS = {
  validation_error: ValidationError,
  authentication_error: AuthenticationError,
  permission_error: PermissionDeniedError,
  not_found_error: NotFoundError,
  conflict_error: ConflictError,
  rate_limit_error: RateLimitError,
  service_error: ServiceError,
};

/** The class for an HTTP status: by status first, then by the body's error type. */
function errorClassFor(status, type) {
  if (STATUS_ERRORS[status]) return STATUS_ERRORS[status];
  if (status >= 500) return ServiceError;
  return (type && Object.hasOwn(TYPE_ERRORS, type) && TYPE_ERRORS[type]) || PaitientError;
}

/** The class for a `data: {"error": ...}` event: nothing can be retried then, so untyped is the service's. */
function streamErrorClassFor(type) {
  return (type && Object.hasOwn(TYPE_ERRORS, type) && TYPE_ERRORS[type]) || ServiceError;
}

module.exports = { ...ERROR_CLASSES, errorClassFor, streamErrorClassFor };
