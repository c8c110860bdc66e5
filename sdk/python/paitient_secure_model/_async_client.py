"""AsyncSecureModelClient: the /v1 API as asynchronous method calls."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import httpx

from . import _requests
from ._async_streaming import AsyncChatStream, AsyncGenerationStream
from ._base import BaseClient
from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    CABundle,
    TimeoutTypes,
    tls_verification,
)
from ._error_mapping import connection_error, json_body, status_error
from ._exceptions import ConfigurationError
from ._ready import ProgressCallback, ReadinessWait, async_report_progress
from ._requests import RequestSpec, httpx_request_args
from ._retry import AsyncSleep, delay_after_exception, delay_after_response
from ._types import (
    ChatResult,
    DeletedDeployment,
    Deployment,
    DeploymentStatus,
    GenerationResult,
    Subscription,
)

__all__ = ["AsyncSecureModelClient"]


def _new_http_client(timeout: TimeoutTypes, verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
    """The httpx client used when the caller brings none (a seam the tests replace)."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=verify)


class AsyncSecureModelClient(BaseClient):
    """Asynchronous client for the PaiTIENT Secure Model Service.

    Credentials come from the arguments or from ``PAITIENT_API_KEY``, ``PAITIENT_CLIENT_ID``
    and ``PAITIENT_BASE_URL``. The server's certificate is always verified: against the
    system's trust store, or only against ``ca_bundle`` (a PEM file or PEM text; default
    ``PAITIENT_CA_BUNDLE``) for a service whose certificate your own CA signed. Use it as a
    context manager (``async with``), or call ``await client.close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        client_id: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        *,
        ca_bundle: CABundle | None = None,
    ) -> None:
        if ca_bundle is not None and http_client is not None:
            raise ConfigurationError(
                "Pass ca_bundle or http_client, not both: set verify= on your own client."
            )
        super().__init__(api_key, client_id, base_url, timeout, max_retries, ca_bundle)
        # A client the caller passed in is theirs to close (and verifies as it was told to).
        self._owns_http_client = http_client is None
        self._http = (
            http_client
            if http_client is not None
            else _new_http_client(timeout, tls_verification(self._config.ca_bundle))
        )
        self._sleep: AsyncSleep = asyncio.sleep

    # -- lifecycle

    async def close(self) -> None:
        """Close the underlying connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSecureModelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- deployments

    async def deploy_model(
        self,
        model_name: str,
        deployment_name: str | None = None,
        use_gpu: bool = True,
        gpu_count: int | None = None,
        replicas: int | None = None,
        *,
        timeout: TimeoutTypes | None = None,
        **extra: Any,
    ) -> Deployment:
        """Deploy ``model_name``; returns at once with the deployment ``pending``.

        ``extra`` fields (``max_model_len``, ``gpu_product``) go into the request body.
        """
        spec = _requests.deploy_model_request(
            model_name, deployment_name, use_gpu, gpu_count, replicas, extra
        )
        return Deployment.from_json(await self._request(spec, timeout))

    async def list_deployments(self, *, timeout: TimeoutTypes | None = None) -> list[Deployment]:
        """Every deployment of this client."""
        data = await self._request(_requests.list_deployments_request(), timeout)
        return [Deployment.from_json(item) for item in _requests.deployments_from_list(data)]

    async def get_deployment(
        self, deployment_id: str, *, timeout: TimeoutTypes | None = None
    ) -> Deployment:
        """One deployment by id (its name)."""
        return Deployment.from_json(
            await self._request(_requests.get_deployment_request(deployment_id), timeout)
        )

    async def get_deployment_status(
        self, deployment_id: str, *, timeout: TimeoutTypes | None = None
    ) -> DeploymentStatus:
        """Status, replica counts and conditions of one deployment."""
        return DeploymentStatus.from_json(
            await self._request(_requests.get_deployment_status_request(deployment_id), timeout)
        )

    async def update_deployment(
        self,
        deployment_id: str,
        *,
        replicas: int | None = None,
        max_model_len: int | None = None,
        timeout: TimeoutTypes | None = None,
        **extra: Any,
    ) -> Deployment:
        """Change a deployment's ``replicas`` and/or ``max_model_len``."""
        spec = _requests.update_deployment_request(deployment_id, replicas, max_model_len, extra)
        return Deployment.from_json(await self._request(spec, timeout))

    async def delete_deployment(
        self, deployment_id: str, *, timeout: TimeoutTypes | None = None
    ) -> DeletedDeployment:
        """Delete a deployment; the teardown continues in the background."""
        return DeletedDeployment.from_json(
            await self._request(_requests.delete_deployment_request(deployment_id), timeout)
        )

    async def wait_until_ready(
        self,
        deployment_id: str,
        timeout: float = 600,
        poll_interval: float = 2,
        on_progress: ProgressCallback | None = None,
    ) -> DeploymentStatus:
        """Poll the status until it is ``ready`` and return it.

        Raises ResourceError (with the deployment's message) when it is ``failed``, and
        WaitTimeoutError when ``timeout`` seconds pass first. ``on_progress`` gets every status
        (and is awaited when it returns an awaitable).
        """
        wait = ReadinessWait(deployment_id, timeout, poll_interval, self._clock)
        while True:
            status = await self.get_deployment_status(deployment_id)
            await async_report_progress(on_progress, status)
            delay = wait.next_delay(status)
            if delay is None:
                return status
            await self._sleep(delay)

    # -- generation

    @overload
    async def generate(
        self,
        deployment_id: str,
        prompt: str,
        max_tokens: int = ...,
        temperature: float = ...,
        stream: Literal[False] = ...,
        timeout: TimeoutTypes | None = ...,
    ) -> GenerationResult: ...

    @overload
    async def generate(
        self,
        deployment_id: str,
        prompt: str,
        max_tokens: int = ...,
        temperature: float = ...,
        *,
        stream: Literal[True],
        timeout: TimeoutTypes | None = ...,
    ) -> AsyncGenerationStream: ...

    @overload
    async def generate(
        self,
        deployment_id: str,
        prompt: str,
        max_tokens: int = ...,
        temperature: float = ...,
        stream: bool = ...,
        timeout: TimeoutTypes | None = ...,
    ) -> GenerationResult | AsyncGenerationStream: ...

    async def generate(
        self,
        deployment_id: str,
        prompt: str,
        max_tokens: int = 256,
        temperature: float = 1.0,
        stream: bool = False,
        timeout: TimeoutTypes | None = None,
    ) -> GenerationResult | AsyncGenerationStream:
        """Generate text from ``prompt`` with a ready deployment.

        With ``stream=True`` returns a stream of chunks (AsyncGenerationStream) instead of the
        whole result.
        """
        if stream:
            return await self.generate_stream(
                deployment_id, prompt, max_tokens, temperature, timeout
            )
        spec = _requests.generate_request(deployment_id, prompt, max_tokens, temperature, False)
        return GenerationResult.from_json(await self._request(spec, timeout))

    async def generate_stream(
        self,
        deployment_id: str,
        prompt: str,
        max_tokens: int = 256,
        temperature: float = 1.0,
        timeout: TimeoutTypes | None = None,
    ) -> AsyncGenerationStream:
        """Generate text chunk by chunk; the last chunk carries ``finish_reason`` and ``usage``."""
        spec = _requests.generate_request(deployment_id, prompt, max_tokens, temperature, True)
        return AsyncGenerationStream(await self._send(spec, timeout), self._config.redact)

    # -- chat

    @overload
    async def chat(
        self,
        deployment_id: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int | None = ...,
        temperature: float | None = ...,
        stream: Literal[False] = ...,
        timeout: TimeoutTypes | None = ...,
        **extra: Any,
    ) -> ChatResult: ...

    @overload
    async def chat(
        self,
        deployment_id: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int | None = ...,
        temperature: float | None = ...,
        *,
        stream: Literal[True],
        timeout: TimeoutTypes | None = ...,
        **extra: Any,
    ) -> AsyncChatStream: ...

    @overload
    async def chat(
        self,
        deployment_id: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int | None = ...,
        temperature: float | None = ...,
        stream: bool = ...,
        timeout: TimeoutTypes | None = ...,
        **extra: Any,
    ) -> ChatResult | AsyncChatStream: ...

    async def chat(
        self,
        deployment_id: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int | None = None,
        temperature: float | None = None,
        stream: bool = False,
        timeout: TimeoutTypes | None = None,
        **extra: Any,
    ) -> ChatResult | AsyncChatStream:
        """Answer a conversation with a ready deployment; the model's chat template applies.

        ``messages`` are ``{"role": ..., "content": ...}`` mappings. ``max_tokens`` and
        ``temperature`` left at None take the server's defaults; ``extra`` keyword arguments
        (``top_p``, ``stop``, ``seed``...) go into the request body. With ``stream=True``
        returns a stream of chunks (AsyncChatStream) instead of the whole result.
        """
        if stream:
            return await self.chat_stream(
                deployment_id, messages, max_tokens, temperature, timeout, **extra
            )
        spec = _requests.chat_request(
            deployment_id, messages, max_tokens, temperature, False, extra
        )
        return ChatResult.from_json(await self._request(spec, timeout), deployment_id)

    async def chat_stream(
        self,
        deployment_id: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: TimeoutTypes | None = None,
        **extra: Any,
    ) -> AsyncChatStream:
        """Chat chunk by chunk; the last chunk carries ``finish_reason`` and ``usage``."""
        spec = _requests.chat_request(deployment_id, messages, max_tokens, temperature, True, extra)
        return AsyncChatStream(await self._send(spec, timeout), self._config.redact)

    # -- subscription

    async def get_subscription(self, *, timeout: TimeoutTypes | None = None) -> Subscription:
        """The plan, usage and limit of the current billing period."""
        return Subscription.from_json(
            await self._request(_requests.subscription_request(), timeout)
        )

    # -- transport

    async def _request(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> Any:
        return json_body(await self._send(spec, timeout))

    async def _send(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> httpx.Response:
        """Send with the shared retry policy; return a 2xx response or raise its error.

        A streaming response is returned unread, so it is only retried before its body starts.
        """
        args = httpx_request_args(self._config, spec, timeout)
        attempt = 0
        while True:
            request = self._http.build_request(**args)
            try:
                response = await self._http.send(request, stream=spec.stream)
                if not response.is_success:
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
            except httpx.TransportError as exc:
                delay = delay_after_exception(exc, attempt, self.max_retries, self._random)
                if delay is None:
                    raise connection_error(exc, self._config.redact) from exc
            else:
                if response.is_success:
                    return response
                delay = delay_after_response(response, attempt, self.max_retries, self._random)
                if delay is None:
                    raise status_error(response, self._config.redact)
            await self._sleep(delay)
            attempt += 1
