"""Each tenant's own prefix cache in vLLM: the ``cache_salt`` the gateway puts on every request.

vLLM mixes a request's ``cache_salt`` into the hash of its first KV-cache block, so a prompt
reuses only blocks computed under the same salt. Without one, two tenants on one replica share
cached prefixes, and the time to first token tells one of them whether the other already sent a
text (a known side channel; for patient data, a leak). The gateway therefore salts every request
with its caller's tenant and refuses a salt from the client. The salt is an HMAC of the tenant's
name under a key this process draws at start: unpredictable (vLLM asks for that), the same for a
tenant's every request while the pod lives, and nothing to configure or leak.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

FIELD: Final = "cache_salt"


class CacheSalts:
    """The salt of each tenant; ``key`` only for tests (drawn at random otherwise)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def salt(self, tenant: str) -> str:
        """43 characters of base64url: within vLLM's 128, none of its forbidden ``@ / \\``."""
        digest = hmac.new(self._key, tenant.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
