"""Figures of `make images`: a cold build into an empty image cache, a warm rebuild with nothing
changed, and each image's archive size and uncompressed size.

    python benchmarks/bench_images.py             # cold + warm, in a throwaway cache
    python benchmarks/bench_images.py --keep-syft # reuse the cached syft binary (skips its build)
    python benchmarks/bench_images.py --smoke     # a warm rebuild of the real cache only

"Cold" empties the image cache only: uv's wheel cache, Go's module cache and Debian's mirror
stay as they are (a first run on a fresh machine also downloads ~3.5 GB of wheels). Results go
to stdout, the last line a JSON summary; docs/benchmarks.md and docs/images.md record them.
``--smoke`` (a test runs it, after ``make images``) rebuilds the real cache, where nothing
changed (seconds), and measures the uncompressed size of the smallest image only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.summary import print_summary
from paitient_images.cache import cache_dir
from paitient_images.sbom import SYFT_VERSION


def timed_build(env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "paitient_images", "build"], env=env, check=True)
    return time.monotonic() - started


def uncompressed_size(archive: str) -> int:
    """Sum of the layers' uncompressed sizes (the image's size on a node)."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{manifest_digest}"))  # type: ignore[arg-type]
        total = 0
        for layer in manifest["layers"]:
            blob = tar.extractfile("blobs/sha256/" + layer["digest"].split(":")[1])
            assert blob is not None
            decompress = ["zstd", "-dc"] if layer["mediaType"].endswith("zstd") else ["gzip", "-dc"]
            proc = subprocess.Popen(decompress, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert proc.stdin is not None and proc.stdout is not None
            counter = subprocess.Popen(["wc", "-c"], stdin=proc.stdout, stdout=subprocess.PIPE)
            proc.stdout.close()  # wc owns the read end now
            shutil.copyfileobj(blob, proc.stdin, 1 << 20)
            proc.stdin.close()
            out, _ = counter.communicate()
            proc.wait()
            total += int(out.split()[0])
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep-syft", action="store_true", help="copy the cached syft binary in")
    parser.add_argument("--smoke", action="store_true", help="a warm rebuild of the real cache")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.smoke:
        warm = timed_build(dict(os.environ))
        sizes(json.loads((cache_dir() / "index.json").read_text())["images"], args.smoke, warm)
        return
    scratch = Path(tempfile.mkdtemp(prefix="paitient-images-bench-"))
    env = {**os.environ, "PAITIENT_IMAGES_CACHE_DIR": str(scratch)}
    try:
        if args.keep_syft:
            tool = cache_dir() / "tools" / f"syft-{SYFT_VERSION}"
            if tool.is_dir():
                shutil.copytree(tool, scratch / "tools" / tool.name)
        cold = timed_build(env)
        warm = timed_build(env)
        print(f"cold build: {cold:.0f} s")
        sizes(json.loads((scratch / "index.json").read_text())["images"], False, warm, cold)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sizes(images: dict[str, Any], smoke: bool, warm: float, cold: float | None = None) -> None:
    """Each image's archive size and uncompressed size (a smoke run: the smallest image's only);
    then the summary line."""
    print(f"warm rebuild: {warm:.1f} s")
    print(f"{'image':20} {'archive MB':>10} {'uncompressed MB':>16}")
    smallest = min(images, key=lambda name: images[name]["size"])
    figures: dict[str, dict[str, int]] = {}
    for name, entry in images.items():
        measured = not smoke or name == smallest
        size = uncompressed_size(entry["archive"]) if measured else 0
        shown = f"{size / 1e6:.0f}" if measured else "-"
        print(f"{name:20} {entry['size'] / 1e6:10.0f} {shown:>16}")
        figures[name] = {"archive_bytes": entry["size"], "uncompressed_bytes": size}
    print_summary(
        __file__, smoke, warm_s=round(warm, 1), cold_s=cold and round(cold), images=figures
    )


if __name__ == "__main__":
    main()
