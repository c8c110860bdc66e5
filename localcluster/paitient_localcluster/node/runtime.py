"""What the real node needs besides its command lines: the Debian programs it runs, images in
its containerd, health checks made from inside the cluster's namespace.

Images are never pulled: the oci-archives ``make images`` built (``paitient_images``) are
imported with ``ctr -n k8s.io images import`` into the node's containerd (whose socket only the
node's mount namespace sees); one already there with the same manifest digest is not imported
again (the image store lives in the run directory). Pods use ``imagePullPolicy: IfNotPresent`` or
``Never``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from paitient_images import NotBuilt, images

from ..errors import ClusterError
from ..host.linux import Enter, call_in_netns
from .config import CNI_BIN_DIR, CONTAINERD_SOCKET, RUNC

# What scripts/install-node-packages.sh installs (make cluster runs it).
REQUIRED_PROGRAMS = ("containerd", "containerd-shim-runc-v2", "ctr", "iptables", "ipset", "ip")
REQUIRED_FILES = (RUNC, f"{CNI_BIN_DIR}/bridge", f"{CNI_BIN_DIR}/host-local",
                  f"{CNI_BIN_DIR}/portmap", f"{CNI_BIN_DIR}/loopback")  # fmt: skip
# The node's programs find iptables, ipset and the shim here.
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


PAUSE_IMAGE = "pause"  # the name of the pod sandbox's image in the images index


@dataclass(frozen=True)
class NodeImage:
    """An image the node holds: its reference, the oci-archive it is imported from and, when
    known, its manifest digest (an image already there with that digest is kept)."""

    ref: str
    archive: Path
    digest: str | None = None


def built_images(only: str | None = None) -> dict[str, NodeImage]:
    """Every image ``make images`` built, by name, or only those ``only`` names (comma-separated;
    ``$PAITIENT_NODE_IMAGES`` when not given: a node that runs no real vLLM spares the ~10 GB
    of vllm-cpu); a clear error when the pause image, without which no pod can start, is not
    among them."""
    try:
        built = images()
    except NotBuilt as exc:
        raise ClusterError(f"the real node's images: {exc}") from exc
    only = os.environ.get("PAITIENT_NODE_IMAGES", "") if only is None else only
    if names := {n.strip() for n in only.split(",") if n.strip()}:
        if unknown := sorted(names - set(built)):
            raise ClusterError(
                f"PAITIENT_NODE_IMAGES names images `make images` did not build: "
                f"{', '.join(unknown)} (built: {', '.join(sorted(built))})"
            )
        built = {
            name: artifact for name, artifact in built.items() if name in names | {PAUSE_IMAGE}
        }
    if PAUSE_IMAGE not in built:
        raise ClusterError("the real node needs the pause image: run `make images`")
    return {
        name: NodeImage(a.reference, Path(a.archive), a.manifest_digest)
        for name, a in built.items()
    }


def parse_image_list(text: str) -> dict[str, str]:
    """``ctr images ls`` output as reference -> manifest digest (pure)."""
    found = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            found[fields[0]] = fields[2]
    return found


def check_programs() -> str:
    """The path of containerd; a clear error naming the install script when anything is
    missing."""
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p, path=NODE_PATH) is None]
    missing += [f for f in REQUIRED_FILES if not Path(f).is_file()]
    if missing:
        raise ClusterError(
            f"the real node needs {', '.join(missing)}: run scripts/install-node-packages.sh "
            "(`make cluster` does), or start the cluster without a real node."
        )
    found = shutil.which("containerd", path=NODE_PATH)
    assert found is not None
    return found


def node_env() -> dict[str, str]:
    """The environment of the node's programs: nothing of the caller's but a fixed PATH."""
    return {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8"}


def _ctr(enter: Enter, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        enter.argv(["ctr", "--address", CONTAINERD_SOCKET, "-n", "k8s.io", *args]),
        capture_output=True, text=True, env=node_env(),
    )  # fmt: skip


def import_images(wanted: Sequence[NodeImage], enter: Enter) -> list[str]:
    """Import into the node's containerd (``k8s.io`` namespace, where the CRI looks) each image
    it does not hold yet, then drop what a re-import left unnamed; return the references
    imported."""
    listed = _ctr(enter, "images", "ls")
    present = parse_image_list(listed.stdout) if listed.returncode == 0 else {}
    imported = []
    for image in wanted:
        if image.digest is not None and present.get(image.ref) == image.digest:
            continue
        if not image.archive.is_file():
            raise ClusterError(f"image archive {image.archive} for {image.ref} does not exist")
        done = _ctr(enter, "images", "import", str(image.archive))
        if done.returncode != 0:
            raise ClusterError(
                f"importing {image.archive} into the node failed: {done.stderr.strip()[-500:]}"
            )
        imported.append(image.ref)
    if imported:
        _remove_superseded(present, [i for i in wanted if i.ref in imported], enter)
    return imported


def superseded_refs(
    before: dict[str, str], after: dict[str, str], imported: Sequence[NodeImage]
) -> list[str]:
    """The references left to manifests that an import moved a name away from (pure): the CRI's
    ``sha256:<image id>`` of a rebuilt image's old version, when no name points there any
    more. Nothing is pulled and the kubelet's image GC is off on this node, so without this
    every rebuild of an image would leave its old layers behind (9 GB for vllm-cpu)."""
    old = {before[i.ref] for i in imported if i.ref in before and before[i.ref] != i.digest}
    named = {digest for ref, digest in after.items() if not ref.startswith("sha256:")}
    return sorted(ref for ref, digest in after.items() if digest in old - named)


def _remove_superseded(before: dict[str, str], imported: Sequence[NodeImage], enter: Enter) -> None:
    listed = _ctr(enter, "images", "ls")
    if listed.returncode != 0:
        return  # nothing lost: the old versions only take disk until the next import
    refs = superseded_refs(before, parse_image_list(listed.stdout), imported)
    if refs:
        _ctr(enter, "images", "rm", *refs)


def refs_of(image: NodeImage, present: dict[str, str]) -> list[str]:
    """Every reference in ``present`` (reference -> manifest digest) naming ``image``: its own
    and those the CRI adds for the same manifest (``sha256:<image id>``) (pure)."""
    return sorted(
        ref
        for ref, digest in present.items()
        if ref == image.ref or (image.digest is not None and digest == image.digest)
    )


def remove_image(image: NodeImage, enter: Enter) -> list[str]:
    """Remove ``image`` (every reference to it) from the node's containerd and wait (``--sync``)
    until its garbage collection has deleted what no other image shares: its content and
    unpacked snapshots, as on a node that never held it. The references removed."""
    listed = _ctr(enter, "images", "ls")
    if listed.returncode != 0:
        raise ClusterError(f"listing the node's images failed: {listed.stderr.strip()[-500:]}")
    refs = refs_of(image, parse_image_list(listed.stdout))
    if refs:
        done = _ctr(enter, "images", "rm", "--sync", *refs)
        if done.returncode != 0:
            raise ClusterError(
                f"removing {image.ref} from the node failed: {done.stderr.strip()[-500:]}"
            )
    return refs


def containerd_answers(enter: Enter) -> bool:
    return _ctr(enter, "version").returncode == 0


def http_ok_inside(netns: Path, url: str) -> bool:
    """True when ``url`` (an address inside the cluster's namespace) answers 200."""

    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return call_in_netns(netns, get)
