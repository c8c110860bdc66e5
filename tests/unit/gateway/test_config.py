"""The gateway's settings: what the operator renders into the sidecar's environment reads back as
the values it meant; flags win over the environment; the transport rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paitient_common.settings import SettingsError, leaves, load, load_or_exit
from paitient_gateway.config import GatewayConfig
from paitient_operator.builders.deployment import TLS_CERT_FILE, TLS_KEY_FILE, gateway_env
from paitient_operator.config import OperatorConfig
from tests.unit.operator.factories import make_md

PASSWORD = "a-store-password-only-its-secret-holds"


def _pod_env(md_env: list[dict[str, Any]], pod_name: str, secret: str) -> dict[str, str]:
    """The container's environment as the kubelet sets it: fieldRef metadata.name is the pod's
    name, a secretKeyRef the Secret's value."""
    env = {str(e["name"]): str(e["value"]) for e in md_env if "value" in e}
    for e in md_env:
        source = e.get("valueFrom", {})
        if "fieldRef" in source:
            env[e["name"]] = pod_name
        elif "secretKeyRef" in source:
            env[e["name"]] = secret
    return env


def test_the_operators_rendered_environment_reads_back_as_meant() -> None:
    md = make_md("chat").namespace("tenant-acme").rate_limits(rpm=60, tpm=9000).max_model_len(4096)
    operator = OperatorConfig.model_validate(
        {
            "vllmPort": 8001,
            "systemNamespace": "keys",
            "gateway": {"port": 9443, "metricsPort": 9090},
            "store": {"url": "redis://store.keys.svc:6379/1", "password": PASSWORD},
        }
    )
    env = _pod_env(gateway_env(md.obj(), operator), "chat-7d9f-abcde", PASSWORD)
    config = load(GatewayConfig, env=env)
    assert config.port == 9443
    assert config.metrics_port == 9090
    assert config.upstream_url == "http://127.0.0.1:8001"
    assert (config.namespace, config.deployment) == ("tenant-acme", "chat")
    assert config.served_model_name == md.obj().served_model_name
    assert config.pod_name == "chat-7d9f-abcde"
    assert config.system_namespace == "keys"
    assert (config.tls_cert_file, config.tls_key_file) == (Path(TLS_CERT_FILE), Path(TLS_KEY_FILE))
    assert config.deployment_requests_per_minute == 60
    assert config.deployment_tokens_per_minute == 9000
    assert config.max_model_len == 4096
    assert config.insecure_plaintext is False
    assert config.store is not None
    assert config.store.describe() == "redis://store.keys.svc:6379/1"
    assert config.store.password == PASSWORD
    # Whatever the operator renders is a setting the gateway knows: nothing it sets is ignored.
    assert set(env) <= {leaf.env for leaf in leaves(GatewayConfig)}


def test_flags_win_over_the_environment_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    env = {"PAITIENT_GATEWAY_PORT": "9443", "PAITIENT_GATEWAY_HOST": "10.0.0.1"}
    keys = tmp_path / "keys.json"
    argv = ["--port", "18443", "--keys-file", str(keys), "--insecure-plaintext"]
    config = load_or_exit(GatewayConfig, argv, prog="paitient-gateway", env=env)
    assert config.port == 18443
    assert config.host == "10.0.0.1"
    assert config.keys_file == keys
    assert config.kubeconfig is None  # a flag only: $KUBECONFIG of a test run is not read
    assert config.body_limit == 1024 * 1024
    assert config.watch.timeout_min == 15


def test_the_transport_rule_and_bad_values_name_their_variable() -> None:
    with pytest.raises(SettingsError, match=r"^settings: no serving certificate: set PAITIENT_TLS"):
        load(GatewayConfig, env={})
    with pytest.raises(SettingsError, match="PAITIENT_TLS_CERT_FILE and PAITIENT_TLS_KEY_FILE go"):
        load(GatewayConfig, env={"PAITIENT_TLS_CERT_FILE": "/tls/tls.crt"})
    plain = {"insecure_plaintext": True}
    with pytest.raises(SettingsError) as error:
        load(GatewayConfig, flags=plain, env={"PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE": "-1"})
    assert str(error.value) == (
        "deployment_tokens_per_minute: '-1' from environment variable "
        "PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE: Input should be greater than or equal to 0 (set "
        "by environment variable PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE)"
    )
    with pytest.raises(SettingsError, match="read_timeout: 'soon' from environment variable"):
        load(GatewayConfig, flags=plain, env={"PAITIENT_UPSTREAM_READ_TIMEOUT": "soon"})


def test_a_store_that_cannot_work_is_refused_at_load_without_its_password() -> None:
    plain = {"insecure_plaintext": True}
    assert load(GatewayConfig, flags=plain, env={}).store is None
    env = {"PAITIENT_STORE_URL": f"redis://:{PASSWORD}@store/0", "PAITIENT_STORE_PASSWORD": "x"}
    with pytest.raises(SettingsError, match="PAITIENT_STORE_URL carries a password") as error:
        load(GatewayConfig, flags=plain, env=env)
    assert PASSWORD not in str(error.value)
    env = {"PAITIENT_STORE_URL": "redis://store/0", "PAITIENT_STORE_TIMEOUT_SECONDS": "soon"}
    with pytest.raises(SettingsError, match="store_timeout_seconds: 'soon' from environment"):
        load(GatewayConfig, flags=plain, env=env)
    # Built in code (as tests do), nothing is checked against the machine.
    assert GatewayConfig(insecure_plaintext=True, store_url="rediss://s/0", store_ca_file="/no")
