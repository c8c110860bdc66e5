"""A layer blob from a directory tree: a reproducible tar (sorted names, owner root, one fixed
time), compressed with gzip or zstd, with the two digests OCI needs."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from paitient_images.recipes import Compression
from paitient_images.steps import BuildError

# Every entry gets this modification time (2024-01-01), so equal trees give equal digests.
LAYER_MTIME: Final = 1704067200
MEDIA_TYPES: Final[dict[Compression, str]] = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class LayerBlob:
    """A compressed layer on disk and its descriptor fields."""

    path: Path
    digest: str  # sha256 of the compressed blob
    diff_id: str  # sha256 of the uncompressed tar
    size: int
    media_type: str


def walk(tree: Path) -> Iterator[Path]:
    """Every path under ``tree`` (not ``tree`` itself), parents before children, sorted."""
    for name in sorted(os.listdir(tree)):
        path = tree / name
        yield path
        if path.is_dir() and not path.is_symlink():
            yield from walk(path)


def tar_info(path: Path, name: str) -> tarfile.TarInfo:
    """The entry of ``path``: type and permission bits kept, everything else normalised."""
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = LAYER_MTIME
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size  # hard links (uv's cache) become plain copies
    else:
        raise BuildError(f"{path}: only files, directories and symlinks belong in a layer")
    return info


def write_tar(tree: Path, out: IO[bytes]) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in walk(tree):
            info = tar_info(path, path.relative_to(tree).as_posix())
            if info.isreg():
                with path.open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


class _Hashing:
    """A write-only file that hashes what passes through to ``sink``."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def write_layer(tree: Path, dest: Path, compression: Compression) -> LayerBlob:
    """Compress ``tree`` into ``dest`` (written under a temporary name, then renamed)."""
    partial = dest.with_name(dest.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("wb") as raw:
        if compression == "gzip":
            # No name and no time in the gzip header: equal trees give equal blobs.
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                plain = _Hashing(gz)  # type: ignore[arg-type]
                write_tar(tree, plain)  # type: ignore[arg-type]
        else:
            # zstd in a process of its own, on every core: seconds for gigabytes.
            zstd = subprocess.Popen(
                ["zstd", "-q", "-T0", "-3", "-c"], stdin=subprocess.PIPE, stdout=raw
            )
            assert zstd.stdin is not None
            plain = _Hashing(zstd.stdin)
            try:
                write_tar(tree, plain)  # type: ignore[arg-type]
            finally:
                zstd.stdin.close()
            if zstd.wait() != 0:
                raise BuildError(f"zstd exited {zstd.returncode} compressing {tree}")
    partial.rename(dest)
    return LayerBlob(
        path=dest,
        digest=_sha256_file(dest),
        diff_id="sha256:" + plain.sha.hexdigest(),
        size=dest.stat().st_size,
        media_type=MEDIA_TYPES[compression],
    )
