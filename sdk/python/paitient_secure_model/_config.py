"""Client settings: defaults, the environment variables, and their resolution."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Union

import httpx

from ._exceptions import ConfigurationError
from ._version import __version__

DEFAULT_BASE_URL = "https://api.paitient.ai/v1"
DEFAULT_TIMEOUT = 60.0
# The wait for the first byte of a model's answer: the front door holds a request for up to
# 300 s while a deployment starts from zero replicas, then the model answers.
MODEL_READ_TIMEOUT = 420.0
DEFAULT_MAX_RETRIES = 2
ENV_API_KEY = "PAITIENT_API_KEY"
ENV_CLIENT_ID = "PAITIENT_CLIENT_ID"
ENV_BASE_URL = "PAITIENT_BASE_URL"
ENV_CA_BUNDLE = "PAITIENT_CA_BUNDLE"
USER_AGENT = f"paitient-secure-model-python/{__version__}"

# A Union because the alias is evaluated at runtime, on Python 3.9 too.
TimeoutTypes = Union[float, httpx.Timeout]
CABundle = Union[str, "os.PathLike[str]"]


def tls_verification(ca_bundle: CABundle | None) -> ssl.SSLContext | bool:
    """What httpx verifies the server with: the system's trust store (``True``), or an
    ``SSLContext`` trusting only ``ca_bundle`` (a PEM file's path, or PEM text) with host-name
    checks on. Raises ConfigurationError when the bundle cannot be read."""
    if ca_bundle is None:
        return True
    text = os.fspath(ca_bundle)
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            return ssl.create_default_context(cadata=text)
        return ssl.create_default_context(cafile=text)
    except (OSError, ssl.SSLError, ValueError) as exc:
        where = "the PEM text given" if "-----BEGIN" in text else repr(text)
        raise ConfigurationError(
            f"Cannot use the CA bundle {where} (from ca_bundle= or {ENV_CA_BUNDLE}): {exc}"
        ) from None


@dataclass(frozen=True)
class ClientConfig:
    """Resolved client settings; ``api_key`` is kept out of ``repr``."""

    api_key: str
    client_id: str
    base_url: str
    timeout: TimeoutTypes
    max_retries: int
    ca_bundle: CABundle | None = None

    def __repr__(self) -> str:
        return f"ClientConfig(client_id={self.client_id!r}, base_url={self.base_url!r})"

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        client_id: str | None,
        base_url: str | None,
        timeout: TimeoutTypes,
        max_retries: int,
        ca_bundle: CABundle | None = None,
    ) -> ClientConfig:
        """Merge arguments with the environment; raise ConfigurationError naming what is missing."""
        api_key = api_key or os.environ.get(ENV_API_KEY) or None
        if not api_key:
            raise ConfigurationError(
                f"No API key given: pass api_key=... or set the {ENV_API_KEY} environment variable."
            )
        client_id = client_id or os.environ.get(ENV_CLIENT_ID) or None
        if not client_id:
            raise ConfigurationError(
                "No client ID given: pass client_id=... or set the "
                f"{ENV_CLIENT_ID} environment variable."
            )
        base_url = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"Invalid base URL {base_url!r}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                f"Invalid base URL {base_url!r}: expected http(s)://host[/path] "
                f"(from base_url= or {ENV_BASE_URL})."
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float, httpx.Timeout)):
            raise ConfigurationError(f"timeout must be a number of seconds, not {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, not {max_retries!r}")
        ca_bundle = ca_bundle or os.environ.get(ENV_CA_BUNDLE) or None
        return cls(api_key, client_id, base_url, timeout, max_retries, ca_bundle)

    def redact(self, text: str) -> str:
        """Remove the API key from text that may end up in an exception or a log."""
        return text.replace(self.api_key, "[redacted]") if self.api_key in text else text
