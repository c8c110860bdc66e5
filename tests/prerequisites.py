"""Skip or fail when a real component a test needs is not there: one rule for the whole suite.

A developer without the vLLM image, podman, root or the local cluster's audit log gets a skip
with the reason. CI (``CI=true``) and ``make test`` (``PAITIENT_REQUIRE_ALL=1``) get a failure
instead, so a run that silently lost real vLLM, the images or the cluster's own records cannot
stay green.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_ALL_ENV = "PAITIENT_REQUIRE_ALL"
TRUE = frozenset({"1", "true", "yes"})


def everything_required(env: Mapping[str, str] | None = None) -> bool:
    """Whether a missing real component fails the run: under CI or ``make test`` (pure)."""
    env = os.environ if env is None else env
    return any(env.get(name, "").strip().lower() in TRUE for name in (REQUIRE_ALL_ENV, "CI"))


def missing(reason: str) -> NoReturn:
    """The test cannot run here because ``reason``: a skip for a developer, a failure where every
    real component is required."""
    if everything_required():
        pytest.fail(
            f"{reason} (a missing prerequisite fails under CI=true or {REQUIRE_ALL_ENV}=1, "
            "as `make test` sets it)",
            pytrace=False,
        )
    pytest.skip(reason)


def local_audit_log(kubeconfig: Path) -> Path:
    """The local cluster's API server audit log, beside its kubeconfig; ``missing`` when the
    session runs against another cluster (``PAITIENT_TEST_KUBECONFIG``), which has none here."""
    log = kubeconfig.parent / "logs" / "audit.log"
    if not log.is_file():
        missing(f"needs the local cluster's audit log ({log} does not exist)")
    return log
