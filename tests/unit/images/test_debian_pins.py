"""The Debian pins against what the mirror serves: kept when served, replaced (and said so) when
a Debian update removed the pinned version, an error when the package is gone."""

from __future__ import annotations

import pytest

from paitient_images.debian_pins import (
    RELOCK_COMMAND,
    PinPlan,
    Replaced,
    package_drift,
    parse_madison,
    plan_pins,
    replaced_warning,
    split_pin,
)
from paitient_images.steps import BuildError

# What `apt-cache madison zlib1g libc6 base-files` printed for bookworm, its updates and its
# security suite (each suite serves its newest version only).
MADISON = """\
    zlib1g | 1:1.2.13.dfsg-1+deb12u2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
    zlib1g | 1:1.2.13.dfsg-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
     libc6 | 2.36-9+deb12u14 | http://deb.debian.org/debian bookworm/main amd64 Packages
     libc6 | 2.36-9+deb12u7 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
base-files | 12.4+deb12u15 | http://deb.debian.org/debian bookworm/main amd64 Packages
      zlib | 1:1.2.13.dfsg-1 | http://deb.debian.org/debian bookworm/main Sources
"""


def test_madison_gives_each_package_its_versions_newest_first_without_sources() -> None:
    assert parse_madison(MADISON) == {
        "zlib1g": ["1:1.2.13.dfsg-1+deb12u2", "1:1.2.13.dfsg-1"],
        "libc6": ["2.36-9+deb12u14", "2.36-9+deb12u7"],
        "base-files": ["12.4+deb12u15"],
    }
    assert parse_madison("N: Unable to locate package nothing\n") == {}


def test_served_pins_are_kept_exactly_even_when_a_newer_version_is_served() -> None:
    pins = ["libc6=2.36-9+deb12u14", "zlib1g=1:1.2.13.dfsg-1"]  # zlib1g: an older suite's
    assert plan_pins(pins, parse_madison(MADISON)) == PinPlan(tuple(pins))


def test_a_pin_the_mirror_no_longer_serves_is_built_with_the_served_version() -> None:
    pins = ["base-files=12.4+deb12u15", "zlib1g=1:1.2.13.dfsg-1+deb12u1"]
    plan = plan_pins(pins, parse_madison(MADISON))
    assert plan.include == ("base-files=12.4+deb12u15", "zlib1g=1:1.2.13.dfsg-1+deb12u2")
    assert plan.replaced == (
        Replaced("zlib1g", pinned="1:1.2.13.dfsg-1+deb12u1", used="1:1.2.13.dfsg-1+deb12u2"),
    )


def test_the_warning_names_package_both_versions_lock_and_command() -> None:
    replaced = [Replaced("zlib1g", "1:1.2.13.dfsg-1+deb12u1", "1:1.2.13.dfsg-1+deb12u2")]
    text = replaced_warning(replaced, "debian-python.lock")
    assert text.startswith("WARNING: ")
    assert "debian-python.lock" in text
    assert "zlib1g: pinned 1:1.2.13.dfsg-1+deb12u1, used 1:1.2.13.dfsg-1+deb12u2" in text
    assert f"`{RELOCK_COMMAND}`" in text and "images/locks/" in text
    assert replaced_warning([], "debian-python.lock") == ""


def test_a_package_the_mirror_does_not_serve_at_all_fails_with_what_to_do() -> None:
    with pytest.raises(BuildError) as err:
        plan_pins(["libgone1=1.0-1", "libc6=2.36-9+deb12u14"], parse_madison(MADISON))
    assert "libgone1" in str(err.value) and RELOCK_COMMAND in str(err.value)


@pytest.mark.parametrize("pin", ["zlib1g", "=1.0", "zlib1g="])
def test_a_malformed_pin_is_refused(pin: str) -> None:
    with pytest.raises(BuildError, match="not a Debian pin"):
        split_pin(pin)


def test_package_drift_names_what_was_added_and_dropped() -> None:
    asked = ["a=1", "b=1"]
    assert package_drift(asked, ["b=1", "a=1"]) == ""
    assert package_drift(asked, ["a=1", "c=2"]) == "added c=2; dropped b=1"
