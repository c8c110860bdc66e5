"""Why the operator refuses a resource: exceptions the pure layer raises for the handlers.

    OperatorError
    └── InvalidSpec                    the spec cannot be served as written (phase Failed)
        ├── ForbiddenRuntimeArgument   runtime.extraArgs: refused flags, or ones vLLM does not know
        ├── StorageNotEncrypted        the model cache would land on a class not known encrypted
        └── TierLimitExceeded          the tenant's tier does not allow it

Each carries the condition ``reason`` a handler writes into status, so the mapping from
exception to condition lives here once instead of in every handler. An object that does not
parse as its kind (``InvalidResource``, raised by the shared resource models) becomes an
``InvalidSpec`` through ``as_refusal``.
"""

from __future__ import annotations

from paitient_common.resources.shared import InvalidResource
from paitient_operator import conditions


class OperatorError(Exception):
    """Base of every refusal raised by the operator's pure layer."""

    reason: str = conditions.REASON_INVALID_SPEC

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(OperatorError):
    """The spec is well-formed YAML but cannot be served; time will not fix it."""

    reason = conditions.REASON_INVALID_SPEC


class ForbiddenRuntimeArgument(InvalidSpec):
    """An entry of ``spec.runtime.extraArgs`` is a flag the operator owns or forbids, or one the
    pinned vLLM would refuse (unknown, abbreviated, missing its value)."""

    reason = conditions.REASON_INVALID_SPEC


class StorageNotEncrypted(InvalidSpec):
    """The model cache's StorageClass is not one the operator's policy knows to be encrypted."""

    reason = conditions.REASON_STORAGE_NOT_ENCRYPTED


class TierLimitExceeded(InvalidSpec):
    """The deployment breaks its tenant's tier: GPUs on a tier without them, or more GPUs or
    deployments than the tier allows."""

    reason = conditions.REASON_TIER_LIMIT_EXCEEDED


def as_refusal(error: InvalidResource | OperatorError) -> OperatorError:
    """The refusal a handler reports: an object that is not a valid instance of its kind is an
    ``InvalidSpec`` with the parser's message."""
    return error if isinstance(error, OperatorError) else InvalidSpec(str(error))
