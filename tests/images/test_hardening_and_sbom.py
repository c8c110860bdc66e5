"""What each image holds and how it runs, checked from inside it (its own Python) and from its
archive's layers: the image's numeric user, no capabilities, no-new-privileges, a read-only
root, no shell or package manager, no secrets or caches in any layer, and an SBOM that lists
exactly the Python distributions and Debian packages the image really contains."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote

import pytest

from paitient_images.cache import ImageArtifact
from paitient_images.recipes import NONROOT_GID, NONROOT_UID, PAUSE_UID
from tests.images.podman import Podman

PYTHON_IMAGES = ("paitient-gateway", "paitient-operator", "paitient-api", "tiny-model", "vllm-cpu")
# Run as a pod would, but without --user: the image's own USER is what is checked.
LOCKED_DOWN = [
    "--network", "none", "--read-only", "--read-only-tmpfs=false",
    "--tmpfs", "/tmp:rw,size=16m,mode=1777", "--cap-drop=ALL",
    "--security-opt", "no-new-privileges", "--entrypoint", "/usr/bin/python3",
]  # fmt: skip

PROBE = r"""
import json, os, pathlib
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
def writable(path):
    try:
        pathlib.Path(path, ".probe").write_text("x")
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "cap_eff": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "root_writable": [p for p in ("/", "/usr", "/etc", "/usr/local/lib") if writable(p)],
    "tmp_writable": writable("/tmp"),
    "present": [p for p in ("/bin/sh", "/bin/bash", "/usr/bin/dash", "/usr/bin/apt-get",
                            "/usr/bin/dpkg", "/usr/bin/perl", "/usr/local/bin/pip")
                if os.path.lexists(p)],
}))
"""

# Every distribution whose metadata is anywhere in the image (setuptools vendors some and ships
# an egg as test data), and those importlib sees on sys.path.
DISTRIBUTIONS = r"""
import email.parser, json, pathlib, importlib.metadata as m
def read(path):
    meta = email.parser.Parser().parsestr(path.read_text(encoding="utf-8"), headersonly=True)
    return meta["Name"], meta["Version"]
patterns = ("*.dist-info/METADATA", "*.egg-info/PKG-INFO", "EGG-INFO/PKG-INFO")
held = {read(p) for pattern in patterns for p in pathlib.Path("/usr").rglob(pattern)}
importable = {(d.metadata["Name"], d.version) for d in m.distributions()}
print(json.dumps({"held": sorted(held), "importable": sorted(importable)}))
"""
# vLLM's CPU runtime runs `lscpu` through /bin/sh (see docs/images.md): its image has a shell.
EXPECTED_PRESENT = {"vllm-cpu": ["/bin/sh"]}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python(podman: Podman, image: str, script: str) -> object:
    done = podman.execute(image, LOCKED_DOWN, ["-c", script])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", PYTHON_IMAGES)
def test_image_runs_locked_down_as_its_own_numeric_user(
    name: str, image_of: Callable[[str], str], podman: Podman
) -> None:
    seen = _python(podman, image_of(name), PROBE)
    assert seen == {
        "uid": NONROOT_UID,
        "gid": NONROOT_GID,
        "cap_eff": "0000000000000000",
        "no_new_privs": "1",
        "root_writable": [],
        "tmp_writable": True,
        "present": EXPECTED_PRESENT.get(name, []),
    }


def test_pause_image_runs_as_its_user_and_stops_on_sigterm(
    image_of: Callable[[str], str], podman: Podman
) -> None:
    flags = ["--network", "none", "--read-only", "--cap-drop=ALL"]
    container = podman.start("pause-test", image_of("pause"), flags, [])
    try:
        assert container.running()
        user = podman.run("inspect", "--format", "{{.Config.User}}", container.name).stdout
        assert user.strip() == f"{PAUSE_UID}:{PAUSE_UID}"
        podman.run("stop", "--time", "10", container.name)
        assert container.exit_code() == 0
        assert "Shutting down, got signal" in container.logs()
    finally:
        podman.remove(container)


# What a package entry was read from: installed metadata, not a library's embedded ELF note.
EVIDENCE = {"pypi": "installed python package manifest", "deb": "/var/lib/dpkg/status.d/"}


def _sbom_purls(artifact: ImageArtifact, kind: str) -> set[tuple[str, str]]:
    document = json.loads(Path(artifact.sbom).read_text(encoding="utf-8"))
    assert document["spdxVersion"].startswith("SPDX-")
    found = set()
    for package in document["packages"]:
        if EVIDENCE[kind] not in package.get("sourceInfo", ""):
            continue
        for ref in package.get("externalRefs", []):
            locator = ref["referenceLocator"]
            if ref["referenceType"] == "purl" and locator.startswith(f"pkg:{kind}/"):
                name, _, version = locator.split("?")[0].rsplit("/", 1)[1].partition("@")
                found.add((_normal(unquote(name)), unquote(version)))
    return found


@pytest.mark.parametrize("name", PYTHON_IMAGES)
def test_sbom_lists_the_python_distributions_the_image_holds(
    name: str, built: Callable[[str], ImageArtifact], image_of: Callable[[str], str], podman: Podman
) -> None:
    inside = _python(podman, image_of(name), DISTRIBUTIONS)
    assert isinstance(inside, dict)
    held = {(_normal(n), v) for n, v in inside["held"]}
    assert {(_normal(n), v) for n, v in inside["importable"]} <= held
    assert held == _sbom_purls(built(name), "pypi")
    if name.startswith("paitient-"):
        assert ("paitient-secure-model-service", "0.1.0") in held


def _layers(archive: str) -> Iterator[tarfile.TarFile]:
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(outer.extractfile(f"blobs/sha256/{digest}"))  # type: ignore[arg-type]
        for layer in manifest["layers"]:
            blob = outer.extractfile("blobs/sha256/" + layer["digest"].split(":")[1])
            assert blob is not None
            if layer["mediaType"].endswith("+zstd"):
                zstd = subprocess.Popen(
                    ["zstd", "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
                feeder = _feed(blob, zstd.stdin)  # type: ignore[arg-type]
                assert zstd.stdout is not None
                with tarfile.open(fileobj=zstd.stdout, mode="r|") as tar:
                    yield tar
                feeder.join()
                assert zstd.wait() == 0
            else:
                with tarfile.open(fileobj=blob, mode="r|gz") as tar:
                    yield tar


def _feed(source: IO[bytes], sink: IO[bytes]) -> threading.Thread:
    def copy() -> None:
        with sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


SHELLS_AND_PACKAGE_MANAGERS = {
    "bin/sh", "bin/bash", "bin/dash", "usr/bin/dash", "usr/bin/bash", "usr/bin/apt-get",
    "usr/bin/dpkg", "usr/bin/perl",
}  # fmt: skip
FORBIDDEN = re.compile(
    r"^(root/|home/|var/cache/apt/|var/lib/apt/|var/lib/dpkg/status$|etc/apt/|etc/ssh/)"
    r"|\.whl$|(^|/)\.git/|(^|/)(id_rsa|id_ed25519|\.netrc|\.pypirc)$|\.pem\.key$"
)


@pytest.mark.parametrize("name", [*PYTHON_IMAGES, "pause", "redis"])
def test_layers_hold_no_secrets_caches_or_package_manager_state(
    name: str, built: Callable[[str], ImageArtifact]
) -> None:
    artifact = built(name)
    debs: set[str] = set()
    names: set[str] = set()
    for tar in _layers(artifact.archive):
        for member in tar:
            names.add(member.name)
            assert not FORBIDDEN.search(member.name), member.name
            assert member.uid == 0 and member.gid == 0, member.name
            # The images run as a non-root user: whatever they ship, that user can read.
            assert not member.isfile() or member.mode & 0o004, f"{member.name} {member.mode:o}"
            if member.name.startswith("var/lib/dpkg/status.d/") and member.isfile():
                debs.add(_normal(member.name.rsplit("/", 1)[1]))
    sbom_debs = {n for n, _ in _sbom_purls(artifact, "deb")}
    assert debs == sbom_debs
    if name == "redis":  # no Python to ask from inside (test_store_image.py runs it)
        assert not names & SHELLS_AND_PACKAGE_MANAGERS, names & SHELLS_AND_PACKAGE_MANAGERS
        assert "redis-server" in debs
