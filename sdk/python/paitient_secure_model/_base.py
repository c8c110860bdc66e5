"""Everything the sync and async clients share: request building, the retry policy, error
mapping, response parsing and the readiness wait. The two clients only add I/O on top."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable
from urllib.parse import quote

import httpx

from ._config import USER_AGENT, ClientConfig, TimeoutTypes
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PaitientError,
    PermissionDeniedError,
    RateLimitError,
    ResourceError,
    ServiceError,
    ValidationError,
    WaitTimeoutError,
)
from ._types import DeploymentStatus

log = logging.getLogger("paitient_secure_model")

# The retry policy. The JavaScript SDK must use the same numbers (STYLE.md: one policy).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

ProgressCallback = Callable[[DeploymentStatus], object]
Json = Any

_STATUS_ERRORS: dict[int, type[PaitientError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}

_TYPE_ERRORS: dict[str, type[PaitientError]] = {
    "validation_error": ValidationError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "conflict_error": ConflictError,
    "rate_limit_error": RateLimitError,
    "service_error": ServiceError,
}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RequestSpec:
    """One API call before it becomes an httpx request."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    stream: bool = False


def _id(deployment_id: str) -> str:
    if not isinstance(deployment_id, str) or not deployment_id:
        raise ValueError(f"deployment_id must be a non-empty string, not {deployment_id!r}")
    # Quote everything, so an id can never escape its path segment.
    return quote(deployment_id, safe="")


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop arguments left at None: the server applies its documented defaults."""
    return {k: v for k, v in values.items() if v is not None}


def deploy_model_request(
    model_name: str,
    deployment_name: str | None,
    use_gpu: bool,
    gpu_count: int | None,
    replicas: int | None,
    extra: Mapping[str, Any],
) -> RequestSpec:
    body = _compact(
        {
            **extra,
            "model_name": model_name,
            "deployment_name": deployment_name,
            "use_gpu": use_gpu,
            "gpu_count": gpu_count,
            "replicas": replicas,
        }
    )
    return RequestSpec("POST", "/deployments", body)


def list_deployments_request() -> RequestSpec:
    return RequestSpec("GET", "/deployments")


def get_deployment_request(deployment_id: str) -> RequestSpec:
    return RequestSpec("GET", f"/deployments/{_id(deployment_id)}")


def get_deployment_status_request(deployment_id: str) -> RequestSpec:
    return RequestSpec("GET", f"/deployments/{_id(deployment_id)}/status")


def update_deployment_request(
    deployment_id: str,
    replicas: int | None,
    max_model_len: int | None,
    extra: Mapping[str, Any],
) -> RequestSpec:
    body = _compact({**extra, "replicas": replicas, "max_model_len": max_model_len})
    if not body:
        raise ValueError("update_deployment needs at least one field to change, e.g. replicas=2")
    return RequestSpec("PATCH", f"/deployments/{_id(deployment_id)}", body)


def delete_deployment_request(deployment_id: str) -> RequestSpec:
    return RequestSpec("DELETE", f"/deployments/{_id(deployment_id)}")


def generate_request(
    deployment_id: str,
    prompt: str,
    max_tokens: int,
    temperature: float,
    stream: bool,
) -> RequestSpec:
    _id(deployment_id)
    body = {
        "deployment_id": deployment_id,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    return RequestSpec("POST", "/generate", body, stream=stream)


def chat_request(
    deployment_id: str,
    messages: Sequence[Mapping[str, Any]],
    max_tokens: int | None,
    temperature: float | None,
    stream: bool,
    extra: Mapping[str, Any],
) -> RequestSpec:
    """The OpenAI-compatible chat call; ``model`` is the deployment id. A stream asks for the
    usage chunk, so its last chunk carries the usage."""
    _id(deployment_id)
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ValueError(
            'messages must be a non-empty list like [{"role": "user", "content": "Hello"}]'
        )
    body = _compact(
        {
            **extra,
            "model": deployment_id,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
    )
    if stream:
        body["stream_options"] = {"include_usage": True}
    return RequestSpec("POST", "/chat/completions", body, stream=stream)


def subscription_request() -> RequestSpec:
    return RequestSpec("GET", "/subscription")


def deployments_from_list(data: Json) -> list[Any]:
    """The ``data`` array of ``GET /deployments``."""
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise PaitientError(
            "Unexpected response from the API: the deployment list has no 'data' array",
            type="invalid_response",
            body=data,
        )
    return items


# --------------------------------------------------------------------------- retry policy


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - now()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)], ``attempt`` counting from 0."""
    return rand() * min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2.0**attempt)


def retry_delay(
    attempt: int, response: httpx.Response | None, rand: Callable[[], float] = random.random
) -> float:
    """How long to wait before retry number ``attempt + 1``: the server's Retry-After when it
    sent one (capped), else exponential backoff."""
    if response is not None:
        after = parse_retry_after(response.headers.get("retry-after"))
        if after is not None:
            return min(after, MAX_RETRY_AFTER)
    return backoff_delay(attempt, rand)


def is_retryable_status(status_code: int) -> bool:
    """408, 429 and 5xx are worth another try; 409 is not (the state will not change)."""
    return status_code in RETRY_STATUSES or status_code >= 500


def is_retryable_exception(exc: httpx.TransportError) -> bool:
    """Timeouts and network failures are transient; a bad URL or a proxy misconfiguration is not."""
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


# --------------------------------------------------------------------------- errors


def _error_payload(body: Json) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return error
    return {}


def _decode_body(text: str) -> Json:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text or None


class BaseClient:
    """State and pure logic shared by SecureModelClient and AsyncSecureModelClient."""

    _config: ClientConfig

    def __init__(
        self,
        api_key: str | None,
        client_id: str | None,
        base_url: str | None,
        timeout: TimeoutTypes,
        max_retries: int,
    ) -> None:
        self._config = ClientConfig.resolve(api_key, client_id, base_url, timeout, max_retries)
        # Seams for tests: the source of jitter and the clock used by wait_until_ready.
        self._random: Callable[[], float] = random.random
        self._clock: Callable[[], float] = time.monotonic

    @property
    def base_url(self) -> str:
        """The API root every path is appended to, e.g. ``https://api.paitient.ai/v1``."""
        return self._config.base_url

    @property
    def client_id(self) -> str:
        """The client ID sent as ``X-Client-ID``."""
        return self._config.client_id

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried (so at most ``max_retries + 1`` sends)."""
        return self._config.max_retries

    @property
    def timeout(self) -> TimeoutTypes:
        """The default timeout of every request; each method takes ``timeout=`` to override."""
        return self._config.timeout

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, client_id={self.client_id!r}, "
            f"max_retries={self.max_retries!r})"
        )

    # -- requests

    def _request_args(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.build_request``, reused for every retry."""
        headers = {
            "Authorization": f"Bearer {self._config.api_key}",
            "X-Client-ID": self._config.client_id,
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream" if spec.stream else "application/json",
        }
        if spec.method != "GET":
            # One key per call, the same on every retry, so a server that saw the first attempt
            # answers the retry from its record instead of creating or generating twice.
            headers["Idempotency-Key"] = str(uuid.uuid4())
        args: dict[str, Any] = {
            "method": spec.method,
            "url": self._config.base_url + spec.path,
            "headers": headers,
            "timeout": self._config.timeout if timeout is None else timeout,
        }
        if spec.body is not None:
            args["json"] = dict(spec.body)
        return args

    def _retry_delay_after_response(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying this response, or None to give up on it."""
        if attempt >= self.max_retries or not is_retryable_status(response.status_code):
            return None
        delay = retry_delay(attempt, response, self._random)
        log.info(
            "Retrying %s %s after HTTP %d in %.2fs (retry %d of %d)",
            response.request.method,
            response.request.url.path,
            response.status_code,
            delay,
            attempt + 1,
            self.max_retries,
        )
        return delay

    def _retry_delay_after_exception(self, exc: httpx.TransportError, attempt: int) -> float | None:
        """Seconds to wait before retrying after a failure without a response, or None."""
        if attempt >= self.max_retries or not is_retryable_exception(exc):
            return None
        delay = retry_delay(attempt, None, self._random)
        log.info(
            "Retrying after %s in %.2fs (retry %d of %d)",
            type(exc).__name__,
            delay,
            attempt + 1,
            self.max_retries,
        )
        return delay

    # -- errors

    def _connection_error(self, exc: httpx.TransportError) -> APIConnectionError:
        detail = self._config.redact(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"Request timed out: {detail}", type="timeout_error")
        return APIConnectionError(f"Connection error: {detail}", type="connection_error")

    def _status_error(self, response: httpx.Response) -> PaitientError:
        """The error for a non-2xx response whose body has been read."""
        # The body is redacted too: a server echoing the key must not put it into a traceback.
        body = _decode_body(self._config.redact(response.text))
        payload = _error_payload(body)
        message = payload.get("message")
        if not isinstance(message, str) or not message:
            message = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
            if isinstance(body, str) and body.strip():
                message += f": {body.strip()[:200]}"
        error_type = payload.get("type") if isinstance(payload.get("type"), str) else None
        request_id = payload.get("request_id")
        if not isinstance(request_id, str):
            request_id = response.headers.get("x-request-id")
        status = response.status_code
        cls = _STATUS_ERRORS.get(status) or (
            ServiceError if status >= 500 else _TYPE_ERRORS.get(error_type or "", PaitientError)
        )
        kwargs: dict[str, Any] = {
            "status_code": status,
            "type": error_type,
            "request_id": request_id,
            "body": body,
        }
        if issubclass(cls, RateLimitError):
            kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
        return cls(message, **kwargs)

    def _parse_json(self, response: httpx.Response) -> Json:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PaitientError(
                f"Unexpected response from the API: HTTP {response.status_code} is not JSON",
                status_code=response.status_code,
                type="invalid_response",
                request_id=response.headers.get("x-request-id"),
                body=response.text,
            ) from None

    def _stream_error(self, payload: Mapping[str, Any], request_id: str | None) -> PaitientError:
        """The error for a ``data: {"error": {...}}`` event after the stream started."""
        error_type = payload.get("type") if isinstance(payload.get("type"), str) else None
        message = payload.get("message")
        if not isinstance(message, str) or not message:
            message = "The generation failed after the stream started"
        event_request_id = payload.get("request_id")
        # Nothing can be retried once bytes arrived, so an untyped failure is the service's.
        cls = _TYPE_ERRORS.get(error_type or "", ServiceError)
        return cls(
            self._config.redact(message),
            type=error_type,
            request_id=event_request_id if isinstance(event_request_id, str) else request_id,
            body={"error": dict(payload)},
        )

    def _stream_payload(self, data: str, request_id: str | None) -> Mapping[str, Any] | None:
        """One SSE ``data`` field as a JSON object; None for the ``[DONE]`` sentinel; raises the
        error of an ``error`` event."""
        if data.strip() == "[DONE]":
            return None
        try:
            payload = json.loads(data)
        except json.JSONDecodeError:
            raise ServiceError(
                "Unexpected stream event from the API: not JSON",
                type="invalid_response",
                request_id=request_id,
                body=data,
            ) from None
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
            raise self._stream_error(payload["error"], request_id)
        if not isinstance(payload, Mapping):
            raise ServiceError(
                "Unexpected stream event from the API: not a JSON object",
                type="invalid_response",
                request_id=request_id,
                body=payload,
            )
        return payload

    def _stream_ended_early(self, request_id: str | None) -> APIConnectionError:
        return APIConnectionError(
            "The stream ended before the generation finished",
            type="connection_error",
            request_id=request_id,
        )


# --------------------------------------------------------------------------- waiting


class ReadinessWait:
    """The decisions of ``wait_until_ready``, shared by both clients: poll, stop or fail."""

    def __init__(
        self,
        deployment_id: str,
        timeout: float,
        poll_interval: float,
        clock: Callable[[], float],
    ) -> None:
        _id(deployment_id)
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
        self.deployment_id = deployment_id
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._deadline = clock() + timeout

    def next_delay(self, status: DeploymentStatus) -> float | None:
        """None when ready; else the seconds to sleep before the next poll.

        Raises ResourceError when the deployment failed and WaitTimeoutError when the next poll
        would come after the deadline.
        """
        if status.is_ready:
            return None
        if status.is_failed:
            raise ResourceError(
                status.message
                or failed_condition_message(status)
                or f"Deployment {self.deployment_id!r} failed",
                type="deployment_failed",
                body=dict(status.raw),
            )
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise WaitTimeoutError(
                f"Deployment {self.deployment_id!r} was not ready after {self.timeout:g}s "
                f"(last status: {status.status}"
                + (f", {status.message}" if status.message else "")
                + ")",
                deployment_id=self.deployment_id,
                last_status=status,
            )
        # The last sleep is cut short so the final poll lands on the deadline.
        return min(self.poll_interval, remaining)


def failed_condition_message(status: DeploymentStatus) -> str:
    """The message of the first condition that is not True, for failures without a message."""
    for condition in status.conditions:
        if condition.status != "True" and condition.message:
            return condition.message
    return ""
