"""The node's images in containerd: which references an import or a removal touches."""

from __future__ import annotations

from pathlib import Path

import pytest

from paitient_images.cache import ImageArtifact
from paitient_localcluster.errors import ClusterError
from paitient_localcluster.node import runtime
from paitient_localcluster.node.runtime import NodeImage, parse_image_list, refs_of, superseded_refs

# What `ctr -n k8s.io images ls` printed on the real node (columns shortened): a name the import
# gave, the image ID the CRI added for the same manifest, another image.
CTR_IMAGES_LS = """\
REF                                 TYPE                                       DIGEST      SIZE      PLATFORMS   LABELS
ghcr.io/paitient/vllm-cpu:v0.32.0   application/vnd.oci.image.manifest.v1+json sha256:674a 2.9 GiB   linux/amd64 io.cri-containerd.image=managed
ghcr.io/paitient/pause:3.10.1       application/vnd.oci.image.manifest.v1+json sha256:5dc3 301.1 KiB linux/amd64 io.cri-containerd.image=managed
sha256:2709                         application/vnd.oci.image.manifest.v1+json sha256:674a 2.9 GiB   linux/amd64 io.cri-containerd.image=managed
sha256:8627                         application/vnd.oci.image.manifest.v1+json sha256:5dc3 301.1 KiB linux/amd64 io.cri-containerd.image=managed
"""


def test_removing_an_image_takes_every_reference_to_its_manifest_and_no_other() -> None:
    present = parse_image_list(CTR_IMAGES_LS)
    assert present["ghcr.io/paitient/vllm-cpu:v0.32.0"] == "sha256:674a"
    vllm = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:674a")
    assert refs_of(vllm, present) == ["ghcr.io/paitient/vllm-cpu:v0.32.0", "sha256:2709"]
    # A rebuilt image (another digest): only its name goes, the older build's ID stays.
    rebuilt = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:ffff")
    assert refs_of(rebuilt, present) == ["ghcr.io/paitient/vllm-cpu:v0.32.0"]
    assert refs_of(NodeImage("ghcr.io/x:1", Path("x.oci.tar"), None), present) == []


def test_a_reimport_drops_the_old_versions_id_and_nothing_still_named() -> None:
    before = parse_image_list(CTR_IMAGES_LS)
    # vllm-cpu rebuilt (manifest sha256:aaaa) and imported: its name moved, the CRI added an ID.
    after = {
        **before,
        "ghcr.io/paitient/vllm-cpu:v0.32.0": "sha256:aaaa",
        "sha256:3001": "sha256:aaaa",
    }
    rebuilt = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:aaaa")
    assert superseded_refs(before, after, [rebuilt]) == ["sha256:2709"]
    # Imported again unchanged, or imported for the first time: nothing is superseded.
    same = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:674a")
    assert superseded_refs(before, before, [same]) == []
    fresh = NodeImage("ghcr.io/paitient/tiny-model:0.1.0", Path("t.oci.tar"), "sha256:bbbb")
    assert superseded_refs(before, {**before, fresh.ref: "sha256:bbbb"}, [fresh]) == []
    # An old manifest another name still points at is kept.
    shared = {**after, "ghcr.io/other/vllm:pinned": "sha256:674a"}
    assert superseded_refs(before, shared, [rebuilt]) == []


def _artifact(name: str) -> ImageArtifact:
    return ImageArtifact(
        name, f"ghcr.io/x/{name}:1", f"/a/{name}.tar", "", f"sha256:{name}", 1, "k"
    )


def test_the_node_imports_only_the_images_named(monkeypatch: pytest.MonkeyPatch) -> None:
    built = {n: _artifact(n) for n in ("pause", "paitient-operator", "vllm-cpu")}
    monkeypatch.setattr(runtime, "images", lambda: built)
    monkeypatch.delenv("PAITIENT_NODE_IMAGES", raising=False)
    assert set(runtime.built_images()) == {"pause", "paitient-operator", "vllm-cpu"}
    monkeypatch.setenv("PAITIENT_NODE_IMAGES", "paitient-operator")
    assert set(runtime.built_images()) == {"pause", "paitient-operator"}  # pause always
    with pytest.raises(ClusterError, match="did not build: nope"):
        runtime.built_images("nope,pause")
