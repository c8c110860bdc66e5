"""The package root exports exactly the public surface."""

from __future__ import annotations

import inspect

import paitient_secure_model as psm

PUBLIC = {
    "__version__",
    "DEFAULT_BASE_URL",
    # clients and streams
    "SecureModelClient",
    "AsyncSecureModelClient",
    "GenerationStream",
    "AsyncGenerationStream",
    "ChatStream",
    "AsyncChatStream",
    # results
    "ChatChunk",
    "ChatMessage",
    "ChatResult",
    "Condition",
    "DeletedDeployment",
    "Deployment",
    "DeploymentState",
    "DeploymentStatus",
    "GenerationChunk",
    "GenerationResult",
    "Subscription",
    "Usage",
    # errors
    "PaitientError",
    "ConfigurationError",
    "WaitTimeoutError",
    "AuthenticationError",
    "PermissionDeniedError",
    "ValidationError",
    "ResourceError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "ServiceError",
    "APIConnectionError",
    "APITimeoutError",
}

METHODS = {
    "close",
    "deploy_model",
    "list_deployments",
    "get_deployment",
    "get_deployment_status",
    "update_deployment",
    "delete_deployment",
    "wait_until_ready",
    "generate",
    "generate_stream",
    "chat",
    "chat_stream",
    "get_subscription",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(psm.__all__) == PUBLIC
    assert len(psm.__all__) == len(PUBLIC)
    for name in psm.__all__:
        assert hasattr(psm, name), name
    public_attrs = {n for n in vars(psm) if not n.startswith("_")} - {"annotations"}
    assert public_attrs == PUBLIC - {"__version__"}


def test_classes_present_themselves_at_the_root() -> None:
    assert psm.SecureModelClient.__module__ == "paitient_secure_model"
    assert repr(psm.NotFoundError) == "<class 'paitient_secure_model.NotFoundError'>"


def _public_methods(cls: type) -> set[str]:
    return {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}


def test_sync_and_async_clients_have_the_same_surface() -> None:
    sync, asyn = psm.SecureModelClient, psm.AsyncSecureModelClient
    assert _public_methods(sync) == _public_methods(asyn) == METHODS
    for name in METHODS:
        sync_sig = inspect.signature(getattr(sync, name))
        async_sig = inspect.signature(getattr(asyn, name))
        assert list(sync_sig.parameters) == list(async_sig.parameters), name
        for param in sync_sig.parameters.values():
            assert async_sig.parameters[param.name].default == param.default, (name, param)
        assert inspect.iscoroutinefunction(getattr(asyn, name)), name
    assert list(inspect.signature(sync).parameters) == [
        "api_key",
        "client_id",
        "base_url",
        "timeout",
        "max_retries",
        "http_client",
    ]


def test_seed_signatures() -> None:
    deploy = inspect.signature(psm.SecureModelClient.deploy_model).parameters
    assert list(deploy)[1:6] == [
        "model_name",
        "deployment_name",
        "use_gpu",
        "gpu_count",
        "replicas",
    ]
    assert deploy["use_gpu"].default is True
    generate = inspect.signature(psm.SecureModelClient.generate).parameters
    assert [(n, p.default) for n, p in generate.items()][3:] == [
        ("max_tokens", 256),
        ("temperature", 1.0),
        ("stream", False),
        ("timeout", None),
    ]


def test_chat_signature() -> None:
    chat = inspect.signature(psm.SecureModelClient.chat).parameters
    assert [(n, p.default) for n, p in chat.items()][1:7] == [
        ("deployment_id", inspect.Parameter.empty),
        ("messages", inspect.Parameter.empty),
        ("max_tokens", None),
        ("temperature", None),
        ("stream", False),
        ("timeout", None),
    ]
