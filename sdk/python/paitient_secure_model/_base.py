"""The state both clients share: the resolved settings and the seams the tests replace."""

from __future__ import annotations

import random
import time
from typing import Callable

from ._config import CABundle, ClientConfig, TimeoutTypes


class BaseClient:
    """Settings and read-only properties of SecureModelClient and AsyncSecureModelClient."""

    _config: ClientConfig

    def __init__(
        self,
        api_key: str | None,
        client_id: str | None,
        base_url: str | None,
        timeout: TimeoutTypes,
        max_retries: int,
        ca_bundle: CABundle | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(
            api_key, client_id, base_url, timeout, max_retries, ca_bundle
        )
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
