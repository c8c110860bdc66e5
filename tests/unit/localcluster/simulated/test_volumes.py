"""Secret volumes written as the kubelet writes them, and the gateway pointed at them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from paitient_localcluster.simulated.dataplane import SecretMount, local_env, secret_mounts
from paitient_localcluster.simulated.volumes import current_files, secret_files, write_atomically
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.config import OperatorConfig
from tests.unit.operator.factories import make_md


def test_the_layout_is_the_kubelets_and_an_update_is_one_rename(tmp_path: Path) -> None:
    assert current_files(tmp_path) is None
    assert write_atomically(tmp_path, {"tls.crt": b"cert 1", "tls.key": b"key 1"}) is True
    data = tmp_path / "..data"
    first = data.resolve()
    assert data.is_symlink() and first.name.startswith("..") and first.parent == tmp_path
    assert os.readlink(tmp_path / "tls.crt") == "..data/tls.crt"
    assert (tmp_path / "tls.key").read_bytes() == b"key 1"
    assert stat.S_IMODE((first / "tls.key").stat().st_mode) == 0o440

    assert write_atomically(tmp_path, {"tls.crt": b"cert 1", "tls.key": b"key 1"}) is False
    assert data.resolve() == first  # unchanged Secret, nothing written

    held = (tmp_path / "tls.crt").open("rb")  # a reader that opened the old file keeps it
    assert write_atomically(tmp_path, {"tls.crt": b"cert 2", "tls.key": b"key 2"}) is True
    assert data.resolve() != first and not first.exists()  # the old payload is gone
    assert (tmp_path / "tls.crt").read_bytes() == b"cert 2"
    assert held.read() == b"cert 1"
    held.close()
    assert current_files(tmp_path) == {"tls.crt": b"cert 2", "tls.key": b"key 2"}
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert entries == sorted(["..data", data.resolve().name, "tls.crt", "tls.key"])

    write_atomically(tmp_path, {"tls.crt": b"cert 3"})  # a key the Secret no longer has
    assert not (tmp_path / "tls.key").is_symlink()


def test_a_secret_becomes_its_files() -> None:
    secret = {"data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}
    assert secret_files(secret) == {"tls.crt": b"cert", "tls.key": b"key"}


def test_the_gateways_secret_mounts_and_env_point_at_the_local_copy(tmp_path: Path) -> None:
    deployment = build_deployment(make_md("m").namespace("ns").obj(), OperatorConfig())
    mounts = secret_mounts(deployment)
    assert mounts == [SecretMount("m-tls", "/etc/paitient/tls", 0o440)]
    env = local_env(
        {
            "PAITIENT_TLS_CERT_FILE": "/etc/paitient/tls/tls.crt",
            "PAITIENT_TLS_KEY_FILE": "/etc/paitient/tls/tls.key",
            "PAITIENT_OTHER": "/etc/paitient/tlsx",
        },
        {"/etc/paitient/tls": tmp_path / "m-tls"},
    )
    assert env == {
        "PAITIENT_TLS_CERT_FILE": f"{tmp_path}/m-tls/tls.crt",
        "PAITIENT_TLS_KEY_FILE": f"{tmp_path}/m-tls/tls.key",
        "PAITIENT_OTHER": "/etc/paitient/tlsx",  # a prefix of a path is not a path under it
    }
