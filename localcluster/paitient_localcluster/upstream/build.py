"""Build the upstream control-plane programs from the official Go modules, once per version.

Each component is a small wrapper module under ``localcluster/gomod`` (see its go.mod for why)
built with ``CGO_ENABLED=0`` into the version-keyed cache. A ``.complete`` stamp is written only
after every binary of a component built and answered ``--version``, so an interrupted build is
redone rather than trusted.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from paitient_images.go_toolchain import find_go
from paitient_images.steps import BuildError

from ..errors import ClusterError
from .versions import COMPONENTS, GOMOD_DIR, Component

Log = Callable[[str], None]


def build_command(go: str, component: Component) -> list[str]:
    """The one `go build` invocation for a component (pure, so tests can read it)."""
    return [
        go, "build", "-trimpath", "-ldflags", component.ldflags,
        "-o", str(component.directory) + os.sep, *component.packages,
    ]  # fmt: skip


def ensure_built(log: Log = print, components: Sequence[Component] = COMPONENTS) -> dict[str, Path]:
    """Build every missing one of ``components``; return binary name -> path for all of them."""
    missing = [c for c in components if not c.is_built()]
    if missing:
        try:
            go = find_go(log)
        except BuildError as exc:  # said as the cluster's own errors are (the CLI, the fixture)
            raise ClusterError(str(exc)) from exc
        for component in missing:
            _build(go, component, log)
    return {b: c.binary(b) for c in components for b in c.binaries}


def _build(go: str, component: Component, log: Log) -> None:
    component.directory.mkdir(parents=True, exist_ok=True)
    log(
        f"[build] {component.name} {component.version}: first run only, "
        f"minutes on 2 cores ({component.directory})"
    )
    started = time.monotonic()
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    done = subprocess.run(
        build_command(go, component),
        cwd=GOMOD_DIR / component.gomod,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise ClusterError(
            f"step 'build {component.name} {component.version}' failed (go build exited "
            f"{done.returncode}):\n{tail}\n"
            "Check that the Go module proxy is reachable (GOPROXY) and that there is free disk "
            "space, then run `make cluster` again; `make cluster-clean-cache` forces a rebuild."
        )
    for name in component.binaries:
        _check_runs(component.binary(name), component)
    component.stamp.write_text(component.stamp_text())
    log(f"[build] {component.name} built in {time.monotonic() - started:.0f} s")


def _check_runs(binary: Path, component: Component) -> None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise ClusterError(f"step 'check {binary.name}' failed: {exc}") from exc
    if out.returncode != 0:
        raise ClusterError(
            f"step 'check {binary.name}' failed: `{binary} --version` exited {out.returncode}: "
            f"{(out.stderr or out.stdout).strip()[-500:]}"
        )
