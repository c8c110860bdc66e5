"""A missing real component skips a developer's test but fails CI and `make test`
(tests/prerequisites.py)."""

from __future__ import annotations

import pytest

from tests.prerequisites import REQUIRE_ALL_ENV, everything_required, missing


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "false"}, False),
        ({REQUIRE_ALL_ENV: "1"}, True),
        ({REQUIRE_ALL_ENV: "0", "CI": ""}, False),
        ({REQUIRE_ALL_ENV: "0", "CI": "true"}, True),
    ],
)
def test_ci_or_make_test_requires_every_real_component(env: dict[str, str], required: bool) -> None:
    assert everything_required(env) is required


def test_a_missing_component_skips_for_a_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(REQUIRE_ALL_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no podman"):
        missing("no podman")


@pytest.mark.parametrize("variable", ["CI", REQUIRE_ALL_ENV])
def test_a_missing_component_fails_under_ci_and_make_test(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(REQUIRE_ALL_ENV, raising=False)
    monkeypatch.setenv(variable, "true" if variable == "CI" else "1")
    # Caught as any outcome: a skip escaping pytest.raises(fail) would report this test skipped,
    # and the run would stay green with the rule broken.
    with pytest.raises(BaseException, match="no podman") as outcome:
        missing("no podman")
    assert outcome.type is pytest.fail.Exception, f"{outcome.typename}, not a failure"
