"""The gateway's way to the shared store as the operator renders it: the URL in its
environment, the password by reference to a Secret of the ModelDeployment's own, the CA in a
file only the gateway mounts, and the NetworkPolicy's egress to the store alone."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from paitient_common.settings import SettingsError
from paitient_operator.builders import build_deployment, build_network_policy, build_store_secret
from paitient_operator.config import OperatorConfig, load_config
from tests.unit.operator.factories import make_md

PASSWORD = "store-password-that-must-stay-in-a-secret"


def _config(tmp_path: Path, url: str, ca: bool = False) -> OperatorConfig:
    env = {"PAITIENT_STORE_URL": url, "PAITIENT_STORE_PASSWORD": PASSWORD}
    if ca:
        (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nx\n")
        env["PAITIENT_STORE_CA_FILE"] = str(tmp_path / "ca.crt")
    return load_config(env)


def _gateway(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "gateway")


def test_without_a_store_nothing_is_rendered(config: OperatorConfig) -> None:
    md = make_md("a").obj()
    assert build_store_secret(md, config.store, "") is None
    env = {e["name"] for e in _gateway(build_deployment(md, config))["env"]}
    assert not {n for n in env if n.startswith("PAITIENT_STORE")}


def test_the_password_reaches_the_gateway_by_reference_only(tmp_path: Path) -> None:
    config = _config(tmp_path, "rediss://paitient-store.paitient-system.svc:6379/0", ca=True)
    md = make_md("a").obj()
    deployment = build_deployment(md, config)
    gateway = _gateway(deployment)
    env = {e["name"]: e for e in gateway["env"]}
    assert (
        env["PAITIENT_STORE_URL"]["value"] == "rediss://paitient-store.paitient-system.svc:6379/0"
    )
    assert env["PAITIENT_STORE_PASSWORD"] == {
        "name": "PAITIENT_STORE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "a-store", "key": "password"}},
    }
    assert env["PAITIENT_STORE_CA_FILE"]["value"] == "/etc/paitient/store-ca/ca.crt"
    assert PASSWORD not in str(deployment)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["store-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    mounts = [m["name"] for c in deployment["spec"]["template"]["spec"]["containers"]
              for m in c.get("volumeMounts", [])]  # fmt: skip
    assert mounts.count("store-ca") == 1 and "store-ca" in {
        m["name"] for m in gateway["volumeMounts"]
    }  # the gateway's alone: vLLM sees neither the password nor the CA
    secret = build_store_secret(md, config.store, "CA PEM")
    assert secret is not None
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == (
        "a-store",
        "tenant-demo",
    )
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == "CA PEM"


def test_a_configured_extra_cannot_replace_the_stores_settings(tmp_path: Path) -> None:
    config = _config(tmp_path, "redis://10.1.2.3:6380/0")
    config = config.model_copy(
        update={
            "gateway": config.gateway.model_copy(
                update={"env": {"PAITIENT_STORE_URL": "redis://evil/0"}}
            )
        }
    )
    env = [e for e in _gateway(build_deployment(make_md("a").obj(), config))["env"]
           if e["name"] == "PAITIENT_STORE_URL"]  # fmt: skip
    assert env == [{"name": "PAITIENT_STORE_URL", "value": "redis://10.1.2.3:6380/0"}]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        (
            "rediss://paitient-store.paitient-system.svc:6379/0",
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "paitient-system"}}}],
             "ports": [{"protocol": "TCP", "port": 6379}]},
        ),
        (
            "redis://store.data.svc.cluster.local:7000/1",
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}}}],
             "ports": [{"protocol": "TCP", "port": 7000}]},
        ),
        (
            "redis://10.1.2.3:6380/0",
            {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"protocol": "TCP", "port": 6380}]},
        ),
        ("rediss://redis.example.org/0", {"ports": [{"protocol": "TCP", "port": 6379}]}),
    ],
)  # fmt: skip
def test_model_pods_may_reach_the_store_and_nothing_more(
    tmp_path: Path, url: str, rule: dict[str, Any]
) -> None:
    policy = build_network_policy(make_md("a").obj(), _config(tmp_path, url))
    assert rule in policy["spec"]["egress"]


def test_a_store_that_cannot_work_stops_the_operator_with_a_clear_message() -> None:
    with pytest.raises(
        SettingsError, match=r"^store: PAITIENT_STORE_URL carries a pass"
    ) as refused:
        load_config({"PAITIENT_STORE_URL": f"redis://:{PASSWORD}@store/0"})
    assert PASSWORD not in str(refused.value)
    with pytest.raises(SettingsError, match="must start with redis://"):
        load_config({"PAITIENT_STORE_URL": "https://store", "PAITIENT_STORE_PASSWORD": PASSWORD})
