'use strict';
/** The public surface of paitient-secure-model; everything else in lib/ is private. */

const errors = require('./errors');
const { SecureModelClient, DEFAULT_BASE_URL } = require('./client');
const { ChatStream, GenerationStream } = require('./streaming');
const { VERSION } = require('./version');

module.exports = {
  SecureModelClient,
  GenerationStream,
  ChatStream,
  PaitientError: errors.PaitientError,
  ConfigurationError: errors.ConfigurationError,
  WaitTimeoutError: errors.WaitTimeoutError,
  AuthenticationError: errors.AuthenticationError,
  PermissionDeniedError: errors.PermissionDeniedError,
  ValidationError: errors.ValidationError,
  ResourceError: errors.ResourceError,
  NotFoundError: errors.NotFoundError,
  ConflictError: errors.ConflictError,
  RateLimitError: errors.RateLimitError,
  ServiceError: errors.ServiceError,
  APIConnectionError: errors.APIConnectionError,
  APITimeoutError: errors.APITimeoutError,
  DEFAULT_BASE_URL,
  VERSION,
};
