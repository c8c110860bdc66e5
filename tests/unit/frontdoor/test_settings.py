"""The front door's settings: PAITIENT_API_* variables, KUBECONFIG, flags over both."""

from __future__ import annotations

from pathlib import Path

import pytest

from paitient_api.routing import IN_CLUSTER
from paitient_api.settings import FrontDoorSettings
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP
from paitient_common.settings import SettingsError, load, load_or_exit


def test_defaults_then_environment_then_flags() -> None:
    defaults = load(FrontDoorSettings, env={})
    assert (defaults.host, defaults.port, defaults.kubeconfig) == ("0.0.0.0", 8080, None)
    assert (defaults.gateway_url, defaults.gateway_ca_configmap) == (
        IN_CLUSTER,
        CA_BUNDLE_CONFIGMAP,
    )
    assert defaults.system_namespace == "paitient-system"
    env = {
        "PAITIENT_API_HOST": "127.0.0.1",
        "PAITIENT_API_PORT": "18086",
        "KUBECONFIG": "/env/kubeconfig",
        "PAITIENT_SYSTEM_NAMESPACE": "keys",
        "PAITIENT_API_GATEWAY_URL": "http://127.0.0.1:9/{name}",
        "PAITIENT_API_GATEWAY_CA_CONFIGMAP": "cas",
        "PAITIENT_API_TLS_CERT_FILE": "/tls/tls.crt",
        "PAITIENT_API_TLS_KEY_FILE": "/tls/tls.key",
        "PAITIENT_WATCH_TIMEOUT_SECONDS": "3",
    }
    settings = load(FrontDoorSettings, env=env)
    assert (settings.host, settings.port, settings.kubeconfig) == (
        "127.0.0.1",
        18086,
        "/env/kubeconfig",
    )
    assert (settings.system_namespace, settings.gateway_ca_configmap) == ("keys", "cas")
    assert settings.gateway_url == "http://127.0.0.1:9/{name}"
    assert settings.tls_cert_file == Path("/tls/tls.crt")
    assert settings.watch.timeout_min == settings.watch.timeout_max == 3
    argv = ["--port", "9000", "--kubeconfig", "/flag/kubeconfig", "--system-namespace", "ns"]
    flagged = load_or_exit(FrontDoorSettings, argv, prog="paitient-api", env=env)
    assert (flagged.port, flagged.kubeconfig, flagged.system_namespace) == (
        9000,
        "/flag/kubeconfig",
        "ns",
    )
    assert flagged.host == "127.0.0.1"  # no flag given: the environment's


def test_a_certificate_needs_its_key_and_a_bad_port_is_named() -> None:
    with pytest.raises(SettingsError, match="--tls-cert-file and --tls-key-file go together"):
        load(FrontDoorSettings, flags={"tls_cert_file": "/tls/tls.crt"}, env={})
    with pytest.raises(SettingsError) as error:
        load(FrontDoorSettings, env={"PAITIENT_API_PORT": "tcp://10.0.0.1:8080"})
    assert str(error.value) == (
        "port: 'tcp://10.0.0.1:8080' from environment variable PAITIENT_API_PORT: Input should "
        "be a valid integer, unable to parse string as an integer (set by flag --port or "
        "environment variable PAITIENT_API_PORT)"
    )
