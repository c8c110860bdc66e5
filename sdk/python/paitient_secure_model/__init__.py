"""Python SDK for the PaiTIENT Secure Model Service: deploy open models, generate text, chat,
and check the subscription, through the /v1 REST API.

    from paitient_secure_model import SecureModelClient

    client = SecureModelClient(api_key="...", client_id="...")
    print(client.generate(deployment_id="my-model", prompt="Hello").text)
    print(client.chat(deployment_id="my-model", messages=[{"role": "user", "content": "Hi"}]).text)
"""

from ._async_client import AsyncSecureModelClient
from ._async_streaming import AsyncChatStream, AsyncGenerationStream
from ._client import SecureModelClient
from ._config import DEFAULT_BASE_URL
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
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
from ._streaming import ChatStream, GenerationStream
from ._types import (
    ChatChunk,
    ChatMessage,
    ChatResult,
    Condition,
    DeletedDeployment,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    GenerationChunk,
    GenerationResult,
    Subscription,
    Usage,
)
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APITimeoutError",
    "AsyncChatStream",
    "AsyncGenerationStream",
    "AsyncSecureModelClient",
    "AuthenticationError",
    "ChatChunk",
    "ChatMessage",
    "ChatResult",
    "ChatStream",
    "Condition",
    "ConfigurationError",
    "ConflictError",
    "DeletedDeployment",
    "Deployment",
    "DeploymentState",
    "DeploymentStatus",
    "GenerationChunk",
    "GenerationResult",
    "GenerationStream",
    "NotFoundError",
    "PaitientError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResourceError",
    "SecureModelClient",
    "ServiceError",
    "Subscription",
    "Usage",
    "ValidationError",
    "WaitTimeoutError",
    "__version__",
]

# Present every public class as living at the package root, as httpx does.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
