"""The Debian pins of a lock against what the mirror serves today.

deb.debian.org serves only the newest version of each package per suite, so the day Debian
publishes a security update to a pinned package the pinned version is gone and an exact
``--include`` of it fails. Rather than failing every build until someone re-locks, a pin whose
version is no longer served is built with the version the mirror serves for that package, with
a warning that names the package, both versions and the command that refreshes the lock. Every
other pin is kept exactly; a package the mirror does not serve at all is still an error. What
the image really holds is in its SBOM (from ``status.d``) and in the build's log.

``plan_pins`` is the decision (pure); ``served_versions`` asks apt, with an apt state of its own
(never the host's), which versions the mirrors serve of the pinned packages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from paitient_images.recipes import DEBIAN_MIRRORS
from paitient_images.steps import BuildError, run

RELOCK_COMMAND: Final = "python -m paitient_images lock"


@dataclass(frozen=True)
class Replaced:
    """A pinned version the mirror no longer serves, and the one built instead."""

    name: str
    pinned: str
    used: str


@dataclass(frozen=True)
class PinPlan:
    """What to ask apt for: ``name=version`` of every pin, and which of them were replaced."""

    include: tuple[str, ...]
    replaced: tuple[Replaced, ...] = ()


def split_pin(pin: str) -> tuple[str, str]:
    name, sep, version = pin.partition("=")
    if not sep or not name or not version:
        raise BuildError(f"{pin!r} is not a Debian pin (name=version)")
    return name, version


def plan_pins(pins: Sequence[str], served: Mapping[str, Sequence[str]]) -> PinPlan:
    """Keep each pin whose version the mirror serves; otherwise use the version it serves first
    (apt's candidate). ``served``: package name -> versions served, candidate first."""
    include: list[str] = []
    replaced: list[Replaced] = []
    unserved: list[str] = []
    for pin in pins:
        name, version = split_pin(pin)
        versions = served.get(name) or ()
        if version in versions:
            include.append(pin)
        elif versions:
            include.append(f"{name}={versions[0]}")
            replaced.append(Replaced(name, version, versions[0]))
        else:
            unserved.append(name)
    if unserved:
        raise BuildError(
            f"the Debian mirror serves no version of {', '.join(unserved)} (pinned in the lock): "
            f"run `{RELOCK_COMMAND}` and commit images/locks/"
        )
    return PinPlan(tuple(include), tuple(replaced))


def replaced_warning(replaced: Sequence[Replaced], lock_name: str) -> str:
    """The build's warning about pins it could not honour (empty when it honoured all)."""
    if not replaced:
        return ""
    lines = [
        f"WARNING: Debian no longer serves {len(replaced)} version(s) pinned in {lock_name} "
        "(a Debian update replaced them); building with what the mirror serves:"
    ]
    lines += [f"  {r.name}: pinned {r.pinned}, used {r.used}" for r in replaced]
    lines.append(f"  refresh the lock: `{RELOCK_COMMAND}`, then commit images/locks/")
    return "\n".join(lines)


def package_drift(asked: Sequence[str], held: Sequence[str]) -> str:
    """How the pins a root filesystem holds differ from those asked for ("" when they match)."""
    added, dropped = sorted(set(held) - set(asked)), sorted(set(asked) - set(held))
    parts = [
        f"{label} {', '.join(pins)}"
        for label, pins in (("added", added), ("dropped", dropped))
        if pins
    ]
    return "; ".join(parts)


def parse_madison(text: str) -> dict[str, list[str]]:
    """``apt-cache madison`` output -> package name -> versions in apt's order (newest first,
    the candidate when no pin priorities differ, as here). Source lines are skipped."""
    served: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) != 3 or not fields[2].endswith(" Packages"):
            continue
        versions = served.setdefault(fields[0], [])
        if fields[1] not in versions:
            versions.append(fields[1])
    return served


def _apt_options(state: Path) -> list[str]:
    """apt with a state, cache and sources of its own; the host's keys (as mmdebstrap uses)."""
    options = {
        "Dir::State": str(state / "state"),
        "Dir::State::status": str(state / "status"),
        "Dir::Cache": str(state / "cache"),
        "Dir::Etc::SourceList": str(state / "sources.list"),
        "Dir::Etc::SourceParts": str(state / "sources.list.d"),
        "Dir::Etc::Preferences": str(state / "preferences"),
        "Dir::Etc::PreferencesParts": str(state / "preferences.d"),
        "APT::Architecture": "amd64",
        "APT::Architectures": "amd64",
        "Acquire::Languages": "none",
        "Debug::NoLocking": "1",
    }
    return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]


def served_versions(names: Sequence[str], state: Path, log_file: Path) -> dict[str, list[str]]:
    """The versions the image's mirrors serve of ``names`` (``state``: a scratch directory)."""
    for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").write_text("", encoding="utf-8")
    (state / "sources.list").write_text("\n".join(DEBIAN_MIRRORS) + "\n", encoding="utf-8")
    options = _apt_options(state)
    run(["apt-get", *options, "update"], log_file=log_file)
    return parse_madison(run(["apt-cache", *options, "madison", *names]))
