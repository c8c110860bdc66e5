"""Names of the Secrets that hold API-key material, shared by the operator, CLI and gateways."""

from __future__ import annotations

from typing import Final

PEPPER_SECRET: Final = "paitient-api-key-pepper"  # noqa: S105 - a Secret's name, not a secret
PEPPER_KEY: Final = "pepper"
KEYS_LABEL: Final = "paitient.ai/api-keys"
TIERS_CONFIGMAP: Final = "paitient-tiers"


def keys_secret_name(tenant: str) -> str:
    """The Secret of one tenant's key records, in the system namespace."""
    return f"paitient-api-keys-{tenant}"
