"""OperatorConfig: documented defaults, a YAML file, then PAITIENT_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from paitient_operator.config import OperatorConfig, load_config


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
    with pytest.raises(ValidationError, match="vllmImg"):
        load_config({"PAITIENT_OPERATOR_CONFIG": str(path)})


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- a\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config({"PAITIENT_OPERATOR_CONFIG": str(path)})
