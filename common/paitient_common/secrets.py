"""Names of the system namespace's shared objects: API-key material (operator, CLI, gateways)
and the gateways' CA (operator, front door)."""

from __future__ import annotations

from typing import Final

PEPPER_SECRET: Final = "paitient-api-key-pepper"  # noqa: S105 - a Secret's name, not a secret
PEPPER_KEY: Final = "pepper"
KEYS_LABEL: Final = "paitient.ai/api-keys"
TIERS_CONFIGMAP: Final = "paitient-tiers"
# The operator's CA (key and certificate; operator issuer only) and the CA bundle every client
# of a gateway trusts (public: a ConfigMap, like kube-root-ca.crt).
CA_SECRET: Final = "paitient-ca"  # noqa: S105 - a Secret's name
CA_BUNDLE_CONFIGMAP: Final = "paitient-ca-bundle"
CA_BUNDLE_KEY: Final = "ca.crt"


def keys_secret_name(tenant: str) -> str:
    """The Secret of one tenant's key records, in the system namespace."""
    return f"paitient-api-keys-{tenant}"
