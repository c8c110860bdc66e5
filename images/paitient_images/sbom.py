"""SBOMs by syft, built from the Go module proxy once per version and cached: it reads an
oci-archive's layers and lists the Debian packages (from ``status.d``) and Python
distributions (from ``*.dist-info``) the image really holds, as SPDX JSON."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Final

from paitient_images.go_toolchain import find_go
from paitient_images.steps import BuildError, run

SYFT_MODULE: Final = "github.com/anchore/syft/cmd/syft"
SYFT_VERSION: Final = "v1.57.1"


def syft_path(tools: Path) -> Path:
    return tools / f"syft-{SYFT_VERSION}" / "syft"


class SyftBuild:
    """syft from the cache, or a `go install` of it started in the background (a few minutes,
    once per version) that ``wait`` finishes and ``cancel`` stops."""

    def __init__(self, tools: Path, log_file: Path) -> None:
        self.binary = syft_path(tools)
        self.partial = self.binary.parent.with_name(self.binary.parent.name + ".partial")
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None
        if self.binary.is_file():
            return
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        env = {
            **os.environ,
            "GOBIN": str(self.partial),
            "CGO_ENABLED": "0",
            "GOFLAGS": "-buildvcs=false",
        }
        flags = f"-s -w -X main.version={SYFT_VERSION.lstrip('v')}"
        cmd = [find_go(), "install", "-ldflags", flags, f"{SYFT_MODULE}@{SYFT_VERSION}"]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as out:
            self._proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def building(self) -> bool:
        return self._proc is not None

    def wait(self) -> Path:
        if self._proc is not None:
            if self._proc.wait() != 0 or not (self.partial / "syft").is_file():
                tail = self.log_file.read_text(errors="replace").strip().splitlines()[-10:]
                raise BuildError(
                    f"go install {SYFT_MODULE}@{SYFT_VERSION} failed: " + "\n".join(tail)
                )
            shutil.rmtree(self.binary.parent, ignore_errors=True)
            self.partial.rename(self.binary.parent)
            self._proc = None
        return self.binary

    def cancel(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait()
        self._proc = None
        shutil.rmtree(self.partial, ignore_errors=True)


def write_sbom(syft: Path, layout: Path, name: str, version: str, dest: Path, tmp: Path) -> None:
    """SPDX JSON of the image in the OCI layout directory ``layout`` (syft reads an
    oci-archive's entries only up to 2 GiB each; a layout's blobs have no such limit)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
        "SYFT_PARALLELISM": "2",
    }
    partial = dest.with_name(dest.name + ".partial")
    run(
        [
            syft,
            "scan",
            f"oci-dir:{layout}",
            "--source-name",
            name,
            "--source-version",
            version,
            "--output",
            f"spdx-json={partial}",
        ],
        env=env,
        log_file=tmp / "syft.log",
    )
    partial.rename(dest)
