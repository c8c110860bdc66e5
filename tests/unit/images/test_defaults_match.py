"""The references `make images` produces are the ones the chart and the operator default to,
and every image runs as the identity the pods are given: a drift in any of them fails here."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from paitient_images.recipes import (
    NONROOT_GID,
    NONROOT_UID,
    REPO_ROOT,
    gpu_vllm_image,
    project_version,
    recipes,
)
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.config import OperatorConfig
from tests.unit.operator.factories import make_md
from tests.unit.test_helm_chart import render

CHART = REPO_ROOT / "charts" / "paitient"


def _chart_yaml(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / name).read_text(encoding="utf-8"))
    return data


def test_chart_app_version_is_the_package_version() -> None:
    assert _chart_yaml("Chart.yaml")["appVersion"] == project_version()


@pytest.mark.parametrize(
    ("values_key", "image"),
    [
        ("operator", "paitient-operator"),
        ("frontDoor", "paitient-api"),
        ("gateway", "paitient-gateway"),
    ],
)
def test_chart_defaults_name_the_built_images(values_key: str, image: str) -> None:
    values = _chart_yaml("values.yaml")[values_key]["image"]
    assert values["repository"] == recipes()[image].repository
    assert values["tag"] == "", "the tag defaults to appVersion, which the images carry"


def test_the_charts_store_is_the_built_redis_image() -> None:
    values = _chart_yaml("values.yaml")["store"]["image"]
    assert f"{values['repository']}:{values['tag']}" == recipes()["redis"].reference


def test_rendered_chart_runs_the_built_images_as_their_user() -> None:
    refs = {r.reference for r in recipes().values()}
    deployments = [o for o in render({}) if o["kind"] in ("Deployment", "StatefulSet")]
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == NONROOT_UID
        assert pod["securityContext"]["runAsGroup"] == NONROOT_GID
        for container in pod["containers"]:
            assert container["image"] in refs


def test_operator_defaults_name_the_built_images() -> None:
    config = OperatorConfig()
    images = recipes()
    assert config.gateway.image == images["paitient-gateway"].reference
    assert config.vllm_cpu_image == images["vllm-cpu"].reference
    assert config.vllm_image == gpu_vllm_image()
    # One vLLM version for both, so one set of rendered arguments fits both.
    assert config.vllm_image.rsplit(":", 1)[1] == images["vllm-cpu"].tag


def test_model_pods_run_as_the_images_user() -> None:
    config = OperatorConfig.model_validate({"encryptedStorageClasses": ["enc"]})
    for use_gpu in (True, False):
        factory = make_md("m").storage(storage_class="enc")
        md = (factory.gpus(1) if use_gpu else factory.cpu_only()).obj()
        pod = build_deployment(md, config)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == NONROOT_UID
        assert pod["securityContext"]["runAsGroup"] == NONROOT_GID
        images = {c["name"]: c["image"] for c in pod["containers"]}
        assert images["gateway"] == recipes()["paitient-gateway"].reference


def test_every_image_declares_a_numeric_non_root_user() -> None:
    for recipe in recipes().values():
        uid, _, gid = recipe.user.partition(":")
        assert uid.isdigit() and gid.isdigit() and int(uid) > 0, recipe.name
