"""Fixtures for the operator's pure layer: a default configuration, no cluster."""

from __future__ import annotations

import pytest

from paitient_operator.config import OperatorConfig


@pytest.fixture
def config() -> OperatorConfig:
    """The operator's defaults plus an encrypted class, as a cluster admin would set."""
    return OperatorConfig.model_validate({"encryptedStorageClasses": ["encrypted-local"]})
