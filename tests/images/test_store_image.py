"""The store's image (Debian's redis-server) run by podman + runc as the chart's StatefulSet
runs it: the rendered container (arguments, user, read-only root, no capabilities), its
redis.conf from the chart's ConfigMap, the password's ACL file and the TLS Secret as the
operator makes them (``managed_store``), its data on a volume. Then: the chart's own readiness
probe answers, a client on another container verifies the certificate and authenticates, a
wrong password and a plain-text connection are refused, and the data is on the volume. The
listener moves from every address to 127.0.0.1 (the containers share the host's network)."""

from __future__ import annotations

import copy
import socket
import ssl
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paitient_localcluster.host.processes import free_port
from paitient_operator.certificates import authority, x509
from paitient_operator.config import OperatorConfig
from paitient_operator.managed_store import (
    build_password_secret,
    build_tls_secret,
    service_names,
)
from tests.images.conftest import LOOPBACK, owned_by_nonroot
from tests.images.podman import Container, Podman, pod_flags
from tests.images.serving_tls import mount_secret
from tests.integration.waiting import wait_for
from tests.unit.test_helm_chart import NAMESPACE, one, render

STORE = "paitient-store"
PASSWORD = "image-test-password"  # a throwaway store's


def _started_store(
    image: str, started: Callable[..., Container], tmp_path: Path, port: int
) -> tuple[Container, dict[str, Any], Path, str]:
    """The store container, its rendered pod, its data directory and the CA bundle (PEM)."""
    objects = render({"store": {"port": port}})
    pod = copy.deepcopy(one(objects, "StatefulSet", STORE)["spec"]["template"]["spec"])
    (container,) = pod["containers"]
    pod["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "data"}})
    conf = one(objects, "ConfigMap", STORE)["data"]["redis.conf"]
    assert "bind * -::*" in conf
    config = owned_by_nonroot(tmp_path / "config", 0o755)
    (config / "redis.conf").write_text(conf.replace("bind * -::*", f"bind {LOOPBACK}"))
    (config / "redis.conf").chmod(0o644)
    now, operator = datetime.now(UTC), OperatorConfig.model_validate({})
    ca = authority.rotate(None, operator.tls, now)
    pair = x509.issue(
        ca.signer, service_names(STORE, NAMESPACE), operator.tls.certificate_lifetime, now
    )
    tls = build_tls_secret(NAMESPACE, f"{STORE}-tls", pair, ca.bundle_pem, operator)
    auth = build_password_secret(NAMESPACE, f"{STORE}-auth", PASSWORD)
    data = owned_by_nonroot(tmp_path / "data")
    host_paths = {
        "config": str(config),
        "auth": str(mount_secret(auth, "auth", pod, tmp_path / "auth")),
        "tls": str(mount_secret(tls, "tls", pod, tmp_path / "tls")),
        "data": str(data),
    }
    # secretKeyRef REDISCLI_AUTH: the password of the same Secret
    flags = pod_flags(pod, container, host_paths, env={"REDISCLI_AUTH": PASSWORD})
    store = started(f"store-{port}", image, flags, container["args"])
    return store, container, data, ca.bundle_pem


def _probe(
    podman: Podman, store: Container, container: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """The chart's readiness probe, run in the container as the kubelet runs it."""
    command = container["readinessProbe"]["exec"]["command"]
    return podman.run("exec", store.name, *command, check=False)


def _client(
    podman: Podman, image: str, tls: Path, port: int, password: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """redis-cli in a container of its own (another pod, as it were), over TLS."""
    flags = ["--network", "host", "--read-only", "--cap-drop=ALL", "--user", "65532:65532",
             "--volume", f"{tls}:/tls:ro", "--env", f"REDISCLI_AUTH={password}",
             "--entrypoint", "/usr/bin/redis-cli"]  # fmt: skip
    cli = ["-e", "-h", LOOPBACK, "-p", str(port), "--tls", "--cacert", "/tls/ca.crt", *args]
    return podman.execute(image, flags, cli)


def test_the_store_serves_tls_with_the_operators_password_and_keeps_its_data_on_the_volume(
    image_of: Callable[[str], str],
    started: Callable[..., Container],
    podman: Podman,
    tmp_path: Path,
) -> None:
    image, port = image_of("redis"), free_port()
    store, container, data, ca_pem = _started_store(image, started, tmp_path, port)

    def ready() -> bool:
        if not store.running():
            raise AssertionError(f"the store stopped: {store.state()}\n{store.logs()}")
        done = _probe(podman, store, container)
        return done.returncode == 0 and done.stdout.strip() == "PONG"

    wait_for(ready, timeout=60, what="the store's readiness probe")
    # The certificate is for the Service's name and chains to the operator's CA.
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=f"{STORE}.{NAMESPACE}.svc") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    tls_dir = tmp_path / "tls"
    written = _client(podman, image, tls_dir, port, PASSWORD, "EVAL",
                      "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "usage:acme", "42")  # fmt: skip
    assert written.returncode == 0 and written.stdout.strip() == "42", written.stderr
    refused = _client(podman, image, tls_dir, port, "not-the-password", "PING")
    assert refused.returncode != 0 and "WRONGPASS" in refused.stdout + refused.stderr
    # No plain-text port: a plain connection gets no answer.
    plain = podman.execute(
        image, ["--network", "host", "--entrypoint", "/usr/bin/redis-cli"],
        ["-e", "-h", LOOPBACK, "-p", str(port), "PING"],
    )  # fmt: skip
    assert plain.returncode != 0 and "PONG" not in plain.stdout
    # Written to the append-only file on the volume, by the image's user.
    wait_for(lambda: any(p.stat().st_size for p in (data / "appendonlydir").glob("*.incr.aof")),
             timeout=10, what="the append-only file")  # fmt: skip
    assert (data / "appendonlydir").stat().st_uid == 65532
    _runs_locked_down(podman, store)


def _runs_locked_down(podman: Podman, store: Container) -> None:
    """Its process, seen from the host: the numeric user, no capabilities, no-new-privileges,
    a read-only root (the image has no Python or shell to ask from inside)."""
    pid = podman.run("inspect", "--format", "{{.State.Pid}}", store.name).stdout.strip()
    status = dict(
        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":\t" in line
    )  # fmt: skip
    assert status["Uid"].split()[:2] == ["65532", "65532"]
    assert status["Gid"].split()[:2] == ["65532", "65532"]
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    root = next(
        line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        if line.split()[4] == "/"
    )  # fmt: skip
    assert "ro" in root[5].split(","), root
