"""What the real node needs besides its command lines: the Debian programs it runs, images in
its containerd, health checks made from inside the cluster's namespace.

Images are never pulled: oci-archives are imported with ``ctr -n k8s.io images import`` into the
node's containerd (whose socket only the node's mount namespace sees), and pods use
``imagePullPolicy: IfNotPresent`` or ``Never``.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ClusterError
from .linux import Enter, call_in_netns
from .nodeconfig import CNI_BIN_DIR, CONTAINERD_SOCKET, RUNC

# What scripts/install-node-packages.sh installs (make cluster runs it).
REQUIRED_PROGRAMS = ("containerd", "containerd-shim-runc-v2", "ctr", "iptables", "ipset", "ip")
REQUIRED_FILES = (RUNC, f"{CNI_BIN_DIR}/bridge", f"{CNI_BIN_DIR}/host-local",
                  f"{CNI_BIN_DIR}/portmap", f"{CNI_BIN_DIR}/loopback")  # fmt: skip
# The node's programs find iptables, ipset and the shim here.
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class NodeImage:
    """An image the node holds: its reference and the oci-archive it is imported from."""

    ref: str
    archive: Path


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


def import_images(images: Sequence[NodeImage], enter: Enter) -> list[str]:
    """Import each archive into the node's containerd (``k8s.io`` namespace, where the CRI
    looks); return the references now present."""
    imported = []
    for image in images:
        if not image.archive.is_file():
            raise ClusterError(f"image archive {image.archive} for {image.ref} does not exist")
        done = subprocess.run(
            enter.argv(["ctr", "--address", CONTAINERD_SOCKET, "-n", "k8s.io", "images",
                        "import", str(image.archive)]),
            capture_output=True, text=True, env=node_env(),
        )  # fmt: skip
        if done.returncode != 0:
            raise ClusterError(
                f"importing {image.archive} into the node failed: {done.stderr.strip()[-500:]}"
            )
        imported.append(image.ref)
    return imported


def containerd_answers(enter: Enter) -> bool:
    done = subprocess.run(
        enter.argv(["ctr", "--address", CONTAINERD_SOCKET, "version"]),
        capture_output=True, env=node_env(), timeout=10,
    )  # fmt: skip
    return done.returncode == 0


def http_ok_inside(netns: Path, url: str) -> bool:
    """True when ``url`` (an address inside the cluster's namespace) answers 200."""

    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return call_in_netns(netns, get)
