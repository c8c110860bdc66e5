"""One connection pool to the shared store (redis-py's asyncio client) and its Lua scripts.

Scripts are registered once and sent by SHA (``EVALSHA``); redis-py loads a script again by
itself when the server answers ``NOSCRIPT`` (a restarted or failed-over store). The client never
retries a call on its own: a reservation sent twice must not be taken twice. The callers decide:
a reservation whose call failed is sent again under its own id (``limits.reserve``), which the
script answers without taking twice.
A ``server_name`` in the settings is what the server's certificate is verified against when the
address dialled is not that name (a relay in between).
"""

from __future__ import annotations

import ssl
from importlib import resources
from typing import Any, Final

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.connection import ConnectionPool, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from paitient_common.store.settings import PASSWORD_ENV, StoreSettings

SCRIPTS: Final = ("reserve", "settle", "heartbeat", "view", "release_if_owner")

# What a failed store call raises: the connection is gone, timed out, refused the password or
# the handshake. A script error (a bug) is a ResponseError and is not caught as "unreachable".
UNREACHABLE: Final = (rexc.ConnectionError, rexc.TimeoutError, OSError, ssl.SSLError)


class StoreUnavailable(Exception):
    """The store could not be used; ``str()`` says why without any secret."""


def describe_failure(exc: BaseException) -> str:
    """Why a store call failed, for one log line: the password and the URL's secrets are never
    in it (redis-py's messages carry neither; only the type and the server's reason are kept)."""
    if isinstance(exc, rexc.AuthenticationError) or (
        isinstance(exc, rexc.ResponseError)
        and str(exc).startswith(("WRONGPASS", "NOAUTH", "invalid username-password"))
    ):
        return f"the store refused the credentials: check {PASSWORD_ENV}"
    if isinstance(exc, rexc.AuthenticationWrongNumberOfArgsError):
        return f"the store takes no password, but {PASSWORD_ENV} is set"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        reason = getattr(exc if isinstance(exc, ssl.SSLError) else cause, "reason", None)
        return f"the TLS handshake with the store failed ({reason or type(exc).__name__})"
    if isinstance(exc, rexc.TimeoutError | TimeoutError):
        return "the store did not answer in time"
    if isinstance(exc, rexc.ConnectionError | OSError):
        return f"the store is unreachable ({type(cause or exc).__name__})"
    return f"the store call failed ({type(exc).__name__})"


def _script_text(name: str) -> str:
    return (resources.files("paitient_common.store") / "lua" / f"{name}.lua").read_text()


class Store:
    """The client and the registered scripts; ``call`` runs one script."""

    def __init__(self, settings: StoreSettings, client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or _client(settings)
        self.scripts = {name: self.client.register_script(_script_text(name)) for name in SCRIPTS}

    async def call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run ``script``; raises one of ``UNREACHABLE`` when the store cannot be used."""
        return await self.scripts[script](keys=keys, args=args)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` with a clear reason unless the store answers."""
        try:
            await self.client.ping()
        except (*UNREACHABLE, rexc.ResponseError) as exc:
            raise StoreUnavailable(describe_failure(exc)) from None

    async def close(self) -> None:
        await self.client.aclose()


class ServerNameSSLConnection(SSLConnection):
    """A TLS connection that checks the server's certificate against ``server_hostname`` (also
    sent as SNI) rather than the host it dials: redis-py has no option for it."""

    def __init__(self, *, server_hostname: str, **kwargs: Any) -> None:
        self.server_hostname = server_hostname
        super().__init__(**kwargs)

    def _connection_arguments(self) -> Any:
        return {**super()._connection_arguments(), "server_hostname": self.server_hostname}


def _client(settings: StoreSettings) -> aioredis.Redis:
    options: dict[str, Any] = {}
    if settings.tls:
        options = {
            "ssl": True,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_min_version": ssl.TLSVersion.TLSv1_2,
        }
        if settings.ca_file is not None:
            options["ssl_ca_certs"] = str(settings.ca_file)
    client = aioredis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout,
        retry=Retry(NoBackoff(), 0),
        client_name="paitient",
        **options,
    )
    if settings.tls and settings.server_name:
        # The same connection arguments, through the connection class that verifies the name.
        pool = client.connection_pool
        kwargs = {**pool.connection_kwargs, "server_hostname": settings.server_name}
        client = aioredis.Redis.from_pool(
            ConnectionPool(connection_class=ServerNameSSLConnection, **kwargs)
        )
    return client
