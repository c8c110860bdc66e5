"""Fixtures of the image tests: the built images (a cached `make images` is seconds) and the
session's podman store (shared with tests/vllm), removed with everything it made at the end."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from paitient_images.build import Builder
from paitient_images.cache import ImageArtifact
from paitient_images.recipes import NONROOT_GID, NONROOT_UID
from tests.images.podman import Container, Podman
from tests.integration.waiting import wait_for
from tests.standins.client import sync_call

# The containers share the host's network namespace: every listener stays on loopback.
LOOPBACK = "127.0.0.1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/images" in str(item.path):
            item.add_marker(pytest.mark.images)


@pytest.fixture(scope="session")
def built() -> Iterator[Callable[[str], ImageArtifact]]:
    """``built(name)``: that image, built now if `make images` has not (cached: seconds)."""
    builder = Builder()
    done: dict[str, ImageArtifact] = {}

    def get(name: str) -> ImageArtifact:
        if name not in done:
            done[name] = builder.build([name])[0]
        return done[name]

    try:
        yield get
    finally:
        builder.close()


@pytest.fixture(scope="session")
def podman(request: pytest.FixtureRequest) -> Podman:
    """The session's podman store (``tests/conftest.py``), shared with tests/vllm."""
    if os.geteuid() != 0:
        pytest.fail("the image tests run rootful podman: run them as root")
    store: Podman = request.getfixturevalue("podman_store")
    return store


@pytest.fixture(scope="session")
def image_of(built: Callable[[str], ImageArtifact], podman: Podman) -> Callable[[str], str]:
    """``image_of("paitient-gateway")`` loads that archive into podman; returns its reference."""

    def load(name: str) -> str:
        artifact = built(name)
        return podman.load(artifact.archive, artifact.reference)

    return load


@pytest.fixture
def started(podman: Podman) -> Iterator[Callable[..., Container]]:
    """``started(name, image, flags, args)``; every container is removed afterwards."""
    made: list[Container] = []

    def start(name: str, image: str, flags: list[str], args: list[str]) -> Container:
        container = podman.start(name, image, flags, args)
        made.append(container)
        return container

    yield start
    for container in made:
        podman.remove(container)


def wait_answers(
    probe: str | Callable[[], int], container: Container, timeout: float, what: str
) -> None:
    """Until ``probe`` (a plain-HTTP URL to GET, or a call returning a status) answers 200; a
    failure shows the container's own log."""

    def status() -> int:
        if callable(probe):
            return probe()
        return sync_call("GET", probe, timeout=3).status

    def answers() -> bool:
        if not container.running():
            raise AssertionError(f"{container.name} stopped: {container.state()}")
        try:
            return status() == 200
        except ssl.SSLCertVerificationError:
            raise  # an untrusted certificate does not go away by waiting
        except OSError:  # refused or reset while it starts
            return False

    try:
        wait_for(answers, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- {container.name} log ---\n{container.logs()}") from None


def owned_by_nonroot(path: Path, mode: int = 0o700) -> Path:
    """``path`` made writable for the images' user only, as fsGroup makes a volume."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, NONROOT_UID, NONROOT_GID)
    path.chmod(mode)
    return path


def inline_kubeconfig(source: Path, dest: Path) -> Path:
    """``source`` with its certificate files embedded, readable by the images' user only (a
    container sees none of the host's paths)."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    files = {"certificate-authority", "client-certificate", "client-key"}
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in doc.get(section, []):
            body = entry[key]
            for name in files & set(body):
                body[f"{name}-data"] = base64.b64encode(Path(body.pop(name)).read_bytes()).decode()
    dest.write_text(yaml.safe_dump(doc), encoding="utf-8")
    os.chown(dest, NONROOT_UID, NONROOT_GID)
    dest.chmod(0o600)
    return dest
