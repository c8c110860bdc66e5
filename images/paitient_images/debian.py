"""A distroless-style Debian root filesystem: the packages asked for and their dependencies,
extracted (not installed) by mmdebstrap, then trimmed.

No package manager, shell or maintainer script runs, so none ends up in the image. Each kept
package gets a ``/var/lib/dpkg/status.d/<name>`` entry (the distroless convention), which is how
SBOM scanners see the Debian packages. Versions are pinned by ``images/locks/debian-<name>.lock``
(``debian_pins.py``: what happens when the mirror no longer serves a pinned version).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from paitient_images.debian_pins import (
    RELOCK_COMMAND,
    PinPlan,
    package_drift,
    plan_pins,
    replaced_warning,
    served_versions,
    split_pin,
)
from paitient_images.pythonenv import compile_bytecode
from paitient_images.recipes import (
    DEBIAN_MIRRORS,
    DEBIAN_SUITE,
    NONROOT_GID,
    NONROOT_UID,
    PAUSE_UID,
    DebianBase,
)
from paitient_images.steps import BuildError, log, run

ARCHIVES: Final = Path("var/cache/apt/archives")
# Trimmed from every rootfs: documentation (licences stay), package-manager state, logs.
TRIMMED: Final = (
    "etc/apt",
    "etc/dpkg",
    "etc/cron.daily",
    "etc/logrotate.d",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "var/cache",
    "var/lib/apt",
    "var/log",
)


@dataclass(frozen=True)
class Package:
    """One downloaded .deb's control fields that matter here."""

    name: str
    version: str
    architecture: str
    depends: tuple[tuple[str, ...], ...]  # each entry: alternatives, first preferred
    provides: tuple[str, ...]
    control: str  # the whole control paragraph, for status.d

    @property
    def pin(self) -> str:
        return f"{self.name}={self.version}"


def _names(field: str) -> tuple[tuple[str, ...], ...]:
    # "libc6 (>= 2.34), debconf | debconf-2.0, python3:any" -> (("libc6",), ("debconf", ...), ...)
    groups = []
    for clause in filter(None, (c.strip() for c in field.split(","))):
        alts = tuple(re.split(r"[\s(:\[]", a.strip(), maxsplit=1)[0] for a in clause.split("|"))
        groups.append(alts)
    return tuple(groups)


def parse_control(text: str) -> Package:
    """A Package from ``dpkg-deb -f`` output."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    depends = ", ".join(filter(None, (fields.get("Pre-Depends"), fields.get("Depends"))))
    provides = tuple(alts[0] for alts in _names(fields.get("Provides", "")))
    return Package(
        name=fields["Package"],
        version=fields["Version"],
        architecture=fields.get("Architecture", ""),
        depends=_names(depends),
        provides=provides,
        control=text.strip() + "\n",
    )


def closure(
    roots: Iterable[str], packages: Mapping[str, Package], never: Iterable[str]
) -> list[str]:
    """The names of ``roots`` and everything they depend on among ``packages``, skipping
    ``never``; an alternative group resolves to its first member that is present."""
    provided: dict[str, str] = {}
    for pkg in packages.values():
        for virtual in pkg.provides:
            provided.setdefault(virtual, pkg.name)
    skip = set(never)
    keep: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        name = name if name in packages else provided.get(name, name)
        if name in keep or name in skip:
            continue
        if name not in packages:
            raise BuildError(f"Debian package {name!r} was not downloaded")
        keep.add(name)
        for alts in packages[name].depends:
            if skip.intersection(alts):
                continue
            present = [a for a in alts if a in packages or a in provided]
            if present:
                todo.append(present[0])
    return sorted(keep)


def lock_text(kept: Iterable[Package]) -> str:
    lines = [f"{p.pin} {p.architecture}" for p in sorted(kept, key=lambda p: p.name)]
    return "# name=version architecture; written by `python -m paitient_images lock`\n" + (
        "\n".join(lines) + "\n"
    )


def read_lock(path: Path) -> list[str]:
    """The ``name=version`` pins of a lock file (empty when it does not exist yet)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def passwd_files() -> dict[str, str]:
    """/etc/passwd and /etc/group: root, the images' numeric non-root user, nobody."""
    return {
        "etc/passwd": (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"nonroot:x:{NONROOT_UID}:{NONROOT_GID}:nonroot:/tmp:/usr/sbin/nologin\n"
            f"pause:x:{PAUSE_UID}:{PAUSE_UID}:pause:/:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "etc/group": f"root:x:0:\nnonroot:x:{NONROOT_GID}:\npause:x:{PAUSE_UID}:\nnogroup:x:65534:\n",
    }


def _mmdebstrap(base: DebianBase, target: Path, log_file: Path, include: Iterable[str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    run(
        [
            "mmdebstrap",
            "--variant=extract",
            "--skip=cleanup/apt/cache",  # the .debs are read below, then removed
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            f"--include={','.join(include)}",
            DEBIAN_SUITE,
            str(target),
            *DEBIAN_MIRRORS,
        ],
        log_file=log_file,
    )


def _downloaded(root: Path) -> dict[Path, Package]:
    debs = sorted((root / ARCHIVES).glob("*.deb"))
    found = {}
    for deb in debs:
        out = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True)
        if out.returncode != 0:
            raise BuildError(f"cannot read {deb.name}: {out.stderr.strip()}")
        found[deb] = parse_control(out.stdout)
    return found


def _remove_files_of(deb: Path, root: Path) -> None:
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
    names = subprocess.run(["tar", "-t"], input=listing.stdout, capture_output=True)
    paths = [root / n.lstrip("./") for n in names.stdout.decode().splitlines() if n.strip("./")]
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _trim(root: Path) -> None:
    for rel in TRIMMED:
        shutil.rmtree(root / rel, ignore_errors=True)
    # mmdebstrap makes device nodes; the runtime mounts /dev itself.
    shutil.rmtree(root / "dev", ignore_errors=True)
    (root / "dev").mkdir()
    dpkg = root / "var/lib/dpkg"
    for entry in dpkg.iterdir() if dpkg.is_dir() else ():
        if entry.name != "status.d":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _write_identity(root: Path) -> None:
    for rel, text in passwd_files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


def _plan(base: DebianBase, pins: list[str], target: Path, log_file: Path) -> PinPlan:
    """The lock's pins, each one the mirror no longer serves replaced (with a warning)."""
    if not pins:  # `lock`: whatever the roots resolve to today
        return PinPlan(base.roots)
    state = target.with_name(target.name + ".apt")
    try:
        served = served_versions(
            [split_pin(p)[0] for p in pins], state, log_file.with_name(f"apt-{base.name}.log")
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    plan = plan_pins(pins, served)
    if plan.replaced:
        log(replaced_warning(plan.replaced, base.lock.name))
    return plan


def build_rootfs(base: DebianBase, target: Path, log_file: Path) -> str:
    """Make ``target`` (which must not exist); returns the lock text of what it holds. A pinned
    version Debian no longer serves is replaced by the served one, with a warning; a package
    set other than the lock's is an error (the roots changed) unless a replacement caused it."""
    pins = read_lock(base.lock)
    plan = _plan(base, pins, target, log_file)
    _mmdebstrap(base, target, log_file, plan.include)
    downloaded = _downloaded(target)
    by_name = {p.name: p for p in downloaded.values()}
    kept = set(closure(base.roots, by_name, base.never))
    for deb, pkg in downloaded.items():
        if pkg.name not in kept:
            _remove_files_of(deb, target)
    status = target / "var/lib/dpkg/status.d"
    status.mkdir(parents=True, exist_ok=True)
    for name in sorted(kept):
        (status / name).write_text(by_name[name].control, encoding="utf-8")
    _trim(target)
    _write_identity(target)
    for path, link_target in base.links:
        link = target / path
        if not link.is_symlink() and not link.exists():
            link.symlink_to(link_target)
    for stdlib in sorted((target / "usr/lib").glob("python3*")):
        compile_bytecode(target, stdlib)  # extracting ran no postinst, which would have
    held = [by_name[n].pin for n in kept]
    if pins and (drift := package_drift(plan.include, held)):
        if not plan.replaced:
            raise BuildError(
                f"the packages of {base.name} differ from {base.lock.name} ({drift}); if you "
                f"changed the roots, run `{RELOCK_COMMAND}` and commit the lock"
            )
        log(f"WARNING: with the replaced versions, {base.name} holds other packages than "
            f"{base.lock.name} ({drift}); refresh the lock: `{RELOCK_COMMAND}`")  # fmt: skip
    return lock_text(by_name[n] for n in kept)
