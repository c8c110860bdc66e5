"""The stack's command line: ``tiny-model`` needs the namespace whose claim gets the model, and
``make up`` ends by saying where the walk-through that serves a model is."""

from __future__ import annotations

from pathlib import Path

import pytest

from paitient_localcluster.stack import lifecycle


def test_tiny_model_without_a_namespace_is_refused_with_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        lifecycle.main(["tiny-model"])
    assert exited.value.code == 2
    assert "tiny-model needs --namespace, e.g. --namespace tenant-acme" in capsys.readouterr().err


def test_make_up_points_at_the_walk_through() -> None:
    text = lifecycle.how_to_call("https://127.0.0.1:1/v1", Path("/ca.pem"), Path("/kc"))
    assert "README.md" in text and "export KUBECONFIG=/kc" in text
