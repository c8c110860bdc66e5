"""The JSON documents of an OCI image (config, manifest, index) as pure functions, and the
``oci-archive`` writer: a tar of an OCI layout (``oci-layout``, ``index.json``, ``blobs/``)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from paitient_images.layer import LAYER_MTIME, LayerBlob
from paitient_images.recipes import ImageRecipe

CONFIG_MEDIA_TYPE: Final = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE: Final = "application/vnd.oci.image.index.v1+json"


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a document is stored as (and hashed over): sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image_annotations(
    recipe: ImageRecipe, *, version: str, revision: str, created: str | None
) -> dict[str, str]:
    """The ``org.opencontainers.image.*`` annotations (also the config's labels)."""
    result = {
        "org.opencontainers.image.title": recipe.title,
        "org.opencontainers.image.description": recipe.description,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": recipe.source,
        "org.opencontainers.image.licenses": recipe.licenses,
        "org.opencontainers.image.vendor": "PaiTIENT",
        "org.opencontainers.image.url": recipe.source,
        **dict(recipe.labels),
    }
    if created:
        result["org.opencontainers.image.created"] = created
    return result


def image_config(
    recipe: ImageRecipe, diff_ids: Sequence[str], labels: Mapping[str, str], created: str | None
) -> dict[str, Any]:
    """The image configuration: who runs what, and the uncompressed layer digests."""
    config: dict[str, Any] = {
        "User": recipe.user,
        "Env": [f"{k}={v}" for k, v in recipe.env],
        "Entrypoint": list(recipe.entrypoint),
        "WorkingDir": "/",
        "Labels": dict(labels),
    }
    if recipe.cmd:
        config["Cmd"] = list(recipe.cmd)
    if recipe.ports:
        config["ExposedPorts"] = {f"{p}/tcp": {} for p in recipe.ports}
    document: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": f"paitient_images: layer {i}"} for i in range(len(diff_ids))],
    }
    if created:
        document["created"] = created
    return document


def image_manifest(
    config: Mapping[str, Any], layers: Sequence[LayerBlob], notes: Mapping[str, str]
) -> dict[str, Any]:
    data = canonical(config)
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, sha256(data), len(data)),
        "layers": [descriptor(b.media_type, b.digest, b.size) for b in layers],
        "annotations": dict(notes),
    }


def image_index(manifest: Mapping[str, Any], reference: str) -> dict[str, Any]:
    """index.json naming the image by its full reference, which `ctr images import`,
    `podman load` and `skopeo copy oci-archive:` all read."""
    data = canonical(manifest)
    ref = {
        "org.opencontainers.image.ref.name": reference,
        "io.containerd.image.name": reference,
    }
    return {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            descriptor(
                MANIFEST_MEDIA_TYPE,
                sha256(data),
                len(data),
                platform={"architecture": "amd64", "os": "linux"},
                annotations=ref,
            )
        ],
    }


@dataclass(frozen=True)
class ImageDocuments:
    """Everything of an image except its layer blobs."""

    config: dict[str, Any]
    manifest: dict[str, Any]
    index: dict[str, Any]

    @property
    def manifest_digest(self) -> str:
        return sha256(canonical(self.manifest))


def documents(
    recipe: ImageRecipe,
    layers: Sequence[LayerBlob],
    *,
    version: str,
    revision: str,
    created: str | None,
) -> ImageDocuments:
    notes = image_annotations(recipe, version=version, revision=revision, created=created)
    config = image_config(recipe, [b.diff_id for b in layers], notes, created)
    manifest = image_manifest(config, layers, notes)
    return ImageDocuments(config, manifest, image_index(manifest, recipe.reference))


def _member(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, LAYER_MTIME
    return info


def _dir(name: str) -> tarfile.TarInfo:
    info = _member(name, 0, 0o755)
    info.type = tarfile.DIRTYPE
    return info


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def layout_files(docs: ImageDocuments) -> dict[str, bytes]:
    """The small files of the layout: config and manifest blobs, oci-layout, index.json."""
    files = {_blob_name(sha256(canonical(d))): canonical(d) for d in (docs.config, docs.manifest)}
    files["oci-layout"] = canonical({"imageLayoutVersion": "1.0.0"})
    files["index.json"] = canonical(docs.index)
    return files


def write_layout(dest: Path, docs: ImageDocuments, layers: Sequence[LayerBlob]) -> None:
    """The image as an OCI layout directory; layer blobs are hard links, not copies."""
    (dest / "blobs" / "sha256").mkdir(parents=True)
    for blob in layers:
        target = dest / _blob_name(blob.digest)
        if not target.exists():
            os.link(blob.path, target)
    for name, data in layout_files(docs).items():
        (dest / name).write_bytes(data)


def write_archive(dest: Path, docs: ImageDocuments, layers: Sequence[LayerBlob]) -> None:
    """The oci-archive: the layout as one tar, under a temporary name until complete."""
    partial = dest.with_name(dest.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_dir("blobs"))
        tar.addfile(_dir("blobs/sha256"))
        written: set[str] = set()
        for blob in layers:
            if blob.digest in written:
                continue
            written.add(blob.digest)
            with blob.path.open("rb") as stream:
                tar.addfile(_member(_blob_name(blob.digest), blob.size), stream)
        for name, data in layout_files(docs).items():
            tar.addfile(_member(name, len(data)), io.BytesIO(data))
    partial.rename(dest)
