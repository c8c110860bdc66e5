"""Every API call as data: its method, path and body, checked before anything is sent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ._config import DEFAULT_TIMEOUT, MODEL_READ_TIMEOUT, USER_AGENT, ClientConfig, TimeoutTypes
from ._exceptions import PaitientError

Json = Any


@dataclass(frozen=True)
class RequestSpec:
    """One API call before it becomes an httpx request."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    stream: bool = False
    # Answered by a model, which may first have to start from zero replicas (the front door
    # holds the request meanwhile): the default timeout's read part is stretched to cover that.
    served_by_model: bool = False


def deployment_path_segment(deployment_id: str) -> str:
    """``deployment_id`` checked and quoted for a URL path."""
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
    return RequestSpec("GET", f"/deployments/{deployment_path_segment(deployment_id)}")


def get_deployment_status_request(deployment_id: str) -> RequestSpec:
    return RequestSpec("GET", f"/deployments/{deployment_path_segment(deployment_id)}/status")


def update_deployment_request(
    deployment_id: str,
    replicas: int | None,
    max_model_len: int | None,
    extra: Mapping[str, Any],
) -> RequestSpec:
    body = _compact({**extra, "replicas": replicas, "max_model_len": max_model_len})
    if not body:
        raise ValueError("update_deployment needs at least one field to change, e.g. replicas=2")
    return RequestSpec("PATCH", f"/deployments/{deployment_path_segment(deployment_id)}", body)


def delete_deployment_request(deployment_id: str) -> RequestSpec:
    return RequestSpec("DELETE", f"/deployments/{deployment_path_segment(deployment_id)}")


def generate_request(
    deployment_id: str,
    prompt: str,
    max_tokens: int,
    temperature: float,
    stream: bool,
) -> RequestSpec:
    deployment_path_segment(deployment_id)
    body = {
        "deployment_id": deployment_id,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    return RequestSpec("POST", "/generate", body, stream=stream, served_by_model=True)


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
    deployment_path_segment(deployment_id)
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
    return RequestSpec("POST", "/chat/completions", body, stream=stream, served_by_model=True)


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


def _default_timeout(config: ClientConfig, spec: RequestSpec) -> TimeoutTypes:
    """The client's timeout; for a call a model answers, with the client's default (not one the
    caller chose), a read timeout long enough for the front door's hold of a deployment that
    starts from zero replicas (300 s by default) and the answer after it."""
    if spec.served_by_model and config.timeout == DEFAULT_TIMEOUT:
        return httpx.Timeout(DEFAULT_TIMEOUT, read=MODEL_READ_TIMEOUT)
    return config.timeout


def httpx_request_args(
    config: ClientConfig, spec: RequestSpec, timeout: TimeoutTypes | None
) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client.build_request``, reused for every retry."""
    headers = {
        "Authorization": f"Bearer {config.api_key}",
        "X-Client-ID": config.client_id,
        "User-Agent": USER_AGENT,
        "Accept": "text/event-stream" if spec.stream else "application/json",
    }
    if spec.method != "GET":
        # One key per call, the same on every retry, so a server that saw the first attempt
        # answers the retry from its record instead of creating or generating twice.
        headers["Idempotency-Key"] = str(uuid.uuid4())
    args: dict[str, Any] = {
        "method": spec.method,
        "url": config.base_url + spec.path,
        "headers": headers,
        "timeout": timeout if timeout is not None else _default_timeout(config, spec),
    }
    if spec.body is not None:
        args["json"] = dict(spec.body)
    return args
