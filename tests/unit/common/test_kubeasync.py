"""The asyncio transport's credentials, taken from the sync client's configuration: TLS settings
and the Authorization header (refreshed by the configuration's own hook, as in-cluster tokens
rotate). The transport itself runs against the real API server in the integration tests."""

from __future__ import annotations

import ssl

from kubernetes import client

from paitient_common.kubeasync import authorization, ssl_context


def test_tls_verifies_by_default_and_only_a_kubeconfig_can_turn_it_off() -> None:
    configuration = client.Configuration()
    context = ssl_context(configuration)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    configuration.verify_ssl = False  # insecure-skip-tls-verify: true
    assert ssl_context(configuration) is False


def test_the_header_comes_from_either_key_and_is_refreshed_first() -> None:
    kubeconfig_style = client.Configuration()
    kubeconfig_style.api_key = {"authorization": "Bearer from-kubeconfig"}
    assert authorization(kubeconfig_style) == "Bearer from-kubeconfig"

    in_cluster_style = client.Configuration()
    in_cluster_style.api_key = {"BearerToken": "bearer first"}
    rotated = iter(["bearer second", "bearer third"])

    def refresh(configuration: client.Configuration) -> None:
        configuration.api_key["BearerToken"] = next(rotated)

    in_cluster_style.refresh_api_key_hook = refresh
    assert authorization(in_cluster_style) == "bearer second"
    assert authorization(in_cluster_style) == "bearer third"


def test_no_credentials_no_header() -> None:
    assert authorization(client.Configuration()) is None
