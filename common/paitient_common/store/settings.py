"""Where the shared store is and how to reach it: its settings (``SharedStoreSettings``) and
their parsed, checked form (``StoreSettings``).

``PAITIENT_STORE_URL`` is ``redis://host:port/db`` (or ``rediss://`` for TLS); unset means no
store: every component keeps today's per-process state and says so loudly at start.
``PAITIENT_STORE_PASSWORD`` comes from a Secret and is never logged nor put in a URL;
``PAITIENT_STORE_CA_FILE`` is the PEM CA a ``rediss://`` server's certificate must chain to;
``PAITIENT_STORE_SERVER_NAME`` the name that certificate must carry when the URL's host is not it
(a relay or tunnel in between, as the local data plane's: ``rediss://127.0.0.1:<port>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr

from paitient_common.settings import Env

URL_ENV: Final = "PAITIENT_STORE_URL"
PASSWORD_ENV: Final = "PAITIENT_STORE_PASSWORD"  # noqa: S105 - the variable's name
CA_FILE_ENV: Final = "PAITIENT_STORE_CA_FILE"
SERVER_NAME_ENV: Final = "PAITIENT_STORE_SERVER_NAME"
TIMEOUT_ENV: Final = "PAITIENT_STORE_TIMEOUT_SECONDS"
DEFAULT_PORT: Final = 6379
# One round trip slower than this counts as the store being unreachable: the gateway then
# admits on its local share rather than holding a request. Generous for a store on the same
# network (a round trip is well under a millisecond).
DEFAULT_TIMEOUT: Final = 1.0
_HOST: Final = re.compile(r"[A-Za-z0-9.\-:]+")  # a DNS name, an IPv4 or (unbracketed) IPv6
_DNS_NAME: Final = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?)*"
)


class StoreSettingsError(ValueError):
    """The store's settings cannot be used; the message says which and why (never a secret)."""


@dataclass(frozen=True)
class StoreSettings:
    """A parsed, checked store address; ``describe()`` is what logs may show."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    tls: bool = False
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    username: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    # The name the server's certificate is checked against, when not ``host`` (TLS only).
    server_name: str | None = None

    def describe(self) -> str:
        """``rediss://store.paitient-system.svc:6379/0``: no password, ever."""
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db}"


def parse_store_url(
    url: str,
    password: str | None = None,
    ca_file: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    server_name: str | None = None,
) -> StoreSettings:
    """Check ``url`` and the rest; ``StoreSettingsError`` says what is wrong, without echoing a
    password even when one was (wrongly) put in the URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise StoreSettingsError(
            f"{URL_ENV} is not a valid URL (expected redis://host:port/db or rediss://...)"
        ) from None
    if parts.scheme not in ("redis", "rediss"):
        raise StoreSettingsError(
            f"{URL_ENV} must start with redis:// or rediss:// (TLS), not {parts.scheme or 'nothing'}"
        )
    if parts.password is not None:
        raise StoreSettingsError(
            f"{URL_ENV} carries a password: put it in {PASSWORD_ENV} (from a Secret) instead, "
            "so that no URL in a log or a manifest holds it"
        )
    host = parts.hostname or ""
    if not _HOST.fullmatch(host):
        raise StoreSettingsError(f"{URL_ENV} names no valid host (redis://host:port/db)")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit() or int(db_text) > 15:
        raise StoreSettingsError(f"{URL_ENV}: the database must be a number from 0 to 15")
    if parts.query or parts.fragment:
        raise StoreSettingsError(f"{URL_ENV} takes no query or fragment: use the other variables")
    ca = Path(ca_file) if ca_file else None
    if ca is not None and parts.scheme != "rediss":
        raise StoreSettingsError(f"{CA_FILE_ENV} is set but {URL_ENV} is not rediss:// (TLS)")
    if ca is not None and not ca.is_file():
        raise StoreSettingsError(f"{CA_FILE_ENV}: no such file {ca}")
    if timeout <= 0:
        raise StoreSettingsError(f"{TIMEOUT_ENV} must be positive")
    if server_name and parts.scheme != "rediss":
        raise StoreSettingsError(f"{SERVER_NAME_ENV} is set but {URL_ENV} is not rediss:// (TLS)")
    if server_name and not _DNS_NAME.fullmatch(server_name):
        raise StoreSettingsError(f"{SERVER_NAME_ENV} is not a DNS name (store.namespace.svc)")
    return StoreSettings(
        host=host,
        port=port or DEFAULT_PORT,
        db=int(db_text),
        tls=parts.scheme == "rediss",
        password=password or None,
        ca_file=ca,
        username=parts.username or None,
        timeout=timeout,
        server_name=server_name or None,
    )


class SharedStoreSettings(BaseModel):
    """The shared store's settings as the gateway and the front door read them, mixed into their
    settings models (the operator's are the ``store`` section of its configuration)."""

    store_url: Annotated[str, Env(URL_ENV)] = Field(
        default="",
        description="redis://host:port/db, or rediss:// for TLS; unset: no store, each replica "
        "keeps its own limits, idempotency records and negative key cache.",
    )
    store_password: Annotated[SecretStr | None, Env(PASSWORD_ENV)] = Field(
        default=None, description="The store's password (from a Secret; never logged)."
    )
    store_ca_file: Annotated[str | None, Env(CA_FILE_ENV)] = Field(
        default=None, description="PEM CA a rediss:// store's certificate must chain to."
    )
    store_server_name: Annotated[str | None, Env(SERVER_NAME_ENV)] = Field(
        default=None,
        description="The name a rediss:// store's certificate must carry, when the URL's host "
        "is not it (a relay in between); unset: the URL's host.",
    )
    store_timeout_seconds: Annotated[float, Env(TIMEOUT_ENV)] = Field(
        default=DEFAULT_TIMEOUT,
        gt=0,
        description="A round trip slower than this is a timeout; a gateway counts the store "
        "unreachable after three failed calls in a row (a reservation is sent again under its id).",
    )

    @cached_property
    def store(self) -> StoreSettings | None:
        """The checked address, None without a URL; ``StoreSettingsError`` when it cannot work."""
        if not self.store_url.strip():
            return None
        password = self.store_password.get_secret_value() if self.store_password else None
        return parse_store_url(
            self.store_url,
            password,
            self.store_ca_file,
            self.store_timeout_seconds,
            self.store_server_name,
        )

    def startup_check(self) -> None:
        self.store  # noqa: B018 - parsed now, so a store that cannot work stops the start
