"""Credentials and settings from arguments or the environment, and keeping the key secret."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx
import pytest

from paitient_secure_model import (
    DEFAULT_BASE_URL,
    AsyncSecureModelClient,
    ConfigurationError,
    SecureModelClient,
)
from paitient_secure_model._config import tls_verification

from .conftest import make_client
from .fakeserver import FakeServer, service_error

# A self-signed CA certificate, valid until 2126 (public material: trusting needs no key).
A_CA = Path(__file__).parent / "fixtures" / "test-ca.pem"


def test_defaults() -> None:
    client = SecureModelClient(api_key="k", client_id="c")
    assert client.base_url == DEFAULT_BASE_URL == "https://api.paitient.ai/v1"
    assert client.timeout == 60.0
    assert client.max_retries == 2


def test_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    monkeypatch.setenv("PAITIENT_API_KEY", "your-api-key")
    monkeypatch.setenv("PAITIENT_CLIENT_ID", "your-client-id")
    monkeypatch.setenv("PAITIENT_BASE_URL", "http://paitient.test/v1/")
    client = SecureModelClient(http_client=httpx.Client(transport=server.transport()))
    assert client.base_url == "http://paitient.test/v1"
    assert client.get_subscription().tier == "standard"
    assert str(server.requests[-1].url) == "http://paitient.test/v1/subscription"


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAITIENT_CLIENT_ID", "from-env")
    monkeypatch.setenv("PAITIENT_BASE_URL", "http://env.test/v1")
    client = SecureModelClient(api_key="k", client_id="from-arg", base_url="http://arg.test/v1")
    assert (client.client_id, client.base_url) == ("from-arg", "http://arg.test/v1")


@pytest.mark.parametrize(
    ("kwargs", "env_var"),
    [({"client_id": "c"}, "PAITIENT_API_KEY"), ({"api_key": "k"}, "PAITIENT_CLIENT_ID")],
)
@pytest.mark.parametrize("cls", [SecureModelClient, AsyncSecureModelClient])
def test_missing_credentials_name_the_env_var(
    cls: type[SecureModelClient], kwargs: dict[str, str], env_var: str
) -> None:
    with pytest.raises(ConfigurationError, match=env_var):
        cls(**kwargs)


def test_empty_env_var_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAITIENT_API_KEY", "")
    with pytest.raises(ConfigurationError, match="PAITIENT_API_KEY"):
        SecureModelClient(client_id="c")


@pytest.mark.parametrize("url", ["api.paitient.ai/v1", "ftp://x/v1", "http://"])
def test_invalid_base_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="base URL"):
        SecureModelClient(api_key="k", client_id="c", base_url=url)


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"timeout": "60"}])
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SecureModelClient(api_key="k", client_id="c", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [SecureModelClient, AsyncSecureModelClient])
def test_repr_hides_the_api_key(cls: type[SecureModelClient]) -> None:
    client = cls(api_key="sk-very-secret", client_id="clinic-7")
    assert "sk-very-secret" not in repr(client)
    assert "sk-very-secret" not in repr(client._config)
    assert "sk-very-secret" not in str(vars(client).get("_config"))
    assert repr(client) == (
        f"{cls.__name__}(base_url='https://api.paitient.ai/v1', client_id='clinic-7', "
        "max_retries=2)"
    )


def test_retry_logs_never_carry_the_key(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        first = service_error("deployment_not_ready")
        return first if len(calls) == 1 else server.handle(request)

    with caplog.at_level(logging.DEBUG, logger="paitient_secure_model"):
        make_client(handler).get_subscription()
    assert "Retrying GET /v1/subscription after HTTP 503" in caplog.text
    assert "your-api-key" not in caplog.text


def test_servers_are_verified_by_default_against_the_system_store() -> None:
    client = SecureModelClient(api_key="k", client_id="c")
    assert client._config.ca_bundle is None
    assert tls_verification(None) is True  # httpx's default: verify, with the system's CAs


def test_a_ca_bundle_replaces_the_system_store_and_keeps_host_name_checks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pem = A_CA.read_text()
    bundle = tmp_path / "ca.pem"
    bundle.write_text(pem)
    for given in (str(bundle), bundle, pem):
        context = tls_verification(given)
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert len(context.get_ca_certs()) == 1
    monkeypatch.setenv("PAITIENT_CA_BUNDLE", str(bundle))
    assert SecureModelClient(api_key="k", client_id="c")._config.ca_bundle == str(bundle)
    assert AsyncSecureModelClient(api_key="k", client_id="c")._config.ca_bundle == str(bundle)


def test_an_unreadable_ca_bundle_or_one_beside_an_http_client_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"Cannot use the CA bundle .*missing\.pem"):
        SecureModelClient(api_key="k", client_id="c", ca_bundle=str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="PAITIENT_CA_BUNDLE"):
        SecureModelClient(api_key="k", client_id="c", ca_bundle=junk)
    with pytest.raises(ConfigurationError, match="not both"):
        SecureModelClient(api_key="k", client_id="c", ca_bundle=junk, http_client=httpx.Client())
