"""OperatorConfig: documented defaults, a YAML file, then PAITIENT_* environment overrides; the
operator's command line (OperatorCommand)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from paitient_common.settings import SettingsError, load, load_or_exit
from paitient_operator.config import OperatorCommand, OperatorConfig, load_config


def test_defaults() -> None:
    config = load_config({})
    assert config.vllm_image == "vllm/vllm-openai:v0.32.0"
    assert config.vllm_cpu_image == "ghcr.io/paitient/vllm-cpu:v0.32.0"
    assert config.gateway.port == 8443
    assert config.front_door_namespace == "paitient-system"
    assert config.encrypted_storage_classes == []
    assert config.default_storage_class is None
    for field in OperatorConfig.model_fields.values():
        assert field.description, "every setting is documented"


def test_file_then_env(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "vllmImage: registry.local/vllm:pinned\n"
        "encryptedStorageClasses: [a]\n"
        "gateway: {image: registry.local/gw:1, port: 9443, env: {LOG_LEVEL: debug}}\n"
    )
    env = {
        "PAITIENT_OPERATOR_CONFIG": str(path),
        "PAITIENT_ENCRYPTED_STORAGE_CLASSES": "enc-1, enc-2",
        "PAITIENT_GATEWAY_PORT": "10443",
        "PAITIENT_DEFAULT_STORAGE_CLASS": "enc-1",
        "PAITIENT_GATEWAY_ENV": '{"A": "1"}',
        "PAITIENT_VLLM_COMMAND": '["vllm", "serve"]',
    }
    config = load_config(env)
    assert config.vllm_image == "registry.local/vllm:pinned"  # from the file
    assert config.gateway.image == "registry.local/gw:1"  # file, nested, kept under env merge
    assert config.encrypted_storage_classes == ["enc-1", "enc-2"]  # env wins
    assert config.gateway.port == 10443
    assert config.gateway.env == {"A": "1"}
    assert config.default_storage_class == "enc-1"
    assert config.vllm_command == ["vllm", "serve"]


def test_misspelt_keys_stop_the_operator(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("vllmImg: x\n")
    with pytest.raises(SettingsError) as error:
        load_config({"PAITIENT_OPERATOR_CONFIG": str(path)})
    assert str(error.value) == f"vllmImg: not a setting in {path}; did you mean vllmImage?"


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- a\n")
    with pytest.raises(SettingsError, match="must be a YAML mapping of settings, not a list"):
        load_config({"PAITIENT_OPERATOR_CONFIG": str(path)})
    with pytest.raises(SettingsError, match="No such file"):
        load_config({"PAITIENT_OPERATOR_CONFIG": str(tmp_path / "missing.yaml")})


def test_tls_settings_from_env_and_their_rules() -> None:
    config = load_config(
        {
            "PAITIENT_TLS_CERTIFICATE_LIFETIME": "90s",
            "PAITIENT_TLS_RENEW_BEFORE": "60s",
            "PAITIENT_TLS_RENEWAL_CHECK_SECONDS": "1",
        }
    )
    assert config.tls.issuer == "operator"
    assert config.tls.certificate_lifetime == timedelta(seconds=90)
    assert config.tls.renew_before == timedelta(seconds=60)
    assert config.tls.renewal_check_seconds == 1.0
    assert config.ca_namespace == "paitient-system-ca"  # never the system namespace itself
    assert load_config({"PAITIENT_TLS_CA_NAMESPACE": "vault"}).ca_namespace == "vault"
    with pytest.raises(SettingsError, match=r"^tls: tls\.renewBefore must be shorter"):
        load_config({"PAITIENT_TLS_RENEW_BEFORE": "30d"})
    with pytest.raises(SettingsError, match="PAITIENT_TLS_CERTIFICATE_LIFETIME: invalid duration"):
        load_config({"PAITIENT_TLS_CERTIFICATE_LIFETIME": "a month"})
    with pytest.raises(SettingsError, match="issuerName is required"):
        load_config({"PAITIENT_TLS_ISSUER": "cert-manager"})
    with pytest.raises(SettingsError, match="caBundle"):
        load_config(
            {"PAITIENT_TLS_ISSUER": "cert-manager", "PAITIENT_TLS_CERT_MANAGER_ISSUER_NAME": "ca"}
        )


def test_cert_manager_settings_merge_from_file_and_env(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "tls:\n  issuer: cert-manager\n  certManager:\n    issuerName: from-file\n"
        "    caBundle: '-----BEGIN CERTIFICATE-----'\n"
    )
    config = load_config(
        {"PAITIENT_OPERATOR_CONFIG": str(path), "PAITIENT_TLS_CERT_MANAGER_ISSUER_KIND": "Issuer"}
    )
    assert config.tls.cert_manager.issuer_name == "from-file"  # kept under the env merge
    assert config.tls.cert_manager.issuer_kind == "Issuer"


def test_a_bad_value_in_the_file_is_named_by_its_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("gateway:\n  port: 70000\n")
    with pytest.raises(SettingsError) as error:
        load_config({}, str(path))
    assert str(error.value) == (
        f"gateway.port: 70000 from file key gateway.port in {path}: Input should be less than "
        "or equal to 65535 (set by environment variable PAITIENT_GATEWAY_PORT or file key "
        "gateway.port)"
    )


def test_an_environment_map_replaces_the_files_map_whole(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    tier = {"tokenLimit": 1, "requestsPerMinute": 1, "tokensPerMinute": 1, "maxDeployments": 1}
    tier |= {"maxGpus": 0, "gpusAllowed": False}
    path.write_text(f"tiers: {{gold: {json.dumps(tier)}}}\n")
    silver = json.dumps({"silver": {**tier, "requestsPerMinute": 2}})
    config = load_config({"PAITIENT_TIERS": silver}, str(path))
    assert set(config.tiers) == {"silver"}  # not gold and silver: one variable, one whole value
    assert config.tiers["silver"].requests_per_minute == 2


def test_an_empty_variable_counts_as_unset() -> None:
    assert load_config({"PAITIENT_VLLM_COMMAND": "", "PAITIENT_GATEWAY_PORT": " "}) == load_config(
        {}
    )


def test_the_command_line_flags_then_environment() -> None:
    env = {"KUBECONFIG": "/env/kubeconfig", "PAITIENT_OPERATOR_CONFIG": "/env/operator.yaml"}
    command = load_or_exit(OperatorCommand, ["--config", "/flag/operator.yaml"], prog="t", env=env)
    assert command.config_file == "/flag/operator.yaml"  # the flag wins
    assert command.kubeconfig == "/env/kubeconfig"
    assert (command.liveness, command.metrics_address, command.verbose) == (None, None, False)
    command = load_or_exit(
        OperatorCommand, ["--verbose", "--metrics-address", ":8081"], prog="t", env={}
    )
    assert command.verbose
    assert command.metrics_address == ":8081"
    with pytest.raises(SettingsError, match="metrics_address: 'nowhere' from flag --metrics-addr"):
        load(OperatorCommand, flags={"metrics_address": "nowhere"}, env={})
